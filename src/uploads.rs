//! Avatars: checked by extension and by content, decoded whole within bounds, re-encoded (so
//! metadata and anything smuggled after the image are dropped), stored under a random name.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Context;
use image::{ImageFormat, ImageReader, Limits};

/// The largest avatar file accepted.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// The largest avatar accepted, in pixels per side.
pub const MAX_SIDE: u32 = 4096;
/// Decoding may allocate at most this much (a 4096×4096 RGBA frame is 64 MiB).
const MAX_ALLOC: u64 = 80 * 1024 * 1024;

/// What is wrong with an upload, in words for the member.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AvatarError {
    #[error("No file selected.")]
    Missing,
    #[error("Only image files are allowed (.png, .jpg, .jpeg, .gif).")]
    Extension,
    #[error("The image is larger than 5 MiB.")]
    TooLarge,
    #[error("Invalid file content: the file is not a PNG, JPEG or GIF image.")]
    Content,
    #[error("The image is larger than 4096×4096 pixels.")]
    TooManyPixels,
    #[error("Invalid file content: the image could not be decoded.")]
    Corrupt,
}

/// An avatar that passed every check, re-encoded and ready to store.
#[derive(Debug)]
pub struct Avatar {
    pub bytes: Vec<u8>,
    pub extension: &'static str,
}

fn format_of_extension(filename: &str) -> Option<ImageFormat> {
    let (_, ext) = filename.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "png" => Some(ImageFormat::Png),
        "jpg" | "jpeg" => Some(ImageFormat::Jpeg),
        "gif" => Some(ImageFormat::Gif),
        _ => None,
    }
}

fn format_of_content(bytes: &[u8]) -> Option<ImageFormat> {
    match infer::get(bytes)?.mime_type() {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        _ => None,
    }
}

/// Checks an upload and re-encodes it. CPU-heavy: call it off the async workers.
pub fn validate(filename: &str, bytes: &[u8]) -> Result<Avatar, AvatarError> {
    if filename.is_empty() && bytes.is_empty() {
        return Err(AvatarError::Missing);
    }
    format_of_extension(filename).ok_or(AvatarError::Extension)?;
    if bytes.len() > MAX_BYTES {
        return Err(AvatarError::TooLarge);
    }
    let format = format_of_content(bytes).ok_or(AvatarError::Content)?;

    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let image = reader.decode().map_err(|err| match err {
        image::ImageError::Limits(_) => AvatarError::TooManyPixels,
        _ => AvatarError::Corrupt,
    })?;

    let mut out = Cursor::new(Vec::new());
    let (result, extension) = match format {
        ImageFormat::Jpeg => (image.to_rgb8().write_to(&mut out, ImageFormat::Jpeg), "jpg"),
        ImageFormat::Gif => (image.to_rgba8().write_to(&mut out, ImageFormat::Gif), "gif"),
        _ => (image.write_to(&mut out, ImageFormat::Png), "png"),
    };
    result.map_err(|_| AvatarError::Corrupt)?;
    Ok(Avatar { bytes: out.into_inner(), extension })
}

/// True for a name Quire generated: 32 lowercase hex digits and one of its extensions. No
/// other name reaches the file system.
pub fn is_generated_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    stem.len() == 32
        && stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && matches!(ext, "png" | "jpg" | "gif")
}

/// The Content-Type of a generated name.
pub fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("jpg") => "image/jpeg",
        Some("gif") => "image/gif",
        _ => "image/png",
    }
}

/// Where the layout and profile point an `<img>` at.
pub fn avatar_src(name: &str) -> String {
    format!("/avatars/{}", crate::urls::segment(name))
}

/// Writes the avatar under a new random name (atomically: temp file, then rename).
pub async fn store(dir: &Path, avatar: &Avatar) -> anyhow::Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the operating system gave no random bytes")?;
    let name = format!("{}.{}", hex::encode(random), avatar.extension);
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, &avatar.bytes).await.with_context(|| format!("cannot write {}", tmp.display()))?;
    tokio::fs::rename(&tmp, dir.join(&name))
        .await
        .with_context(|| format!("cannot move the avatar into {}", dir.display()))?;
    Ok(name)
}

/// The file of a generated name, or `None` for any other name.
pub fn path_of(dir: &Path, name: &str) -> Option<PathBuf> {
    is_generated_name(name).then(|| dir.join(name))
}

/// Deletes a replaced avatar; a name Quire did not generate (an old import) is left alone.
pub async fn remove(dir: &Path, name: &str) {
    if let Some(path) = path_of(dir, name)
        && let Err(err) = tokio::fs::remove_file(&path).await
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %err, avatar = name, "could not delete a replaced avatar");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::new(width, height).write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_real_png_is_accepted_and_reencoded() {
        let avatar = validate("me.PNG", &png(8, 8)).unwrap();
        assert_eq!(avatar.extension, "png");
        assert!(avatar.bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn bytes_appended_after_the_image_are_dropped() {
        let mut bytes = png(4, 4);
        bytes.extend_from_slice(b"<script>alert(1)</script>");
        let avatar = validate("x.png", &bytes).unwrap();
        assert!(!avatar.bytes.windows(7).any(|w| w == b"<script"));
    }

    #[test]
    fn wrong_extension_wrong_content_and_truncated_images_are_refused() {
        assert_eq!(validate("x.svg", &png(4, 4)).unwrap_err(), AvatarError::Extension);
        assert_eq!(validate("noext", &png(4, 4)).unwrap_err(), AvatarError::Extension);
        assert_eq!(validate("x.png", b"<svg onload=alert(1)>").unwrap_err(), AvatarError::Content);
        let truncated = &png(64, 64)[..60];
        assert_eq!(validate("x.png", truncated).unwrap_err(), AvatarError::Corrupt);
        assert_eq!(validate("", b"").unwrap_err(), AvatarError::Missing);
    }

    #[test]
    fn images_over_the_pixel_limit_are_refused() {
        assert_eq!(validate("wide.png", &png(MAX_SIDE + 1, 1)).unwrap_err(), AvatarError::TooManyPixels);
        assert!(validate("edge.png", &png(MAX_SIDE, 1)).is_ok());
    }

    #[test]
    fn only_generated_names_are_served() {
        assert!(is_generated_name("0123456789abcdef0123456789abcdef.png"));
        assert!(!is_generated_name("../secret"));
        assert!(!is_generated_name("0123456789ABCDEF0123456789abcdef.png"));
        assert!(!is_generated_name("0123456789abcdef0123456789abcdef.png.exe"));
        assert!(!is_generated_name("0123456789abcdef0123456789abcdef.svg"));
    }
}

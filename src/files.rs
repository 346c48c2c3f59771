//! Attached files: their names, what their content is, how they are served (inline or as a
//! download), byte ranges, and image previews. Storage is `models::file`; routes are
//! `routes::files`.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use unicode_normalization::UnicodeNormalization;

/// The longest attachment name, in characters.
pub const NAME_MAX: usize = 200;
/// The default of `--max-upload`: 50 MiB.
pub const DEFAULT_MAX_UPLOAD: u64 = 50 * 1024 * 1024;
/// An image larger than this is stored and served as a download, not checked and shown.
pub const INLINE_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The widths previews are made at (`?width=N`).
pub const PREVIEW_WIDTHS: [u32; 4] = [200, 400, 800, 1600];
/// The largest image shown or previewed, in pixels per side.
pub const IMAGE_MAX_SIDE: u32 = 8192;
/// Decoding one image may allocate at most this much.
const IMAGE_MAX_ALLOC: u64 = 192 * 1024 * 1024;

/// Why a name cannot be a file's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("The file has no name: give it one before uploading.")]
    Empty,
}

/// A file's name as stored: the last part of what the browser sent (no `/` or `\`), without
/// control characters or leading dots, trimmed, in Unicode NFC, at most [`NAME_MAX`]
/// characters (the extension kept when it is cut). Anything else stays as given.
pub fn normalize_name(raw: &str) -> Result<String, NameError> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.nfc().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim_start();
    if cleaned.is_empty() {
        return Err(NameError::Empty);
    }
    if cleaned.chars().count() <= NAME_MAX {
        return Ok(cleaned.to_owned());
    }
    let (stem, extension) = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 16 => (stem, Some(ext)),
        _ => (cleaned, None),
    };
    let room = NAME_MAX - extension.map_or(0, |ext| ext.chars().count() + 1);
    let mut name: String = stem.chars().take(room).collect::<String>().trim_end().to_owned();
    if let Some(ext) = extension {
        name.push('.');
        name.push_str(ext);
    }
    Ok(name)
}

/// The type of content by its first bytes: the image and document types `infer` knows, then
/// markup and text by a look at the start, else `application/octet-stream`.
pub fn sniff(head: &[u8]) -> String {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start: Vec<u8> =
        text.iter().skip_while(|b| b.is_ascii_whitespace()).take(512).map(u8::to_ascii_lowercase).collect();
    let has = |needle: &[u8]| start.windows(needle.len()).any(|w| w == needle);
    // Before `infer`, which calls any XML `text/xml`: an SVG is an SVG.
    if start.starts_with(b"<svg") || (start.starts_with(b"<?xml") && has(b"<svg")) {
        return "image/svg+xml".to_owned();
    }
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if start.starts_with(b"<!doctype html") || start.starts_with(b"<html") || has(b"<script") || has(b"<body")
    {
        return "text/html".to_owned();
    }
    if start.starts_with(b"<?xml") {
        return "application/xml".to_owned();
    }
    // A cut UTF-8 sequence at the end of the head is no reason to call it binary.
    let valid = match std::str::from_utf8(text) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none() && err.valid_up_to() + 4 > text.len(),
    };
    if valid && !text.contains(&0) {
        return "text/plain; charset=utf-8".to_owned();
    }
    "application/octet-stream".to_owned()
}

fn image_format(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// True for the types that may be shown inline at all.
pub fn is_image_type(content_type: &str) -> bool {
    image_format(content_type).is_some()
}

/// Markup or script inside an image: a polyglot (a GIF that is also JavaScript, a PNG carrying
/// HTML) is served as a download, whatever its first bytes say.
fn carries_script(bytes: &[u8]) -> bool {
    const MARKS: [&[u8]; 10] = [
        b"<script",
        b"<html",
        b"<svg",
        b"<body",
        b"<iframe",
        b"<?php",
        b"javascript:",
        b"alert(",
        b"eval(",
        b"document.",
    ];
    // `GIF89a=` / `GIF89a/*`: the classic GIF/JS polyglot opens an assignment or a comment.
    if bytes.starts_with(b"GIF8") && matches!(bytes.get(6), Some(b'=' | b'/' | b';' | b' ')) {
        return true;
    }
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    MARKS.iter().any(|mark| lower.windows(mark.len()).any(|w| w == *mark))
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(IMAGE_MAX_SIDE);
    limits.max_image_height = Some(IMAGE_MAX_SIDE);
    limits.max_alloc = Some(IMAGE_MAX_ALLOC);
    limits
}

/// Decodes a whole image of `content_type` within the pixel and memory limits.
fn decode(bytes: &[u8], format: ImageFormat) -> Result<image::DynamicImage, PreviewError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits());
    reader.decode().map_err(|err| match err {
        image::ImageError::Limits(_) => PreviewError::TooLarge,
        _ => PreviewError::NotAnImage,
    })
}

/// Whether a file of `content_type` is shown inline, and its size in pixels: only a PNG, JPEG,
/// GIF or WebP that decodes whole within the limits and carries no markup or script. CPU-heavy:
/// call it off the async workers.
pub fn check_image(content_type: &str, bytes: &[u8]) -> Option<(u32, u32)> {
    let format = image_format(content_type)?;
    if carries_script(bytes) {
        return None;
    }
    let image = decode(bytes, format).ok()?;
    Some((image.width(), image.height()))
}

/// Why no preview can be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    #[error("Previews are made at widths 200, 400, 800 and 1600 only.")]
    Width,
    #[error("This file is not an image Quire shows: it has no preview.")]
    NotAnImage,
    #[error("The image is too large to preview (at most 8192×8192 pixels).")]
    TooLarge,
}

/// A `?width=` value, checked against [`PREVIEW_WIDTHS`].
pub fn preview_width(raw: &str) -> Result<u32, PreviewError> {
    raw.parse::<u32>().ok().filter(|w| PREVIEW_WIDTHS.contains(w)).ok_or(PreviewError::Width)
}

/// A preview: the image no wider than `width`, re-encoded (so without metadata) as PNG, or as
/// JPEG for a JPEG. Returns the bytes and their type. CPU-heavy: call it off the async workers.
pub fn make_preview(
    content_type: &str,
    bytes: &[u8],
    width: u32,
) -> Result<(Vec<u8>, &'static str), PreviewError> {
    let format = image_format(content_type).ok_or(PreviewError::NotAnImage)?;
    let image = decode(bytes, format)?;
    let image = if image.width() > width {
        let height = (u64::from(image.height()) * u64::from(width) / u64::from(image.width().max(1))).max(1);
        image.resize_exact(width, u32::try_from(height).unwrap_or(1), image::imageops::FilterType::Triangle)
    } else {
        image
    };
    let mut out = Cursor::new(Vec::new());
    let content_type = if format == ImageFormat::Jpeg {
        image.to_rgb8().write_to(&mut out, ImageFormat::Jpeg).map_err(|_| PreviewError::NotAnImage)?;
        "image/jpeg"
    } else {
        image.to_rgba8().write_to(&mut out, ImageFormat::Png).map_err(|_| PreviewError::NotAnImage)?;
        "image/png"
    };
    Ok((out.into_inner(), content_type))
}

/// A `Range` header, for content of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// No range asked (or one this server answers whole: several ranges, another unit).
    Whole,
    /// Bytes `start..=end`.
    Part { start: u64, end: u64 },
    /// Nothing of the content is in the range: 416.
    Unsatisfiable,
}

/// Parses `bytes=A-B`, `bytes=A-` and `bytes=-N` (one range; a list is answered whole).
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Range::Whole,
        (true, false) => match number(last) {
            Some(0) => Range::Unsatisfiable,
            Some(n) if size == 0 => {
                let _ = n;
                Range::Unsatisfiable
            }
            Some(n) => Range::Part { start: size.saturating_sub(n), end: size - 1 },
            None => Range::Whole,
        },
        (false, _) => {
            let Some(start) = number(first) else { return Range::Whole };
            let end = if last.is_empty() {
                size.saturating_sub(1)
            } else {
                match number(last) {
                    Some(end) if end >= start => end.min(size.saturating_sub(1)),
                    _ => return Range::Whole,
                }
            };
            if start >= size { Range::Unsatisfiable } else { Range::Part { start, end } }
        }
    }
}

/// Parses a size such as `50MiB`, `50 MB`, `1.5GiB`, `1048576` (bytes): K/M/G/T with or
/// without `i` or `B` count in powers of 1024.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let text = raw.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 =
        number.parse().map_err(|_| format!("{raw:?} is not a size: write it like 50MiB, 2GiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("{raw:?} has an unknown unit: use B, KiB, MiB, GiB or TiB")),
    };
    let bytes = number * factor as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{raw:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// A size as people read it: `0 B`, `1.0 KiB`, `45.0 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_leading_dots_and_keep_the_rest() {
        assert_eq!(normalize_name("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(normalize_name("C:\\fakepath\\photo.png").unwrap(), "photo.png");
        assert_eq!(normalize_name("...hidden").unwrap(), "hidden");
        assert_eq!(normalize_name("a\u{0}b\nc.txt").unwrap(), "abc.txt");
        assert_eq!(normalize_name("Café plan — 東京.pdf").unwrap(), "Café plan — 東京.pdf");
        assert_eq!(normalize_name("  spaced  .txt ").unwrap(), "spaced  .txt");
        assert_eq!(normalize_name("e\u{301}.txt").unwrap(), "\u{e9}.txt");
        assert_eq!(normalize_name("../").unwrap_err(), NameError::Empty);
        assert_eq!(normalize_name("...").unwrap_err(), NameError::Empty);
        let long = format!("{}.tar.gz", "x".repeat(300));
        let cut = normalize_name(&long).unwrap();
        assert_eq!(cut.chars().count(), NAME_MAX);
        assert!(cut.ends_with(".gz"));
        assert_eq!(normalize_name(&"é".repeat(250)).unwrap().chars().count(), NAME_MAX);
    }

    #[test]
    fn content_types_come_from_the_content() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"  <!DOCTYPE html><script>alert(1)</script>"), "text/html");
        assert_eq!(sniff(b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>"), "image/svg+xml");
        assert_eq!(sniff(b"<?xml version='1.0'?><svg onload='x'/>"), "image/svg+xml");
        assert_eq!(sniff("plain words, ünïcode".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\x00\x01\x02\xff"), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain; charset=utf-8");
    }

    #[test]
    fn a_gif_that_is_also_script_is_no_inline_image() {
        assert!(carries_script(b"GIF89a=1;alert(document.domain)//"));
        assert!(carries_script(b"GIF89a/*\x01\x00*/=alert(1)"));
        assert!(!carries_script(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"));
        let png = {
            let mut out = Cursor::new(Vec::new());
            image::RgbImage::new(3, 2).write_to(&mut out, ImageFormat::Png).unwrap();
            out.into_inner()
        };
        assert_eq!(check_image("image/png", &png), Some((3, 2)));
        let mut with_html = png.clone();
        with_html.extend_from_slice(b"<html><script>alert(1)</script>");
        assert_eq!(check_image("image/png", &with_html), None);
        assert_eq!(check_image("application/pdf", &png), None);
    }

    #[test]
    fn ranges_cover_first_last_suffix_and_unsatisfiable() {
        assert_eq!(parse_range(Some("bytes=0-0"), 10), Range::Part { start: 0, end: 0 });
        assert_eq!(parse_range(Some("bytes=9-9"), 10), Range::Part { start: 9, end: 9 });
        assert_eq!(parse_range(Some("bytes=-3"), 10), Range::Part { start: 7, end: 9 });
        assert_eq!(parse_range(Some("bytes=-30"), 10), Range::Part { start: 0, end: 9 });
        assert_eq!(parse_range(Some("bytes=4-"), 10), Range::Part { start: 4, end: 9 });
        assert_eq!(parse_range(Some("bytes=4-100"), 10), Range::Part { start: 4, end: 9 });
        assert_eq!(parse_range(Some("bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Range::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Range::Whole);
        assert_eq!(parse_range(None, 10), Range::Whole);
    }

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(parse_size("50MiB"), Ok(50 << 20));
        assert_eq!(parse_size("50 MB"), Ok(50 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("10k"), Ok(10 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(45 << 20), "45.0 MiB");
    }

    #[test]
    fn previews_are_no_wider_than_asked_and_refuse_other_widths() {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::new(1000, 500).write_to(&mut out, ImageFormat::Png).unwrap();
        let (bytes, kind) = make_preview("image/png", out.get_ref(), 400).unwrap();
        assert_eq!(kind, "image/png");
        let preview = image::load_from_memory(&bytes).unwrap();
        assert_eq!((preview.width(), preview.height()), (400, 200));
        assert_eq!(preview_width("300"), Err(PreviewError::Width));
        assert_eq!(preview_width("800"), Ok(800));
    }
}

//! The avatar contract: members only, real PNG/JPEG/GIF images only (checked by extension, by
//! content and by decoding), re-encoded, stored under a random name, served to members only and
//! only under a name Quire generated. Every refusal says why and stores nothing.

use std::io::{Cursor, Read, Write};

use image::{ImageFormat, Rgb, RgbImage};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};

use crate::helpers::*;

// ----- images -----------------------------------------------------------------------------

/// A small image with some variety in it, so that its encoding is not trivially short.
fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([(x * 7 + y * 3) as u8, (x ^ y) as u8, (x * y) as u8]))
}

fn encode(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("the test image encodes");
    out.into_inner()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height), ImageFormat::Png)
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    encode(&picture(width, height), ImageFormat::Jpeg)
}

fn gif(width: u32, height: u32) -> Vec<u8> {
    let rgba = image::DynamicImage::ImageRgb8(picture(width, height)).to_rgba8();
    let mut out = Cursor::new(Vec::new());
    rgba.write_to(&mut out, ImageFormat::Gif).expect("the test gif encodes");
    out.into_inner()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ----- what was stored --------------------------------------------------------------------

/// The avatar column of a member.
async fn stored_avatar(app: &TestApp, username: &str) -> Option<String> {
    quire::models::user::find_by_username(&app.state.db.read, username)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{username} exists"))
        .avatar
}

/// Every file in the avatar dir (temporary files included), sorted.
fn avatar_files(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(app.avatar_dir())
        .expect("the avatar dir exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
fn assert_generated_name(name: &str, extension: &str) {
    let (stem, ext) = name.split_once('.').unwrap_or_else(|| panic!("{name} has an extension"));
    assert_eq!(stem.len(), 32, "{name}: 32 hex digits");
    assert!(stem.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{name}: lowercase hex");
    assert_eq!(ext, extension, "{name}");
}

/// The avatar name the profile page shows, if any.
fn shown_avatar(profile: &str) -> Option<String> {
    let section = profile.split(r#"<div class="avatar-section">"#).nth(1)?;
    let at = section.find(r#"<img src="/avatars/"#)?;
    let rest = &section[at + r#"<img src="/avatars/"#.len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Uploads and asserts the refusal: the status, the message in the page, and that nothing was
/// stored (neither in the member's row nor in the avatar dir).
async fn assert_refused(
    app: &TestApp,
    username: &str,
    filename: &str,
    bytes: Vec<u8>,
    status: StatusCode,
    message: &str,
) {
    let before = stored_avatar(app, username).await;
    let files_before = avatar_files(app);
    let response = app.browser.upload_avatar(filename, bytes).await;
    assert_eq!(response.status(), status, "upload of {filename:?}");
    let page = response.text().await.unwrap();
    assert!(page.contains(message), "upload of {filename:?}: {message:?} is shown in {page}");
    assert!(
        page.contains(r#"class="field-error""#) || status != StatusCode::UNPROCESSABLE_ENTITY,
        "{filename:?}"
    );
    assert_eq!(stored_avatar(app, username).await, before, "upload of {filename:?} stored nothing");
    assert_eq!(avatar_files(app), files_before, "upload of {filename:?} wrote no file");
}

/// Uploads an image that must be accepted; returns the name it is stored under.
async fn upload_ok(app: &TestApp, username: &str, filename: &str, bytes: Vec<u8>) -> String {
    let response = app.browser.upload_avatar(filename, bytes).await;
    assert_redirects_to(&response, "/profile");
    let (status, page) = follow(&app.browser, response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Avatar uploaded successfully!"),
        "the flash is shown after uploading {filename:?}"
    );
    let name = stored_avatar(app, username).await.expect("the avatar is stored");
    assert_eq!(shown_avatar(&page).as_deref(), Some(name.as_str()), "the profile shows the new avatar");
    assert!(page.contains(&format!(r#"<img src="/avatars/{name}""#)));
    name
}

/// GET /avatars/NAME by a browser: the bytes, after checking the headers of an image.
async fn fetch_avatar(browser: &Browser, name: &str, content_type: &str) -> Vec<u8> {
    let response = browser.get(&format!("/avatars/{name}")).await;
    assert_eq!(response.status(), StatusCode::OK, "GET /avatars/{name}");
    assert_eq!(response.headers()[CONTENT_TYPE], content_type, "{name}");
    assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff", "{name}");
    response.bytes().await.unwrap().to_vec()
}

/// A GET sent as raw bytes, so that no client normalizes the path (`..` stays `..`).
fn raw_get(app: &TestApp, path: &str, cookies: &str) -> (u16, Vec<u8>) {
    let host = app.address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("the server accepts a connection");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookies}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("the server answers");
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line for {path}: {head:?}"));
    (status, response)
}

// ----- access -----------------------------------------------------------------------------

async fn visitors_are_sent_to_log_in_before_seeing_or_changing_a_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.browser.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(response.headers());
    assert!(target.starts_with("/login?next="), "{target}");
    // `/` may be sent as is or as %2F in a query: both mean /profile.
    let next = target.strip_prefix("/login?next=").unwrap();
    assert!(next == "/profile" || next.eq_ignore_ascii_case("%2Fprofile"), "{target}");

    // A member exists, but this browser is not logged in as them.
    let member = app.new_browser();
    member.register("owner", PASSWORD).await;
    let token = app.browser.csrf("/register").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("avatar", reqwest::multipart::Part::bytes(png(8, 8)).file_name("a.png"));
    let response = app.browser.client.post(app.browser.url("/profile")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(response.headers()).starts_with("/login"), "{}", location(response.headers()));
    assert_eq!(stored_avatar(&app, "owner").await, None);
    assert!(avatar_files(&app).is_empty());
}

// ----- accepted images --------------------------------------------------------------------

async fn png_jpeg_and_gif_avatars_are_stored_under_a_random_name_and_served_to_members(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("painter").await;
    let cases: [(&str, Vec<u8>, &str, &str, ImageFormat); 5] = [
        ("me.png", png(16, 12), "png", "image/png", ImageFormat::Png),
        ("holiday photo.jpg", jpeg(20, 10), "jpg", "image/jpeg", ImageFormat::Jpeg),
        ("portrait.JPEG", jpeg(9, 9), "jpg", "image/jpeg", ImageFormat::Jpeg),
        ("anim.gif", gif(10, 10), "gif", "image/gif", ImageFormat::Gif),
        ("UPPER.PNG", png(3, 5), "png", "image/png", ImageFormat::Png),
    ];
    for (filename, bytes, extension, content_type, format) in cases {
        let (width, height) = image::load_from_memory(&bytes).map(|i| (i.width(), i.height())).unwrap();
        let name = upload_ok(&app, "painter", filename, bytes).await;
        assert_generated_name(&name, extension);
        assert!(!name.contains(filename.split('.').next().unwrap()), "the upload's name is not kept: {name}");
        assert_eq!(avatar_files(&app), vec![name.clone()], "exactly the new avatar is on disk");

        let served = fetch_avatar(&app.browser, &name, content_type).await;
        let decoded = image::load_from_memory_with_format(&served, format)
            .unwrap_or_else(|err| panic!("{filename}: the served avatar decodes: {err}"));
        assert_eq!((decoded.width(), decoded.height()), (width, height), "{filename}");
        let on_disk = std::fs::read(app.avatar_dir().join(&name)).unwrap();
        assert_eq!(served, on_disk, "{filename}: the stored file is what is served");
    }
}

async fn a_second_avatar_replaces_the_first_and_deletes_its_file(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("changer").await;
    let first = upload_ok(&app, "changer", "one.png", png(8, 8)).await;
    assert_eq!(avatar_files(&app), vec![first.clone()]);
    let second = upload_ok(&app, "changer", "two.jpg", jpeg(8, 8)).await;
    assert_ne!(first, second);
    assert_eq!(avatar_files(&app), vec![second.clone()], "the first file is deleted, exactly one is left");
    assert_eq!(app.browser.get(&format!("/avatars/{first}")).await.status(), StatusCode::NOT_FOUND);
    fetch_avatar(&app.browser, &second, "image/jpeg").await;
}

async fn avatars_are_served_to_every_member_but_not_to_visitors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("shown").await;
    let name = upload_ok(&app, "shown", "face.png", png(8, 8)).await;

    let visitor = app.new_browser();
    let response = visitor.get(&format!("/avatars/{name}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(response.headers()).starts_with("/login"), "{}", location(response.headers()));
    assert!(!response.bytes().await.unwrap().starts_with(b"\x89PNG"), "no image bytes for a visitor");

    let other = app.new_browser();
    other.register("viewer", PASSWORD).await;
    assert_eq!(other.login("viewer", PASSWORD).await.status(), StatusCode::SEE_OTHER);
    let served = fetch_avatar(&other, &name, "image/png").await;
    image::load_from_memory_with_format(&served, ImageFormat::Png).expect("another member sees the image");
}

async fn a_300_character_filename_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("longname").await;
    let filename = format!("{}.png", "n".repeat(296));
    assert_eq!(filename.len(), 300);
    let name = upload_ok(&app, "longname", &filename, png(4, 4)).await;
    assert_generated_name(&name, "png");
    assert_eq!(avatar_files(&app), vec![name]);
}

// ----- refused uploads --------------------------------------------------------------------

async fn files_without_an_image_extension_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ext").await;
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    let cases: [(&str, Vec<u8>); 6] = [
        ("drawing.svg", svg),
        ("notes.txt", b"just some text".to_vec()),
        ("page.html", b"<html><script>alert(1)</script></html>".to_vec()),
        ("noextension", png(4, 4)),
        ("image.png.html", png(4, 4)),
        ("photo.webp", png(4, 4)),
    ];
    for (filename, bytes) in cases {
        assert_refused(
            &app,
            "ext",
            filename,
            bytes,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Only image files are allowed",
        )
        .await;
    }
}

async fn files_whose_content_is_not_an_image_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("content").await;
    let cases: [(&str, &[u8]); 5] = [
        ("page.png", b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"),
        ("notes.png", b"hello, this is plain text and no image at all"),
        (
            "vector.png",
            br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>"#,
        ),
        ("script.jpg", b"alert(1)//"),
        ("fake.gif", b"\x89PNG this is not a gif"),
    ];
    for (filename, bytes) in cases {
        assert_refused(
            &app,
            "content",
            filename,
            bytes.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid file content",
        )
        .await;
    }
}

async fn a_png_truncated_in_the_middle_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("cut").await;
    let whole = png(64, 64);
    assert!(whole.len() > 1000, "a test image with a real IDAT");
    let half = whole[..whole.len() / 2].to_vec();
    assert_refused(&app, "cut", "half.png", half, StatusCode::UNPROCESSABLE_ENTITY, "Invalid file content")
        .await;
    // Cut just after the header, and just before IEND.
    let header_only = whole[..33].to_vec();
    assert_refused(
        &app,
        "cut",
        "header.png",
        header_only,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid file content",
    )
    .await;
    let no_end = whole[..whole.len() - 20].to_vec();
    assert_refused(
        &app,
        "cut",
        "no-end.png",
        no_end,
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid file content",
    )
    .await;
}

async fn a_png_wider_than_4096_pixels_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("wide").await;
    let wide = encode(&RgbImage::new(4097, 1), ImageFormat::Png);
    assert_refused(&app, "wide", "wide.png", wide, StatusCode::UNPROCESSABLE_ENTITY, "4096").await;
    let tall = encode(&RgbImage::new(1, 4097), ImageFormat::Png);
    assert_refused(&app, "wide", "tall.png", tall, StatusCode::UNPROCESSABLE_ENTITY, "4096").await;
    // The edge itself is fine.
    let edge = encode(&RgbImage::new(4096, 1), ImageFormat::Png);
    upload_ok(&app, "wide", "edge.png", edge).await;
}

/// A GIF that hides JavaScript in a comment extension: a valid image, and valid script too
/// once served as script.
fn gif_with_comment(comment: &[u8]) -> Vec<u8> {
    let mut bytes = gif(4, 4);
    let packed = bytes[10];
    let global_table = if packed & 0x80 != 0 { 3usize << ((packed & 7) + 1) } else { 0 };
    let at = 13 + global_table;
    assert!(comment.len() < 256);
    let mut block = vec![0x21, 0xFE, comment.len() as u8];
    block.extend_from_slice(comment);
    block.push(0);
    bytes.splice(at..at, block);
    image::load_from_memory_with_format(&bytes, ImageFormat::Gif).expect("the commented gif is valid");
    bytes
}

async fn a_gif_javascript_polyglot_is_refused_or_neutralised(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("poly").await;
    // The classic: `GIF89a/*` opens a JS comment (and makes the width 10799 px).
    let classic = b"GIF89a/*\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;*/=1;alert(document.domain);//".to_vec();
    let commented = gif_with_comment(b"*/alert(document.domain);/*<script>alert(1)</script>");
    let mut trailing = gif(4, 4);
    trailing.extend_from_slice(b"\n*/;alert(document.domain);//");
    for (filename, bytes) in
        [("classic.gif", classic), ("commented.gif", commented), ("trailing.gif", trailing)]
    {
        let files_before = avatar_files(&app);
        let before = stored_avatar(&app, "poly").await;
        let response = app.browser.upload_avatar(filename, bytes).await;
        match response.status() {
            StatusCode::UNPROCESSABLE_ENTITY => {
                let page = response.text().await.unwrap();
                assert!(page.contains("Invalid file content") || page.contains("4096"), "{filename}: {page}");
                assert_eq!(stored_avatar(&app, "poly").await, before, "{filename}");
                assert_eq!(avatar_files(&app), files_before, "{filename}");
            }
            StatusCode::SEE_OTHER => {
                let name = stored_avatar(&app, "poly").await.expect("stored");
                let served = fetch_avatar(&app.browser, &name, "image/gif").await;
                assert!(
                    !contains(&served, b"alert("),
                    "{filename}: the served file is re-encoded without the script"
                );
                assert!(
                    !contains(&served, b"<script"),
                    "{filename}: the served file is re-encoded without the script"
                );
                image::load_from_memory_with_format(&served, ImageFormat::Gif).expect("a real gif is served");
            }
            status => panic!("{filename}: the polyglot got {status}"),
        }
    }
}

async fn a_script_appended_after_a_png_is_dropped_by_re_encoding(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("appended").await;
    let mut bytes = png(8, 8);
    bytes.extend_from_slice(b"<script>alert(1)</script>");
    let name = upload_ok(&app, "appended", "trailer.png", bytes).await;
    let served = fetch_avatar(&app.browser, &name, "image/png").await;
    assert!(!contains(&served, b"<script"), "the trailer is gone from the served file");
    assert!(!contains(&std::fs::read(app.avatar_dir().join(&name)).unwrap(), b"<script"));
    image::load_from_memory_with_format(&served, ImageFormat::Png).expect("the served file is a PNG");
}

async fn a_file_over_5_mib_is_refused_with_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("heavy").await;
    let mut bytes = png(8, 8);
    bytes.resize(5 * 1024 * 1024 + 64 * 1024, 0);
    assert_refused(&app, "heavy", "heavy.png", bytes, StatusCode::UNPROCESSABLE_ENTITY, "5 MiB").await;
}

async fn an_empty_upload_asks_for_a_file(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("empty").await;
    assert_refused(&app, "empty", "", Vec::new(), StatusCode::UNPROCESSABLE_ENTITY, "No file selected.")
        .await;
}

async fn a_body_over_6_mib_is_refused_with_413(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("huge").await;
    let mut bytes = png(8, 8);
    bytes.resize(7 * 1024 * 1024, 0);
    let response = app.browser.upload_avatar("huge.png", bytes).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stored_avatar(&app, "huge").await, None);
    assert!(avatar_files(&app).is_empty());
}

async fn a_malformed_multipart_body_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("garbage").await;
    let bodies: [&[u8]; 3] = [
        b"this is not multipart at all",
        b"--xyz\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\n\r\nno closing boundary",
        b"--xyz\r\nno headers end here",
    ];
    for body in bodies {
        let response = app
            .browser
            .client
            .post(app.browser.url("/profile"))
            .header(CONTENT_TYPE, "multipart/form-data; boundary=xyz")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
    }
    // A multipart content type without a boundary cannot be read either.
    let response = app
        .browser
        .client
        .post(app.browser.url("/profile"))
        .header(CONTENT_TYPE, "multipart/form-data")
        .body("whatever")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(stored_avatar(&app, "garbage").await, None);
    assert!(avatar_files(&app).is_empty());
}

async fn a_post_to_the_profile_that_is_not_multipart_is_a_client_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("plain").await;
    let token = app.browser.csrf("/profile").await;
    let response = app.browser.post_form("/profile", &[("csrf_token", &token), ("avatar", "a.png")]).await;
    let status = response.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNSUPPORTED_MEDIA_TYPE, "{status}");
    let response = app
        .browser
        .client
        .post(app.browser.url("/profile"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"avatar":"x"}"#)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNSUPPORTED_MEDIA_TYPE, "{status}");
    let response = app.browser.client.post(app.browser.url("/profile")).send().await.unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());
    assert_eq!(stored_avatar(&app, "plain").await, None);
    assert!(avatar_files(&app).is_empty());
}

// ----- what /avatars/ serves --------------------------------------------------------------

async fn names_quire_did_not_generate_are_never_served(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("prober").await;
    let name = upload_ok(&app, "prober", "real.png", png(8, 8)).await;
    std::fs::write(app.avatar_dir().join("secret"), "avatar-dir secret").unwrap();
    std::fs::write(app.avatar_dir().join(format!("{name}.exe")), "MZ not an avatar").unwrap();
    let (stem, _) = name.split_once('.').unwrap();
    let missing = format!("{}.png", "0123456789abcdef".repeat(2));
    let paths = [
        "/avatars/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/avatars/%2e%2e%2fsecret".to_owned(),
        "/avatars/%2E%2E%2Fquire.db".to_owned(),
        "/avatars/..%5Csecret".to_owned(),
        "/avatars/secret".to_owned(),
        "/avatars/.secret".to_owned(),
        format!("/avatars/{missing}"),
        format!("/avatars/{}.png", stem.to_uppercase()),
        format!("/avatars/{stem}.PNG"),
        format!("/avatars/{stem}.svg"),
        format!("/avatars/{stem}"),
        format!("/avatars/{name}.exe"),
        format!("/avatars/.{name}.tmp"),
        format!("/avatars/%2F{name}"),
    ];
    for path in &paths {
        let (status, body) = app.browser.get_text(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}");
        assert!(!body.contains("avatar-dir secret"), "GET {path}");
        assert!(!body.contains("MZ not"), "GET {path}");
    }
    // Not UTF-8: a 400, never a 5xx.
    for path in ["/avatars/%FF", "/avatars/%C0%AE%C0%AE%2Fsecret"] {
        let status = app.browser.get(path).await.status();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "GET {path}: {status}");
    }
    // Raw `..` that no client normalizes away.
    let cookies = app.browser.cookies();
    for path in
        ["/avatars/../quire.db", "/avatars/../../etc/passwd", "/avatars/./secret", "/avatars/../secret"]
    {
        let (status, _) = raw_get(&app, path, &cookies);
        assert_eq!(status, 404, "raw GET {path}");
    }
    // The real one still works.
    fetch_avatar(&app.browser, &name, "image/png").await;
}

async fn the_data_dir_secret_can_never_be_fetched(backend: Backend) {
    let app = spawn_app(backend).await;
    let secret_path = app.data_dir.path().join("secret");
    let secret = std::fs::read(&secret_path).expect("the data dir holds the session secret");
    assert!(secret.len() >= 32);
    app.member("thief").await;
    let cookies = app.browser.cookies();
    let through_client = [
        "/secret",
        "/avatars/secret",
        "/avatars/..%2Fsecret",
        "/avatars/%2e%2e%2fsecret",
        "/avatars/%2E%2E%2F%2E%2E%2Fsecret",
        "/avatars/..%5Csecret",
        "/static/secret",
        "/static/..%2Fsecret",
        "/static/..%2F..%2Fsecret",
        "/wiki/..%2Fsecret",
    ];
    for path in through_client {
        let response = app.browser.get(path).await;
        let status = response.status();
        let body = response.bytes().await.unwrap();
        assert_ne!(status, StatusCode::OK, "GET {path}");
        assert!(!status.is_server_error(), "GET {path}: {status}");
        assert!(!contains(&body, &secret), "GET {path} leaks the secret");
    }
    for path in ["/avatars/../secret", "/static/../secret", "/avatars/../../secret", "/avatars/..\\secret"] {
        let (status, body) = raw_get(&app, path, &cookies);
        assert_ne!(status, 200, "raw GET {path}");
        assert!(status < 500, "raw GET {path}: {status}");
        assert!(!contains(&body, &secret), "raw GET {path} leaks the secret");
    }

    // A foreign name in the avatar column (an old import) is never served nor deleted.
    let user = quire::models::user::find_by_username(&app.state.db.read, "thief").await.unwrap().unwrap();
    quire::models::user::set_avatar(&app.state.db.write, user.id, "../secret").await.unwrap();
    let (status, profile) = app.browser.get_text("/profile").await;
    assert_eq!(status, StatusCode::OK);
    let src = shown_avatar(&profile).expect("the profile shows the stored avatar name");
    let response = app.browser.get(&format!("/avatars/{src}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND, "/avatars/{src}");
    assert!(!contains(&response.bytes().await.unwrap(), &secret));
    upload_ok(&app, "thief", "new.png", png(4, 4)).await;
    assert_eq!(std::fs::read(&secret_path).expect("the secret is not deleted as a replaced avatar"), secret);
}

// ----- CSRF -------------------------------------------------------------------------------

async fn an_upload_without_a_csrf_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("nocsrf").await;
    let form = reqwest::multipart::Form::new()
        .part("avatar", reqwest::multipart::Part::bytes(png(8, 8)).file_name("a.png"));
    let response = app.browser.client.post(app.browser.url("/profile")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("did not come from this site"));
    // An empty token and a forged one alike.
    for token in ["", "0000000000000000000000000000000000000000000000000000000000000000"] {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token)
            .part("avatar", reqwest::multipart::Part::bytes(png(8, 8)).file_name("a.png"));
        let response =
            app.browser.client.post(app.browser.url("/profile")).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    assert_eq!(stored_avatar(&app, "nocsrf").await, None);
    assert!(avatar_files(&app).is_empty());
}

async fn an_upload_with_another_members_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("victim").await;
    let attacker = app.new_browser();
    attacker.register("attacker", PASSWORD).await;
    attacker.login("attacker", PASSWORD).await;
    let foreign = attacker.csrf("/profile").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", foreign)
        .part("avatar", reqwest::multipart::Part::bytes(png(8, 8)).file_name("a.png"));
    let response = app.browser.client.post(app.browser.url("/profile")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(stored_avatar(&app, "victim").await, None);
    assert_eq!(stored_avatar(&app, "attacker").await, None);
    assert!(avatar_files(&app).is_empty());
}

crate::tests![
    visitors_are_sent_to_log_in_before_seeing_or_changing_a_profile,
    png_jpeg_and_gif_avatars_are_stored_under_a_random_name_and_served_to_members,
    a_second_avatar_replaces_the_first_and_deletes_its_file,
    avatars_are_served_to_every_member_but_not_to_visitors,
    a_300_character_filename_is_accepted,
    files_without_an_image_extension_are_refused,
    files_whose_content_is_not_an_image_are_refused,
    a_png_truncated_in_the_middle_is_refused,
    a_png_wider_than_4096_pixels_is_refused,
    a_gif_javascript_polyglot_is_refused_or_neutralised,
    a_script_appended_after_a_png_is_dropped_by_re_encoding,
    a_file_over_5_mib_is_refused_with_a_message,
    an_empty_upload_asks_for_a_file,
    a_body_over_6_mib_is_refused_with_413,
    a_malformed_multipart_body_is_a_400,
    a_post_to_the_profile_that_is_not_multipart_is_a_client_error,
    names_quire_did_not_generate_are_never_served,
    the_data_dir_secret_can_never_be_fetched,
    an_upload_without_a_csrf_token_is_refused,
    an_upload_with_another_members_token_is_refused,
];

//! Files attached to pages (issue 9): uploads streamed into the database, downloads byte for
//! byte with ranges and entity tags, versions, dangerous types served as downloads in a
//! sandbox, limits that store nothing, permissions as for the page, attachment links in
//! Markdown, image previews, and two instances over one database.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, IF_NONE_MATCH, RANGE,
};
use sha2::{Digest, Sha256};

use crate::access_helpers::{set_role, set_setting};
use crate::helpers::*;

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // getrandom caps one call's size on some systems: fill in slices.
    for slice in bytes.chunks_mut(1 << 20) {
        getrandom::fill(slice).unwrap();
    }
    bytes
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// POSTs `bytes` as the `file` field, the token first (as a browser sends the form).
async fn upload(browser: &Browser, title: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let list = format!("/wiki/{}/attachments", segment(title));
    let token = browser.csrf(&list).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()));
    browser.client.post(browser.url(&list)).multipart(form).send().await.expect("upload answers")
}

fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn file_url(title: &str, name: &str) -> String {
    format!("/wiki/{}/attachments/{}", segment(title), segment(name))
}

/// The rows of the file tables: blobs, chunks, attachments, versions.
async fn rows(app: &TestApp) -> [u64; 4] {
    quire::models::file::row_counts(&app.state.db.read).await.unwrap()
}

/// A wiki with an admin (the first member) who wrote the page "Docs".
async fn wiki_with_page(backend: Backend, options: Options) -> TestApp {
    let app = spawn_with(backend, options).await;
    app.member("ada").await;
    assert_eq!(app.browser.create_page("Docs", "The docs.").await.status(), StatusCode::SEE_OTHER);
    app
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]))
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A PNG with a text chunk (metadata) before its end.
fn png_with_metadata(width: u32, height: u32) -> Vec<u8> {
    let plain = png(width, height);
    let iend = plain.len() - 12;
    let mut chunk = Vec::new();
    let data = b"Comment\0secret location 51.5N";
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = b"tEXt".to_vec();
    body.extend_from_slice(data);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    let mut out = plain[..iend].to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&plain[iend..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

async fn random_files_of_every_size_come_back_byte_for_byte(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    for (name, len) in [("empty.bin", 0), ("one.bin", 1), ("mebi.bin", 1 << 20), ("big.bin", 45 << 20)] {
        let bytes = random_bytes(len);
        let response = upload(&app.browser, "Docs", name, bytes.clone()).await;
        assert_redirects_to(&response, "/wiki/Docs/attachments");
        let response = app.browser.get(&file_url("Docs", name)).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(header(&response, CONTENT_LENGTH), len.to_string(), "{name}");
        assert_eq!(header(&response, ACCEPT_RANGES), "bytes");
        assert_eq!(header(&response, reqwest::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert!(header(&response, CONTENT_DISPOSITION).starts_with("attachment"), "{name}");
        assert!(header(&response, ETAG).contains(&sha(&bytes)), "the tag is the content's hash");
        let body = response.bytes().await.unwrap();
        assert_eq!(body.len(), len, "{name}");
        assert_eq!(sha(&body), sha(&bytes), "{name} comes back unchanged");
    }
    let (status, list) = app.browser.get_text("/wiki/Docs/attachments").await;
    assert_eq!(status, StatusCode::OK);
    for name in ["empty.bin", "one.bin", "mebi.bin", "big.bin"] {
        assert!(list.contains(&format!("<a href=\"/wiki/Docs/attachments/{name}\">{name}</a>")), "{list}");
    }
    assert!(list.contains("45.0 MiB") && list.contains("1.0 MiB") && list.contains("0 B"), "sizes: {list}");
    assert!(list.contains("application/octet-stream"), "types");
    assert!(list.contains("ada"), "the uploader");
    assert!(list.contains(r#"enctype="multipart/form-data""#), "the upload form");
    // 45 MiB in chunks of 256 KiB: 180 chunks and the others.
    let [blobs, chunks, attachments, versions] = rows(&app).await;
    assert_eq!((blobs, attachments, versions), (4, 4, 4));
    assert_eq!(chunks, 180 + 4 + 1, "fixed-size chunks (the empty file has none)");
}

async fn identical_content_is_stored_once(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let bytes = random_bytes(300 * 1024);
    upload(&app.browser, "Docs", "a.bin", bytes.clone()).await;
    upload(&app.browser, "Docs", "b.bin", bytes.clone()).await;
    app.browser.create_page("Other", "x").await;
    upload(&app.browser, "Other", "c.bin", bytes.clone()).await;
    assert_eq!(rows(&app).await, [1, 2, 3, 3], "one blob of two chunks, three files");
    for (title, name) in [("Docs", "a.bin"), ("Docs", "b.bin"), ("Other", "c.bin")] {
        let body = app.browser.get(&file_url(title, name)).await.bytes().await.unwrap();
        assert_eq!(sha(&body), sha(&bytes));
    }
}

async fn a_name_uploaded_again_gets_a_version_and_old_ones_stay_reachable(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let first = b"first version\n".to_vec();
    let second = b"second version, longer\n".to_vec();
    upload(&app.browser, "Docs", "notes.txt", first.clone()).await;
    let response = upload(&app.browser, "Docs", "notes.txt", second.clone()).await;
    let (_, list) = follow(&app.browser, response).await;
    assert!(list.contains("version 2"), "the flash names the version: {list}");
    assert!(list.contains("?version=1") && list.contains("?version=2"), "the list shows both: {list}");
    let latest = app.browser.get("/wiki/Docs/attachments/notes.txt").await;
    assert_eq!(header(&latest, CONTENT_TYPE), "text/plain; charset=utf-8");
    assert_eq!(latest.bytes().await.unwrap(), second);
    let old = app.browser.get("/wiki/Docs/attachments/notes.txt?version=1").await;
    assert_eq!(old.status(), StatusCode::OK);
    assert_eq!(old.bytes().await.unwrap(), first);
    let (status, text) = app.browser.get_text("/wiki/Docs/attachments/notes.txt?version=3").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("no such version"), "{text}");
    let (status, text) = app.browser.get_text("/wiki/Docs/attachments/notes.txt?version=two").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("must be a number"), "{text}");
    assert_eq!(rows(&app).await[2..], [1, 2]);
}

async fn ranges_give_206_and_an_unsatisfiable_one_416(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    // Across a chunk boundary (256 KiB).
    let bytes = random_bytes(600 * 1024);
    upload(&app.browser, "Docs", "data.bin", bytes.clone()).await;
    let size = bytes.len();
    let url = app.browser.url("/wiki/Docs/attachments/data.bin");
    let ranged = |range: String| {
        let client = app.browser.client.clone();
        let url = url.clone();
        async move { client.get(url).header(RANGE, range).send().await.unwrap() }
    };
    for (range, start, end) in [
        ("bytes=0-0".to_owned(), 0, 0),
        (format!("bytes={}-{}", size - 1, size - 1), size - 1, size - 1),
        ("bytes=-100".to_owned(), size - 100, size - 1),
        ("bytes=262000-262300".to_owned(), 262000, 262300),
        (format!("bytes={}-", size - 5000), size - 5000, size - 1),
        ("bytes=500000-99999999".to_owned(), 500000, size - 1),
    ] {
        let response = ranged(range.clone()).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(header(&response, CONTENT_RANGE), format!("bytes {start}-{end}/{size}"), "{range}");
        assert_eq!(header(&response, CONTENT_LENGTH), (end - start + 1).to_string());
        assert_eq!(response.bytes().await.unwrap(), bytes[start..=end], "{range}");
    }
    let response = ranged(format!("bytes={size}-")).await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&response, CONTENT_RANGE), format!("bytes */{size}"));
    assert!(response.text().await.unwrap().contains("outside the file"));
    // Several ranges are answered whole.
    let response = ranged("bytes=0-1,5-6".to_owned()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().len(), size);
}

async fn a_known_entity_tag_gets_304(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    upload(&app.browser, "Docs", "a.txt", b"hello".to_vec()).await;
    let first = app.browser.get("/wiki/Docs/attachments/a.txt").await;
    let tag = header(&first, ETAG);
    assert!(tag.starts_with('"'), "a strong tag: {tag}");
    let again = app
        .browser
        .client
        .get(app.browser.url("/wiki/Docs/attachments/a.txt"))
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&again, ETAG), tag);
    assert!(again.bytes().await.unwrap().is_empty());
    upload(&app.browser, "Docs", "a.txt", b"hello again".to_vec()).await;
    let changed = app
        .browser
        .client
        .get(app.browser.url("/wiki/Docs/attachments/a.txt"))
        .header(IF_NONE_MATCH, &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK, "a new version has a new tag");
}

async fn dangerous_types_are_downloads_in_a_sandbox_and_images_show_inline(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let cases: [(&str, Vec<u8>); 5] = [
        (
            "page.html",
            b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>".to_vec(),
        ),
        (
            "draw.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"><script>alert(2)</script></svg>"
                .to_vec(),
        ),
        ("poly.gif", b"GIF89a=1;alert(document.domain);//\x00\x00\x00\x00;".to_vec()),
        (
            "doc.pdf",
            b"%PDF-1.4\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF"
                .to_vec(),
        ),
        ("script.js", b"alert(1)".to_vec()),
    ];
    for (name, bytes) in cases {
        upload(&app.browser, "Docs", name, bytes.clone()).await;
        let response = app.browser.get(&file_url("Docs", name)).await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert!(header(&response, CONTENT_DISPOSITION).starts_with("attachment;"), "{name}");
        assert!(header(&response, CONTENT_SECURITY_POLICY).starts_with("sandbox"), "{name}");
        assert_eq!(header(&response, reqwest::header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(response.bytes().await.unwrap(), bytes, "{name} unchanged");
    }
    let types = [("page.html", "text/html"), ("draw.svg", "image/svg+xml"), ("doc.pdf", "application/pdf")];
    for (name, expected) in types {
        let response = app.browser.get(&file_url("Docs", name)).await;
        assert_eq!(header(&response, CONTENT_TYPE), expected, "{name}");
    }
    let image = png(10, 10);
    upload(&app.browser, "Docs", "pixel.png", image.clone()).await;
    let response = app.browser.get("/wiki/Docs/attachments/pixel.png").await;
    assert_eq!(header(&response, CONTENT_TYPE), "image/png");
    assert!(header(&response, CONTENT_DISPOSITION).starts_with("inline;"));
    assert_eq!(response.bytes().await.unwrap(), image);
    // The type comes from the content, not the name.
    upload(&app.browser, "Docs", "fake.png", b"<html><script>alert(1)</script>".to_vec()).await;
    let response = app.browser.get("/wiki/Docs/attachments/fake.png").await;
    assert_eq!(header(&response, CONTENT_TYPE), "text/html");
    assert!(header(&response, CONTENT_DISPOSITION).starts_with("attachment;"));
}

async fn a_file_over_the_limit_gets_413_and_nothing_is_stored(backend: Backend) {
    let options = Options { max_upload: Some(1 << 20), ..Options::default() };
    let app = wiki_with_page(backend, options).await;
    let response = upload(&app.browser, "Docs", "big.bin", random_bytes((1 << 20) + 1)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = response.text().await.unwrap();
    assert!(text.contains("at most 1.0 MiB") && text.contains("Nothing was stored"), "{text}");
    assert_eq!(rows(&app).await, [0, 0, 0, 0], "not even a partial chunk");
    // Announced larger than that: refused unread.
    let response = upload(&app.browser, "Docs", "huge.bin", random_bytes(3 << 20)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(rows(&app).await, [0, 0, 0, 0]);
    // Exactly the limit is fine.
    let response = upload(&app.browser, "Docs", "edge.bin", random_bytes(1 << 20)).await;
    assert_redirects_to(&response, "/wiki/Docs/attachments");
    assert_eq!(rows(&app).await, [1, 4, 1, 1]);
}

async fn the_storage_quota_refuses_new_content_and_admin_shows_its_use(backend: Backend) {
    let options = Options { storage_quota: Some(1 << 20), ..Options::default() };
    let app = wiki_with_page(backend, options).await;
    let first = random_bytes(600 * 1024);
    assert_eq!(upload(&app.browser, "Docs", "a.bin", first.clone()).await.status(), StatusCode::SEE_OTHER);
    let response = upload(&app.browser, "Docs", "b.bin", random_bytes(600 * 1024)).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response.text().await.unwrap().contains("storage quota"));
    assert_eq!(rows(&app).await, [1, 3, 1, 1], "nothing of the refused upload");
    // The same content again takes no room.
    assert_eq!(upload(&app.browser, "Docs", "copy.bin", first).await.status(), StatusCode::SEE_OTHER);
    let (status, admin) = app.browser.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(admin.contains("600.0 KiB of 1.0 MiB"), "the quota's use: {admin}");
}

async fn an_aborted_upload_leaves_no_rows(backend: Backend) {
    use tokio::io::AsyncWriteExt;
    let app = wiki_with_page(backend, Options::default()).await;
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    let cookies = app.browser.cookies();
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let boundary = "quireboundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--{boundary}\r\n\
         Content-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let request = format!(
        "POST /wiki/Docs/attachments HTTP/1.1\r\nHost: {address}\r\nCookie: {cookies}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{head}",
        head.len() + 4 * 1024 * 1024
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    // A megabyte and a half (several chunks written), then the client goes away.
    stream.write_all(&random_bytes(1536 * 1024)).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(stream);
    let mut waited = 0;
    while rows(&app).await != [0, 0, 0, 0] && waited < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(rows(&app).await, [0, 0, 0, 0], "the upload's transaction was rolled back");
    // The wiki still takes uploads.
    assert_eq!(upload(&app.browser, "Docs", "ok.txt", b"ok".to_vec()).await.status(), StatusCode::SEE_OTHER);
}

async fn uploads_need_a_valid_token_wherever_it_comes_in_the_form(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let url = app.browser.url("/wiki/Docs/attachments");
    let part = || reqwest::multipart::Part::bytes(b"content".to_vec()).file_name("x.txt");
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    for form in [
        reqwest::multipart::Form::new().part("file", part()),
        reqwest::multipart::Form::new().text("csrf_token", "forged").part("file", part()),
        reqwest::multipart::Form::new().part("file", part()).text("csrf_token", "forged"),
    ] {
        let response = app.browser.client.post(&url).multipart(form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.text().await.unwrap().contains("Form expired"));
    }
    assert_eq!(rows(&app).await, [0, 0, 0, 0]);
    // The token after the file works too.
    let form = reqwest::multipart::Form::new().part("file", part()).text("csrf_token", token);
    let response = app.browser.client.post(&url).multipart(form).send().await.unwrap();
    assert_redirects_to(&response, "/wiki/Docs/attachments");
    // No file at all: said so.
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    let form = reqwest::multipart::Form::new().text("csrf_token", token);
    let response = app.browser.client.post(&url).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("No file was sent"));
    assert_eq!(rows(&app).await, [1, 1, 1, 1]);
}

async fn names_are_normalised_and_any_script_works(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    upload(&app.browser, "Docs", "../../etc/..passwd", b"one".to_vec()).await;
    upload(&app.browser, "Docs", "Ölçü — 東京 план.txt", b"two".to_vec()).await;
    let (_, list) = app.browser.get_text("/wiki/Docs/attachments").await;
    assert!(list.contains(">passwd</a>"), "path and leading dots dropped: {list}");
    assert!(list.contains(">Ölçü — 東京 план.txt</a>"), "{list}");
    assert_eq!(app.browser.get("/wiki/Docs/attachments/passwd").await.bytes().await.unwrap(), &b"one"[..]);
    let response = app.browser.get(&file_url("Docs", "Ölçü — 東京 план.txt")).await;
    assert!(header(&response, CONTENT_DISPOSITION).contains("filename*=UTF-8''"));
    assert_eq!(response.bytes().await.unwrap(), &b"two"[..]);
    let response = upload(&app.browser, "Docs", "...", b"three".to_vec()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("has no name"));
    assert_eq!(rows(&app).await[2], 2, "the nameless file was not stored");
    let (status, _) = app.browser.get_text("/wiki/Docs/attachments/nothing.txt").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn readers_download_visitors_log_in_and_only_editors_upload(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    upload(&app.browser, "Docs", "a.txt", b"shared".to_vec()).await;
    let reader = app.new_browser();
    reader.register("rita", PASSWORD).await;
    reader.login("rita", PASSWORD).await;
    set_role(&app.browser, "rita", "reader").await;
    assert_eq!(reader.get("/wiki/Docs/attachments/a.txt").await.bytes().await.unwrap(), &b"shared"[..]);
    let (_, list) = reader.get_text("/wiki/Docs/attachments").await;
    assert!(!list.contains("multipart/form-data"), "no upload form for a reader");
    let response = upload(&reader, "Docs", "b.txt", b"no".to_vec()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let token = reader.csrf("/wiki/Docs/attachments").await;
    let response = reader.post_form("/wiki/Docs/attachments/a.txt/delete", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let visitor = app.new_browser();
    assert_eq!(visitor.get("/wiki/Docs/attachments/a.txt").await.bytes().await.unwrap(), &b"shared"[..]);
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("v.txt"));
    let response =
        visitor.client.post(visitor.url("/wiki/Docs/attachments")).multipart(form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(response.headers()).starts_with("/login"));
    assert_eq!(rows(&app).await[2], 1, "only the editor's file");
    // A page that does not exist has no files.
    assert_eq!(visitor.get("/wiki/Nowhere/attachments/a.txt").await.status(), StatusCode::NOT_FOUND);

    set_setting(&app.browser, "read_access", "members").await;
    let response = visitor.get("/wiki/Docs/attachments/a.txt").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "members only: the way to log in");
    assert!(location(response.headers()).starts_with("/login?next="));
    assert!(!response.text().await.unwrap().contains("shared"), "never the file");
    assert_eq!(reader.get("/wiki/Docs/attachments/a.txt").await.bytes().await.unwrap(), &b"shared"[..]);
}

async fn deleting_hides_a_file_admins_restore_it_and_pages_carry_their_files(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    upload(&app.browser, "Docs", "a.txt", b"v1".to_vec()).await;
    upload(&app.browser, "Docs", "a.txt", b"v2".to_vec()).await;
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    let response =
        app.browser.post_form("/wiki/Docs/attachments/a.txt/delete", &[("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/wiki/Docs/attachments");
    assert_eq!(app.browser.get("/wiki/Docs/attachments/a.txt").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.browser.get("/wiki/Docs/attachments/a.txt?version=1").await.status(),
        StatusCode::NOT_FOUND
    );
    let visitor = app.new_browser();
    let (_, list) = visitor.get_text("/wiki/Docs/attachments").await;
    assert!(!list.contains("a.txt"), "hidden from the list: {list}");
    let (_, list) = app.browser.get_text("/wiki/Docs/attachments").await;
    assert!(list.contains("Deleted files") && list.contains("/wiki/Docs/attachments/a.txt/restore"));
    let response =
        app.browser.post_form("/wiki/Docs/attachments/a.txt/restore", &[("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/wiki/Docs/attachments");
    assert_eq!(app.browser.get("/wiki/Docs/attachments/a.txt").await.bytes().await.unwrap(), &b"v2"[..]);
    assert_eq!(
        app.browser.get("/wiki/Docs/attachments/a.txt?version=1").await.bytes().await.unwrap(),
        &b"v1"[..]
    );

    // Renamed: the files go along, and the old address leads to them.
    let response =
        app.browser.post_form("/wiki/Docs/rename", &[("new_title", "Manual"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.browser.get("/wiki/Manual/attachments/a.txt").await.bytes().await.unwrap(), &b"v2"[..]);
    let response = app.browser.get("/wiki/Docs/attachments/a.txt").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(response.headers()), "/wiki/Manual/attachments/a.txt");

    // Deleted with the page, back with it.
    let response =
        app.browser.post_form("/wiki/Manual/delete", &[("confirm", "yes"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/wiki/Manual/attachments/a.txt").await.status(), StatusCode::NOT_FOUND);
    let response = app.browser.post_form("/wiki/Manual/restore", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(visitor.get("/wiki/Manual/attachments/a.txt").await.bytes().await.unwrap(), &b"v2"[..]);
}

async fn attachment_links_in_markdown_reach_files_and_missing_ones_are_marked(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    app.browser.create_page("Other page", "y").await;
    let source = "![A chart](attachment:chart.png)\n\n[The plan](attachment:plan.pdf)\n\n[Theirs](<attachment:Other page/data.csv>)\n\n![Big](attachment:big.png)";
    app.browser.create_page("Report", source).await;
    let (_, page) = app.new_browser().get_text("/wiki/Report").await;
    assert!(page.contains(r#"src="/wiki/Report/attachments/chart.png" class="missing-file""#), "{page}");
    assert!(page.contains(r#"href="/wiki/Report/attachments/plan.pdf" class="missing-file""#), "{page}");
    assert!(
        page.contains(r#"href="/wiki/Other%20page/attachments/data.csv" class="missing-file""#),
        "{page}"
    );
    upload(&app.browser, "Report", "chart.png", png(20, 10)).await;
    upload(&app.browser, "Report", "plan.pdf", b"%PDF-1.4\n%%EOF".to_vec()).await;
    upload(&app.browser, "Other page", "data.csv", b"a,b\n1,2\n".to_vec()).await;
    upload(&app.browser, "Report", "big.png", png(1200, 30)).await;
    // A visitor's kept page is not served stale after the uploads.
    let (_, page) = app.new_browser().get_text("/wiki/Report").await;
    assert!(!page.contains("missing-file"), "{page}");
    assert!(page.contains(r#"<img src="/wiki/Report/attachments/chart.png" alt="A chart""#), "{page}");
    assert!(page.contains(r#"href="/wiki/Report/attachments/plan.pdf""#), "{page}");
    assert!(page.contains(r#"href="/wiki/Other%20page/attachments/data.csv""#), "{page}");
    assert!(
        page.contains(r#"src="/wiki/Report/attachments/big.png?width=800""#),
        "a large image shows its preview: {page}"
    );
    let token = app.browser.csrf("/wiki/Report/attachments").await;
    app.browser.post_form("/wiki/Report/attachments/chart.png/delete", &[("csrf_token", &token)]).await;
    let (_, page) = app.new_browser().get_text("/wiki/Report").await;
    assert!(page.contains(r#"src="/wiki/Report/attachments/chart.png" class="missing-file""#), "{page}");
}

async fn previews_are_smaller_metadata_free_made_once_and_bombs_are_refused(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let original = png_with_metadata(1000, 500);
    assert!(original.windows(4).any(|w| w == b"tEXt"));
    upload(&app.browser, "Docs", "photo.png", original.clone()).await;
    let response = app.browser.get("/wiki/Docs/attachments/photo.png?width=400").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_TYPE), "image/png");
    let tag = header(&response, ETAG);
    let preview = response.bytes().await.unwrap();
    assert!(!preview.windows(4).any(|w| w == b"tEXt"), "no metadata");
    let decoded = image::load_from_memory(&preview).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (400, 200));
    let [blobs, ..] = rows(&app).await;
    let again = app.browser.get("/wiki/Docs/attachments/photo.png?width=400").await;
    assert_eq!(header(&again, ETAG), tag);
    assert_eq!(rows(&app).await[0], blobs, "made once and kept");
    // The original is still the original.
    assert_eq!(app.browser.get("/wiki/Docs/attachments/photo.png").await.bytes().await.unwrap(), original);
    let (status, text) = app.browser.get_text("/wiki/Docs/attachments/photo.png?width=300").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains("200, 400, 800 and 1600"), "{text}");
    // A small image is re-encoded at its own size.
    upload(&app.browser, "Docs", "small.png", png(50, 40)).await;
    let small = app.browser.get("/wiki/Docs/attachments/small.png?width=1600").await.bytes().await.unwrap();
    let decoded = image::load_from_memory(&small).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (50, 40));
    // A PNG whose header claims 100000×100000 pixels: stored as a download, never decoded whole.
    let mut bomb = png(1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let ihdr_crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&ihdr_crc.to_be_bytes());
    upload(&app.browser, "Docs", "bomb.png", bomb.clone()).await;
    let response = app.browser.get("/wiki/Docs/attachments/bomb.png").await;
    assert!(header(&response, CONTENT_DISPOSITION).starts_with("attachment;"), "not shown inline");
    let (status, text) = app.browser.get_text("/wiki/Docs/attachments/bomb.png?width=200").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains("no preview"), "{text}");
    let (status, _) = app.browser.get_text("/wiki/Docs/attachments/notes.txt?width=200").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn two_instances_over_one_database_serve_each_others_uploads(backend: Backend) {
    if backend == Backend::Sqlite {
        // One SQLite file is one machine's: the shared-database case is PostgreSQL's and MySQL's.
        return;
    }
    let first = wiki_with_page(backend, Options::default()).await;
    // Its own data dir: nothing shared but the database.
    let second = spawn_on_with(
        backend,
        std::sync::Arc::new(tempfile::tempdir().unwrap()),
        first.database.clone(),
        Options::default(),
    )
    .await;
    let bytes = random_bytes(700 * 1024);
    upload(&first.browser, "Docs", "shared.bin", bytes.clone()).await;
    let body = second.new_browser().get("/wiki/Docs/attachments/shared.bin").await.bytes().await.unwrap();
    assert_eq!(sha(&body), sha(&bytes));
    second.browser.login("ada", PASSWORD).await;
    let other = random_bytes(10_000);
    upload(&second.browser, "Docs", "back.bin", other.clone()).await;
    let body = first.new_browser().get("/wiki/Docs/attachments/back.bin").await.bytes().await.unwrap();
    assert_eq!(body, other);
}

async fn search_finds_a_page_by_the_name_of_its_file(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let (_, found) = app.browser.get_text("/search?q=armadillo").await;
    assert!(!found.contains("/wiki/Docs\""), "nothing yet: {found}");
    upload(&app.browser, "Docs", "armadillo-census.pdf", b"%PDF-1.4\n%%EOF".to_vec()).await;
    let (_, found) = app.browser.get_text("/search?q=armadillo").await;
    assert!(found.contains("/wiki/Docs"), "found by the file's name: {found}");
    // Still after the page is saved again, and gone once the file is deleted.
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    app.browser
        .post_form("/wiki/Docs/attachments/armadillo-census.pdf/delete", &[("csrf_token", &token)])
        .await;
    let (_, found) = app.browser.get_text("/search?q=armadillo").await;
    assert!(!found.contains("/wiki/Docs\""), "a deleted file finds nothing: {found}");
}

async fn the_editor_gets_the_stored_name_and_its_markdown_as_json(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    let token = app.browser.csrf("/wiki/Docs/edit").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("file", reqwest::multipart::Part::bytes(png(3, 3)).file_name(".my shot (1).png"));
    let response = app
        .browser
        .client
        .post(app.browser.url("/wiki/Docs/attachments"))
        .header(reqwest::header::ACCEPT, "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, CONTENT_TYPE), "application/json");
    let answer: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["name"], "my shot (1).png");
    assert_eq!(answer["version"], 1);
    assert_eq!(answer["markdown"], "![my shot (1)](attachment:my%20shot%20%281%29.png)");
    let (_, editor) = app.browser.get_text("/wiki/Docs/edit").await;
    assert!(
        editor.contains(r#"data-attachments="/wiki/Docs/attachments""#),
        "the editor knows where to upload"
    );
    // The Markdown it inserts shows the image.
    let token = app.browser.csrf("/wiki/Docs/edit").await;
    let (_, page) = app.browser.get_text("/wiki/Docs/edit").await;
    let base =
        page.split("name=\"base_revision\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let markdown = answer["markdown"].as_str().unwrap();
    let response = app
        .browser
        .post_form(
            "/wiki/Docs/edit",
            &[("content", markdown), ("base_revision", &base), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.browser.get_text("/wiki/Docs").await;
    assert!(page.contains(r#"src="/wiki/Docs/attachments/my%20shot%20%281%29.png""#), "{page}");
}

async fn recent_changes_and_the_page_history_list_uploads_and_deletions(backend: Backend) {
    let app = wiki_with_page(backend, Options::default()).await;
    upload(&app.browser, "Docs", "diagram.png", png(4, 4)).await;
    upload(&app.browser, "Docs", "diagram.png", png(5, 5)).await;
    let token = app.browser.csrf("/wiki/Docs/attachments").await;
    app.browser.post_form("/wiki/Docs/attachments/diagram.png/delete", &[("csrf_token", &token)]).await;
    let (status, recent) = app.new_browser().get_text("/recent").await;
    assert_eq!(status, StatusCode::OK);
    assert!(recent.contains("file uploaded") && recent.contains("file deleted"), "{recent}");
    assert!(recent.contains("diagram.png"), "{recent}");
    let (status, feed) = app.new_browser().get_text("/recent.atom").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        feed.contains("File “diagram.png” uploaded") && feed.contains("File “diagram.png” deleted"),
        "{feed}"
    );
    let (_, history) = app.browser.get_text("/wiki/Docs/history").await;
    let files = history.split("id=\"files\"").nth(1).expect("a Files section");
    assert!(
        files.contains("uploaded</span> (version 2)") && files.contains("uploaded</span> (version 1)"),
        "{files}"
    );
    assert!(files.contains("deleted</span>"), "{files}");
    assert!(!files.contains("?version="), "a deleted file's versions are not linked: {files}");
    app.browser.post_form("/wiki/Docs/attachments/diagram.png/restore", &[("csrf_token", &token)]).await;
    let (_, history) = app.browser.get_text("/wiki/Docs/history").await;
    assert!(history.contains("restored</span>") && history.contains("diagram.png?version=1"), "{history}");
}

crate::tests!(
    recent_changes_and_the_page_history_list_uploads_and_deletions,
    search_finds_a_page_by_the_name_of_its_file,
    the_editor_gets_the_stored_name_and_its_markdown_as_json,
    random_files_of_every_size_come_back_byte_for_byte,
    identical_content_is_stored_once,
    a_name_uploaded_again_gets_a_version_and_old_ones_stay_reachable,
    ranges_give_206_and_an_unsatisfiable_one_416,
    a_known_entity_tag_gets_304,
    dangerous_types_are_downloads_in_a_sandbox_and_images_show_inline,
    a_file_over_the_limit_gets_413_and_nothing_is_stored,
    the_storage_quota_refuses_new_content_and_admin_shows_its_use,
    an_aborted_upload_leaves_no_rows,
    uploads_need_a_valid_token_wherever_it_comes_in_the_form,
    names_are_normalised_and_any_script_works,
    readers_download_visitors_log_in_and_only_editors_upload,
    deleting_hides_a_file_admins_restore_it_and_pages_carry_their_files,
    attachment_links_in_markdown_reach_files_and_missing_ones_are_marked,
    previews_are_smaller_metadata_free_made_once_and_bombs_are_refused,
    two_instances_over_one_database_serve_each_others_uploads,
);

//! Cross-cutting security: headers on every response, styled errors, UTF-8 and size limits,
//! injection in names and titles, XSS in page content, and the session cookie's attributes.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, HeaderMap, SET_COOKIE};

use crate::helpers::*;

// ----- helpers ----------------------------------------------------------------------------

/// The escaping of the templates (askama): what a title looks like in a page.
fn escape_html(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Undoes HTML escaping (named and numeric references of the characters escaped on output).
fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&end| end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The links of the index: (href as printed, text as printed).
fn index_links(html: &str) -> Vec<(String, String)> {
    let list = html.split(r#"<ul class="page-list">"#).nth(1).unwrap_or_default();
    let list = &list[..list.find("</ul>").unwrap_or(list.len())];
    list.split("<li><a href=\"")
        .skip(1)
        .filter_map(|item| {
            let href = &item[..item.find('"')?];
            let text = &item[item.find('>')? + 1..item.find("</a>")?];
            Some((href.to_owned(), text.to_owned()))
        })
        .collect()
}

/// The href the index prints for a title, html-unescaped, ready to follow.
fn href_of(index: &str, title: &str) -> String {
    let shown = escape_html(title);
    index_links(index)
        .into_iter()
        .find(|(_, text)| *text == shown || unescape_html(text) == title)
        .map(|(href, _)| unescape_html(&href))
        .unwrap_or_else(|| panic!("the index links {title:?} (as {shown:?})"))
}

/// Every header a response must carry, whatever it is.
#[track_caller]
fn assert_security_headers(what: &str, headers: &HeaderMap) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no content-security-policy"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    let directives: Vec<&str> = csp.split(';').map(str::trim).filter(|d| !d.is_empty()).collect();
    assert!(
        directives.iter().any(|d| d.starts_with("script-src ") || d.starts_with("default-src ")),
        "{what}: scripts are governed by the policy: {csp}"
    );
    for directive in &directives {
        let name = directive.split_whitespace().next().unwrap_or_default();
        if name.starts_with("script-src") || name == "default-src" {
            assert!(!directive.contains("'unsafe-inline'"), "{what}: {directive}");
            assert!(!directive.contains("'unsafe-eval'"), "{what}: {directive}");
        }
    }
    assert_eq!(
        headers.get("x-content-type-options").map(|v| v.to_str().unwrap()),
        Some("nosniff"),
        "{what}: x-content-type-options"
    );
    let referrer = headers.get("referrer-policy").map(|v| v.to_str().unwrap().to_owned());
    assert!(
        matches!(referrer.as_deref(), Some("same-origin" | "no-referrer")),
        "{what}: referrer-policy {referrer:?}"
    );
}

/// The Set-Cookie header of `name` in a response, if any.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The attributes of a Set-Cookie header, lowercased (`httponly`, `samesite=lax`, …).
fn cookie_attributes(header: &str) -> Vec<String> {
    header.split(';').skip(1).map(|a| a.trim().to_ascii_lowercase()).collect()
}

fn username_of(app_user: Option<quire::models::user::Model>) -> Option<String> {
    app_user.map(|user| user.username)
}

// ----- headers ----------------------------------------------------------------------------

async fn every_response_carries_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.new_browser();
    for path in ["/", "/login", "/register", "/no/such/route", "/wiki/Nothing%20here"] {
        let response = visitor.get(path).await;
        assert_security_headers(&format!("GET {path} ({})", response.status()), response.headers());
    }

    // A static asset, found where the layout links it.
    let (_, home) = visitor.get_text("/").await;
    let at = home.find(r#"<link rel="stylesheet" href=""#).expect("the layout links a stylesheet");
    let rest = &home[at + r#"<link rel="stylesheet" href=""#.len()..];
    let stylesheet = &rest[..rest.find('"').unwrap()];
    let response = visitor.get(stylesheet).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {stylesheet}");
    assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    assert_security_headers(&format!("GET {stylesheet}"), response.headers());

    // A redirect.
    let response = visitor.get("/profile").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_security_headers("the redirect of GET /profile", response.headers());

    // A CSRF refusal.
    let response = visitor.post_form("/register", &[("username", "x"), ("password", PASSWORD)]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_security_headers("a CSRF refusal", response.headers());

    // A 413.
    let token = visitor.csrf("/register").await;
    let big = "x".repeat(quire::app::FORM_BODY_LIMIT + 1);
    let response = visitor.post_form("/register", &[("username", &big), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers("a 413", response.headers());

    // A 400.
    let response = visitor.get("/wiki/%FF").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_security_headers("a 400", response.headers());

    // An avatar, and the upload's redirect.
    app.member("headers").await;
    let response = app.browser.upload_avatar("me.png", crate::profile::png(8, 8)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_security_headers("the upload's redirect", response.headers());
    let (_, profile) = app.browser.get_text("/profile").await;
    let at = profile.find(r#"src="/avatars/"#).expect("the profile shows the avatar");
    let rest = &profile[at + r#"src=""#.len()..];
    let avatar = &rest[..rest.find('"').unwrap()];
    let response = app.browser.get(avatar).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&format!("GET {avatar}"), response.headers());
    // And a refused upload.
    let response = app.browser.upload_avatar("x.svg", b"<svg/>".to_vec()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_security_headers("a refused upload", response.headers());
}

async fn an_unknown_route_is_a_styled_404_page(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/no/such/route", "/administrator", "/static/missing.css", "/wiki/a/b/c"] {
        let response = app.browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "GET {path}");
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "GET {path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("<html"), "GET {path}: the layout: {page}");
        assert!(page.contains("Page Not Found"), "GET {path}: {page}");
        assert!(page.contains(r#"<link rel="stylesheet""#), "GET {path}: styled");
    }
}

// ----- UTF-8 and sizes --------------------------------------------------------------------

async fn invalid_utf8_in_a_form_body_is_a_400_and_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.browser.csrf("/register").await;
    let password = "correct+horse+battery+staple";
    let bodies: [Vec<u8>; 2] = [
        format!("username=%FF%FE&password={password}&confirm_password={password}&csrf_token={token}")
            .into_bytes(),
        [
            b"username=".as_slice(),
            b"\xff\xfe",
            format!("&password={password}&confirm_password={password}&csrf_token={token}").as_bytes(),
        ]
        .concat(),
    ];
    for body in bodies {
        let response = app
            .browser
            .client
            .post(app.browser.url("/register"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let stored: Vec<String> = quire::models::user::list(&app.state.db.read)
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}: members now {stored:?}",
            String::from_utf8_lossy(&body)
        );
        assert!(stored.is_empty(), "{}: members now {stored:?}", String::from_utf8_lossy(&body));
    }
}

async fn invalid_utf8_in_a_path_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in ["/wiki/%FF", "/wiki/%C3%28", "/wiki/abc%FE%FF"] {
        let (status, page) = app.browser.get_text(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "GET {path}");
        assert!(page.contains("<html"), "GET {path}: a styled page");
    }
}

async fn a_form_body_over_the_wire_limit_is_refused_with_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let big = "u".repeat(quire::app::FORM_BODY_LIMIT + 1024);
    let token = app.browser.csrf("/register").await;
    let response = app
        .browser
        .post_form(
            "/register",
            &[
                ("username", &big),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.user_count().await, 0);

    app.member("writer").await;
    let token = app.browser.csrf("/create").await;
    let response = app
        .browser
        .post_form("/create", &[("title", "Huge"), ("content", &big), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.page_count().await, 0);
}

async fn fields_over_their_limits_are_refused_with_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let visitor = app.new_browser();
    let long_name = "n".repeat(51);
    let response = visitor.register(&long_name, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("at most 50"));
    assert_eq!(app.user_count().await, 0);

    app.member("limits").await;
    let response = app.browser.create_page(&"t".repeat(101), "content").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("at most 100"));
    assert_eq!(app.page_count().await, 0);

    let content = "c".repeat(1024 * 1024 + 1);
    let response = app.browser.create_page("Big content", &content).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("1 MiB"));
    assert_eq!(app.page_count().await, 0);
    assert_eq!(app.user_count().await, 1);
}

// ----- injection --------------------------------------------------------------------------

const SQL_INJECTIONS: [&str; 5] = [
    "' OR '1'='1",
    "\"; DROP TABLE users; --",
    "Robert'); DROP TABLE pages;--",
    "admin'--",
    "1; DELETE FROM sessions",
];

async fn sql_injection_strings_are_just_usernames(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, name) in SQL_INJECTIONS.into_iter().enumerate() {
        let browser = app.new_browser();
        assert_redirects_to(&browser.register(name, PASSWORD).await, "/login");
        assert_eq!(app.user_count().await, i as u64 + 1, "{name}: one more member, the tables are there");
        let stored = quire::models::user::find_by_username(&app.state.db.read, name).await.unwrap();
        assert_eq!(username_of(stored).as_deref(), Some(name));

        // Only the literal name logs in.
        let near = format!("{name}x");
        assert_eq!(browser.login(&near, PASSWORD).await.status(), StatusCode::UNAUTHORIZED, "{near}");
        assert_eq!(browser.login("' OR 1=1 --", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(browser.login(name, "wrong password").await.status(), StatusCode::UNAUTHORIZED, "{name}");
        assert!(!browser.is_logged_in().await);
        assert_redirects_to(&browser.login(name, PASSWORD).await, "/");
        let (status, profile) = browser.get_text("/profile").await;
        assert_eq!(status, StatusCode::OK);
        assert!(profile.contains(&format!("Welcome, {}", escape_html(name))), "{name}: {profile}");
    }
    assert_eq!(app.user_count().await, SQL_INJECTIONS.len() as u64);
}

async fn sql_injection_strings_are_just_titles(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("bobby").await;
    for (i, title) in SQL_INJECTIONS.into_iter().enumerate() {
        let response = app.browser.create_page(title, &format!("body of {title}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{title}");
        assert_eq!(app.page_count().await, i as u64 + 1, "{title}: the tables are there");
    }
    let (status, index) = app.new_browser().get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(index_links(&index).len(), SQL_INJECTIONS.len());
    for title in SQL_INJECTIONS {
        let href = href_of(&index, title);
        let (status, page) = app.new_browser().get_text(&href).await;
        assert_eq!(status, StatusCode::OK, "{title} at {href}");
        assert!(
            page.contains(&format!(r#"<h1 class="page-title">{}</h1>"#, escape_html(title))),
            "{title}: {page}"
        );
        assert!(
            page.contains(&format!("body of {}", escape_html(title)))
                || page.contains(&format!("body of {title}"))
        );
    }
    assert_eq!(app.user_count().await, 1);
    assert!(app.browser.is_logged_in().await, "the sessions table is there too");
}

/// Creates the titles, then follows the link the index prints for each.
async fn assert_titles_route_back(app: &TestApp, titles: &[&str]) {
    for title in titles {
        let response = app.browser.create_page(title, &format!("text for {title}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{title:?}");
    }
    let (_, index) = app.new_browser().get_text("/").await;
    assert!(!index.contains("<script>alert(1)</script>"), "titles are escaped in the index");
    for title in titles {
        let href = href_of(&index, title);
        assert!(href.starts_with("/wiki/"), "{title:?}: {href}");
        let response = app.new_browser().get(&href).await;
        let (status, final_url) = (response.status(), response.url().path().to_owned());
        let page = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{title:?} at {href} (requested as {final_url})");
        assert!(
            page.contains(&format!(r#"<h1 class="page-title">{}</h1>"#, escape_html(title))),
            "{title:?} at {href} (requested as {final_url}) shows its title"
        );
        assert!(!page.contains("<script>alert(1)</script>"), "{title:?}: never unescaped");
    }
}

async fn titles_with_reserved_characters_route_back_from_their_index_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("titler").await;
    assert_titles_route_back(
        &app,
        &[
            "a/b",
            "What?",
            "C# notes",
            "100% sure",
            "1+1=2",
            "with  spaces inside",
            "?query=1&x=2#frag",
            "%2F is not a slash",
            "a%20b",
            "日本語のページ",
            "Ελληνικά 🚀",
            "<script>alert(1)</script>",
            "\"quoted\" & 'single'",
            "../etc/passwd",
            "./here",
            "a/../b",
            "...",
            "back\\slash",
        ],
    )
    .await;
}

/// `.` and `..` are dot-segments for every WHATWG URL client (browsers included), even when
/// written `%2E` / `%2E%2E`, so no link could reach such a page: they are refused with a message.
async fn titles_made_only_of_dots_are_refused_with_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("dotty").await;
    for title in ["..", ".", " .. ", "\u{a0}.\u{a0}"] {
        let response = app.browser.create_page(title, "dots").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{title:?}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Title cannot be just"), "{title:?}: {page}");
    }
    assert_eq!(app.page_count().await, 0);
    // More dots, or dots with anything else, are ordinary titles.
    assert_titles_route_back(&app, &["...", ".hidden", "v1.2.", "../x"]).await;
}

// ----- XSS in content ---------------------------------------------------------------------

/// A start tag of the rendered content: its name and attributes (lowercased names, raw values).
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

/// A small scanner of serialized HTML start tags (the sanitizer's output is well-formed).
fn start_tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        i += 1;
        if html[i..].starts_with("!--") {
            i = html[i..].find("-->").map_or(b.len(), |end| i + end + 3);
            continue;
        }
        if matches!(b.get(i), Some(b'!' | b'?' | b'/')) {
            i = html[i..].find('>').map_or(b.len(), |end| i + end + 1);
            continue;
        }
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let start = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/') {
                i += 1;
            }
            let attr = html[start..i].to_ascii_lowercase();
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if b.get(i) == Some(&b'=') {
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                match b.get(i) {
                    Some(&quote @ (b'"' | b'\'')) => {
                        i += 1;
                        let start = i;
                        while i < b.len() && b[i] != quote {
                            i += 1;
                        }
                        value = html[start..i.min(b.len())].to_owned();
                        i += 1;
                    }
                    _ => {
                        let start = i;
                        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                            i += 1;
                        }
                        value = html[start..i].to_owned();
                    }
                }
            }
            attrs.push((attr, value));
        }
        tags.push(Tag { name, attrs });
    }
    tags
}

const FORBIDDEN_TAGS: [&str; 18] = [
    "script",
    "style",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "meta",
    "base",
    "link",
    "form",
    "svg",
    "template",
    "noscript",
    "annotation-xml",
    "maction",
    "mglyph",
];
/// MathML (what `$…$` renders to) may carry presentational attributes only.
const MATHML_ATTRIBUTES: [&str; 19] = [
    "display",
    "stretchy",
    "symmetric",
    "largeop",
    "movablelimits",
    "maxsize",
    "form",
    "fence",
    "separator",
    "lspace",
    "rspace",
    "mathvariant",
    "width",
    "height",
    "depth",
    "linethickness",
    "displaystyle",
    "scriptlevel",
    "encoding",
];
const MATHML_TAGS: [&str; 25] = [
    "math",
    "semantics",
    "annotation",
    "mrow",
    "mi",
    "mn",
    "mo",
    "mtext",
    "mspace",
    "msub",
    "msup",
    "msubsup",
    "munder",
    "mover",
    "munderover",
    "mfrac",
    "msqrt",
    "mroot",
    "mtable",
    "mtr",
    "mtd",
    "merror",
    "mstyle",
    "mpadded",
    "mphantom",
];
const URL_ATTRIBUTES: [&str; 16] = [
    "href",
    "src",
    "xlink:href",
    "action",
    "formaction",
    "data",
    "background",
    "poster",
    "srcset",
    "cite",
    "lowsrc",
    "dynsrc",
    "codebase",
    "longdesc",
    "usemap",
    "values",
];

/// Everything in sanitized content that could run script; empty when the content is safe.
fn dangers(content: &str) -> Vec<String> {
    let mut found = Vec::new();
    let lower = content.to_lowercase();
    for opening in ["<script", "<iframe", "<object", "<embed", "<style", "<svg", "<meta", "<base", "<link"] {
        if lower.contains(opening) {
            found.push(format!("the markup {opening}"));
        }
    }
    for tag in start_tags(content) {
        if FORBIDDEN_TAGS.contains(&tag.name.as_str()) {
            found.push(format!("a <{}> element", tag.name));
        }
        if MATHML_TAGS.contains(&tag.name.as_str()) {
            for (attr, _) in &tag.attrs {
                if !MATHML_ATTRIBUTES.contains(&attr.as_str()) {
                    found.push(format!("a {attr}= attribute on the MathML <{}>", tag.name));
                }
            }
        }
        for (attr, value) in &tag.attrs {
            if attr.starts_with("on") {
                found.push(format!("an event handler {attr}= on <{}>", tag.name));
            }
            if matches!(attr.as_str(), "style" | "srcdoc" | "formaction" | "http-equiv") {
                found.push(format!("a {attr}= attribute on <{}>", tag.name));
            }
            let normalized: String = unescape_html(value)
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_lowercase();
            if URL_ATTRIBUTES.contains(&attr.as_str()) {
                for scheme in ["javascript:", "vbscript:", "livescript:", "data:"] {
                    if normalized.starts_with(scheme) {
                        found.push(format!("a {scheme} URL in {attr}= on <{}>", tag.name));
                    }
                }
            }
            if attr != "title"
                && attr != "alt"
                && (normalized.contains("javascript:") || normalized.contains("vbscript:"))
            {
                found.push(format!("script in {attr}={value:?} on <{}>", tag.name));
            }
        }
    }
    found
}

/// The rendered content of a wiki page.
fn content_div(page: &str) -> &str {
    let start = page.find(r#"<div class="page-content">"#).expect("the page has a content div");
    let rest = &page[start + r#"<div class="page-content">"#.len()..];
    &rest[..rest.find("</article>").expect("the content div ends before </article>")]
}

async fn no_payload_of_the_xss_corpus_survives_rendering(backend: Backend) {
    let app = spawn_app(backend).await;
    let corpus =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xss_corpus.txt"))
            .expect("the XSS corpus");
    let payloads: Vec<&str> =
        corpus.lines().filter(|line| !line.starts_with('#') && !line.trim().is_empty()).collect();
    assert!(payloads.len() > 250, "the whole corpus is read: {}", payloads.len());
    assert!(!dangers(r#"<p><img src="x" onerror="alert(1)"></p>"#).is_empty(), "the scanner sees handlers");
    assert!(!dangers(r#"<a href="&#106;avascript:alert(1)">x</a>"#).is_empty(), "the scanner sees schemes");
    assert!(
        dangers(r#"<p title="&lt;img src=x onerror=alert(1)&gt;">x</p>"#).is_empty(),
        "values are not attributes"
    );

    app.member("xss").await;
    let token = app.browser.csrf("/create").await;
    let mut failures = Vec::new();
    for (n, payload) in payloads.iter().enumerate() {
        let title = format!("xss {n}");
        let response = app
            .browser
            .post_form("/create", &[("title", &title), ("content", payload), ("csrf_token", &token)])
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{title}: {payload}");
        let (status, page) = app.browser.get_text(&location(response.headers())).await;
        assert_eq!(status, StatusCode::OK, "{title}");
        let content = content_div(&page);
        let found = dangers(content);
        if !found.is_empty() {
            failures.push(format!("{title}: {payload}\n  -> {found:?}\n  rendered: {}", content.trim()));
        }
    }
    assert!(failures.is_empty(), "{} payloads survive:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(app.page_count().await, payloads.len() as u64);
}

/// The sanitizer allows `<input>` for task lists only (`type` values: `checkbox`); any other
/// input (a text box, a submit button, an image button) in a page is UI spoofing.
async fn inputs_in_content_are_only_task_list_checkboxes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("inputs").await;
    let content = "- [x] done\n- [ ] todo\n\n<input type=\"text\" value=\"Password\">\n\n<input type=submit>\n\n<input type=\"image\">\n\n<input>\n";
    assert_eq!(app.browser.create_page("Inputs", content).await.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.browser.get_text("/wiki/Inputs").await;
    let inputs: Vec<Tag> =
        start_tags(content_div(&page)).into_iter().filter(|tag| tag.name == "input").collect();
    assert!(inputs.len() >= 2, "the task list keeps its checkboxes: {page}");
    for input in &inputs {
        let kind = input.attrs.iter().find(|(name, _)| name == "type").map(|(_, v)| v.to_ascii_lowercase());
        assert_eq!(kind.as_deref(), Some("checkbox"), "an input that is not a checkbox: {:?}", input.attrs);
    }
}

// ----- the session cookie -----------------------------------------------------------------

async fn the_session_cookie_is_http_only_and_lax_but_not_secure_over_http(backend: Backend) {
    let app = spawn_app(backend).await;
    let register_form = app.browser.get("/register").await;
    let visitor_cookie =
        set_cookie(register_form.headers(), "quire_csrf").expect("a visitor gets a CSRF cookie");
    app.browser.register("cookie", PASSWORD).await;
    let response = app.browser.login("cookie", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(response.headers(), "quire_session").expect("login sets the session cookie");
    for header in [&session, &visitor_cookie] {
        let attrs = cookie_attributes(header);
        assert!(attrs.iter().any(|a| a == "httponly"), "{header}");
        assert!(attrs.iter().any(|a| a == "samesite=lax"), "{header}");
        assert!(!attrs.iter().any(|a| a == "secure"), "{header}: no Secure without an https public URL");
        assert!(attrs.iter().any(|a| a == "path=/"), "{header}");
    }
    for header in response.headers().get_all(SET_COOKIE) {
        let header = header.to_str().unwrap();
        assert!(cookie_attributes(header).iter().any(|a| a == "httponly"), "{header}");
    }
}

async fn the_session_cookie_is_secure_behind_an_https_public_url(backend: Backend) {
    let app = spawn_with(
        backend,
        Options { public_url: Some("https://wiki.example".into()), ..Options::default() },
    )
    .await;
    // Secure cookies are not sent back over plain http by a cookie jar: carry them by hand.
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |path: &str| format!("{}{path}", app.address);
    let response = client.get(url("/register")).send().await.unwrap();
    let visitor = set_cookie(response.headers(), "__Host-quire_csrf").expect("a visitor gets a CSRF cookie");
    assert!(cookie_attributes(&visitor).iter().any(|a| a == "secure"), "{visitor}");
    let visitor_pair = visitor.split(';').next().unwrap().to_owned();
    let token = csrf_in(&response.text().await.unwrap()).expect("the register form has a token");

    let form = [
        ("username", "secure"),
        ("password", PASSWORD),
        ("confirm_password", PASSWORD),
        ("csrf_token", &token),
    ];
    let response =
        client.post(url("/register")).header(COOKIE, &visitor_pair).form(&form).send().await.unwrap();
    assert_redirects_to(&response, "/login");
    if let Some(flash) = set_cookie(response.headers(), "__Host-quire_flash") {
        assert!(cookie_attributes(&flash).iter().any(|a| a == "secure"), "{flash}");
    }

    let form = [("username", "secure"), ("password", PASSWORD), ("csrf_token", &token)];
    let response = client.post(url("/login")).header(COOKIE, &visitor_pair).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "login over the proxied http");
    let session =
        set_cookie(response.headers(), "__Host-quire_session").expect("login sets the session cookie");
    let attrs = cookie_attributes(&session);
    assert!(attrs.iter().any(|a| a == "secure"), "{session}");
    assert!(attrs.iter().any(|a| a == "httponly"), "{session}");
    assert!(attrs.iter().any(|a| a == "samesite=lax"), "{session}");
    for header in response.headers().get_all(SET_COOKIE) {
        let header = header.to_str().unwrap();
        assert!(cookie_attributes(header).iter().any(|a| a == "secure"), "{header}");
    }
}

crate::tests![
    every_response_carries_the_security_headers,
    an_unknown_route_is_a_styled_404_page,
    invalid_utf8_in_a_form_body_is_a_400_and_stores_nothing,
    invalid_utf8_in_a_path_is_a_400,
    a_form_body_over_the_wire_limit_is_refused_with_413,
    fields_over_their_limits_are_refused_with_a_message,
    sql_injection_strings_are_just_usernames,
    sql_injection_strings_are_just_titles,
    titles_with_reserved_characters_route_back_from_their_index_link,
    titles_made_only_of_dots_are_refused_with_a_message,
    no_payload_of_the_xss_corpus_survives_rendering,
    inputs_in_content_are_only_task_list_checkboxes,
    the_session_cookie_is_http_only_and_lax_but_not_secure_over_http,
    the_session_cookie_is_secure_behind_an_https_public_url,
];

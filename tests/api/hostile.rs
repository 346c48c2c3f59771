//! Hostile input in every field: XSS filter-evasion vectors as titles, usernames, summaries and
//! search queries; SQL-injection strings; traversal in path parameters. Each must come back
//! escaped or refused with a 4xx — never a 5xx, never markup that runs.

use reqwest::StatusCode;

use crate::helpers::*;

/// A sample of the corpus that fits the short fields (titles ≤ 100, usernames ≤ 50).
fn vectors(max_chars: usize) -> Vec<String> {
    include_str!("../fixtures/xss_corpus.txt")
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(str::trim)
        .filter(|line| line.chars().count() <= max_chars && line.contains('<'))
        .take(40)
        .map(str::to_owned)
        .collect()
}

const SQL: &[&str] =
    &["' OR '1'='1", "\"; DROP TABLE pages; --", "1; SELECT * FROM users", "') OR 1=1 --", "%' --"];

/// True when the page contains the vector as live markup (its `<` not escaped).
fn carries(body: &str, vector: &str) -> bool {
    body.contains(vector)
}

async fn xss_vectors_as_titles_are_escaped_everywhere_they_appear(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("titler").await;
    for vector in vectors(100) {
        let response = app.browser.create_page(&vector, "body").await;
        let status = response.status();
        assert!(status == StatusCode::SEE_OTHER || status.is_client_error(), "{vector}: {status}");
        if status != StatusCode::SEE_OTHER {
            continue;
        }
        let href = location(response.headers());
        for path in [
            href.clone(),
            format!("{href}/history"),
            "/".to_owned(),
            "/recent".to_owned(),
            "/profile".to_owned(),
        ] {
            let (status, body) = app.browser.get_text(&path).await;
            assert!(status.is_success(), "{path}: {status}");
            assert!(!carries(&body, &vector), "{vector} unescaped on {path}");
        }
    }
}

async fn xss_vectors_as_usernames_are_escaped(backend: Backend) {
    let app = spawn_app(backend).await;
    for vector in vectors(50).into_iter().take(10) {
        let browser = app.new_browser();
        let response = browser.register(&vector, PASSWORD).await;
        let status = response.status();
        assert!(status == StatusCode::SEE_OTHER || status.is_client_error(), "{vector}: {status}");
        if status != StatusCode::SEE_OTHER {
            continue;
        }
        assert_redirects_to(&browser.login(&vector, PASSWORD).await, "/");
        browser.create_page(&format!("page by {}", vector.len()), "x").await;
        for path in ["/", "/profile", "/recent", &quire::urls::user(&vector)] {
            let (status, body) = browser.get_text(path).await;
            assert!(status.is_success(), "{path}: {status}");
            assert!(!carries(&body, &vector), "{vector} unescaped on {path}");
        }
    }
}

async fn xss_vectors_as_summaries_and_search_queries_are_escaped(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("summarist").await;
    app.browser.create_page("Target", "original text").await;
    for (i, vector) in vectors(200).into_iter().take(15).enumerate() {
        let (_, form) = app.browser.get_text("/wiki/Target/edit").await;
        let base = form
            .split(r#"name="base_revision" value=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let token = csrf_in(&form).unwrap();
        let content = format!("edit number {i}");
        let response = app
            .browser
            .post_form(
                "/wiki/Target/edit",
                &[
                    ("content", &content),
                    ("summary", &vector),
                    ("base_revision", &base),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{vector}");
        for path in ["/wiki/Target/history", "/recent"] {
            let (_, body) = app.browser.get_text(path).await;
            assert!(!carries(&body, &vector), "{vector} unescaped on {path}");
        }
        let (_, feed) = app.browser.get_text("/recent.atom").await;
        assert!(!carries(&feed, &vector), "{vector} unescaped in the feed");
        let search = format!("/search?q={}", quire::urls::encode_query(&vector));
        let (status, body) = app.browser.get_text(&search).await;
        assert_eq!(status, StatusCode::OK, "{vector}");
        assert!(!carries(&body, &vector), "{vector} unescaped in search");
    }
}

async fn sql_injection_strings_are_plain_text_in_every_field(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, sql) in SQL.iter().enumerate() {
        let name = format!("{sql}{i}");
        let browser = app.new_browser();
        assert_redirects_to(&browser.register(&name, PASSWORD).await, "/login");
        assert_redirects_to(&browser.login(&name, PASSWORD).await, "/");
        assert_eq!(browser.login(sql, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
        let title = format!("{sql} page");
        assert_eq!(browser.create_page(&title, sql).await.status(), StatusCode::SEE_OTHER);
        let (status, body) = browser.get_text(&format!("/search?q={}", quire::urls::encode_query(sql))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("search-results"));
        let (status, _) = browser
            .get_text(&format!(
                "{}/diff?from={}&to=1",
                quire::urls::page(&title),
                quire::urls::encode_query(sql)
            ))
            .await;
        assert!(status.is_client_error(), "{status}");
    }
    assert_eq!(app.user_count().await, SQL.len() as u64);
    assert_eq!(app.page_count().await, SQL.len() as u64);
}

async fn traversal_in_path_parameters_finds_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("walker").await;
    app.browser.create_page("Real", "x").await;
    for path in [
        "/wiki/..%2F..%2Fetc%2Fpasswd",
        "/wiki/..%2Fsecret/history",
        "/wiki/Real/revisions/..%2F1",
        "/wiki/Real/revisions/-1",
        "/wiki/Real/revisions/99999999999999999999",
        "/wiki/Real/diff?from=1&to=..%2F2",
        "/users/..%2F..%2Fsecret",
        "/static/..%2F..%2FCargo.toml",
        "/static/style.css",
        "/avatars/..%2Fquire.db",
    ] {
        let (status, body) = app.browser.get_text(path).await;
        assert!(status.is_client_error(), "{path}: {status}");
        assert!(!body.contains("[package]") && !body.contains("SQLite format"), "{path} leaked a file");
    }
}

crate::tests![
    xss_vectors_as_titles_are_escaped_everywhere_they_appear,
    xss_vectors_as_usernames_are_escaped,
    xss_vectors_as_summaries_and_search_queries_are_escaped,
    sql_injection_strings_are_plain_text_in_every_field,
    traversal_in_path_parameters_finds_nothing,
];

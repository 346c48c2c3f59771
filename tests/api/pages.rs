//! Pages: create (members only), view, index, titles that must route back, and limits.

use reqwest::StatusCode;

use crate::helpers::*;

/// The hrefs of the index links, html-unescaped.
pub fn index_links(html: &str) -> Vec<(String, String)> {
    let list = html.split(r#"<ul class="page-list">"#).nth(1).unwrap_or_default();
    let list = &list[..list.find("</ul>").unwrap_or(list.len())];
    list.split("<li><a href=\"")
        .skip(1)
        .map(|item| {
            let href = &item[..item.find('"').unwrap()];
            let text = &item[item.find('>').unwrap() + 1..item.find("</a>").unwrap()];
            (unescape(href), unescape(text))
        })
        .collect()
}

/// HTML-escapes as the templates do.
pub fn escape(s: &str) -> String {
    s.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

pub fn unescape(s: &str) -> String {
    s.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

async fn a_member_creates_a_page_and_everyone_can_read_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("xena").await;
    let response = app.browser.create_page("First page", "Hello **wiki**").await;
    assert_redirects_to(&response, "/wiki/First%20page");
    let (status, page) = follow(&app.browser, response).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Page created successfully!"));
    assert!(page.contains("First page"));
    assert!(page.contains("xena"), "the author is shown");
    assert!(page.contains("<strong>wiki</strong>"), "Markdown is rendered: {page}");

    let visitor = app.new_browser();
    let (status, page) = visitor.get_text("/wiki/First%20page").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<strong>wiki</strong>"));
    let (_, index) = visitor.get_text("/").await;
    assert_eq!(index_links(&index), vec![("/wiki/First%20page".to_owned(), "First page".to_owned())]);
}

async fn visitors_are_sent_to_log_in_before_creating(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirects_to(&app.browser.get("/create").await, "/login?next=/create");
    let response = app.browser.post_form("/create", &[("title", "Sneaky"), ("content", "x")]).await;
    assert_redirects_to(&response, "/login?next=/create");
    assert_eq!(app.page_count().await, 0);
}

async fn every_title_is_reachable_by_the_link_the_index_shows(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("yuri").await;
    let titles = [
        "a/b/c",
        "What? #1 100% + more",
        "C++ & Rust",
        "日本語のページ",
        "Ελληνικά",
        "...",
        "../escape",
        "<script>alert(1)</script>",
        "emoji 🚀 title",
        "trailing.dot.",
        "back\\slash",
        "quote\"s and 'apostrophes'",
    ];
    for title in titles {
        let response = app.browser.create_page(title, &format!("content of {title}")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{title}");
    }
    let (_, index) = app.new_browser().get_text("/").await;
    assert!(!index.contains("<script>alert(1)</script>"), "titles are escaped");
    let links = index_links(&index);
    assert_eq!(links.len(), titles.len());
    for (href, text) in links {
        let (status, page) = app.new_browser().get_text(&href).await;
        assert_eq!(status, StatusCode::OK, "{text} at {href}");
        assert!(
            page.contains(&format!(r#"<h1 class="page-title">{}</h1>"#, escape(&text))),
            "{text} at {href}"
        );
    }
}

async fn a_slash_title_typed_by_hand_is_redirected_to_its_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("zack").await;
    app.browser.create_page("Guides/Install", "steps").await;
    let response = app.browser.get("/wiki/Guides/Install").await;
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(location(response.headers()), "/wiki/Guides%2FInstall");
}

async fn a_duplicate_title_gets_a_message_and_keeps_the_first_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("amy").await;
    app.browser.create_page("Same", "first").await;
    let response = app.browser.create_page("Same", "second").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.text().await.unwrap();
    assert!(body.contains("A page with this title already exists."));
    assert!(body.contains("second"), "the content typed is given back");
    assert_eq!(app.page_count().await, 1);
    let (_, page) = app.browser.get_text("/wiki/Same").await;
    assert!(page.contains("first"));
}

async fn racing_creations_of_one_title_make_one_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ben").await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let browser = app.browser.clone();
        tasks.push(tokio::spawn(async move {
            browser.create_page("Contested", &format!("version {i}")).await.status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == StatusCode::SEE_OTHER || status == StatusCode::CONFLICT, "{status}");
        created += usize::from(status == StatusCode::SEE_OTHER);
    }
    assert_eq!(created, 1);
    assert_eq!(app.page_count().await, 1);
}

async fn invalid_pages_show_a_message_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("cleo").await;
    let long_title = "t".repeat(101);
    let big = "b".repeat(1024 * 1024 + 1);
    let cases: [(&str, &str, &str); 7] = [
        (".", "content", "Title cannot be just"),
        ("..", "content", "Title cannot be just"),
        ("", "content", "Title is required."),
        (&long_title, "content", "at most 100 characters"),
        ("tab\ttitle", "content", "control characters"),
        ("No content", "  ", "Content is required."),
        ("Too big", &big, "at most 1 MiB"),
    ];
    for (title, content, message) in cases {
        let response = app.browser.create_page(title, content).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{message}");
        assert!(response.text().await.unwrap().contains(message), "{message}");
    }
    assert_eq!(app.page_count().await, 0);
}

async fn a_title_of_exactly_one_hundred_characters_is_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("dora").await;
    let title = "é".repeat(100);
    assert_eq!(app.browser.create_page(&title, "x").await.status(), StatusCode::SEE_OTHER);
    let content = "c".repeat(1024 * 1024);
    assert_eq!(app.browser.create_page("one mebibyte", &content).await.status(), StatusCode::SEE_OTHER);
    let (status, page) = app.browser.get_text("/wiki/one%20mebibyte").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.len() > 1024 * 1024);
}

async fn a_missing_page_is_a_404_with_a_link_to_create_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, page) = app.browser.get_text("/wiki/Not%20here%3F").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Not here?"));
    assert!(page.contains(r#"href="/create?title=Not%20here%3F""#), "{page}");
    app.member("eve").await;
    let (status, form) = app.browser.get_text("/create?title=Not%20here%3F").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"value="Not here?""#));
}

async fn the_profile_lists_the_pages_a_member_wrote(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("finn").await;
    app.browser.create_page("Finn's notes", "a").await;
    app.browser.create_page("Another one", "b").await;
    let other = app.new_browser();
    other.register("gina", PASSWORD).await;
    other.login("gina", PASSWORD).await;
    other.create_page("Gina's page", "c").await;
    let (_, profile) = app.browser.get_text("/profile").await;
    assert!(profile.contains("Finn&#39;s notes") || profile.contains("Finn's notes"));
    assert!(profile.contains("Another one"));
    assert!(!profile.contains("Gina"));
}

async fn the_index_is_alphabetical_and_paginated(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("hal").await;
    for i in (0..205).rev() {
        let response = app.browser.create_page(&format!("Page {i:03}"), "x").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let (_, first) = app.browser.get_text("/").await;
    let links = index_links(&first);
    assert_eq!(links.len(), 200);
    assert_eq!(links[0].1, "Page 000");
    assert!(first.contains(r#"href="/?page=2""#));
    let (_, second) = app.browser.get_text("/?page=2").await;
    let links = index_links(&second);
    assert_eq!(
        links.iter().map(|l| l.1.as_str()).collect::<Vec<_>>(),
        ["Page 200", "Page 201", "Page 202", "Page 203", "Page 204"]
    );
    // Nonsense page numbers are not errors.
    assert_eq!(app.browser.get("/?page=abc").await.status(), StatusCode::OK);
    assert_eq!(app.browser.get("/?page=0").await.status(), StatusCode::OK);
}

async fn pages_survive_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ivy").await;
    app.browser.create_page("Durable", "still here").await;
    let app = app.restart().await;
    let (status, page) = app.new_browser().get_text("/wiki/Durable").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("still here"));
}

async fn fifty_concurrent_writers_all_succeed(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("writer").await;
    let token = app.browser.csrf("/create").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let browser = app.browser.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let title = format!("Concurrent {i}");
            browser
                .post_form("/create", &[("title", &title), ("content", "text"), ("csrf_token", &token)])
                .await
                .status()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::SEE_OTHER);
    }
    assert_eq!(app.page_count().await, 50);
}

crate::tests![
    fifty_concurrent_writers_all_succeed,
    a_member_creates_a_page_and_everyone_can_read_it,
    visitors_are_sent_to_log_in_before_creating,
    every_title_is_reachable_by_the_link_the_index_shows,
    a_slash_title_typed_by_hand_is_redirected_to_its_page,
    a_duplicate_title_gets_a_message_and_keeps_the_first_page,
    racing_creations_of_one_title_make_one_page,
    invalid_pages_show_a_message_and_store_nothing,
    a_title_of_exactly_one_hundred_characters_is_accepted,
    a_missing_page_is_a_404_with_a_link_to_create_it,
    the_profile_lists_the_pages_a_member_wrote,
    the_index_is_alphabetical_and_paginated,
    pages_survive_a_restart,
];

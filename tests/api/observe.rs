//! What an operator watches (issue 14, "Visible in production"): `/healthz` for load balancers
//! and `/metrics` in the Prometheus text format, with who may read them.

use reqwest::StatusCode;

use crate::helpers::*;

async fn metrics_text(browser: &Browser) -> String {
    let response = browser.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(kind, "text/plain; version=0.0.4; charset=utf-8");
    response.text().await.unwrap()
}

/// The value of the sample `line_start` (name and labels, exactly as exposed).
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(line_start)?.trim().parse().ok())
}

async fn healthz_answers_ok_while_the_database_answers_and_503_when_it_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.new_browser().get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers().get("set-cookie").is_none(), "a probe leaves no state");
    assert_eq!(response.text().await.unwrap(), "ok\n");

    // A members-only wiki still answers its load balancer.
    let admin = app.member("admin").await;
    crate::access_helpers::set_setting(admin, "read_access", "members").await;
    assert_eq!(app.new_browser().get("/").await.status(), StatusCode::SEE_OTHER, "members only now");
    let response = app.new_browser().get("/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);

    // The database goes away: 503, and nothing about it in the answer.
    app.state.db.read.clone().close().await.unwrap();
    let response = app.new_browser().get("/healthz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = response.text().await.unwrap();
    assert_eq!(body, "the database does not answer\n");
}

async fn metrics_count_requests_by_route_template_never_by_title(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("watcher").await;
    assert_eq!(browser.create_page("Secret plans", "text").await.status(), StatusCode::SEE_OTHER);
    for _ in 0..3 {
        assert_eq!(app.new_browser().get("/wiki/Secret%20plans").await.status(), StatusCode::OK);
    }
    assert_eq!(app.new_browser().get("/wiki/Nothing%20here").await.status(), StatusCode::NOT_FOUND);
    let text = metrics_text(&app.new_browser()).await;
    assert_eq!(
        sample(&text, r#"quire_http_requests_total{method="GET",route="/wiki/{title}",status="200"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"quire_http_requests_total{method="GET",route="/wiki/{title}",status="404"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, r#"quire_http_requests_total{method="POST",route="/create",status="303"}"#),
        Some(1.0)
    );
    assert!(
        sample(&text, r#"quire_http_request_duration_seconds_count{method="GET",route="/wiki/{title}"}"#)
            == Some(4.0)
    );
    assert!(text.contains(r#"quire_http_request_duration_seconds_bucket{le="#));
    assert!(!text.contains("Secret"), "no title in any label");
    assert!(text.contains("quire_db_pool_connections{"), "{text}");
    assert!(sample(&text, "quire_password_queue_length").is_some());
    assert!(sample(&text, "quire_password_queue_capacity").is_some_and(|c| c > 0.0));
    assert!(sample(&text, "quire_work_running").is_some());
    assert!(!text.contains(app.data_dir.path().to_str().unwrap()), "no paths");
}

async fn metrics_count_refusals_by_the_limits(backend: Backend) {
    let limits = quire::config::Limits {
        login: quire::models::throttle::Limit::parse("2/300").unwrap(),
        ..quire::config::Limits::default()
    };
    let app = spawn_with(backend, Options { limits: Some(limits), ..Options::default() }).await;
    app.browser.register("target", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(app.browser.login("target", "wrong wrong").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.browser.login("target", "wrong wrong").await.status(), StatusCode::TOO_MANY_REQUESTS);
    let text = metrics_text(&app.new_browser()).await;
    assert_eq!(sample(&text, r#"quire_refusals_total{reason="login"}"#), Some(1.0), "{text}");
}

async fn metrics_are_not_shown_through_a_proxy_or_beside_their_own_listener(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .new_browser()
        .client
        .get(app.new_browser().url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!response.text().await.unwrap().contains("quire_http"));

    let options = Options { metrics_bind: Some("127.0.0.1:0".parse().unwrap()), ..Options::default() };
    let app = spawn_with(backend, options).await;
    assert_eq!(
        app.new_browser().get("/metrics").await.status(),
        StatusCode::NOT_FOUND,
        "not on the main port"
    );
    assert_eq!(app.new_browser().get("/wiki/Anything").await.status(), StatusCode::NOT_FOUND);
    let own = Browser::new(&format!("http://127.0.0.1:{}", app.metrics_port.expect("a metrics port")));
    let text = metrics_text(&own).await;
    assert!(text.contains(r#"route="/wiki/{title}",status="404""#), "{text}");
    assert_eq!(own.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(own.get("/").await.status(), StatusCode::NOT_FOUND, "only the operator's routes there");
    let response = own
        .client
        .get(own.url("/metrics"))
        .header("accept", "application/openmetrics-text")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(response.text().await.unwrap().ends_with("# EOF\n"));
}

async fn pages_anyone_may_keep_carry_an_etag_and_answer_304_until_they_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = app.member("tagger").await;
    assert_eq!(author.create_page("Tagged", "one [[Later]]").await.status(), StatusCode::SEE_OTHER);
    let visitor = app.new_browser();
    let first = visitor.get("/wiki/Tagged").await;
    assert_eq!(first.status(), StatusCode::OK);
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again =
        visitor.client.get(visitor.url("/wiki/Tagged")).header("if-none-match", &tag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], tag.as_str());
    assert!(again.text().await.unwrap().is_empty());
    // A page it links to comes into being: the view changes (the link is no longer red), so
    // does the tag.
    assert_eq!(author.create_page("Later", "here").await.status(), StatusCode::SEE_OTHER);
    let changed =
        visitor.client.get(visitor.url("/wiki/Tagged")).header("if-none-match", &tag).send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"], tag.as_str());
    // A revision has a tag of its own; a member's pages are never kept (no-store, no tag).
    let (_, history) = visitor.get_text("/wiki/Tagged/history").await;
    let id = history.split("/revisions/").nth(1).and_then(|r| r.split(['"', '/']).next()).unwrap().to_owned();
    let revision = visitor.get(&format!("/wiki/Tagged/revisions/{id}")).await;
    let revision_tag = revision.headers()["etag"].to_str().unwrap().to_owned();
    let again = visitor
        .client
        .get(visitor.url(&format!("/wiki/Tagged/revisions/{id}")))
        .header("if-none-match", format!("\"other\", {revision_tag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let mine = author.get("/wiki/Tagged").await;
    assert_eq!(mine.headers()["cache-control"], "no-store");
    assert!(mine.headers().get("etag").is_none());
    // Static files keep their own caching.
    let (_, home) = visitor.get_text("/").await;
    let css =
        home.split(r#"<link rel="stylesheet" href=""#).nth(1).unwrap().split('"').next().unwrap().to_owned();
    let asset = visitor.get(&css).await;
    assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
}

crate::tests![
    pages_anyone_may_keep_carry_an_etag_and_answer_304_until_they_change,
    healthz_answers_ok_while_the_database_answers_and_503_when_it_does_not,
    metrics_count_requests_by_route_template_never_by_title,
    metrics_count_refusals_by_the_limits,
    metrics_are_not_shown_through_a_proxy_or_beside_their_own_listener,
];

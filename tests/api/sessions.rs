//! Server-side sessions: rotation at login, revocation at logout, restarts, expiry, and no
//! state for visitors.

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::helpers::*;

const SESSION: &str = "quire_session";

async fn the_session_id_changes_at_login(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("olga", PASSWORD).await;
    app.browser.register("pete", PASSWORD).await;
    // A fixed id planted by an attacker is never adopted.
    app.browser.set_cookie(SESSION, "planted-session-id-1234567890");
    app.browser.login("olga", PASSWORD).await;
    let first = app.browser.cookie(SESSION).expect("a session cookie");
    assert_ne!(first, "planted-session-id-1234567890");
    // Logging in again (as someone else) gives yet another id, and the old one is gone.
    app.browser.login("pete", PASSWORD).await;
    let second = app.browser.cookie(SESSION).unwrap();
    assert_ne!(first, second);
    let replay = app.new_browser();
    replay.set_cookie(SESSION, &first);
    assert!(!replay.is_logged_in().await);
    assert_eq!(app.session_count().await, 1);
}

async fn a_cookie_replayed_after_logout_is_anonymous(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("quinn").await;
    let cookie = app.browser.cookie(SESSION).unwrap();
    let response = app.browser.logout().await;
    assert_redirects_to(&response, "/login");
    let (_, page) = follow(&app.browser, response).await;
    assert!(page.contains("You have been logged out."));
    assert!(!app.browser.is_logged_in().await);
    assert_eq!(app.session_count().await, 0);

    let replay = app.new_browser();
    replay.set_cookie(SESSION, &cookie);
    assert!(!replay.is_logged_in().await);
}

async fn sessions_survive_a_restart(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("rita").await;
    let app = app.restart().await;
    assert!(app.browser.is_logged_in().await);
    let (_, profile) = app.browser.get_text("/profile").await;
    assert!(profile.contains("Welcome, rita"));
}

async fn visitors_create_no_server_side_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("sam", PASSWORD).await;
    for _ in 0..5 {
        let browser = app.new_browser();
        for path in
            ["/", "/login", "/register", "/logout", "/wiki/Nothing", "/nowhere", "/create", "/profile"]
        {
            let status = browser.get(path).await.status();
            assert!(status.as_u16() < 500, "{path}: {status}");
        }
        browser.login("sam", "wrong password").await;
        browser.register("sam", PASSWORD).await;
    }
    assert_eq!(app.session_count().await, 0);
}

async fn session_cookies_are_http_only_and_same_site_lax(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("tina", PASSWORD).await;
    let token = app.browser.csrf("/login").await;
    let response = app
        .browser
        .post_form("/login", &[("username", "tina"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("quire_session="))
        .expect("the login sets the session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Max-Age=3600"), "one hour: {cookie}");
    assert!(!cookie.contains("Secure"), "plain http public URL: {cookie}");
}

async fn cookies_are_secure_when_the_public_url_is_https(backend: Backend) {
    let app = spawn_with(
        backend,
        Options { public_url: Some("https://wiki.example".into()), ..Options::default() },
    )
    .await;
    app.browser.register("uma", PASSWORD).await;
    let token = app.browser.csrf("/login").await;
    let response = app
        .browser
        .post_form("/login", &[("username", "uma"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    let cookies: Vec<String> =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert!(!cookies.is_empty());
    for cookie in cookies {
        assert!(cookie.contains("Secure"), "{cookie}");
    }
}

async fn an_expired_session_is_anonymous_and_purged(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("vic").await;
    assert_eq!(app.session_count().await, 1);
    // Age every session past its hour.
    app.state.db.write.execute_unprepared("UPDATE sessions SET expires_at = 1000").await.unwrap();
    assert!(!app.browser.is_logged_in().await);
    let purged = quire::models::session::delete_expired(&app.state.db.write).await.unwrap();
    assert_eq!(purged, 1);
    assert!(quire::models::session::Entity::find().all(&app.state.db.read).await.unwrap().is_empty());
}

async fn activity_pushes_the_expiry_back(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("walt").await;
    // Pretend the session was last refreshed long ago, with 10 minutes left.
    let soon = quire::models::now_ms() + 10 * 60 * 1000;
    app.state
        .db
        .write
        .execute_unprepared(&format!(
            "UPDATE sessions SET expires_at = {soon}, data = REPLACE(data, '\"seen\":', '\"old\":')"
        ))
        .await
        .unwrap();
    assert!(app.browser.is_logged_in().await);
    let row = quire::models::session::Entity::find().one(&app.state.db.read).await.unwrap().unwrap();
    assert!(row.expires_at > soon + 40 * 60 * 1000, "the expiry moved an hour ahead");
    assert_eq!(app.browser.get("/").await.status(), StatusCode::OK);
}

crate::tests![
    the_session_id_changes_at_login,
    a_cookie_replayed_after_logout_is_anonymous,
    sessions_survive_a_restart,
    visitors_create_no_server_side_state,
    session_cookies_are_http_only_and_same_site_lax,
    cookies_are_secure_when_the_public_url_is_https,
    an_expired_session_is_anonymous_and_purged,
    activity_pushes_the_expiry_back,
];

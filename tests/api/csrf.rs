//! Every state-changing form refuses a missing, forged or foreign token with 403, changing nothing.

use reqwest::StatusCode;

use crate::helpers::*;

/// A token that is well-formed but was never issued.
const FORGED: &str = "0000000000000000000000000000000000000000000000000000000000000000";

async fn register_refuses_missing_forged_and_foreign_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.new_browser();
    let foreign = other.csrf("/register").await;
    app.browser.csrf("/register").await; // the browser has its own binding cookie
    for token in [None, Some(FORGED), Some(foreign.as_str()), Some("not-hex")] {
        let mut form = vec![("username", "mallory"), ("password", PASSWORD), ("confirm_password", PASSWORD)];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = app.browser.post_form("/register", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(response.text().await.unwrap().contains("did not come from this site"));
    }
    assert_eq!(app.user_count().await, 0);
}

async fn login_refuses_a_token_from_another_browser(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("victim", PASSWORD).await;
    let attacker = app.new_browser();
    let token = attacker.csrf("/login").await;
    let victim = app.new_browser();
    victim.csrf("/login").await;
    let response = victim
        .post_form("/login", &[("username", "victim"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!victim.is_logged_in().await);
    // Without any cookie at all, a token cannot be checked either.
    let fresh = app.new_browser();
    let response = fresh
        .post_form("/login", &[("username", "victim"), ("password", PASSWORD), ("csrf_token", &token)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.session_count().await, 0);
}

async fn logout_refuses_a_bad_token_and_keeps_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("judy").await;
    for token in ["", FORGED] {
        let response = app.browser.post_form("/logout", &[("csrf_token", token)]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert!(app.browser.is_logged_in().await);
}

async fn logout_is_post_only_and_get_shows_the_button(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("ken").await;
    let (status, page) = app.browser.get_text("/logout").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"action="/logout""#) && page.contains("csrf_token"));
    assert!(app.browser.is_logged_in().await, "GET /logout does not log out");
}

async fn create_refuses_a_token_from_another_member(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("leo").await;
    let other = app.new_browser();
    other.register("mia", PASSWORD).await;
    other.login("mia", PASSWORD).await;
    let foreign = other.csrf("/create").await;
    for token in [None, Some(FORGED), Some(foreign.as_str())] {
        let mut form = vec![("title", "Forged page"), ("content", "text")];
        if let Some(token) = token {
            form.push(("csrf_token", token));
        }
        let response = app.browser.post_form("/create", &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    assert_eq!(app.page_count().await, 0);
}

async fn a_token_from_before_login_is_refused_after_login(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("nina", PASSWORD).await;
    let visitor_token = app.browser.csrf("/register").await;
    app.browser.login("nina", PASSWORD).await;
    let response = app
        .browser
        .post_form("/create", &[("title", "x"), ("content", "y"), ("csrf_token", &visitor_token)])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.page_count().await, 0);
}

crate::tests![
    register_refuses_missing_forged_and_foreign_tokens,
    login_refuses_a_token_from_another_browser,
    logout_refuses_a_bad_token_and_keeps_the_session,
    logout_is_post_only_and_get_shows_the_button,
    create_refuses_a_token_from_another_member,
    a_token_from_before_login_is_refused_after_login,
];

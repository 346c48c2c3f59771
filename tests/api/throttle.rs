//! Brute force: failed logins limited per account and address and per account overall,
//! registrations per address; 429 with Retry-After and a readable page; state in the database.

use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::helpers::*;

fn limits(login: &str, account: &str, register: &str) -> Option<Limits> {
    Some(Limits {
        login: Limit::parse(login).unwrap(),
        account_login: Limit::parse(account).unwrap(),
        register: Limit::parse(register).unwrap(),
        ..Limits::default()
    })
}

async fn spawn_limited(backend: Backend, login: &str, account: &str, register: &str) -> TestApp {
    spawn_with(backend, Options { limits: limits(login, account, register), ..Options::default() }).await
}

async fn repeated_failures_from_one_address_get_429_with_retry_after(backend: Backend) {
    let app = spawn_limited(backend, "3/300", "100/300", "100/300").await;
    app.browser.register("target", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(app.browser.login("target", "wrong guess!").await.status(), StatusCode::UNAUTHORIZED);
    }
    let response = app.browser.login("target", "wrong guess!").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    let body = response.text().await.unwrap();
    assert!(body.contains("Too many failed logins") && body.contains("Try again in"), "{body}");
    // While blocked, even the right password is refused from here, and no session is made.
    assert_eq!(app.browser.login("target", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!app.browser.is_logged_in().await);
    assert_eq!(app.session_count().await, 0);
}

async fn a_legitimate_user_elsewhere_is_not_locked_out(backend: Backend) {
    let app = spawn_limited(backend, "3/300", "100/300", "100/300").await;
    app.browser.register("target", PASSWORD).await;
    for _ in 0..5 {
        app.browser.login("target", "attacker guess").await;
    }
    assert_eq!(app.browser.login("target", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = Browser::from_address(&app.address, "127.0.0.2");
    assert_redirects_to(&elsewhere.login("target", PASSWORD).await, "/");
    assert!(elsewhere.is_logged_in().await);
    // Other accounts from the attacker's address are not affected either.
    app.browser.register("bystander", PASSWORD).await;
    assert_redirects_to(&app.new_browser().login("bystander", PASSWORD).await, "/");
}

async fn an_account_attacked_from_many_addresses_is_limited_overall(backend: Backend) {
    let app = spawn_limited(backend, "100/300", "4/300", "100/300").await;
    app.browser.register("popular", PASSWORD).await;
    for i in 2..6 {
        let attacker = Browser::from_address(&app.address, &format!("127.0.0.{i}"));
        assert_eq!(attacker.login("popular", "guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let another = Browser::from_address(&app.address, "127.0.0.9");
    let response = another.login("popular", "guess").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}

async fn a_successful_login_clears_the_failures_of_its_address(backend: Backend) {
    let app = spawn_limited(backend, "3/300", "100/300", "100/300").await;
    app.browser.register("forgetful", PASSWORD).await;
    for _ in 0..2 {
        app.browser.login("forgetful", "typo").await;
    }
    assert_redirects_to(&app.browser.login("forgetful", PASSWORD).await, "/");
    for _ in 0..2 {
        assert_eq!(app.browser.login("forgetful", "typo").await.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn unknown_usernames_are_limited_like_known_ones(backend: Backend) {
    let app = spawn_limited(backend, "2/300", "100/300", "100/300").await;
    for _ in 0..2 {
        assert_eq!(app.browser.login("ghost", "guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.browser.login("ghost", "guess").await.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn registrations_are_limited_per_address(backend: Backend) {
    let app = spawn_limited(backend, "100/300", "100/300", "2/300").await;
    for name in ["first", "second"] {
        assert_redirects_to(&app.new_browser().register(name, PASSWORD).await, "/login");
    }
    let response = app.new_browser().register("third", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.text().await.unwrap().contains("Too many registrations"));
    assert_eq!(app.user_count().await, 2);
    let elsewhere = Browser::from_address(&app.address, "127.0.0.3");
    assert_redirects_to(&elsewhere.register("third", PASSWORD).await, "/login");
}

async fn limits_live_in_the_database_and_survive_a_restart(backend: Backend) {
    let app = spawn_limited(backend, "2/300", "100/300", "100/300").await;
    app.browser.register("persistent", PASSWORD).await;
    for _ in 0..2 {
        app.browser.login("persistent", "nope").await;
    }
    let app = app.restart().await;
    assert_eq!(app.browser.login("persistent", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn the_default_limits_let_a_few_typos_through(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("typist", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(app.browser.login("typist", "typo").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_redirects_to(&app.browser.login("typist", PASSWORD).await, "/");
}

crate::tests![
    repeated_failures_from_one_address_get_429_with_retry_after,
    a_legitimate_user_elsewhere_is_not_locked_out,
    an_account_attacked_from_many_addresses_is_limited_overall,
    a_successful_login_clears_the_failures_of_its_address,
    unknown_usernames_are_limited_like_known_ones,
    registrations_are_limited_per_address,
    limits_live_in_the_database_and_survive_a_restart,
    the_default_limits_let_a_few_typos_through,
];

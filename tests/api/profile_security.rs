//! `/profile/security`: changing the password (the current one required, every other session
//! ended) and the member's own list of sessions, any of which they can end.

use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::helpers::*;

const NEW_PASSWORD: &str = "a brand new passphrase";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

async fn change_password(browser: &Browser, current: &str, new: &str, confirm: &str) -> reqwest::Response {
    let token = browser.csrf("/profile/security").await;
    browser
        .post_form(
            "/profile/security/password",
            &[
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", confirm),
                ("csrf_token", &token),
            ],
        )
        .await
}

/// The password hash stored for a member.
async fn hash_of(app: &TestApp, name: &str) -> String {
    quire::models::user::find_by_username(&app.state.db.read, name).await.unwrap().unwrap().password_hash
}

/// The "end" actions of the session list, in the order shown.
fn end_actions(html: &str) -> Vec<String> {
    html.match_indices("action=\"/profile/security/sessions/")
        .filter_map(|(at, _)| {
            let rest = &html[at + "action=\"".len()..];
            let action = &rest[..rest.find('"')?];
            action.ends_with("/end").then(|| action.to_owned())
        })
        .collect()
}

async fn post_token(browser: &Browser, path: &str) -> reqwest::Response {
    let token = browser.csrf("/profile/security").await;
    browser.post_form(path, &[("csrf_token", &token)]).await
}

async fn the_password_changes_only_with_the_current_one_and_other_sessions_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    let laptop = app.new_browser();
    assert_redirects_to(&laptop.login("alice", PASSWORD).await, "/");
    let before = hash_of(&app, "alice").await;

    let (status, page) = alice.get_text("/profile/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Change your password") && page.contains("Your sessions"), "{page}");

    // Each refusal says why and changes nothing.
    let cases: [(&str, &str, &str, StatusCode, &str); 4] = [
        (
            "wrong password",
            NEW_PASSWORD,
            NEW_PASSWORD,
            StatusCode::FORBIDDEN,
            "Your current password is not correct.",
        ),
        (
            "",
            NEW_PASSWORD,
            NEW_PASSWORD,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Your current password is required.",
        ),
        (PASSWORD, NEW_PASSWORD, "something else", StatusCode::UNPROCESSABLE_ENTITY, "Passwords must match."),
        (PASSWORD, "short", "short", StatusCode::UNPROCESSABLE_ENTITY, "at least 8"),
    ];
    for (current, new, confirm, status, message) in cases {
        let response = change_password(alice, current, new, confirm).await;
        assert_eq!(response.status(), status, "{current:?} {new:?} {confirm:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(message), "{message}: {body}");
        assert!(!body.contains(PASSWORD), "the password is not echoed");
        assert_eq!(hash_of(&app, "alice").await, before);
        assert!(laptop.is_logged_in().await, "the other session lives on");
    }
    // No CSRF token: 403, nothing changed.
    let response = alice
        .post_form(
            "/profile/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(hash_of(&app, "alice").await, before);
    // A visitor is sent to log in.
    let visitor = app.new_browser();
    let token = visitor.csrf("/login").await;
    let response = visitor
        .post_form(
            "/profile/security/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("confirm_password", NEW_PASSWORD),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert!(location(response.headers()).starts_with("/login"), "{:?}", response.headers());
    assert_eq!(hash_of(&app, "alice").await, before);

    let old_cookie = alice.cookie("quire_session").expect("a session cookie");
    let response = change_password(alice, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_redirects_to(&response, "/profile/security");
    let (_, page) = follow(alice, response).await;
    assert!(page.contains("Your password has been changed. Your 1 other session(s) have ended."), "{page}");
    assert!(alice.is_logged_in().await, "this session goes on");
    assert_ne!(alice.cookie("quire_session").unwrap(), old_cookie, "under a new id");
    assert!(!laptop.is_logged_in().await, "the other session ended");
    assert_eq!(app.session_count().await, 1);

    // The old cookie is dead too.
    let replay = app.new_browser();
    replay.set_cookie("quire_session", &old_cookie);
    assert!(!replay.is_logged_in().await);

    let other = app.new_browser();
    assert_eq!(other.login("alice", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_redirects_to(&other.login("alice", NEW_PASSWORD).await, "/");
}

async fn wrong_current_passwords_are_throttled_like_logins(backend: Backend) {
    let limits = Limits {
        login: Limit::parse("2/300").unwrap(),
        address_login: Limit::parse("1000/300").unwrap(),
        ..Limits::default()
    };
    let app = spawn_with(backend, Options { limits: Some(limits), ..Options::default() }).await;
    let alice = app.member("alice").await;
    let before = hash_of(&app, "alice").await;
    for _ in 0..2 {
        let response = change_password(alice, "guess", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let response = change_password(alice, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(hash_of(&app, "alice").await, before);
}

async fn members_see_their_sessions_and_end_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.browser.register("alice", PASSWORD).await;
    app.browser.register("bob", PASSWORD).await;
    let desk = Browser::behind_proxy(&app.address, "127.0.0.1", &[("user-agent", FIREFOX)]);
    let phone = Browser::behind_proxy(&app.address, "127.0.0.3", &[("user-agent", CHROME)]);
    let bob = app.new_browser();
    for browser in [&desk, &phone] {
        assert_redirects_to(&browser.login("alice", PASSWORD).await, "/");
    }
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");

    let (status, page) = desk.get_text("/profile/security").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Firefox on Linux") && page.contains("Chrome on Windows"), "{page}");
    assert!(page.contains("127.0.0.1") && page.contains("127.0.0.3"), "{page}");
    assert!(page.contains("(this session)"), "{page}");
    assert!(page.contains("End every other session (1)"), "{page}");
    let actions = end_actions(&page);
    assert_eq!(actions.len(), 2, "alice's two sessions, not bob's: {page}");
    // Sessions are named by a hash of their id, never by the cookie itself.
    let desk_cookie = desk.cookie("quire_session").unwrap();
    assert!(!page.contains(&desk_cookie));

    // Bob cannot end alice's sessions, nor can a bad or unknown id do anything.
    let (_, bobs_page) = bob.get_text("/profile/security").await;
    let bobs = end_actions(&bobs_page);
    assert_eq!(bobs.len(), 1);
    for action in &actions {
        assert_eq!(post_token(&bob, action).await.status(), StatusCode::NOT_FOUND);
    }
    let unknown = format!("/profile/security/sessions/{}/end", "0".repeat(64));
    for path in
        [unknown.as_str(), "/profile/security/sessions/nonsense/end", "/profile/security/sessions/%FF/end"]
    {
        let status = post_token(&desk, path).await.status();
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{path}: {status}");
    }
    assert_eq!(app.session_count().await, 3);
    // Without a token nothing ends.
    assert_eq!(desk.post_form(&actions[1], &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.session_count().await, 3);

    // Alice ends the phone's session from the desk.
    let phone_action = actions
        .iter()
        .find(|action| {
            let row_start = page.find(action.as_str()).unwrap();
            let row = &page[page[..row_start].rfind("<tr").unwrap()..row_start];
            row.contains("Chrome on Windows")
        })
        .unwrap()
        .clone();
    let response = post_token(&desk, &phone_action).await;
    assert_redirects_to(&response, "/profile/security");
    assert!(!phone.is_logged_in().await);
    assert!(desk.is_logged_in().await);
    assert!(bob.is_logged_in().await);
    let (_, page) = desk.get_text("/profile/security").await;
    assert_eq!(end_actions(&page).len(), 1);
    assert!(!page.contains("End every other session"));

    // Two more sessions, then "end every other session".
    let tablet = app.new_browser();
    for browser in [&phone, &tablet] {
        assert_redirects_to(&browser.login("alice", PASSWORD).await, "/");
    }
    let response = post_token(&desk, "/profile/security/sessions/end-others").await;
    assert_redirects_to(&response, "/profile/security");
    let (_, page) = follow(&desk, response).await;
    assert!(page.contains("2 other session(s) ended."), "{page}");
    assert!(!phone.is_logged_in().await && !tablet.is_logged_in().await);
    assert!(desk.is_logged_in().await && bob.is_logged_in().await);

    // Ending this very session logs out.
    let (_, page) = desk.get_text("/profile/security").await;
    let own = end_actions(&page).remove(0);
    let response = post_token(&desk, &own).await;
    assert_redirects_to(&response, "/login");
    assert!(!desk.is_logged_in().await);
    assert!(bob.is_logged_in().await);
    assert_eq!(app.session_count().await, 1);

    // Visitors are sent to log in.
    let response = app.new_browser().get("/profile/security").await;
    assert!(location(response.headers()).starts_with("/login"));
}

async fn the_session_list_shows_the_address_a_trusted_proxy_names(backend: Backend) {
    let options = Options { trusted_proxies: Some("127.0.0.2".into()), ..Options::default() };
    let app = spawn_with(backend, options).await;
    app.browser.register("alice", PASSWORD).await;
    let proxied = Browser::behind_proxy(
        &app.address,
        "127.0.0.2",
        &[("x-forwarded-for", "198.51.100.23"), ("user-agent", FIREFOX)],
    );
    assert_redirects_to(&proxied.login("alice", PASSWORD).await, "/");
    // A forged header straight to Quire is not believed.
    let forger = Browser::behind_proxy(&app.address, "127.0.0.4", &[("x-forwarded-for", "203.0.113.1")]);
    assert_redirects_to(&forger.login("alice", PASSWORD).await, "/");
    let (_, page) = proxied.get_text("/profile/security").await;
    assert!(page.contains("198.51.100.23") && page.contains("127.0.0.4"), "{page}");
    assert!(!page.contains("127.0.0.2") && !page.contains("203.0.113.1"), "{page}");
}

crate::tests!(
    the_password_changes_only_with_the_current_one_and_other_sessions_end,
    wrong_current_passwords_are_throttled_like_logins,
    members_see_their_sessions_and_end_them,
    the_session_list_shows_the_address_a_trusted_proxy_names,
);

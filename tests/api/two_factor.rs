//! Two-factor sign-in (TOTP): enrolment with a server-drawn QR code, login in two steps with
//! no session until both pass, no replay of a code, recovery codes, throttling, turning it off,
//! and the `require_2fa` setting.

use quire::auth::totp;
use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::access_helpers::{cli, set_setting, wiki_with_admin};
use crate::helpers::*;

const ENROL: &str = "/profile/security/two-factor";

/// The secret the enrolment page shows, without its spaces.
fn secret_in(html: &str) -> String {
    let start =
        html.find("class=\"totp-secret\">").expect("the secret is shown") + "class=\"totp-secret\">".len();
    let end = start + html[start..].find('<').unwrap();
    html[start..end].replace(' ', "")
}

/// The recovery codes a page shows once.
fn recovery_codes_in(html: &str) -> Vec<String> {
    html.match_indices("<li><code>")
        .map(|(at, _)| {
            let rest = &html[at + "<li><code>".len()..];
            rest[..rest.find('<').unwrap()].to_owned()
        })
        .collect()
}

/// The code the app shows `ahead` steps from now.
fn code(secret: &str, ahead: u64) -> String {
    totp::code_at(secret, totp::now_secs() + ahead * totp::STEP_SECS).unwrap()
}

/// Six digits that are no code of the window around now.
fn wrong_code(secret: &str) -> String {
    let now = totp::now_secs();
    let window: Vec<String> =
        (0..4).map(|i| totp::code_at(secret, now + i * totp::STEP_SECS - totp::STEP_SECS).unwrap()).collect();
    ["123456", "654321", "111111"].iter().find(|c| !window.iter().any(|w| w == *c)).unwrap().to_string()
}

/// Turns two-factor on for the logged-in `browser`; returns the secret and recovery codes.
async fn enrol(browser: &Browser) -> (String, Vec<String>) {
    assert_redirects_to(&post_with_token(browser, &format!("{ENROL}/setup"), &[]).await, ENROL);
    let (status, page) = browser.get_text(ENROL).await;
    assert_eq!(status, StatusCode::OK);
    let secret = secret_in(&page);
    let response =
        post_with_token(browser, &format!("{ENROL}/confirm"), &[("code", &code(&secret, 0))]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let codes = recovery_codes_in(&page);
    assert_eq!(codes.len(), 10, "{page}");
    (secret, codes)
}

/// POSTs a form with the token of the enrolment page (the one page a member who must enrol
/// can open).
async fn post_with_token(browser: &Browser, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = browser.csrf(ENROL).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &token));
    browser.post_form(path, &form).await
}

async fn second_step(browser: &Browser, code: &str) -> reqwest::Response {
    // A visitor's tokens are bound to their cookie: the login form's token serves.
    let token = browser.csrf("/login").await;
    browser.post_form("/login/two-factor", &[("code", code), ("csrf_token", &token)]).await
}

async fn enrolment_shows_a_qr_code_and_is_confirmed_by_one_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    let (_, page) = alice.get_text(ENROL).await;
    assert!(page.contains("Two-factor sign-in is <strong>off</strong>"), "{page}");
    // Setting up needs the form's token.
    assert_eq!(alice.post_form(&format!("{ENROL}/setup"), &[]).await.status(), StatusCode::FORBIDDEN);
    assert_redirects_to(&post_with_token(alice, &format!("{ENROL}/setup"), &[]).await, ENROL);
    let (_, page) = alice.get_text(ENROL).await;
    assert!(page.contains("<svg") && page.contains("</svg>"), "a QR code drawn inline");
    assert!(!page.contains("<?xml"));
    let secret = secret_in(&page);
    assert_eq!(secret.len(), 32, "160 bits in base32: {secret}");

    // A wrong code leaves it pending.
    let six = wrong_code(&secret);
    for wrong in [six.as_str(), "abc", ""] {
        let response = post_with_token(alice, &format!("{ENROL}/confirm"), &[("code", wrong)]).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{wrong:?}");
        assert!(response.text().await.unwrap().contains("That code is not right."));
    }
    let row = quire::models::two_factor::find(&app.state.db.read, 1).await.unwrap().unwrap();
    assert!(!row.is_enabled());

    let response = post_with_token(alice, &format!("{ENROL}/confirm"), &[("code", &code(&secret, 0))]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let codes = recovery_codes_in(&page);
    assert_eq!(codes.len(), 10);
    assert!(page.contains("Two-factor sign-in is <strong>on</strong>"));
    // Shown once: not on the next view, and only hashes are stored.
    let (_, again) = alice.get_text(ENROL).await;
    assert!(recovery_codes_in(&again).is_empty());
    assert!(again.contains("Recovery codes left: 10"), "{again}");
    for recovery in &codes {
        assert!(crate::access_helpers::find_in_database(&app, recovery.as_bytes()).await.is_empty());
    }
    // A second device needs two-factor off first.
    let response = post_with_token(alice, &format!("{ENROL}/setup"), &[]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let (_, security) = alice.get_text("/profile/security").await;
    assert!(security.contains("Two-factor sign-in is <strong>on</strong>"));
}

async fn login_asks_for_a_code_and_makes_no_session_before_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    let (secret, codes) = enrol(alice).await;
    alice.logout().await;
    assert_eq!(app.session_count().await, 0);

    let browser = app.new_browser();
    let response = browser.login("alice", PASSWORD).await;
    assert_redirects_to(&response, "/login/two-factor");
    assert_eq!(app.session_count().await, 0, "no session after the password alone");
    assert!(!browser.is_logged_in().await);
    let (status, page) = browser.get_text("/login/two-factor").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Code from your authenticator app"));

    // Wrong and empty codes: refused, still no session.
    let response = second_step(&browser, &wrong_code(&secret)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("Invalid code."));
    assert_eq!(second_step(&browser, "").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.session_count().await, 0);

    // The next step's code (the current one was used to enrol): in.
    let next = code(&secret, 1);
    assert_redirects_to(&second_step(&browser, &next).await, "/");
    assert!(browser.is_logged_in().await);
    assert_eq!(app.session_count().await, 1);
    browser.logout().await;

    // The same code again: a replay, refused.
    let browser = app.new_browser();
    assert_redirects_to(&browser.login("alice", PASSWORD).await, "/login/two-factor");
    let response = second_step(&browser, &next).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("This code has been used already."));
    assert_eq!(app.session_count().await, 0);

    // A recovery code works once, and says how many are left.
    let response = second_step(&browser, &codes[3].to_uppercase()).await;
    assert_redirects_to(&response, "/");
    let (_, page) = follow(&browser, response).await;
    assert!(page.contains("9 left"), "{page}");
    browser.logout().await;
    let browser = app.new_browser();
    assert_redirects_to(&browser.login("alice", PASSWORD).await, "/login/two-factor");
    assert_eq!(second_step(&browser, &codes[3]).await.status(), StatusCode::UNAUTHORIZED);
    assert!(!browser.is_logged_in().await);
}

async fn the_second_step_needs_the_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    let (secret, _) = enrol(alice).await;
    alice.logout().await;

    // No password step: sent back to log in, whatever the code.
    let stranger = app.new_browser();
    assert_redirects_to(&stranger.get("/login/two-factor").await, "/login");
    let token = stranger.csrf("/login").await;
    let response =
        stranger.post_form("/login/two-factor", &[("code", &code(&secret, 1)), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/login");
    // A forged pending cookie is not signed.
    stranger.set_cookie("quire_2fa", "1.0.0.0000000000000000");
    let response =
        stranger.post_form("/login/two-factor", &[("code", &code(&secret, 1)), ("csrf_token", &token)]).await;
    assert_redirects_to(&response, "/login");
    assert_eq!(app.session_count().await, 0);

    // A wrong password gives no second step.
    let guesser = app.new_browser();
    assert_eq!(guesser.login("alice", "wrong password").await.status(), StatusCode::UNAUTHORIZED);
    assert_redirects_to(&guesser.get("/login/two-factor").await, "/login");

    // The pending login is void once the password changes.
    let browser = app.new_browser();
    assert_redirects_to(&browser.login("alice", PASSWORD).await, "/login/two-factor");
    let member = quire::models::user::find_by_username(&app.state.db.read, "alice").await.unwrap().unwrap();
    let hash = quire::auth::password::hash_blocking(
        &quire::domain::Password::parse("another password".into()).unwrap(),
    )
    .unwrap();
    quire::models::user::set_password_hash(&app.state.db.write, member.id, &hash).await.unwrap();
    assert_redirects_to(&second_step(&browser, &code(&secret, 1)).await, "/login");
    assert_eq!(app.session_count().await, 0);
}

async fn wrong_codes_are_throttled_like_passwords(backend: Backend) {
    let limits = Limits {
        login: Limit::parse("3/300").unwrap(),
        address_login: Limit::parse("1000/300").unwrap(),
        ..Limits::default()
    };
    let app = spawn_with(backend, Options { limits: Some(limits), ..Options::default() }).await;
    let alice = app.member("alice").await;
    let (secret, _) = enrol(alice).await;
    alice.logout().await;
    let browser = app.new_browser();
    assert_redirects_to(&browser.login("alice", PASSWORD).await, "/login/two-factor");
    let wrong = wrong_code(&secret);
    for _ in 0..3 {
        assert_eq!(second_step(&browser, &wrong).await.status(), StatusCode::UNAUTHORIZED);
    }
    let response = second_step(&browser, &code(&secret, 1)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(app.session_count().await, 0);
}

async fn turning_it_off_needs_the_password_and_a_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    let (secret, codes) = enrol(alice).await;
    let disable = format!("{ENROL}/disable");
    let cases: [(&str, String, StatusCode, &str); 4] = [
        ("", code(&secret, 1), StatusCode::UNPROCESSABLE_ENTITY, "Your current password is required."),
        (PASSWORD, String::new(), StatusCode::UNPROCESSABLE_ENTITY, "is required"),
        ("wrong password", code(&secret, 1), StatusCode::FORBIDDEN, "Your current password is not correct."),
        (PASSWORD, "123-456-789".into(), StatusCode::FORBIDDEN, "Invalid code."),
    ];
    for (password, given, status, message) in cases {
        let response =
            post_with_token(alice, &disable, &[("current_password", password), ("code", &given)]).await;
        assert_eq!(response.status(), status, "{password:?} {given:?}");
        assert!(response.text().await.unwrap().contains(message), "{message}");
        assert!(quire::models::two_factor::is_enabled(&app.state.db.read, 1).await.unwrap());
    }
    // New recovery codes replace the old ones.
    let response = post_with_token(alice, &format!("{ENROL}/recovery-codes"), &[("code", &codes[0])]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let renewed = recovery_codes_in(&response.text().await.unwrap());
    assert_eq!(renewed.len(), 10);
    let response =
        post_with_token(alice, &disable, &[("current_password", PASSWORD), ("code", &codes[1])]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "old recovery codes are gone");

    let response =
        post_with_token(alice, &disable, &[("current_password", PASSWORD), ("code", &renewed[0])]).await;
    assert_redirects_to(&response, ENROL);
    assert!(!quire::models::two_factor::is_enabled(&app.state.db.read, 1).await.unwrap());
    alice.logout().await;
    assert_redirects_to(&alice.login("alice", PASSWORD).await, "/");
}

async fn require_2fa_takes_members_to_enrolment(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let bob = app.new_browser();
    bob.register("bob", PASSWORD).await;
    // A bad value changes nothing.
    let response = crate::access_helpers::save_settings(&admin, &[("require_2fa", "sometimes")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("require_2fa must be one of: none, admins, all."));
    assert_eq!(crate::access_helpers::effective_setting(&app, "require_2fa").await, "none");

    set_setting(&admin, "require_2fa", "admins").await;
    // Bob is not an admin: in as before.
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");
    bob.logout().await;

    let out = cli(&app, &["settings", "set", "require_2fa", "all"], "").await;
    assert!(out.ok(), "{out:?}");
    let out = cli(&app, &["settings", "set", "require_2fa", "maybe"], "").await;
    assert!(!out.ok());
    let out = cli(&app, &["settings", "get", "require_2fa"], "").await;
    assert_eq!(out.stdout, "all\n");

    assert_redirects_to(&bob.login("bob", PASSWORD).await, ENROL);
    // Every page but enrolment and logging out sends him back there.
    for path in ["/", "/profile", "/profile/security", "/create"] {
        assert_redirects_to(&bob.get(path).await, ENROL);
    }
    let (status, page) = bob.get_text(ENROL).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("This wiki requires two-factor sign-in for your account"), "{page}");
    let (secret, _) = enrol(&bob).await;
    assert_eq!(bob.get("/").await.status(), StatusCode::OK);
    // Required: it cannot be turned off.
    let response = post_with_token(
        &bob,
        &format!("{ENROL}/disable"),
        &[("current_password", PASSWORD), ("code", &code(&secret, 1))],
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(quire::models::two_factor::is_enabled(&app.state.db.read, 2).await.unwrap());
    // Next time, the code is asked for like anyone's.
    bob.logout().await;
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/login/two-factor");
    assert_redirects_to(&second_step(&bob, &code(&secret, 1)).await, "/");
}

async fn the_command_line_turns_it_off_for_a_member_who_lost_their_device(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.member("alice").await;
    enrol(alice).await;
    let out = cli(&app, &["user", "reset-2fa", "alice"], "").await;
    assert!(out.ok(), "{out:?}");
    assert!(out.stdout.contains("two-factor sign-in of \"alice\" turned off; 1 sessions ended"), "{out:?}");
    assert!(!alice.is_logged_in().await);
    assert_redirects_to(&alice.login("alice", PASSWORD).await, "/");
    let out = cli(&app, &["user", "reset-2fa", "nobody"], "").await;
    assert!(!out.ok());
}

crate::tests!(
    the_command_line_turns_it_off_for_a_member_who_lost_their_device,
    enrolment_shows_a_qr_code_and_is_confirmed_by_one_code,
    login_asks_for_a_code_and_makes_no_session_before_it,
    the_second_step_needs_the_first,
    wrong_codes_are_throttled_like_passwords,
    turning_it_off_needs_the_password_and_a_code,
    require_2fa_takes_members_to_enrolment,
);

//! Blocking and unblocking: every session of a blocked member ends at once, on every instance;
//! their login is refused (and counted like a failure); their work stays; unblocking lets them in.

use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::access_helpers::*;
use crate::helpers::*;

async fn blocking_ends_every_session_of_the_member_at_once(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let bob = member_with_role(&app, &admin, "bob", "editor").await;
    let bob_elsewhere = app.new_browser();
    assert_redirects_to(&bob_elsewhere.login("bob", PASSWORD).await, "/");
    let bystander = member_with_role(&app, &admin, "carol", "editor").await;
    let token = token(&bob).await;
    assert_eq!(app.session_count().await, 4);

    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");
    assert_eq!(app.session_count().await, 2, "bob's two sessions are deleted, others stay");
    for browser in [&bob, &bob_elsewhere] {
        assert!(!browser.is_logged_in().await, "the same cookie is now anonymous");
    }
    // A form opened before the block does nothing.
    let response =
        bob.post_form("/create", &[("title", "After block"), ("content", "x"), ("csrf_token", &token)]).await;
    assert!(
        response.status() == StatusCode::FORBIDDEN
            || (response.status() == StatusCode::SEE_OTHER
                && location(response.headers()).starts_with("/login")),
        "{}",
        response.status()
    );
    assert_eq!(app.page_count().await, 0);
    assert!(bystander.is_logged_in().await && admin.is_logged_in().await);
}

async fn a_blocked_member_is_refused_at_login_and_it_counts_as_a_failure(backend: Backend) {
    let limits = Limits {
        login: Limit::parse("3/300").unwrap(),
        account_login: Limit::parse("100/300").unwrap(),
        register: Limit::parse("100/300").unwrap(),
        ..Limits::default()
    };
    let app = spawn_with(backend, Options { limits: Some(limits), ..Options::default() }).await;
    let admin = logged_in(&app, ADMIN).await;
    logged_in(&app, "bob").await;
    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");
    let sessions = app.session_count().await;

    let bob = app.new_browser();
    let response = bob.login("bob", PASSWORD).await;
    assert_forbidden(response, BLOCKED, "the right password").await;
    assert_eq!(app.session_count().await, sessions, "no session for a blocked member");
    assert!(!bob.is_logged_in().await);
    let response = bob.login("bob", "a wrong password").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(body.contains("Invalid username or password."), "{body}");
    assert!(!body.contains(BLOCKED), "a wrong password does not learn that the account is blocked");
    assert_forbidden(bob.login("bob", PASSWORD).await, BLOCKED, "again").await;
    // Three failures from this address: the fourth attempt is throttled.
    assert_eq!(bob.login("bob", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);

    assert_redirects_to(&unblock(&admin, "bob").await, "/admin/users");
    let elsewhere = Browser::from_address(&app.address, "127.0.0.2");
    assert_redirects_to(&elsewhere.login("bob", PASSWORD).await, "/");
    assert!(elsewhere.is_logged_in().await);
}

async fn unblocking_lets_them_back_in_and_their_work_stayed(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let bob = member_with_role(&app, &admin, "bob", "editor").await;
    bob.create_page("Bob's page", "written by bob").await;
    crate::wiki::edit(&bob, "Bob's page", "written by bob, twice", "second").await;
    let pages = pages_state(&app).await;
    let revisions = crate::wiki::revision_count(&app).await;

    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");
    assert_eq!(pages_state(&app).await, pages, "the pages stay as they were");
    assert_eq!(crate::wiki::revision_count(&app).await, revisions);
    let (status, page) = app.new_browser().get_text(&quire::urls::page("Bob's page")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("written by bob, twice") && page.contains("bob"));
    let (_, history) = app.new_browser().get_text(&crate::wiki::at("Bob's page", "/history")).await;
    let rows = table_rows(&history);
    assert_eq!(rows.len(), 2, "{history}");
    for row in rows {
        assert!(text_of(&row).split_whitespace().any(|w| w == "bob"), "the revision keeps its author: {row}");
    }
    // Blocking twice is harmless; so is unblocking twice.
    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");

    assert_redirects_to(&unblock(&admin, "bob").await, "/admin/users");
    assert_redirects_to(&unblock(&admin, "bob").await, "/admin/users");
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");
    assert_eq!(role_of(&app, "bob").await.as_deref(), Some("editor"), "the role is kept");
    assert_redirects_to(
        &crate::wiki::edit(&bob, "Bob's page", "back again", "third").await,
        &quire::urls::page("Bob's page"),
    );
}

async fn a_session_on_another_instance_ends_when_the_member_is_blocked(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    logged_in(&app, "bob").await;
    let other = second_instance(&app);
    let bob_on_b = Browser::new(&other.base);
    assert_redirects_to(&bob_on_b.login("bob", PASSWORD).await, "/");
    assert!(bob_on_b.is_logged_in().await);
    let bob_on_a = bob_on_b.sharing(&app.address);
    assert!(bob_on_a.is_logged_in().await, "the session is shared");

    // Blocked on A: B's very next request with that cookie is anonymous.
    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");
    assert!(!bob_on_b.is_logged_in().await, "instance B still knows bob's session");
    assert_forbidden(bob_on_b.login("bob", PASSWORD).await, BLOCKED, "login on B").await;

    // Unblocked on B by the admin's session there; blocked again from the command line.
    let admin_on_b = admin.sharing(&other.base);
    assert_redirects_to(&unblock(&admin_on_b, "bob").await, "/admin/users");
    assert_redirects_to(&bob_on_b.login("bob", PASSWORD).await, "/");
    let out = cli(&app, &["user", "block", "bob"], "").await;
    assert!(out.ok(), "{out:?}");
    assert!(!bob_on_b.is_logged_in().await);
    assert!(!bob_on_a.is_logged_in().await);
}

async fn block_and_unblock_on_the_command_line(backend: Backend) {
    let (app, _admin) = wiki_with_admin(backend).await;
    let bob = logged_in(&app, "bob").await;
    let out = cli(&app, &["user", "block", "bob"], "").await;
    assert!(out.ok(), "{out:?}");
    assert!(!bob.is_logged_in().await);
    assert_forbidden(bob.login("bob", PASSWORD).await, BLOCKED, "after quire user block").await;
    let out = cli(&app, &["user", "list"], "").await;
    let line = out.stdout.lines().find(|l| l.contains("bob")).unwrap_or_default().to_owned();
    assert!(line.contains("blocked"), "{out:?}");
    let out = cli(&app, &["user", "unblock", "bob"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");
    let out = cli(&app, &["user", "list"], "").await;
    let line = out.stdout.lines().find(|l| l.contains("bob")).unwrap_or_default().to_owned();
    assert!(line.contains("active") && !line.contains("blocked"), "{out:?}");
    let out = cli(&app, &["user", "block", "nobody-here"], "").await;
    assert!(!out.ok(), "{out:?}");
}

crate::tests![
    blocking_ends_every_session_of_the_member_at_once,
    a_blocked_member_is_refused_at_login_and_it_counts_as_a_failure,
    unblocking_lets_them_back_in_and_their_work_stayed,
    a_session_on_another_instance_ends_when_the_member_is_blocked,
    block_and_unblock_on_the_command_line,
];

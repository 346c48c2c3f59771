//! The audit log: one entry per admin action (and page deletion or restore), with time, actor
//! (a username or "command line"), action, target and details; newest first, 50 per screen;
//! refused changes write nothing; no route edits or deletes it.

use reqwest::{Method, StatusCode};

use crate::access_helpers::*;
use crate::access_members_only::revoke_ids;
use crate::helpers::*;

/// The entries shown on an audit page, as text, in the order shown.
fn entries(html: &str) -> Vec<String> {
    table_rows(html).iter().map(|row| text_of(row)).collect()
}

const CLI: &str = "command line";

#[track_caller]
fn assert_entry(entry: &str, action: &str, actor: &str, details: &str) {
    assert!(entry.split_whitespace().any(|w| w == action), "action {action}: {entry}");
    assert!(entry.contains(actor), "actor {actor}: {entry}");
    if actor == CLI {
        assert!(!entry.split_whitespace().any(|w| w == ADMIN), "no member acted: {entry}");
    }
    assert!(entry.contains(details), "details {details:?}: {entry}");
    assert!(entry.chars().any(|c| c.is_ascii_digit()), "a time: {entry}");
}

async fn every_admin_action_is_logged_with_its_actor_newest_first(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let bob = member_with_role(&app, &admin, "bob", "editor").await;
    assert_eq!(admin.get_text("/admin/audit").await.0, StatusCode::OK);
    let audit_table = table_like(&app, "audit").await;
    assert_eq!(count_rows(&app, &audit_table).await, 0, "registering is not an admin action");

    let mut expected: Vec<(&str, &str, String)> = Vec::new();
    set_setting(&admin, "read_access", "members").await;
    expected.push(("setting", ADMIN, "read_access: public → members".into()));
    assert!(cli(&app, &["settings", "set", "registration", "invite"], "").await.ok());
    expected.push(("setting", CLI, "registration: open → invite".into()));
    assert_redirects_to(&set_role(&admin, "bob", "reader").await, "/admin/users");
    expected.push(("role", ADMIN, "bob: editor → reader".into()));
    assert_redirects_to(&block(&admin, "bob").await, "/admin/users");
    expected.push(("block", ADMIN, "bob".into()));
    assert_redirects_to(&unblock(&admin, "bob").await, "/admin/users");
    expected.push(("unblock", ADMIN, "bob".into()));
    invite(&admin, 2, 7, "reader").await;
    expected.push(("invite_create", ADMIN, String::new()));
    let (_, list) = admin.get_text("/admin/invites").await;
    let id = revoke_ids(&list).remove(0);
    assert_redirects_to(
        &post_with_token(&admin, &format!("/admin/invites/{id}/revoke"), &[]).await,
        "/admin/invites",
    );
    expected.push(("invite_revoke", ADMIN, String::new()));
    assert_redirects_to(&add_member(&admin, "temp-member", PASSWORD, None).await, "/admin/users");
    expected.push(("user_add", ADMIN, "temp-member".into()));
    assert_redirects_to(&delete_member(&admin, "temp-member").await, "/admin/users");
    expected.push(("user_delete", ADMIN, "temp-member".into()));
    admin.create_page("Audited page", "text").await;
    assert_redirects_to(&crate::wiki::delete(&admin, "Audited page").await, "/");
    expected.push(("page_delete", ADMIN, "Audited page".into()));
    assert_redirects_to(&crate::wiki::restore(&admin, "Audited page").await, "/wiki/Audited%20page");
    expected.push(("page_restore", ADMIN, "Audited page".into()));
    assert!(cli(&app, &["user", "role", "bob", "editor"], "").await.ok());
    expected.push(("role", CLI, "bob: reader → editor".into()));
    assert!(cli(&app, &["user", "block", "bob"], "").await.ok());
    expected.push(("block", CLI, "bob".into()));
    assert!(cli(&app, &["user", "unblock", "bob"], "").await.ok());
    expected.push(("unblock", CLI, "bob".into()));
    assert!(cli(&app, &["user", "add", "cli-member"], "a password from stdin\n").await.ok());
    expected.push(("user_add", CLI, "cli-member".into()));
    assert!(cli(&app, &["user", "delete", "cli-member"], "").await.ok());
    expected.push(("user_delete", CLI, "cli-member".into()));
    // An editor deleting their own page is logged too, under their name.
    assert_redirects_to(&bob.login("bob", PASSWORD).await, "/");
    bob.create_page("Bob's draft", "text").await;
    assert_redirects_to(&crate::wiki::delete(&bob, "Bob's draft").await, "/");
    expected.push(("page_delete", "bob", "Bob's draft".into()));

    let (status, html) = admin.get_text("/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    let shown = entries(&html);
    assert_eq!(shown.len(), expected.len(), "one entry per action: {shown:#?}");
    for (entry, (action, actor, details)) in shown.iter().zip(expected.iter().rev()) {
        assert_entry(entry, action, actor, details);
    }
    assert_eq!(count_rows(&app, &audit_table).await, expected.len() as u64);
}

async fn refused_changes_write_no_entry(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    member_with_role(&app, &admin, "bob", "editor").await;
    let audit_table = table_like(&app, "audit").await;
    let before = count_rows(&app, &audit_table).await;
    assert_eq!(
        save_settings(&admin, &[("read_access", "everyone")]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(set_role(&admin, "bob", "owner").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(set_role(&admin, ADMIN, "reader").await.status(), StatusCode::CONFLICT);
    assert_eq!(block(&admin, ADMIN).await.status(), StatusCode::CONFLICT);
    assert_eq!(delete_member(&admin, "nobody").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(post_invite(&admin, &[("uses", "0")]).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        admin.post_form(&user_path("bob", "block"), &[("csrf_token", "forged")]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(add_member(&admin, "bob", PASSWORD, None).await.status(), StatusCode::CONFLICT);
    assert!(!cli(&app, &["settings", "set", "registration", "maybe"], "").await.ok());
    assert!(!cli(&app, &["user", "delete", ADMIN], "").await.ok());
    let (_, html) = admin.get_text("/admin/audit").await;
    assert_eq!(
        count_rows(&app, &audit_table).await,
        before,
        "no entry for a refused change: {:#?}",
        entries(&html)
    );
    assert_eq!(entries(&html).len() as u64, before);
}

async fn the_log_shows_fifty_entries_per_screen_newest_first(backend: Backend) {
    let (_app, admin) = wiki_with_admin(backend).await;
    let toggles = 55;
    for i in 1..=toggles {
        let value = if i % 2 == 1 { "members" } else { "public" };
        set_setting(&admin, "read_access", value).await;
    }
    let (status, first) = admin.get_text("/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    let (status, second) = admin.get_text("/admin/audit?page=2").await;
    assert_eq!(status, StatusCode::OK);
    let (one, two) = (entries(&first), entries(&second));
    assert_eq!(one.len(), 50, "fifty per screen");
    assert_eq!(two.len(), 5);
    assert!(first.contains("page=2"), "a link to the older entries: {first}");
    let (_, again) = admin.get_text("/admin/audit?page=1").await;
    assert_eq!(entries(&again), one);
    for (k, entry) in one.iter().chain(&two).enumerate() {
        let toggle = toggles - k;
        let details = if toggle % 2 == 1 {
            "read_access: public → members"
        } else {
            "read_access: members → public"
        };
        assert_entry(entry, "setting", ADMIN, details);
    }
    let response = admin.get("/admin/audit?page=3").await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(
        status == StatusCode::NOT_FOUND || (status == StatusCode::OK && entries(&body).is_empty()),
        "{status}"
    );
    for bad in [
        "/admin/audit?page=0",
        "/admin/audit?page=-1",
        "/admin/audit?page=abc",
        "/admin/audit?page=99999999999999999999",
    ] {
        let status = admin.get(bad).await.status();
        assert!(status.is_client_error() || status == StatusCode::OK, "{bad}: {status}");
    }
}

async fn nothing_edits_or_deletes_the_log(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    set_setting(&admin, "registration", "open").await;
    let audit_table = table_like(&app, "audit").await;
    assert_eq!(count_rows(&app, &audit_table).await, 2);
    assert!(post_routes().iter().all(|r| !r.starts_with("/admin/audit")), "no POST route under /admin/audit");
    let (_, html) = admin.get_text("/admin/audit").await;
    assert!(!html.contains(r#"action="/admin/audit"#), "no form on the log: {html}");
    let token = token(&admin).await;
    let before = dump(&app).await;
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for path in [
            "/admin/audit",
            "/admin/audit/1",
            "/admin/audit/1/delete",
            "/admin/audit/1/edit",
            "/admin/audit/clear",
        ] {
            let response = admin
                .client
                .request(method.clone(), admin.url(path))
                .form(&[("csrf_token", token.as_str()), ("details", "rewritten")])
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status}"
            );
        }
    }
    assert_same_dump(&before, &dump(&app).await, "attempts to change the log");
}

crate::tests![
    every_admin_action_is_logged_with_its_actor_newest_first,
    refused_changes_write_no_entry,
    the_log_shows_fifty_entries_per_screen_newest_first,
    nothing_edits_or_deletes_the_log,
];

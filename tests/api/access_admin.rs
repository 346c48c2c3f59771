//! The admin area: its pages for admins only, the members page, adding and deleting members,
//! and the rule that the last admin stays (web and command line).

use reqwest::StatusCode;

use crate::access_helpers::*;
use crate::access_members_only::revoke_ids;
use crate::helpers::*;

const ADMIN_PAGES: [&str; 5] =
    ["/admin", "/admin/users", "/admin/invites", "/admin/settings", "/admin/audit"];

async fn the_admin_area_links_its_four_pages(backend: Backend) {
    let (_app, admin) = wiki_with_admin(backend).await;
    let (status, html) = admin.get_text("/admin").await;
    assert_eq!(status, StatusCode::OK);
    for page in &ADMIN_PAGES[1..] {
        assert!(html.contains(&format!(r#"href="{page}""#)), "/admin links to {page}: {html}");
    }
    for page in ADMIN_PAGES {
        assert_eq!(admin.get(page).await.status(), StatusCode::OK, "{page}");
    }
}

async fn every_admin_route_refuses_members_who_are_not_admins(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let editor = member_with_role(&app, &admin, "eager-editor", "editor").await;
    let reader = member_with_role(&app, &admin, "quiet-reader", "reader").await;
    invite(&admin, 1, 7, "editor").await;
    let (_, invites) = admin.get_text("/admin/invites").await;
    let values = RouteValues {
        title: "unused".into(),
        revision: "1".into(),
        name: "quiet-reader".into(),
        invite: revoke_ids(&invites).remove(0),
    };
    let before = dump(&app).await;
    for (browser, other) in [(&editor, "quiet-reader"), (&reader, "eager-editor")] {
        for page in ADMIN_PAGES {
            let response = browser.get(page).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "GET {page}");
            let body = response.text().await.unwrap();
            assert!(!body.contains(other) && !body.contains(ADMIN), "{page} shows no other member: {body}");
        }
        for route in post_routes().iter().filter(|r| r.starts_with("/admin")) {
            let path = fill_route(route, &values);
            let fields = [
                ("role", "admin"),
                ("read_access", "members"),
                ("registration", "closed"),
                ("username", "smuggled"),
                ("password", PASSWORD),
                ("uses", "9"),
            ];
            let response = post_with_token(browser, &path, &fields).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "POST {path}");
        }
    }
    assert_same_dump(&before, &dump(&app).await, "admin routes posted by non-admins");
    assert!(editor.is_logged_in().await && reader.is_logged_in().await);
    let visitor = app.new_browser();
    for page in ADMIN_PAGES.iter().map(|p| p.to_string()).chain(["/admin/audit?page=2".to_string()]) {
        assert_login_redirect(&visitor.get(&page).await, &page);
    }
}

/// The row of the members page that names `name`.
fn member_row(html: &str, name: &str) -> String {
    let rows = table_rows(html);
    let found: Vec<&String> =
        rows.iter().filter(|row| text_of(row).split_whitespace().any(|word| word == name)).collect();
    assert_eq!(found.len(), 1, "one row for {name} in {html}");
    found[0].clone()
}

/// The role a row of the members page shows: the selected option of its role form, or else
/// the one role named in its text.
fn role_shown(row: &str) -> String {
    let selected = selected_options(row);
    if !selected.is_empty() {
        assert_eq!(selected.len(), 1, "one role selected: {row}");
        return selected[0].clone();
    }
    let text = text_of(row);
    let named: Vec<&str> = ["admin", "editor", "reader"]
        .into_iter()
        .filter(|r| text.split_whitespace().any(|w| w == *r))
        .collect();
    assert_eq!(named.len(), 1, "one role named: {row}");
    named[0].to_owned()
}

async fn the_members_page_shows_role_status_pages_and_last_login(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = member_with_role(&app, &admin, "prolific", "editor").await;
    for title in ["One by prolific", "Two by prolific"] {
        writer.create_page(title, "text").await;
    }
    member_with_role(&app, &admin, "idle", "reader").await;
    assert_redirects_to(&block(&admin, "idle").await, "/admin/users");
    assert_redirects_to(&add_member(&admin, "never-came", PASSWORD, None).await, "/admin/users");

    let (status, html) = admin.get_text("/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.to_lowercase().contains("last login"), "a last-login column: {html}");
    assert!(html.contains(r#"action="/admin/users""#), "a form to add a member: {html}");
    let words = |row: &str| text_of(row).split_whitespace().map(str::to_owned).collect::<Vec<_>>();

    let row = member_row(&html, "prolific");
    let w = words(&row);
    assert_eq!(role_shown(&row), "editor", "{row}");
    assert!(w.contains(&"active".into()) && !w.contains(&"blocked".into()), "{row}");
    assert!(w.contains(&"2".into()), "two pages written: {row}");
    for action in ["role", "block", "delete"] {
        assert!(row.contains(&format!(r#"action="/admin/users/prolific/{action}""#)), "{action} form: {row}");
    }
    let row = member_row(&html, "idle");
    let w = words(&row);
    assert_eq!(role_shown(&row), "reader", "{row}");
    assert!(w.contains(&"blocked".into()) && !w.contains(&"active".into()), "{row}");
    assert!(row.contains(r#"action="/admin/users/idle/unblock""#), "an unblock form: {row}");
    let row = member_row(&html, ADMIN);
    assert_eq!(role_shown(&row), "admin", "{row}");
    // Someone who never logged in and someone who did are told apart.
    let never = text_of(&member_row(&html, "never-came"));
    let came = text_of(&member_row(&html, "prolific"));
    let strip = |s: &str, name: &str| s.replace(name, "").replace("editor", "").replace(" 2 ", " 0 ");
    assert_ne!(strip(&never, "never-came"), strip(&came, "prolific"), "last login shown: {never} / {came}");
}

async fn admins_add_members_with_a_password_and_a_role(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let response = add_member(&admin, "newbie", PASSWORD, None).await;
    assert_redirects_to(&response, "/admin/users");
    assert_eq!(role_of(&app, "newbie").await.as_deref(), Some("editor"), "editor by default");
    assert_redirects_to(&app.new_browser().login("newbie", PASSWORD).await, "/");
    assert_redirects_to(&add_member(&admin, "new-admin", PASSWORD, Some("admin")).await, "/admin/users");
    assert_eq!(role_of(&app, "new-admin").await.as_deref(), Some("admin"));

    let before = dump(&app).await;
    let long = "x".repeat(51);
    for (name, password, role, status, says) in [
        ("", PASSWORD, None, StatusCode::UNPROCESSABLE_ENTITY, "Username"),
        (long.as_str(), PASSWORD, None, StatusCode::UNPROCESSABLE_ENTITY, "50"),
        ("shorty", "short", None, StatusCode::UNPROCESSABLE_ENTITY, "at least 8"),
        ("bad-role", PASSWORD, Some("owner"), StatusCode::UNPROCESSABLE_ENTITY, ROLE_VALUES),
        ("newbie", PASSWORD, None, StatusCode::CONFLICT, "Username already exists!"),
    ] {
        let response = add_member(&admin, name, password, role).await;
        assert_eq!(response.status(), status, "{name:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(says), "{name:?}: {says}: {body}");
    }
    assert_same_dump(&before, &dump(&app).await, "refused additions");
}

async fn deleting_a_member_keeps_their_pages_and_ends_their_sessions(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let leaver = member_with_role(&app, &admin, "leaver", "editor").await;
    leaver.create_page("Left behind", "still here").await;
    crate::wiki::edit(&leaver, "Left behind", "still here, edited", "edit").await;
    let revisions = crate::wiki::revision_count(&app).await;
    let response = delete_member(&admin, "leaver").await;
    assert_redirects_to(&response, "/admin/users");
    assert_eq!(role_of(&app, "leaver").await, None);
    assert!(!leaver.is_logged_in().await, "their session ended");
    let (status, page) = app.new_browser().get_text("/wiki/Left%20behind").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("still here, edited"));
    assert_eq!(crate::wiki::stored(&app, "Left behind").await.author_id, None, "the author becomes none");
    assert_eq!(crate::wiki::revision_count(&app).await, revisions, "revisions stay");
    let before = dump(&app).await;
    assert_eq!(delete_member(&admin, "leaver").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(block(&admin, "nobody").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(unblock(&admin, "nobody").await.status(), StatusCode::NOT_FOUND);
    assert_same_dump(&before, &dump(&app).await, "actions on unknown members");
}

async fn the_last_admin_cannot_be_demoted_blocked_or_deleted_on_the_web(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let before = dump(&app).await;
    for (what, response) in [
        ("demote to editor", set_role(&admin, ADMIN, "editor").await),
        ("demote to reader", set_role(&admin, ADMIN, "reader").await),
        ("block", block(&admin, ADMIN).await),
        ("delete", delete_member(&admin, ADMIN).await),
    ] {
        assert_eq!(response.status(), StatusCode::CONFLICT, "{what}");
        assert!(response.text().await.unwrap().contains(LAST_ADMIN), "{what}");
    }
    assert_same_dump(&before, &dump(&app).await, "the last admin");
    assert!(admin.is_logged_in().await);
    // Setting the role an admin already has is no demotion.
    assert_redirects_to(&set_role(&admin, ADMIN, "admin").await, "/admin/users");

    // With a second admin, one may go; a blocked admin does not count.
    let deputy = member_with_role(&app, &admin, "deputy", "admin").await;
    assert_redirects_to(&block(&admin, "deputy").await, "/admin/users");
    let before = dump(&app).await;
    let response = set_role(&admin, ADMIN, "editor").await;
    assert_eq!(response.status(), StatusCode::CONFLICT, "the other admin is blocked");
    assert_eq!(block(&admin, ADMIN).await.status(), StatusCode::CONFLICT);
    assert_same_dump(&before, &dump(&app).await, "the last unblocked admin");
    assert_redirects_to(&unblock(&admin, "deputy").await, "/admin/users");
    assert_redirects_to(&deputy.login("deputy", PASSWORD).await, "/");
    assert_redirects_to(&set_role(&deputy, ADMIN, "editor").await, "/admin/users");
    assert_eq!(role_of(&app, ADMIN).await.as_deref(), Some("editor"));
    // Now the deputy is the last one.
    let response = set_role(&deputy, "deputy", "reader").await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains(LAST_ADMIN));
    assert_eq!(role_of(&app, "deputy").await.as_deref(), Some("admin"));
}

async fn the_last_admin_rule_holds_on_the_command_line(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let before = dump(&app).await;
    for args in [
        &["user", "role", ADMIN, "editor"][..],
        &["user", "role", ADMIN, "reader"],
        &["user", "block", ADMIN],
        &["user", "delete", ADMIN],
    ] {
        let out = cli(&app, args, "").await;
        assert!(!out.ok(), "{args:?}: {out:?}");
        assert!(out.stderr.contains(LAST_ADMIN), "{args:?}: {out:?}");
    }
    assert_same_dump(&before, &dump(&app).await, "the last admin on the command line");
    assert!(admin.is_logged_in().await);
    // A blocked second admin does not count; an active one does.
    let out = cli(&app, &["user", "add", "cli-deputy", "--role", "admin"], "a password from stdin\n").await;
    assert!(out.ok(), "{out:?}");
    assert!(cli(&app, &["user", "block", "cli-deputy"], "").await.ok());
    let out = cli(&app, &["user", "delete", ADMIN], "").await;
    assert!(!out.ok() && out.stderr.contains(LAST_ADMIN), "{out:?}");
    assert!(cli(&app, &["user", "unblock", "cli-deputy"], "").await.ok());
    let out = cli(&app, &["user", "role", ADMIN, "reader"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(role_of(&app, ADMIN).await.as_deref(), Some("reader"));
}

async fn two_admins_demoting_each_other_at_once_leave_one(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    for round in 0..4 {
        let name = format!("rival-{round}");
        let rival = member_with_role(&app, &admin, &name, "admin").await;
        // Everyone but boss and the rival is already an editor: two admins race.
        let (a, b) = tokio::join!(set_role(&admin, &name, "editor"), set_role(&rival, ADMIN, "editor"));
        let statuses = [a.status(), b.status()];
        let admins = [role_of(&app, ADMIN).await, role_of(&app, &name).await]
            .iter()
            .filter(|r| r.as_deref() == Some("admin"))
            .count();
        assert_eq!(admins, 1, "round {round}: exactly one admin is left ({statuses:?})");
        assert!(statuses.contains(&StatusCode::SEE_OTHER), "{statuses:?}");
        // The loser is refused: by the last-admin rule, or (already demoted) as no admin.
        assert!(
            statuses.contains(&StatusCode::CONFLICT) || statuses.contains(&StatusCode::FORBIDDEN),
            "{statuses:?}"
        );
        // Whoever is left hands boss the admin role back for the next round.
        if role_of(&app, ADMIN).await.as_deref() != Some("admin") {
            assert_redirects_to(&set_role(&rival, ADMIN, "admin").await, "/admin/users");
            assert_redirects_to(&set_role(&admin, &name, "editor").await, "/admin/users");
        }
    }
}

crate::tests![
    the_admin_area_links_its_four_pages,
    every_admin_route_refuses_members_who_are_not_admins,
    the_members_page_shows_role_status_pages_and_last_login,
    admins_add_members_with_a_password_and_a_role,
    deleting_a_member_keeps_their_pages_and_ends_their_sessions,
    the_last_admin_cannot_be_demoted_blocked_or_deleted_on_the_web,
    the_last_admin_rule_holds_on_the_command_line,
    two_admins_demoting_each_other_at_once_leave_one,
];

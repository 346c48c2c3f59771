//! Registration by invitation and closed registration: valid, used-up, expired, revoked and
//! forged invitations; refusals that store nothing; racing registrations on one use; the token
//! is 256 random bits and only its hash is stored.

use base64::Engine;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::access_helpers::*;
use crate::access_members_only::revoke_ids;
use crate::helpers::*;

/// A visitor opens `/register?invite=TOKEN` and posts it: both refused with `message`, nothing stored.
async fn assert_invitation_refused(app: &TestApp, token: &str, message: &str) {
    let visitor = app.new_browser();
    let users = app.user_count().await;
    let response = visitor.get(&invite_path(token)).await;
    assert_forbidden(response, message, &format!("GET with invitation {token:?}")).await;
    let csrf = visitor_token(&visitor).await;
    let response = post_register(&visitor, "hopeful", Some(token), &csrf).await;
    assert_forbidden(response, message, &format!("POST with invitation {token:?}")).await;
    assert_eq!(app.user_count().await, users, "nothing stored");
    assert_eq!(role_of(app, "hopeful").await, None);
}

/// The whole numbers in a text.
fn numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

async fn a_valid_invitation_shows_the_form_and_registers_with_its_role(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let (status, html) =
        post_invite(&admin, &[("uses", "2"), ("expires_in_days", "3"), ("role", "reader")]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let token = invite_token_in(&html).expect("the new link is shown");
    let (_, later) = admin.get_text("/admin/invites").await;
    assert!(!later.contains(&token), "the link is shown only in the answer that made it: {later}");

    // The form carries the invitation.
    let visitor = app.new_browser();
    let (status, form) = visitor.get_text(&invite_path(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hidden_value(&form, "invite").as_deref(), Some(token.as_str()), "{form}");

    let response = register_invited(&visitor, "first-guest", &token).await;
    assert_redirects_to(&response, "/login");
    assert_eq!(role_of(&app, "first-guest").await.as_deref(), Some("reader"), "the invitation's role");
    assert_redirects_to(&visitor.login("first-guest", PASSWORD).await, "/");
    assert_forbidden(visitor.get("/create").await, READER_REASON, "an invited reader").await;

    // One use left: the list says so, and a second registration takes it.
    let (_, list) = admin.get_text("/admin/invites").await;
    let rows = table_rows(&list);
    assert_eq!(rows.len(), 1, "{list}");
    let row = text_of(&rows[0]);
    assert!(row.contains(ADMIN), "the creator: {row}");
    assert!(row.contains("reader"), "the role: {row}");
    assert!(numbers(&row).contains(&1), "one use left: {row}");
    assert!(!row.contains(&token), "the list never shows the token again: {row}");
    assert_redirects_to(&register_invited(&app.new_browser(), "second-guest", &token).await, "/login");
    assert_eq!(role_of(&app, "second-guest").await.as_deref(), Some("reader"));
    assert_invitation_refused(&app, &token, INVITE_USED_UP).await;
    let (_, list) = admin.get_text("/admin/invites").await;
    let row = text_of(&table_rows(&list)[0]);
    assert!(numbers(&row).contains(&0), "no use left: {row}");
}

async fn the_defaults_are_one_use_seven_days_and_editor(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let (status, html) = post_invite(&admin, &[]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let token = invite_token_in(&html).expect("the link");
    let expiry = expiry_of_only_invitation(&app).await;
    let week = 7 * 24 * 3600 * 1000;
    let now = quire::models::now_ms();
    assert!((now + week - 120_000..=now + week + 1000).contains(&expiry), "seven days from now: {expiry}");
    assert_redirects_to(&register_invited(&app.new_browser(), "default-guest", &token).await, "/login");
    assert_eq!(role_of(&app, "default-guest").await.as_deref(), Some("editor"));
    assert_invitation_refused(&app, &token, INVITE_USED_UP).await;
}

/// The invitations table and its expiry column.
async fn invitation_expiry(app: &TestApp) -> (String, String) {
    let table = table_like(app, "invit").await;
    let columns = columns(app, &table).await;
    let expiry = columns
        .iter()
        .find(|c| c.to_ascii_lowercase().contains("expire"))
        .unwrap_or_else(|| panic!("an expiry column in {table}: {columns:?}"))
        .clone();
    (table, expiry)
}

async fn expiry_of_only_invitation(app: &TestApp) -> i64 {
    let (table, expiry) = invitation_expiry(app).await;
    let backend = app.state.db.read.get_database_backend();
    let q = |name: &str| match backend {
        sea_orm::DatabaseBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    };
    let sql = format!("SELECT {} FROM {}", q(&expiry), q(&table));
    let rows = app.state.db.read.query_all_raw(Statement::from_string(backend, sql)).await.unwrap();
    assert_eq!(rows.len(), 1);
    rows[0].try_get_by_index::<i64>(0).unwrap()
}

/// Moves every invitation's expiry to `ms` (Unix milliseconds): time passing, written down.
async fn set_invitation_expiry(app: &TestApp, ms: i64) {
    let (table, expiry) = invitation_expiry(app).await;
    let backend = app.state.db.write.get_database_backend();
    let q = |name: &str| match backend {
        sea_orm::DatabaseBackend::MySql => format!("`{name}`"),
        _ => format!("\"{name}\""),
    };
    let sql = format!("UPDATE {} SET {} = {ms}", q(&table), q(&expiry));
    let done = app.state.db.write.execute_raw(Statement::from_string(backend, sql)).await.unwrap();
    assert!(done.rows_affected() > 0);
}

async fn an_expired_invitation_is_refused(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let token = invite(&admin, 5, 1, "editor").await;
    // A visitor opened the form while the invitation was valid, and posts it after expiry.
    let late = app.new_browser();
    let (status, form) = late.get_text(&invite_path(&token)).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_in(&form).unwrap();
    set_invitation_expiry(&app, quire::models::now_ms() - 60_000).await;
    let users = app.user_count().await;
    assert_forbidden(
        post_register(&late, "too-late", Some(&token), &csrf).await,
        INVITE_EXPIRED,
        "late POST",
    )
    .await;
    assert_eq!(app.user_count().await, users);
    assert_invitation_refused(&app, &token, INVITE_EXPIRED).await;
    // Still valid a minute before its end.
    set_invitation_expiry(&app, quire::models::now_ms() + 60_000).await;
    assert_redirects_to(&register_invited(&app.new_browser(), "just-in-time", &token).await, "/login");
}

async fn a_revoked_invitation_is_refused(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let token = invite(&admin, 5, 7, "editor").await;
    let (_, list) = admin.get_text("/admin/invites").await;
    let ids = revoke_ids(&list);
    assert_eq!(ids.len(), 1, "one revoke button: {list}");
    // The revoke form needs the token, like every form.
    let response = admin.post_form(&format!("/admin/invites/{}/revoke", ids[0]), &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_redirects_to(&register_invited(&app.new_browser(), "before-revoke", &token).await, "/login");

    let response = post_with_token(&admin, &format!("/admin/invites/{}/revoke", ids[0]), &[]).await;
    assert_redirects_to(&response, "/admin/invites");
    assert_invitation_refused(&app, &token, INVITE_REVOKED).await;
    let (_, list) = admin.get_text("/admin/invites").await;
    assert!(text_of(&list).to_lowercase().contains("revoked"), "the list shows the status: {list}");
    // An unknown id is not found.
    let response = post_with_token(&admin, "/admin/invites/999999/revoke", &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

async fn forged_and_unknown_invitations_are_refused(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let token = invite(&admin, 5, 7, "admin").await;
    let mut flipped = token.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let random = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
    for forged in
        [flipped.as_str(), &token[..42], &format!("{token}A"), random.as_str(), "not-a-token", "%00"]
    {
        assert_invitation_refused(&app, forged, INVITE_INVALID).await;
    }
    assert_eq!(app.user_count().await, 1);
}

async fn invite_only_registration_refuses_without_an_invitation(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let visitor = app.new_browser();
    assert_forbidden(visitor.get("/register").await, INVITE_ONLY, "GET /register").await;
    let csrf = visitor_token(&visitor).await;
    let before = dump(&app).await;
    assert_forbidden(post_register(&visitor, "uninvited", None, &csrf).await, INVITE_ONLY, "POST").await;
    assert_forbidden(
        post_register(&visitor, "uninvited", Some(""), &csrf).await,
        INVITE_ONLY,
        "empty invite",
    )
    .await;
    assert_same_dump(&before, &dump(&app).await, "an uninvited registration");
    assert_eq!(app.user_count().await, 1);
    // Logging in still works for members.
    assert_redirects_to(&app.new_browser().login(ADMIN, PASSWORD).await, "/");
}

async fn closed_registration_refuses_but_admins_still_add_and_invite(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "closed").await;
    let visitor = app.new_browser();
    assert_forbidden(visitor.get("/register").await, CLOSED, "GET /register").await;
    let csrf = visitor_token(&visitor).await;
    let before = dump(&app).await;
    assert_forbidden(post_register(&visitor, "outsider", None, &csrf).await, CLOSED, "POST /register").await;
    assert_same_dump(&before, &dump(&app).await, "a registration while closed");
    assert_eq!(app.user_count().await, 1);

    // Admins add members: with a password, or with an invitation.
    assert_redirects_to(&add_member(&admin, "added", PASSWORD, Some("reader")).await, "/admin/users");
    assert_eq!(role_of(&app, "added").await.as_deref(), Some("reader"));
    assert_redirects_to(&app.new_browser().login("added", PASSWORD).await, "/");
    let token = invite(&admin, 1, 7, "editor").await;
    assert_redirects_to(
        &register_invited(&app.new_browser(), "invited-while-closed", &token).await,
        "/login",
    );
    assert_eq!(role_of(&app, "invited-while-closed").await.as_deref(), Some("editor"));
    // And on the command line.
    let out = cli(&app, &["user", "add", "from-cli"], "a password from stdin\n").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(app.user_count().await, 4);
}

async fn open_registration_also_takes_an_invitation_and_its_role(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let token = invite(&admin, 1, 7, "admin").await;
    assert_redirects_to(&register_invited(&app.new_browser(), "new-admin", &token).await, "/login");
    assert_eq!(role_of(&app, "new-admin").await.as_deref(), Some("admin"));
    // Without one, the default role; with a used-up one, refused even though registration is open.
    assert_redirects_to(&app.new_browser().register("plain", PASSWORD).await, "/login");
    assert_eq!(role_of(&app, "plain").await.as_deref(), Some("editor"));
    assert_invitation_refused(&app, &token, INVITE_USED_UP).await;
}

async fn bad_invitation_values_are_422_and_store_nothing(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let before = dump(&app).await;
    for (field, value, says) in [
        ("uses", "0", "1000"),
        ("uses", "1001", "1000"),
        ("uses", "-1", "1000"),
        ("uses", "many", "1000"),
        ("expires_in_days", "0", "365"),
        ("expires_in_days", "366", "365"),
        ("expires_in_days", "1.5", "365"),
        ("role", "owner", ROLE_VALUES),
        ("role", "", ROLE_VALUES),
    ] {
        let (status, html) = post_invite(&admin, &[(field, value)]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}");
        assert!(html.contains(says), "{field}={value}: the reason names {says:?}: {html}");
        assert_eq!(invite_token_in(&html), None, "{field}={value}: no link");
    }
    assert_same_dump(&before, &dump(&app).await, "refused invitations");
    // The bounds themselves are accepted.
    for (uses, days) in [("1", "1"), ("1000", "365")] {
        let (status, html) = post_invite(&admin, &[("uses", uses), ("expires_in_days", days)]).await;
        assert_eq!(status, StatusCode::OK, "uses {uses}, {days} days: {html}");
    }
    // Only admins invite.
    let editor = member_with_role(&app, &admin, "not-an-admin", "editor").await;
    let before = dump(&app).await;
    let response = post_with_token(&editor, "/admin/invites", &[("uses", "3")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_same_dump(&before, &dump(&app).await, "an editor's invitation");
}

async fn racing_registrations_on_a_one_use_invitation_make_one_member(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    for round in 0..3 {
        let token = invite(&admin, 1, 7, "editor").await;
        let mut ready = Vec::new();
        for i in 0..6 {
            let browser = app.new_browser();
            let (status, form) = browser.get_text(&invite_path(&token)).await;
            assert_eq!(status, StatusCode::OK);
            ready.push((browser, csrf_in(&form).unwrap(), format!("racer-{round}-{i}")));
        }
        let users = app.user_count().await;
        let mut tasks = Vec::new();
        for (browser, csrf, name) in ready {
            let token = token.clone();
            tasks.push(tokio::spawn(async move {
                let response = post_register(&browser, &name, Some(&token), &csrf).await;
                let status = response.status();
                (status, response.text().await.unwrap())
            }));
        }
        let mut created = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::SEE_OTHER => created += 1,
                StatusCode::FORBIDDEN => assert!(body.contains(INVITE_USED_UP), "{body}"),
                other => panic!("a racing registration answered {other}: {body}"),
            }
        }
        assert_eq!(created, 1, "round {round}: exactly one registration");
        assert_eq!(app.user_count().await, users + 1);
    }
}

async fn the_token_is_256_random_bits_and_only_its_hash_is_stored(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let mut tokens = Vec::new();
    for _ in 0..4 {
        let token = invite(&admin, 3, 7, "editor").await;
        assert_eq!(token.len(), 43, "43 characters of base64url: {token}");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        assert_eq!(raw.len(), 32, "32 bytes");
        tokens.push((token, raw));
    }
    for (i, (a, _)) in tokens.iter().enumerate() {
        for (b, _) in &tokens[i + 1..] {
            assert_ne!(a, b);
        }
    }
    for (i, (token, raw)) in tokens.iter().enumerate() {
        for needle in [token.as_bytes(), &token.as_bytes()[..16], &token.as_bytes()[27..], raw.as_slice()] {
            let found = find_in_database(&app, needle).await;
            assert!(found.is_empty(), "the token (or a part of it) is stored: {found:?}");
        }
        let standard = base64::engine::general_purpose::STANDARD.encode(raw);
        assert!(find_in_database(&app, standard.as_bytes()).await.is_empty(), "stored as base64");
        // The invitation still works: it is found by its hash.
        let name = format!("hashed-{i}");
        assert_redirects_to(&register_invited(&app.new_browser(), &name, token).await, "/login");
    }
}

async fn a_failed_registration_does_not_use_the_invitation(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let token = invite(&admin, 1, 7, "reader").await;
    let visitor = app.new_browser();
    let (_, form) = visitor.get_text(&invite_path(&token)).await;
    let csrf = csrf_in(&form).unwrap();
    let before = dump(&app).await;
    // A taken name, a bad password, a mismatched confirmation, a missing token.
    let response = post_register(&visitor, ADMIN, Some(&token), &csrf).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body = response.text().await.unwrap();
    assert!(body.contains("Username already exists!"), "{body}");
    assert_eq!(
        hidden_value(&body, "invite").as_deref(),
        Some(token.as_str()),
        "the form keeps the invitation"
    );
    let short = visitor
        .post_form(
            "/register",
            &[
                ("username", "eager"),
                ("password", "short"),
                ("confirm_password", "short"),
                ("csrf_token", &csrf),
                ("invite", &token),
            ],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mismatch = visitor
        .post_form(
            "/register",
            &[
                ("username", "eager"),
                ("password", PASSWORD),
                ("confirm_password", "something else entirely"),
                ("csrf_token", &csrf),
                ("invite", &token),
            ],
        )
        .await;
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let no_token = visitor
        .post_form(
            "/register",
            &[
                ("username", "eager"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
                ("invite", &token),
            ],
        )
        .await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    assert_same_dump(&before, &dump(&app).await, "failed registrations with an invitation");
    // The one use is still there.
    assert_redirects_to(&register_invited(&visitor, "eager", &token).await, "/login");
    assert_eq!(role_of(&app, "eager").await.as_deref(), Some("reader"));
}

async fn an_invitation_outlives_the_admin_who_made_it(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let deputy = member_with_role(&app, &admin, "deputy", "admin").await;
    set_setting(&deputy, "registration", "invite").await;
    let token = invite(&deputy, 2, 7, "editor").await;
    assert_redirects_to(&delete_member(&admin, "deputy").await, "/admin/users");
    let (status, list) = admin.get_text("/admin/invites").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(table_rows(&list).len(), 1, "{list}");
    assert_redirects_to(&register_invited(&app.new_browser(), "after-deputy", &token).await, "/login");
    let (status, audit) = admin.get_text("/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    let shown = table_rows(&audit).iter().map(|row| text_of(row)).collect::<Vec<_>>();
    assert!(
        shown.iter().any(|e| e.contains("invite_create") && e.contains("deputy")),
        "the entry keeps the deleted actor's name: {shown:#?}"
    );
}

crate::tests![
    a_valid_invitation_shows_the_form_and_registers_with_its_role,
    the_defaults_are_one_use_seven_days_and_editor,
    an_expired_invitation_is_refused,
    a_revoked_invitation_is_refused,
    forged_and_unknown_invitations_are_refused,
    invite_only_registration_refuses_without_an_invitation,
    closed_registration_refuses_but_admins_still_add_and_invite,
    open_registration_also_takes_an_invitation_and_its_role,
    bad_invitation_values_are_422_and_store_nothing,
    racing_registrations_on_a_one_use_invitation_make_one_member,
    the_token_is_256_random_bits_and_only_its_hash_is_stored,
    a_failed_registration_does_not_use_the_invitation,
    an_invitation_outlives_the_admin_who_made_it,
];

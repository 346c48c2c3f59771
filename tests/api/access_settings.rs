//! The wiki's settings (`read_access`, `registration`): in the database, changed at
//! `/admin/settings` or with `quire settings`, in force at the next request on every instance.

use reqwest::StatusCode;

use crate::access_helpers::*;
use crate::helpers::*;

/// True when the page marks `value` as the chosen option or radio button.
fn is_chosen(html: &str, value: &str) -> bool {
    let marker = format!(r#"value="{value}""#);
    html.match_indices(&marker).any(|(at, _)| {
        let start = html[..at].rfind('<').unwrap_or(0);
        let end = at + html[at..].find('>').unwrap_or(0);
        let tag = &html[start..end];
        (tag.starts_with("<option") || tag.starts_with("<input"))
            && (tag.contains("selected") || tag.contains("checked"))
    })
}

async fn the_defaults_are_public_and_open(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = cli(&app, &["settings", "get", "read_access"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.stdout, "public\n");
    let out = cli(&app, &["settings", "get", "registration"], "").await;
    assert_eq!(out.stdout, "open\n", "{out:?}");
    let out = cli(&app, &["settings", "list"], "").await;
    assert!(out.ok(), "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"read_access = public"), "{out:?}");
    assert!(lines.contains(&"registration = open"), "{out:?}");
    // Today's behaviour: visitors read, anyone registers.
    let visitor = app.new_browser();
    assert_eq!(visitor.get("/").await.status(), StatusCode::OK);
    assert_eq!(visitor.get("/recent.atom").await.status(), StatusCode::OK);
    assert_eq!(visitor.get("/register").await.status(), StatusCode::OK);
    assert_redirects_to(&visitor.register("anyone", PASSWORD).await, "/login");
}

async fn settings_commands_set_get_and_list(backend: Backend) {
    let (app, _admin) = wiki_with_admin(backend).await;
    let out = cli(&app, &["settings", "set", "read_access", "members"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(out.stdout, "read_access = members\n");
    assert_eq!(setting(&app, "read_access").await.as_deref(), Some("members"));
    let out = cli(&app, &["settings", "get", "read_access"], "").await;
    assert_eq!(out.stdout, "members\n", "{out:?}");
    // In force at the next request of the running server.
    let visitor = app.new_browser();
    assert_login_redirect(&visitor.get("/").await, "/");

    for value in ["invite", "closed", "open"] {
        let out = cli(&app, &["settings", "set", "registration", value], "").await;
        assert!(out.ok(), "{out:?}");
        assert_eq!(out.stdout, format!("registration = {value}\n"));
        assert_eq!(setting(&app, "registration").await.as_deref(), Some(value));
    }
    let out = cli(&app, &["settings", "list"], "").await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"read_access = members") && lines.contains(&"registration = open"), "{out:?}");
    let out = cli(&app, &["settings", "set", "read_access", "public"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(visitor.get("/").await.status(), StatusCode::OK);
}

async fn bad_keys_and_values_exit_2_naming_what_is_allowed(backend: Backend) {
    let (app, _admin) = wiki_with_admin(backend).await;
    let before = dump(&app).await;
    let keys_named = |out: &Output| out.stderr.contains("read_access") && out.stderr.contains("registration");
    for args in [
        &["settings", "get", "colour"][..],
        &["settings", "set", "colour", "blue"],
        &["settings", "set", "", "public"],
    ] {
        let out = cli(&app, args, "").await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(keys_named(&out), "{args:?}: the allowed keys: {out:?}");
        assert!(out.stdout.is_empty(), "{out:?}");
    }
    for value in ["everyone", "", "private"] {
        let out = cli(&app, &["settings", "set", "read_access", value], "").await;
        assert_eq!(out.code, Some(2), "read_access {value:?}: {out:?}");
        assert!(out.stderr.contains("public") && out.stderr.contains("members"), "{out:?}");
    }
    for value in ["maybe", "invites", "none"] {
        let out = cli(&app, &["settings", "set", "registration", value], "").await;
        assert_eq!(out.code, Some(2), "registration {value:?}: {out:?}");
        for allowed in ["open", "invite", "closed"] {
            assert!(out.stderr.contains(allowed), "{out:?}");
        }
    }
    assert_same_dump(&before, &dump(&app).await, "refused settings commands");
    assert_eq!(effective_setting(&app, "read_access").await, "public");
    assert_eq!(effective_setting(&app, "registration").await, "open");
}

async fn a_change_on_one_instance_holds_at_the_next_request_on_another(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    admin.create_page("Shared page", "seen by both").await;
    let other = second_instance(&app);
    let on_b = Browser::new(&other.base);
    let admin_on_b = admin.sharing(&other.base);
    assert_eq!(on_b.get("/wiki/Shared%20page").await.status(), StatusCode::OK);
    assert!(admin_on_b.is_logged_in().await, "one session for both instances");

    // Changed on A: B applies it at its next request (no waiting).
    set_setting(&admin, "read_access", "members").await;
    assert_login_redirect(&on_b.get("/wiki/Shared%20page").await, "/wiki/Shared%20page");
    assert_eq!(on_b.get("/recent.atom").await.status(), StatusCode::UNAUTHORIZED);
    // Changed on B: A applies it.
    set_setting(&admin_on_b, "read_access", "public").await;
    assert_eq!(app.new_browser().get("/wiki/Shared%20page").await.status(), StatusCode::OK);
    assert_eq!(on_b.get("/wiki/Shared%20page").await.status(), StatusCode::OK);

    // Changed on the command line: both apply it.
    let out = cli(&app, &["settings", "set", "registration", "closed"], "").await;
    assert!(out.ok(), "{out:?}");
    for base in [app.address.as_str(), other.base.as_str()] {
        assert_forbidden(Browser::new(base).get("/register").await, CLOSED, base).await;
    }
    let out = cli(&app, &["settings", "set", "registration", "open"], "").await;
    assert!(out.ok(), "{out:?}");
    for base in [app.address.as_str(), other.base.as_str()] {
        assert_eq!(Browser::new(base).get("/register").await.status(), StatusCode::OK, "{base}");
    }
    let out = cli(&app, &["settings", "set", "read_access", "members"], "").await;
    assert!(out.ok(), "{out:?}");
    for base in [app.address.as_str(), other.base.as_str()] {
        assert_login_redirect(&Browser::new(base).get("/").await, "/");
    }
}

async fn the_settings_form_shows_and_saves_both_settings(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let (status, form) = admin.get_text("/admin/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"name="read_access""#) && form.contains(r#"name="registration""#), "{form}");
    assert!(is_chosen(&form, "public") && is_chosen(&form, "open"), "the current values: {form}");
    assert!(!is_chosen(&form, "members") && !is_chosen(&form, "closed"), "{form}");

    let response = save_settings(&admin, &[("read_access", "members"), ("registration", "closed")]).await;
    assert_redirects_to(&response, "/admin/settings");
    let (status, page) = follow(&admin, response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(crate::wiki::flashes(&page), ["Settings saved."]);
    assert!(is_chosen(&page, "members") && is_chosen(&page, "closed"), "{page}");
    assert_eq!(setting(&app, "read_access").await.as_deref(), Some("members"));
    assert_eq!(setting(&app, "registration").await.as_deref(), Some("closed"));

    // A missing field keeps its setting.
    assert_redirects_to(&save_settings(&admin, &[("registration", "invite")]).await, "/admin/settings");
    assert_eq!(setting(&app, "read_access").await.as_deref(), Some("members"));
    assert_eq!(setting(&app, "registration").await.as_deref(), Some("invite"));
    assert_redirects_to(&save_settings(&admin, &[("read_access", "public")]).await, "/admin/settings");
    assert_eq!(setting(&app, "read_access").await.as_deref(), Some("public"));
    assert_eq!(setting(&app, "registration").await.as_deref(), Some("invite"));
    let out = cli(&app, &["settings", "list"], "").await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.contains(&"read_access = public") && lines.contains(&"registration = invite"), "{out:?}");
}

/// The fields of one form.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn invalid_settings_are_422_and_change_neither(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let before = dump(&app).await;
    let cases: [(Fields, &[&str]); 6] = [
        (&[("read_access", "everyone"), ("registration", "closed")], &[READ_ACCESS_VALUES]),
        (&[("read_access", "members"), ("registration", "maybe")], &[REGISTRATION_VALUES]),
        (
            &[("read_access", "nobody"), ("registration", "sometimes")],
            &[READ_ACCESS_VALUES, REGISTRATION_VALUES],
        ),
        (&[("read_access", "")], &[READ_ACCESS_VALUES]),
        (&[("registration", "open; DROP TABLE settings")], &[REGISTRATION_VALUES]),
        (&[("read_access", "<script>alert(1)</script>")], &[READ_ACCESS_VALUES]),
    ];
    for (fields, messages) in cases {
        let response = save_settings(&admin, fields).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let body = response.text().await.unwrap();
        for message in messages {
            assert!(body.contains(message), "{fields:?}: {message}: {body}");
        }
        assert!(!body.contains("<script>alert(1)</script>"), "the bad value is escaped: {body}");
        assert_same_dump(&before, &dump(&app).await, &format!("{fields:?}"));
    }
    assert_eq!(effective_setting(&app, "read_access").await, "public");
    assert_eq!(setting(&app, "registration").await.as_deref(), Some("invite"));
}

async fn the_settings_form_refuses_a_missing_or_forged_token(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let other_admin = member_with_role(&app, &admin, "second-admin", "admin").await;
    let before = dump(&app).await;
    let fields = [("read_access", "members"), ("registration", "closed")];
    let response = admin.post_form("/admin/settings", &fields).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "no token");
    let mut forged = fields.to_vec();
    forged.push(("csrf_token", "forged-token-value"));
    assert_eq!(admin.post_form("/admin/settings", &forged).await.status(), StatusCode::FORBIDDEN, "forged");
    // A token of another admin's session is refused too.
    let foreign = token(&other_admin).await;
    let mut foreign_fields = fields.to_vec();
    foreign_fields.push(("csrf_token", &foreign));
    assert_eq!(admin.post_form("/admin/settings", &foreign_fields).await.status(), StatusCode::FORBIDDEN);
    assert_same_dump(&before, &dump(&app).await, "settings posted without a valid token");
    assert_eq!(effective_setting(&app, "read_access").await, "public");
}

async fn only_admins_change_settings(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let editor = member_with_role(&app, &admin, "plain-editor", "editor").await;
    let reader = member_with_role(&app, &admin, "plain-reader", "reader").await;
    let before = dump(&app).await;
    for browser in [&editor, &reader] {
        assert_eq!(browser.get("/admin/settings").await.status(), StatusCode::FORBIDDEN);
        let response = save_settings(browser, &[("read_access", "members")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    let visitor = app.new_browser();
    assert_login_redirect(&visitor.get("/admin/settings").await, "/admin/settings");
    let token = visitor_token(&visitor).await;
    let response =
        visitor.post_form("/admin/settings", &[("read_access", "members"), ("csrf_token", &token)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(response.headers()).starts_with("/login"));
    assert_same_dump(&before, &dump(&app).await, "non-admins posting settings");
}

crate::tests![
    the_defaults_are_public_and_open,
    settings_commands_set_get_and_list,
    bad_keys_and_values_exit_2_naming_what_is_allowed,
    a_change_on_one_instance_holds_at_the_next_request_on_another,
    the_settings_form_shows_and_saves_both_settings,
    invalid_settings_are_422_and_change_neither,
    the_settings_form_refuses_a_missing_or_forged_token,
    only_admins_change_settings,
];

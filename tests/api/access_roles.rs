//! Roles: admin, editor (the default), reader. A table of role × action → answer, each row
//! also checking that a refused action changed nothing in the database and an allowed one did;
//! the role form and the role commands.

use reqwest::{Method, StatusCode};

use crate::access_helpers::*;
use crate::helpers::*;
use crate::wiki::{at, revisions_of, stored};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Reader,
    Editor,
    Admin,
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Anonymous => "anonymous",
            Who::Reader => "reader",
            Who::Editor => "editor",
            Who::Admin => "admin",
        }
    }
}

/// What an action must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 200, and nothing stored.
    Shown,
    /// 303 (not to the login page), and something stored.
    Done,
    /// 303 to `/login?next=` the requested path; nothing stored.
    Login,
    /// 303 to the login page (any `next`) or 403; nothing stored.
    Refused,
    /// 403 saying the reader's reason; nothing stored.
    ReaderRefused,
    /// 403; nothing stored.
    Forbidden,
}

struct Action {
    name: &'static str,
    method: Method,
    path: String,
    fields: Vec<(String, String)>,
}

fn get(name: &'static str, path: String) -> Action {
    Action { name, method: Method::GET, path, fields: Vec::new() }
}

fn post(name: &'static str, path: String, fields: &[(&str, &str)]) -> Action {
    let fields = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Action { name, method: Method::POST, path, fields }
}

fn title(who: Who, what: &str) -> String {
    format!("{} {what}", who.name())
}

/// The actions of the table, on pages prepared for `who`.
async fn actions(app: &TestApp, who: Who) -> Vec<Action> {
    let other = title(who, "other");
    let base = stored(app, &other).await.revision_id.unwrap().to_string();
    let first = revisions_of(app, &other).await.last().unwrap().id;
    let edited = format!("edited by the {}", who.name());
    let created = title(who, "created");
    let renamed = title(who, "renamed");
    let mut list = vec![
        get("open the create form", "/create".into()),
        post("create a page", "/create".into(), &[("title", &created), ("content", "new text")]),
        get("open the editor", at(&other, "/edit")),
        post(
            "edit a page",
            at(&other, "/edit"),
            &[("content", &edited), ("summary", "role test"), ("base_revision", &base)],
        ),
        post("preview", "/preview".into(), &[("content", "**preview**")]),
        post("revert to the first revision", at(&other, &format!("/revisions/{first}/revert")), &[]),
        get("open the rename form", at(&title(who, "renamable"), "/rename")),
        post("rename a page", at(&title(who, "renamable"), "/rename"), &[("new_title", &renamed)]),
    ];
    if who != Who::Anonymous {
        list.push(post("delete an own page", at(&title(who, "own"), "/delete"), &[("confirm", "yes")]));
    }
    list.extend([
        post("delete another's page", at(&title(who, "victim"), "/delete"), &[("confirm", "yes")]),
        post("restore a page", at(&title(who, "deleted"), "/restore"), &[]),
        get("the admin area", "/admin".into()),
        get("the members", "/admin/users".into()),
        get("the invitations", "/admin/invites".into()),
        get("the settings", "/admin/settings".into()),
        get("the audit log", "/admin/audit".into()),
        get("the profile", "/profile".into()),
    ]);
    list
}

/// The answer `who` must get to the action named `action`.
fn expected(who: Who, action: &str) -> Expect {
    use Expect::*;
    let admin_page = matches!(
        action,
        "the admin area" | "the members" | "the invitations" | "the settings" | "the audit log"
    );
    let shown = matches!(
        action,
        "open the create form" | "open the editor" | "open the rename form" | "preview" | "the profile"
    );
    match who {
        Who::Anonymous if action == "preview" => Refused,
        Who::Anonymous => {
            if matches!(
                action,
                "open the create form" | "open the editor" | "open the rename form" | "the profile"
            ) || admin_page
            {
                Login
            } else {
                Refused
            }
        }
        Who::Reader if action == "the profile" => Shown,
        Who::Reader if admin_page => Forbidden,
        Who::Reader => ReaderRefused,
        Who::Editor if admin_page || action == "delete another's page" || action == "restore a page" => {
            Forbidden
        }
        Who::Editor | Who::Admin if shown || admin_page => Shown,
        Who::Editor | Who::Admin => Done,
    }
}

/// A wiki with, for each role, pages written by `writer` (other, renamable, victim, deleted)
/// and one written by the member themself (own). The reader wrote theirs while an editor.
async fn prepared(backend: Backend) -> (TestApp, Vec<(Who, Browser)>) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = member_with_role(&app, &admin, "writer", "editor").await;
    let reader = logged_in(&app, "rosa").await;
    let editor = logged_in(&app, "eddie").await;
    let visitor = app.new_browser();
    let everyone = vec![
        (Who::Anonymous, visitor),
        (Who::Reader, reader),
        (Who::Editor, editor),
        (Who::Admin, admin.clone()),
    ];
    for (who, browser) in &everyone {
        for what in ["other", "renamable", "victim", "deleted"] {
            let name = title(*who, what);
            assert_redirects_to(&writer.create_page(&name, "original text").await, &quire::urls::page(&name));
        }
        assert_redirects_to(&crate::wiki::delete(&admin, &title(*who, "deleted")).await, "/");
        if *who != Who::Anonymous {
            let own = title(*who, "own");
            assert_redirects_to(&browser.create_page(&own, "my own text").await, &quire::urls::page(&own));
        }
    }
    assert_redirects_to(&set_role(&admin, "rosa", "reader").await, "/admin/users");
    (app, everyone)
}

async fn each_role_gets_the_right_answer_to_each_action(backend: Backend) {
    let (app, everyone) = prepared(backend).await;
    let mut checked = 0;
    // Every mismatch is collected, so that one run shows the whole table's state.
    let mut wrong: Vec<String> = Vec::new();
    for (who, browser) in &everyone {
        let token = match who {
            Who::Anonymous => visitor_token(browser).await,
            _ => token(browser).await,
        };
        for action in actions(&app, *who).await {
            let expect = expected(*who, action.name);
            let what = format!("{} / {} ({} {})", who.name(), action.name, action.method, action.path);
            let before = dump(&app).await;
            let mut fields: Vec<(&str, &str)> =
                action.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            fields.push(("csrf_token", &token));
            let request = browser.client.request(action.method.clone(), browser.url(&action.path));
            let request = if action.method == Method::POST { request.form(&fields) } else { request };
            let response = request.send().await.unwrap();
            let status = response.status();
            let target = location(response.headers());
            let next = target.strip_prefix("/login?next=").map(percent_decode);
            let answered_right = match expect {
                Expect::Login => {
                    status == StatusCode::SEE_OTHER && next.as_deref() == Some(action.path.as_str())
                }
                Expect::Refused => {
                    (status == StatusCode::SEE_OTHER && target.starts_with("/login"))
                        || status == StatusCode::FORBIDDEN
                }
                Expect::Shown => status == StatusCode::OK,
                Expect::Done => status == StatusCode::SEE_OTHER && !target.starts_with("/login"),
                Expect::ReaderRefused | Expect::Forbidden => status == StatusCode::FORBIDDEN,
            };
            if !answered_right {
                wrong.push(format!("{what}: expected {expect:?}, got {status} {target}"));
            }
            let body = response.text().await.unwrap();
            if let Expect::ReaderRefused = expect
                && !body.contains(READER_REASON)
            {
                let shown = text_of(body.split("<main").nth(1).unwrap_or(&body));
                wrong.push(format!("{what}: the page does not say {READER_REASON:?}: {shown}"));
            }
            let after = dump(&app).await;
            match expect {
                Expect::Done if before == after => wrong.push(format!("{what}: nothing was stored")),
                Expect::Done => {}
                _ if before != after => {
                    let changed: Vec<&String> =
                        before.keys().filter(|t| before.get(*t) != after.get(*t)).collect();
                    wrong.push(format!("{what}: refused, yet the tables {changed:?} changed"));
                }
                _ => {}
            }
            checked += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} role × action checks failed:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(checked, 4 * 17 - 1, "every role × action was checked");

    // What the allowed actions did, to the letter.
    for who in [Who::Editor, Who::Admin] {
        let other = stored(&app, &title(who, "other")).await;
        assert_eq!(other.content, "original text", "{}: edited, then reverted", who.name());
        assert_eq!(revisions_of(&app, &title(who, "other")).await.len(), 3);
        assert_eq!(stored(&app, &title(who, "created")).await.content, "new text");
        assert_eq!(stored(&app, &title(who, "renamed")).await.content, "original text");
        assert!(stored(&app, &title(who, "own")).await.deleted_at.is_some());
    }
    assert!(stored(&app, &title(Who::Editor, "victim")).await.deleted_at.is_none());
    assert!(stored(&app, &title(Who::Admin, "victim")).await.deleted_at.is_some());
    assert!(stored(&app, &title(Who::Editor, "deleted")).await.deleted_at.is_some());
    assert!(stored(&app, &title(Who::Admin, "deleted")).await.deleted_at.is_none());
}

async fn readers_keep_their_profile_avatar_and_logout(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let reader = member_with_role(&app, &admin, "quiet", "reader").await;
    let (status, _) = reader.get_text("/profile").await;
    assert_eq!(status, StatusCode::OK);
    assert_redirects_to(&reader.upload_avatar("me.png", crate::profile::png(12, 12)).await, "/profile");
    let (_, profile) = reader.get_text("/profile").await;
    assert!(profile.contains(r#"<img src="/avatars/"#), "{profile}");
    // A reader reads.
    admin.create_page("Readable", "words to read").await;
    let (status, page) = reader.get_text("/wiki/Readable").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("words to read"));
    assert!(!page.contains(r#"href="/wiki/Readable/edit""#), "no edit link for a reader: {page}");
    assert_redirects_to(&reader.logout().await, "/login");
    assert!(!reader.is_logged_in().await);
}

async fn a_role_change_holds_at_the_next_request_of_an_open_session(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    let member = member_with_role(&app, &admin, "shifty", "editor").await;
    assert_eq!(member.get("/create").await.status(), StatusCode::OK);
    let token = token(&member).await;
    assert_redirects_to(&set_role(&admin, "shifty", "reader").await, "/admin/users");
    assert_forbidden(member.get("/create").await, READER_REASON, "the demoted session").await;
    // A token taken while an editor does not help.
    let response =
        member.post_form("/create", &[("title", "Sneaky"), ("content", "x"), ("csrf_token", &token)]).await;
    assert_forbidden(response, READER_REASON, "a form opened before the demotion").await;
    assert_eq!(app.page_count().await, 0);
    assert_redirects_to(&set_role(&admin, "shifty", "admin").await, "/admin/users");
    assert_eq!(member.get("/admin").await.status(), StatusCode::OK);
    assert_redirects_to(&set_role(&admin, "shifty", "editor").await, "/admin/users");
    assert_eq!(member.get("/admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(member.get("/create").await.status(), StatusCode::OK);
}

async fn the_role_form_refuses_bad_roles_and_unknown_members(backend: Backend) {
    let (app, admin) = wiki_with_admin(backend).await;
    member_with_role(&app, &admin, "steady", "editor").await;
    let before = dump(&app).await;
    for bad in ["", "superuser", "Admin", "readers", "admin;reader"] {
        let response = set_role(&admin, "steady", bad).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "role {bad:?}");
        assert!(response.text().await.unwrap().contains(ROLE_VALUES), "role {bad:?}");
    }
    let response = post_with_token(&admin, &user_path("steady", "role"), &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "no role at all");
    assert_same_dump(&before, &dump(&app).await, "refused role changes");

    let response = set_role(&admin, "nobody-by-that-name", "reader").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_same_dump(&before, &dump(&app).await, "a role for an unknown member");
    // An editor cannot change roles, not even their own.
    let editor = app.new_browser();
    editor.login("steady", PASSWORD).await;
    assert_eq!(set_role(&editor, "steady", "admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(role_of(&app, "steady").await.as_deref(), Some("editor"));
    // Each role is accepted.
    for role in ["reader", "admin", "editor"] {
        assert_redirects_to(&set_role(&admin, "steady", role).await, "/admin/users");
        assert_eq!(role_of(&app, "steady").await.as_deref(), Some(role));
    }
}

async fn role_commands_set_and_show_roles(backend: Backend) {
    let (app, _admin) = wiki_with_admin(backend).await;
    let out = cli(&app, &["user", "add", "cli-reader", "--role", "reader"], "a password from stdin\n").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(role_of(&app, "cli-reader").await.as_deref(), Some("reader"));
    let out = cli(&app, &["user", "add", "cli-editor"], "a password from stdin\n").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(role_of(&app, "cli-editor").await.as_deref(), Some("editor"), "editor by default");

    let out = cli(&app, &["user", "role", "cli-reader", "editor"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(role_of(&app, "cli-reader").await.as_deref(), Some("editor"));
    let out = cli(&app, &["user", "promote", "cli-editor"], "").await;
    assert!(out.ok(), "{out:?}");
    assert_eq!(role_of(&app, "cli-editor").await.as_deref(), Some("admin"));

    let before = dump(&app).await;
    let out = cli(&app, &["user", "role", "cli-reader", "owner"], "").await;
    assert!(!out.ok(), "{out:?}");
    for role in ["admin", "editor", "reader"] {
        assert!(out.stderr.contains(role), "the allowed roles: {out:?}");
    }
    let out = cli(&app, &["user", "role", "no-such-member", "reader"], "").await;
    assert!(!out.ok(), "{out:?}");
    let out = cli(&app, &["user", "add", "cli-bad", "--role", "owner"], "a password from stdin\n").await;
    assert!(!out.ok(), "{out:?}");
    assert_same_dump(&before, &dump(&app).await, "refused role commands");

    let out = cli(&app, &["user", "list"], "").await;
    assert!(out.ok(), "{out:?}");
    let line = |name: &str| out.stdout.lines().find(|l| l.contains(name)).unwrap_or_default().to_owned();
    assert!(line("cli-reader").contains("editor"), "{}", out.stdout);
    assert!(line("cli-editor").contains("admin"), "{}", out.stdout);
    assert!(line(ADMIN).contains("admin"), "{}", out.stdout);
    assert!(line("cli-reader").contains("active"), "the status: {}", out.stdout);
}

crate::tests![
    each_role_gets_the_right_answer_to_each_action,
    readers_keep_their_profile_avatar_and_logout,
    a_role_change_holds_at_the_next_request_of_an_open_session,
    the_role_form_refuses_bad_roles_and_unknown_members,
    role_commands_set_and_show_roles,
];

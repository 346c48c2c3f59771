//! Members-only reading (`read_access=members`): every anonymous request is sent to log in
//! (the Atom feed answers 401), no anonymous answer carries a title, a text, a username or a
//! count, and only the login and registration forms, static files and the favicon stay open.

use reqwest::{Method, StatusCode};

use crate::access_helpers::*;
use crate::helpers::*;
use crate::wiki::{at, edit, revisions_of};

const SECRET_TITLE: &str = "Quarterly Xylophone Budget";
const OTHER_TITLE: &str = "Zeppelin Roster";
const WRITER: &str = "hortensia";
const PAINTER: &str = "bartholomew";

/// What no anonymous answer may contain, lower-cased.
fn secrets() -> Vec<String> {
    ["xylophone", "zeppelin", "mauve-otter", "teal-heron", "periwinkle-lynx", WRITER, PAINTER, ADMIN]
        .iter()
        .map(|s| s.to_lowercase())
        .collect()
}

/// A wiki with pages (one with two revisions and a link), three members (one with an avatar),
/// switched to members-only reading. Returns the app, the admin, and the avatar's path.
async fn private_wiki(backend: Backend) -> (TestApp, Browser, String) {
    let (app, admin) = wiki_with_admin(backend).await;
    let writer = logged_in(&app, WRITER).await;
    assert_redirects_to(
        &writer.create_page(SECRET_TITLE, "the vault code is mauve-otter-42").await,
        &quire::urls::page(SECRET_TITLE),
    );
    let response =
        edit(&writer, SECRET_TITLE, "the vault code is mauve-otter-42 and teal-heron-7", "more").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let painter = logged_in(&app, PAINTER).await;
    painter.create_page(OTHER_TITLE, "crew: periwinkle-lynx, see [[Quarterly Xylophone Budget]]").await;
    let png = crate::profile::png(16, 16);
    assert_redirects_to(&painter.upload_avatar("me.png", png).await, "/profile");
    let (_, profile) = painter.get_text("/profile").await;
    let avatar = profile
        .split(r#"<img src=""#)
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .expect("the profile shows the avatar");
    assert!(avatar.starts_with("/avatars/"), "{avatar}");
    set_setting(&admin, "read_access", "members").await;
    assert_eq!(setting(&app, "read_access").await.as_deref(), Some("members"));
    (app, admin, avatar)
}

/// Fails when a body or a header (other than `Location`, which echoes the request) of an
/// anonymous answer names anything the wiki holds.
fn assert_tells_nothing(what: &str, headers: &reqwest::header::HeaderMap, body: &str, extra: &[String]) {
    let lower = body.to_lowercase();
    for secret in secrets().iter().chain(extra) {
        assert!(!lower.contains(&secret.to_lowercase()), "{what}: the body names {secret:?}:\n{body}");
        for (name, value) in headers {
            if name == reqwest::header::LOCATION {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes()).to_lowercase();
            assert!(!value.contains(&secret.to_lowercase()), "{what}: the header {name} names {secret:?}");
        }
    }
}

/// The GET routes a visitor may try, with real values.
async fn anonymous_get_paths(app: &TestApp, avatar: &str) -> Vec<String> {
    let revisions = revisions_of(app, SECRET_TITLE).await;
    let (newest, oldest) = (revisions[0].id, revisions[revisions.len() - 1].id);
    let page = quire::urls::page(SECRET_TITLE);
    vec![
        "/".into(),
        "/?page=2".into(),
        page.clone(),
        quire::urls::page(OTHER_TITLE),
        "/wiki/No%20Such%20Page".into(),
        format!("{page}/history"),
        format!("{page}/revisions/{oldest}"),
        format!("{page}/revisions/999999"),
        format!("{page}/diff?from={oldest}&to={newest}"),
        "/search?q=mauve".into(),
        "/search?q=Xylophone".into(),
        "/search?q=nothing-matches-this".into(),
        "/recent".into(),
        format!("/users/{WRITER}"),
        "/users/nobody-at-all".into(),
        avatar.to_owned(),
        "/avatars/0123456789abcdef.png".into(),
        "/create".into(),
        "/create?title=Fresh".into(),
        format!("{page}/edit"),
        format!("{page}/rename"),
        "/profile".into(),
        "/logout".into(),
        "/admin".into(),
        "/admin/users".into(),
        "/admin/invites".into(),
        "/admin/settings".into(),
        "/admin/audit".into(),
        "/admin/audit?page=2".into(),
        "/nowhere".into(),
        format!("{page}/nothing-here"),
        "/wiki/Quarterly%20Xylophone/Budget".into(),
    ]
}

async fn every_anonymous_route_redirects_to_login_and_names_nothing(backend: Backend) {
    let (app, _admin, avatar) = private_wiki(backend).await;
    let extra = vec![avatar.trim_start_matches("/avatars/").to_owned()];
    let visitor = app.new_browser();
    let mut bodies = Vec::new();
    for path in anonymous_get_paths(&app, &avatar).await {
        for method in [Method::GET, Method::HEAD] {
            let response = visitor.client.request(method.clone(), visitor.url(&path)).send().await.unwrap();
            assert_login_redirect(&response, &path);
            let headers = response.headers().clone();
            let body = response.text().await.unwrap();
            assert_tells_nothing(&format!("{method} {path}"), &headers, &body, &extra);
            if method == Method::GET {
                bodies.push((path.clone(), body));
            }
        }
    }
    // A page that exists and one that does not answer alike.
    let body_of = |path: &str| bodies.iter().find(|(p, _)| p == path).unwrap().1.clone();
    let existing = body_of(&quire::urls::page(SECRET_TITLE));
    let missing = body_of("/wiki/No%20Such%20Page");
    assert_eq!(
        existing
            .replace("Quarterly%2520Xylophone%2520Budget", "X")
            .replace("Quarterly%20Xylophone%20Budget", "X"),
        missing.replace("No%2520Such%2520Page", "X").replace("No%20Such%20Page", "X"),
        "an existing page and a missing one are told apart"
    );

    // The feed: 401, and nothing in it.
    let response = visitor.get("/recent.atom").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    assert_tells_nothing("GET /recent.atom", &headers, &body, &extra);
    assert!(!body.contains("<entry"), "{body}");
}

async fn anonymous_posts_are_sent_to_log_in_and_change_nothing(backend: Backend) {
    let (app, admin, _avatar) = private_wiki(backend).await;
    // An invitation exists, so that its revoke route has a real id.
    let (_, invites) = {
        let token = invite(&admin, 1, 7, "editor").await;
        assert_eq!(token.len(), 43);
        admin.get_text("/admin/invites").await
    };
    let invite_id = revoke_ids(&invites).into_iter().next().expect("a revoke form on /admin/invites");
    let revision = revisions_of(&app, SECRET_TITLE).await.last().unwrap().id.to_string();
    let values = RouteValues { title: SECRET_TITLE.into(), revision, name: WRITER.into(), invite: invite_id };
    let visitor = app.new_browser();
    let token = visitor_token(&visitor).await;
    let before = dump(&app).await;
    for route in post_routes() {
        // The ways in, open to visitors on a members-only wiki (each has its own tests).
        let way_in = [
            "/login",
            "/register",
            "/login/two-factor",
            "/password/forgot",
            "/password/reset",
            "/email/verify",
        ];
        if way_in.contains(&route.as_str()) {
            continue;
        }
        let path = fill_route(&route, &values);
        let fields = [
            ("title", "Planted by a visitor"),
            ("content", "planted"),
            ("new_title", "Planted"),
            ("role", "admin"),
            ("read_access", "public"),
            ("registration", "open"),
            ("username", "intruder"),
            ("password", PASSWORD),
            ("uses", "5"),
        ];
        for with_token in [true, false] {
            let mut form: Vec<(&str, &str)> = fields.to_vec();
            if with_token {
                form.push(("csrf_token", &token));
            }
            let response = visitor.post_form(&path, &form).await;
            assert_eq!(response.status(), StatusCode::SEE_OTHER, "POST {path} (token: {with_token})");
            let target = location(response.headers());
            assert!(target.starts_with("/login"), "POST {path}: redirected to {target}");
            let headers = response.headers().clone();
            let body = response.text().await.unwrap();
            assert_tells_nothing(&format!("POST {path}"), &headers, &body, &[]);
        }
    }
    assert_same_dump(&before, &dump(&app).await, "anonymous POSTs under members-only");
}

/// The ids in the revoke forms of the invitations page.
pub fn revoke_ids(html: &str) -> Vec<String> {
    html.split(r#"action="/admin/invites/"#)
        .skip(1)
        .filter_map(|rest| {
            let id = &rest[..rest.find('/')?];
            rest[id.len()..].starts_with("/revoke").then(|| id.to_owned())
        })
        .collect()
}

/// The answer with form tokens and request-specific values blanked.
fn normalized(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find(r#"name="csrf_token" value=""#) {
        let start = at + r#"name="csrf_token" value=""#.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

async fn anonymous_answers_do_not_depend_on_what_the_wiki_holds(backend: Backend) {
    let (app, admin, _avatar) = private_wiki(backend).await;
    let paths = [
        "/",
        "/recent",
        "/recent.atom",
        "/search?q=mauve",
        "/search?q=crew",
        "/users/someone",
        "/wiki/Later%20page",
        "/admin",
        "/nowhere",
        "/login",
        "/register",
    ];
    let snapshot = |browser: Browser| async move {
        let mut out = Vec::new();
        for path in paths {
            let response = browser.get(path).await;
            let status = response.status();
            let target = location(response.headers());
            out.push((path, status, target, normalized(&response.text().await.unwrap())));
        }
        out
    };
    let before = snapshot(app.new_browser()).await;
    // More pages, more members, more revisions: a visitor must not be able to tell.
    admin.create_page("Later page", "crew and mauve and more").await;
    admin.create_page("Another later page", "crew again").await;
    logged_in(&app, "someone").await;
    edit(&admin, "Later page", "crew and mauve, edited", "again").await;
    let after = snapshot(app.new_browser()).await;
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b, a, "a visitor's answer to {} changed with the wiki's content", b.0);
    }
}

async fn login_registration_static_files_and_the_favicon_stay_open(backend: Backend) {
    let (app, _admin, _avatar) = private_wiki(backend).await;
    let visitor = app.new_browser();
    let (status, login) = visitor.get_text("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert_tells_nothing("GET /login", &reqwest::header::HeaderMap::new(), &login, &[]);
    let (status, register) = visitor.get_text("/register").await;
    assert_eq!(status, StatusCode::OK, "registration is open");
    assert_tells_nothing("GET /register", &reqwest::header::HeaderMap::new(), &register, &[]);

    // Every stylesheet, script and icon the login page links to is served.
    let assets: Vec<String> = login
        .split(r#""/static/"#)
        .skip(1)
        .map(|rest| format!("/static/{}", &rest[..rest.find('"').unwrap()]))
        .collect();
    assert!(assets.len() >= 2, "the login page links its assets: {login}");
    for asset in assets {
        let response = visitor.get(&asset).await;
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    assert_eq!(visitor.get("/favicon.ico").await.status(), StatusCode::OK);

    // A visitor may register, then log in, and is sent back where they were going.
    assert_redirects_to(&visitor.register("newcomer", PASSWORD).await, "/login");
    let page = quire::urls::page(SECRET_TITLE);
    let response = visitor.get(&page).await;
    assert_login_redirect(&response, &page);
    let login_at = location(response.headers());
    let (status, form) = visitor.get_text(&login_at).await;
    assert_eq!(status, StatusCode::OK);
    let action = form
        .split(r#"<form method="post" action=""#)
        .find(|rest| rest.starts_with("/login"))
        .map(|rest| crate::pages::unescape(&rest[..rest.find('"').unwrap()]))
        .expect("the login form");
    let csrf = csrf_in(&form).unwrap();
    let response = visitor
        .post_form(&action, &[("username", "newcomer"), ("password", PASSWORD), ("csrf_token", &csrf)])
        .await;
    assert_redirects_to(&response, &page);
    let (status, body) = visitor.get_text(&page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("mauve-otter-42"));
}

async fn members_read_everything_and_the_feed_with_their_session(backend: Backend) {
    let (app, _admin, avatar) = private_wiki(backend).await;
    let reader = logged_in(&app, "colleague").await;
    let revisions = revisions_of(&app, SECRET_TITLE).await;
    let page = quire::urls::page(SECRET_TITLE);
    for (path, expect) in [
        ("/".to_owned(), SECRET_TITLE),
        (page.clone(), "teal-heron-7"),
        (format!("{page}/history"), WRITER),
        (format!("{page}/revisions/{}", revisions[1].id), "mauve-otter-42"),
        (format!("{page}/diff?from={}&to={}", revisions[1].id, revisions[0].id), "teal-heron"),
        ("/search?q=mauve".to_owned(), SECRET_TITLE),
        ("/recent".to_owned(), OTHER_TITLE),
        (format!("/users/{WRITER}"), SECRET_TITLE),
        ("/recent.atom".to_owned(), OTHER_TITLE),
    ] {
        let (status, body) = reader.get_text(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(expect), "{path} shows {expect}: {body}");
    }
    assert_eq!(reader.get(&avatar).await.status(), StatusCode::OK);
    assert_eq!(reader.get("/wiki/No%20Such%20Page").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(reader.get("/nowhere").await.status(), StatusCode::NOT_FOUND);
}

async fn after_logout_the_same_browser_is_a_visitor_again(backend: Backend) {
    let (app, _admin, _avatar) = private_wiki(backend).await;
    let member = logged_in(&app, "leaver").await;
    assert_eq!(member.get("/").await.status(), StatusCode::OK);
    assert_redirects_to(&member.logout().await, "/login");
    assert_login_redirect(&member.get("/").await, "/");
    assert_eq!(member.get("/recent.atom").await.status(), StatusCode::UNAUTHORIZED);
}

async fn public_again_restores_todays_behaviour(backend: Backend) {
    let (app, admin, _avatar) = private_wiki(backend).await;
    set_setting(&admin, "read_access", "public").await;
    let visitor = app.new_browser();
    let (status, index) = visitor.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(index.contains(SECRET_TITLE));
    let (status, feed) = visitor.get_text("/recent.atom").await;
    assert_eq!(status, StatusCode::OK);
    assert!(feed.contains(OTHER_TITLE));
    let (status, page) = visitor.get_text(&at(SECRET_TITLE, "")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("teal-heron-7"));
    assert_eq!(visitor.get("/wiki/No%20Such%20Page").await.status(), StatusCode::NOT_FOUND);
}

async fn under_members_only_registration_follows_its_own_setting(backend: Backend) {
    let (app, admin, _avatar) = private_wiki(backend).await;
    set_setting(&admin, "registration", "invite").await;
    let visitor = app.new_browser();
    let users = app.user_count().await;
    assert_forbidden(visitor.get("/register").await, INVITE_ONLY, "GET /register, invite only").await;
    let token = visitor_token(&visitor).await;
    let response = post_register(&visitor, "gatecrasher", None, &token).await;
    assert_forbidden(response, INVITE_ONLY, "POST /register, invite only").await;
    assert_eq!(app.user_count().await, users);

    let token = invite(&admin, 1, 7, "reader").await;
    let response = register_invited(&visitor, "invited-guest", &token).await;
    assert_redirects_to(&response, "/login");
    assert_eq!(role_of(&app, "invited-guest").await.as_deref(), Some("reader"));
    assert_redirects_to(&visitor.login("invited-guest", PASSWORD).await, "/");
    let (status, body) = visitor.get_text(&quire::urls::page(SECRET_TITLE)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("mauve-otter-42"));
}

async fn odd_anonymous_requests_tell_nothing_either(backend: Backend) {
    let (app, _admin, _avatar) = private_wiki(backend).await;
    let visitor = app.new_browser();
    let token = visitor_token(&visitor).await;
    let big = "x".repeat(3 * 1024 * 1024);
    let requests: Vec<(Method, &str, Option<String>)> = vec![
        (Method::GET, "/wiki/%FF%FE", None),
        (Method::GET, "/search?q=%FF", None),
        (Method::GET, "/wiki/Quarterly%20Xylophone%20Budget/revisions/not-a-number", None),
        (Method::GET, "/wiki/Quarterly%20Xylophone%20Budget/diff?from=x&to=y", None),
        (Method::GET, "/users/%00", None),
        (Method::PUT, "/wiki/Quarterly%20Xylophone%20Budget", None),
        (Method::DELETE, "/wiki/Quarterly%20Xylophone%20Budget", None),
        (Method::OPTIONS, "/", None),
        (Method::POST, "/create", Some(format!("title=T&content={big}&csrf_token={token}"))),
        (Method::POST, "/create", Some("title=%FF&content=x".to_owned())),
        (Method::POST, "/wiki/Quarterly%20Xylophone%20Budget/edit", Some("garbage".to_owned())),
    ];
    for (method, path, body) in requests {
        let mut request = visitor.client.request(method.clone(), visitor.url(path));
        if let Some(body) = body {
            request = request.header("content-type", "application/x-www-form-urlencoded").body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(!status.is_success(), "{method} {path}: {status}");
        assert!(!status.is_server_error(), "{method} {path}: {status}");
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        assert_tells_nothing(&format!("{method} {path}"), &headers, &body, &[]);
    }
}

crate::tests![
    every_anonymous_route_redirects_to_login_and_names_nothing,
    anonymous_posts_are_sent_to_log_in_and_change_nothing,
    anonymous_answers_do_not_depend_on_what_the_wiki_holds,
    login_registration_static_files_and_the_favicon_stay_open,
    members_read_everything_and_the_feed_with_their_session,
    after_logout_the_same_browser_is_a_visitor_again,
    public_again_restores_todays_behaviour,
    under_members_only_registration_follows_its_own_setting,
    odd_anonymous_requests_tell_nothing_either,
];

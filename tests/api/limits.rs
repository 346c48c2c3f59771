//! Limits that hold under concurrency (N parallel attempts → exactly the allowed number), the
//! bounded password queue, the owner's way past an account-wide limit, look-alike names, text
//! that stays text, the feed, racing avatar uploads and the form body limit.

use std::time::Duration;

use quire::config::Limits;
use quire::models::throttle::Limit;
use reqwest::StatusCode;

use crate::helpers::*;

fn limits(login: &str, account: &str, address: &str, register: &str, hash_queue: usize) -> Limits {
    Limits {
        login: Limit::parse(login).unwrap(),
        account_login: Limit::parse(account).unwrap(),
        address_login: Limit::parse(address).unwrap(),
        register: Limit::parse(register).unwrap(),
        hash_queue,
    }
}

async fn spawn_limited(backend: Backend, limits: Limits) -> TestApp {
    spawn_with(backend, Options { limits: Some(limits), ..Options::default() }).await
}

/// Sends every form at once (the CSRF token fetched first), and returns the statuses.
async fn in_parallel(browser: &Browser, path: &str, forms: Vec<Vec<(String, String)>>) -> Vec<StatusCode> {
    let token = browser.csrf(path).await;
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(forms.len()));
    let mut tasks = Vec::new();
    for mut form in forms {
        form.push(("csrf_token".into(), token.clone()));
        let (browser, start, url) = (browser.clone(), start.clone(), browser.url(path));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            browser.client.post(url).form(&form).send().await.expect("POST answers").status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

fn login_form(username: &str, password: &str) -> Vec<(String, String)> {
    vec![("username".into(), username.into()), ("password".into(), password.into())]
}

async fn forty_parallel_wrong_passwords_from_one_address_verify_exactly_ten(backend: Backend) {
    let app = spawn_limited(backend, limits("10/300", "1000/300", "1000/300", "100/300", 100)).await;
    app.browser.register("target", PASSWORD).await;
    let forms = (0..40).map(|i| login_form("target", &format!("guess number {i}"))).collect();
    let statuses = in_parallel(&app.browser, "/login", forms).await;
    assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 10, "verified: {statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 30, "{statuses:?}");
    // Even the right password is refused from here now; from elsewhere it works.
    assert_eq!(app.browser.login("target", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let elsewhere = Browser::from_address(&app.address, "127.0.0.2");
    assert_redirects_to(&elsewhere.login("target", PASSWORD).await, "/");
}

async fn seventy_parallel_registrations_from_one_address_make_exactly_fifty_accounts(backend: Backend) {
    // A queue with room for the whole burst (one address holds at most half of it).
    let app = spawn_limited(backend, limits("10/300", "50/900", "100/900", "50/3600", 200)).await;
    let forms = (0..70)
        .map(|i| {
            vec![
                ("username".into(), format!("member{i}")),
                ("password".into(), PASSWORD.into()),
                ("confirm_password".into(), PASSWORD.into()),
            ]
        })
        .collect();
    let statuses = in_parallel(&app.browser, "/register", forms).await;
    assert_eq!(count(&statuses, StatusCode::SEE_OTHER), 50, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 20, "{statuses:?}");
    assert_eq!(app.user_count().await, 50);
}

async fn failed_logins_from_one_address_are_limited_whatever_the_username(backend: Backend) {
    let app = spawn_limited(backend, limits("10/300", "50/900", "6/300", "50/3600", 100)).await;
    app.browser.register("real", PASSWORD).await;
    // Twenty different names at once: six are checked (against the dummy hash for unknown
    // ones), the rest refused before any password work.
    let forms = (0..20).map(|i| login_form(&format!("ghost{i}"), "guess")).collect();
    let statuses = in_parallel(&app.browser, "/login", forms).await;
    assert_eq!(count(&statuses, StatusCode::UNAUTHORIZED), 6, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 14, "{statuses:?}");
    let response = app.browser.login("yet-another-name", "guess").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.text().await.unwrap().contains("Too many failed logins from here."));
    // Another address is not affected, and neither is an account elsewhere.
    let elsewhere = Browser::from_address(&app.address, "127.0.0.3");
    assert_eq!(elsewhere.login("ghost1", "guess").await.status(), StatusCode::UNAUTHORIZED);
    assert_redirects_to(&elsewhere.login("real", PASSWORD).await, "/");
}

async fn a_full_password_queue_answers_503_with_retry_after_and_counts_nothing(backend: Backend) {
    // No waiting places: only as many checks as there are hashing slots run at once.
    let app = spawn_limited(backend, limits("100/300", "100/300", "24/300", "50/3600", 0)).await;
    let forms = (0..24).map(|i| login_form(&format!("flood{i}"), "guess")).collect();
    let statuses = in_parallel(&app.browser, "/login", forms).await;
    let busy = count(&statuses, StatusCode::SERVICE_UNAVAILABLE);
    let checked = count(&statuses, StatusCode::UNAUTHORIZED);
    assert!(busy >= 1, "a burst beyond the slots finds the queue full: {statuses:?}");
    assert_eq!(busy + checked, 24, "nothing else: {statuses:?}");
    // The refused ones were not counted: exactly `busy` more failures fit under the limit.
    for i in 0..busy {
        let response = app.browser.login(&format!("later{i}"), "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i} of {busy}");
    }
    assert_eq!(app.browser.login("one-too-many", "guess").await.status(), StatusCode::TOO_MANY_REQUESTS);

    // What the 503 says.
    let app = spawn_limited(backend, limits("100/300", "100/300", "100/300", "50/3600", 0)).await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let token = app.browser.csrf("/login").await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let (browser, token) = (app.browser.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let form =
                    [("username", format!("n{i}")), ("password", "guess".into()), ("csrf_token", token)];
                browser.client.post(browser.url("/login")).form(&form).send().await.unwrap()
            }));
        }
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        if answers.iter().any(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE) {
            break;
        }
    }
    let busy = answers.into_iter().find(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE).expect("a 503");
    let retry_after: u64 = busy.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body = busy.text().await.unwrap();
    assert!(body.contains("Too many passwords are being checked right now"), "{body}");
    assert!(!app.browser.is_logged_in().await);
}

async fn the_owner_with_a_known_device_logs_in_while_the_account_is_under_attack(backend: Backend) {
    let app = spawn_limited(backend, limits("100/300", "4/300", "100/300", "50/3600", 100)).await;
    app.browser.register("owner", PASSWORD).await;
    assert_redirects_to(&app.browser.login("owner", PASSWORD).await, "/");
    assert!(app.browser.cookie("quire_device").is_some(), "a successful login marks the browser");
    app.browser.logout().await;

    for i in 2..8 {
        let attacker = Browser::from_address(&app.address, &format!("127.0.0.{i}"));
        attacker.login("owner", "guess").await;
    }
    // A browser that never logged in to the account is held by the account-wide limit…
    let stranger = Browser::from_address(&app.address, "127.0.0.20");
    let response = stranger.login("owner", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!stranger.is_logged_in().await);
    // …and so is one with a forged or copied-from-elsewhere cookie…
    let forger = Browser::from_address(&app.address, "127.0.0.21");
    forger.set_cookie("quire_device", &app.browser.cookie("quire_device").unwrap().replace('1', "2"));
    assert_eq!(forger.login("owner", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    // …but the owner's own browser gets in, typo first.
    assert_eq!(app.browser.login("owner", "typo").await.status(), StatusCode::UNAUTHORIZED);
    assert_redirects_to(&app.browser.login("owner", PASSWORD).await, "/");
    assert!(app.browser.is_logged_in().await);
    // The cookie covers the account it was earned for only.
    app.browser.logout().await;
    app.new_browser().register("other", PASSWORD).await;
    for i in 2..8 {
        Browser::from_address(&app.address, &format!("127.0.0.{i}")).login("other", "guess").await;
    }
    assert_eq!(app.browser.login("other", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

async fn failures_past_half_the_limit_back_off_exponentially(backend: Backend) {
    let app = spawn_limited(backend, limits("6/300", "100/300", "100/300", "50/3600", 100)).await;
    app.browser.register("slow", PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(app.browser.login("slow", "typo").await.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth failure makes the next attempt wait a second, the fifth two.
    assert_eq!(app.browser.login("slow", "typo").await.status(), StatusCode::UNAUTHORIZED);
    let response = app.browser.login("slow", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "backing off");
    assert_eq!(response.headers()["retry-after"], "1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.browser.login("slow", "typo").await.status(), StatusCode::UNAUTHORIZED);
    let response = app.browser.login("slow", "typo").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    // The owner elsewhere is not slowed down.
    let elsewhere = Browser::from_address(&app.address, "127.0.0.4");
    assert_redirects_to(&elsewhere.login("slow", PASSWORD).await, "/");
    // Once the wait is over, the right password clears the backoff.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_redirects_to(&app.browser.login("slow", PASSWORD).await, "/");
}

async fn register_status(app: &TestApp, name: &str) -> (StatusCode, String) {
    let response = app.new_browser().register(name, PASSWORD).await;
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn look_alikes_of_a_member_cannot_register_beside_them(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_redirects_to(&app.browser.register("admin", PASSWORD).await, "/login");
    for (name, message) in [
        ("admin\u{200B}", "must not contain invisible characters"),
        ("admin\u{FEFF}", "must not contain invisible characters"),
        ("admin\u{3164}", "must not contain invisible characters"),
        ("\u{202E}nimda", "must not contain bidirectional text controls"),
        ("admin\u{FFFF}", "must not contain noncharacters"),
        ("\u{FF21}dmin", "not fullwidth, ligature or other compatibility forms"),
        ("\u{FF41}dmin", "not fullwidth, ligature or other compatibility forms"),
    ] {
        let (status, body) = register_status(&app, name).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(body.contains(message), "{name:?}: {body}");
    }
    for name in ["\u{430}dmin", "adm\u{456}n", "\u{430}\u{501}m\u{456}n"] {
        let (status, body) = register_status(&app, name).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name:?}");
        assert!(body.contains("looks too much like an existing member"), "{name:?}: {body}");
    }
    let (status, body) = register_status(&app, "admin").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("Username already exists!"));
    assert_eq!(app.user_count().await, 1, "no look-alike was stored");
    // Case stays significant, as in the seed's data.
    for name in ["Admin", "Alice", "alice"] {
        assert_redirects_to(&app.new_browser().register(name, PASSWORD).await, "/login");
    }
    assert_eq!(app.user_count().await, 4);
    assert_redirects_to(&app.new_browser().login("Alice", PASSWORD).await, "/");

    // Racing look-alikes: the database lets exactly one in.
    let forms = ["zed", "z\u{435}d", "ze\u{501}", "z\u{435}\u{501}", "zed", "z\u{435}d"]
        .into_iter()
        .map(|name| {
            vec![
                ("username".to_owned(), name.to_owned()),
                ("password".into(), PASSWORD.into()),
                ("confirm_password".into(), PASSWORD.into()),
            ]
        })
        .collect();
    let statuses = in_parallel(&app.new_browser(), "/register", forms).await;
    assert_eq!(count(&statuses, StatusCode::SEE_OTHER), 1, "{statuses:?}");
    assert_eq!(count(&statuses, StatusCode::CONFLICT), 5, "{statuses:?}");
    assert_eq!(app.user_count().await, 5);
}

async fn old_rows_that_look_alike_are_kept_when_the_key_arrives(backend: Backend) {
    use sea_orm::ConnectionTrait;
    use sea_orm_migration::MigratorTrait;
    let app = spawn_app(backend).await;
    let db = &app.state.db.write;
    // Back to before m0006 (the key), and the migrations after it.
    let after_m0005 = quire::migrations::Migrator::migrations().len() - 5;
    quire::migrations::Migrator::down(db, Some(after_m0005 as u32)).await.unwrap();
    let hash =
        quire::auth::password::hash_blocking(&quire::domain::Password::unchecked(PASSWORD.into())).unwrap();
    for name in ["admin", "\u{430}dmin", "admin\u{200B}", "bob"] {
        let insert = sea_orm::sea_query::Query::insert()
            .into_table(sea_orm::sea_query::Alias::new("users"))
            .columns(["username", "password_hash", "role", "created_at"].map(sea_orm::sea_query::Alias::new))
            .values_panic([name.into(), hash.clone().into(), "editor".into(), 1i64.into()])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }
    quire::app::migrate(&app.state.db).await.unwrap();
    let members = quire::models::user::list(&app.state.db.read).await.unwrap();
    assert_eq!(members.len(), 4, "every member stays");
    let keyless: Vec<_> =
        members.iter().filter(|m| m.username_key.is_none()).map(|m| m.username.as_str()).collect();
    assert_eq!(keyless.len(), 2, "the two younger look-alikes keep no key: {keyless:?}");
    assert!(!keyless.contains(&"admin") && !keyless.contains(&"bob"));
    // They still log in; a new look-alike is still refused.
    assert_redirects_to(&app.new_browser().login("\u{430}dmin", PASSWORD).await, "/");
    let (status, _) = register_status(&app, "adm\u{456}n").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.user_count().await, 4);
}

async fn the_flask_import_applies_the_same_rules_and_reports_what_it_skips(backend: Backend) {
    use sea_orm::{ConnectionTrait, Database};
    let app = spawn_app(backend).await;
    app.browser.register("admin", PASSWORD).await;
    // The seed's database, with look-alikes and hidden characters added to a copy.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flask");
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("database.db");
    std::fs::copy(fixture.join("database.db"), &source).unwrap();
    let flask = Database::connect(format!("sqlite://{}?mode=rw", source.display())).await.unwrap();
    let added = ["\u{430}dmin", "ad\u{200B}min", "\u{FF21}dmin", "b\u{43E}b", "bob", "Ti\u{202E}tle"];
    for (i, name) in added.iter().enumerate() {
        let insert = sea_orm::sea_query::Query::insert()
            .into_table(sea_orm::sea_query::Alias::new("users"))
            .columns(["id", "username", "password_hash"].map(sea_orm::sea_query::Alias::new))
            .values_panic([(1000 + i as i64).into(), (*name).into(), "$argon2id$x".into()])
            .to_owned();
        flask.execute(&insert).await.unwrap();
    }
    flask.close().await.unwrap();

    let report = quire::import::import_flask(
        &app.state.db,
        &app.avatar_dir(),
        &source,
        &fixture.join("uploads/avatars"),
        &quire::import::Quiet,
    )
    .await
    .unwrap();
    let reason = |name: &str| {
        report.skipped_users.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone()).unwrap_or_default()
    };
    assert!(reason("\u{430}dmin").contains("looks too much like the member \"admin\""), "{report:?}");
    assert!(reason("ad\u{200B}min").contains("must not contain invisible characters"), "{report:?}");
    assert!(reason("\u{FF21}dmin").contains("compatibility forms"), "{report:?}");
    assert!(reason("Ti\u{202E}tle").contains("bidirectional"), "{report:?}");
    // Two look-alikes inside the source: the first comes in, the second is reported.
    assert!(reason("bob").contains("looks too much like the member \"b\u{43E}b\""), "{report:?}");
    assert_eq!(report.skipped_users.len(), 5, "{report:?}");
    // The seed's own members all came in, `Alice` and `alice` as two.
    assert_eq!(report.users_imported, 14 + 1);
    let summary = report.summary();
    assert!(summary.contains("users:   15 imported, 5 skipped"), "{summary}");
    for name in ["Alice", "alice", "b\u{43E}b"] {
        assert!(
            quire::models::user::find_by_username(&app.state.db.read, name).await.unwrap().is_some(),
            "{name}"
        );
    }
    assert_eq!(app.user_count().await, 1 + 15);
}

async fn titles_and_summaries_refuse_what_does_not_stay_text(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("writer").await;
    for (title, message) in [
        ("Invoice \u{202E}fdp.exe", "Title must not contain bidirectional text controls"),
        ("\u{200B}", "Title must not contain invisible characters"),
        ("Page\u{FFFF}", "Title must not contain noncharacters"),
        ("\u{3164}\u{3164}", "Title must not contain invisible characters"),
    ] {
        let response = app.browser.create_page(title, "text").await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{title:?}");
        assert!(response.text().await.unwrap().contains(message), "{title:?}");
    }
    assert_eq!(app.page_count().await, 0);

    app.browser.create_page("Plain", "first").await;
    let response = crate::wiki::rename(&app.browser, "Plain", "Pl\u{200D}ain").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(crate::wiki::stored(&app, "Plain").await.title, "Plain");

    for summary in ["fixed \u{1b}[31m", "a\u{2066}b", "zero\u{200B}width", "x\u{FFFE}"] {
        let response = crate::wiki::edit(&app.browser, "Plain", "second", summary).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{summary:?}");
        assert!(response.text().await.unwrap().contains("The summary must not contain"), "{summary:?}");
    }
    assert_eq!(crate::wiki::revisions_of(&app, "Plain").await.len(), 1, "nothing was saved");
    assert_eq!(crate::wiki::stored(&app, "Plain").await.content, "first");
}

async fn the_feed_is_valid_xml_whatever_old_rows_hold(backend: Backend) {
    use quire::models::{page, revision};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let app = spawn_app(backend).await;
    app.member("writer").await;
    app.browser.create_page("Fine", "text").await;
    // Rows stored before the text rules (or by an import), written past them.
    let bad_title = "Old\u{FFFF}row\u{1}";
    let created = page::create(
        &app.state.db.write,
        page::NewPage {
            title: bad_title,
            content: "x",
            format: "markdown",
            html: "x",
            author_id: None,
            links: &[],
        },
    )
    .await
    .unwrap();
    revision::Entity::update_many()
        .col_expr(revision::Column::Summary, Expr::value("bell\u{7} escape\u{1b}[31m \u{FFFE}end"))
        .filter(revision::Column::PageId.eq(created.id))
        .exec(&app.state.db.write)
        .await
        .unwrap();

    let response = app.new_browser().get("/recent.atom").await;
    assert_eq!(response.status(), StatusCode::OK);
    let xml = response.text().await.unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|err| panic!("invalid XML: {err}\n{xml}"));
    let texts = |tag: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| {
                n.tag_name().name() == tag && n.parent().is_some_and(|p| p.tag_name().name() == "entry")
            })
            .map(|n| n.text().unwrap_or_default().to_owned())
            .collect()
    };
    let titles = texts("title");
    assert!(titles.contains(&"Fine".to_owned()), "{titles:?}");
    assert!(titles.contains(&"Old\u{FFFD}row\u{FFFD}".to_owned()), "{titles:?}");
    assert!(texts("summary").contains(&"bell\u{FFFD} escape\u{FFFD}[31m \u{FFFD}end".to_owned()));
}

async fn parallel_avatar_uploads_leave_exactly_one_file(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("racer").await.clone();
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..8u32 {
            let browser = browser.clone();
            tasks.push(tokio::spawn(async move {
                browser.upload_avatar("me.png", crate::profile::png(8 + i, 8)).await.status()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::SEE_OTHER, "round {round}");
        }
        let files: Vec<String> = std::fs::read_dir(app.avatar_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let stored =
            quire::models::user::find_by_username(&app.state.db.read, "racer").await.unwrap().unwrap();
        assert_eq!(files, [stored.avatar.unwrap()], "round {round}: one file, the member's");
    }
}

async fn save_status(app: &TestApp, title: &str, content: &str) -> StatusCode {
    app.browser.create_page(title, content).await.status()
}

async fn a_mebibyte_of_text_in_any_script_saves(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("writer").await;
    const MIB: usize = 1024 * 1024;
    let chinese = "中".repeat(MIB / 3);
    let japanese = "日本語のテキスト".repeat(MIB / 24);
    let emoji = "😀".repeat(MIB / 4);
    for (title, content) in [("Chinese", &chinese), ("Japanese", &japanese), ("Emoji", &emoji)] {
        assert!(content.len() <= MIB && content.len() > MIB - 24, "{title}: {}", content.len());
        assert_eq!(save_status(&app, title, content).await, StatusCode::SEE_OTHER, "{title}");
        assert_eq!(crate::wiki::stored(&app, title).await.content.len(), content.len());
    }
    // The same text edited in a page saves too.
    app.browser.create_page("Grows", "small").await;
    let response = crate::wiki::edit(&app.browser, "Grows", &emoji, "all of it").await;
    assert_redirects_to(&response, "/wiki/Grows");

    // One character more is the content rule's 422, not a 413, and nothing is stored.
    let over = format!("{emoji}😀");
    let response = app.browser.create_page("Too much", &over).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Content must be at most 1 MiB."));
    assert_eq!(app.page_count().await, 4);
    // A body past the wire limit is still a 413.
    let huge = "中".repeat(quire::app::FORM_BODY_LIMIT / 9 + 1024);
    assert_eq!(save_status(&app, "Huge", &huge).await, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.page_count().await, 4);
}

crate::tests![
    forty_parallel_wrong_passwords_from_one_address_verify_exactly_ten,
    seventy_parallel_registrations_from_one_address_make_exactly_fifty_accounts,
    failed_logins_from_one_address_are_limited_whatever_the_username,
    a_full_password_queue_answers_503_with_retry_after_and_counts_nothing,
    the_owner_with_a_known_device_logs_in_while_the_account_is_under_attack,
    failures_past_half_the_limit_back_off_exponentially,
    look_alikes_of_a_member_cannot_register_beside_them,
    old_rows_that_look_alike_are_kept_when_the_key_arrives,
    the_flask_import_applies_the_same_rules_and_reports_what_it_skips,
    titles_and_summaries_refuse_what_does_not_stay_text,
    the_feed_is_valid_xml_whatever_old_rows_hold,
    parallel_avatar_uploads_leave_exactly_one_file,
    a_mebibyte_of_text_in_any_script_saves,
];

//! The `quire` binary: several instances over one database, `import-flask`, `user …`, and clear
//! start-up errors.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_quire");
const SECRET: &str = "a shared secret for the instances of one test, long enough";

/// A `quire serve` process, killed when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quire(database_url: &str, data_dir: &Path, avatar_dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env("QUIRE_DATA_DIR", data_dir)
        .env("QUIRE_AVATAR_DIR", avatar_dir)
        .env("SESSION_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .env_remove("QUIRE_PUBLIC_URL")
        .env_remove("QUIRE_BIND");
    command
}

fn start_instance(database_url: &str, data_dir: &Path, avatar_dir: &Path) -> Instance {
    let mut child = quire(database_url, data_dir, avatar_dir)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("quire starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().expect("the serving line names the address").to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    Instance { child, base }
}

/// Runs a `quire` command to the end; returns (success, stdout, stderr).
fn run(mut command: Command, stdin: &str) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("quire runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn two_instances_over_one_database_behave_as_one_wiki(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(backend, data_dir.path()).await;
    let avatars = data_dir.path().join("shared-avatars");
    std::fs::create_dir_all(&avatars).unwrap();
    let dir_a = data_dir.path().join("a");
    let dir_b = data_dir.path().join("b");
    // The first instance migrates; the second starts on the migrated schema. SQLite instances
    // must share the file, so both get the URL, not their own data dir's default.
    let a = start_instance(&database.url, &dir_a, &avatars);
    let b = start_instance(&database.url, &dir_b, &avatars);

    let on_a = Browser::new(&a.base);
    let on_b = on_a.sharing(&b.base);
    assert_redirects_to(&on_a.register("shared", PASSWORD).await, "/login");
    assert_redirects_to(&on_a.login("shared", PASSWORD).await, "/");
    assert!(on_b.is_logged_in().await, "a session made on A is valid on B");

    assert_redirects_to(&on_b.create_page("Made on B", "hello from B").await, "/wiki/Made%20on%20B");
    let (status, page) = Browser::new(&a.base).get_text("/wiki/Made%20on%20B").await;
    assert_eq!(status, StatusCode::OK, "a page made on B is served by A at once");
    assert!(page.contains("hello from B"));

    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::new(8, 8).write_to(&mut png, image::ImageFormat::Png).unwrap();
    assert_redirects_to(&on_a.upload_avatar("me.png", png.into_inner()).await, "/profile");
    let (_, profile) = on_b.get_text("/profile").await;
    let src = profile.split(r#"<img src=""#).nth(1).map(|s| s[..s.find('"').unwrap()].to_owned()).unwrap();
    assert_eq!(on_b.get(&src).await.status(), StatusCode::OK, "an avatar uploaded on A is served by B");

    assert_redirects_to(&on_b.logout().await, "/login");
    assert!(!on_a.is_logged_in().await, "logout on B ends the session on A");

    let mut tasks = Vec::new();
    for i in 0..6 {
        let browser = Browser::new(if i % 2 == 0 { &a.base } else { &b.base });
        tasks.push(tokio::spawn(async move { browser.register("racer", PASSWORD).await.status() }));
    }
    let mut created = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(status == StatusCode::SEE_OTHER || status == StatusCode::CONFLICT, "{status}");
        created += usize::from(status == StatusCode::SEE_OTHER);
    }
    assert_eq!(created, 1, "racing registrations across instances make one account");
    drop((a, b));
}

fn fixture() -> (std::path::PathBuf, std::path::PathBuf, serde_json::Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flask");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("fixture_manifest.json")).unwrap()).unwrap();
    (dir.join("database.db"), dir.join("uploads/avatars"), manifest)
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

async fn the_flask_wiki_is_imported_whole_and_only_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (db, uploads, manifest) = fixture();
    let before = sha256_of(&db);
    // A name already taken here is reported and skipped, never overwritten.
    app.browser.register("alice", "quire's own alice password").await;

    let import = || {
        let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
        command.args(["import-flask", "--db"]).arg(&db).arg("--uploads").arg(&uploads);
        run(command, "")
    };
    let (ok, out, err) = import();
    assert!(ok, "{out}\n{err}");
    let users = manifest["users"].as_object().unwrap();
    let titles = manifest["pages"].as_object().unwrap();
    assert!(out.contains(&format!("users:   {} imported, 1 skipped", users.len() - 1)), "{out}");
    assert!(out.contains(&format!("pages:   {} imported, 0 skipped", titles.len())), "{out}");
    assert!(out.contains("skipped user \"alice\": the username is already present"), "{out}");
    assert_eq!(app.page_count().await, titles.len() as u64);

    // Every imported member logs in with their old password.
    for (name, password) in users.iter().filter(|(name, _)| name.as_str() != "alice") {
        let browser = app.new_browser();
        let response = browser.login(name, password.as_str().unwrap()).await;
        assert_redirects_to(&response, "/");
    }
    // Quire's own alice keeps her password.
    assert_redirects_to(&app.new_browser().login("alice", "quire's own alice password").await, "/");

    // Avatars were re-encoded under new names and are served.
    let with_avatar = manifest["user_details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["avatar"].is_string() && u["username"] != "alice")
        .expect("the fixture has avatars");
    let name = with_avatar["username"].as_str().unwrap();
    let browser = app.new_browser();
    browser.login(name, users[name].as_str().unwrap()).await;
    let (_, profile) = browser.get_text("/profile").await;
    let src = profile.split(r#"<img src=""#).nth(1).map(|s| s[..s.find('"').unwrap()].to_owned()).unwrap();
    assert!(!src.contains('_'), "a new random name: {src}");
    assert_eq!(browser.get(&src).await.status(), StatusCode::OK);

    // Every page is reachable from the index, its HTML sanitized.
    let (_, index) = browser.get_text("/").await;
    let links = crate::pages::index_links(&index);
    assert_eq!(links.len(), titles.len());
    for (href, title) in links {
        let (status, page) = browser.get_text(&href).await;
        assert_eq!(status, StatusCode::OK, "{title}");
        let content = page.split(r#"<div class="page-content">"#).nth(1).unwrap().to_lowercase();
        assert!(!content.contains("<script"), "{title}");
        assert!(!content.contains("onerror"), "{title}");
    }

    // A second run imports nothing, and says so; the source never changes.
    let (ok, out, _) = import();
    assert!(ok);
    assert!(out.contains("Nothing to import"), "{out}");
    assert_eq!(app.page_count().await, titles.len() as u64);
    assert_eq!(sha256_of(&db), before, "the source database is untouched");
}

async fn a_missing_source_is_a_clear_error_that_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["import-flask", "--db", "/no/such/database.db", "--uploads", "/no/such/dir"]);
    let (ok, _, err) = run(command, "");
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert_eq!(app.user_count().await, 0);
}

async fn user_commands_manage_members_on_any_backend(backend: Backend) {
    let app = spawn_app(backend).await;
    let cli = |args: &[&str], stdin: &str| {
        let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
        command.arg("user").args(args);
        run(command, stdin)
    };
    let (ok, out, err) = cli(&["add", "admin-made"], "a password from stdin\n");
    assert!(ok, "{out}{err}");
    assert_redirects_to(&app.new_browser().login("admin-made", "a password from stdin").await, "/");

    let (ok, _, err) = cli(&["add", "admin-made"], "whatever123\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cli(&["add", "short-pw"], "short\n");
    assert!(!ok && err.contains("at least 8"), "{err}");

    // A new password ends the member's sessions.
    let browser = app.new_browser();
    browser.login("admin-made", "a password from stdin").await;
    browser.create_page("Kept after deletion", "text").await;
    let (ok, out, _) = cli(&["passwd", "admin-made"], "the new password\n");
    assert!(ok && out.contains("2 sessions ended"), "both logins end: {out}");
    assert!(!browser.is_logged_in().await);
    assert_eq!(
        app.new_browser().login("admin-made", "a password from stdin").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_redirects_to(&browser.login("admin-made", "the new password").await, "/");

    let (ok, out, _) = cli(&["list"], "");
    assert!(ok && out.contains("admin-made") && out.contains("1 members"), "{out}");
    let (ok, _, _) = cli(&["promote", "admin-made"], "");
    assert!(ok);
    let member =
        quire::models::user::find_by_username(&app.state.db.read, "admin-made").await.unwrap().unwrap();
    assert_eq!(member.role(), quire::access::Role::Admin);

    // The last admin stays: neither demoted nor deleted, and the refusal says why.
    for args in [&["delete", "admin-made"][..], &["role", "admin-made", "reader"], &["block", "admin-made"]] {
        let (ok, _, err) = cli(args, "");
        assert!(
            !ok && err.contains("The last admin cannot be demoted, blocked or deleted."),
            "{args:?}: {err}"
        );
    }
    let (ok, out, err) = cli(&["add", "second-admin", "--role", "admin"], "another password\n");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = cli(&["delete", "admin-made"], "");
    assert!(ok, "{err}");
    assert_eq!(app.user_count().await, 1);
    assert!(!browser.is_logged_in().await, "the deleted member's session is gone");
    let (status, page) = app.new_browser().get_text("/wiki/Kept%20after%20deletion").await;
    assert_eq!(status, StatusCode::OK, "their pages stay");
    assert!(page.contains("unknown author"));
    let (ok, _, err) = cli(&["delete", "nobody"], "");
    assert!(!ok && err.contains("no member"), "{err}");
}

async fn bad_database_urls_fail_at_start_up_with_one_clear_line(backend: Backend) {
    if backend != Backend::Sqlite {
        return; // about URLs, not about a backend
    }
    let dir = tempfile::tempdir().unwrap();
    let avatars = dir.path().join("avatars");
    let cases = [
        ("redis://127.0.0.1/0", "unsupported database URL scheme"),
        ("postgres://quire:hunter2secret@127.0.0.1:1/wiki", "cannot connect"),
        ("mysql://quire:hunter2secret@127.0.0.1:1/wiki", "cannot connect"),
        ("sqlite:///no/such/directory/quire.db", "does not exist"),
    ];
    for (url, message) in cases {
        let mut command = quire(url, dir.path(), &avatars);
        command.arg("migrate");
        let (ok, _, err) = run(command, "");
        assert!(!ok, "{url} must fail");
        assert!(err.contains(message), "{url}: {err}");
        assert!(!err.contains("hunter2secret"), "the password leaked: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    assert!(!Path::new("/no/such/directory").exists());
}

async fn sigterm_finishes_requests_in_flight_and_exits_cleanly(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(backend, data_dir.path()).await;
    let avatars = data_dir.path().join("avatars");
    let mut instance = start_instance(&database.url, data_dir.path(), &avatars);
    let browser = Browser::new(&instance.base);
    browser.register("leaving", PASSWORD).await;
    let token = browser.csrf("/login").await;
    // A login costs an Argon2 verification: it is still running when the signal arrives.
    let in_flight = {
        let browser = browser.clone();
        tokio::spawn(async move {
            browser
                .post_form(
                    "/login",
                    &[("username", "leaving"), ("password", PASSWORD), ("csrf_token", &token)],
                )
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let pid = instance.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "the request in flight completed");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = instance.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "quire did not exit within 5 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    assert!(
        Browser::new(&instance.base).client.get(format!("{}/", instance.base)).send().await.is_err(),
        "no longer accepting"
    );
}

async fn every_acknowledged_save_survives_a_sigkill(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::create(backend, data_dir.path()).await;
    let avatars = data_dir.path().join("avatars");
    let instance = start_instance(&database.url, data_dir.path(), &avatars);
    let browser = Browser::new(&instance.base);
    browser.register("crasher", PASSWORD).await;
    browser.login("crasher", PASSWORD).await;
    let token = browser.csrf("/create").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (browser, token, stop) = (browser.clone(), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let title = format!("Crash {writer}-{i}");
                let sent = browser
                    .client
                    .post(browser.url("/create"))
                    .form(&[
                        ("title", title.as_str()),
                        ("content", "saved before the crash"),
                        ("csrf_token", &token),
                    ])
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::SEE_OTHER => acknowledged.push(title),
                    Ok(response) => panic!("a save answered {}", response.status()),
                    Err(_) => break, // the server is gone
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut instance = instance;
    instance.child.kill().unwrap(); // SIGKILL, mid-burst
    instance.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(acknowledged.len() > 5, "the burst was under way: {} saves", acknowledged.len());

    if backend == Backend::Sqlite {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(database.url.clone()).await.unwrap();
        let check = db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(check.try_get_by_index::<String>(0).unwrap(), "ok");
        db.close().await.unwrap();
    }
    // Quire starts again without repair, and every acknowledged save is there.
    let restarted = start_instance(&database.url, data_dir.path(), &avatars);
    let reader = Browser::new(&restarted.base);
    for title in &acknowledged {
        let (status, page) = reader.get_text(&quire::urls::page(title)).await;
        assert_eq!(status, StatusCode::OK, "{title} was acknowledged but is gone");
        assert!(page.contains("saved before the crash"));
    }
}

async fn a_deleted_page_with_an_imported_title_is_reported_not_a_failure(backend: Backend) {
    let app = spawn_app(backend).await;
    let (db, uploads, manifest) = fixture();
    app.member("keeper").await;
    app.browser.create_page("Welcome", "ours, deleted later").await;
    let token = app.browser.csrf("/wiki/Welcome").await;
    assert_redirects_to(
        &app.browser.post_form("/wiki/Welcome/delete", &[("csrf_token", &token), ("confirm", "yes")]).await,
        "/",
    );

    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["import-flask", "--db"]).arg(&db).arg("--uploads").arg(&uploads);
    let (ok, out, err) = run(command, "");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("skipped page \"Welcome\": the title is already present (a deleted page)"), "{out}");
    let titles = manifest["pages"].as_object().unwrap().len() as u64;
    assert_eq!(app.page_count().await, titles, "every other page came in, ours stayed");
}

crate::tests![
    a_deleted_page_with_an_imported_title_is_reported_not_a_failure,
    every_acknowledged_save_survives_a_sigkill,
    sigterm_finishes_requests_in_flight_and_exits_cleanly,
    two_instances_over_one_database_behave_as_one_wiki,
    the_flask_wiki_is_imported_whole_and_only_once,
    a_missing_source_is_a_clear_error_that_changes_nothing,
    user_commands_manage_members_on_any_backend,
    bad_database_urls_fail_at_start_up_with_one_clear_line,
];

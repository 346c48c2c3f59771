//! `quire backup`, `quire restore` and `quire copy-database`, run as the real binary: a wiki
//! seeded over HTTP, backed up, restored (into another backend when one is configured), and
//! served again; damaged archives and non-empty targets refused with nothing written.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use quire::db::Db;
use quire::models::dump;
use reqwest::StatusCode;

use crate::helpers::*;

const BINARY: &str = env!("CARGO_BIN_EXE_quire");

/// A `quire` command on a database, a data dir and an avatar dir.
fn quire(database_url: &str, data_dir: &Path, avatar_dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("DATABASE_URL", database_url)
        .env("QUIRE_DATA_DIR", data_dir)
        .env("QUIRE_AVATAR_DIR", avatar_dir)
        .env("SESSION_SECRET", "a secret for the backup tests, long enough to be accepted")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    command
}

/// What a finished command said: its exit code, stdout and stderr.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(mut command: Command) -> Outcome {
    let output = tokio::task::spawn_blocking(move || command.output().expect("quire runs")).await.unwrap();
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `quire backup` on a running app's database; returns the archive's path.
async fn backup_of(app: &TestApp, dir: &Path) -> PathBuf {
    let out = dir.join("wiki-backup.zip");
    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["backup", "--out"]).arg(&out);
    let outcome = run(command).await;
    assert_eq!(outcome.code, 0, "backup: {}", outcome.stderr);
    assert!(outcome.stdout.contains("backup written to"), "{}", outcome.stdout);
    out
}

/// A fresh, empty database of `backend` with its own data dir (avatars in DATA_DIR/avatars).
async fn fresh(backend: Backend) -> (Arc<tempfile::TempDir>, Arc<TestDatabase>) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database = Arc::new(TestDatabase::create(backend, dir.path()).await);
    (dir, database)
}

async fn restore_into(archive: &Path, dir: &Path, url: &str, extra: &[&str]) -> Outcome {
    let mut command = quire(url, dir, &dir.join("avatars"));
    command.arg("restore").arg(archive).args(extra);
    run(command).await
}

/// The other backend to restore into when its server is configured (SQLite into PostgreSQL
/// first), or the same one.
fn other_backend(backend: Backend) -> Backend {
    let preferred = match backend {
        Backend::Sqlite => [Backend::Postgres, Backend::MySql],
        Backend::Postgres => [Backend::MySql, Backend::Sqlite],
        Backend::MySql => [Backend::Sqlite, Backend::Postgres],
    };
    preferred.into_iter().find(|b| b.available()).unwrap_or(backend)
}

fn png(side: u32) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(side, side, |x, y| image::Rgb([x as u8 * 7, y as u8 * 3, 99]))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

fn base_revision(editor: &str) -> String {
    let marker = r#"name="base_revision" value=""#;
    let at = editor.find(marker).expect("a base_revision field") + marker.len();
    editor[at..at + editor[at..].find('"').unwrap()].to_owned()
}

async fn edit(browser: &Browser, title: &str, content: &str) {
    let path = format!("/wiki/{}/edit", quire::urls::segment(title));
    let (status, editor) = browser.get_text(&path).await;
    assert_eq!(status, StatusCode::OK);
    let token = csrf_in(&editor).unwrap();
    let base = base_revision(&editor);
    let response = browser
        .post_form(
            &path,
            &[("content", content), ("summary", "second"), ("base_revision", &base), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "edit of {title}");
}

/// A page's text with the per-request parts (CSRF tokens) blanked out.
fn stable(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let mut out = String::new();
    let mut rest = html;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        rest = &rest[rest.find('"').unwrap_or(0)..];
    }
    out.push_str(rest);
    out
}

async fn avatar_bytes(browser: &Browser) -> Vec<u8> {
    let (_, profile) = browser.get_text("/profile").await;
    let src = profile
        .split(r#"<img src=""#)
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_owned())
        .expect("an avatar");
    let response = browser.get(&src).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap().to_vec()
}

/// Row counts of every table.
async fn counts(url: &str) -> Vec<(&'static str, u64)> {
    let db = Db::connect(url).await.unwrap();
    let mut out = Vec::new();
    for table in dump::TABLES {
        out.push((table.name, dump::count(&db.read, table).await.unwrap()));
    }
    db.read.close().await.ok();
    db.write.close().await.ok();
    out
}

/// Counts as `--force` lists them: "2 users, 4 pages, …", tables holding no row left out.
fn listed(counts: &[(&str, u64)]) -> String {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

const TITLES: [&str; 3] = ["Home", "Second page", "Zoé’s notes"];

/// A wiki with two members, pages with history and links, a deleted page and an avatar.
async fn seed(app: &TestApp) -> Vec<u8> {
    let alice = app.member("alice").await;
    assert_redirects_to(
        &alice.create_page("Home", "Welcome. See [[Second page]] and [[Missing]].").await,
        "/wiki/Home",
    );
    assert_redirects_to(
        &alice.create_page("Second page", "# Second\n\nSome *armadillo* text.").await,
        "/wiki/Second%20page",
    );
    alice.create_page("Zoé’s notes", "Notes about [[Home]].").await;
    edit(alice, "Home", "Welcome back. See [[Second page]], [[Zoé’s notes]] and [[Missing]].").await;
    alice.create_page("Gone", "to be deleted").await;
    let token = alice.csrf("/wiki/Gone").await;
    alice.post_form("/wiki/Gone/delete", &[("csrf_token", &token), ("confirm", "yes")]).await;
    let avatar = png(12);
    assert_redirects_to(&alice.upload_avatar("me.png", avatar.clone()).await, "/profile");
    // A file of 300 KiB (two chunks) in two versions, and one deleted.
    for (name, fill) in [("plan.bin", 7u8), ("plan.bin", 9u8), ("old.txt", 1u8)] {
        let token = alice.csrf("/wiki/Home/attachments").await;
        let bytes: Vec<u8> = (0..300 * 1024).map(|i: u32| (i % 251) as u8 ^ fill).collect();
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token)
            .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name));
        let response =
            alice.client.post(alice.url("/wiki/Home/attachments")).multipart(form).send().await.unwrap();
        assert_redirects_to(&response, "/wiki/Home/attachments");
    }
    let token = alice.csrf("/wiki/Home/attachments").await;
    alice.post_form("/wiki/Home/attachments/old.txt/delete", &[("csrf_token", &token)]).await;
    let bob = app.new_browser();
    bob.register("bob", "another long password").await;
    avatar
}

async fn a_restored_backup_serves_the_same_wiki_with_the_same_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let before = counts(&app.database.url).await;
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;

    let target = other_backend(backend);
    let (dir, database) = fresh(target).await;
    let outcome = restore_into(&archive, dir.path(), &database.url, &[]).await;
    assert_eq!(outcome.code, 0, "restore: {}", outcome.stderr);
    assert!(outcome.stdout.contains("search index rebuilt for 3 pages"), "{}", outcome.stdout);

    let after = counts(&database.url).await;
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        match *name {
            "sessions" => assert_eq!(*new, 0, "sessions are dropped without --keep-sessions"),
            "throttle" => {}
            _ => assert_eq!(old, new, "rows of {name} ({} into {})", backend.name(), target.name()),
        }
    }

    let restored = spawn_on(target, dir.clone(), database.clone()).await;
    let old = app.new_browser();
    let new = restored.new_browser();
    for title in TITLES {
        let path = format!("/wiki/{}", quire::urls::segment(title));
        let (s1, a) = old.get_text(&path).await;
        let (s2, b) = new.get_text(&path).await;
        assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{title}");
        assert_eq!(stable(&a), stable(&b), "the page {title} reads the same");
        let (_, a) = old.get_text(&format!("{path}/history")).await;
        let (_, b) = new.get_text(&format!("{path}/history")).await;
        assert_eq!(stable(&a), stable(&b), "the history of {title} reads the same");
    }
    let (status, _) = new.get_text("/wiki/Gone").await;
    assert_ne!(status, StatusCode::OK, "a deleted page stays deleted");
    let (_, found) = new.get_text("/search?q=armadillo").await;
    assert!(found.contains("Second page"), "the search index is rebuilt: {found}");

    assert_redirects_to(&new.login("alice", PASSWORD).await, "/");
    assert_eq!(
        avatar_bytes(&new).await,
        avatar_bytes(&app.browser).await,
        "the avatar comes back byte for byte"
    );
    for path in ["/wiki/Home/attachments/plan.bin", "/wiki/Home/attachments/plan.bin?version=1"] {
        let a = old.get(path).await.bytes().await.unwrap();
        let b = new.get(path).await.bytes().await.unwrap();
        assert_eq!(a.len(), 300 * 1024, "{path}");
        assert_eq!(a, b, "the file {path} comes back byte for byte");
    }
    assert_eq!(
        new.get("/wiki/Home/attachments/old.txt").await.status(),
        StatusCode::NOT_FOUND,
        "still deleted"
    );
    let bob = restored.new_browser();
    assert_redirects_to(&bob.login("bob", "another long password").await, "/");
    assert_eq!(
        new.login("bob", "wrong password here").await.status(),
        StatusCode::UNAUTHORIZED,
        "a wrong password still fails"
    );

    // New rows get new ids: the sequences continue past the restored ones.
    assert_redirects_to(&bob.create_page("After restore", "new").await, "/wiki/After%20restore");
    let carol = restored.new_browser();
    assert_redirects_to(&carol.register("carol", PASSWORD).await, "/login");
    edit(&bob, "Home", "Edited after the restore.").await;
}

async fn hundreds_of_rows_and_large_pages_are_restored_in_batches(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = app.member("many").await;
    for i in 0..230 {
        browser.create_page(&format!("Small {i}"), &format!("small page {i}")).await;
    }
    let big = format!("{}\n\nthe end marker", "word ".repeat(180_000));
    for i in 0..5 {
        assert_redirects_to(
            &browser.create_page(&format!("Big {i}"), &big).await,
            &format!("/wiki/Big%20{i}"),
        );
    }
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let target = other_backend(backend);
    let (dir, database) = fresh(target).await;
    let outcome = restore_into(&archive, dir.path(), &database.url, &["--quiet"]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let restored = spawn_on(target, dir.clone(), database.clone()).await;
    assert_eq!(restored.page_count().await, 235);
    let (status, page) = restored.new_browser().get_text("/wiki/Big%204").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("the end marker"));
    let (_, page) = restored.new_browser().get_text("/wiki/Small%20229").await;
    assert!(page.contains("small page 229"));
}

async fn sessions_are_kept_with_keep_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.member("alice").await;
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let (dir, database) = fresh(backend).await;
    let outcome = restore_into(&archive, dir.path(), &database.url, &["--keep-sessions", "--quiet"]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert_eq!(outcome.stdout, "", "--quiet prints nothing");
    let sessions = counts(&database.url).await.into_iter().find(|(n, _)| *n == "sessions").unwrap().1;
    assert_eq!(sessions, app.session_count().await);
    assert!(sessions > 0);
}

async fn a_backup_taken_while_a_writer_saves_holds_every_save_acknowledged_before_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let writer = app.member("writer").await.clone();
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = {
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let title = format!("Save {i}");
                if writer.create_page(&title, &format!("saved text {i}")).await.status()
                    == StatusCode::SEE_OTHER
                {
                    acknowledged.lock().unwrap().push(title);
                }
                i += 1;
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let during = acknowledged.lock().unwrap().len();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    task.await.unwrap();

    let (dir, database) = fresh(backend).await;
    let outcome = restore_into(&archive, dir.path(), &database.url, &[]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let restored = spawn_on(backend, dir.clone(), database.clone()).await;
    let browser = restored.new_browser();
    for title in &before {
        let (status, page) = browser.get_text(&format!("/wiki/{}", quire::urls::segment(title))).await;
        assert_eq!(status, StatusCode::OK, "{title}, acknowledged before the backup, is in it");
        assert!(page.contains("saved text"), "{page}");
    }
    let pages = restored.page_count().await as usize;
    assert!(pages >= before.len() && pages <= during + 1, "{pages} pages: a snapshot between the saves");
}

/// Rewrites an archive, letting `change` alter any entry (name, bytes).
fn rewrite(archive: &Path, out: &Path, change: impl Fn(&str, Vec<u8>) -> Vec<u8>) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(archive).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        writer.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        writer.write_all(&change(&name, bytes)).unwrap();
    }
    writer.finish().unwrap();
}

async fn assert_refused_with_nothing_written(archive: &Path, backend: Backend, reason: &str) {
    let (dir, database) = fresh(backend).await;
    let outcome = restore_into(archive, dir.path(), &database.url, &[]).await;
    assert_eq!(outcome.code, 3, "a damaged archive exits 3: {}", outcome.stderr);
    assert!(outcome.stderr.contains("cannot be restored"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains(reason), "expected {reason:?} in {}", outcome.stderr);
    assert!(outcome.stderr.contains("nothing was written"), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.trim().lines().count(), 1, "one line: {}", outcome.stderr);
    assert!(!dir.path().join("avatars").exists(), "no avatar file is written");
    // Not even migrated: the archive is checked before the database is opened.
    let db = Db::connect(&database.url).await.unwrap();
    quire::app::migrate(&db).await.unwrap();
    assert!(dump::content_counts(&db.read).await.unwrap().is_empty(), "the database stays empty");
}

async fn damaged_archives_are_refused_and_nothing_is_written(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let bytes = std::fs::read(&archive).unwrap();

    let truncated = work.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused_with_nothing_written(&truncated, backend, "not a complete zip archive").await;

    // A byte flipped inside an entry's data: the zip's own check or the SHA-256 catches it.
    let flipped = work.path().join("flipped.zip");
    let mut copy = bytes.clone();
    let at = copy.windows(6).position(|w| w == b"tables").unwrap() + 200;
    copy[at] ^= 0x20;
    std::fs::write(&flipped, &copy).unwrap();
    assert_refused_with_nothing_written(&flipped, backend, "").await;

    // A row changed and the zip made anew: only the manifest's SHA-256 knows.
    let edited = work.path().join("edited.zip");
    rewrite(&archive, &edited, |name, bytes| {
        if name == "tables/pages.jsonl" {
            String::from_utf8(bytes).unwrap().replacen("armadillo", "aardvark!", 1).into_bytes()
        } else {
            bytes
        }
    });
    assert_refused_with_nothing_written(&edited, backend, "tables/pages.jsonl does not match its SHA-256")
        .await;

    // A manifest that counts wrong.
    let miscounted = work.path().join("miscounted.zip");
    rewrite(&archive, &miscounted, |name, bytes| {
        if name != "manifest.json" {
            return bytes;
        }
        let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let tables = manifest["tables"].as_array_mut().unwrap();
        let users = tables.iter_mut().find(|t| t["name"] == "users").unwrap();
        users["rows"] = serde_json::json!(7);
        serde_json::to_vec(&manifest).unwrap()
    });
    assert_refused_with_nothing_written(
        &miscounted,
        backend,
        "tables/users.jsonl holds 2 rows where the manifest counts 7",
    )
    .await;

    // Not a Quire archive at all.
    let foreign = work.path().join("foreign.zip");
    rewrite(&archive, &foreign, |name, bytes| {
        if name == "manifest.json" { br#"{"format":"something-else"}"#.to_vec() } else { bytes }
    });
    assert_refused_with_nothing_written(&foreign, backend, "its manifest.json cannot be read").await;

    // A later version of the format, and columns this Quire does not know.
    let later = work.path().join("later.zip");
    rewrite(&archive, &later, |name, bytes| {
        if name != "manifest.json" {
            return bytes;
        }
        let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        manifest["format_version"] = serde_json::json!(2);
        serde_json::to_vec(&manifest).unwrap()
    });
    assert_refused_with_nothing_written(
        &later,
        backend,
        "it is in version 2 of the format; this Quire reads version 1",
    )
    .await;
    let columns = work.path().join("columns.zip");
    rewrite(&archive, &columns, |name, bytes| {
        if name != "manifest.json" {
            return bytes;
        }
        let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let tables = manifest["tables"].as_array_mut().unwrap();
        let pages = tables.iter_mut().find(|t| t["name"] == "pages").unwrap();
        pages["columns"].as_array_mut().unwrap().pop();
        serde_json::to_vec(&manifest).unwrap()
    });
    assert_refused_with_nothing_written(
        &columns,
        backend,
        "the columns of the table pages are not those this Quire knows",
    )
    .await;

    // An avatar whose bytes changed.
    let avatar = work.path().join("avatar.zip");
    rewrite(&archive, &avatar, |name, mut bytes| {
        if name.starts_with("files/avatars/") {
            bytes.push(0);
        }
        bytes
    });
    assert_refused_with_nothing_written(&avatar, backend, "does not match its size and SHA-256").await;

    let missing = work.path().join("no-such-file.zip");
    assert_refused_with_nothing_written(&missing, backend, "cannot open it").await;
}

async fn restore_into_a_wiki_that_is_not_empty_is_refused_unless_forced(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;

    let other = spawn_app(backend).await;
    let browser = other.member("someone").await;
    browser.create_page("Other wiki", "not in the archive").await;
    let outcome = restore_into(&archive, other.data_dir.path(), &other.database.url, &[]).await;
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("is not empty (1 users, 1 pages, 1 revisions)")
            && outcome.stderr.contains("pass --force to erase all of it"),
        "{}",
        outcome.stderr
    );
    assert_eq!(other.page_count().await, 1, "nothing was written");
    assert!(!outcome.stderr.contains("erasing"), "nothing is erased without --force: {}", outcome.stderr);

    let outcome =
        restore_into(&archive, other.data_dir.path(), &other.database.url, &["--force", "--quiet"]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let said = outcome.stderr.lines().find(|l| l.starts_with("--force: erasing")).unwrap_or_default();
    assert!(
        said.contains("erasing everything the database at")
            && said.contains("holds before writing: 1 users, 1 pages, 1 revisions")
            && said.contains(" sessions"),
        "--force says what it erases, even with --quiet: {}",
        outcome.stderr
    );
    let there = listed(&counts(&other.database.url).await);
    let outcome = restore_into(&archive, other.data_dir.path(), &other.database.url, &["--force"]).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!("holds before writing: {there}\n")),
        "{there}: {}",
        outcome.stderr
    );
    assert!(outcome.stdout.contains("erased first (--force): 2 users, "), "{}", outcome.stdout);
    let fresh = other.new_browser();
    assert_eq!(fresh.get("/wiki/Other%20wiki").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(fresh.get("/wiki/Second%20page").await.status(), StatusCode::OK);
    assert_eq!(
        fresh.login("someone", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED,
        "the erased member is gone"
    );
}

async fn backup_errors_say_why_and_exit_non_zero(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = app.data_dir.path().join("no/such/dir/backup.zip");
    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["backup", "--quiet", "--out"]).arg(&missing);
    let outcome = run(command).await;
    assert_eq!(outcome.code, 1);
    assert!(outcome.stderr.starts_with("error: cannot create"), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.trim().lines().count(), 1, "{}", outcome.stderr);
    assert!(!missing.exists());

    // An empty wiki backs up; a target database that does not answer is a failure of one line.
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let outcome = restore_into(&archive, work.path(), "postgres://quire@127.0.0.1:1/nowhere", &[]).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(outcome.stderr.starts_with("error: cannot connect to the database"), "{}", outcome.stderr);
    assert_eq!(outcome.stderr.trim().lines().count(), 1, "{}", outcome.stderr);

    let mut copy = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    copy.args(["copy-database", "--to", "ftp://example.com/wiki"]);
    let outcome = run(copy).await;
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("unsupported database URL scheme \"ftp\""), "{}", outcome.stderr);
}

async fn copy_database_moves_the_wiki_and_refuses_a_target_that_is_not_empty(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let before = counts(&app.database.url).await;
    let target = other_backend(backend);
    let (dir, database) = fresh(target).await;
    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["copy-database", "--to", &database.url]);
    let outcome = run(command).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains("copied"), "{}", outcome.stdout);
    let after = counts(&database.url).await;
    for ((name, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(old, new, "rows of {name}");
    }

    // The moved wiki, with the same avatar dir.
    let settings = quire::Settings::resolve(quire::RawSettings {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(database.url.clone()),
        avatar_dir: Some(app.avatar_dir()),
        ..quire::RawSettings::default()
    })
    .unwrap();
    let moved = quire::Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", moved.port());
    tokio::spawn(moved.run_until_stopped());
    let browser = Browser::new(&base);
    let (status, page) = browser.get_text("/wiki/Second%20page").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("armadillo"));
    assert_redirects_to(&browser.login("alice", PASSWORD).await, "/");
    assert_eq!(avatar_bytes(&browser).await, avatar_bytes(&app.browser).await);
    let (_, found) = browser.get_text("/search?q=armadillo").await;
    assert!(found.contains("Second page"), "{found}");
    assert_redirects_to(
        &browser.create_page("Made after the move", "x").await,
        "/wiki/Made%20after%20the%20move",
    );

    let mut again = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    again.args(["copy-database", "--quiet", "--to", &database.url]);
    let outcome = run(again).await;
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("is not empty") && outcome.stderr.contains("--force"),
        "{}",
        outcome.stderr
    );

    let there = listed(&counts(&database.url).await);
    let mut forced = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    forced.args(["copy-database", "--quiet", "--force", "--to", &database.url]);
    let outcome = run(forced).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!("holds before writing: {there}\n")),
        "--force says what it erases ({there}): {}",
        outcome.stderr
    );
    let content = |counts: Vec<(&'static str, u64)>| -> Vec<(&'static str, u64)> {
        counts.into_iter().filter(|(name, _)| !matches!(*name, "sessions" | "throttle")).collect()
    };
    assert_eq!(
        content(counts(&database.url).await),
        content(before),
        "the forced copy replaced what was there"
    );

    let mut same = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    same.args(["copy-database", "--to", &app.database.url]);
    let outcome = run(same).await;
    assert_eq!(outcome.code, 2, "{}", outcome.stderr);
    assert!(outcome.stderr.contains("names the database the wiki is in already"), "{}", outcome.stderr);
}

/// The entries of a zip, by name.
fn entries(bytes: &[u8]) -> std::collections::BTreeMap<String, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        out.insert(entry.name().to_owned(), String::from_utf8_lossy(&bytes).into_owned());
    }
    out
}

async fn export_writes_markdown_with_front_matter_and_html_with_relative_links(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    app.browser.create_page("Code", "Keep `[[Not A Link]]` and see [[Home|the home page]].").await;
    let out = app.data_dir.path().join("export.zip");
    let mut command = quire(&app.database.url, app.data_dir.path(), &app.avatar_dir());
    command.args(["export", "--out"]).arg(&out);
    let outcome = run(command).await;
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    let files = entries(&std::fs::read(&out).unwrap());
    assert!(!files.contains_key("pages/Gone.md"), "deleted pages are not exported");
    let home = &files["pages/Home.md"];
    assert!(home.starts_with("---\ntitle: \"Home\"\nauthor: \"alice\"\ncreated: 20"), "{home}");
    assert!(home.contains("updated: 20") && home.contains("\n---\n\n"), "{home}");
    assert!(
        home.contains(
            "[Second page](Second%20page.md), [Zoé’s notes](Zo%C3%A9%E2%80%99s%20notes.md) and Missing."
        ),
        "{home}"
    );
    let code = &files["pages/Code.md"];
    assert!(code.contains("Keep `[[Not A Link]]` and see [the home page](Home.md)."), "{code}");
    assert!(files.contains_key("pages/Zoé’s notes.md"));
    let html = &files["html/Home.html"];
    assert!(html.contains("<title>Home</title>") && html.contains(r#"href="Second%20page.html""#), "{html}");
    assert!(!html.contains("href=\"/wiki/"), "{html}");
}

async fn only_admins_download_the_export(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let (_, home) = app.browser.get_text("/admin").await;
    assert!(home.contains(r#"href="/admin/export.zip""#), "the admin home links the export");
    let response = app.browser.get("/admin/export.zip").await;
    assert_eq!(response.status(), StatusCode::OK, "alice, the first member, is an admin");
    assert_eq!(response.headers()["content-type"], "application/zip");
    let files = entries(&response.bytes().await.unwrap());
    assert!(files.contains_key("pages/Second page.md") && files.contains_key("html/Second page.html"));
    // A zip is compressed already: a browser asking for br or gzip gets the zip as it is.
    let raw = app
        .browser
        .client
        .get(app.browser.url("/admin/export.zip"))
        .header("accept-encoding", "br, gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(raw.headers()["content-encoding"], "identity");
    let length: usize = raw.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let bytes = raw.bytes().await.unwrap();
    assert_eq!(bytes.len(), length);
    assert_eq!(entries(&bytes).keys().collect::<Vec<_>>(), files.keys().collect::<Vec<_>>());

    let bob = app.new_browser();
    assert_redirects_to(&bob.login("bob", "another long password").await, "/");
    assert_eq!(bob.get("/admin/export.zip").await.status(), StatusCode::FORBIDDEN);
    let anonymous = app.new_browser().get("/admin/export.zip").await;
    assert!(
        anonymous.status().is_redirection() || anonymous.status() == StatusCode::FORBIDDEN,
        "{}",
        anonymous.status()
    );
}

/// The tables a backup leaves out on purpose: derived from the others (the search index and
/// its SQLite shadow tables), or the state of this database itself (migrations applied, the
/// scheduled backups' lease, the change counter running instances watch).
fn left_out(table: &str) -> bool {
    table.starts_with("page_search") || matches!(table, "seaql_migrations" | "backup_lease" | "changes")
}

async fn every_table_and_column_of_the_database_is_in_the_backup(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let work = tempfile::tempdir().unwrap();
    let archive = backup_of(&app, work.path()).await;
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("manifest.json").unwrap().read_to_string(&mut text).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let in_manifest: std::collections::BTreeMap<String, Vec<String>> = manifest["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let columns =
                t["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned());
            (t["name"].as_str().unwrap().to_owned(), columns.collect())
        })
        .collect();
    let in_database: Vec<String> =
        crate::access_helpers::tables(&app).await.into_iter().filter(|t| !left_out(t)).collect();
    assert_eq!(
        in_manifest.keys().cloned().collect::<Vec<_>>(),
        in_database,
        "every table of the database is backed up (a new table must join models/dump.rs TABLES)"
    );
    for (table, columns) in &in_manifest {
        let mut there = crate::access_helpers::columns(&app, table).await;
        let mut backed_up = columns.clone();
        there.sort();
        backed_up.sort();
        assert_eq!(backed_up, there, "every column of {table} is backed up");
    }
}

// ---- scheduled backups ----

const EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const SUCCESSES: &str = "quire_backups_total{result=\"success\"}";
const FAILURES: &str = "quire_backups_total{result=\"failure\"}";

fn scheduled(dir: &Path, keep: usize) -> Options {
    Options {
        backup_every: Some(EVERY),
        backup_dir: Some(dir.to_path_buf()),
        backup_keep: Some(keep),
        ..Options::default()
    }
}

/// The value of one series in a metrics exposition (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics_of(app: &TestApp) -> String {
    let (status, text) = app.new_browser().get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    text
}

/// The scheduled archives in `dir`, oldest first.
fn archives(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quire-backup-2") && n.ends_with(".zip"))
        .collect();
    names.sort();
    names
}

async fn two_instances_make_one_scheduled_backup_per_slot_keep_the_newest_and_count_them(backend: Backend) {
    let started = quire::models::now_ms();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backups");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "the operator's").unwrap();
    std::fs::write(dir.join("quire-backup-latest.zip"), "not one of Quire's names").unwrap();
    let mut a = spawn_with(backend, scheduled(&dir, 2)).await;
    let mut b = spawn_on_with(backend, a.data_dir.clone(), a.database.clone(), scheduled(&dir, 2)).await;
    let alice = a.member("alice").await;
    assert_redirects_to(&alice.create_page("Scheduled", "backed up on a schedule").await, "/wiki/Scheduled");
    let seeded = quire::backup::schedule::file_name(quire::models::now_ms());

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
    let (names, texts) = loop {
        let before = archives(&dir);
        let texts = [metrics_of(&a).await, metrics_of(&b).await];
        let after = archives(&dir);
        let made: f64 = texts.iter().map(|t| metric(t, SUCCESSES)).sum();
        if made >= 3.0 && before == after && after.last().is_some_and(|newest| *newest > seeded) {
            break (after, texts);
        }
        assert!(std::time::Instant::now() < deadline, "three scheduled backups within 40 s: {after:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let made: f64 = texts.iter().map(|t| metric(t, SUCCESSES)).sum();
    let slots = (quire::models::now_ms() / 1000 - started / 1000) as f64;
    assert!(made <= slots, "never two backups for one slot: {made} backups in {slots} slots");
    assert_eq!(texts.iter().map(|t| metric(t, FAILURES)).sum::<f64>(), 0.0);
    assert_eq!(names.len(), 2, "--backup-keep 2: {names:?}");
    assert!(
        dir.join("notes.txt").exists() && dir.join("quire-backup-latest.zip").exists(),
        "other files stay"
    );
    for text in &texts {
        if metric(text, SUCCESSES) > 0.0 {
            assert!(metric(text, "quire_backup_last_size_bytes") > 0.0, "{text}");
            assert!(metric(text, "quire_backup_last_rows") > 0.0, "{text}");
            assert!(metric(text, "quire_backup_last_success_timestamp_seconds") >= (started / 1000) as f64);
        }
    }
    let partials: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(partials.len() <= 1, "at most the one being written: {partials:?}");

    // Both instances stop first: the next scheduled backup would remove the oldest kept one.
    a.stop().await;
    b.stop().await;
    let newest = dir.join(archives(&dir).last().unwrap());
    let (target_dir, database) = fresh(backend).await;
    let outcome = restore_into(&newest, target_dir.path(), &database.url, &[]).await;
    assert_eq!(outcome.code, 0, "the scheduled archive restores: {}", outcome.stderr);
    let restored = spawn_on(backend, target_dir.clone(), database.clone()).await;
    let (status, page) = restored.new_browser().get_text("/wiki/Scheduled").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("backed up on a schedule"));
}

async fn a_failed_scheduled_backup_is_counted_and_the_server_keeps_serving(backend: Backend) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backups");
    let app = spawn_with(backend, scheduled(&dir, 2)).await;
    assert!(dir.is_dir(), "the backup dir is made at start");
    // The backup dir becomes a file: no archive can be created in it.
    std::fs::remove_dir(&dir).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let text = metrics_of(&app).await;
        if metric(&text, FAILURES) >= 1.0 {
            assert_eq!(metric(&text, SUCCESSES), 0.0, "{text}");
            assert_eq!(metric(&text, "quire_backup_last_success_timestamp_seconds"), 0.0);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a failure counted within 20 s: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.new_browser().get("/").await.status(), StatusCode::OK, "the server keeps serving");
    assert_eq!(std::fs::read_to_string(&dir).unwrap(), "not a directory");
}

async fn a_crashed_holder_of_the_backup_lease_blocks_only_its_own_slot(backend: Backend) {
    use quire::models::lease::{Job, claim, release, renew};
    let app = spawn_app(backend).await;
    let db = &app.state.db.write;
    let job = Job::ScheduledBackup;
    let now = quire::models::now_ms();
    assert!(claim(db, job, "crashed", 10, now, 1_000).await.unwrap(), "the first claim of a slot wins");
    assert!(!claim(db, job, "other", 10, now, 1_000).await.unwrap(), "a slot is claimed once");
    assert!(
        !claim(db, job, "other", 11, now + 500, 1_000).await.unwrap(),
        "a live lease holds the next slot"
    );
    // The holder never renews nor releases: its lease expires, and the next slot goes ahead.
    assert!(claim(db, job, "other", 11, now + 1_500, 1_000).await.unwrap(), "an expired lease is taken over");
    assert!(!renew(db, job, "crashed", 10, now + 1_600, 1_000).await.unwrap(), "the old holder lost it");
    assert!(renew(db, job, "other", 11, now + 1_600, 1_000).await.unwrap());
    release(db, job, "other", 11).await.unwrap();
    assert!(
        !claim(db, job, "third", 11, now + 1_700, 1_000).await.unwrap(),
        "a finished slot is never redone"
    );
    assert!(!claim(db, job, "third", 9, now + 1_700, 1_000).await.unwrap(), "nor an earlier one");
    assert!(
        claim(db, job, "third", 12, now + 1_700, 1_000).await.unwrap(),
        "a released lease frees the next"
    );
}

async fn bad_backup_options_are_refused_before_the_server_starts(backend: Backend) {
    if backend != Backend::Sqlite {
        return; // The command line is the same whatever the database.
    }
    let work = tempfile::tempdir().unwrap();
    for (args, env, code, says) in [
        (vec!["--backup-every", "0"], None, 2, "above 0"),
        (vec!["--backup-every=-2"], None, 2, "above 0"),
        (vec!["--backup-every", "daily"], None, 2, "is not a number of hours"),
        (vec!["--backup-every", "0.00001"], None, 2, "at least 1 second"),
        (vec![], Some(("QUIRE_BACKUP_EVERY", "soon")), 2, "is not a number of hours"),
        (vec!["--backup-every", "1", "--backup-keep", "0"], None, 1, "must be at least 1"),
        (vec!["--backup-every", "1"], Some(("QUIRE_BACKUP_KEEP", "none")), 2, "invalid value 'none'"),
    ] {
        let data = work.path().join("data");
        let mut command =
            quire(&quire::config::sqlite_url(&data.join("quire.db")), &data, &data.join("avatars"));
        command.args(["serve", "--bind", "127.0.0.1:0"]).args(&args);
        if let Some((key, value)) = env {
            command.env(key, value);
        }
        let outcome = run(command).await;
        assert_eq!(outcome.code, code, "{args:?} {env:?}: {}", outcome.stderr);
        assert!(outcome.stderr.contains(says), "{args:?} {env:?}: {}", outcome.stderr);
        assert!(!data.join("backups").exists(), "nothing is made for a refused option");
    }
}

async fn a_member_exports_what_they_may_read_and_nothing_else(backend: Backend) {
    use crate::access_helpers::{assert_login_redirect, block, set_role, set_setting};
    let app = spawn_app(backend).await;
    seed(&app).await;
    let (_, profile) = app.browser.get_text("/profile").await;
    assert!(profile.contains(r#"href="/export.zip""#), "the profile links the member's export");

    let bob = app.new_browser();
    assert_redirects_to(&bob.login("bob", "another long password").await, "/");
    assert_redirects_to(&set_role(&app.browser, "bob", "reader").await, "/admin/users");
    let response = bob.get("/export.zip").await;
    assert_eq!(response.status(), StatusCode::OK, "a reader exports what they read");
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let files = entries(&response.bytes().await.unwrap());
    for title in TITLES {
        let stem = quire::export::file_stem(title);
        assert!(
            files.contains_key(&format!("pages/{stem}.md"))
                && files.contains_key(&format!("html/{stem}.html"))
        );
    }
    for (name, text) in &files {
        assert!(!name.contains("Gone"), "a deleted page is not exported: {name}");
        assert!(!text.contains("to be deleted"), "nor its text, anywhere: {name}");
    }
    let everything = entries(&app.browser.get("/admin/export.zip").await.bytes().await.unwrap());
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        everything.keys().collect::<Vec<_>>(),
        "a member reads every live page, so their export holds every live page"
    );

    let visitor = app.new_browser();
    assert_login_redirect(&visitor.get("/export.zip").await, "/export.zip");
    set_setting(&app.browser, "read_access", "members").await;
    assert_login_redirect(&visitor.get("/export.zip").await, "/export.zip");
    assert_redirects_to(&block(&app.browser, "bob").await, "/admin/users");
    let refused = bob.get("/export.zip").await;
    assert!(refused.status().is_redirection(), "a blocked member exports nothing: {}", refused.status());
    assert!(location(refused.headers()).starts_with("/login"));
}

/// The targets of `attribute="…"` in an HTML file.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!(" {attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

/// Asserts that a relative link from a file in `folder` names an entry of the zip.
#[track_caller]
fn assert_resolves(
    files: &std::collections::BTreeMap<String, String>,
    from: &str,
    folder: &str,
    target: &str,
) {
    if target.starts_with("https://") || target.starts_with("http://") || target.starts_with('#') {
        return;
    }
    assert!(!target.starts_with('/'), "{from}: {target:?} points outside the export");
    let path = target.split('#').next().unwrap_or_default();
    let mut parts: Vec<String> = vec![folder.to_owned()];
    for part in path.split('/') {
        if part == ".." {
            assert!(parts.pop().is_some(), "{from}: {target:?} climbs out of the export");
        } else {
            parts.push(percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned());
        }
    }
    let name = parts.join("/");
    assert!(files.contains_key(&name), "{from}: the link {target:?} names {name:?}, which the export lacks");
}

async fn every_exported_page_has_its_files_and_every_link_resolves_within_the_zip(backend: Backend) {
    let app = spawn_app(backend).await;
    seed(&app).await;
    let guide = "Guides/Install: 100% a?b";
    app.browser
        .create_page(
            guide,
            "# Install\n\n## Steps\n\nBack to [[Home|home]], on to [[Zoé’s notes]], never to [[Nowhere]].\n\n\
             ```rust\nfn main() { println!(\"[[Not a link]]\"); }\n```\n\n[the site](https://example.com/) and [recent](/recent).\n\n\
             ![a dot](attachment:dot.png) [the plan](<attachment:Home/plan.bin>), [old](attachment:Home/old.txt) \
             and `[code](attachment:dot.png)`.",
        )
        .await;
    let list = format!("/wiki/{}/attachments", quire::urls::segment(guide));
    let token = app.browser.csrf(&list).await;
    let dot = png(3);
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("file", reqwest::multipart::Part::bytes(dot.clone()).file_name("dot.png"));
    let response = app.browser.client.post(app.browser.url(&list)).multipart(form).send().await.unwrap();
    assert_redirects_to(&response, &list);
    let response = app.browser.get("/admin/export.zip").await;
    assert_eq!(response.status(), StatusCode::OK);
    let zipped = response.bytes().await.unwrap();
    let files = entries(&zipped);

    // The files, byte for byte: the newest version of each live one, beside its page's Markdown.
    let sha = |bytes: &[u8]| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
    let read_entry = |name: &str| {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&zipped[..])).unwrap();
        let mut entry = zip.by_name(name).unwrap_or_else(|_| panic!("the export holds {name}"));
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        bytes
    };
    let guide_stem = quire::export::file_stem(guide);
    let plan: Vec<u8> = (0..300 * 1024).map(|i: u32| (i % 251) as u8 ^ 9).collect();
    assert_eq!(sha(&read_entry("pages/Home/plan.bin")), sha(&plan), "the newest version of plan.bin");
    assert_eq!(sha(&read_entry(&format!("pages/{guide_stem}/dot.png"))), sha(&dot));
    assert!(!files.contains_key("pages/Home/old.txt"), "a deleted file is not exported");
    assert!(!files.keys().any(|n| n.starts_with("pages/Gone/")), "a deleted page's files are not exported");
    let page = &files[&format!("html/{guide_stem}.html")];
    let dot_path = format!("../pages/{}/dot.png", quire::urls::segment(&guide_stem));
    assert!(page.contains(&format!(r#"<img src="{dot_path}""#)), "the image shows: {page}");
    assert!(page.contains(r#"href="../pages/Home/plan.bin""#), "{page}");
    assert!(page.contains(r#"<a class="missing-file" title="Not in this export""#), "{page}");
    assert!(!page.contains("attachment:Home/old.txt"), "{page}");
    let markdown = &files[&format!("pages/{guide_stem}.md")];
    assert!(
        markdown.contains(&format!("![a dot]({}/dot.png)", quire::urls::segment(&guide_stem))),
        "{markdown}"
    );
    assert!(markdown.contains("[the plan](<Home/plan.bin>)"), "{markdown}");
    assert!(markdown.contains("`[code](attachment:dot.png)`"), "code is left as it is: {markdown}");
    assert!(markdown.contains("[old](attachment:Home/old.txt)"), "a missing file's link is kept as written");

    let titles: Vec<&str> = TITLES.iter().copied().chain([guide]).collect();
    let index = &files["html/index.html"];
    for title in &titles {
        let stem = quire::export::file_stem(title);
        assert!(files.contains_key(&format!("pages/{stem}.md")), "{title} has its Markdown file");
        assert!(files.contains_key(&format!("html/{stem}.html")), "{title} has its HTML file");
        let href = format!("href=\"{}.html\"", quire::urls::segment(&stem));
        assert!(index.contains(&href), "the index links {title}: {index}");
    }
    let markdown_files = files.keys().filter(|n| n.starts_with("pages/") && n.ends_with(".md"));
    assert_eq!(markdown_files.count(), titles.len(), "one file a page");
    let attached: Vec<&String> =
        files.keys().filter(|n| n.starts_with("pages/") && !n.ends_with(".md")).collect();
    assert_eq!(attached.len(), 2, "the live files, and only them: {attached:?}");
    assert!(files.contains_key("html/style.css"));

    let mut checked = 0;
    for (name, text) in &files {
        if let Some(page) = name.strip_prefix("pages/").filter(|_| name.ends_with(".md")) {
            for link in text.split("](").skip(1) {
                let target = &link[..link.find(')').unwrap_or(link.len())];
                // The author's own Markdown links are their source, kept as written (a file the
                // export lacks, a path of the wiki).
                let target = target.trim_start_matches('<').trim_end_matches('>');
                if target == "/recent" || target.starts_with("attachment:") {
                    continue;
                }
                assert_resolves(&files, page, "pages", target);
                checked += 1;
            }
        } else if name.ends_with(".html") {
            for target in attribute_values(text, "href").into_iter().chain(attribute_values(text, "src")) {
                assert_resolves(&files, name, "html", target);
                checked += 1;
            }
        }
    }
    assert!(checked > 20, "the links were found: {checked}");
    let page = &files[&format!("html/{}.html", quire::export::file_stem(guide))];
    for label in ["Nowhere", "recent"] {
        let unlinked = format!(
            r#"<a class="missing-page" title="Not in this export" rel="noopener noreferrer nofollow">{label}</a>"#
        );
        assert!(page.contains(&unlinked), "{label} is shown unlinked: {page}");
    }
    assert!(page.contains("[[Not a link]]"), "code is left as it is: {page}");
    let markdown = &files[&format!("pages/{}.md", quire::export::file_stem(guide))];
    assert!(markdown.contains("never to Nowhere."), "{markdown}");
}

crate::tests!(
    a_member_exports_what_they_may_read_and_nothing_else,
    every_exported_page_has_its_files_and_every_link_resolves_within_the_zip,
    every_table_and_column_of_the_database_is_in_the_backup,
    two_instances_make_one_scheduled_backup_per_slot_keep_the_newest_and_count_them,
    a_failed_scheduled_backup_is_counted_and_the_server_keeps_serving,
    a_crashed_holder_of_the_backup_lease_blocks_only_its_own_slot,
    bad_backup_options_are_refused_before_the_server_starts,
    export_writes_markdown_with_front_matter_and_html_with_relative_links,
    only_admins_download_the_export,
    a_restored_backup_serves_the_same_wiki_with_the_same_passwords,
    hundreds_of_rows_and_large_pages_are_restored_in_batches,
    sessions_are_kept_with_keep_sessions,
    a_backup_taken_while_a_writer_saves_holds_every_save_acknowledged_before_it,
    damaged_archives_are_refused_and_nothing_is_written,
    restore_into_a_wiki_that_is_not_empty_is_refused_unless_forced,
    backup_errors_say_why_and_exit_non_zero,
    copy_database_moves_the_wiki_and_refuses_a_target_that_is_not_empty,
);

//! `quire import-flask`: brings a database made by the seed's Flask/SQLAlchemy app (tables
//! `users` and `pages`) and its avatar files into Quire's current database, whichever backend.
//!
//! One transaction: a failure leaves the target as it was (avatar files written so far are
//! removed). The source is opened read-only. Names and titles already present are reported and
//! skipped, never overwritten, so a second run imports nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sea_orm::{Database, DatabaseConnection, DbBackend, FromQueryResult, Statement, TransactionTrait};

use crate::db::Db;
use crate::domain::{PageTitle, TextError, Username};
use crate::models::page::{self, NewPage};
use crate::models::user;
use crate::{render, uploads};

#[derive(Debug, FromQueryResult)]
struct FlaskUser {
    id: i64,
    username: String,
    password_hash: String,
    avatar: Option<String>,
}

#[derive(Debug, FromQueryResult)]
struct FlaskPage {
    id: i64,
    title: String,
    content: String,
    author_id: Option<i64>,
}

/// What an import did, with every skip and its reason.
#[derive(Debug, Default)]
pub struct Report {
    pub users_imported: usize,
    pub pages_imported: usize,
    pub avatars_imported: usize,
    pub skipped_users: Vec<(String, String)>,
    pub skipped_pages: Vec<(String, String)>,
    pub skipped_avatars: Vec<(String, String)>,
}

impl Report {
    pub fn nothing_imported(&self) -> bool {
        self.users_imported == 0 && self.pages_imported == 0 && self.avatars_imported == 0
    }

    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if self.nothing_imported() {
            out.push_str("Nothing to import: everything in the source is already present or was skipped.\n");
        }
        out.push_str(&format!(
            "users:   {} imported, {} skipped\npages:   {} imported, {} skipped\navatars: {} imported, {} skipped\n",
            self.users_imported,
            self.skipped_users.len(),
            self.pages_imported,
            self.skipped_pages.len(),
            self.avatars_imported,
            self.skipped_avatars.len(),
        ));
        for (what, list) in
            [("user", &self.skipped_users), ("page", &self.skipped_pages), ("avatar", &self.skipped_avatars)]
        {
            for (name, reason) in list {
                out.push_str(&format!("skipped {what} {name:?}: {reason}\n"));
            }
        }
        out
    }
}

/// Progress, drawn as a bar on a terminal and as plain lines otherwise.
pub trait Progress {
    fn start(&self, stage: &str, total: u64);
    fn advance(&self);
    fn finish(&self);
}

/// Reports nothing (tests, library callers).
pub struct Quiet;

impl Progress for Quiet {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

async fn open_source(path: &Path) -> anyhow::Result<DatabaseConnection> {
    if !path.is_file() {
        bail!("the Flask database {} does not exist", path.display());
    }
    let url = format!("sqlite://{}?mode=ro", path.display());
    Database::connect(url).await.with_context(|| format!("cannot open {} read-only", path.display()))
}

/// A Flask avatar name is a plain file name; anything else is not looked up.
fn avatar_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != "..";
    plain.then(|| dir.join(name))
}

/// Why a title cannot be imported as it is, if it cannot: the rules of a title typed here.
fn title_problem(title: &str) -> Option<String> {
    PageTitle::parse(title).err().map(|err| match err {
        TextError::DotSegment => "a page titled “.” or “..” cannot be opened by URL".to_owned(),
        other => other.to_string(),
    })
}

/// Imports everything from `source_db` (and avatar files from `uploads`) into `target`.
pub async fn import_flask(
    target: &Db,
    avatar_dir: &Path,
    source_db: &Path,
    uploads: &Path,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<Report> {
    let source = open_source(source_db).await?;
    let users = FlaskUser::find_by_statement(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT id, username, password_hash, avatar FROM users ORDER BY id",
    ))
    .all(&source)
    .await
    .context("cannot read the users table of the Flask database")?;
    let pages = FlaskPage::find_by_statement(Statement::from_string(
        DbBackend::Sqlite,
        "SELECT id, title, content, author_id FROM pages ORDER BY id",
    ))
    .all(&source)
    .await
    .context("cannot read the pages table of the Flask database")?;
    source.close().await.ok();

    let mut written = Vec::new();
    let result = import_rows(target, avatar_dir, uploads, users, pages, progress, &mut written).await;
    if result.is_err() {
        for name in &written {
            uploads::remove(avatar_dir, name).await;
        }
    }
    result
}

async fn import_rows(
    target: &Db,
    avatar_dir: &Path,
    uploads_dir: &Path,
    users: Vec<FlaskUser>,
    pages: Vec<FlaskPage>,
    progress: &(dyn Progress + Sync),
    written: &mut Vec<String>,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let txn = target.write.begin().await.context("cannot start the import transaction")?;
    // Flask user id → Quire user id, for the users imported now.
    let mut authors: HashMap<i64, i32> = HashMap::new();

    progress.start("users", users.len() as u64);
    for flask in &users {
        progress.advance();
        // The rules of a name typed here, on the name byte for byte.
        let username = match Username::parse_untrimmed(&flask.username) {
            Ok(username) => username,
            Err(err) => {
                report.skipped_users.push((flask.username.clone(), err.to_string()));
                continue;
            }
        };
        if user::find_by_username(&txn, &flask.username).await?.is_some() {
            report.skipped_users.push((flask.username.clone(), "the username is already present".into()));
            continue;
        }
        if let Some(twin) = user::find_by_key(&txn, &username.key()).await? {
            let reason = format!("the username looks too much like the member {:?}", twin.username);
            report.skipped_users.push((flask.username.clone(), reason));
            continue;
        }
        let created = user::create(&txn, &username, &flask.password_hash, crate::access::Role::Editor)
            .await
            .with_context(|| format!("cannot import the user {:?}", flask.username))?;
        authors.insert(flask.id, created.id);
        report.users_imported += 1;

        let Some(name) = flask.avatar.as_deref().filter(|n| !n.is_empty()) else { continue };
        let label = format!("{name} (of {})", flask.username);
        let Some(path) = avatar_file(uploads_dir, name) else {
            report.skipped_avatars.push((label, "the file name is not a plain name".into()));
            continue;
        };
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(err) => {
                report.skipped_avatars.push((label, format!("cannot read {}: {err}", path.display())));
                continue;
            }
        };
        let filename = name.to_owned();
        let checked = tokio::task::spawn_blocking(move || uploads::validate(&filename, &bytes))
            .await
            .context("the image check failed")?;
        match checked {
            Ok(avatar) => {
                let stored = uploads::store(avatar_dir, &avatar).await?;
                written.push(stored.clone());
                user::set_avatar(&txn, created.id, &stored).await?;
                report.avatars_imported += 1;
            }
            Err(err) => report.skipped_avatars.push((label, err.to_string())),
        }
    }
    progress.finish();

    progress.start("pages", pages.len() as u64);
    for flask in &pages {
        progress.advance();
        if let Some(problem) = title_problem(&flask.title) {
            report.skipped_pages.push((flask.title.clone(), problem));
            continue;
        }
        // Deleted pages count: their title is still taken, and restoring them must stay possible.
        if let Some(present) = page::find_including_deleted(&txn, &flask.title).await? {
            let reason = if present.page.deleted_at.is_some() {
                "the title is already present (a deleted page)"
            } else {
                "the title is already present"
            };
            report.skipped_pages.push((flask.title.clone(), reason.into()));
            continue;
        }
        // The author, when they came in with this import; a page of a skipped (already
        // present) user is not given to whoever holds that name here.
        let author_id = flask.author_id.and_then(|id| authors.get(&id).copied());
        let content = flask.content.clone();
        let html = match tokio::task::spawn_blocking(move || render::sanitize(&content))
            .await
            .context("sanitizing failed")?
        {
            Ok(html) => html,
            Err(why) => {
                report.skipped_pages.push((flask.title.clone(), why.to_string()));
                continue;
            }
        };
        page::create(
            &txn,
            NewPage {
                title: &flask.title,
                content: &flask.content,
                format: page::FORMAT_HTML,
                html: &html,
                author_id,
                links: &[],
            },
        )
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot import the page {:?} (id {})", flask.title, flask.id))?;
        report.pages_imported += 1;
    }
    progress.finish();

    txn.commit().await.context("cannot commit the import")?;
    Ok(report)
}

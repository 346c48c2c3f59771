//! `quire backup`, `quire restore` and `quire copy-database`: the whole wiki as one archive
//! (format in `docs/backup-format.md`), and moving it between databases of any backend.
//!
//! A backup reads every table in one snapshot transaction while the wiki keeps serving. A
//! restore reads and checks the whole archive (every SHA-256, every row count, every value's
//! type) before it writes anything, then writes in one transaction. A copy reads the source in
//! one snapshot, writes the target in one transaction and compares what the target then holds
//! with what was read before it commits.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::Refused;
use crate::db::Db;
use crate::import::Progress;
use crate::models::dump::{self, Row, TABLES, Table};
use crate::models::search;

/// The format's name, in every manifest.
pub const FORMAT: &str = "quire-backup";
/// The format's version: bumped on any change a version-1 reader would misread.
pub const FORMAT_VERSION: u32 = 1;
const MANIFEST: &str = "manifest.json";
const AVATARS: &str = "files/avatars/";
/// A manifest larger than this is not one of ours.
const MANIFEST_LIMIT: u64 = 16 * 1024 * 1024;

/// An archive that cannot be trusted: damaged, truncated, or not a Quire backup.
#[derive(Debug, thiserror::Error)]
#[error("the archive {path} cannot be restored: {reason}; nothing was written")]
pub struct Damaged {
    pub path: String,
    pub reason: String,
}

/// What `manifest.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub quire_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// sqlite, postgres or mysql.
    pub source_backend: String,
    /// The newest migration of the source database.
    pub schema: Option<String>,
    pub tables: Vec<TableEntry>,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub path: String,
    pub columns: Vec<ColumnEntry>,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Every table's rows and the avatar files: what an archive holds, checked.
pub struct Contents {
    pub manifest: Manifest,
    pub tables: Vec<(&'static Table, Vec<Row>)>,
    /// Avatar file name and bytes.
    pub avatars: Vec<(String, Vec<u8>)>,
}

impl Contents {
    pub fn rows(&self, name: &str) -> usize {
        self.tables.iter().find(|(t, _)| t.name == name).map_or(0, |(_, rows)| rows.len())
    }
}

fn backend_name(db: &Db) -> &'static str {
    match db.backend() {
        sea_orm::DatabaseBackend::Postgres => "postgres",
        sea_orm::DatabaseBackend::MySql => "mysql",
        _ => "sqlite",
    }
}

/// One JSON Lines line: the row as an object, columns in table order.
fn line(table: &Table, row: &Row) -> String {
    let mut out = String::from("{");
    for (i, (column, value)) in table.columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(column.name).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push_str("}\n");
    out
}

fn jsonl(table: &Table, rows: &[Row]) -> String {
    rows.iter().map(|row| line(table, row)).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A plain file name: no directory part, nothing a path could climb with.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != ".."
}

/// Reads every table in one snapshot, with the avatar files the snapshot's members name.
pub async fn read_snapshot(
    db: &Db,
    avatar_dir: &Path,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<Contents> {
    let txn = dump::snapshot(&db.read).await.context("cannot start the snapshot transaction")?;
    let schema = dump::schema_version(&txn).await?;
    let mut tables = Vec::new();
    progress.start("tables", TABLES.len() as u64);
    for table in TABLES {
        let rows = dump::read_all(&txn, table)
            .await
            .with_context(|| format!("cannot read the table {}", table.name))?;
        tables.push((table, rows));
        progress.advance();
    }
    progress.finish();

    // The files are read while the snapshot is held: a member who changes their avatar now
    // writes a new file under a new name, and the old one is what the snapshot names.
    let names: Vec<String> = tables
        .iter()
        .find(|(t, _)| t.name == "users")
        .map(|(t, rows)| {
            let at = t.columns.iter().position(|c| c.name == "avatar").unwrap_or(usize::MAX);
            rows.iter().filter_map(|row| row.get(at)?.as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default();
    let mut avatars = Vec::new();
    progress.start("avatars", names.len() as u64);
    for name in names {
        progress.advance();
        if !plain_name(&name) {
            tracing::warn!(avatar = %name, "an avatar name that is not a plain file name is left out");
            continue;
        }
        match tokio::fs::read(avatar_dir.join(&name)).await {
            Ok(bytes) => avatars.push((name, bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(avatar = %name, "an avatar file named in the database is missing: left out");
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot read the avatar {}", avatar_dir.join(&name).display()));
            }
        }
    }
    progress.finish();
    txn.commit().await.context("cannot end the snapshot transaction")?;

    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        quire_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        source_backend: backend_name(db).to_owned(),
        schema,
        tables: Vec::new(),
        files: Vec::new(),
    };
    Ok(Contents { manifest, tables, avatars })
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub tables: Vec<(&'static str, u64)>,
    pub files: usize,
    pub bytes: u64,
}

/// Writes a backup of the wiki to `out`: to a temporary file beside it, renamed into place
/// once complete, so that `out` is never a half-written archive.
pub async fn backup(
    db: &Db,
    avatar_dir: &Path,
    out: &Path,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<BackupReport> {
    let contents = read_snapshot(db, avatar_dir, progress).await?;
    let out = out.to_path_buf();
    tokio::task::spawn_blocking(move || write_archive(contents, &out))
        .await
        .context("the archive writer failed")?
}

fn write_archive(mut contents: Contents, out: &Path) -> anyhow::Result<BackupReport> {
    let file_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = out.with_file_name(format!(".{file_name}.partial"));
    let result = write_zip(&mut contents, &partial);
    match result {
        Ok(report) => {
            std::fs::rename(&partial, out)
                .with_context(|| format!("cannot move the archive to {}", out.display()))?;
            Ok(report)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            Err(err)
        }
    }
}

fn write_zip(contents: &mut Contents, path: &Path) -> anyhow::Result<BackupReport> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    let mut report = BackupReport { tables: Vec::new(), files: 0, bytes: 0 };
    for (table, rows) in &contents.tables {
        let text = jsonl(table, rows);
        let entry = format!("tables/{}.jsonl", table.name);
        zip.start_file(entry.as_str(), options)?;
        zip.write_all(text.as_bytes())?;
        contents.manifest.tables.push(TableEntry {
            name: table.name.to_owned(),
            path: entry,
            columns: columns_of(table),
            rows: rows.len() as u64,
            sha256: sha256_hex(text.as_bytes()),
        });
        report.tables.push((table.name, rows.len() as u64));
    }
    for (name, bytes) in &contents.avatars {
        let entry = format!("{AVATARS}{name}");
        // Images are compressed already.
        zip.start_file(entry.as_str(), options.compression_method(zip::CompressionMethod::Stored))?;
        zip.write_all(bytes)?;
        contents.manifest.files.push(FileEntry {
            path: entry,
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        });
        report.files += 1;
    }
    zip.start_file(MANIFEST, options)?;
    zip.write_all(&serde_json::to_vec_pretty(&contents.manifest)?)?;
    let mut writer = zip.finish()?;
    writer.flush()?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    report.bytes = file.metadata()?.len();
    Ok(report)
}

fn columns_of(table: &Table) -> Vec<ColumnEntry> {
    table
        .columns
        .iter()
        .map(|c| ColumnEntry { name: c.name.to_owned(), kind: c.kind.as_str().to_owned() })
        .collect()
}

/// Reads and checks a whole archive: the manifest, then every entry against it (SHA-256,
/// size, row count, the type of every value). Nothing is trusted before all of it agrees.
pub fn read_archive(path: &Path) -> Result<Contents, Damaged> {
    let damaged = |reason: String| Damaged { path: path.display().to_string(), reason };
    let file = std::fs::File::open(path).map_err(|e| damaged(format!("cannot open it: {e}")))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| damaged(format!("it is not a complete zip archive ({e})")))?;

    let manifest: Manifest = {
        let bytes = read_entry(&mut zip, MANIFEST, MANIFEST_LIMIT).map_err(damaged)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| damaged(format!("its manifest.json cannot be read: {e}")))?
    };
    if manifest.format != FORMAT {
        return Err(damaged(format!("its manifest names the format {:?}, not {FORMAT:?}", manifest.format)));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(damaged(format!(
            "it is in version {} of the format; this Quire reads version {FORMAT_VERSION}",
            manifest.format_version
        )));
    }

    let mut listed = vec![MANIFEST.to_owned()];
    let mut tables = Vec::new();
    for table in TABLES {
        let entry = manifest
            .tables
            .iter()
            .find(|e| e.name == table.name)
            .ok_or_else(|| damaged(format!("its manifest lists no table {}", table.name)))?;
        if entry.columns != columns_of(table) {
            return Err(damaged(format!(
                "the columns of the table {} are not those this Quire knows",
                table.name
            )));
        }
        let bytes = read_entry(&mut zip, &entry.path, u64::MAX).map_err(&damaged)?;
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(damaged(format!("{} does not match its SHA-256 in the manifest", entry.path)));
        }
        let text = String::from_utf8(bytes).map_err(|_| damaged(format!("{} is not UTF-8", entry.path)))?;
        let mut rows = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let row =
                parse_line(table, raw).map_err(|p| damaged(format!("{} line {}: {p}", entry.path, i + 1)))?;
            rows.push(row);
        }
        if rows.len() as u64 != entry.rows {
            return Err(damaged(format!(
                "{} holds {} rows where the manifest counts {}",
                entry.path,
                rows.len(),
                entry.rows
            )));
        }
        listed.push(entry.path.clone());
        tables.push((table, rows));
    }
    if let Some(extra) = manifest.tables.iter().find(|e| dump::table(&e.name).is_none()) {
        return Err(damaged(format!(
            "its manifest lists a table {:?} that this Quire does not have",
            extra.name
        )));
    }

    let mut avatars = Vec::new();
    for entry in &manifest.files {
        let name = entry.path.strip_prefix(AVATARS).filter(|n| plain_name(n)).ok_or_else(|| {
            damaged(format!("its manifest lists a file {:?} outside {AVATARS}", entry.path))
        })?;
        let bytes = read_entry(&mut zip, &entry.path, entry.size.saturating_add(1)).map_err(&damaged)?;
        if bytes.len() as u64 != entry.size || sha256_hex(&bytes) != entry.sha256 {
            return Err(damaged(format!(
                "{} does not match its size and SHA-256 in the manifest",
                entry.path
            )));
        }
        listed.push(entry.path.clone());
        avatars.push((name.to_owned(), bytes));
    }
    if let Some(extra) = zip.file_names().find(|n| !listed.iter().any(|l| l == n)) {
        return Err(damaged(format!("it holds {extra:?}, which its manifest does not list")));
    }
    Ok(Contents { manifest, tables, avatars })
}

/// The bytes of one entry, read to its end (which checks its CRC-32).
fn read_entry<R: Read + std::io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => format!("it holds no {name}"),
        other => format!("{name} cannot be read ({other})"),
    })?;
    let mut bytes = Vec::new();
    entry.take(limit).read_to_end(&mut bytes).map_err(|e| format!("{name} is damaged ({e})"))?;
    Ok(bytes)
}

fn parse_line(table: &Table, raw: &str) -> Result<Row, String> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("not JSON ({e})"))?;
    let serde_json::Value::Object(mut object) = value else { return Err("not a JSON object".into()) };
    let mut row = Vec::with_capacity(table.columns.len());
    for column in table.columns {
        row.push(object.remove(column.name).ok_or_else(|| format!("no value for {}", column.name))?);
    }
    if let Some(extra) = object.keys().next() {
        return Err(format!("a value for {extra:?}, which is not a column"));
    }
    dump::check_row(table, &row)?;
    Ok(row)
}

/// How a restore or copy treats a target that holds data, and sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// Erase a target that is not empty instead of refusing it.
    pub force: bool,
    /// Keep the sessions (members stay logged in); dropped otherwise.
    pub keep_sessions: bool,
}

/// What a restore or copy wrote, and what it erased first.
#[derive(Debug, Default)]
pub struct WriteReport {
    pub erased: Vec<(&'static str, u64)>,
    pub written: Vec<(&'static str, u64)>,
    pub pages_indexed: usize,
    pub avatars: usize,
}

impl WriteReport {
    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        if !self.erased.is_empty() {
            out.push_str(&format!("erased first (--force): {}\n", list(&self.erased)));
        }
        out.push_str(&format!("written: {}\n", list(&self.written)));
        out.push_str(&format!("search index rebuilt for {} pages\n", self.pages_indexed));
        if self.avatars > 0 {
            out.push_str(&format!("avatar files: {}\n", self.avatars));
        }
        out
    }
}

fn list(counts: &[(&str, u64)]) -> String {
    counts.iter().map(|(name, n)| format!("{n} {name}")).collect::<Vec<_>>().join(", ")
}

/// The refusal of a target that holds data, naming what it holds.
fn not_empty(target: &str, counts: &[(&str, u64)]) -> anyhow::Error {
    Refused(format!(
        "the database at {target} is not empty ({}); pass --force to erase all of it and replace it",
        list(counts)
    ))
    .into()
}

/// Writes `tables` into the target inside `txn`: refuses or erases a non-empty target, inserts
/// every row as it is, rebuilds the search index and moves the sequences past the ids.
async fn write_tables(
    txn: &DatabaseTransaction,
    target_shown: &str,
    tables: &[(&'static Table, Vec<Row>)],
    options: WriteOptions,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<WriteReport> {
    let mut report = WriteReport::default();
    let present = dump::content_counts(txn).await?;
    if !present.is_empty() && !options.force {
        return Err(not_empty(target_shown, &present));
    }
    report.erased = present;
    // Sessions and throttle windows of a fresh instance go too: they are not content.
    dump::erase_all(txn).await.context("cannot erase the target")?;

    progress.start("tables", tables.len() as u64);
    for (table, rows) in tables {
        progress.advance();
        if table.name == "sessions" && !options.keep_sessions {
            continue;
        }
        dump::insert_all(txn, table, rows)
            .await
            .with_context(|| format!("cannot write the table {}", table.name))?;
        report.written.push((table.name, rows.len() as u64));
    }
    progress.finish();

    let pages = dump::live_pages(txn).await?;
    progress.start("search", pages.len() as u64);
    for (id, title, content, format) in &pages {
        progress.advance();
        search::index(txn, *id, title, &search::text_of(content, format))
            .await
            .with_context(|| format!("cannot index the page {title:?}"))?;
    }
    progress.finish();
    report.pages_indexed = pages.len();
    dump::continue_sequences(txn).await.context("cannot move the id sequences")?;
    Ok(report)
}

/// Restores checked `contents` into `target` (already migrated) and its avatar directory.
pub async fn restore(
    target: &Db,
    target_shown: &str,
    avatar_dir: &Path,
    contents: &Contents,
    options: WriteOptions,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<WriteReport> {
    let txn = target.write.begin().await.context("cannot start the restore transaction")?;
    let mut report = write_tables(&txn, target_shown, &contents.tables, options, progress).await?;

    let mut written: Vec<PathBuf> = Vec::new();
    let files = write_avatars(avatar_dir, &contents.avatars, &mut written).await;
    let committed = match files {
        Ok(()) => txn.commit().await.context("cannot commit the restore"),
        Err(err) => Err(err),
    };
    if let Err(err) = committed {
        for path in &written {
            let _ = tokio::fs::remove_file(path).await;
        }
        return Err(err);
    }
    report.avatars = written.len();
    Ok(report)
}

async fn write_avatars(
    dir: &Path,
    avatars: &[(String, Vec<u8>)],
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    if avatars.is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create the avatar directory {}", dir.display()))?;
    for (name, bytes) in avatars {
        let path = dir.join(name);
        // An avatar already there under the same random name is the same file.
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        tokio::fs::write(&path, bytes).await.with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(())
}

/// Copies the whole wiki from `source` to `target` (already migrated): a snapshot read, one
/// write transaction, and a comparison of every table as the target then holds it with what was
/// read, before the commit. Sessions are copied, so members stay logged in across the move.
pub async fn copy_database(
    source: &Db,
    target: &Db,
    target_shown: &str,
    force: bool,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<WriteReport> {
    let tables = {
        let txn = dump::snapshot(&source.read).await.context("cannot start the snapshot transaction")?;
        let mut tables = Vec::new();
        for table in TABLES {
            let rows = dump::read_all(&txn, table)
                .await
                .with_context(|| format!("cannot read the table {}", table.name))?;
            tables.push((table, rows));
        }
        txn.commit().await.context("cannot end the snapshot transaction")?;
        tables
    };
    let txn = target.write.begin().await.context("cannot start the copy transaction")?;
    let options = WriteOptions { force, keep_sessions: true };
    let report = write_tables(&txn, target_shown, &tables, options, progress).await?;
    for (table, rows) in &tables {
        let copied = dump::read_all(&txn, table).await?;
        if sha256_hex(jsonl(table, &copied).as_bytes()) != sha256_hex(jsonl(table, rows).as_bytes()) {
            anyhow::bail!(
                "the table {} reads back differently from the target ({} rows copied, {} read); nothing was written",
                table.name,
                copied.len(),
                rows.len()
            );
        }
    }
    txn.commit().await.context("cannot commit the copy")?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_makes_one_line_that_parses_back_to_the_same_row() {
        let table = dump::table("settings").unwrap();
        let row: Row = vec!["read_access".into(), "members \"only\"\n".into(), 17.into()];
        let text = line(table, &row);
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");
        assert_eq!(parse_line(table, text.trim_end()).unwrap(), row);
    }

    #[test]
    fn a_line_with_a_value_of_the_wrong_type_is_refused() {
        let table = dump::table("settings").unwrap();
        let err = parse_line(table, r#"{"key":"a","value":"b","updated_at":"soon"}"#).unwrap_err();
        assert!(err.contains("updated_at"), "{err}");
        let err = parse_line(table, r#"{"key":"a","value":"b"}"#).unwrap_err();
        assert!(err.contains("no value for updated_at"), "{err}");
    }

    #[test]
    fn only_plain_names_are_file_names() {
        assert!(plain_name("abc.png"));
        for bad in ["", ".", "..", "../x", "a/b", "a\\b"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}

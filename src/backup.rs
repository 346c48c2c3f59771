//! `quire backup`, `quire restore` and `quire copy-database`: the whole wiki as one archive
//! (format in `docs/backup-format.md`), and moving it between databases of any backend.
//!
//! A backup reads every table in one snapshot transaction while the wiki keeps serving, and
//! streams the rows into the zip as they come. A restore reads and checks the whole archive
//! (every SHA-256, every row count, every value's type) before it writes anything, then reads
//! it again as it writes, in one transaction. A copy streams the source from one snapshot into
//! one write transaction and compares what the target then holds with what was read before it
//! commits. None of them holds more than a few batches of rows in memory, whatever the wiki's
//! size. `--force` says everything it is about to erase before it erases it.

pub mod schedule;

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

/// An archive whose every entry was checked against its manifest: what `restore` writes from.
#[derive(Debug)]
pub struct Checked {
    pub path: PathBuf,
    pub manifest: Manifest,
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

/// A plain file name: no directory part, nothing a path could climb with.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != ".."
}

/// Table text handed to the archive writer at a time, at most (about): what a backup holds in
/// memory is a few of these, whatever the size of the wiki.
const PIECE_BYTES: usize = 256 * 1024;
/// Pieces in flight between the snapshot reader and the archive writer.
const PIECES_IN_FLIGHT: usize = 8;

/// What the snapshot reader hands the archive writer, in order.
enum Piece {
    /// The next table's entry starts.
    Table(&'static Table),
    /// JSON Lines of the current table.
    Lines { text: String, rows: u64 },
    /// An avatar file, copied into the archive from where it lies.
    File { name: String, path: PathBuf },
    /// Everything was read: the manifest (without its lists, which the writer fills).
    Done(Manifest),
}

/// The archive writer stopped (it says why): the reader has nobody to hand pieces to.
#[derive(Debug, thiserror::Error)]
#[error("the archive writer stopped")]
struct WriterStopped;

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub tables: Vec<(&'static str, u64)>,
    pub files: usize,
    pub bytes: u64,
}

/// Writes a backup of the wiki to `out`: to a temporary file beside it, renamed into place
/// once complete, so that `out` is never a half-written archive.
///
/// The tables are read in one snapshot transaction as streams of rows, which go to the zip
/// writer (on a blocking thread) as they come: memory stays bounded whatever the wiki's size.
/// The avatar files are copied while the snapshot is still held: a member who changes their
/// avatar meanwhile writes a new file under a new name, and the old one is what the snapshot names.
pub async fn backup(
    db: &Db,
    avatar_dir: &Path,
    out: &Path,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<BackupReport> {
    let txn = dump::snapshot(&db.read).await.context("cannot start the snapshot transaction")?;
    let (pieces, received) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let target = out.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || write_archive(received, &target));
    let read = read_snapshot(db, &txn, avatar_dir, &pieces, progress).await;
    drop(pieces);
    let written = writer.await.context("the archive writer failed")?;
    let report = match read {
        // The writer's own error says what went wrong.
        Err(err) if err.is::<WriterStopped>() => written,
        Err(err) => Err(err),
        Ok(()) => written,
    }?;
    txn.commit().await.context("cannot end the snapshot transaction")?;
    Ok(report)
}

async fn read_snapshot(
    db: &Db,
    txn: &DatabaseTransaction,
    avatar_dir: &Path,
    pieces: &tokio::sync::mpsc::Sender<Piece>,
    progress: &(dyn Progress + Sync),
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let send = |piece| async { pieces.send(piece).await.map_err(|_| WriterStopped) };
    let schema = dump::schema_version(txn).await?;
    let mut avatars: Vec<String> = Vec::new();
    progress.start("tables", TABLES.len() as u64);
    for table in TABLES {
        send(Piece::Table(table)).await?;
        let avatar_at =
            (table.name == "users").then(|| table.columns.iter().position(|c| c.name == "avatar")).flatten();
        let mut rows = dump::stream_all(txn, table)
            .await
            .with_context(|| format!("cannot read the table {}", table.name))?;
        let (mut text, mut count) = (String::new(), 0u64);
        while let Some(row) = rows.next().await {
            let row = row.with_context(|| format!("cannot read the table {}", table.name))?;
            if let Some(name) = avatar_at.and_then(|at| row.get(at)?.as_str()) {
                avatars.push(name.to_owned());
            }
            text.push_str(&line(table, &row));
            count += 1;
            if text.len() >= PIECE_BYTES {
                send(Piece::Lines { text: std::mem::take(&mut text), rows: count }).await?;
                count = 0;
            }
        }
        if count > 0 {
            send(Piece::Lines { text, rows: count }).await?;
        }
        progress.advance();
    }
    progress.finish();

    progress.start("avatars", avatars.len() as u64);
    for name in avatars {
        progress.advance();
        if !plain_name(&name) {
            tracing::warn!(avatar = %name, "an avatar name that is not a plain file name is left out");
            continue;
        }
        let path = avatar_dir.join(&name);
        send(Piece::File { name, path }).await?;
    }
    progress.finish();

    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    send(Piece::Done(Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        quire_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        source_backend: backend_name(db).to_owned(),
        schema,
        tables: Vec::new(),
        files: Vec::new(),
    }))
    .await?;
    Ok(())
}

fn write_archive(pieces: tokio::sync::mpsc::Receiver<Piece>, out: &Path) -> anyhow::Result<BackupReport> {
    let file_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = out.with_file_name(format!(".{file_name}.partial"));
    match write_zip(pieces, &partial) {
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

/// Bytes on their way somewhere, with their SHA-256 and count taken as they pass.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self { inner, sha: Sha256::new(), bytes: 0 }
    }

    fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.sha.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The table entry being written: its name, path, rows so far and running SHA-256.
struct OpenTable {
    table: &'static Table,
    rows: u64,
    sha: Sha256,
}

fn write_zip(mut pieces: tokio::sync::mpsc::Receiver<Piece>, path: &Path) -> anyhow::Result<BackupReport> {
    use zip::write::SimpleFileOptions;
    let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    let mut report = BackupReport { tables: Vec::new(), files: 0, bytes: 0 };
    let (mut tables, mut files) = (Vec::new(), Vec::new());
    let mut open: Option<OpenTable> = None;
    let mut close = |open: &mut Option<OpenTable>, report: &mut BackupReport| {
        if let Some(done) = open.take() {
            tables.push(TableEntry {
                name: done.table.name.to_owned(),
                path: table_path(done.table),
                columns: columns_of(done.table),
                rows: done.rows,
                sha256: hex::encode(done.sha.finalize()),
            });
            report.tables.push((done.table.name, done.rows));
        }
    };
    while let Some(piece) = pieces.blocking_recv() {
        match piece {
            Piece::Table(table) => {
                close(&mut open, &mut report);
                zip.start_file(table_path(table).as_str(), options)?;
                open = Some(OpenTable { table, rows: 0, sha: Sha256::new() });
            }
            Piece::Lines { text, rows } => {
                let current = open.as_mut().context("rows came before their table")?;
                zip.write_all(text.as_bytes())?;
                current.sha.update(text.as_bytes());
                current.rows += rows;
            }
            Piece::File { name, path } => {
                close(&mut open, &mut report);
                let mut source = match std::fs::File::open(&path) {
                    Ok(source) => source,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        tracing::warn!(avatar = %name, "an avatar file named in the database is missing: left out");
                        continue;
                    }
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("cannot read the avatar {}", path.display()));
                    }
                };
                let entry = format!("{AVATARS}{name}");
                // Images are compressed already.
                zip.start_file(entry.as_str(), options.compression_method(zip::CompressionMethod::Stored))?;
                let mut hashing = Hashing::new(&mut zip);
                std::io::copy(&mut source, &mut hashing)
                    .with_context(|| format!("cannot read the avatar {}", path.display()))?;
                let (_, sha256, size) = hashing.finish();
                files.push(FileEntry { path: entry, size, sha256 });
                report.files += 1;
            }
            Piece::Done(mut manifest) => {
                close(&mut open, &mut report);
                manifest.tables = std::mem::take(&mut tables);
                manifest.files = std::mem::take(&mut files);
                zip.start_file(MANIFEST, options)?;
                zip.write_all(&serde_json::to_vec_pretty(&manifest)?)?;
                let mut writer = zip.finish()?;
                writer.flush()?;
                let file = writer.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                report.bytes = file.metadata()?.len();
                return Ok(report);
            }
        }
    }
    anyhow::bail!("the snapshot ended before the archive was complete")
}

fn table_path(table: &Table) -> String {
    format!("tables/{}.jsonl", table.name)
}

fn columns_of(table: &Table) -> Vec<ColumnEntry> {
    table
        .columns
        .iter()
        .map(|c| ColumnEntry { name: c.name.to_owned(), kind: c.kind.as_str().to_owned() })
        .collect()
}

type Zip = zip::ZipArchive<std::io::BufReader<std::fs::File>>;

fn open_zip(path: &Path) -> Result<Zip, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("it is not a complete zip archive ({e})"))
}

/// Reads and checks a whole archive: the manifest, then every entry against it (SHA-256,
/// size, row count, the type of every value). Nothing is trusted before all of it agrees.
/// Entries are read as streams: nothing but the manifest is kept in memory.
pub fn read_archive(path: &Path) -> Result<Checked, Damaged> {
    let damaged = |reason: String| Damaged { path: path.display().to_string(), reason };
    let mut zip = open_zip(path).map_err(damaged)?;

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
    for table in TABLES {
        if later_and_absent(&manifest, table) {
            continue;
        }
        let entry = table_entry(&manifest, table).map_err(damaged)?;
        let known = columns_of(table);
        let older: Vec<ColumnEntry> =
            known.iter().filter(|c| !dump::added_later(table.name, &c.name)).cloned().collect();
        if entry.columns != known && entry.columns != older {
            return Err(damaged(format!(
                "the columns of the table {} are not those this Quire knows",
                table.name
            )));
        }
        read_table(&mut zip, table, entry, &mut |_| Ok(())).map_err(damaged)?;
        listed.push(entry.path.clone());
    }
    if let Some(extra) = manifest.tables.iter().find(|e| dump::table(&e.name).is_none()) {
        return Err(damaged(format!(
            "its manifest lists a table {:?} that this Quire does not have",
            extra.name
        )));
    }
    for entry in &manifest.files {
        avatar_name(entry).map_err(damaged)?;
        copy_file(&mut zip, entry, &mut std::io::sink()).map_err(damaged)?;
        listed.push(entry.path.clone());
    }
    if let Some(extra) = zip.file_names().find(|n| !listed.iter().any(|l| l == n)) {
        return Err(damaged(format!("it holds {extra:?}, which its manifest does not list")));
    }
    Ok(Checked { path: path.to_path_buf(), manifest })
}

/// A table this Quire added after the archive was made: restored empty.
fn later_and_absent(manifest: &Manifest, table: &Table) -> bool {
    dump::TABLES_ADDED_LATER.contains(&table.name) && !manifest.tables.iter().any(|e| e.name == table.name)
}

fn table_entry<'m>(manifest: &'m Manifest, table: &Table) -> Result<&'m TableEntry, String> {
    manifest
        .tables
        .iter()
        .find(|e| e.name == table.name)
        .ok_or_else(|| format!("its manifest lists no table {}", table.name))
}

fn avatar_name(entry: &FileEntry) -> Result<&str, String> {
    entry
        .path
        .strip_prefix(AVATARS)
        .filter(|n| plain_name(n))
        .ok_or_else(|| format!("its manifest lists a file {:?} outside {AVATARS}", entry.path))
}

/// Reads one table's entry line by line, handing each checked row to `row`; then checks the
/// entry's SHA-256 and row count against the manifest.
fn read_table(
    zip: &mut Zip,
    table: &'static Table,
    entry: &TableEntry,
    row: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    use std::io::BufRead;
    let reader = zip.by_name(&entry.path).map_err(|e| missing_entry(&entry.path, e))?;
    let mut reader = std::io::BufReader::new(reader);
    let mut sha = Sha256::new();
    let mut raw = Vec::new();
    let mut rows = 0u64;
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw).map_err(|e| format!("{} is damaged ({e})", entry.path))?;
        if n == 0 {
            break;
        }
        sha.update(&raw);
        rows += 1;
        let text = std::str::from_utf8(&raw).map_err(|_| format!("{} is not UTF-8", entry.path))?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let parsed = parse_line(table, text).map_err(|p| format!("{} line {rows}: {p}", entry.path))?;
        row(parsed)?;
    }
    if hex::encode(sha.finalize()) != entry.sha256 {
        return Err(format!("{} does not match its SHA-256 in the manifest", entry.path));
    }
    if rows != entry.rows {
        return Err(format!("{} holds {rows} rows where the manifest counts {}", entry.path, entry.rows));
    }
    Ok(())
}

/// Copies one file entry to `out`, checking its size and SHA-256 against the manifest.
fn copy_file(zip: &mut Zip, entry: &FileEntry, out: &mut dyn Write) -> Result<(), String> {
    let reader = zip.by_name(&entry.path).map_err(|e| missing_entry(&entry.path, e))?;
    let mut hashing = Hashing::new(out);
    std::io::copy(&mut reader.take(entry.size.saturating_add(1)), &mut hashing)
        .map_err(|e| format!("{} is damaged ({e})", entry.path))?;
    let (_, sha256, size) = hashing.finish();
    if size != entry.size || sha256 != entry.sha256 {
        return Err(format!("{} does not match its size and SHA-256 in the manifest", entry.path));
    }
    Ok(())
}

fn missing_entry(name: &str, err: zip::result::ZipError) -> String {
    match err {
        zip::result::ZipError::FileNotFound => format!("it holds no {name}"),
        other => format!("{name} cannot be read ({other})"),
    }
}

/// The bytes of one entry, read to its end (which checks its CRC-32).
fn read_entry(zip: &mut Zip, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let entry = zip.by_name(name).map_err(|e| missing_entry(name, e))?;
    let mut bytes = Vec::new();
    entry.take(limit).read_to_end(&mut bytes).map_err(|e| format!("{name} is damaged ({e})"))?;
    Ok(bytes)
}

fn parse_line(table: &Table, raw: &str) -> Result<Row, String> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|e| format!("not JSON ({e})"))?;
    let serde_json::Value::Object(mut object) = value else { return Err("not a JSON object".into()) };
    let mut row = Vec::with_capacity(table.columns.len());
    for column in table.columns {
        let value = match object.remove(column.name) {
            Some(value) => value,
            // An archive made before the column existed.
            None if dump::added_later(table.name, column.name) => serde_json::Value::Null,
            None => return Err(format!("no value for {}", column.name)),
        };
        row.push(value);
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

/// Says what a forced restore or copy is about to erase (the command line prints it on stderr).
pub type Announce<'a> = &'a (dyn Fn(&str) + Sync);

/// Refuses a target that holds content, unless forced; forced, first says everything it holds
/// (`announce`), then erases it. Returns the content counts erased.
async fn prepare_target(
    txn: &DatabaseTransaction,
    target_shown: &str,
    options: WriteOptions,
    announce: Announce<'_>,
) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let present = dump::content_counts(txn).await?;
    if !present.is_empty() {
        if !options.force {
            return Err(not_empty(target_shown, &present));
        }
        let everything = dump::all_counts(txn).await?;
        announce(&format!(
            "--force: erasing everything the database at {target_shown} holds before writing: {}",
            list(&everything)
        ));
    }
    // Sessions and throttle windows of a fresh instance go too: they are not content.
    dump::erase_all(txn).await.context("cannot erase the target")?;
    Ok(present)
}

/// Live pages indexed per batch when the search index is rebuilt.
const INDEX_BATCH: u64 = 500;

/// After the rows: rebuilds the search index (a batch of pages at a time) and moves the id
/// sequences past the ids written. Returns the number of pages indexed.
async fn finish_target(txn: &DatabaseTransaction, progress: &(dyn Progress + Sync)) -> anyhow::Result<usize> {
    let pages = dump::table("pages").context("the pages table is listed")?;
    progress.start("search", dump::count(txn, pages).await?);
    let (mut after, mut indexed) = (0, 0usize);
    loop {
        let batch = dump::live_pages_after(txn, after, INDEX_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        for (id, title, content, format) in &batch {
            progress.advance();
            search::index_page(txn, *id, title, &search::text_of(content, format))
                .await
                .with_context(|| format!("cannot index the page {title:?}"))?;
        }
        indexed += batch.len();
    }
    progress.finish();
    dump::continue_sequences(txn).await.context("cannot move the id sequences")?;
    Ok(indexed)
}

/// Rows handed to the database at a time, at most (`insert_all` cuts them into statements).
const LOAD_ROWS: usize = 500;
const LOAD_BYTES: usize = 4 * 1024 * 1024;

fn row_bytes(row: &Row) -> usize {
    row.iter().map(|v| v.as_str().map_or(8, str::len)).sum()
}

/// What the archive reader hands the restore, in order.
enum Load {
    Rows(&'static Table, Vec<Row>),
    /// A table was read whole, and matched its manifest entry again.
    Done(&'static Table, u64),
}

/// The restore stopped taking rows (it says why): the archive reader stops too.
#[derive(Debug, thiserror::Error)]
#[error("the restore stopped")]
struct RestoreStopped;

/// Restores a checked archive into `target` (already migrated) and its avatar directory, in one
/// transaction. The archive is read a second time, as a stream, and checked again on the way
/// (a file changed since it was checked rolls the whole restore back).
pub async fn restore(
    target: &Db,
    target_shown: &str,
    avatar_dir: &Path,
    archive: &Checked,
    options: WriteOptions,
    progress: &(dyn Progress + Sync),
    announce: Announce<'_>,
) -> anyhow::Result<WriteReport> {
    let txn = target.write.begin().await.context("cannot start the restore transaction")?;
    let mut report = WriteReport {
        erased: prepare_target(&txn, target_shown, options, announce).await?,
        ..WriteReport::default()
    };

    let (batches, mut received) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let (path, manifest, dir) = (archive.path.clone(), archive.manifest.clone(), avatar_dir.to_path_buf());
    let keep_sessions = options.keep_sessions;
    let reader =
        tokio::task::spawn_blocking(move || load_archive(&path, &manifest, &dir, keep_sessions, &batches));
    progress.start("tables", TABLES.len() as u64);
    let mut failed = None;
    while let Some(load) = received.recv().await {
        match load {
            Load::Rows(table, rows) => {
                if let Err(err) = dump::insert_all(&txn, table, &rows).await {
                    failed = Some(err.context(format!("cannot write the table {}", table.name)));
                    break;
                }
            }
            Load::Done(table, rows) => {
                progress.advance();
                report.written.push((table.name, rows));
            }
        }
    }
    drop(received);
    progress.finish();
    let loaded = reader.await.context("the archive reader failed")?;
    let files = match (failed, loaded) {
        (Some(err), Ok(files)) => {
            remove_all(&files).await;
            return Err(err);
        }
        (Some(err), Err(_)) | (None, Err(err)) => return Err(err),
        (None, Ok(files)) => files,
    };
    let finished = async {
        report.pages_indexed = finish_target(&txn, progress).await?;
        txn.commit().await.context("cannot commit the restore")
    };
    if let Err(err) = finished.await {
        remove_all(&files).await;
        return Err(err);
    }
    report.avatars = files.len();
    Ok(report)
}

async fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// The restore's archive reader (a blocking thread): every table's rows in batches, each table
/// checked again against the manifest, then the avatar files written into `avatar_dir` (each
/// under a temporary name until its SHA-256 matched). Returns the avatar files it wrote.
fn load_archive(
    path: &Path,
    manifest: &Manifest,
    avatar_dir: &Path,
    keep_sessions: bool,
    batches: &tokio::sync::mpsc::Sender<Load>,
) -> anyhow::Result<Vec<PathBuf>> {
    let damaged = |reason: String| Damaged { path: path.display().to_string(), reason };
    let mut zip = open_zip(path).map_err(damaged)?;
    for table in TABLES {
        if later_and_absent(manifest, table) {
            let sent = batches.blocking_send(Load::Done(table, 0)).is_ok();
            if !sent {
                return Err(RestoreStopped.into());
            }
            continue;
        }
        let entry = table_entry(manifest, table).map_err(damaged)?;
        let wanted = keep_sessions || table.name != "sessions";
        let (mut batch, mut bytes, mut stopped) = (Vec::new(), 0usize, false);
        let read = read_table(&mut zip, table, entry, &mut |row| {
            if !wanted {
                return Ok(());
            }
            bytes += row_bytes(&row);
            batch.push(row);
            if batch.len() >= LOAD_ROWS || bytes >= LOAD_BYTES {
                bytes = 0;
                if batches.blocking_send(Load::Rows(table, std::mem::take(&mut batch))).is_err() {
                    stopped = true;
                    return Err(String::new());
                }
            }
            Ok(())
        });
        if stopped {
            return Err(RestoreStopped.into());
        }
        read.map_err(damaged)?;
        if !wanted {
            continue;
        }
        let sent = (batch.is_empty() || batches.blocking_send(Load::Rows(table, batch)).is_ok())
            && batches.blocking_send(Load::Done(table, entry.rows)).is_ok();
        if !sent {
            return Err(RestoreStopped.into());
        }
    }

    let mut written = Vec::new();
    let result = write_files(&mut zip, manifest, avatar_dir, &mut written);
    if result.is_err() {
        for path in &written {
            let _ = std::fs::remove_file(path);
        }
    }
    result.map(|()| written)
}

fn write_files(
    zip: &mut Zip,
    manifest: &Manifest,
    avatar_dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    if manifest.files.is_empty() {
        return Ok(());
    }
    let damaged = |reason: String| Damaged { path: avatar_dir.display().to_string(), reason };
    std::fs::create_dir_all(avatar_dir)
        .with_context(|| format!("cannot create the avatar directory {}", avatar_dir.display()))?;
    for entry in &manifest.files {
        let name = avatar_name(entry).map_err(damaged)?;
        let path = avatar_dir.join(name);
        // An avatar already there under the same random name is the same file.
        if path.exists() {
            continue;
        }
        let partial = avatar_dir.join(format!(".{name}.partial"));
        let mut out =
            std::fs::File::create(&partial).with_context(|| format!("cannot write {}", partial.display()))?;
        let copied = copy_file(zip, entry, &mut out);
        drop(out);
        if let Err(reason) = copied {
            let _ = std::fs::remove_file(&partial);
            return Err(damaged(reason).into());
        }
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(())
}

/// Copies the whole wiki from `source` to `target` (already migrated): every table streamed
/// from one snapshot of the source into one write transaction, then read back from the target
/// and compared (SHA-256 of its JSON Lines) with what was read, before the commit. Sessions
/// are copied, so members stay logged in across the move.
pub async fn copy_database(
    source: &Db,
    target: &Db,
    target_shown: &str,
    force: bool,
    progress: &(dyn Progress + Sync),
    announce: Announce<'_>,
) -> anyhow::Result<WriteReport> {
    use futures_util::StreamExt;
    let snapshot = dump::snapshot(&source.read).await.context("cannot start the snapshot transaction")?;
    let txn = target.write.begin().await.context("cannot start the copy transaction")?;
    let options = WriteOptions { force, keep_sessions: true };
    let mut report = WriteReport {
        erased: prepare_target(&txn, target_shown, options, announce).await?,
        ..WriteReport::default()
    };

    let mut digests = Vec::new();
    progress.start("tables", TABLES.len() as u64);
    for table in TABLES {
        let cannot_read = || format!("cannot read the table {}", table.name);
        let mut rows = dump::stream_all(&snapshot, table).await.with_context(cannot_read)?;
        let (mut sha, mut count) = (Sha256::new(), 0u64);
        let (mut batch, mut bytes) = (Vec::new(), 0usize);
        while let Some(row) = rows.next().await {
            let row = row.with_context(cannot_read)?;
            sha.update(line(table, &row).as_bytes());
            count += 1;
            bytes += row_bytes(&row);
            batch.push(row);
            if batch.len() >= LOAD_ROWS || bytes >= LOAD_BYTES {
                dump::insert_all(&txn, table, &std::mem::take(&mut batch))
                    .await
                    .with_context(|| format!("cannot write the table {}", table.name))?;
                bytes = 0;
            }
        }
        dump::insert_all(&txn, table, &batch)
            .await
            .with_context(|| format!("cannot write the table {}", table.name))?;
        digests.push((table, hex::encode(sha.finalize()), count));
        report.written.push((table.name, count));
        progress.advance();
    }
    progress.finish();
    snapshot.commit().await.context("cannot end the snapshot transaction")?;
    report.pages_indexed = finish_target(&txn, progress).await?;

    for (table, digest, count) in digests {
        let mut rows = dump::stream_all(&txn, table).await?;
        let (mut sha, mut copied) = (Sha256::new(), 0u64);
        while let Some(row) = rows.next().await {
            sha.update(line(table, &row?).as_bytes());
            copied += 1;
        }
        if hex::encode(sha.finalize()) != digest {
            anyhow::bail!(
                "the table {} reads back differently from the target ({copied} rows there, {count} read); nothing was written",
                table.name
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

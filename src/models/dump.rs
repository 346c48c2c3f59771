//! Every table of the wiki as plain rows, for `quire backup`, `restore` and `copy-database`:
//! the one list of tables and columns (in foreign-key order), the snapshot read, the inserts,
//! the erase and the sequence fix-ups. The backend differences of moving whole tables live here.
//!
//! A row is a list of JSON values in the table's column order: integers as numbers, text as
//! strings, NULL as null. That is the archive's representation too (see `docs/backup-format.md`),
//! so a row read from one backend is written into any other as it is.

use base64::Engine;
use futures_util::{Stream, StreamExt};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query};
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    IsolationLevel, QueryResult, Statement, StreamTrait, TransactionTrait, Value,
};

/// How a column's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `INTEGER` (32 bits).
    Int,
    /// `BIGINT` (64 bits: times in Unix milliseconds).
    BigInt,
    /// Any text column.
    Text,
    /// A binary column (a file's chunk), as base64 in the archive.
    Bytes,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Int => "int32",
            Kind::BigInt => "int64",
            Kind::Text => "text",
            Kind::Bytes => "bytes",
        }
    }
}

/// One column: its name and type.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
}

/// One table: its columns and the key its rows are read in order of.
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub order_by: &'static [&'static str],
    /// The auto-increment column, whose sequence must continue past the restored ids.
    pub serial: Option<&'static str>,
}

const fn int(name: &'static str) -> Column {
    Column { name, kind: Kind::Int }
}
const fn big(name: &'static str) -> Column {
    Column { name, kind: Kind::BigInt }
}
const fn text(name: &'static str) -> Column {
    Column { name, kind: Kind::Text }
}
const fn bytes(name: &'static str) -> Column {
    Column { name, kind: Kind::Bytes }
}

/// Every table, parents before children. `page_search` is not here: it is derived from the
/// pages and rebuilt after a restore.
pub const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: &[
            int("id"),
            text("username"),
            text("password_hash"),
            text("avatar"),
            big("created_at"),
            text("role"),
            big("blocked_at"),
            big("last_login_at"),
            text("username_key"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "pages",
        columns: &[
            int("id"),
            text("title"),
            text("content"),
            text("format"),
            text("html"),
            int("author_id"),
            big("created_at"),
            big("updated_at"),
            int("revision_id"),
            big("deleted_at"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "revisions",
        columns: &[
            int("id"),
            int("page_id"),
            text("content"),
            text("format"),
            text("summary"),
            int("author_id"),
            big("created_at"),
            int("size"),
            text("html"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "page_titles",
        columns: &[text("title"), int("page_id")],
        order_by: &["title"],
        serial: None,
    },
    Table {
        name: "links",
        columns: &[int("from_page_id"), text("to_title")],
        order_by: &["from_page_id", "to_title"],
        serial: None,
    },
    Table {
        name: "settings",
        columns: &[text("key"), text("value"), big("updated_at")],
        order_by: &["key"],
        serial: None,
    },
    Table {
        name: "invites",
        columns: &[
            int("id"),
            text("token_hash"),
            text("role"),
            int("uses_left"),
            big("expires_at"),
            int("created_by"),
            big("created_at"),
            big("revoked_at"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "audit_log",
        columns: &[
            int("id"),
            big("at"),
            int("actor_id"),
            text("actor_name"),
            text("action"),
            text("target"),
            text("details"),
            text("address"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "two_factor",
        columns: &[int("user_id"), text("secret"), big("enabled_at"), big("last_step"), big("created_at")],
        order_by: &["user_id"],
        serial: None,
    },
    Table {
        name: "recovery_codes",
        columns: &[int("id"), int("user_id"), text("code_hash"), big("used_at")],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "emails",
        columns: &[int("user_id"), text("address"), big("verified_at")],
        order_by: &["user_id"],
        serial: None,
    },
    Table {
        name: "email_tokens",
        columns: &[
            int("id"),
            text("token_hash"),
            int("user_id"),
            text("purpose"),
            text("address"),
            big("created_at"),
            big("expires_at"),
            big("used_at"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "identities",
        columns: &[
            int("id"),
            int("user_id"),
            text("issuer"),
            text("subject"),
            big("created_at"),
            big("last_login_at"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "blobs",
        columns: &[text("hash"), big("size"), big("created_at")],
        order_by: &["hash"],
        serial: None,
    },
    Table {
        name: "blob_chunks",
        columns: &[text("hash"), int("seq"), bytes("data")],
        order_by: &["hash", "seq"],
        serial: None,
    },
    Table {
        name: "attachments",
        columns: &[int("id"), int("page_id"), text("name"), big("created_at"), big("deleted_at")],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "attachment_versions",
        columns: &[
            int("id"),
            int("attachment_id"),
            int("version"),
            text("blob_hash"),
            big("size"),
            text("content_type"),
            int("inline_image"),
            int("width"),
            int("height"),
            int("uploader_id"),
            text("uploader_name"),
            big("created_at"),
        ],
        order_by: &["id"],
        serial: Some("id"),
    },
    Table {
        name: "image_previews",
        columns: &[text("source_hash"), int("width"), text("blob_hash"), text("content_type")],
        order_by: &["source_hash", "width"],
        serial: None,
    },
    Table {
        name: "sessions",
        columns: &[text("id"), int("user_id"), text("data"), big("expires_at")],
        order_by: &["id"],
        serial: None,
    },
    Table {
        name: "throttle",
        columns: &[text("bucket"), big("window_start"), int("hits"), big("next_at")],
        order_by: &["bucket"],
        serial: None,
    },
];

/// Columns added after version 1 of the archive format, all nullable: an archive made before
/// them restores, with NULL in them.
pub const ADDED_LATER: &[(&str, &str)] = &[("audit_log", "address")];

/// Tables added after version 1 of the archive format: an archive made before them restores
/// with them empty.
pub const TABLES_ADDED_LATER: &[&str] = &[
    "two_factor",
    "recovery_codes",
    "emails",
    "email_tokens",
    "identities",
    "blobs",
    "blob_chunks",
    "attachments",
    "attachment_versions",
    "image_previews",
];

/// True when `name` of `table` is one of [`ADDED_LATER`].
pub fn added_later(table: &str, name: &str) -> bool {
    ADDED_LATER.iter().any(|&(t, c)| t == table && c == name)
}

/// The tables whose rows make a wiki "not empty" (sessions and throttle windows do not).
const CONTENT_TABLES: &[&str] = &[
    "users",
    "pages",
    "revisions",
    "page_titles",
    "links",
    "settings",
    "invites",
    "audit_log",
    "two_factor",
    "recovery_codes",
    "emails",
    "identities",
    "blobs",
    "attachments",
];

/// The table of that name, if Quire has one.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// A row: one JSON value per column, in the table's column order.
pub type Row = Vec<serde_json::Value>;

/// Starts a read-only transaction that sees one consistent snapshot of every table.
///
/// PostgreSQL's default (READ COMMITTED) would give each statement its own snapshot, hence
/// REPEATABLE READ there and on MySQL; a SQLite read transaction on one connection reads one
/// WAL snapshot from its first statement on.
pub async fn snapshot(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => db.begin().await,
        _ => db.begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly)).await,
    }
}

/// The SELECT of every row of `table`, in key order.
fn select_all(table: &Table) -> sea_orm::sea_query::SelectStatement {
    let mut select = Query::select();
    select.from(Alias::new(table.name));
    for column in table.columns {
        select.column(Alias::new(column.name));
    }
    for key in table.order_by {
        select.order_by(Alias::new(*key), sea_orm::Order::Asc);
    }
    select
}

/// Every row of `table`, in key order.
pub async fn read_all<C: ConnectionTrait>(db: &C, table: &Table) -> Result<Vec<Row>, DbErr> {
    let rows = db.query_all(&select_all(table)).await?;
    rows.iter().map(|row| to_row(row, table)).collect()
}

/// Every row of `table`, in key order, as they come from the database: a table of any size is
/// read in bounded memory.
pub async fn stream_all<'a, C: StreamTrait>(
    db: &'a C,
    table: &'static Table,
) -> Result<impl Stream<Item = Result<Row, DbErr>> + Send + 'a, DbErr> {
    let rows = db.stream(&select_all(table)).await?;
    Ok(rows.map(move |row| row.and_then(|row| to_row(&row, table))))
}

fn to_row(result: &QueryResult, table: &Table) -> Result<Row, DbErr> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column.kind {
                Kind::Int => result.try_get_by_index::<Option<i32>>(i)?.map(serde_json::Value::from),
                Kind::BigInt => result.try_get_by_index::<Option<i64>>(i)?.map(serde_json::Value::from),
                Kind::Text => result.try_get_by_index::<Option<String>>(i)?.map(serde_json::Value::from),
                Kind::Bytes => result.try_get_by_index::<Option<Vec<u8>>>(i)?.map(|data| {
                    serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(data))
                }),
            }
            .unwrap_or(serde_json::Value::Null))
        })
        .collect()
}

/// Why a row cannot be written: a value of the wrong type or a wrong number of values.
#[derive(Debug, thiserror::Error)]
#[error("table {table}, row {row}: {problem}")]
pub struct BadRow {
    pub table: &'static str,
    pub row: usize,
    pub problem: String,
}

/// Checks that `row` holds one value of the right type per column of `table`.
pub fn check_row(table: &Table, row: &Row) -> Result<(), String> {
    if row.len() != table.columns.len() {
        return Err(format!("{} values for {} columns", row.len(), table.columns.len()));
    }
    for (column, value) in table.columns.iter().zip(row) {
        to_value(column.kind, value).map_err(|p| format!("{}: {p}", column.name))?;
    }
    Ok(())
}

/// The database value of one JSON value in a column of `kind`.
fn to_value(kind: Kind, value: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    match (kind, value) {
        (Kind::Int, J::Null) => Ok(Value::Int(None)),
        (Kind::BigInt, J::Null) => Ok(Value::BigInt(None)),
        (Kind::Text, J::Null) => Ok(Value::String(None)),
        (Kind::Int, J::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(|n| Value::Int(Some(n)))
            .ok_or_else(|| format!("{n} is not a 32-bit integer")),
        (Kind::BigInt, J::Number(n)) => {
            n.as_i64().map(|n| Value::BigInt(Some(n))).ok_or_else(|| format!("{n} is not a 64-bit integer"))
        }
        (Kind::Text, J::String(s)) => Ok(Value::String(Some(s.clone()))),
        (Kind::Bytes, J::Null) => Ok(Value::Bytes(None)),
        (Kind::Bytes, J::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(|data| Value::Bytes(Some(data)))
            .map_err(|_| "not base64".to_owned()),
        (kind, other) => Err(format!("{other} is not of type {}", kind.as_str())),
    }
}

/// Rows per INSERT at most: well under every backend's limit on bound values.
const BATCH_ROWS: usize = 100;
/// Text per INSERT at most, before the statement is sent: pages of a few MiB each must not add
/// up past MariaDB's default `max_allowed_packet` (16 MiB).
const BATCH_BYTES: usize = 4 * 1024 * 1024;

fn new_insert(table: &Table) -> sea_orm::sea_query::InsertStatement {
    let mut insert = Query::insert();
    insert.into_table(Alias::new(table.name)).columns(table.columns.iter().map(|c| Alias::new(c.name)));
    insert
}

/// Inserts `rows` into `table` as they are, ids included.
pub async fn insert_all<C: ConnectionTrait>(
    db: &C,
    table: &'static Table,
    rows: &[Row],
) -> anyhow::Result<()> {
    let mut insert = new_insert(table);
    let (mut pending, mut bytes) = (0usize, 0usize);
    for (i, row) in rows.iter().enumerate() {
        let bad = |problem: String| BadRow { table: table.name, row: i + 1, problem };
        if row.len() != table.columns.len() {
            return Err(bad(format!("{} values for {} columns", row.len(), table.columns.len())).into());
        }
        let values = table
            .columns
            .iter()
            .zip(row)
            .map(|(column, value)| {
                to_value(column.kind, value).map(Expr::val).map_err(|p| bad(format!("{}: {p}", column.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        insert.values(values).map_err(|e| bad(e.to_string()))?;
        pending += 1;
        bytes += row.iter().map(|v| v.as_str().map_or(8, str::len)).sum::<usize>();
        if pending >= BATCH_ROWS || bytes >= BATCH_BYTES {
            db.execute(&insert).await?;
            insert = new_insert(table);
            (pending, bytes) = (0, 0);
        }
    }
    if pending > 0 {
        db.execute(&insert).await?;
    }
    Ok(())
}

/// The number of rows of `table`.
pub async fn count<C: ConnectionTrait>(db: &C, table: &Table) -> Result<u64, DbErr> {
    let select = Query::select().expr(Func::count(Expr::cust("*"))).from(Alias::new(table.name)).to_owned();
    let row = db.query_one(&select).await?;
    let n: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The row counts of the tables that hold content, where they are not zero.
pub async fn content_counts<C: ConnectionTrait>(db: &C) -> Result<Vec<(&'static str, u64)>, DbErr> {
    let mut counts = Vec::new();
    for name in CONTENT_TABLES {
        let Some(table) = table(name) else { continue };
        let n = count(db, table).await?;
        if n > 0 {
            counts.push((table.name, n));
        }
    }
    Ok(counts)
}

/// The row counts of every table, where they are not zero.
pub async fn all_counts<C: ConnectionTrait>(db: &C) -> Result<Vec<(&'static str, u64)>, DbErr> {
    let mut counts = Vec::new();
    for table in TABLES {
        let n = count(db, table).await?;
        if n > 0 {
            counts.push((table.name, n));
        }
    }
    Ok(counts)
}

/// Deletes every row of every table (and the search index), children first.
pub async fn erase_all<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared("DELETE FROM page_search").await?;
    for table in TABLES.iter().rev() {
        db.execute(&Query::delete().from_table(Alias::new(table.name)).to_owned()).await?;
    }
    Ok(())
}

/// Makes every auto-increment sequence continue past the largest id now stored.
///
/// PostgreSQL's sequences do not move when ids are inserted explicitly; SQLite's AUTOINCREMENT
/// and MySQL's AUTO_INCREMENT follow the largest id inserted on their own.
pub async fn continue_sequences<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    for table in TABLES {
        let Some(column) = table.serial else { continue };
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), \
             COALESCE((SELECT MAX({column}) FROM {t}), 0) + 1, false)",
            t = table.name
        );
        db.query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql)).await?;
    }
    Ok(())
}

/// Up to `limit` live pages (id, title, content, format) with ids above `after`, by id: the
/// search index is rebuilt from them a batch at a time.
pub async fn live_pages_after<C: ConnectionTrait>(
    db: &C,
    after: i32,
    limit: u64,
) -> Result<Vec<(i32, String, String, String)>, DbErr> {
    let select = Query::select()
        .columns([Alias::new("id"), Alias::new("title"), Alias::new("content"), Alias::new("format")])
        .from(Alias::new("pages"))
        .and_where(Expr::col(Alias::new("deleted_at")).is_null())
        .and_where(Expr::col(Alias::new("id")).gt(after))
        .order_by(Alias::new("id"), sea_orm::Order::Asc)
        .limit(limit)
        .to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get_by_index(0)?,
                r.try_get_by_index(1)?,
                r.try_get_by_index(2)?,
                r.try_get_by_index(3)?,
            ))
        })
        .collect()
}

/// The name of the newest migration applied: the schema a snapshot was taken from.
pub async fn schema_version<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    let select = Query::select()
        .expr(Func::max(Expr::col(Alias::new("version"))))
        .from(Alias::new("seaql_migrations"))
        .to_owned();
    match db.query_one(&select).await? {
        Some(row) => row.try_get_by_index::<Option<String>>(0),
        None => Ok(None),
    }
}

/// A live page as `quire export` writes it.
#[derive(Debug, Clone)]
pub struct ExportPage {
    pub title: String,
    pub content: String,
    pub format: String,
    pub html: String,
    pub author: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Whose export it is: what they may read is what it holds.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// `quire export` and the admins' download: every live page.
    Everything,
    /// A member's own download: what a member may read. Today that is every live page (no page
    /// is hidden from members, whatever their role); a rule that hides pages from some members
    /// filters here, in SQL, so the export never loads what its reader may not read.
    Member,
}

/// The condition on `pages` of what `reader` may read.
fn readable(reader: Reader) -> sea_orm::sea_query::Condition {
    let live = Expr::col((Alias::new("pages"), Alias::new("deleted_at"))).is_null();
    match reader {
        Reader::Everything | Reader::Member => sea_orm::sea_query::Condition::all().add(live),
    }
}

/// The titles of every page `reader` may read.
pub async fn titles_for_export<C: ConnectionTrait>(
    db: &C,
    reader: Reader,
) -> Result<std::collections::BTreeSet<String>, DbErr> {
    let select = Query::select()
        .column((Alias::new("pages"), Alias::new("title")))
        .from(Alias::new("pages"))
        .cond_where(readable(reader))
        .to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter().map(|r| r.try_get_by_index(0)).collect()
}

/// Every page `reader` may read, with its author's name, by title, as a stream.
pub async fn stream_pages_for_export<'a, C: StreamTrait>(
    db: &'a C,
    reader: Reader,
) -> Result<impl Stream<Item = Result<ExportPage, DbErr>> + Send + 'a, DbErr> {
    let pages = Alias::new("pages");
    let users = Alias::new("users");
    let select = Query::select()
        .columns(["title", "content", "format", "html"].map(|c| (pages.clone(), Alias::new(c))))
        .column((users.clone(), Alias::new("username")))
        .columns(["created_at", "updated_at"].map(|c| (pages.clone(), Alias::new(c))))
        .from(pages.clone())
        .left_join(
            users.clone(),
            Expr::col((users.clone(), Alias::new("id"))).equals((pages.clone(), Alias::new("author_id"))),
        )
        .cond_where(readable(reader))
        .order_by((pages, Alias::new("title")), sea_orm::Order::Asc)
        .to_owned();
    let rows = db.stream(&select).await?;
    Ok(rows.map(|row| {
        let r = row?;
        Ok(ExportPage {
            title: r.try_get_by_index(0)?,
            content: r.try_get_by_index(1)?,
            format: r.try_get_by_index(2)?,
            html: r.try_get_by_index(3)?,
            author: r.try_get_by_index(4)?,
            created_at: r.try_get_by_index(5)?,
            updated_at: r.try_get_by_index(6)?,
        })
    }))
}

/// A live attachment of a page `reader` may read, as the export writes it: the page's title,
/// the file's name and its newest content.
#[derive(Debug, Clone)]
pub struct ExportFile {
    pub title: String,
    pub name: String,
    pub blob_hash: String,
}

/// Every live attachment of the pages `reader` may read (the newest version of each), by page
/// title and name. Only the file's facts: its bytes are read chunk by chunk as they are written.
pub async fn files_for_export<C: ConnectionTrait>(db: &C, reader: Reader) -> Result<Vec<ExportFile>, DbErr> {
    let pages = Alias::new("pages");
    let attachments = Alias::new("attachments");
    let select = Query::select()
        .column((pages.clone(), Alias::new("title")))
        .column((attachments.clone(), Alias::new("id")))
        .column((attachments.clone(), Alias::new("name")))
        .from(attachments.clone())
        .inner_join(
            pages.clone(),
            Expr::col((pages.clone(), Alias::new("id"))).equals((attachments.clone(), Alias::new("page_id"))),
        )
        .cond_where(readable(reader))
        .and_where(Expr::col((attachments.clone(), Alias::new("deleted_at"))).is_null())
        .order_by((pages, Alias::new("title")), sea_orm::Order::Asc)
        .order_by((attachments, Alias::new("name")), sea_orm::Order::Asc)
        .to_owned();
    let rows = db.query_all(&select).await?;
    let mut found: Vec<(String, i32, String)> = Vec::with_capacity(rows.len());
    for row in &rows {
        found.push((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row.try_get_by_index(2)?));
    }
    let mut newest: std::collections::HashMap<i32, (i32, String)> = std::collections::HashMap::new();
    let ids: Vec<i32> = found.iter().map(|(_, id, _)| *id).collect();
    for slice in ids.chunks(500) {
        let select = Query::select()
            .columns(["attachment_id", "version", "blob_hash"].map(Alias::new))
            .from(Alias::new("attachment_versions"))
            .and_where(Expr::col(Alias::new("attachment_id")).is_in(slice.iter().copied()))
            .to_owned();
        for row in db.query_all(&select).await? {
            let id: i32 = row.try_get_by_index(0)?;
            let version: i32 = row.try_get_by_index(1)?;
            let hash: String = row.try_get_by_index(2)?;
            if newest.get(&id).is_none_or(|(seen, _)| version > *seen) {
                newest.insert(id, (version, hash));
            }
        }
    }
    Ok(found
        .into_iter()
        .filter_map(|(title, id, name)| {
            newest.remove(&id).map(|(_, blob_hash)| ExportFile { title, name, blob_hash })
        })
        .collect())
}

//! Counters for rate limits, kept in the database (shared by every instance) and counted
//! *before* the work they protect: one statement increments a counter and hands back what it
//! became, so N parallel attempts let exactly the allowed number through, on every backend.
//!
//! A bucket is the SHA-256 of its key, so any input (a 3 MiB username…) fits in 64 characters.
//! Each counter is a fixed window (`hits` since `window_start`) plus `next_at`, a time before
//! which it refuses everything (the backoff a caller sets after a failure).
//!
//! The statement is built once with sea-query (placeholders are its business); where the SQL
//! really differs — reading back what the upsert made — it lives in one module per dialect.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DbErr, DeriveIden, FromQueryResult, TransactionSession,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::now_ms;

/// "At most `max` events per `window_secs`"; `max == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window_secs: u32,
}

impl Limit {
    /// Parses `N/SECONDS`, e.g. `10/300`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (max, window) = text.split_once('/').ok_or_else(|| format!("{text:?} is not N/SECONDS"))?;
        let max = max.trim().parse().map_err(|_| format!("{text:?}: {max:?} is not a count"))?;
        let window_secs: u32 =
            window.trim().parse().map_err(|_| format!("{text:?}: {window:?} is not seconds"))?;
        if window_secs == 0 {
            return Err(format!("{text:?}: the window must be at least one second"));
        }
        Ok(Self { max, window_secs })
    }

    fn window_ms(self) -> i64 {
        i64::from(self.window_secs) * 1000
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.max, self.window_secs)
    }
}

#[derive(DeriveIden)]
enum Throttle {
    Table,
    Bucket,
    WindowStart,
    Hits,
    NextAt,
}

fn bucket(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A counter as the counting statement left it.
#[derive(Debug, Clone, Copy, FromQueryResult)]
struct Counter {
    hits: i32,
    window_start: i64,
    next_at: i64,
}

/// The answer to one counted attempt.
#[derive(Debug)]
pub enum Verdict {
    /// Under the limit: go on. The ticket gives the attempt back ([`refund`]) when it turns
    /// out not to count (a successful login, a busy server).
    Admitted(Ticket),
    /// Over it, or backing off: come back in `retry_after` seconds. Nothing was counted.
    Refused { retry_after: u64 },
}

/// One admitted attempt: which counter, which window, and the count it made.
#[derive(Debug, Clone)]
pub struct Ticket {
    bucket: Option<String>,
    window_start: i64,
    /// How many attempts this window holds, this one included (0 when the limit is off).
    pub hits: i64,
}

fn seconds_until(at_ms: i64, now: i64) -> u64 {
    std::cmp::max(u64::try_from((at_ms - now + 999) / 1000).unwrap_or(1), 1)
}

/// Counts one attempt for `key` against `limit`, atomically, and says whether it may go on.
/// A refused attempt (over the limit, or within a backoff) leaves the count as it was only
/// when it is a backoff; past the limit the count keeps growing, which changes nothing.
#[tracing::instrument(skip_all, fields(limit = %limit))]
pub async fn take<C>(db: &C, key: &str, limit: Limit) -> Result<Verdict, DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    if limit.max == 0 {
        return Ok(Verdict::Admitted(Ticket { bucket: None, window_start: 0, hits: 0 }));
    }
    let bucket = bucket(key);
    let now = now_ms();
    let counter = match db.get_database_backend() {
        DatabaseBackend::MySql => mysql::count(db, &bucket, now, limit).await?,
        _ => returning::count(db, &bucket, now, limit).await?,
    };
    if counter.next_at > now {
        return Ok(Verdict::Refused { retry_after: seconds_until(counter.next_at, now) });
    }
    if i64::from(counter.hits) > i64::from(limit.max) {
        return Ok(Verdict::Refused {
            retry_after: seconds_until(counter.window_start + limit.window_ms(), now),
        });
    }
    Ok(Verdict::Admitted(Ticket {
        bucket: Some(bucket),
        window_start: counter.window_start,
        hits: counter.hits.into(),
    }))
}

/// The upsert every dialect shares: a new bucket starts at one; an existing one refuses
/// (stays as it is) while backing off, restarts when its window is over, or counts one more.
/// The assignments read the old row only (MySQL applies them in order: `hits` goes first,
/// and `window_start` still sees the old window).
fn upsert(bucket: &str, now: i64, limit: Limit) -> Result<sea_orm::sea_query::InsertStatement, DbErr> {
    let col = |c: Throttle| Expr::col((Throttle::Table, c));
    let expired = col(Throttle::WindowStart).lte(now - limit.window_ms());
    let backing_off = col(Throttle::NextAt).gt(now);
    let hits = Expr::case(backing_off.clone(), col(Throttle::Hits))
        .case(expired.clone(), Expr::val(1))
        .finally(col(Throttle::Hits).add(1));
    let window_start = Expr::case(backing_off, col(Throttle::WindowStart))
        .case(expired, Expr::val(now))
        .finally(col(Throttle::WindowStart));
    let mut insert = Query::insert();
    insert
        .into_table(Throttle::Table)
        .columns([Throttle::Bucket, Throttle::WindowStart, Throttle::Hits, Throttle::NextAt])
        .values([bucket.into(), now.into(), 1.into(), 0i64.into()])
        .map_err(|err| DbErr::Custom(err.to_string()))?
        .on_conflict(
            OnConflict::column(Throttle::Bucket)
                .value(Throttle::Hits, hits)
                .value(Throttle::WindowStart, window_start)
                .to_owned(),
        );
    Ok(insert)
}

/// SQLite (3.35+) and PostgreSQL: the upsert returns the row it made, in the same statement.
mod returning {
    use super::*;

    pub(super) async fn count<C: ConnectionTrait>(
        db: &C,
        bucket: &str,
        now: i64,
        limit: Limit,
    ) -> Result<Counter, DbErr> {
        let mut insert = upsert(bucket, now, limit)?;
        insert.returning(Query::returning().columns([
            Throttle::Hits,
            Throttle::WindowStart,
            Throttle::NextAt,
        ]));
        Counter::find_by_statement(db.get_database_backend().build(&insert))
            .one(db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the counter the upsert returned".into()))
    }
}

/// MySQL/MariaDB have no RETURNING on `INSERT … ON DUPLICATE KEY UPDATE`: the upsert and a
/// read of the row run in one transaction, and the upsert's row lock keeps anyone else from
/// changing the counter between the two.
mod mysql {
    use super::*;

    pub(super) async fn count<C: ConnectionTrait + TransactionTrait>(
        db: &C,
        bucket: &str,
        now: i64,
        limit: Limit,
    ) -> Result<Counter, DbErr> {
        let backend = db.get_database_backend();
        let txn = db.begin().await?;
        txn.execute(&upsert(bucket, now, limit)?).await?;
        let read = Query::select()
            .columns([Throttle::Hits, Throttle::WindowStart, Throttle::NextAt])
            .from(Throttle::Table)
            .and_where(Expr::col(Throttle::Bucket).eq(bucket))
            .lock(sea_orm::sea_query::LockType::Update)
            .to_owned();
        let counter = Counter::find_by_statement(backend.build(&read))
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the counter the upsert wrote".into()))?;
        txn.commit().await?;
        Ok(counter)
    }
}

/// Gives an admitted attempt back (it did not count after all), if its window still runs.
pub async fn refund<C: ConnectionTrait>(db: &C, ticket: &Ticket) -> Result<(), DbErr> {
    let Some(bucket) = &ticket.bucket else { return Ok(()) };
    let update = Query::update()
        .table(Throttle::Table)
        .value(Throttle::Hits, Expr::col(Throttle::Hits).sub(1))
        .and_where(Expr::col(Throttle::Bucket).eq(bucket.as_str()))
        .and_where(Expr::col(Throttle::WindowStart).eq(ticket.window_start))
        .and_where(Expr::col(Throttle::Hits).gt(0))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

/// Makes the counter of `ticket` refuse everything for `delay_secs` from now (never shortening
/// a longer backoff already set).
pub async fn back_off<C: ConnectionTrait>(db: &C, ticket: &Ticket, delay_secs: u64) -> Result<(), DbErr> {
    let Some(bucket) = &ticket.bucket else { return Ok(()) };
    if delay_secs == 0 {
        return Ok(());
    }
    let until = now_ms().saturating_add(i64::try_from(delay_secs).unwrap_or(i64::MAX / 2000) * 1000);
    let update = Query::update()
        .table(Throttle::Table)
        .value(Throttle::NextAt, until)
        .and_where(Expr::col(Throttle::Bucket).eq(bucket.as_str()))
        .and_where(Expr::col(Throttle::NextAt).lt(until))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

/// Forgets `key` (a successful login clears the failures of its account and address).
pub async fn clear<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    let delete = Query::delete()
        .from_table(Throttle::Table)
        .and_where(Expr::col(Throttle::Bucket).eq(bucket(key)))
        .to_owned();
    db.execute(&delete).await?;
    Ok(())
}

/// Drops counters whose window ended, and whose backoff ran out, more than a day ago.
pub async fn purge<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let cutoff = now_ms() - 24 * 3600 * 1000;
    let delete = Query::delete()
        .from_table(Throttle::Table)
        .and_where(Expr::col(Throttle::WindowStart).lt(cutoff))
        .and_where(Expr::col(Throttle::NextAt).lt(cutoff))
        .to_owned();
    Ok(db.execute(&delete).await?.rows_affected())
}

/// The backoff after `failures` failed attempts in a window: the first `free` cost nothing,
/// then each one doubles the wait (1 s, 2 s, 4 s…), never past the window itself.
pub fn backoff_secs(failures: i64, free: i64, limit: Limit) -> u64 {
    if limit.max == 0 || failures <= free {
        return 0;
    }
    let exponent = std::cmp::min(u32::try_from(failures - free - 1).unwrap_or(u32::MAX), 31);
    std::cmp::min(1u64 << exponent, u64::from(limit.window_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_from_count_and_seconds() {
        assert_eq!(Limit::parse("10/300"), Ok(Limit { max: 10, window_secs: 300 }));
        assert_eq!(Limit::parse("0/60").unwrap().max, 0);
        assert!(Limit::parse("10").is_err());
        assert!(Limit::parse("x/60").is_err());
        assert!(Limit::parse("5/0").is_err());
    }

    #[test]
    fn the_backoff_doubles_after_the_free_failures_and_stops_at_the_window() {
        let limit = Limit { max: 10, window_secs: 300 };
        let waits: Vec<u64> = (1..=16).map(|n| backoff_secs(n, 5, limit)).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff_secs(1_000_000, 5, limit), 300);
        assert_eq!(backoff_secs(50, 5, Limit { max: 0, window_secs: 60 }), 0);
    }

    #[test]
    fn the_counting_statement_is_one_upsert_with_placeholders_on_every_backend() {
        let limit = Limit { max: 3, window_secs: 60 };
        let insert = upsert("b", 1_000_000, limit).unwrap();
        for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres, DatabaseBackend::MySql] {
            let sql = backend.build(&insert).sql;
            assert!(sql.starts_with("INSERT INTO"), "{sql}");
            assert!(sql.contains("ON CONFLICT") || sql.contains("ON DUPLICATE KEY UPDATE"), "{sql}");
            assert!(!sql.contains("1000000"), "values are bound, not inlined: {sql}");
        }
    }
}

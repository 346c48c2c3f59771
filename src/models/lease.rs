//! Leases in the database: which instance does a job that several instances share, for one
//! slot of time. A claim is one conditional UPDATE, so exactly one instance wins it on every
//! backend, with no lock held between statements; a holder that dies stops renewing, its lease
//! expires, and the next slot is claimed by whoever asks then. A slot once claimed is never
//! claimed again: two instances never do the same slot's job.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DbErr};

use super::is_unique_violation;

fn table() -> Alias {
    Alias::new("backup_lease")
}

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// A lease's name: the job it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    ScheduledBackup,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::ScheduledBackup => "scheduled_backup",
        }
    }
}

/// Makes the job's row, once; a row already there (made by another instance) is kept.
async fn ensure_row<C: ConnectionTrait>(db: &C, job: Job) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(table())
        .columns(["name", "holder", "slot", "expires_at"].map(Alias::new))
        .values_panic([job.name().into(), Option::<String>::None.into(), (-1i64).into(), 0i64.into()])
        .to_owned();
    match db.execute(&insert).await {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// Claims `slot` of `job` for `holder` until `now + ttl_ms`: true when this call won it. It is
/// won only when no earlier claim reached this slot, and the last holder released its lease or
/// let it expire.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    job: Job,
    holder: &str,
    slot: i64,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, DbErr> {
    ensure_row(db, job).await?;
    let update = Query::update()
        .table(table())
        .value(Alias::new("holder"), holder)
        .value(Alias::new("slot"), slot)
        .value(Alias::new("expires_at"), now.saturating_add(ttl_ms))
        .and_where(col("name").eq(job.name()))
        .and_where(col("slot").lt(slot))
        .and_where(col("holder").is_null().or(col("expires_at").lt(now)))
        .to_owned();
    Ok(db.execute(&update).await?.rows_affected() == 1)
}

/// Pushes the expiry of `holder`'s lease on `slot` to `now + ttl_ms`: false when the lease is
/// no longer theirs (it expired and another instance claimed a later slot).
pub async fn renew<C: ConnectionTrait>(
    db: &C,
    job: Job,
    holder: &str,
    slot: i64,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, DbErr> {
    let update = Query::update()
        .table(table())
        .value(Alias::new("expires_at"), now.saturating_add(ttl_ms))
        .and_where(col("name").eq(job.name()))
        .and_where(col("holder").eq(holder))
        .and_where(col("slot").eq(slot))
        .to_owned();
    Ok(db.execute(&update).await?.rows_affected() == 1)
}

/// Ends `holder`'s lease on `slot` (the job is done, or failed): the next slot may be claimed
/// at once; this one stays claimed.
pub async fn release<C: ConnectionTrait>(db: &C, job: Job, holder: &str, slot: i64) -> Result<(), DbErr> {
    let update = Query::update()
        .table(table())
        .value(Alias::new("holder"), Option::<String>::None)
        .and_where(col("name").eq(job.name()))
        .and_where(col("holder").eq(holder))
        .and_where(col("slot").eq(slot))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

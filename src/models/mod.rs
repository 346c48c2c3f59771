//! SeaORM entities and the queries that belong to them. Handlers call these functions; where
//! the three databases differ, the difference lives here.

pub mod audit;
pub mod change;
pub mod dump;
pub mod email;
pub mod file;
pub mod identity;
pub mod invite;
pub mod lease;
pub mod link;
pub mod page;
pub mod revision;
pub mod search;
pub mod session;
pub mod setting;
pub mod throttle;
pub mod two_factor;
pub mod user;

use sea_orm::{DbErr, SqlErr};

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// True when the error is a unique-constraint violation, on any of the three backends.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

//! Fixed-window counters for rate limits, kept in the database (shared by every instance).
//! A bucket is the SHA-256 of its key, so any input (a 2 MiB username…) fits in 64 characters.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, FromQueryResult, Statement, Value};
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

fn bucket(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(FromQueryResult)]
struct Row {
    window_start: i64,
    hits: i32,
}

/// Seconds until `key` may be used again, or `None` when it is under its limit.
pub async fn blocked_for<C: ConnectionTrait>(db: &C, key: &str, limit: Limit) -> Result<Option<u64>, DbErr> {
    if limit.max == 0 {
        return Ok(None);
    }
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "SELECT window_start, hits FROM throttle WHERE bucket = $1",
        _ => "SELECT window_start, hits FROM throttle WHERE bucket = ?",
    };
    let row =
        Row::find_by_statement(Statement::from_sql_and_values(backend, sql, [Value::from(bucket(key))]))
            .one(db)
            .await?;
    let now = now_ms();
    Ok(row.and_then(|row| {
        let ends = row.window_start + limit.window_ms();
        (ends > now && row.hits >= i32::try_from(limit.max).unwrap_or(i32::MAX))
            .then(|| u64::try_from((ends - now + 999) / 1000).unwrap_or(1).max(1))
    }))
}

/// Counts one event for `key`, starting a new window when the last one is over. One atomic
/// statement on every backend.
pub async fn hit<C: ConnectionTrait>(db: &C, key: &str, limit: Limit) -> Result<(), DbErr> {
    if limit.max == 0 {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let now = now_ms();
    let expired = now - limit.window_ms();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "INSERT INTO throttle (bucket, window_start, hits) VALUES ($1, $2, 1) ON CONFLICT (bucket) DO UPDATE SET \
             hits = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.hits + 1 END, \
             window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END"
        }
        DatabaseBackend::MySql => {
            // MySQL applies the assignments in order: `hits` must read the old window first.
            "INSERT INTO throttle (bucket, window_start, hits) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE \
             hits = IF(window_start <= ?, 1, hits + 1), \
             window_start = IF(window_start <= ?, VALUES(window_start), window_start)"
        }
        _ => {
            "INSERT INTO throttle (bucket, window_start, hits) VALUES (?1, ?2, 1) ON CONFLICT (bucket) DO UPDATE SET \
             hits = CASE WHEN throttle.window_start <= ?3 THEN 1 ELSE throttle.hits + 1 END, \
             window_start = CASE WHEN throttle.window_start <= ?3 THEN ?2 ELSE throttle.window_start END"
        }
    };
    let values: Vec<Value> = match backend {
        DatabaseBackend::MySql => vec![bucket(key).into(), now.into(), expired.into(), expired.into()],
        _ => vec![bucket(key).into(), now.into(), expired.into()],
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    Ok(())
}

/// Forgets `key` (a successful login clears its failures).
pub async fn clear<C: ConnectionTrait>(db: &C, key: &str) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "DELETE FROM throttle WHERE bucket = $1",
        _ => "DELETE FROM throttle WHERE bucket = ?",
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(bucket(key))])).await?;
    Ok(())
}

/// Drops counters whose window ended more than a day ago.
pub async fn purge<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => "DELETE FROM throttle WHERE window_start < $1",
        _ => "DELETE FROM throttle WHERE window_start < ?",
    };
    let cutoff = now_ms() - 24 * 3600 * 1000;
    Ok(db
        .execute_raw(Statement::from_sql_and_values(backend, sql, [Value::from(cutoff)]))
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn limits_parse_from_count_and_seconds() {
        assert_eq!(Limit::parse("10/300"), Ok(Limit { max: 10, window_secs: 300 }));
        assert_eq!(Limit::parse("0/60").unwrap().max, 0);
        assert!(Limit::parse("10").is_err());
        assert!(Limit::parse("x/60").is_err());
        assert!(Limit::parse("5/0").is_err());
    }
}

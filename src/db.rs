//! The database handle: one pool per backend, chosen at run time from the URL.
//!
//! SQLite gets two pools over the same file: many readers, and one writer so that concurrent
//! writes queue inside Quire instead of failing with "database is locked". PostgreSQL and MySQL
//! use one pool for both.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseBackend, DatabaseConnection};

use crate::config::redact_url;

/// Readers and the writer of one database (the same pool outside SQLite).
#[derive(Clone, Debug)]
pub struct Db {
    pub read: DatabaseConnection,
    pub write: DatabaseConnection,
    /// The SQLite database's file (for readers outside the pools, see `models::session`).
    pub sqlite_file: Option<std::path::PathBuf>,
}

impl Db {
    pub fn backend(&self) -> DatabaseBackend {
        self.read.get_database_backend()
    }

    /// Connects to the database named by `url`, with settings fit for a web server.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        match scheme(url) {
            "sqlite" => {
                check_sqlite_path(url)?;
                let read = connect_sqlite(url, 8).await?;
                let write = connect_sqlite(url, 1).await?;
                let options: sea_orm::sqlx::sqlite::SqliteConnectOptions =
                    url.parse().with_context(|| format!("the SQLite URL {shown} does not parse"))?;
                let sqlite_file = Some(options.get_filename().to_path_buf());
                Ok(Self { read, write, sqlite_file })
            }
            "postgres" | "postgresql" | "mysql" | "mariadb" => {
                let conn = connect_server(url, 16, Duration::from_secs(10)).await?;
                Ok(Self { read: conn.clone(), write: conn, sqlite_file: None })
            }
            other => bail!(
                "unsupported database URL scheme {other:?} in {shown}: use sqlite://, postgres:// or mysql://"
            ),
        }
    }
}

/// One connection of its own for the cache's watcher (`cache.rs`), so that its poll of the
/// change counter never waits behind a busy pool.
pub async fn connect_watcher(url: &str) -> anyhow::Result<DatabaseConnection> {
    if scheme(url) == "sqlite" {
        return connect_sqlite(url, 1).await;
    }
    connect_server(url, 1, Duration::from_secs(5)).await
}

/// A pool of at most `max` connections to a PostgreSQL or MySQL server; an error never shows
/// the password.
async fn connect_server(url: &str, max: u32, acquire: Duration) -> anyhow::Result<DatabaseConnection> {
    let url = url.replacen("mariadb://", "mysql://", 1);
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(max)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(acquire)
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(|err| anyhow::anyhow!(scrub(&err.to_string(), url_password(&url))))
        .with_context(|| format!("cannot connect to the database at {}", redact_url(&url)))
}

fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

fn url_password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, password)| password).filter(|p| !p.is_empty())
}

/// Removes a password from a driver's error text, should the driver have echoed it.
fn scrub(message: &str, password: Option<&str>) -> String {
    match password {
        Some(password) => message.replace(password, "***"),
        None => message.to_owned(),
    }
}

/// A SQLite file may be created, but only in a directory that exists: a typo in the path must
/// not silently start an empty wiki somewhere else.
fn check_sqlite_path(url: &str) -> anyhow::Result<()> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        bail!("the SQLite URL {url:?} names no file");
    }
    let parent = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent
        && !dir.is_dir()
    {
        bail!("the directory {} of the SQLite database does not exist", dir.display());
    }
    Ok(())
}

async fn connect_sqlite(url: &str, max: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    Database::connect(options)
        .await
        .with_context(|| format!("cannot open the SQLite database {}", redact_url(url)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_of_a_url_is_found_and_scrubbed() {
        let url = "postgres://quire:hunter22@localhost/db";
        assert_eq!(url_password(url), Some("hunter22"));
        assert_eq!(scrub("auth failed for hunter22", url_password(url)), "auth failed for ***");
        assert_eq!(url_password("postgres://localhost/db"), None);
    }

    #[test]
    fn a_sqlite_file_in_a_missing_directory_is_refused() {
        let err = check_sqlite_path("sqlite:///no/such/dir/quire.db").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(check_sqlite_path("sqlite://quire.db?mode=rwc").is_ok());
    }
}

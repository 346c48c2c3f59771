//! Versioned schema changes, written once for SQLite, PostgreSQL and MySQL.
//!
//! The seed's tables keep their names and columns (`users`, `pages`), so its data maps one to one.
//! Times are stored as Unix milliseconds (`BIGINT`): one representation on every backend.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

mod m0001_core;
mod m0002_history;
mod m0003_search;
mod m0004_throttle;
mod m0005_access;
mod m0006_limits;
mod m0007_revision_html;
mod m0008_changes;
mod m0009_search_terms;
mod m0010_backup_lease;
mod m0011_search_text;
mod m0012_audit_address;
mod m0013_two_factor;
mod m0014_email;
mod m0015_identities;
mod m0017_files;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_core::Migration),
            Box::new(m0002_history::Migration),
            Box::new(m0003_search::Migration),
            Box::new(m0004_throttle::Migration),
            Box::new(m0005_access::Migration),
            Box::new(m0006_limits::Migration),
            Box::new(m0007_revision_html::Migration),
            Box::new(m0008_changes::Migration),
            Box::new(m0009_search_terms::Migration),
            Box::new(m0010_backup_lease::Migration),
            Box::new(m0011_search_text::Migration),
            Box::new(m0012_audit_address::Migration),
            Box::new(m0013_two_factor::Migration),
            Box::new(m0014_email::Migration),
            Box::new(m0015_identities::Migration),
            Box::new(m0017_files::Migration),
        ]
    }
}

/// A text column big enough for a 1 MiB page on every backend (MySQL's TEXT stops at 64 KiB).
pub(crate) fn long_text(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::MySql => "LONGTEXT",
        _ => "TEXT",
    }
}

/// MySQL tables in utf8mb4 with a binary collation, so that `Zoe` and `zoé` are different
/// usernames there too, as they are on SQLite and PostgreSQL.
pub(crate) fn table_options(backend: DatabaseBackend, table: &mut TableCreateStatement) {
    if backend == DatabaseBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_bin");
    }
}

//! Search by analyzed words (`models::search`): Quire stems and folds the text itself and the
//! engines index the resulting words, so that every backend finds the same pages — inflections,
//! words of any length and MySQL's stop words included. The tables of m0003 are replaced and
//! the index is rebuilt from the live pages.
//!
//! SQLite: `page_search` becomes a plain table (the text shown in results) with two contentless
//! FTS5 tables of words, `page_search_terms` (title, body, words) and `page_search_titles`
//! (title, words), and
//! a trigger that removes a page from both when its row goes. PostgreSQL: two `tsvector`
//! columns written by Quire, each with a GIN index. MySQL: four columns of marked words (stems
//! and unstemmed words of the title and of the text) with FULLTEXT indexes.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseBackend, Statement};

use crate::models::search;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Pages read at a time while the index is rebuilt: memory stays bounded on a large wiki.
const BATCH: i64 = 200;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let statements: &[&str] = match backend {
            DatabaseBackend::Postgres => &[
                "DROP TABLE page_search",
                "CREATE TABLE page_search (
                    page_id INTEGER PRIMARY KEY REFERENCES pages(id) ON DELETE CASCADE,
                    title TEXT NOT NULL,
                    body TEXT NOT NULL,
                    title_tsv tsvector NOT NULL,
                    tsv tsvector NOT NULL)",
                "CREATE INDEX idx_page_search_title_tsv ON page_search USING GIN (title_tsv)",
                "CREATE INDEX idx_page_search_tsv ON page_search USING GIN (tsv)",
            ],
            DatabaseBackend::MySql => &[
                "DROP TABLE page_search",
                "CREATE TABLE page_search (
                    page_id INTEGER NOT NULL PRIMARY KEY,
                    title VARCHAR(100) NOT NULL,
                    body LONGTEXT NOT NULL,
                    title_terms TEXT NOT NULL,
                    body_terms LONGTEXT NOT NULL,
                    title_words TEXT NOT NULL,
                    body_words LONGTEXT NOT NULL,
                    FULLTEXT KEY ft_page_search_terms (title_terms, body_terms, title_words, body_words),
                    FULLTEXT KEY ft_page_search_title_terms (title_terms, title_words),
                    CONSTRAINT fk_page_search_page FOREIGN KEY (page_id) REFERENCES pages (id) ON DELETE CASCADE
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
            ],
            _ => &[
                "DROP TABLE page_search",
                "CREATE TABLE page_search (
                    page_id INTEGER PRIMARY KEY REFERENCES pages(id) ON DELETE CASCADE,
                    title TEXT NOT NULL,
                    body TEXT NOT NULL)",
                "CREATE VIRTUAL TABLE page_search_terms USING fts5(
                    title, body, words, content = '', contentless_delete = 1, tokenize = 'ascii')",
                "CREATE VIRTUAL TABLE page_search_titles USING fts5(
                    title, words, content = '', contentless_delete = 1, tokenize = 'ascii')",
                "CREATE TRIGGER page_search_removed AFTER DELETE ON page_search BEGIN
                    DELETE FROM page_search_terms WHERE rowid = old.page_id;
                    DELETE FROM page_search_titles WHERE rowid = old.page_id;
                 END",
            ],
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        rebuild(db, backend).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Sqlite {
            db.execute_unprepared("DROP TABLE page_search_terms").await?;
            db.execute_unprepared("DROP TABLE page_search_titles").await?;
        }
        db.execute_unprepared("DROP TABLE page_search").await?;
        // m0003's tables, filled as m0003 fills them.
        super::m0003_search::Migration.up(manager).await
    }
}

/// Indexes every live page, `BATCH` at a time in id order.
pub(super) async fn rebuild<C: ConnectionTrait>(db: &C, backend: DatabaseBackend) -> Result<(), DbErr> {
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "SELECT id, title, content, format FROM pages WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
        }
        _ => {
            "SELECT id, title, content, format FROM pages WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?"
        }
    };
    let mut after = 0i32;
    loop {
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, [after.into(), BATCH.into()]))
            .await?;
        for row in &rows {
            let (id, title, content, format): (i32, String, String, String) = (
                row.try_get_by_index(0)?,
                row.try_get_by_index(1)?,
                row.try_get_by_index(2)?,
                row.try_get_by_index(3)?,
            );
            search::index(db, id, &title, &search::text_of(&content, &format)).await?;
            after = id;
        }
        if (rows.len() as i64) < BATCH {
            return Ok(());
        }
    }
}

//! Full-text search in each database's own engine, so every instance shares one index:
//! SQLite FTS5, PostgreSQL `tsvector` + GIN, MySQL/MariaDB FULLTEXT.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &[
                // `simple`: no stemming, no stop words, any language; the body is capped
                // because a tsvector holds at most 1 MiB (4 bytes a character, with positions).
                "CREATE TABLE page_search (
                    page_id INTEGER PRIMARY KEY REFERENCES pages(id) ON DELETE CASCADE,
                    title TEXT NOT NULL,
                    body TEXT NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (
                        setweight(to_tsvector('simple', title), 'A') ||
                        setweight(to_tsvector('simple', left(body, 200000)), 'B')) STORED)",
                "CREATE INDEX idx_page_search_tsv ON page_search USING GIN (tsv)",
            ],
            DatabaseBackend::MySql => &[
                "CREATE TABLE page_search (
                    page_id INTEGER NOT NULL PRIMARY KEY,
                    title VARCHAR(100) NOT NULL COLLATE utf8mb4_unicode_ci,
                    body LONGTEXT NOT NULL COLLATE utf8mb4_unicode_ci,
                    FULLTEXT KEY ft_page_search (title, body),
                    FULLTEXT KEY ft_page_search_title (title),
                    CONSTRAINT fk_page_search_page FOREIGN KEY (page_id) REFERENCES pages (id) ON DELETE CASCADE
                ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci",
            ],
            _ => &["CREATE VIRTUAL TABLE page_search USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2')"],
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        let fill = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => {
                "INSERT INTO page_search (rowid, title, body) SELECT id, title, content FROM pages WHERE deleted_at IS NULL"
            }
            _ => {
                "INSERT INTO page_search (page_id, title, body) SELECT id, title, content FROM pages WHERE deleted_at IS NULL"
            }
        };
        db.execute_unprepared(fill).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared("DROP TABLE page_search").await?;
        Ok(())
    }
}

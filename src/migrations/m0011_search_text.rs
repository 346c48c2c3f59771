//! Search reads what a page shows: the index of every Markdown page is rebuilt from its text
//! without Markdown's marks (`models::search::text_of`), so that snippets never show `##` or
//! `|---|`. No table changes; going down rebuilds nothing (the older index read the raw
//! Markdown, which the current code no longer writes).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        super::m0009_search_terms::rebuild(manager.get_connection(), manager.get_database_backend()).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

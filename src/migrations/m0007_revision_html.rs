//! The HTML of each revision, stored when it is saved, so that viewing an old revision never
//! renders on the request path (rendering is the expensive part of a view, and a revision is
//! immutable). Revisions saved before this migration get their HTML the first time they are
//! viewed, rendered once in the bounded work pool and stored; a page's current revision is
//! filled here from the page's own HTML.

use sea_orm_migration::prelude::*;

use super::long_text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Revisions {
    Table,
    Html,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .alter_table(
                Table::alter()
                    .table(Revisions::Table)
                    .add_column(ColumnDef::new(Revisions::Html).custom(Alias::new(long_text(backend))).null())
                    .to_owned(),
            )
            .await?;
        // The same statement on the three backends (the subquery reads another table, which
        // MySQL allows in an UPDATE).
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE revisions SET html = (SELECT pages.html FROM pages \
                 WHERE pages.id = revisions.page_id AND pages.revision_id = revisions.id) \
                 WHERE id IN (SELECT revision_id FROM pages WHERE revision_id IS NOT NULL)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Revisions::Table).drop_column(Revisions::Html).to_owned())
            .await
    }
}

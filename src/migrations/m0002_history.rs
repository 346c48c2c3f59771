//! Revisions (every save), old titles (renames redirect), wiki links, soft deletion.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use super::{long_text, table_options};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Revisions {
    Table,
    Id,
    PageId,
    Content,
    Format,
    Summary,
    AuthorId,
    CreatedAt,
    Size,
}

#[derive(DeriveIden)]
enum Pages {
    Table,
    Id,
    RevisionId,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum PageTitles {
    Table,
    Title,
    PageId,
}

#[derive(DeriveIden)]
enum Links {
    Table,
    FromPageId,
    ToTitle,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        let mut revisions = Table::create();
        revisions
            .table(Revisions::Table)
            .col(ColumnDef::new(Revisions::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Revisions::PageId).integer().not_null())
            .col(ColumnDef::new(Revisions::Content).custom(Alias::new(long_text(backend))).not_null())
            .col(ColumnDef::new(Revisions::Format).string_len(16).not_null().default("markdown"))
            .col(ColumnDef::new(Revisions::Summary).string_len(200).not_null().default(""))
            .col(ColumnDef::new(Revisions::AuthorId).integer().null())
            .col(ColumnDef::new(Revisions::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Revisions::Size).integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_revisions_page")
                    .from(Revisions::Table, Revisions::PageId)
                    .to(Pages::Table, Pages::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_revisions_author")
                    .from(Revisions::Table, Revisions::AuthorId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        table_options(backend, &mut revisions);
        manager.create_table(revisions).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revisions_page")
                    .table(Revisions::Table)
                    .col(Revisions::PageId)
                    .col(Revisions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revisions_author")
                    .table(Revisions::Table)
                    .col(Revisions::AuthorId)
                    .col(Revisions::Id)
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Pages::Table)
                    .add_column(ColumnDef::new(Pages::RevisionId).integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Pages::Table)
                    .add_column(ColumnDef::new(Pages::DeletedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;

        let mut titles = Table::create();
        titles
            .table(PageTitles::Table)
            .col(ColumnDef::new(PageTitles::Title).string_len(100).not_null().primary_key())
            .col(ColumnDef::new(PageTitles::PageId).integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_page_titles_page")
                    .from(PageTitles::Table, PageTitles::PageId)
                    .to(Pages::Table, Pages::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut titles);
        manager.create_table(titles).await?;

        let mut links = Table::create();
        links
            .table(Links::Table)
            .col(ColumnDef::new(Links::FromPageId).integer().not_null())
            .col(ColumnDef::new(Links::ToTitle).string_len(100).not_null())
            .primary_key(Index::create().col(Links::FromPageId).col(Links::ToTitle))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_links_page")
                    .from(Links::Table, Links::FromPageId)
                    .to(Pages::Table, Pages::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut links);
        manager.create_table(links).await?;
        manager
            .create_index(
                Index::create().name("idx_links_to").table(Links::Table).col(Links::ToTitle).to_owned(),
            )
            .await?;

        // Every page that exists gets its first revision.
        let size = match backend {
            DatabaseBackend::Postgres => "octet_length(content)",
            DatabaseBackend::MySql => "LENGTH(content)",
            _ => "length(CAST(content AS BLOB))",
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO revisions (page_id, content, format, summary, author_id, created_at, size) \
             SELECT id, content, format, 'Created', author_id, created_at, {size} FROM pages ORDER BY id"
        ))
        .await?;
        db.execute_unprepared(
            "UPDATE pages SET revision_id = (SELECT MAX(r.id) FROM revisions r WHERE r.page_id = pages.id)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Links::Table.into_iden(), PageTitles::Table.into_iden(), Revisions::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

//! Users, pages (the seed's two tables) and server-side sessions.

use sea_orm_migration::prelude::*;

use super::{long_text, table_options};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    PasswordHash,
    Avatar,
    IsAdmin,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Pages {
    Table,
    Id,
    Title,
    Content,
    Format,
    Html,
    AuthorId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    Data,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        let mut users = Table::create();
        users
            .table(Users::Table)
            .col(ColumnDef::new(Users::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Users::Username).string_len(50).not_null().unique_key())
            .col(ColumnDef::new(Users::PasswordHash).string_len(255).not_null())
            .col(ColumnDef::new(Users::Avatar).string_len(200).null())
            .col(ColumnDef::new(Users::IsAdmin).boolean().not_null().default(false))
            .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null());
        table_options(backend, &mut users);
        manager.create_table(users).await?;

        let mut pages = Table::create();
        pages
            .table(Pages::Table)
            .col(ColumnDef::new(Pages::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Pages::Title).string_len(100).not_null().unique_key())
            .col(ColumnDef::new(Pages::Content).custom(Alias::new(long_text(backend))).not_null())
            .col(ColumnDef::new(Pages::Format).string_len(16).not_null().default("markdown"))
            .col(ColumnDef::new(Pages::Html).custom(Alias::new(long_text(backend))).not_null())
            .col(ColumnDef::new(Pages::AuthorId).integer().null())
            .col(ColumnDef::new(Pages::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Pages::UpdatedAt).big_integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_pages_author")
                    .from(Pages::Table, Pages::AuthorId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        table_options(backend, &mut pages);
        manager.create_table(pages).await?;
        manager
            .create_index(
                Index::create().name("idx_pages_author").table(Pages::Table).col(Pages::AuthorId).to_owned(),
            )
            .await?;

        let mut sessions = Table::create();
        sessions
            .table(Sessions::Table)
            .col(ColumnDef::new(Sessions::Id).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Sessions::UserId).integer().null())
            .col(ColumnDef::new(Sessions::Data).text().not_null())
            .col(ColumnDef::new(Sessions::ExpiresAt).big_integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_sessions_user")
                    .from(Sessions::Table, Sessions::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut sessions);
        manager.create_table(sessions).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Sessions::Table.into_iden(), Pages::Table.into_iden(), Users::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

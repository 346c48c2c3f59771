//! Email: a member's verified address (one per member; an address waiting for its link lives
//! only in that link's token row), and single-use tokens for password recovery and address
//! verification, of which only the SHA-256 is kept.

use sea_orm_migration::prelude::*;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Emails {
    Table,
    UserId,
    Address,
    VerifiedAt,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Id,
    TokenHash,
    UserId,
    Purpose,
    Address,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut emails = Table::create();
        emails
            .table(Emails::Table)
            .col(ColumnDef::new(Emails::UserId).integer().not_null().primary_key())
            .col(ColumnDef::new(Emails::Address).string_len(254).not_null())
            .col(ColumnDef::new(Emails::VerifiedAt).big_integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_emails_user")
                    .from(Emails::Table, Emails::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut emails);
        manager.create_table(emails).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_emails_address")
                    .table(Emails::Table)
                    .col(Emails::Address)
                    .to_owned(),
            )
            .await?;

        let mut tokens = Table::create();
        tokens
            .table(EmailTokens::Table)
            .col(ColumnDef::new(EmailTokens::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(EmailTokens::TokenHash).string_len(64).not_null().unique_key())
            .col(ColumnDef::new(EmailTokens::UserId).integer().not_null())
            .col(ColumnDef::new(EmailTokens::Purpose).string_len(16).not_null())
            .col(ColumnDef::new(EmailTokens::Address).string_len(254).null())
            .col(ColumnDef::new(EmailTokens::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(EmailTokens::ExpiresAt).big_integer().not_null())
            .col(ColumnDef::new(EmailTokens::UsedAt).big_integer().null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_email_tokens_user")
                    .from(EmailTokens::Table, EmailTokens::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut tokens);
        manager.create_table(tokens).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EmailTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Emails::Table).to_owned()).await
    }
}

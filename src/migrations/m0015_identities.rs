//! Identities: a member's accounts at an identity provider (an OpenID Connect issuer or the LDAP
//! directory), each found again by (issuer, subject). A member may have several; an identity
//! belongs to one member. Nothing but the link is kept (no password, no token).

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
enum Identities {
    Table,
    Id,
    UserId,
    Issuer,
    Subject,
    CreatedAt,
    LastLoginAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut identities = Table::create();
        identities
            .table(Identities::Table)
            .col(ColumnDef::new(Identities::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Identities::UserId).integer().not_null())
            // 255 + 255 characters of utf8mb4 stay within MySQL's 3072-byte index limit.
            .col(ColumnDef::new(Identities::Issuer).string_len(255).not_null())
            .col(ColumnDef::new(Identities::Subject).string_len(255).not_null())
            .col(ColumnDef::new(Identities::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Identities::LastLoginAt).big_integer().null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_identities_user")
                    .from(Identities::Table, Identities::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut identities);
        manager.create_table(identities).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_identities_issuer_subject")
                    .table(Identities::Table)
                    .col(Identities::Issuer)
                    .col(Identities::Subject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_identities_user")
                    .table(Identities::Table)
                    .col(Identities::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Identities::Table).to_owned()).await
    }
}

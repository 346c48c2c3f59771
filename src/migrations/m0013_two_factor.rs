//! Two-factor authentication: a member's TOTP secret (pending until confirmed by a code, with
//! the last time step used, so no code is accepted twice) and their single-use recovery codes,
//! of which only the SHA-256 is kept.

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
enum TwoFactor {
    Table,
    UserId,
    Secret,
    EnabledAt,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut two_factor = Table::create();
        two_factor
            .table(TwoFactor::Table)
            .col(ColumnDef::new(TwoFactor::UserId).integer().not_null().primary_key())
            .col(ColumnDef::new(TwoFactor::Secret).string_len(64).not_null())
            .col(ColumnDef::new(TwoFactor::EnabledAt).big_integer().null())
            .col(ColumnDef::new(TwoFactor::LastStep).big_integer().not_null().default(0))
            .col(ColumnDef::new(TwoFactor::CreatedAt).big_integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_two_factor_user")
                    .from(TwoFactor::Table, TwoFactor::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut two_factor);
        manager.create_table(two_factor).await?;

        let mut codes = Table::create();
        codes
            .table(RecoveryCodes::Table)
            .col(ColumnDef::new(RecoveryCodes::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(RecoveryCodes::UserId).integer().not_null())
            .col(ColumnDef::new(RecoveryCodes::CodeHash).string_len(64).not_null())
            .col(ColumnDef::new(RecoveryCodes::UsedAt).big_integer().null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_recovery_codes_user")
                    .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut codes);
        manager.create_table(codes).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TwoFactor::Table).to_owned()).await
    }
}

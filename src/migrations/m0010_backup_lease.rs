//! The lease of scheduled backups: one row that says which backup slot was last claimed, by
//! which instance, and until when its claim holds. Several instances over one database make
//! exactly one backup per slot (see `backup/schedule.rs`).

use sea_orm_migration::prelude::*;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BackupLease {
    Table,
    Name,
    Holder,
    Slot,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(BackupLease::Table)
            .col(ColumnDef::new(BackupLease::Name).string_len(32).not_null().primary_key())
            .col(ColumnDef::new(BackupLease::Holder).string_len(64).null())
            .col(ColumnDef::new(BackupLease::Slot).big_integer().not_null())
            .col(ColumnDef::new(BackupLease::ExpiresAt).big_integer().not_null());
        table_options(manager.get_database_backend(), &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(BackupLease::Table).to_owned()).await
    }
}

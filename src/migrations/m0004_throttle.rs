//! Rate-limit counters in the database, so that every instance sees the same ones.

use sea_orm_migration::prelude::*;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Throttle {
    Table,
    Bucket,
    WindowStart,
    Hits,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Throttle::Table)
            .col(ColumnDef::new(Throttle::Bucket).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Throttle::WindowStart).big_integer().not_null())
            .col(ColumnDef::new(Throttle::Hits).integer().not_null());
        table_options(manager.get_database_backend(), &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_throttle_window")
                    .table(Throttle::Table)
                    .col(Throttle::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Throttle::Table).to_owned()).await
    }
}

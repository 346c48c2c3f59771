//! One row that counts the changes made to the wiki, so that every instance over the same
//! database learns that something changed by reading one number (see `cache.rs`): the counter
//! moves after every request that may have changed what a page view shows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Changes {
    Table,
    Id,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(Changes::Table)
            .col(ColumnDef::new(Changes::Id).integer().not_null().primary_key())
            .col(ColumnDef::new(Changes::Version).big_integer().not_null().default(0))
            .to_owned();
        super::table_options(manager.get_database_backend(), &mut table);
        manager.create_table(table).await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Changes::Table)
                    .columns([Changes::Id, Changes::Version])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Changes::Table).to_owned()).await
    }
}

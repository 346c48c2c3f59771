//! Limits that hold under concurrency, and usernames unique under their confusable skeleton.
//!
//! - `throttle.next_at`: the time before which a counter refuses every attempt (exponential
//!   backoff after repeated failures), checked in the same statement that counts.
//! - `users.username_key`: [`crate::domain::username_key`] of the name, under a unique index, so
//!   the database refuses `аdmin` (Cyrillic а) beside `admin`. Existing rows are backfilled in id
//!   order; a row whose key an older row already holds keeps a NULL key (both members stay, as
//!   they were) and is logged — NULLs never collide on any of the three backends.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::FromQueryResult;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Throttle {
    Table,
    NextAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
}

const KEY_INDEX: &str = "idx_users_username_key";

#[derive(FromQueryResult)]
struct Row {
    id: i32,
    username: String,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Throttle::Table)
                    .add_column(ColumnDef::new(Throttle::NextAt).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::UsernameKey).char_len(64).null())
                    .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let select = Query::select()
            .columns([Users::Id, Users::Username])
            .from(Users::Table)
            .order_by(Users::Id, Order::Asc)
            .to_owned();
        let rows = Row::find_by_statement(backend.build(&select)).all(db).await?;
        let mut taken = std::collections::HashMap::new();
        for row in rows {
            let key = crate::domain::username_key(&row.username);
            if let Some(holder) = taken.get(&key) {
                tracing::warn!(
                    user.id = row.id,
                    user.name = %row.username,
                    holder = %holder,
                    "this username looks like an older member's: it keeps no key (both stay)"
                );
                continue;
            }
            let update = Query::update()
                .table(Users::Table)
                .value(Users::UsernameKey, key.clone())
                .and_where(Expr::col(Users::Id).eq(row.id))
                .to_owned();
            db.execute(&update).await?;
            taken.insert(key, row.username);
        }

        manager
            .create_index(
                Index::create()
                    .name(KEY_INDEX)
                    .table(Users::Table)
                    .col(Users::UsernameKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(KEY_INDEX).table(Users::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Users::Table).drop_column(Users::UsernameKey).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Throttle::Table).drop_column(Throttle::NextAt).to_owned())
            .await?;
        Ok(())
    }
}

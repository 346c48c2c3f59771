//! The wiki's change counter (migration m0008): one number every instance reads to learn that
//! another one, or a command, changed something.

use sea_orm::{ConnectionTrait, DbErr, FromQueryResult, Statement};

#[derive(FromQueryResult)]
struct Row {
    version: i64,
}

/// The counter as it stands.
pub async fn version<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    let statement =
        Statement::from_string(db.get_database_backend(), "SELECT version FROM changes WHERE id = 1");
    Ok(Row::find_by_statement(statement).one(db).await?.map_or(0, |row| row.version))
}

/// Moves the counter: every instance drops what it kept from before. Returns the value it
/// moved it to (read in the same transaction, under the row's lock: exactly this move's).
pub async fn bump(db: &sea_orm::DatabaseConnection) -> Result<i64, DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    txn.execute_unprepared("UPDATE changes SET version = version + 1 WHERE id = 1").await?;
    let moved_to = version(&txn).await?;
    txn.commit().await?;
    Ok(moved_to)
}

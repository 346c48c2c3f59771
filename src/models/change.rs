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

/// Moves the counter: every instance drops what it kept from before.
pub async fn bump<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    db.execute_unprepared("UPDATE changes SET version = version + 1 WHERE id = 1").await?;
    Ok(())
}

//! A member's two-factor state: their TOTP secret (pending until a code confirms it), the last
//! time step a code was accepted for, and their recovery codes (SHA-256 only). Every use is
//! one conditional UPDATE, so two requests racing with the same code cannot both pass.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, TransactionSession, TransactionTrait};

use super::now_ms;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "two_factor")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i32,
    /// Base32, as the authenticator app has it.
    pub secret: String,
    /// `None` while enrolment waits for its first code.
    pub enabled_at: Option<i64>,
    /// The last time step a code was accepted for: that code and older ones are refused.
    pub last_step: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn is_enabled(&self) -> bool {
        self.enabled_at.is_some()
    }
}

pub mod recovery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recovery_codes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub user_id: i32,
        pub code_hash: String,
        pub used_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The member's two-factor row, pending or enabled.
pub async fn find<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(user_id).one(db).await
}

/// True when the member has two-factor turned on.
pub async fn is_enabled<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<bool, DbErr> {
    Ok(find(db, user_id).await?.is_some_and(|row| row.is_enabled()))
}

/// Starts (or restarts) enrolment with a new secret; false when two-factor is on already.
pub async fn start<C: TransactionTrait>(db: &C, user_id: i32, secret: &str) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if let Some(row) = find(&txn, user_id).await? {
        if row.is_enabled() {
            return Ok(false);
        }
        Entity::delete_by_id(user_id).exec(&txn).await?;
    }
    let row = ActiveModel {
        user_id: Set(user_id),
        secret: Set(secret.to_owned()),
        enabled_at: Set(None),
        last_step: Set(0),
        created_at: Set(now_ms()),
    };
    Entity::insert(row).exec_without_returning(&txn).await?;
    txn.commit().await?;
    Ok(true)
}

/// Turns two-factor on after the first right code (of `step`), with new recovery codes
/// (their hashes); false when there was no pending enrolment any more.
pub async fn confirm<C: TransactionTrait>(
    db: &C,
    user_id: i32,
    step: i64,
    code_hashes: &[String],
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let updated = Entity::update_many()
        .col_expr(Column::EnabledAt, Expr::value(now_ms()))
        .col_expr(Column::LastStep, Expr::value(step))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::EnabledAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(false);
    }
    replace_codes(&txn, user_id, code_hashes).await?;
    txn.commit().await?;
    Ok(true)
}

async fn replace_codes<C: ConnectionTrait>(
    db: &C,
    user_id: i32,
    code_hashes: &[String],
) -> Result<(), DbErr> {
    recovery::Entity::delete_many().filter(recovery::Column::UserId.eq(user_id)).exec(db).await?;
    let rows = code_hashes.iter().map(|hash| recovery::ActiveModel {
        user_id: Set(user_id),
        code_hash: Set(hash.clone()),
        used_at: Set(None),
        ..Default::default()
    });
    recovery::Entity::insert_many(rows).exec_without_returning(db).await?;
    Ok(())
}

/// Records that a code of `step` was used; false when that step (or a later one) was used
/// already: a code is good once.
pub async fn use_step<C: ConnectionTrait>(db: &C, user_id: i32, step: i64) -> Result<bool, DbErr> {
    let updated = Entity::update_many()
        .col_expr(Column::LastStep, Expr::value(step))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::EnabledAt.is_not_null())
        .filter(Column::LastStep.lt(step))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Uses one recovery code (by its hash); false when it is not one of the member's unused ones.
pub async fn use_recovery_code<C: ConnectionTrait>(
    db: &C,
    user_id: i32,
    code_hash: &str,
) -> Result<bool, DbErr> {
    let updated = recovery::Entity::update_many()
        .col_expr(recovery::Column::UsedAt, Expr::value(now_ms()))
        .filter(recovery::Column::UserId.eq(user_id))
        .filter(recovery::Column::CodeHash.eq(code_hash))
        .filter(recovery::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// How many recovery codes the member has left.
pub async fn codes_left<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<u64, DbErr> {
    recovery::Entity::find()
        .filter(recovery::Column::UserId.eq(user_id))
        .filter(recovery::Column::UsedAt.is_null())
        .count(db)
        .await
}

/// New recovery codes in place of the old ones (two-factor stays on).
pub async fn renew_codes<C: TransactionTrait>(
    db: &C,
    user_id: i32,
    code_hashes: &[String],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    replace_codes(&txn, user_id, code_hashes).await?;
    txn.commit().await
}

/// Turns two-factor off: the secret and every recovery code go.
pub async fn disable<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<(), DbErr> {
    recovery::Entity::delete_many().filter(recovery::Column::UserId.eq(user_id)).exec(db).await?;
    Entity::delete_by_id(user_id).exec(db).await?;
    Ok(())
}

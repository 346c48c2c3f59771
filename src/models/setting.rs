//! Wiki-wide settings (`read_access`, `registration`) in the database, so that every instance
//! reads the same ones and a change holds at the next request everywhere.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, TransactionSession, TransactionTrait};

use super::audit::{self, Actor};
use super::now_ms;
use crate::access::{SettingKey, WikiSettings};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub value: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Every setting, in one query; keys never written take their defaults.
#[tracing::instrument(skip_all)]
pub async fn load<C: ConnectionTrait>(db: &C) -> Result<WikiSettings, DbErr> {
    let rows = Entity::find().order_by_asc(Column::Key).all(db).await?;
    let mut settings = WikiSettings::default();
    for row in &rows {
        settings.apply(&row.key, &row.value);
    }
    Ok(settings)
}

/// Stores one (already checked) value and records the change in the audit log, in the
/// caller's transaction. Returns false, writing nothing, when the value is unchanged.
pub async fn set<C: ConnectionTrait>(
    db: &C,
    key: SettingKey,
    value: &'static str,
    actor: &Actor,
) -> Result<bool, DbErr> {
    let before = Entity::find_by_id(key.as_str()).lock_exclusive().one(db).await?;
    let old = match &before {
        Some(row) => {
            let mut current = WikiSettings::default();
            current.apply(&row.key, &row.value);
            key.value_in(&current)
        }
        None => key.value_in(&WikiSettings::default()),
    };
    if before.as_ref().is_some_and(|row| row.value == value) {
        return Ok(false);
    }
    let row = ActiveModel {
        key: Set(key.as_str().to_owned()),
        value: Set(value.to_owned()),
        updated_at: Set(now_ms()),
    };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::Key).update_columns([Column::Value, Column::UpdatedAt]).to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let details = format!("{}: {old} → {value}", key.as_str());
    audit::record(db, actor, audit::Action::Setting, key.as_str(), &details).await?;
    Ok(true)
}

/// Stores several checked values in one transaction; returns how many changed.
pub async fn set_many<C: TransactionTrait>(
    db: &C,
    changes: &[(SettingKey, &'static str)],
    actor: &Actor,
) -> Result<usize, DbErr> {
    let txn = db.begin().await?;
    let mut changed = 0;
    for &(key, value) in changes {
        if set(&txn, key, value, actor).await? {
            changed += 1;
        }
    }
    txn.commit().await?;
    Ok(changed)
}

/// The key of the page an admin chose to show at `/` (a title; absent: none).
pub const MAIN_PAGE: &str = "main_page";

/// The title of the main page, if one is chosen.
pub async fn main_page<C: ConnectionTrait>(db: &C) -> Result<Option<String>, DbErr> {
    let row = Entity::find_by_id(MAIN_PAGE).one(db).await?;
    Ok(row.map(|row| row.value).filter(|title| !title.is_empty()))
}

/// Chooses the main page (`None`: none), with its audit-log entry, in one transaction.
/// Returns false, writing nothing, when it is unchanged.
pub async fn set_main_page<C: TransactionTrait>(
    db: &C,
    title: Option<&str>,
    actor: &Actor,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let before = Entity::find_by_id(MAIN_PAGE).lock_exclusive().one(&txn).await?;
    let old = before.as_ref().map(|row| row.value.clone()).unwrap_or_default();
    let new = title.unwrap_or_default();
    if old == new {
        return Ok(false);
    }
    let row =
        ActiveModel { key: Set(MAIN_PAGE.to_owned()), value: Set(new.to_owned()), updated_at: Set(now_ms()) };
    Entity::insert(row)
        .on_conflict(
            OnConflict::column(Column::Key).update_columns([Column::Value, Column::UpdatedAt]).to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let shown = |title: &str| if title.is_empty() { "none".to_owned() } else { format!("“{title}”") };
    let details = format!("{MAIN_PAGE}: {} → {}", shown(&old), shown(new));
    audit::record(&txn, actor, audit::Action::Setting, MAIN_PAGE, &details).await?;
    txn.commit().await?;
    Ok(true)
}

//! Server-side sessions in the application's own database, shared by every instance.
//!
//! A `tower_sessions::SessionStore` over SeaORM. The row id is the SHA-256 of the session id,
//! so a copy of the table does not hand out live cookies. `user_id` is copied out of the data
//! so that a member's sessions can be ended at once (password change, deletion).

use sea_orm::QuerySelect;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, DatabaseConnection};
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};

use super::now_ms;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: Option<i32>,
    pub data: String,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The session key under which the member's id is kept.
pub const USER_ID_KEY: &str = "user_id";

/// Session keys of what the member's list of sessions shows: when it began (Unix ms), the
/// client address and `User-Agent` it was last seen with, and when (pushed at most every five
/// minutes, with the expiry).
pub const CREATED_KEY: &str = "created";
pub const ADDRESS_KEY: &str = "address";
pub const AGENT_KEY: &str = "agent";
pub const SEEN_KEY: &str = "seen";

/// The key under which [`DbSessionStore::load`] hands over the session's member as read in the
/// same query (a [`SessionMember`]). Never stored: [`to_row`] leaves it out, so it is always the
/// member's row as it is now, not as it was when the session last changed.
pub const MEMBER_KEY: &str = "quire:member";

/// The member row read with their session: who they are now (name, role, blocked or not).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SessionMember {
    pub id: i32,
    pub username: String,
    pub avatar: Option<String>,
    pub role: String,
    pub blocked: bool,
}

/// The session store: readers for `load`, the writer for everything that changes a row.
#[derive(Clone, Debug)]
pub struct DbSessionStore {
    read: DatabaseConnection,
    write: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(read: DatabaseConnection, write: DatabaseConnection) -> Self {
        Self { read, write }
    }
}

/// The row key of a session id: its SHA-256, which is not a cookie anyone can use.
pub fn row_id(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(err: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn expires_ms(record: &Record) -> i64 {
    i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn to_row(record: &Record) -> session_store::Result<ActiveModel> {
    let mut data = record.data.clone();
    data.remove(MEMBER_KEY);
    let data = serde_json::to_string(&data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let user_id = record
        .data
        .get(USER_ID_KEY)
        .and_then(serde_json::Value::as_i64)
        .and_then(|id| i32::try_from(id).ok());
    Ok(ActiveModel {
        id: Set(row_id(&record.id)),
        user_id: Set(user_id),
        data: Set(data),
        expires_at: Set(expires_ms(record)),
    })
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // 128 random bits make a collision unthinkable, but a retry costs nothing.
        loop {
            match Entity::insert(to_row(record)?).exec(&self.write).await {
                Ok(_) => return Ok(()),
                Err(err) if super::is_unique_violation(&err) => record.id = Id::default(),
                Err(err) => return Err(backend(err)),
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        Entity::insert(to_row(record)?)
            .on_conflict(
                OnConflict::column(Column::Id)
                    .update_columns([Column::UserId, Column::Data, Column::ExpiresAt])
                    .to_owned(),
            )
            .exec(&self.write)
            .await
            .map_err(backend)?;
        Ok(())
    }

    /// The session, with its member's row read in the same query (one round trip per
    /// member request: the session is never trusted from memory, see `cache.rs`).
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let member =
            Entity::belongs_to(super::user::Entity).from(Column::UserId).to(super::user::Column::Id).into();
        let Some((row, user)) = Entity::find_by_id(row_id(id))
            .filter(Column::ExpiresAt.gt(now_ms()))
            .join(sea_orm::JoinType::LeftJoin, member)
            .select_also(super::user::Entity)
            .one(&self.read)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let mut data: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_str(&row.data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        data.remove(MEMBER_KEY);
        if let Some(user) = user {
            let member = SessionMember {
                id: user.id,
                blocked: user.is_blocked(),
                username: user.username,
                avatar: user.avatar,
                role: user.role,
            };
            let value =
                serde_json::to_value(member).map_err(|e| session_store::Error::Decode(e.to_string()))?;
            data.insert(MEMBER_KEY.to_owned(), value);
        }
        let expiry_date =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(row.expires_at) * 1_000_000)
                .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        Entity::delete_by_id(row_id(id)).exec(&self.write).await.map_err(backend)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        delete_expired(&self.write).await.map_err(backend)?;
        Ok(())
    }
}

/// Removes every expired session; returns how many.
pub async fn delete_expired<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let result = Entity::delete_many().filter(Column::ExpiresAt.lte(now_ms())).exec(db).await?;
    Ok(result.rows_affected)
}

/// Ends every session of one member (password change, account deletion).
pub async fn delete_for_user<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<u64, DbErr> {
    let result = Entity::delete_many().filter(Column::UserId.eq(user_id)).exec(db).await?;
    Ok(result.rows_affected)
}

/// How many sessions are stored (tests check that visitors create none).
pub async fn count<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

/// One of a member's sessions, as their list of sessions shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    /// The row key (the SHA-256 of the cookie's id): names the session without being it.
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub address: String,
    pub agent: String,
}

/// A member's sessions that have not expired, the most recently seen first.
pub async fn active_for_user<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<Vec<ActiveSession>, DbErr> {
    let rows = Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::ExpiresAt.gt(now_ms()))
        .all(db)
        .await?;
    let mut sessions: Vec<ActiveSession> = rows
        .into_iter()
        .map(|row| {
            let data: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&row.data).unwrap_or_default();
            let number = |key: &str| data.get(key).and_then(serde_json::Value::as_i64);
            let text = |key: &str| data.get(key).and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
            let last_seen_at = number(SEEN_KEY).unwrap_or(0);
            ActiveSession {
                id: row.id,
                created_at: number(CREATED_KEY).unwrap_or(last_seen_at),
                last_seen_at,
                address: text(ADDRESS_KEY),
                agent: text(AGENT_KEY),
            }
        })
        .collect();
    sessions.sort_by(|a, b| b.last_seen_at.cmp(&a.last_seen_at).then_with(|| a.id.cmp(&b.id)));
    Ok(sessions)
}

/// Ends one session of a member, named by its row key; false when they have no such session
/// (another member's session is never touched).
pub async fn end_for_user<C: ConnectionTrait>(db: &C, user_id: i32, id: &str) -> Result<bool, DbErr> {
    let result =
        Entity::delete_many().filter(Column::UserId.eq(user_id)).filter(Column::Id.eq(id)).exec(db).await?;
    Ok(result.rows_affected > 0)
}

/// Ends every session of a member but the one whose row key is `keep`; returns how many.
pub async fn end_others<C: ConnectionTrait>(db: &C, user_id: i32, keep: &str) -> Result<u64, DbErr> {
    let result =
        Entity::delete_many().filter(Column::UserId.eq(user_id)).filter(Column::Id.ne(keep)).exec(db).await?;
    Ok(result.rows_affected)
}

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
    /// On SQLite, `load` reads through these instead of `read`.
    direct: Option<std::sync::Arc<DirectReader>>,
}

impl DbSessionStore {
    pub fn new(db: &crate::db::Db) -> Self {
        Self {
            read: db.read.clone(),
            write: db.write.clone(),
            direct: db.sqlite_file.clone().map(|file| std::sync::Arc::new(DirectReader::new(file))),
        }
    }
}

impl DbSessionStore {
    /// `load`'s query through the readers' pool (every backend but SQLite, and SQLite when the
    /// direct read failed).
    async fn load_through_pool(&self, row: &str, now: i64) -> session_store::Result<Option<Loaded>> {
        let member =
            Entity::belongs_to(super::user::Entity).from(Column::UserId).to(super::user::Column::Id).into();
        let found = Entity::find_by_id(row.to_owned())
            .filter(Column::ExpiresAt.gt(now))
            .join(sea_orm::JoinType::LeftJoin, member)
            .select_also(super::user::Entity)
            .one(&self.read)
            .await
            .map_err(backend)?;
        Ok(found.map(|(row, user)| Loaded {
            data: row.data,
            expires_at: row.expires_at,
            member: user.map(|user| SessionMember {
                id: user.id,
                blocked: user.is_blocked(),
                username: user.username,
                avatar: user.avatar,
                role: user.role,
            }),
        }))
    }
}

/// The row of a session and of its member, as `load` reads it.
struct Loaded {
    data: String,
    expires_at: i64,
    member: Option<SessionMember>,
}

/// The one query of a member's request, in SQL: the session (unexpired) and its member.
const LOAD_SQL: &str = "SELECT s.data, s.expires_at, u.id, u.username, u.avatar, u.role, u.blocked_at \
     FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE s.id = ?1 AND s.expires_at > ?2";

/// Reads sessions from the SQLite file on the calling thread, through connections of its own
/// (read-only, kept between requests). sqlx runs every SQLite connection on a thread of its own
/// and hands each statement and row across channels: for this lookup of a few microseconds,
/// the two thread hand-offs were most of a member's page view (a third of the CPU in the
/// worker thread alone, `bench/profiles/member-view-perf.txt`). In WAL mode a reader neither
/// waits for the writer nor sees anything but committed rows, so a session ended by a commit is
/// gone for the very next request, on every instance over the file.
#[derive(Debug)]
pub struct DirectReader {
    file: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// How many idle connections are kept (a request holds one only for its statement).
const DIRECT_IDLE: usize = 8;

impl DirectReader {
    fn new(file: std::path::PathBuf) -> Self {
        Self { file, idle: std::sync::Mutex::new(Vec::new()) }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.file,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // A reader waits only in rare moments (the WAL index being rebuilt); never long, since
        // it waits on a runtime thread. Past it, the pools' way is taken.
        conn.busy_timeout(std::time::Duration::from_millis(20))?;
        Ok(conn)
    }

    fn load(&self, row: &str, now: i64) -> rusqlite::Result<Option<Loaded>> {
        let taken = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => self.open()?,
        };
        let loaded = Self::query(&conn, row, now);
        if loaded.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if idle.len() < DIRECT_IDLE {
                idle.push(conn);
            }
        }
        loaded
    }

    fn query(conn: &rusqlite::Connection, row: &str, now: i64) -> rusqlite::Result<Option<Loaded>> {
        use rusqlite::OptionalExtension;
        let mut statement = conn.prepare_cached(LOAD_SQL)?;
        statement
            .query_row(rusqlite::params![row, now], |r| {
                let member = match r.get::<_, Option<i32>>(2)? {
                    Some(id) => Some(SessionMember {
                        id,
                        username: r.get(3)?,
                        avatar: r.get(4)?,
                        role: r.get(5)?,
                        blocked: r.get::<_, Option<i64>>(6)?.is_some(),
                    }),
                    None => None,
                };
                Ok(Loaded { data: r.get(0)?, expires_at: r.get(1)?, member })
            })
            .optional()
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
        let row = row_id(id);
        let now = now_ms();
        let direct = self.direct.as_ref().and_then(|direct| match direct.load(&row, now) {
            Ok(loaded) => Some(loaded),
            Err(err) => {
                tracing::debug!(error = %err, "the direct session read failed: reading through the pool");
                None
            }
        });
        let loaded = match direct {
            Some(loaded) => loaded,
            None => self.load_through_pool(&row, now).await?,
        };
        let Some(Loaded { data, expires_at, member }) = loaded else {
            return Ok(None);
        };
        let mut data: std::collections::HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        data.remove(MEMBER_KEY);
        if let Some(member) = member {
            let value =
                serde_json::to_value(member).map_err(|e| session_store::Error::Decode(e.to_string()))?;
            data.insert(MEMBER_KEY.to_owned(), value);
        }
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
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

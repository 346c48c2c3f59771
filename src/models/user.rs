//! Members: the seed's `users` table, and the queries on it.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect, TransactionSession, TransactionTrait};

use super::{is_unique_violation, now_ms};
use crate::access::Role;
use crate::domain::Username;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub username: String,
    pub password_hash: String,
    pub avatar: Option<String>,
    pub created_at: i64,
    /// `admin`, `editor` or `reader` (see [`Model::role`]).
    pub role: String,
    /// When an admin blocked the member; `None` while they may log in.
    pub blocked_at: Option<i64>,
    pub last_login_at: Option<i64>,
    /// [`crate::domain::username_key`] of the name, unique; NULL only for an old row that
    /// looked like an older member's when the key was introduced.
    #[sea_orm(unique)]
    pub username_key: Option<String>,
}

impl Model {
    /// The member's role; a value this version does not know reads as the least powerful.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Reader)
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked_at.is_some()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::page::Entity")]
    Pages,
}

impl Related<super::page::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Pages.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("Username already exists!")]
    UsernameTaken,
    #[error("This username looks too much like an existing member's name: choose another.")]
    LooksLikeAnother,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Inserts a member; the unique indexes (the name, and its confusable key) decide between two
/// racing registrations.
#[tracing::instrument(skip_all, fields(user.name = %username.as_str()))]
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    username: &Username,
    password_hash: &str,
    role: Role,
) -> Result<Model, CreateUserError> {
    let user = ActiveModel {
        username: Set(username.as_str().to_owned()),
        username_key: Set(Some(username.key())),
        password_hash: Set(password_hash.to_owned()),
        avatar: Set(None),
        created_at: Set(now_ms()),
        role: Set(role.as_str().to_owned()),
        blocked_at: Set(None),
        last_login_at: Set(None),
        ..Default::default()
    };
    // The insert runs in a savepoint, so that after a violation the transaction around it
    // (PostgreSQL refuses every further statement in a failed one) can still ask which name
    // refused it; reading first instead would make SQLite upgrade a read to a write lock.
    let attempt = db.begin().await?;
    match user.insert(&attempt).await {
        Ok(user) => {
            attempt.commit().await?;
            Ok(user)
        }
        Err(err) if is_unique_violation(&err) => {
            attempt.rollback().await?;
            match find_by_username(db, username.as_str()).await? {
                Some(_) => Err(CreateUserError::UsernameTaken),
                None => Err(CreateUserError::LooksLikeAnother),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// The member whose name has this confusable key (see [`crate::domain::username_key`]).
pub async fn find_by_key<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::UsernameKey.eq(key)).one(db).await
}

/// Why a registration did not create an account.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("{}", .0.message())]
    Invite(super::invite::InviteProblem),
    #[error(transparent)]
    Create(#[from] CreateUserError),
}

impl From<DbErr> for RegisterError {
    fn from(err: DbErr) -> Self {
        Self::Create(CreateUserError::Db(err))
    }
}

/// Registers a member in one transaction: uses one use of the invitation (whose role they get;
/// `editor` without one), creates the account, and makes the very first account an admin. A
/// refused invitation or a taken name leaves everything as it was, the invitation included.
#[tracing::instrument(skip_all, fields(user.name = %username.as_str()))]
pub async fn register<C: TransactionTrait>(
    db: &C,
    username: &Username,
    password_hash: &str,
    invitation: Option<&str>,
) -> Result<Model, RegisterError> {
    let txn = db.begin().await?;
    let role = match invitation {
        Some(token) => super::invite::redeem(&txn, token).await?.map_err(RegisterError::Invite)?,
        None => Role::Editor,
    };
    let mut created = create(&txn, username, password_hash, role).await?;
    if first_id(&txn).await? == Some(created.id) && created.role() != Role::Admin {
        set_role(&txn, created.id, Role::Admin).await?;
        created.role = Role::Admin.as_str().to_owned();
        tracing::info!(user.id = created.id, "the first account is admin");
    }
    txn.commit().await?;
    Ok(created)
}

/// The member with exactly this username (case-sensitive on every backend).
pub async fn find_by_username<C: ConnectionTrait>(db: &C, username: &str) -> Result<Option<Model>, DbErr> {
    Entity::find().filter(Column::Username.eq(username)).one(db).await
}

pub async fn find_by_id<C: ConnectionTrait>(db: &C, id: i32) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Every member, in username order.
pub async fn list<C: ConnectionTrait>(db: &C) -> Result<Vec<Model>, DbErr> {
    Entity::find().order_by_asc(Column::Username).all(db).await
}

/// How often [`set_avatar`] re-reads when other uploads keep landing in between; each retry
/// means another upload succeeded, so this only bounds a livelock.
const AVATAR_ATTEMPTS: usize = 16;

/// Sets the avatar file name and returns the previous one, whose file the caller deletes.
///
/// The update is conditional on the value read just before (compare and swap), so of two
/// racing uploads each replaces exactly the name the other stored: every replaced name is
/// returned to exactly one caller, and no file is left without a row pointing at it.
pub async fn set_avatar<C: ConnectionTrait>(
    db: &C,
    user_id: i32,
    avatar: &str,
) -> Result<Option<String>, DbErr> {
    for _ in 0..AVATAR_ATTEMPTS {
        let Some(previous): Option<Option<String>> =
            Entity::find_by_id(user_id).select_only().column(Column::Avatar).into_tuple().one(db).await?
        else {
            return Err(DbErr::RecordNotFound(format!("member {user_id}")));
        };
        let unchanged = match &previous {
            Some(name) => Column::Avatar.eq(name.as_str()),
            None => Column::Avatar.is_null(),
        };
        let updated = Entity::update_many()
            .col_expr(Column::Avatar, Expr::value(avatar))
            .filter(Column::Id.eq(user_id))
            .filter(unchanged)
            .exec(db)
            .await?;
        if updated.rows_affected == 1 {
            return Ok(previous);
        }
    }
    Err(DbErr::Custom("the avatar kept changing while it was being replaced".into()))
}

/// Replaces a member's password hash.
pub async fn set_password_hash<C: ConnectionTrait>(db: &C, user_id: i32, hash: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::PasswordHash, Expr::value(hash))
        .filter(Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many members there are (the first one to register becomes admin).
pub async fn count<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    Entity::find().count(db).await
}

/// Deletes a member; their pages stay, with no author (the foreign key sets it to NULL), and
/// their sessions go with them. Returns the deleted member.
pub async fn delete<C: ConnectionTrait>(db: &C, username: &str) -> Result<Option<Model>, DbErr> {
    let Some(user) = find_by_username(db, username).await? else {
        return Ok(None);
    };
    super::page::Entity::update_many()
        .col_expr(super::page::Column::AuthorId, Expr::value(Option::<i32>::None))
        .filter(super::page::Column::AuthorId.eq(user.id))
        .exec(db)
        .await?;
    super::session::delete_for_user(db, user.id).await?;
    Entity::delete_by_id(user.id).exec(db).await?;
    Ok(Some(user))
}

/// Each member with how many pages they wrote (live ones), in username order: one query.
pub async fn list_with_page_counts<C: ConnectionTrait>(db: &C) -> Result<Vec<(Model, u64)>, DbErr> {
    let users = list(db).await?;
    let counts: Vec<(i32, i64)> = super::page::Entity::find()
        .select_only()
        .column(super::page::Column::AuthorId)
        .column_as(super::page::Column::Id.count(), "pages")
        .filter(super::page::Column::AuthorId.is_not_null())
        .filter(super::page::Column::DeletedAt.is_null())
        .group_by(super::page::Column::AuthorId)
        .into_tuple()
        .all(db)
        .await?;
    let counts: std::collections::HashMap<i32, i64> = counts.into_iter().collect();
    Ok(users
        .into_iter()
        .map(|user| {
            let pages = counts.get(&user.id).copied().unwrap_or(0).max(0).unsigned_abs();
            (user, pages)
        })
        .collect())
}

/// The id of the first member ever registered (the lowest id still present).
pub async fn first_id<C: ConnectionTrait>(db: &C) -> Result<Option<i32>, DbErr> {
    Entity::find().select_only().column(Column::Id).order_by_asc(Column::Id).into_tuple().one(db).await
}

/// Sets a member's role (the last-admin rule is checked by [`apply_change`]).
pub(crate) async fn set_role<C: ConnectionTrait>(db: &C, id: i32, role: Role) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Role, Expr::value(role.as_str()))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Notes a successful login.
pub async fn touch_login<C: ConnectionTrait>(db: &C, id: i32) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastLoginAt, Expr::value(now_ms()))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Why an admin's change to a member was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminChangeError {
    #[error("There is no member with that name.")]
    NoSuchMember,
    #[error("The last admin cannot be demoted, blocked or deleted.")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What an admin does to a member, each subject to the last-admin rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminChange {
    Role(Role),
    Block,
    Unblock,
    Delete,
}

/// The member, locked for the rest of the transaction, after checking that the change leaves
/// at least one unblocked admin. The member and every unblocked admin are locked in one
/// statement, in id order (`FOR UPDATE` on PostgreSQL and MySQL; SQLite's single writer
/// serialises the transaction): two admins demoting each other at once queue instead of
/// deadlocking, and the second sees the first's change and is refused.
async fn lock_for_change<C: ConnectionTrait>(
    db: &C,
    username: &str,
    change: AdminChange,
) -> Result<Model, AdminChangeError> {
    let locked = Entity::find()
        .filter(Condition::any().add(Column::Username.eq(username)).add(
            Condition::all().add(Column::Role.eq(Role::Admin.as_str())).add(Column::BlockedAt.is_null()),
        ))
        .order_by_asc(Column::Id)
        .lock_exclusive()
        .all(db)
        .await?;
    let member =
        locked.iter().find(|row| row.username == username).cloned().ok_or(AdminChangeError::NoSuchMember)?;
    let is_active_admin = |row: &Model| row.role() == Role::Admin && !row.is_blocked();
    let removes_an_admin = is_active_admin(&member)
        && match change {
            AdminChange::Role(role) => role != Role::Admin,
            AdminChange::Block | AdminChange::Delete => true,
            AdminChange::Unblock => false,
        };
    if removes_an_admin && !locked.iter().any(|row| row.id != member.id && is_active_admin(row)) {
        return Err(AdminChangeError::LastAdmin);
    }
    Ok(member)
}

/// Applies an admin's change to a member, inside the caller's transaction. Returns the member
/// as they were before. Blocking and deleting end every session of the member.
pub async fn apply_change<C: ConnectionTrait>(
    db: &C,
    username: &str,
    change: AdminChange,
) -> Result<Model, AdminChangeError> {
    let member = lock_for_change(db, username, change).await?;
    match change {
        AdminChange::Role(role) => set_role(db, member.id, role).await?,
        AdminChange::Block | AdminChange::Unblock => {
            let blocked_at = (change == AdminChange::Block).then(now_ms);
            Entity::update_many()
                .col_expr(Column::BlockedAt, Expr::value(blocked_at))
                .filter(Column::Id.eq(member.id))
                .exec(db)
                .await?;
            if change == AdminChange::Block {
                super::session::delete_for_user(db, member.id).await?;
            }
        }
        AdminChange::Delete => {
            delete(db, username).await?;
        }
    }
    Ok(member)
}

/// Applies an admin's change in its own transaction, with its audit-log entry.
pub async fn change_by<C: TransactionTrait>(
    db: &C,
    username: &str,
    change: AdminChange,
    actor: &super::audit::Actor,
) -> Result<Model, AdminChangeError> {
    use super::audit::{self, Action};
    let txn = db.begin().await?;
    let before = apply_change(&txn, username, change).await?;
    let (action, details) = match change {
        AdminChange::Role(role) => (Action::Role, format!("{}: {} → {role}", before.username, before.role())),
        AdminChange::Block => (Action::Block, String::new()),
        AdminChange::Unblock => (Action::Unblock, String::new()),
        AdminChange::Delete => (Action::UserDelete, format!("was {}", before.role())),
    };
    let unchanged = match change {
        AdminChange::Role(role) => before.role() == role,
        AdminChange::Block => before.is_blocked(),
        AdminChange::Unblock => !before.is_blocked(),
        AdminChange::Delete => false,
    };
    if !unchanged {
        audit::record(&txn, actor, action, &before.username, &details).await?;
    }
    txn.commit().await?;
    Ok(before)
}

/// Adds a member on an admin's behalf (web or command line), with its audit-log entry.
pub async fn add_by<C: TransactionTrait>(
    db: &C,
    username: &Username,
    password_hash: &str,
    role: Role,
    actor: &super::audit::Actor,
) -> Result<Model, CreateUserError> {
    let txn = db.begin().await?;
    let created = create(&txn, username, password_hash, role).await?;
    super::audit::record(
        &txn,
        actor,
        super::audit::Action::UserAdd,
        username.as_str(),
        &format!("role {role}"),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// An admin sets a member's password: the hash, the end of every session of theirs and the
/// audit entry in one transaction; returns how many sessions ended.
pub async fn reset_password_by<C: TransactionTrait>(
    db: &C,
    member: &Model,
    hash: &str,
    actor: &super::audit::Actor,
) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    set_password_hash(&txn, member.id, hash).await?;
    let ended = super::session::delete_for_user(&txn, member.id).await?;
    super::email::void_for_user(&txn, member.id, super::email::Purpose::Reset).await?;
    super::audit::record(&txn, actor, super::audit::Action::PasswordReset, &member.username, "").await?;
    txn.commit().await?;
    Ok(ended)
}

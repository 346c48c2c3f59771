//! Members: the seed's `users` table, and the queries on it.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::{is_unique_violation, now_ms};
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
    pub is_admin: bool,
    pub created_at: i64,
    /// [`crate::domain::username_key`] of the name, unique; NULL only for an old row that
    /// looked like an older member's when the key was introduced.
    #[sea_orm(unique)]
    pub username_key: Option<String>,
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
pub async fn create<C: ConnectionTrait>(
    db: &C,
    username: &Username,
    password_hash: &str,
) -> Result<Model, CreateUserError> {
    let user = ActiveModel {
        username: Set(username.as_str().to_owned()),
        username_key: Set(Some(username.key())),
        password_hash: Set(password_hash.to_owned()),
        avatar: Set(None),
        is_admin: Set(false),
        created_at: Set(now_ms()),
        ..Default::default()
    };
    match user.insert(db).await {
        Ok(user) => Ok(user),
        Err(err) if is_unique_violation(&err) => {
            // Which index refused it: the exact name, or a look-alike's key.
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

/// Makes a member an admin; false when there is no such member.
pub async fn promote<C: ConnectionTrait>(db: &C, username: &str) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::IsAdmin, Expr::value(true))
        .filter(Column::Username.eq(username))
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
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

/// Each member with how many pages they wrote, for `quire user list`.
pub async fn list_with_page_counts<C: ConnectionTrait>(db: &C) -> Result<Vec<(Model, u64)>, DbErr> {
    let users = list(db).await?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let pages = user.find_related(super::page::Entity).count(db).await?;
        out.push((user, pages));
    }
    Ok(out)
}

/// The id of the first member ever registered (the lowest id still present).
pub async fn first_id<C: ConnectionTrait>(db: &C) -> Result<Option<i32>, DbErr> {
    Entity::find().select_only().column(Column::Id).order_by_asc(Column::Id).into_tuple().one(db).await
}

/// Makes the member with this id an admin.
pub async fn promote_id<C: ConnectionTrait>(db: &C, id: i32) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::IsAdmin, Expr::value(true))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

//! Members' verified email addresses, and the single-use links sent to them: password recovery
//! (valid one hour) and address verification (valid one day). A link's token carries 256
//! random bits; only its SHA-256 is stored, and using it is one conditional UPDATE, so a link
//! works once even when two requests race.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, QueryOrder};
use sha2::{Digest, Sha256};

use super::now_ms;

/// A member's verified address.
pub mod address {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "emails")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i32,
        pub address: String,
        pub verified_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub user_id: i32,
    pub purpose: String,
    /// The address being verified (verification links only).
    pub address: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Set a new password.
    Reset,
    /// Prove an address belongs to the member.
    Verify,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Verify => "verify",
        }
    }

    /// How long a link stays good.
    pub fn lifetime_ms(self) -> i64 {
        match self {
            Self::Reset => 60 * 60 * 1000,
            Self::Verify => 24 * 60 * 60 * 1000,
        }
    }
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Makes a link's token for a member (and, for verification, the address); returns the token,
/// which exists nowhere else once the mail is sent. Earlier unused links of the same purpose
/// stop working: only the newest one counts.
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    user_id: i32,
    purpose: Purpose,
    address: Option<&str>,
) -> Result<String, DbErr> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DbErr::Custom(format!("no random bytes: {e}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let now = now_ms();
    Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    let row = ActiveModel {
        token_hash: Set(token_hash(&token)),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_owned()),
        address: Set(address.map(str::to_owned)),
        created_at: Set(now),
        expires_at: Set(now + purpose.lifetime_ms()),
        used_at: Set(None),
        ..Default::default()
    };
    Entity::insert(row).exec_without_returning(db).await?;
    Ok(token)
}

/// The link's row while it is good (unused, not expired, for this purpose).
pub async fn peek<C: ConnectionTrait>(db: &C, token: &str, purpose: Purpose) -> Result<Option<Model>, DbErr> {
    Entity::find()
        .filter(Column::TokenHash.eq(token_hash(token)))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now_ms()))
        .one(db)
        .await
}

/// Uses the link up, in the caller's transaction; `None` when it was not good any more.
pub async fn consume<C: ConnectionTrait>(
    db: &C,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Model>, DbErr> {
    let Some(row) = peek(db, token, purpose).await? else {
        return Ok(None);
    };
    let updated = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now_ms()))
        .filter(Column::Id.eq(row.id))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok((updated.rows_affected == 1).then_some(row))
}

/// Ends every unused link of a member for `purpose` (their password changed).
pub async fn void_for_user<C: ConnectionTrait>(db: &C, user_id: i32, purpose: Purpose) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now_ms()))
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Purpose.eq(purpose.as_str()))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Removes links that expired over a day ago (the session purge calls it).
pub async fn purge<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let day = 24 * 60 * 60 * 1000;
    let result = Entity::delete_many().filter(Column::ExpiresAt.lt(now_ms() - day)).exec(db).await?;
    Ok(result.rows_affected)
}

/// The member's verified address.
pub async fn verified_of<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<Option<String>, DbErr> {
    Ok(address::Entity::find_by_id(user_id).one(db).await?.map(|row| row.address))
}

/// Members whose verified address is `address` (compared without case), oldest first.
pub async fn members_with<C: ConnectionTrait>(db: &C, address: &str) -> Result<Vec<i32>, DbErr> {
    let rows = address::Entity::find()
        .filter(address::Column::Address.eq(address.trim().to_lowercase()))
        .order_by_asc(address::Column::UserId)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| row.user_id).collect())
}

/// Records a member's address as verified (replacing the one before).
pub async fn set_verified<C: ConnectionTrait>(db: &C, user_id: i32, address: &str) -> Result<(), DbErr> {
    let row = address::ActiveModel {
        user_id: Set(user_id),
        address: Set(address.to_owned()),
        verified_at: Set(now_ms()),
    };
    address::Entity::insert(row)
        .on_conflict(
            OnConflict::column(address::Column::UserId)
                .update_columns([address::Column::Address, address::Column::VerifiedAt])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Forgets a member's address.
pub async fn remove<C: ConnectionTrait>(db: &C, user_id: i32) -> Result<(), DbErr> {
    address::Entity::delete_by_id(user_id).exec(db).await?;
    Ok(())
}

//! Invitations: a link that lets its holder register (with a role) while registration is by
//! invitation or closed. Only the SHA-256 of a token is stored; each registration uses one use,
//! in one conditional UPDATE, so racing registrations cannot overdraw an invitation.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, TransactionSession, TransactionTrait};
use sha2::{Digest, Sha256};

use super::audit::{self, Actor};
use super::now_ms;
use crate::access::Role;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invites")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub role: String,
    pub uses_left: i32,
    pub expires_at: i64,
    pub created_by: Option<i32>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CreatedBy",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Creator,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Creator.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

pub const USES_MAX: i32 = 1000;
pub const DAYS_MAX: i64 = 365;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Why an invitation cannot be used; the messages are what the visitor reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InviteProblem {
    #[error("This invitation is not valid.")]
    Unknown,
    #[error("This invitation has expired.")]
    Expired,
    #[error("This invitation has been used up.")]
    UsedUp,
    #[error("This invitation has been revoked.")]
    Revoked,
}

impl InviteProblem {
    /// What the visitor reads.
    pub fn message(self) -> &'static str {
        match self {
            Self::Unknown => "This invitation is not valid.",
            Self::Expired => "This invitation has expired.",
            Self::UsedUp => "This invitation has been used up.",
            Self::Revoked => "This invitation has been revoked.",
        }
    }
}

/// Where an invitation stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Expired,
    UsedUp,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::UsedUp => "used up",
            Self::Revoked => "revoked",
        }
    }
}

impl Model {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Reader)
    }

    pub fn status(&self, now: i64) -> Status {
        if self.revoked_at.is_some() {
            Status::Revoked
        } else if self.uses_left <= 0 {
            Status::UsedUp
        } else if self.expires_at <= now {
            Status::Expired
        } else {
            Status::Active
        }
    }

    fn problem(&self, now: i64) -> Option<InviteProblem> {
        match self.status(now) {
            Status::Active => None,
            Status::Expired => Some(InviteProblem::Expired),
            Status::UsedUp => Some(InviteProblem::UsedUp),
            Status::Revoked => Some(InviteProblem::Revoked),
        }
    }
}

/// A new token: 256 random bits, base64url (43 characters).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// What an admin asks for.
#[derive(Debug, Clone, Copy)]
pub struct NewInvite {
    pub uses: i32,
    pub expires_in_days: i64,
    pub role: Role,
}

/// Stores an invitation and records it in the audit log, in one transaction; returns the
/// token, which exists nowhere else from now on.
pub async fn create<C: TransactionTrait>(db: &C, new: NewInvite, actor: &Actor) -> Result<String, DbErr> {
    let txn = db.begin().await?;
    let db = &txn;
    let token = new_token();
    let now = now_ms();
    let row = ActiveModel {
        token_hash: Set(hash(&token)),
        role: Set(new.role.as_str().to_owned()),
        uses_left: Set(new.uses),
        expires_at: Set(now + new.expires_in_days * DAY_MS),
        created_by: Set(actor.id()),
        created_at: Set(now),
        revoked_at: Set(None),
        ..Default::default()
    };
    let created = Entity::insert(row).exec(db).await?;
    audit::record(
        db,
        actor,
        audit::Action::InviteCreate,
        &format!("invitation #{}", created.last_insert_id),
        &format!("role {}, {} uses, expires in {} days", new.role, new.uses, new.expires_in_days),
    )
    .await?;
    txn.commit().await?;
    Ok(token)
}

/// The invitation a token names, if it can still be used.
pub async fn check<C: ConnectionTrait>(db: &C, token: &str) -> Result<Result<Model, InviteProblem>, DbErr> {
    let Some(found) = Entity::find().filter(Column::TokenHash.eq(hash(token))).one(db).await? else {
        return Ok(Err(InviteProblem::Unknown));
    };
    Ok(match found.problem(now_ms()) {
        Some(problem) => Err(problem),
        None => Ok(found),
    })
}

/// Uses one use of an invitation, in the caller's transaction: a conditional decrement, so that
/// of N racing registrations exactly `uses_left` succeed. Returns the role it grants.
pub async fn redeem<C: ConnectionTrait>(db: &C, token: &str) -> Result<Result<Role, InviteProblem>, DbErr> {
    let token_hash = hash(token);
    let now = now_ms();
    let used = Entity::update_many()
        .col_expr(Column::UsesLeft, Expr::col(Column::UsesLeft).sub(1))
        .filter(Column::TokenHash.eq(token_hash.as_str()))
        .filter(Column::UsesLeft.gt(0))
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    let found = Entity::find().filter(Column::TokenHash.eq(token_hash)).one(db).await?;
    Ok(match (used.rows_affected, found) {
        (1, Some(found)) => Ok(found.role()),
        (_, Some(found)) => Err(found.problem(now).unwrap_or(InviteProblem::UsedUp)),
        (_, None) => Err(InviteProblem::Unknown),
    })
}

/// What revoking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
    NoSuchInvitation,
}

/// Revokes an invitation, with its audit entry, in one transaction.
pub async fn revoke<C: TransactionTrait>(db: &C, id: i32, actor: &Actor) -> Result<Revoked, DbErr> {
    let txn = db.begin().await?;
    let result = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now_ms()))
        .filter(Column::Id.eq(id))
        .filter(Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    let outcome = if result.rows_affected == 1 {
        audit::record(&txn, actor, audit::Action::InviteRevoke, &format!("invitation #{id}"), "").await?;
        Revoked::Now
    } else if Entity::find_by_id(id).one(&txn).await?.is_some() {
        Revoked::Already
    } else {
        Revoked::NoSuchInvitation
    };
    txn.commit().await?;
    Ok(outcome)
}

/// An invitation as the admin list shows it.
pub struct Listed {
    pub invite: Model,
    pub creator: Option<String>,
}

/// Every invitation, newest first, with its creator's name (at most `limit`).
pub async fn list<C: ConnectionTrait>(db: &C, limit: u64) -> Result<Vec<Listed>, DbErr> {
    let rows = Entity::find()
        .find_also_related(super::user::Entity)
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(invite, creator)| Listed { invite, creator: creator.map(|u| u.username) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_256_random_bits_and_only_their_hash_is_kept() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash(&a).len(), 64);
        assert!(!hash(&a).contains(&a));
    }
}

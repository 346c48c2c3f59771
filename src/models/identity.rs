//! Identities: a member's accounts at an identity provider, each found again by
//! (issuer, subject) — an OpenID Connect issuer and its `sub`, or the LDAP directory and the
//! entry's id. Only the link is kept.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, TransactionSession, TransactionTrait};

use super::audit::{self, Action, Actor};
use super::user::{self, CreateUserError};
use super::{is_unique_violation, now_ms};
use crate::access::Role;
use crate::domain::Username;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub user_id: i32,
    pub issuer: String,
    pub subject: String,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The longest issuer and subject kept (the columns' size); longer ones are refused.
pub const MAX_LEN: usize = 255;

/// The member an identity is linked to, with the link.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
) -> Result<Option<(Model, user::Model)>, DbErr> {
    let Some(link) =
        Entity::find().filter(Column::Issuer.eq(issuer)).filter(Column::Subject.eq(subject)).one(db).await?
    else {
        return Ok(None);
    };
    Ok(user::find_by_id(db, link.user_id).await?.map(|member| (link, member)))
}

/// A member's identities at one issuer.
pub async fn of_member<C: ConnectionTrait>(db: &C, user_id: i32, issuer: &str) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user_id))
        .filter(Column::Issuer.eq(issuer))
        .order_by_asc(Column::Id)
        .all(db)
        .await
}

/// Notes a sign-in through this identity.
pub async fn touch<C: ConnectionTrait>(db: &C, id: i32) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::LastLoginAt, Expr::value(now_ms()))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

fn new_link(user_id: i32, issuer: &str, subject: &str) -> ActiveModel {
    ActiveModel {
        user_id: Set(user_id),
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        created_at: Set(now_ms()),
        last_login_at: Set(Some(now_ms())),
        ..Default::default()
    }
}

/// What a first sign-in did.
pub enum SignUp {
    /// A new member, linked to the identity.
    Created(user::Model, Model),
    /// Another sign-in with the same identity made the member first (a race): theirs.
    Existing(user::Model, Model),
}

/// How many numbered names (`alice-2` … `alice-99`) are tried before a random suffix.
const NUMBERED: u32 = 99;

/// The names tried for a new member, in order: the provider's, then numbered, then random.
fn candidates(base: &Username) -> impl Iterator<Item = Username> + '_ {
    let numbered = (2..=NUMBERED).map(move |n| n.to_string());
    let random = (0..8).map(|_| {
        let mut bytes = [0u8; 3];
        let _ = getrandom::fill(&mut bytes);
        hex::encode(bytes)
    });
    std::iter::once(base.clone()).chain(numbered.chain(random).filter_map(move |suffix| {
        // Cut the base so that the suffix fits in a username.
        let room = crate::domain::USERNAME_MAX - suffix.chars().count() - 1;
        let stem: String = base.as_str().chars().take(room).collect();
        Username::parse(&format!("{}-{suffix}", stem.trim_end())).ok()
    }))
}

/// Creates a member for a first sign-in and links the identity, in one transaction with its
/// audit entry. The name is `wanted`, or the first free variant of it (`alice-2`, …): never an
/// existing member's account. `role` is the new member's role, except that the very first
/// member of the wiki becomes its admin when `first_is_admin`.
#[tracing::instrument(skip_all, fields(user.name = %wanted.as_str()))]
pub async fn sign_up<C: TransactionTrait + ConnectionTrait>(
    db: &C,
    issuer: &str,
    subject: &str,
    wanted: &Username,
    role: Role,
    first_is_admin: bool,
    how: &str,
) -> Result<SignUp, DbErr> {
    let txn = db.begin().await?;
    let mut created = None;
    for name in candidates(wanted) {
        // No password: this member signs in through the provider (an empty hash never verifies).
        match user::create(&txn, &name, "", role).await {
            Ok(member) => {
                created = Some(member);
                break;
            }
            Err(CreateUserError::UsernameTaken | CreateUserError::LooksLikeAnother) => continue,
            Err(CreateUserError::Db(err)) => return Err(err),
        }
    }
    let Some(mut member) = created else {
        return Err(DbErr::Custom(format!("no free username like {:?}", wanted.as_str())));
    };
    if first_is_admin && member.role() != Role::Admin && user::first_id(&txn).await? == Some(member.id) {
        user::set_role(&txn, member.id, Role::Admin).await?;
        member.role = Role::Admin.as_str().to_owned();
        tracing::info!(user.id = member.id, "the first member is admin");
    }
    // In a savepoint: a concurrent first sign-in of the same identity may have won.
    let attempt = txn.begin().await?;
    match new_link(member.id, issuer, subject).insert(&attempt).await {
        Ok(link) => {
            attempt.commit().await?;
            let actor = Actor::Member { id: member.id, name: member.username.clone(), address: None };
            audit::record(
                &txn,
                &actor,
                Action::UserAdd,
                &member.username,
                &format!("role {}, {how}", member.role),
            )
            .await?;
            txn.commit().await?;
            Ok(SignUp::Created(member, link))
        }
        Err(err) if is_unique_violation(&err) => {
            attempt.rollback().await?;
            txn.rollback().await?;
            match find(db, issuer, subject).await? {
                Some((link, member)) => Ok(SignUp::Existing(member, link)),
                None => Err(err),
            }
        }
        Err(err) => Err(err),
    }
}

/// Why an identity could not be linked to a member.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("This account is already linked to another member.")]
    Taken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Links an identity to a member who is signed in (an explicit step from their profile), with
/// its audit entry. Linking one already theirs changes nothing.
pub async fn link<C: TransactionTrait>(
    db: &C,
    member: &user::Model,
    issuer: &str,
    subject: &str,
    actor: &Actor,
    how: &str,
) -> Result<(), LinkError> {
    let txn = db.begin().await?;
    let attempt = txn.begin().await?;
    match new_link(member.id, issuer, subject).insert(&attempt).await {
        Ok(_) => {
            attempt.commit().await?;
            audit::record(&txn, actor, Action::IdentityLink, &member.username, how).await?;
            txn.commit().await?;
            Ok(())
        }
        Err(err) if is_unique_violation(&err) => {
            attempt.rollback().await?;
            match find(&txn, issuer, subject).await? {
                Some((_, owner)) if owner.id == member.id => Ok(()),
                _ => Err(LinkError::Taken),
            }
        }
        Err(err) => Err(err.into()),
    }
}

/// Removes a member's identities at one issuer, with the audit entry; returns how many went.
pub async fn unlink<C: TransactionTrait>(
    db: &C,
    member: &user::Model,
    issuer: &str,
    actor: &Actor,
    how: &str,
) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let removed = Entity::delete_many()
        .filter(Column::UserId.eq(member.id))
        .filter(Column::Issuer.eq(issuer))
        .exec(&txn)
        .await?
        .rows_affected;
    if removed > 0 {
        audit::record(&txn, actor, Action::IdentityUnlink, &member.username, how).await?;
    }
    txn.commit().await?;
    Ok(removed)
}

//! The audit log: who changed what in the running of the wiki. Each entry is written in the
//! transaction of the change it records; nothing in Quire edits or deletes one.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::now_ms;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub at: i64,
    pub actor_id: Option<i32>,
    /// The acting member's name when it happened, or "command line".
    pub actor_name: String,
    pub action: String,
    pub target: String,
    pub details: String,
    /// The client's address, for what was done on the web.
    pub address: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Who did it: a member in the web interface, or someone at the command line.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A member on the web, from a client address.
    Member {
        id: i32,
        name: String,
        address: Option<String>,
    },
    CommandLine,
}

impl Actor {
    pub const COMMAND_LINE: &'static str = "command line";

    pub fn id(&self) -> Option<i32> {
        match self {
            Self::Member { id, .. } => Some(*id),
            Self::CommandLine => None,
        }
    }

    pub fn address(&self) -> Option<&str> {
        match self {
            Self::Member { address, .. } => address.as_deref(),
            Self::CommandLine => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Self::Member { name, .. } => name,
            Self::CommandLine => Self::COMMAND_LINE,
        }
    }
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Setting,
    Role,
    Block,
    Unblock,
    InviteCreate,
    InviteRevoke,
    UserAdd,
    UserDelete,
    PageDelete,
    PageRestore,
    PasswordReset,
    /// A member linked an account at an identity provider to theirs.
    IdentityLink,
    /// A member removed such a link.
    IdentityUnlink,
    /// A file of a page deleted (the target is the page, the detail the file's name).
    FileDelete,
    FileRestore,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setting => "setting",
            Self::Role => "role",
            Self::Block => "block",
            Self::Unblock => "unblock",
            Self::InviteCreate => "invite_create",
            Self::InviteRevoke => "invite_revoke",
            Self::UserAdd => "user_add",
            Self::UserDelete => "user_delete",
            Self::PageDelete => "page_delete",
            Self::PageRestore => "page_restore",
            Self::PasswordReset => "password_reset",
            Self::IdentityLink => "identity_link",
            Self::IdentityUnlink => "identity_unlink",
            Self::FileDelete => "file_delete",
            Self::FileRestore => "file_restore",
        }
    }
}

/// Cuts a value to what its column holds, on a character boundary.
fn fit(value: &str, max_chars: usize) -> String {
    value.chars().take(max_chars).collect()
}

/// Appends an entry, in the caller's transaction.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    action: Action,
    target: &str,
    details: &str,
) -> Result<(), DbErr> {
    let entry = ActiveModel {
        at: Set(now_ms()),
        actor_id: Set(actor.id()),
        actor_name: Set(fit(actor.name(), 64)),
        action: Set(action.as_str().to_owned()),
        target: Set(fit(target, 255)),
        details: Set(fit(details, 500)),
        address: Set(actor.address().map(|a| fit(a, 64))),
        ..Default::default()
    };
    Entity::insert(entry).exec_without_returning(db).await?;
    Ok(())
}

/// One screen of the log, newest first, and whether an older screen exists.
pub async fn screen<C: ConnectionTrait>(
    db: &C,
    number: u64,
    per_page: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    let mut rows = Entity::find()
        .order_by_desc(Column::Id)
        .offset((number.max(1) - 1) * per_page)
        .limit(per_page + 1)
        .all(db)
        .await?;
    let has_next = rows.len() as u64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, has_next))
}

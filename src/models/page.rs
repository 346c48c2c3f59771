//! Wiki pages: the seed's `pages` table (title, content, author) plus the HTML rendered at save,
//! the current revision, and soft deletion. Every change is one transaction that also writes
//! the revision, the links and the search index, so they never disagree.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect, TransactionSession, TransactionTrait};

use super::link::{self, old_title};
use super::{is_unique_violation, now_ms, revision, search};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    #[sea_orm(unique)]
    pub title: String,
    pub content: String,
    /// `markdown` for pages written in Quire, `html` for pages brought from the Flask wiki.
    pub format: String,
    /// The sanitized HTML, rendered when the page was saved.
    pub html: String,
    pub author_id: Option<i32>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The current revision: saves are conditional on it.
    pub revision_id: Option<i32>,
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::AuthorId",
        to = "super::user::Column::Id",
        on_delete = "SetNull"
    )]
    Author,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Author.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

pub const FORMAT_MARKDOWN: &str = "markdown";
pub const FORMAT_HTML: &str = "html";

/// Why a page could not be created or renamed.
#[derive(Debug, thiserror::Error)]
pub enum CreatePageError {
    #[error("A page with this title already exists.")]
    TitleTaken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A new page, its HTML already rendered and sanitized.
pub struct NewPage<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub format: &'a str,
    pub html: &'a str,
    pub author_id: Option<i32>,
    pub links: &'a [String],
}

fn size_of(content: &str) -> i32 {
    i32::try_from(content.len()).unwrap_or(i32::MAX)
}

/// A revision to insert: the text, its HTML, and who saved it why.
struct NewRevision<'a> {
    page_id: i32,
    content: &'a str,
    format: &'a str,
    html: &'a str,
    summary: &'a str,
    author_id: Option<i32>,
}

async fn add_revision<C: ConnectionTrait>(
    txn: &C,
    new: NewRevision<'_>,
    now: i64,
) -> Result<revision::Model, DbErr> {
    revision::ActiveModel {
        page_id: Set(new.page_id),
        content: Set(new.content.to_owned()),
        format: Set(new.format.to_owned()),
        html: Set(Some(new.html.to_owned())),
        summary: Set(new.summary.to_owned()),
        author_id: Set(new.author_id),
        created_at: Set(now),
        size: Set(size_of(new.content)),
        ..Default::default()
    }
    .insert(txn)
    .await
}

/// Inserts a page with its first revision; the unique index decides between two pages of one
/// title. A title that used to belong to a renamed page is taken over by the new page.
#[tracing::instrument(skip_all, fields(page.title = %new.title))]
pub async fn create<C: TransactionTrait>(db: &C, new: NewPage<'_>) -> Result<Model, CreatePageError> {
    let txn = db.begin().await?;
    let now = now_ms();
    old_title::Entity::delete_many().filter(old_title::Column::Title.eq(new.title)).exec(&txn).await?;
    let page = ActiveModel {
        title: Set(new.title.to_owned()),
        content: Set(new.content.to_owned()),
        format: Set(new.format.to_owned()),
        html: Set(new.html.to_owned()),
        author_id: Set(new.author_id),
        created_at: Set(now),
        updated_at: Set(now),
        revision_id: Set(None),
        deleted_at: Set(None),
        ..Default::default()
    };
    let page = match page.insert(&txn).await {
        Ok(page) => page,
        Err(err) if is_unique_violation(&err) => return Err(CreatePageError::TitleTaken),
        Err(err) => return Err(err.into()),
    };
    let first = add_revision(
        &txn,
        NewRevision {
            page_id: page.id,
            content: new.content,
            format: new.format,
            html: new.html,
            summary: "Created",
            author_id: new.author_id,
        },
        now,
    )
    .await?;
    Entity::update_many()
        .col_expr(Column::RevisionId, Expr::value(first.id))
        .filter(Column::Id.eq(page.id))
        .exec(&txn)
        .await?;
    link::replace(&txn, page.id, new.links).await?;
    search::index_page(&txn, page.id, new.title, &search::text_of(new.content, new.format)).await?;
    txn.commit().await?;
    Ok(Model { revision_id: Some(first.id), ..page })
}

/// An edit to save on top of revision `base`.
pub struct Edit<'a> {
    pub page_id: i32,
    pub base: i32,
    pub content: &'a str,
    pub format: &'a str,
    pub html: &'a str,
    pub links: &'a [String],
    pub summary: &'a str,
    pub author_id: Option<i32>,
}

/// What a conditional save did.
#[derive(Debug)]
pub enum Saved {
    /// The new revision.
    Revision(revision::Model),
    /// The page moved past `base` meanwhile (or was deleted): nothing was written.
    Moved,
}

/// Saves a new revision only if the page is still at `edit.base` — across instances too, since
/// the condition is in the UPDATE itself. The page row is updated (and so locked) before the
/// revision is inserted: inserting first would take a shared lock through the foreign key, and
/// two concurrent saves would deadlock on MySQL.
#[tracing::instrument(skip_all, fields(page.id = edit.page_id))]
pub async fn save<C: TransactionTrait>(db: &C, edit: Edit<'_>) -> Result<Saved, DbErr> {
    let txn = db.begin().await?;
    let now = now_ms();
    let updated = Entity::update_many()
        .col_expr(Column::Content, Expr::value(edit.content))
        .col_expr(Column::Format, Expr::value(edit.format))
        .col_expr(Column::Html, Expr::value(edit.html))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(edit.page_id))
        .filter(Column::RevisionId.eq(edit.base))
        .filter(Column::DeletedAt.is_null())
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(Saved::Moved);
    }
    let rev = add_revision(
        &txn,
        NewRevision {
            page_id: edit.page_id,
            content: edit.content,
            format: edit.format,
            html: edit.html,
            summary: edit.summary,
            author_id: edit.author_id,
        },
        now,
    )
    .await?;
    Entity::update_many()
        .col_expr(Column::RevisionId, Expr::value(rev.id))
        .filter(Column::Id.eq(edit.page_id))
        .exec(&txn)
        .await?;
    link::replace(&txn, edit.page_id, edit.links).await?;
    let title: Option<String> =
        Entity::find_by_id(edit.page_id).select_only().column(Column::Title).into_tuple().one(&txn).await?;
    let text = search::text_of(edit.content, edit.format);
    search::index_page(&txn, edit.page_id, &title.unwrap_or_default(), &text).await?;
    txn.commit().await?;
    Ok(Saved::Revision(rev))
}

/// Renames a page; the old title keeps redirecting to it, and the history records the move.
#[tracing::instrument(skip_all, fields(page.id = page.id))]
pub async fn rename<C: TransactionTrait>(
    db: &C,
    page: &Model,
    new_title: &str,
    actor: i32,
) -> Result<(), CreatePageError> {
    let txn = db.begin().await?;
    let now = now_ms();
    old_title::Entity::delete_many().filter(old_title::Column::Title.eq(new_title)).exec(&txn).await?;
    let renamed = Entity::update_many()
        .col_expr(Column::Title, Expr::value(new_title))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(page.id))
        .exec(&txn)
        .await;
    match renamed {
        Ok(_) => {}
        Err(err) if is_unique_violation(&err) => return Err(CreatePageError::TitleTaken),
        Err(err) => return Err(err.into()),
    }
    old_title::Entity::insert(old_title::ActiveModel {
        title: Set(page.title.clone()),
        page_id: Set(page.id),
    })
    .exec(&txn)
    .await?;
    let summary = format!("Renamed from “{}” to “{new_title}”", page.title);
    let summary: String = summary.chars().take(200).collect();
    let rev = add_revision(
        &txn,
        NewRevision {
            page_id: page.id,
            content: &page.content,
            format: &page.format,
            html: &page.html,
            summary: &summary,
            author_id: Some(actor),
        },
        now,
    )
    .await?;
    Entity::update_many()
        .col_expr(Column::RevisionId, Expr::value(rev.id))
        .filter(Column::Id.eq(page.id))
        .exec(&txn)
        .await?;
    search::index_page(&txn, page.id, new_title, &search::text_of(&page.content, &page.format)).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes (softly) or restores a page, with its audit-log entry in the same transaction.
pub async fn set_deleted<C: TransactionTrait>(
    db: &C,
    page: &Model,
    deleted: bool,
    actor: &super::audit::Actor,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    Entity::update_many()
        .col_expr(Column::DeletedAt, Expr::value(deleted.then(now_ms)))
        .filter(Column::Id.eq(page.id))
        .exec(&txn)
        .await?;
    if deleted {
        search::remove(&txn, page.id).await?;
    } else {
        search::index_page(&txn, page.id, &page.title, &search::text_of(&page.content, &page.format)).await?;
    }
    let action = if deleted { super::audit::Action::PageDelete } else { super::audit::Action::PageRestore };
    super::audit::record(&txn, actor, action, &page.title, "").await?;
    txn.commit().await?;
    Ok(())
}

/// A page with its author's username, as the view shows it.
#[derive(Debug, Clone)]
pub struct PageView {
    pub page: Model,
    pub author: Option<String>,
}

/// The live page with exactly this title and its author, in one query.
#[tracing::instrument(skip_all, fields(page.title = %title))]
pub async fn find_with_author<C: ConnectionTrait>(db: &C, title: &str) -> Result<Option<PageView>, DbErr> {
    find_including_deleted(db, title).await.map(|found| found.filter(|view| view.page.deleted_at.is_none()))
}

/// The page with this title, deleted or not.
pub async fn find_including_deleted<C: ConnectionTrait>(
    db: &C,
    title: &str,
) -> Result<Option<PageView>, DbErr> {
    let found =
        Entity::find().filter(Column::Title.eq(title)).find_also_related(super::user::Entity).one(db).await?;
    Ok(found.map(|(page, author)| PageView { page, author: author.map(|user| user.username) }))
}

/// One screen of the alphabetical index, and whether there is a next one.
pub struct TitlePage {
    pub titles: Vec<String>,
    pub has_next: bool,
}

/// The titles of page `number` (from 1) of the alphabetical index, `per_page` at a time.
pub async fn list_titles<C: ConnectionTrait>(db: &C, number: u64, per_page: u64) -> Result<TitlePage, DbErr> {
    let mut titles: Vec<String> = Entity::find()
        .select_only()
        .column(Column::Title)
        .filter(Column::DeletedAt.is_null())
        .order_by_asc(Column::Title)
        .offset(number.saturating_sub(1).saturating_mul(per_page))
        .limit(per_page + 1)
        .into_tuple()
        .all(db)
        .await?;
    let has_next = titles.len() as u64 > per_page;
    titles.truncate(usize::try_from(per_page).unwrap_or(usize::MAX));
    Ok(TitlePage { titles, has_next })
}

/// The titles of the pages a member wrote, alphabetically (the users → pages relation).
pub async fn titles_by_author<C: ConnectionTrait>(
    db: &C,
    author: &super::user::Model,
) -> Result<Vec<String>, DbErr> {
    author
        .find_related(Entity)
        .select_only()
        .column(Column::Title)
        .filter(Column::DeletedAt.is_null())
        .order_by_asc(Column::Title)
        .into_tuple()
        .all(db)
        .await
}

/// Deleted pages, most recently deleted first: (title, when), for admins to restore.
pub async fn deleted<C: ConnectionTrait>(db: &C) -> Result<Vec<(String, i64)>, DbErr> {
    let rows: Vec<(String, Option<i64>)> = Entity::find()
        .select_only()
        .column(Column::Title)
        .column(Column::DeletedAt)
        .filter(Column::DeletedAt.is_not_null())
        .order_by_desc(Column::DeletedAt)
        .order_by_asc(Column::Title)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(title, at)| (title, at.unwrap_or_default())).collect())
}

/// The titles of deleted pages (for admins to restore).
pub async fn deleted_titles<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Title)
        .filter(Column::DeletedAt.is_not_null())
        .order_by_asc(Column::Title)
        .into_tuple()
        .all(db)
        .await
}

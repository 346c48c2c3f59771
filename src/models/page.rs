//! Wiki pages: the seed's `pages` table (title, content, author) plus the HTML rendered at save.

use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::{is_unique_violation, now_ms};

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

/// Why a page could not be created.
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
}

/// Inserts a page; the unique index decides between two pages of one title.
#[tracing::instrument(skip_all, fields(page.title = %new.title))]
pub async fn create<C: ConnectionTrait>(db: &C, new: NewPage<'_>) -> Result<Model, CreatePageError> {
    let now = now_ms();
    let page = ActiveModel {
        title: Set(new.title.to_owned()),
        content: Set(new.content.to_owned()),
        format: Set(new.format.to_owned()),
        html: Set(new.html.to_owned()),
        author_id: Set(new.author_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    match page.insert(db).await {
        Ok(page) => Ok(page),
        Err(err) if is_unique_violation(&err) => Err(CreatePageError::TitleTaken),
        Err(err) => Err(err.into()),
    }
}

/// A page with its author's username, as the view shows it.
#[derive(Debug, Clone)]
pub struct PageView {
    pub page: Model,
    pub author: Option<String>,
}

/// The page with exactly this title and its author, in one query.
#[tracing::instrument(skip_all, fields(page.title = %title))]
pub async fn find_with_author<C: ConnectionTrait>(db: &C, title: &str) -> Result<Option<PageView>, DbErr> {
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
        .order_by_asc(Column::Title)
        .into_tuple()
        .all(db)
        .await
}

//! Revisions: every save of a page, with its author, time, summary and size.

use sea_orm::entity::prelude::*;
use sea_orm::{FromQueryResult, JoinType, QueryOrder, QuerySelect};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revisions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub page_id: i32,
    pub content: String,
    pub format: String,
    pub summary: String,
    pub author_id: Option<i32>,
    pub created_at: i64,
    /// Size of the content in bytes.
    pub size: i32,
    /// The sanitized HTML, stored at save; `None` for revisions saved before it was kept,
    /// until their first view.
    pub html: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::page::Entity", from = "Column::PageId", to = "super::page::Column::Id")]
    Page,
    #[sea_orm(belongs_to = "super::user::Entity", from = "Column::AuthorId", to = "super::user::Column::Id")]
    Author,
}

impl Related<super::page::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Page.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Author.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A revision as lists show it: no content, with the page title and author name.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Entry {
    pub id: i32,
    pub page_id: i32,
    pub title: String,
    pub summary: String,
    pub author: Option<String>,
    pub created_at: i64,
    pub size: i32,
}

fn entries() -> Select<Entity> {
    Entity::find()
        .select_only()
        .column(Column::Id)
        .column(Column::PageId)
        .column_as(super::page::Column::Title, "title")
        .column(Column::Summary)
        .column_as(super::user::Column::Username, "author")
        .column(Column::CreatedAt)
        .column(Column::Size)
        .join(JoinType::InnerJoin, Relation::Page.def())
        .join(JoinType::LeftJoin, Relation::Author.def())
}

/// The revisions of one page, newest first: `limit` of them from `offset`.
pub async fn history<C: ConnectionTrait>(
    db: &C,
    page_id: i32,
    offset: u64,
    limit: u64,
) -> Result<Vec<Entry>, DbErr> {
    entries()
        .filter(Column::PageId.eq(page_id))
        .order_by_desc(Column::Id)
        .offset(offset)
        .limit(limit)
        .into_model::<Entry>()
        .all(db)
        .await
}

/// Recent changes across the wiki (pages not deleted), newest first.
pub async fn recent<C: ConnectionTrait>(db: &C, offset: u64, limit: u64) -> Result<Vec<Entry>, DbErr> {
    entries()
        .filter(super::page::Column::DeletedAt.is_null())
        .order_by_desc(Column::Id)
        .offset(offset)
        .limit(limit)
        .into_model::<Entry>()
        .all(db)
        .await
}

/// A member's contributions, newest first.
pub async fn by_author<C: ConnectionTrait>(db: &C, author_id: i32, limit: u64) -> Result<Vec<Entry>, DbErr> {
    entries()
        .filter(Column::AuthorId.eq(author_id))
        .filter(super::page::Column::DeletedAt.is_null())
        .order_by_desc(Column::Id)
        .limit(limit)
        .into_model::<Entry>()
        .all(db)
        .await
}

/// Stores the HTML of a revision saved before revisions kept theirs (once: a revision never
/// changes, so a concurrent fill writes the same).
pub async fn fill_html<C: ConnectionTrait>(db: &C, id: i32, html: &str) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Html, Expr::value(html))
        .filter(Column::Id.eq(id))
        .filter(Column::Html.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// One revision of one page (a revision id of another page is not found).
pub async fn find<C: ConnectionTrait>(db: &C, page_id: i32, id: i32) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).filter(Column::PageId.eq(page_id)).one(db).await
}

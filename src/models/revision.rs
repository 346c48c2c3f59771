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

/// What happened to a page, as recent changes list it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A revision was saved (`id` is the revision's).
    Revision,
    /// The page was deleted (`id` is the audit entry's).
    Deleted,
    /// The page was restored.
    Restored,
    /// A file was attached (`id` is the version's; `summary` the file's name).
    Uploaded,
    /// A file was deleted (`id` is the audit entry's; `summary` the file's name).
    FileDeleted,
    /// A file was restored.
    FileRestored,
}

/// One line of recent changes: a revision (with its size and the size before it) or a
/// deletion or restoration of a page.
#[derive(Debug, Clone)]
pub struct RecentChange {
    pub kind: ChangeKind,
    pub id: i32,
    pub title: String,
    pub summary: String,
    pub author: Option<String>,
    pub at: i64,
    /// The revision's size in bytes, and its page's previous revision's (none: the first).
    pub size: Option<i32>,
    /// The page's revision before this one, and its size (none: this is the first).
    pub previous_id: Option<i32>,
    pub previous_size: Option<i32>,
}

#[derive(Debug, FromQueryResult)]
struct RecentRow {
    kind: i32,
    id: i32,
    title: String,
    summary: String,
    author: Option<String>,
    at: i64,
    size: Option<i32>,
    previous_id: Option<i32>,
    previous_size: Option<i32>,
}

/// Recent changes across the wiki, newest first: revisions of live pages, deletions and
/// restorations (from the audit log), `limit` of them from `offset`. Each side reads at most
/// `offset + limit` rows by its index before they are merged by time.
pub async fn recent_changes<C: ConnectionTrait>(
    db: &C,
    offset: u64,
    limit: u64,
) -> Result<Vec<RecentChange>, DbErr> {
    let window = offset.saturating_add(limit);
    // Plain SQL that all three backends read alike: no identifier needs quoting, and the only
    // values are the two bounds.
    let sql = format!(
        "SELECT kind, id, title, summary, author, at, size, previous_id, previous_size FROM ( \
           SELECT * FROM ( \
             SELECT 0 AS kind, r.id AS id, p.title AS title, r.summary AS summary, \
                    u.username AS author, r.created_at AS at, r.size AS size, \
                    (SELECT r2.id FROM revisions r2 WHERE r2.page_id = r.page_id AND r2.id < r.id \
                     ORDER BY r2.id DESC LIMIT 1) AS previous_id, \
                    (SELECT r3.size FROM revisions r3 WHERE r3.page_id = r.page_id AND r3.id < r.id \
                     ORDER BY r3.id DESC LIMIT 1) AS previous_size \
             FROM revisions r JOIN pages p ON p.id = r.page_id LEFT JOIN users u ON u.id = r.author_id \
             WHERE p.deleted_at IS NULL ORDER BY r.id DESC LIMIT {window} \
           ) rv \
           UNION ALL \
           SELECT * FROM ( \
             SELECT CASE WHEN a.action = 'page_delete' THEN 1 ELSE 2 END AS kind, a.id AS id, \
                    a.target AS title, '' AS summary, a.actor_name AS author, a.at AS at, \
                    CAST(NULL AS INTEGER) AS size, CAST(NULL AS INTEGER) AS previous_id, \
                    CAST(NULL AS INTEGER) AS previous_size \
             FROM audit_log a WHERE a.action IN ('page_delete', 'page_restore') \
             ORDER BY a.id DESC LIMIT {window} \
           ) ev \
           UNION ALL \
           SELECT * FROM ( \
             SELECT 3 AS kind, v.id AS id, p.title AS title, f.name AS summary, \
                    v.uploader_name AS author, v.created_at AS at, \
                    CAST(NULL AS INTEGER) AS size, CAST(NULL AS INTEGER) AS previous_id, \
                    CAST(NULL AS INTEGER) AS previous_size \
             FROM attachment_versions v JOIN attachments f ON f.id = v.attachment_id \
             JOIN pages p ON p.id = f.page_id WHERE p.deleted_at IS NULL \
             ORDER BY v.id DESC LIMIT {window} \
           ) up \
           UNION ALL \
           SELECT * FROM ( \
             SELECT CASE WHEN a.action = 'file_delete' THEN 4 ELSE 5 END AS kind, a.id AS id, \
                    a.target AS title, a.details AS summary, a.actor_name AS author, a.at AS at, \
                    CAST(NULL AS INTEGER) AS size, CAST(NULL AS INTEGER) AS previous_id, \
                    CAST(NULL AS INTEGER) AS previous_size \
             FROM audit_log a WHERE a.action IN ('file_delete', 'file_restore') \
             ORDER BY a.id DESC LIMIT {window} \
           ) fe \
         ) c ORDER BY at DESC, kind DESC, id DESC LIMIT {limit} OFFSET {offset}"
    );
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DatabaseBackend::MySql {
        // MySQL casts to SIGNED, not INTEGER.
        sql.replace("CAST(NULL AS INTEGER)", "CAST(NULL AS SIGNED)")
    } else {
        sql
    };
    let rows = RecentRow::find_by_statement(sea_orm::Statement::from_string(backend, sql)).all(db).await?;
    Ok(rows
        .into_iter()
        .map(|row| RecentChange {
            kind: match row.kind {
                0 => ChangeKind::Revision,
                1 => ChangeKind::Deleted,
                2 => ChangeKind::Restored,
                3 => ChangeKind::Uploaded,
                4 => ChangeKind::FileDeleted,
                _ => ChangeKind::FileRestored,
            },
            id: row.id,
            title: row.title,
            summary: row.summary,
            author: row.author,
            at: row.at,
            size: row.size,
            previous_id: row.previous_id,
            previous_size: row.previous_size,
        })
        .collect())
}

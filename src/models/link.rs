//! Wiki links between pages (`[[Title]]`) and the old titles of renamed pages.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr as SqExpr, ExprTrait, Query};
use sea_orm::{ActiveValue::Set, Condition, FromQueryResult, QueryOrder, QuerySelect, QueryTrait};

/// `links`: page `from_page_id` links to the title `to_title` (which may not exist).
pub mod wiki_link {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub from_page_id: i32,
        #[sea_orm(primary_key, auto_increment = false)]
        pub to_title: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::models::page::Entity",
            from = "Column::FromPageId",
            to = "crate::models::page::Column::Id"
        )]
        From,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// `page_titles`: a title a page had before a rename; it redirects to the page.
pub mod old_title {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "page_titles")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub title: String,
        pub page_id: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::models::page::Entity",
            from = "Column::PageId",
            to = "crate::models::page::Column::Id"
        )]
        Page,
    }

    impl ActiveModelBehavior for ActiveModel {}
}

use std::collections::HashSet;

use super::page;

/// Replaces the outgoing links of a page.
pub async fn replace<C: ConnectionTrait>(db: &C, page_id: i32, titles: &[String]) -> Result<(), DbErr> {
    wiki_link::Entity::delete_many().filter(wiki_link::Column::FromPageId.eq(page_id)).exec(db).await?;
    if titles.is_empty() {
        return Ok(());
    }
    let rows = titles
        .iter()
        .map(|title| wiki_link::ActiveModel { from_page_id: Set(page_id), to_title: Set(title.clone()) });
    wiki_link::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

/// The titles this page links to that lead nowhere: no live page, no old title of one.
pub async fn missing_targets<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<Vec<String>, DbErr> {
    missing_query(page_id).into_tuple().all(db).await
}

fn missing_query(page_id: i32) -> Select<wiki_link::Entity> {
    let live = Query::select()
        .expr(SqExpr::val(1))
        .from(page::Entity)
        .and_where(
            SqExpr::col((page::Entity, page::Column::Title))
                .equals((wiki_link::Entity, wiki_link::Column::ToTitle)),
        )
        .and_where(SqExpr::col((page::Entity, page::Column::DeletedAt)).is_null())
        .to_owned();
    let renamed = Query::select()
        .expr(SqExpr::val(1))
        .from(old_title::Entity)
        .and_where(
            SqExpr::col((old_title::Entity, old_title::Column::Title))
                .equals((wiki_link::Entity, wiki_link::Column::ToTitle)),
        )
        .to_owned();
    wiki_link::Entity::find()
        .select_only()
        .column_as(wiki_link::Column::ToTitle, "title")
        .filter(wiki_link::Column::FromPageId.eq(page_id))
        .filter(Condition::all().add(SqExpr::exists(live).not()).add(SqExpr::exists(renamed).not()))
}

/// Which of `titles` lead nowhere (no live page, no old title of one): what a preview marks
/// missing before the page is saved.
pub async fn missing_among<C: ConnectionTrait>(db: &C, titles: &[String]) -> Result<Vec<String>, DbErr> {
    if titles.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: HashSet<String> = HashSet::new();
    // In slices, so that no statement carries more parameters than a backend accepts.
    for chunk in titles.chunks(500) {
        let live: Vec<String> = page::Entity::find()
            .select_only()
            .column(page::Column::Title)
            .filter(page::Column::Title.is_in(chunk.iter().cloned()))
            .filter(page::Column::DeletedAt.is_null())
            .into_tuple()
            .all(db)
            .await?;
        found.extend(live);
        let renamed: Vec<String> = old_title::Entity::find()
            .select_only()
            .column(old_title::Column::Title)
            .filter(old_title::Column::Title.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(renamed);
    }
    Ok(titles.iter().filter(|title| !found.contains(*title)).cloned().collect())
}

/// The titles of live pages linking to a page, by its title or one of its old titles.
pub async fn backlinks<C: ConnectionTrait>(db: &C, page_id: i32, title: &str) -> Result<Vec<String>, DbErr> {
    backlinks_query(page_id, title).into_tuple().all(db).await
}

/// What a page view needs of the links: (titles this page links to that are missing, titles of
/// the pages linking here), in one round trip.
pub async fn for_view<C: ConnectionTrait>(
    db: &C,
    page_id: i32,
    title: &str,
) -> Result<(Vec<String>, Vec<String>), DbErr> {
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        kind: i32,
        title: String,
    }
    let mut missing = missing_query(page_id).into_query();
    missing.expr_as(SqExpr::val(0), "kind");
    let mut backlinks = backlinks_query(page_id, title).into_query();
    backlinks.expr_as(SqExpr::val(1), "kind");
    backlinks.clear_order_by();
    let query = Query::select()
        .column(sea_orm::sea_query::Asterisk)
        .from_subquery(missing.union(sea_orm::sea_query::UnionType::All, backlinks).to_owned(), "l")
        .order_by("kind", sea_orm::Order::Asc)
        .order_by("title", sea_orm::Order::Asc)
        .to_owned();
    let rows = Row::find_by_statement(db.get_database_backend().build(&query)).all(db).await?;
    let (mut missing, mut backlinks) = (Vec::new(), Vec::new());
    for row in rows {
        if row.kind == 0 { missing.push(row.title) } else { backlinks.push(row.title) }
    }
    Ok((missing, backlinks))
}

fn backlinks_query(page_id: i32, title: &str) -> Select<page::Entity> {
    let old = Query::select()
        .column(old_title::Column::Title)
        .from(old_title::Entity)
        .and_where(SqExpr::col(old_title::Column::PageId).eq(page_id))
        .to_owned();
    page::Entity::find()
        .select_only()
        .column(page::Column::Title)
        .distinct()
        .join(sea_orm::JoinType::InnerJoin, wiki_link::Relation::From.def().rev())
        .filter(
            Condition::any()
                .add(wiki_link::Column::ToTitle.eq(title))
                .add(wiki_link::Column::ToTitle.in_subquery(old)),
        )
        .filter(page::Column::Id.ne(page_id))
        .filter(page::Column::DeletedAt.is_null())
        .order_by_asc(page::Column::Title)
}

/// The old titles of a page.
pub async fn old_titles<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<Vec<String>, DbErr> {
    old_title::Entity::find()
        .select_only()
        .column(old_title::Column::Title)
        .filter(old_title::Column::PageId.eq(page_id))
        .into_tuple()
        .all(db)
        .await
}

/// The current title of the page that once had `title`, if it was renamed.
pub async fn renamed_to<C: ConnectionTrait>(db: &C, title: &str) -> Result<Option<String>, DbErr> {
    page::Entity::find()
        .select_only()
        .column(page::Column::Title)
        .join(sea_orm::JoinType::InnerJoin, old_title::Relation::Page.def().rev())
        .filter(old_title::Column::Title.eq(title))
        .filter(page::Column::DeletedAt.is_null())
        .into_tuple()
        .one(db)
        .await
}

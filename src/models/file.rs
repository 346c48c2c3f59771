//! Files in the database (migration m0017): content stored once per SHA-256 in chunks of
//! [`CHUNK_SIZE`], attachments of pages and their versions, image previews.
//!
//! An upload streams through a [`BlobWriter`]: its chunks are inserted as they arrive, under a
//! staging key, inside one transaction; when the last byte is in, the content's hash names
//! them (or, when that content is stored already, they are dropped). Nothing is visible before
//! the commit, and an upload that breaks, is too large or is refused rolls the whole
//! transaction back: no row, not even a partial chunk, is left. Reading goes chunk by chunk
//! ([`read_chunk`]): no file is ever held whole in memory.

use sea_orm::entity::prelude::*;
use sea_orm::sea_query::Expr as SqExpr;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, FromQueryResult, QueryOrder, QuerySelect,
    TransactionTrait,
};
use sha2::{Digest, Sha256};

use super::{is_unique_violation, now_ms};

/// The size of every chunk but a file's last.
pub const CHUNK_SIZE: usize = 256 * 1024;
/// How much of an upload's start is kept to tell its type.
const HEAD_BYTES: usize = 8 * 1024;

pub mod blob {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hash: String,
        pub size: i64,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod chunk {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "blob_chunks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub hash: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i32,
        pub data: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod attachment {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attachments")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub page_id: i32,
        pub name: String,
        pub created_at: i64,
        pub deleted_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "attachment_versions")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i32,
        pub attachment_id: i32,
        pub version: i32,
        pub blob_hash: String,
        pub size: i64,
        pub content_type: String,
        /// 1 when the file is a PNG, JPEG, GIF or WebP image that decodes as one and is shown
        /// inline; 0 for everything else (served as a download).
        pub inline_image: i32,
        pub width: Option<i32>,
        pub height: Option<i32>,
        pub uploader_id: Option<i32>,
        pub uploader_name: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod preview {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "image_previews")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub source_hash: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub width: i32,
        pub blob_hash: String,
        pub content_type: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Content written by a [`BlobWriter`], named by its hash.
#[derive(Debug, Clone)]
pub struct Written {
    pub hash: String,
    pub size: u64,
    /// The first bytes, to tell the type by.
    pub head: Vec<u8>,
    /// The whole content, when the writer was asked to keep it and it fit.
    pub kept: Option<Vec<u8>>,
    /// True when this content was not stored before (it now counts against the quota).
    pub new: bool,
}

/// Streams content into the database inside one transaction (see the module's comment).
pub struct BlobWriter {
    txn: DatabaseTransaction,
    staging: String,
    seq: i32,
    buffer: Vec<u8>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    keep_up_to: usize,
    kept: Option<Vec<u8>>,
}

impl BlobWriter {
    /// Opens the transaction. `keep_up_to`: the content is also kept in memory while it is at
    /// most this long (an image to check), else dropped from memory as it is written.
    pub async fn begin(db: &DatabaseConnection, keep_up_to: usize) -> Result<Self, DbErr> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|err| DbErr::Custom(format!("no random bytes: {err}")))?;
        Ok(Self {
            txn: db.begin().await?,
            staging: format!("~{}", hex::encode(random)),
            seq: 0,
            buffer: Vec::with_capacity(CHUNK_SIZE),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            keep_up_to,
            kept: (keep_up_to > 0).then(Vec::new),
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first bytes written so far (up to 8 KiB).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Appends bytes; every full chunk goes to the database at once.
    pub async fn write(&mut self, mut bytes: &[u8]) -> Result<(), DbErr> {
        self.size += bytes.len() as u64;
        self.hasher.update(bytes);
        if self.head.len() < HEAD_BYTES {
            let take = bytes.len().min(HEAD_BYTES - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
        }
        if let Some(kept) = &mut self.kept {
            if kept.len() + bytes.len() <= self.keep_up_to {
                kept.extend_from_slice(bytes);
            } else {
                self.kept = None;
            }
        }
        while !bytes.is_empty() {
            let take = bytes.len().min(CHUNK_SIZE - self.buffer.len());
            self.buffer.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buffer.len() == CHUNK_SIZE {
                self.flush().await?;
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), DbErr> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_SIZE));
        chunk::ActiveModel { hash: Set(self.staging.clone()), seq: Set(self.seq), data: Set(data) }
            .insert(&self.txn)
            .await?;
        self.seq += 1;
        Ok(())
    }

    /// Names the chunks by the content's hash (or drops them when that content is stored
    /// already) and gives back the still open transaction, to record what the content is for.
    pub async fn finish(mut self) -> Result<(DatabaseTransaction, Written), DbErr> {
        self.flush().await?;
        let hash = hex::encode(self.hasher.finalize_reset());
        let size = i64::try_from(self.size).map_err(|_| DbErr::Custom("file too large".into()))?;
        let exists = blob::Entity::find_by_id(hash.clone()).one(&self.txn).await?.is_some();
        let mut new = false;
        if !exists {
            // A savepoint: another upload of the same content may commit first.
            let inner = self.txn.begin().await?;
            let inserted =
                blob::ActiveModel { hash: Set(hash.clone()), size: Set(size), created_at: Set(now_ms()) }
                    .insert(&inner)
                    .await;
            match inserted {
                Ok(_) => {
                    inner.commit().await?;
                    new = true;
                }
                Err(err) if is_unique_violation(&err) => inner.rollback().await?,
                Err(err) => return Err(err),
            }
        }
        if new {
            chunk::Entity::update_many()
                .col_expr(chunk::Column::Hash, SqExpr::value(hash.clone()))
                .filter(chunk::Column::Hash.eq(self.staging.clone()))
                .exec(&self.txn)
                .await?;
        } else {
            chunk::Entity::delete_many()
                .filter(chunk::Column::Hash.eq(self.staging.clone()))
                .exec(&self.txn)
                .await?;
        }
        let written = Written { hash, size: self.size, head: self.head, kept: self.kept, new };
        Ok((self.txn, written))
    }
}

/// Chunk `seq` of the content `hash`, or `None` past its end.
pub async fn read_chunk<C: ConnectionTrait>(db: &C, hash: &str, seq: i32) -> Result<Option<Vec<u8>>, DbErr> {
    chunk::Entity::find()
        .select_only()
        .column(chunk::Column::Data)
        .filter(chunk::Column::Hash.eq(hash))
        .filter(chunk::Column::Seq.eq(seq))
        .into_tuple::<Vec<u8>>()
        .one(db)
        .await
}

/// The bytes of all stored content (each content once), for the quota and `/admin`.
pub async fn stored_bytes<C: ConnectionTrait>(db: &C) -> Result<i64, DbErr> {
    #[derive(FromQueryResult)]
    struct Total {
        total: Option<i64>,
    }
    // SUM gives NUMERIC on PostgreSQL and DECIMAL on MySQL, whose CAST spells BIGINT SIGNED.
    let integer = match db.get_database_backend() {
        sea_orm::DatabaseBackend::MySql => "SIGNED",
        _ => "BIGINT",
    };
    let sql = format!("SELECT CAST(COALESCE(SUM(size), 0) AS {integer}) AS total FROM blobs");
    let total = Total::find_by_statement(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .one(db)
        .await?;
    Ok(total.and_then(|t| t.total).unwrap_or(0))
}

/// What an uploaded version is.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub page_id: i32,
    pub name: &'a str,
    pub content_type: &'a str,
    pub inline_image: bool,
    pub dimensions: Option<(u32, u32)>,
    pub uploader_id: i32,
    pub uploader_name: &'a str,
}

/// Records a version of `name` on the page for content just written, in the writer's
/// transaction, and commits. A name that exists (even deleted) gets a new version and is shown
/// again. Returns the version's number.
pub async fn add_version(
    txn: DatabaseTransaction,
    written: &Written,
    new: NewVersion<'_>,
) -> Result<i32, DbErr> {
    let now = now_ms();
    let existing = attachment::Entity::find()
        .filter(attachment::Column::PageId.eq(new.page_id))
        .filter(attachment::Column::Name.eq(new.name))
        .one(&txn)
        .await?;
    let attachment_id = match existing {
        Some(found) => {
            if found.deleted_at.is_some() {
                attachment::Entity::update_many()
                    .col_expr(attachment::Column::DeletedAt, SqExpr::value(Option::<i64>::None))
                    .filter(attachment::Column::Id.eq(found.id))
                    .exec(&txn)
                    .await?;
            }
            found.id
        }
        None => {
            attachment::ActiveModel {
                page_id: Set(new.page_id),
                name: Set(new.name.to_owned()),
                created_at: Set(now),
                deleted_at: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await?
            .id
        }
    };
    let last: Option<i32> = version::Entity::find()
        .select_only()
        .column_as(version::Column::Version.max(), "last")
        .filter(version::Column::AttachmentId.eq(attachment_id))
        .into_tuple::<Option<i32>>()
        .one(&txn)
        .await?
        .flatten();
    let number = last.unwrap_or(0) + 1;
    let dimension = |value: u32| i32::try_from(value).ok();
    version::ActiveModel {
        attachment_id: Set(attachment_id),
        version: Set(number),
        blob_hash: Set(written.hash.clone()),
        size: Set(i64::try_from(written.size).unwrap_or(i64::MAX)),
        content_type: Set(new.content_type.to_owned()),
        inline_image: Set(i32::from(new.inline_image)),
        width: Set(new.dimensions.and_then(|(w, _)| dimension(w))),
        height: Set(new.dimensions.and_then(|(_, h)| dimension(h))),
        uploader_id: Set(Some(new.uploader_id)),
        uploader_name: Set(new.uploader_name.to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    super::search::reindex(&txn, new.page_id).await?;
    txn.commit().await?;
    Ok(number)
}

/// An attachment with all its versions, newest first.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub attachment: attachment::Model,
    pub versions: Vec<version::Model>,
}

impl Attachment {
    /// The newest version (every attachment has one).
    pub fn latest(&self) -> Option<&version::Model> {
        self.versions.first()
    }
}

/// A page's attachments, by name; deleted ones only when `with_deleted`.
pub async fn list_for_page<C: ConnectionTrait>(
    db: &C,
    page_id: i32,
    with_deleted: bool,
) -> Result<Vec<Attachment>, DbErr> {
    let mut query = attachment::Entity::find().filter(attachment::Column::PageId.eq(page_id));
    if !with_deleted {
        query = query.filter(attachment::Column::DeletedAt.is_null());
    }
    let attachments = query.order_by_asc(attachment::Column::Name).all(db).await?;
    if attachments.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = attachments.iter().map(|a| a.id).collect();
    let mut versions = Vec::new();
    for slice in ids.chunks(500) {
        versions.extend(
            version::Entity::find()
                .filter(version::Column::AttachmentId.is_in(slice.iter().copied()))
                .order_by_desc(version::Column::Version)
                .all(db)
                .await?,
        );
    }
    Ok(attachments
        .into_iter()
        .map(|attachment| {
            let versions = versions.iter().filter(|v| v.attachment_id == attachment.id).cloned().collect();
            Attachment { attachment, versions }
        })
        .collect())
}

/// One attachment of a page by name, with its versions.
pub async fn find<C: ConnectionTrait>(db: &C, page_id: i32, name: &str) -> Result<Option<Attachment>, DbErr> {
    let Some(attachment) = attachment::Entity::find()
        .filter(attachment::Column::PageId.eq(page_id))
        .filter(attachment::Column::Name.eq(name))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let versions = version::Entity::find()
        .filter(version::Column::AttachmentId.eq(attachment.id))
        .order_by_desc(version::Column::Version)
        .all(db)
        .await?;
    Ok(Some(Attachment { attachment, versions }))
}

/// Hides (`deleted`) or shows again an attachment and all its versions (and its name in
/// search).
/// Recorded in the audit log (recent changes list it) as done by `actor` on the page `title`.
pub async fn set_deleted(
    db: &DatabaseConnection,
    found: &attachment::Model,
    deleted: bool,
    actor: &super::audit::Actor,
    title: &str,
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    let value = if deleted { Some(now_ms()) } else { None };
    attachment::Entity::update_many()
        .col_expr(attachment::Column::DeletedAt, SqExpr::value(value))
        .filter(attachment::Column::Id.eq(found.id))
        .exec(&txn)
        .await?;
    super::search::reindex(&txn, found.page_id).await?;
    let action = if deleted { super::audit::Action::FileDelete } else { super::audit::Action::FileRestore };
    super::audit::record(&txn, actor, action, title, &found.name).await?;
    txn.commit().await
}

/// The live attachments among `(page title, name)` pairs: what a page's links to files reach.
/// A page that is deleted has no live attachment.
pub async fn live_among<C: ConnectionTrait>(
    db: &C,
    wanted: &[(String, String)],
) -> Result<Vec<(String, String, version::Model)>, DbErr> {
    let mut found = Vec::new();
    let mut titles: Vec<&str> = wanted.iter().map(|(title, _)| title.as_str()).collect();
    titles.sort_unstable();
    titles.dedup();
    for title in titles {
        let Some(page_id) = super::page::Entity::find()
            .select_only()
            .column(super::page::Column::Id)
            .filter(super::page::Column::Title.eq(title))
            .filter(super::page::Column::DeletedAt.is_null())
            .into_tuple::<i32>()
            .one(db)
            .await?
        else {
            continue;
        };
        let names: Vec<&str> =
            wanted.iter().filter(|(t, _)| t == title).map(|(_, name)| name.as_str()).collect();
        for attachment in list_for_page(db, page_id, false).await? {
            if names.contains(&attachment.attachment.name.as_str())
                && let Some(latest) = attachment.latest()
            {
                found.push((title.to_owned(), attachment.attachment.name.clone(), latest.clone()));
            }
        }
    }
    Ok(found)
}

/// The names of a page's live attachments (for search).
pub async fn names_for_page<C: ConnectionTrait>(db: &C, page_id: i32) -> Result<Vec<String>, DbErr> {
    attachment::Entity::find()
        .select_only()
        .column(attachment::Column::Name)
        .filter(attachment::Column::PageId.eq(page_id))
        .filter(attachment::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db)
        .await
}

/// The preview of `source` at `width`, when it was made before: (its content's hash, size, type).
pub async fn find_preview<C: ConnectionTrait>(
    db: &C,
    source: &str,
    width: i32,
) -> Result<Option<(String, i64, String)>, DbErr> {
    let Some(found) = preview::Entity::find_by_id((source.to_owned(), width)).one(db).await? else {
        return Ok(None);
    };
    let size = blob::Entity::find_by_id(found.blob_hash.clone()).one(db).await?.map_or(0, |b| b.size);
    Ok(Some((found.blob_hash, size, found.content_type)))
}

/// Stores a preview made of `source` (once: a preview made at the same time elsewhere wins).
pub async fn keep_preview(
    db: &DatabaseConnection,
    source: &str,
    width: i32,
    bytes: &[u8],
    content_type: &str,
) -> Result<(String, i64), DbErr> {
    let mut writer = BlobWriter::begin(db, 0).await?;
    writer.write(bytes).await?;
    let (txn, written) = writer.finish().await?;
    let inner = txn.begin().await?;
    let inserted = preview::ActiveModel {
        source_hash: Set(source.to_owned()),
        width: Set(width),
        blob_hash: Set(written.hash.clone()),
        content_type: Set(content_type.to_owned()),
    }
    .insert(&inner)
    .await;
    match inserted {
        Ok(_) => inner.commit().await?,
        Err(err) if is_unique_violation(&err) => inner.rollback().await?,
        Err(err) => return Err(err),
    }
    txn.commit().await?;
    Ok((written.hash, i64::try_from(written.size).unwrap_or(i64::MAX)))
}

/// How many rows the file tables hold (tests: an aborted upload leaves none).
pub async fn row_counts<C: ConnectionTrait>(db: &C) -> Result<[u64; 4], DbErr> {
    Ok([
        blob::Entity::find().count(db).await?,
        chunk::Entity::find().count(db).await?,
        attachment::Entity::find().count(db).await?,
        version::Entity::find().count(db).await?,
    ])
}

/// One thing that happened to a page's files, for the page's history.
#[derive(Debug, Clone)]
pub struct FileEvent {
    /// `uploaded`, `deleted` or `restored`.
    pub what: &'static str,
    pub name: String,
    /// The version uploaded (uploads only).
    pub version: Option<i32>,
    pub who: String,
    pub at: i64,
}

/// Uploads of a page's files (every version) and their deletions and restorations, newest
/// first, at most `limit`.
pub async fn events_for_page<C: ConnectionTrait>(
    db: &C,
    page_id: i32,
    title: &str,
    limit: usize,
) -> Result<Vec<FileEvent>, DbErr> {
    let mut events = Vec::new();
    for attachment in list_for_page(db, page_id, true).await? {
        for version in &attachment.versions {
            events.push(FileEvent {
                what: "uploaded",
                name: attachment.attachment.name.clone(),
                version: Some(version.version),
                who: version.uploader_name.clone(),
                at: version.created_at,
            });
        }
    }
    let marks = super::audit::Entity::find()
        .filter(super::audit::Column::Target.eq(title))
        .filter(super::audit::Column::Action.is_in(["file_delete", "file_restore"]))
        .order_by_desc(super::audit::Column::Id)
        .limit(limit as u64)
        .all(db)
        .await?;
    events.extend(marks.into_iter().map(|mark| FileEvent {
        what: if mark.action == "file_delete" { "deleted" } else { "restored" },
        name: mark.details,
        version: None,
        who: mark.actor_name,
        at: mark.at,
    }));
    events.sort_by_key(|event| std::cmp::Reverse(event.at));
    events.truncate(limit);
    Ok(events)
}

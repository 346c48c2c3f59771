//! Files (issue 9): content stored once per SHA-256 in fixed-size chunks, attachments of pages
//! (a name per page, hidden rather than dropped when deleted), their versions, and the image
//! previews made from them.
//!
//! Chunks are at most `models::file::CHUNK_SIZE` (256 KiB), far below MySQL's packet limit, in
//! the backend's binary type (`BLOB`, `BYTEA`, `MEDIUMBLOB`: MySQL's `BLOB` stops at 64 KiB).
//! A chunk is written under a staging key (`~` and random hex) while its upload streams in, and
//! moved to the content's hash when the upload commits: there is no foreign key from chunks to
//! blobs for that reason.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Pages {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Blobs {
    Table,
    Hash,
    Size,
    CreatedAt,
}

#[derive(DeriveIden)]
enum BlobChunks {
    Table,
    Hash,
    Seq,
    Data,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    PageId,
    Name,
    CreatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum AttachmentVersions {
    Table,
    Id,
    AttachmentId,
    Version,
    BlobHash,
    Size,
    ContentType,
    InlineImage,
    Width,
    Height,
    UploaderId,
    UploaderName,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ImagePreviews {
    Table,
    SourceHash,
    Width,
    BlobHash,
    ContentType,
}

/// The binary column type that holds a chunk on each backend.
fn chunk_type(backend: DatabaseBackend) -> &'static str {
    match backend {
        DatabaseBackend::MySql => "MEDIUMBLOB",
        DatabaseBackend::Postgres => "BYTEA",
        _ => "BLOB",
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();

        let mut blobs = Table::create();
        blobs
            .table(Blobs::Table)
            .col(ColumnDef::new(Blobs::Hash).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Blobs::Size).big_integer().not_null())
            .col(ColumnDef::new(Blobs::CreatedAt).big_integer().not_null());
        table_options(backend, &mut blobs);
        manager.create_table(blobs).await?;

        let mut chunks = Table::create();
        chunks
            .table(BlobChunks::Table)
            .col(ColumnDef::new(BlobChunks::Hash).string_len(64).not_null())
            .col(ColumnDef::new(BlobChunks::Seq).integer().not_null())
            .col(ColumnDef::new(BlobChunks::Data).custom(Alias::new(chunk_type(backend))).not_null())
            .primary_key(Index::create().col(BlobChunks::Hash).col(BlobChunks::Seq));
        table_options(backend, &mut chunks);
        manager.create_table(chunks).await?;

        let mut attachments = Table::create();
        attachments
            .table(Attachments::Table)
            .col(ColumnDef::new(Attachments::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Attachments::PageId).integer().not_null())
            .col(ColumnDef::new(Attachments::Name).string_len(200).not_null())
            .col(ColumnDef::new(Attachments::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Attachments::DeletedAt).big_integer().null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_attachments_page")
                    .from(Attachments::Table, Attachments::PageId)
                    .to(Pages::Table, Pages::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        table_options(backend, &mut attachments);
        manager.create_table(attachments).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_page_name")
                    .table(Attachments::Table)
                    .col(Attachments::PageId)
                    .col(Attachments::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        let mut versions = Table::create();
        versions
            .table(AttachmentVersions::Table)
            .col(ColumnDef::new(AttachmentVersions::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(AttachmentVersions::AttachmentId).integer().not_null())
            .col(ColumnDef::new(AttachmentVersions::Version).integer().not_null())
            .col(ColumnDef::new(AttachmentVersions::BlobHash).string_len(64).not_null())
            .col(ColumnDef::new(AttachmentVersions::Size).big_integer().not_null())
            .col(ColumnDef::new(AttachmentVersions::ContentType).string_len(100).not_null())
            .col(ColumnDef::new(AttachmentVersions::InlineImage).integer().not_null())
            .col(ColumnDef::new(AttachmentVersions::Width).integer().null())
            .col(ColumnDef::new(AttachmentVersions::Height).integer().null())
            .col(ColumnDef::new(AttachmentVersions::UploaderId).integer().null())
            .col(ColumnDef::new(AttachmentVersions::UploaderName).string_len(100).not_null())
            .col(ColumnDef::new(AttachmentVersions::CreatedAt).big_integer().not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_attachment_versions_attachment")
                    .from(AttachmentVersions::Table, AttachmentVersions::AttachmentId)
                    .to(Attachments::Table, Attachments::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_attachment_versions_blob")
                    .from(AttachmentVersions::Table, AttachmentVersions::BlobHash)
                    .to(Blobs::Table, Blobs::Hash),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_attachment_versions_uploader")
                    .from(AttachmentVersions::Table, AttachmentVersions::UploaderId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        table_options(backend, &mut versions);
        manager.create_table(versions).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachment_versions_number")
                    .table(AttachmentVersions::Table)
                    .col(AttachmentVersions::AttachmentId)
                    .col(AttachmentVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;

        let mut previews = Table::create();
        previews
            .table(ImagePreviews::Table)
            .col(ColumnDef::new(ImagePreviews::SourceHash).string_len(64).not_null())
            .col(ColumnDef::new(ImagePreviews::Width).integer().not_null())
            .col(ColumnDef::new(ImagePreviews::BlobHash).string_len(64).not_null())
            .col(ColumnDef::new(ImagePreviews::ContentType).string_len(100).not_null())
            .primary_key(Index::create().col(ImagePreviews::SourceHash).col(ImagePreviews::Width))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_image_previews_source")
                    .from(ImagePreviews::Table, ImagePreviews::SourceHash)
                    .to(Blobs::Table, Blobs::Hash),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_image_previews_blob")
                    .from(ImagePreviews::Table, ImagePreviews::BlobHash)
                    .to(Blobs::Table, Blobs::Hash),
            );
        table_options(backend, &mut previews);
        manager.create_table(previews).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ImagePreviews::Table.into_iden(),
            AttachmentVersions::Table.into_iden(),
            Attachments::Table.into_iden(),
            BlobChunks::Table.into_iden(),
            Blobs::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

//! The access model: wiki-wide settings, member roles and blocking, invitations, the audit log.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;

use super::table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Role,
    BlockedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Invites {
    Table,
    Id,
    TokenHash,
    Role,
    UsesLeft,
    ExpiresAt,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    ActorId,
    ActorName,
    Action,
    Target,
    Details,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();

        // One role per member instead of an admin flag; admins stay admins.
        for column in [
            ColumnDef::new(Users::Role).string_len(16).not_null().default("editor").to_owned(),
            ColumnDef::new(Users::BlockedAt).big_integer().null().to_owned(),
            ColumnDef::new(Users::LastLoginAt).big_integer().null().to_owned(),
        ] {
            let mut column = column;
            manager
                .alter_table(Table::alter().table(Users::Table).add_column(&mut column).to_owned())
                .await?;
        }
        db.execute_unprepared("UPDATE users SET role = 'admin' WHERE is_admin").await?;
        db.execute_unprepared("ALTER TABLE users DROP COLUMN is_admin").await?;

        let mut settings = Table::create();
        settings
            .table(Settings::Table)
            .col(ColumnDef::new(Settings::Key).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Settings::Value).string_len(255).not_null())
            .col(ColumnDef::new(Settings::UpdatedAt).big_integer().not_null());
        table_options(backend, &mut settings);
        manager.create_table(settings).await?;

        let mut invites = Table::create();
        invites
            .table(Invites::Table)
            .col(ColumnDef::new(Invites::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(Invites::TokenHash).string_len(64).not_null().unique_key())
            .col(ColumnDef::new(Invites::Role).string_len(16).not_null())
            .col(ColumnDef::new(Invites::UsesLeft).integer().not_null())
            .col(ColumnDef::new(Invites::ExpiresAt).big_integer().not_null())
            .col(ColumnDef::new(Invites::CreatedBy).integer().null())
            .col(ColumnDef::new(Invites::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(Invites::RevokedAt).big_integer().null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_invites_creator")
                    .from(Invites::Table, Invites::CreatedBy)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        table_options(backend, &mut invites);
        manager.create_table(invites).await?;

        let mut audit = Table::create();
        audit
            .table(AuditLog::Table)
            .col(ColumnDef::new(AuditLog::Id).integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(AuditLog::At).big_integer().not_null())
            .col(ColumnDef::new(AuditLog::ActorId).integer().null())
            .col(ColumnDef::new(AuditLog::ActorName).string_len(64).not_null())
            .col(ColumnDef::new(AuditLog::Action).string_len(32).not_null())
            .col(ColumnDef::new(AuditLog::Target).string_len(255).not_null())
            .col(ColumnDef::new(AuditLog::Details).string_len(500).not_null())
            .foreign_key(
                ForeignKey::create()
                    .name("fk_audit_actor")
                    .from(AuditLog::Table, AuditLog::ActorId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        table_options(backend, &mut audit);
        manager.create_table(audit).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [AuditLog::Table.into_iden(), Invites::Table.into_iden(), Settings::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE").await?;
        db.execute_unprepared("UPDATE users SET is_admin = TRUE WHERE role = 'admin'").await?;
        for column in [Users::Role, Users::BlockedAt, Users::LastLoginAt] {
            manager.alter_table(Table::alter().table(Users::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

//! The admin area: members (roles, blocking, adding, deleting), invitations, the wiki's
//! settings and the audit log. Every handler takes [`Admin`]: other members get a 403,
//! visitors the login page.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Routes, render};
use crate::access::{ReadAccess, Registration, Require2fa, Role, SettingKey};
use crate::app::AppState;
use crate::auth::forms::CsrfForm;
use crate::auth::session::Admin;
use crate::domain::{Password, Username};
use crate::error::AppError;
use crate::extract::TokenForm;
use crate::flash::{Flash, Kind};
use crate::models::invite::{self, NewInvite};
use crate::models::user::{self, AdminChange, AdminChangeError, CreateUserError};
use crate::models::{audit, now_ms, setting};
use crate::shell::Shell;
use crate::templates::{
    AdminAuditPage, AdminHome, AdminInvitesPage, AdminSettingsPage, AdminUsersPage, AuditRow, FieldErrors,
    InviteRow, MemberRow, format_time,
};
use crate::urls;

/// Audit entries per screen.
const AUDIT_PER_PAGE: u64 = 50;
/// Invitations listed (newest first).
const INVITES_SHOWN: u64 = 200;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin", get(home))
        .post("/admin/users", get(users).post(add_user))
        .post("/admin/users/{name}/role", post(set_role))
        .post("/admin/users/{name}/block", post(block))
        .post("/admin/users/{name}/unblock", post(unblock))
        .post("/admin/users/{name}/delete", post(delete_user))
        .post("/admin/users/{name}/password", post(reset_password))
        .post("/admin/invites", get(invites).post(create_invite))
        .post("/admin/invites/{id}/revoke", post(revoke_invite))
        .post("/admin/settings", get(settings_form).post(save_settings))
        .post("/admin/main-page", post(save_main_page))
        .get("/admin/audit", get(audit_log))
        .get("/admin/export.zip", get(export_zip))
}

/// Every live page as Markdown and static HTML, in one zip (see `export.rs`).
async fn export_zip(_admin: Admin, State(state): State<AppState>) -> Result<Response, AppError> {
    super::export_download(&state, crate::export::Reader::Everything).await
}

async fn home(_admin: Admin, shell: Shell, State(state): State<AppState>) -> Result<Response, AppError> {
    let used = u64::try_from(crate::models::file::stored_bytes(&state.db.read).await?).unwrap_or(0);
    let storage = match state.settings.storage_quota {
        Some(quota) => format!(
            "{} of {} ({}%)",
            crate::files::human_size(used),
            crate::files::human_size(quota),
            used.saturating_mul(100) / quota.max(1)
        ),
        None => format!("{} (no quota)", crate::files::human_size(used)),
    };
    render(StatusCode::OK, AdminHome { layout: shell.layout(), storage })
}

/// A path segment that must be UTF-8 (a member's name).
type NamePath = Result<Path<String>, axum::extract::rejection::PathRejection>;

// ---- members ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct AddUserForm {
    username: String,
    password: String,
    /// Missing: editor. Present, it must be a role (an empty one is not).
    role: Option<String>,
}

async fn users(_admin: Admin, shell: Shell, State(state): State<AppState>) -> Result<Response, AppError> {
    users_page(&shell, &state, StatusCode::OK, String::new(), FieldErrors::default()).await
}

async fn users_page(
    shell: &Shell,
    state: &AppState,
    status: StatusCode,
    username: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let members = user::list_with_page_counts(&state.db.read).await?;
    let rows = members
        .into_iter()
        .map(|(member, pages)| {
            let base = format!("/admin/users/{}", urls::segment(&member.username));
            MemberRow {
                href: urls::user(&member.username),
                role: member.role(),
                blocked: member.is_blocked(),
                pages,
                last_login: member.last_login_at.map(format_time),
                base,
                username: member.username,
            }
        })
        .collect();
    render(
        status,
        AdminUsersPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            rows,
            roles: Role::ALL,
            username: username.chars().take(100).collect(),
            errors,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn add_user(
    Admin(admin): Admin,
    shell: Shell,
    State(state): State<AppState>,
    client: crate::extract::ClientIp,
    CsrfForm(form): CsrfForm<AddUserForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::default();
    let username = Username::parse(&form.username).map_err(|e| errors.username.push(e.into())).ok();
    let password = Password::parse(form.password).map_err(|e| errors.password.push(e.into())).ok();
    let role = form.role.as_deref().map_or(Ok(Role::Editor), Role::parse);
    let role = role.map_err(|e| errors.form.push(e.to_string())).ok();
    let (Some(username), Some(password), Some(role)) = (username, password, role) else {
        return users_page(&shell, &state, StatusCode::UNPROCESSABLE_ENTITY, form.username, errors).await;
    };
    let hash = state.hasher.hash(crate::auth::password::Asker::from(&client.key()), password).await?;
    match user::add_by(&state.db.write, &username, &hash, role, &admin.actor()).await {
        Ok(created) => {
            tracing::info!(user.id = created.id, "member added by an admin");
            shell.flash(Kind::Success, &format!("Added {} as {role}.", created.username));
            Ok(Redirect::to("/admin/users").into_response())
        }
        Err(taken @ (CreateUserError::UsernameTaken | CreateUserError::LooksLikeAnother)) => {
            errors.username.push(taken.to_string());
            users_page(&shell, &state, StatusCode::CONFLICT, form.username, errors).await
        }
        Err(CreateUserError::Db(err)) => Err(err.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RoleForm {
    role: String,
}

async fn set_role(
    admin: Admin,
    flash: Flash,
    State(state): State<AppState>,
    path: NamePath,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> Result<Response, AppError> {
    let role = Role::parse(&form.role).map_err(|e| AppError::Unprocessable(e.to_string()))?;
    change(admin, flash, state, path, AdminChange::Role(role)).await
}

async fn block(
    admin: Admin,
    flash: Flash,
    State(state): State<AppState>,
    path: NamePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    change(admin, flash, state, path, AdminChange::Block).await
}

async fn unblock(
    admin: Admin,
    flash: Flash,
    State(state): State<AppState>,
    path: NamePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    change(admin, flash, state, path, AdminChange::Unblock).await
}

async fn delete_user(
    admin: Admin,
    flash: Flash,
    State(state): State<AppState>,
    path: NamePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    change(admin, flash, state, path, AdminChange::Delete).await
}

/// One admin change to a member, under the last-admin rule; back to the member list.
#[tracing::instrument(skip_all, fields(change = ?change))]
async fn change(
    Admin(admin): Admin,
    flash: Flash,
    state: AppState,
    path: NamePath,
    change: AdminChange,
) -> Result<Response, AppError> {
    let Path(name) = path?;
    let before = match user::change_by(&state.db.write, &name, change, &admin.actor()).await {
        Ok(before) => before,
        Err(AdminChangeError::NoSuchMember) => return Err(AppError::NotFound),
        Err(AdminChangeError::LastAdmin) => {
            return Err(AppError::Conflict("The last admin cannot be demoted, blocked or deleted."));
        }
        Err(AdminChangeError::Db(err)) => return Err(err.into()),
    };
    let message = match change {
        AdminChange::Role(role) => format!("{} is now {role}.", before.username),
        AdminChange::Block => format!("{} is blocked: their sessions have ended.", before.username),
        AdminChange::Unblock => format!("{} may log in again.", before.username),
        AdminChange::Delete => {
            if let Some(avatar) = &before.avatar {
                crate::uploads::remove(&state.settings.avatar_dir, avatar).await;
            }
            format!("{} is deleted; their pages remain, with no author.", before.username)
        }
    };
    tracing::info!(user.id = before.id, "member changed by an admin");
    flash.push(Kind::Success, &message);
    Ok(Redirect::to("/admin/users").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    password: String,
}

/// Sets a member's password (they forgot theirs and the wiki sends no mail, or they cannot
/// read it): every session of theirs ends, and the audit log records who did it.
#[tracing::instrument(skip_all)]
async fn reset_password(
    Admin(admin): Admin,
    flash: Flash,
    client: crate::extract::ClientIp,
    State(state): State<AppState>,
    path: NamePath,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    let Path(name) = path?;
    let member = user::find_by_username(&state.db.read, &name).await?.ok_or(AppError::NotFound)?;
    let password =
        crate::domain::Password::parse(form.password).map_err(|e| AppError::Unprocessable(e.into()))?;
    let hash = crate::auth::attempts::hash_new_password(&state, &client.key(), password).await?;
    let ended = user::reset_password_by(&state.db.write, &member, &hash, &admin.actor()).await?;
    tracing::info!(user.id = member.id, sessions_ended = ended, "password set by an admin");
    flash.push(Kind::Success, &format!("{} has a new password; their sessions have ended.", member.username));
    Ok(Redirect::to("/admin/users").into_response())
}

// ---- invitations ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct InviteForm {
    uses: String,
    expires_in_days: String,
    /// Missing: editor. Present, it must be a role (an empty one is not).
    role: Option<String>,
    /// Where to mail the link (needs `--smtp-url`); empty: the admin passes it on.
    email: String,
}

async fn invites(_admin: Admin, shell: Shell, State(state): State<AppState>) -> Result<Response, AppError> {
    invites_page(&shell, &state, StatusCode::OK, None, FieldErrors::default()).await
}

async fn invites_page(
    shell: &Shell,
    state: &AppState,
    status: StatusCode,
    new_link: Option<(String, Option<String>)>,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let (new_link, mail_note) = new_link.map_or((None, None), |(link, note)| (Some(link), note));
    let now = now_ms();
    let rows = invite::list(&state.db.read, INVITES_SHOWN)
        .await?
        .into_iter()
        .map(|listed| InviteRow {
            id: listed.invite.id,
            revoke_action: format!("/admin/invites/{}/revoke", listed.invite.id),
            creator: listed.creator,
            role: listed.invite.role(),
            uses_left: listed.invite.uses_left,
            expires: format_time(listed.invite.expires_at),
            status: listed.invite.status(now).as_str(),
            revocable: listed.invite.revoked_at.is_none(),
        })
        .collect();
    render(
        status,
        AdminInvitesPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            new_link,
            mail_note,
            mail: state.mailer.is_some(),
            rows,
            roles: Role::ALL,
            errors,
        },
    )
}

/// A whole number in `1..=max` from a form field; empty means `default`.
fn bounded(raw: &str, default: i64, max: i64, what: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(default);
    }
    match raw.parse::<i64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("{what} must be a whole number from 1 to {max}.")),
    }
}

#[tracing::instrument(skip_all)]
async fn create_invite(
    Admin(admin): Admin,
    shell: Shell,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<InviteForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::default();
    let uses =
        bounded(&form.uses, 1, i64::from(invite::USES_MAX), "uses").map_err(|e| errors.form.push(e)).ok();
    let days = bounded(&form.expires_in_days, 7, invite::DAYS_MAX, "expires_in_days")
        .map_err(|e| errors.form.push(e))
        .ok();
    let role = form.role.as_deref().map_or(Ok(Role::Editor), Role::parse);
    let role = role.map_err(|e| errors.form.push(e.to_string())).ok();
    let mail_to = match form.email.trim() {
        "" => None,
        _ if state.mailer.is_none() => {
            errors.form.push(
                "This wiki sends no mail: leave the email address empty and pass the link on yourself."
                    .into(),
            );
            None
        }
        raw => crate::mail::parse_address(raw).map_err(|e| errors.form.push(e.into())).ok(),
    };
    if !errors.is_empty() {
        return invites_page(&shell, &state, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await;
    }
    let (Some(uses), Some(expires_in_days), Some(role)) = (uses, days, role) else {
        return invites_page(&shell, &state, StatusCode::UNPROCESSABLE_ENTITY, None, errors).await;
    };
    let uses = i32::try_from(uses).map_err(anyhow::Error::from)?;
    let token =
        invite::create(&state.db.write, NewInvite { uses, expires_in_days, role }, &admin.actor()).await?;
    tracing::info!(user.id = admin.id, "invitation created");
    let link =
        format!("{}/register?invite={token}", state.settings.public_url.as_deref().unwrap_or_default());
    let mut note = None;
    if let (Some(address), Some(mailer)) = (mail_to, &state.mailer) {
        let body = format!(
            "Hello,\n\n{name} invites you to join the wiki at {site}.\nOpen this link to create your account (it expires in {expires_in_days} days):\n\n{link}\n",
            name = admin.username,
            site = state.settings.public_url.as_deref().unwrap_or_default(),
        );
        match mailer.send(&address, "An invitation to the wiki", body).await {
            Ok(()) => note = Some(format!("The invitation was mailed to {address}.")),
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "an invitation mail was not sent");
                note = Some(format!("The mail to {address} could not be sent: pass the link on yourself."));
            }
        }
    }
    // The token exists only in this response: it is shown once, here, and stored hashed.
    invites_page(&shell, &state, StatusCode::OK, Some((link, note)), FieldErrors::default()).await
}

async fn revoke_invite(
    Admin(admin): Admin,
    flash: Flash,
    State(state): State<AppState>,
    path: Result<Path<i32>, axum::extract::rejection::PathRejection>,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path(id) = path.map_err(|_| AppError::NotFound)?;
    match invite::revoke(&state.db.write, id, &admin.actor()).await? {
        invite::Revoked::Now => flash.push(Kind::Success, &format!("Invitation #{id} revoked.")),
        invite::Revoked::Already => flash.push(Kind::Info, &format!("Invitation #{id} was already revoked.")),
        invite::Revoked::NoSuchInvitation => return Err(AppError::NotFound),
    }
    Ok(Redirect::to("/admin/invites").into_response())
}

// ---- settings ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct SettingsForm {
    read_access: Option<String>,
    registration: Option<String>,
    require_2fa: Option<String>,
}

async fn settings_form(
    _admin: Admin,
    shell: Shell,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let current = setting::load(&state.db.read).await?;
    let main_page = setting::main_page(&state.db.read).await?.unwrap_or_default();
    settings_page(
        &shell,
        StatusCode::OK,
        [current.read_access.as_str(), current.registration.as_str(), current.require_2fa.as_str()],
        main_page,
        FieldErrors::default(),
    )
}

/// The settings form, showing `values` (read_access, registration, require_2fa).
fn settings_page(
    shell: &Shell,
    status: StatusCode,
    values: [&str; 3],
    main_page: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let [read_access, registration, require_2fa] = values;
    render(
        status,
        AdminSettingsPage {
            main_page: main_page.chars().take(200).collect(),
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            read_access: read_access.chars().take(50).collect(),
            registration: registration.chars().take(50).collect(),
            require_2fa: require_2fa.chars().take(50).collect(),
            require_2fa_choices: [
                Require2fa::None.as_str(),
                Require2fa::Admins.as_str(),
                Require2fa::All.as_str(),
            ],
            read_access_choices: [ReadAccess::Public.as_str(), ReadAccess::Members.as_str()],
            registration_choices: [
                Registration::Open.as_str(),
                Registration::Invite.as_str(),
                Registration::Closed.as_str(),
            ],
            errors,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn save_settings(
    Admin(admin): Admin,
    shell: Shell,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> Result<Response, AppError> {
    // Every value is checked before any is stored: a bad one changes nothing.
    let mut errors = FieldErrors::default();
    let mut changes = Vec::new();
    for (key, value) in [
        (SettingKey::ReadAccess, &form.read_access),
        (SettingKey::Registration, &form.registration),
        (SettingKey::Require2fa, &form.require_2fa),
    ] {
        if let Some(value) = value {
            match key.check(value) {
                Ok(value) => changes.push((key, value)),
                Err(e) => errors.form.push(e.to_string()),
            }
        }
    }
    if !errors.is_empty() {
        let current = setting::load(&state.db.read).await?;
        let shown = |given: &Option<String>, current: &'static str| {
            given.clone().unwrap_or_else(|| current.to_owned())
        };
        let main_page = setting::main_page(&state.db.read).await?.unwrap_or_default();
        return settings_page(
            &shell,
            StatusCode::UNPROCESSABLE_ENTITY,
            [
                &shown(&form.read_access, current.read_access.as_str()),
                &shown(&form.registration, current.registration.as_str()),
                &shown(&form.require_2fa, current.require_2fa.as_str()),
            ],
            main_page,
            errors,
        );
    }
    let changed = setting::set_many(&state.db.write, &changes, &admin.actor()).await?;
    if changed > 0 {
        // Who may read changed: it holds at the next request on every instance.
        crate::cache::settle_access_change(&state.cache, &state.db.write).await;
    }
    tracing::info!(changed, "settings saved");
    shell.flash(Kind::Success, "Settings saved.");
    Ok(Redirect::to("/admin/settings").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MainPageForm {
    /// The title of a live page; empty: no main page.
    main_page: String,
}

/// POST /admin/main-page — the page shown at `/` above the list of pages.
#[tracing::instrument(skip_all)]
async fn save_main_page(
    Admin(admin): Admin,
    shell: Shell,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<MainPageForm>,
) -> Result<Response, AppError> {
    let wanted = form.main_page.trim();
    let (title, refused) = if wanted.is_empty() {
        (None, None)
    } else if let Err(e) = crate::domain::PageTitle::parse(wanted) {
        (None, Some(e.to_string()))
    } else {
        match crate::models::page::find_with_author(&state.db.read, wanted).await? {
            Some(found) => (Some(found.page.title), None),
            None => (None, Some(format!("There is no page titled “{wanted}”."))),
        }
    };
    if let Some(message) = refused {
        let current = setting::load(&state.db.read).await?;
        let mut errors = FieldErrors::default();
        errors.title.push(message);
        return settings_page(
            &shell,
            StatusCode::UNPROCESSABLE_ENTITY,
            [current.read_access.as_str(), current.registration.as_str(), current.require_2fa.as_str()],
            form.main_page,
            errors,
        );
    }
    let changed = setting::set_main_page(&state.db.write, title.as_deref(), &admin.actor()).await?;
    tracing::info!(changed, "main page chosen");
    shell.flash(
        Kind::Success,
        &match &title {
            Some(title) => format!("The main page is now “{title}”."),
            None => "The wiki has no main page now: / shows the list of pages.".to_owned(),
        },
    );
    Ok(Redirect::to("/admin/settings").into_response())
}

// ---- audit log ----

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScreenQuery {
    page: Option<u64>,
}

async fn audit_log(
    _admin: Admin,
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<ScreenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let number = query.ok().and_then(|Query(q)| q.page).unwrap_or(1).clamp(1, 1_000_000);
    let (entries, has_next) = audit::screen(&state.db.read, number, AUDIT_PER_PAGE).await?;
    let rows = entries
        .into_iter()
        .map(|entry| AuditRow {
            time: format_time(entry.at),
            actor: match entry.address {
                Some(address) => format!("{} from {address}", entry.actor_name),
                None => entry.actor_name,
            },
            action: entry.action,
            target: entry.target,
            details: entry.details,
        })
        .collect();
    render(
        StatusCode::OK,
        AdminAuditPage {
            layout: shell.layout(),
            rows,
            prev_href: (number > 1).then(|| format!("/admin/audit?page={}", number - 1)),
            next_href: has_next.then(|| format!("/admin/audit?page={}", number + 1)),
        },
    )
}

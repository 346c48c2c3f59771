//! `/profile/security`: the member's password and sessions, under their control.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sea_orm::TransactionTrait;
use serde::Deserialize;
use tower_sessions::Session;

use super::{Routes, render};
use crate::app::AppState;
use crate::auth::attempts;
use crate::auth::forms::CsrfForm;
use crate::auth::session::{self, CurrentUser, Member};
use crate::auth::totp;
use crate::domain::Password;
use crate::error::AppError;
use crate::extract::{ClientIp, TokenForm};
use crate::flash::Kind;
use crate::models::session as sessions;
use crate::models::{setting, two_factor, user};
use crate::shell::Shell;
use crate::templates::{FieldErrors, SecurityPage, SessionRow, TwoFactorPage, format_time};

pub fn router() -> Routes {
    Routes::new()
        .get("/profile/security", get(security))
        .post("/profile/security/password", post(change_password))
        .post("/profile/security/sessions/end-others", post(end_others))
        .post("/profile/security/sessions/{id}/end", post(end_one))
        .get("/profile/security/two-factor", get(two_factor_page))
        .post("/profile/security/two-factor/setup", post(two_factor_setup))
        .post("/profile/security/two-factor/confirm", post(two_factor_confirm))
        .post("/profile/security/two-factor/disable", post(two_factor_disable))
        .post("/profile/security/two-factor/recovery-codes", post(two_factor_renew))
}

async fn security(
    Member(member): Member,
    shell: Shell,
    session: Session,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    security_page(&shell, &state, &session, &member, StatusCode::OK, FieldErrors::default()).await
}

/// The row key of the session this request came with.
fn current_row(session: &Session) -> Option<String> {
    session.id().map(|id| sessions::row_id(&id))
}

async fn security_page(
    shell: &Shell,
    state: &AppState,
    session: &Session,
    member: &CurrentUser,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let current = current_row(session);
    let rows = sessions::active_for_user(&state.db.read, member.id)
        .await?
        .into_iter()
        .map(|active| SessionRow {
            current: current.as_deref() == Some(active.id.as_str()),
            created: format_time(active.created_at),
            last_seen: format_time(active.last_seen_at),
            address: if active.address.is_empty() { "unknown".to_owned() } else { active.address },
            browser: describe_agent(&active.agent),
            agent: active.agent,
            end_href: format!("/profile/security/sessions/{}/end", active.id),
        })
        .collect::<Vec<_>>();
    let others = rows.iter().filter(|row| !row.current).count();
    let two_factor_on = two_factor::is_enabled(&state.db.read, member.id).await?;
    render(
        status,
        SecurityPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            username: member.username.clone(),
            sessions: rows,
            others,
            two_factor_on,
            email: crate::models::email::verified_of(&state.db.read, member.id).await?,
            mail: state.mailer.is_some(),
            sso_name: state.oidc.as_ref().map(|oidc| oidc.settings.name.clone()),
            sso_linked: super::sso::linked(state, member.id).await?,
            has_password: user::find_by_id(&state.db.read, member.id)
                .await?
                .is_some_and(|account| !account.password_hash.is_empty()),
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm_password: String,
}

/// Changes the member's password: the current one first (throttled like a login), then the
/// new one's rules; every other session of the member ends, and this one gets a new id.
#[tracing::instrument(skip_all)]
async fn change_password(
    Member(member): Member,
    shell: Shell,
    session: Session,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<Response, AppError> {
    let mut errors = FieldErrors::default();
    if form.current_password.is_empty() {
        errors.current_password.push("Your current password is required.".into());
    }
    if form.new_password != form.confirm_password {
        errors.confirm_password.push("Passwords must match.".into());
    }
    let new_password = Password::parse(form.new_password).map_err(|e| errors.password.push(e.into())).ok();
    let (Some(new_password), true) = (new_password, errors.is_empty()) else {
        return security_page(&shell, &state, &session, &member, StatusCode::UNPROCESSABLE_ENTITY, errors)
            .await;
    };
    let account = user::find_by_id(&state.db.read, member.id).await?.ok_or(AppError::NotFound)?;
    let key = client.key();
    let current = Password::unchecked(form.current_password);
    if !attempts::confirm_password(&state, &key, &account, current).await? {
        tracing::info!(user.id = member.id, "password change refused: wrong current password");
        errors.current_password.push("Your current password is not correct.".into());
        return security_page(&shell, &state, &session, &member, StatusCode::FORBIDDEN, errors).await;
    }
    let hash = attempts::hash_new_password(&state, &key, new_password).await?;
    let keep = current_row(&session).unwrap_or_default();
    let txn = state.db.write.begin().await?;
    user::set_password_hash(&txn, member.id, &hash).await?;
    crate::models::email::void_for_user(&txn, member.id, crate::models::email::Purpose::Reset).await?;
    let ended = sessions::end_others(&txn, member.id, &keep).await?;
    txn.commit().await?;
    // This session goes on under a new id.
    session.cycle_id().await?;
    tracing::info!(user.id = member.id, sessions_ended = ended, "password changed");
    let message = if ended == 0 {
        "Your password has been changed.".to_owned()
    } else {
        format!("Your password has been changed. Your {ended} other session(s) have ended.")
    };
    shell.flash(Kind::Success, &message);
    Ok(Redirect::to("/profile/security").into_response())
}

/// Ends every session of the member but this one.
async fn end_others(
    Member(member): Member,
    shell: Shell,
    session: Session,
    State(state): State<AppState>,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let keep = current_row(&session).unwrap_or_default();
    let ended = sessions::end_others(&state.db.write, member.id, &keep).await?;
    tracing::info!(user.id = member.id, sessions_ended = ended, "other sessions ended");
    shell.flash(Kind::Success, &format!("{ended} other session(s) ended."));
    Ok(Redirect::to("/profile/security").into_response())
}

/// Ends one of the member's sessions; ending this one logs out.
async fn end_one(
    Member(member): Member,
    shell: Shell,
    session: Session,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path(id) = path?;
    let valid = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if !valid || !sessions::end_for_user(&state.db.write, member.id, &id).await? {
        return Err(AppError::NotFound);
    }
    tracing::info!(user.id = member.id, "a session ended by its member");
    if current_row(&session).as_deref() == Some(id.as_str()) {
        session::log_out(&session).await?;
        shell.flash(Kind::Info, "This session has ended. You have been logged out.");
        return Ok(Redirect::to("/login").into_response());
    }
    shell.flash(Kind::Success, "The session has ended.");
    Ok(Redirect::to("/profile/security").into_response())
}

/// A `User-Agent` as people name it: "Firefox on Linux", "Safari on iOS"; "unknown browser"
/// when it says nothing recognisable.
pub fn describe_agent(agent: &str) -> String {
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("Wget/", "Wget"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| agent.contains(marker))
    .map(|(_, name)| *name);
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, Some(system)) => format!("a browser on {system}"),
        (None, None) if agent.trim().is_empty() => "unknown browser".to_owned(),
        (None, None) => agent.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_agent;

    #[test]
    fn agents_are_named_as_people_name_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(describe_agent(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(describe_agent(chrome), "Chrome on Windows");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
        assert_eq!(describe_agent(edge), "Edge on Windows");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
        assert_eq!(describe_agent(safari), "Safari on iOS");
        let android = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";
        assert_eq!(describe_agent(android), "Chrome on Android");
        assert_eq!(describe_agent(""), "unknown browser");
        assert_eq!(describe_agent("reqwest"), "reqwest");
    }
}

// ---- two-factor ----

/// The enrolment and status page of two-factor sign-in.
async fn two_factor_page(
    Member(member): Member,
    shell: Shell,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    two_factor_screen(&shell, &state, &member, StatusCode::OK, FieldErrors::default(), Vec::new()).await
}

/// Renders the two-factor page as it stands: off (a button to begin), pending (the QR code,
/// the secret and the confirmation form) or on (codes left, renew, turn off). `new_codes` are
/// shown once, right after they were made.
async fn two_factor_screen(
    shell: &Shell,
    state: &AppState,
    member: &CurrentUser,
    status: StatusCode,
    errors: FieldErrors,
    new_codes: Vec<String>,
) -> Result<Response, AppError> {
    let row = two_factor::find(&state.db.read, member.id).await?;
    let required = setting::load(&state.db.read).await?.require_2fa.applies_to(member.role);
    let (state_word, qr_svg, secret, codes_left) = match &row {
        None => ("off", String::new(), String::new(), 0),
        Some(row) if row.is_enabled() => {
            ("on", String::new(), String::new(), two_factor::codes_left(&state.db.read, member.id).await?)
        }
        Some(row) => {
            let uri = totp::otpauth_uri(&issuer(state), &member.username, &row.secret);
            ("pending", totp::qr_svg(&uri)?, totp::grouped(&row.secret), 0)
        }
    };
    render(
        status,
        TwoFactorPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            username: member.username.clone(),
            state: state_word,
            qr_svg,
            secret,
            codes_left,
            required,
            new_codes,
            errors,
        },
    )
}

/// The name the authenticator app files the account under: the wiki's host, or "Quire".
fn issuer(state: &AppState) -> String {
    state
        .settings
        .public_url
        .as_deref()
        .and_then(|url| url.split_once("://").map(|(_, rest)| rest))
        .map(|rest| rest.split(['/', ':']).next().unwrap_or(rest).to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "Quire".to_owned())
}

/// Begins (or begins again) enrolment with a new secret.
async fn two_factor_setup(
    Member(member): Member,
    State(state): State<AppState>,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let secret = totp::new_secret()?;
    if !two_factor::start(&state.db.write, member.id, &secret).await? {
        return Err(AppError::Conflict(
            "Two-factor sign-in is on already. Turn it off first to set up another device.",
        ));
    }
    tracing::info!(user.id = member.id, "two-factor enrolment begun");
    Ok(Redirect::to(session::ENROL_PATH).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

/// Confirms enrolment with the first code from the app; shows the ten recovery codes once.
async fn two_factor_confirm(
    Member(member): Member,
    shell: Shell,
    session: Session,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    let Some(row) = two_factor::find(&state.db.read, member.id).await?.filter(|row| !row.is_enabled()) else {
        return Err(AppError::Conflict(
            "There is no enrolment to confirm: begin with \"Set up two-factor sign-in\".",
        ));
    };
    let mut errors = FieldErrors::default();
    let Some(step) = totp::matching_step(&row.secret, &form.code, totp::now_secs()) else {
        errors.code.push(
            "That code is not right. Check the time on your device and type the code it shows now.".into(),
        );
        return two_factor_screen(
            &shell,
            &state,
            &member,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            Vec::new(),
        )
        .await;
    };
    let codes = totp::new_recovery_codes()?;
    let hashes: Vec<String> = codes.iter().map(|code| totp::recovery_hash(code)).collect();
    if !two_factor::confirm(&state.db.write, member.id, step, &hashes).await? {
        return Err(AppError::Conflict(
            "There is no enrolment to confirm: begin with \"Set up two-factor sign-in\".",
        ));
    }
    session::enrolled(&session).await?;
    tracing::info!(user.id = member.id, "two-factor sign-in turned on");
    shell.flash(Kind::Success, "Two-factor sign-in is on.");
    two_factor_screen(&shell, &state, &member, StatusCode::OK, FieldErrors::default(), codes).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DisableForm {
    current_password: String,
    code: String,
}

/// Turns two-factor off: the password and a code (or a recovery code) both needed, both
/// throttled. Refused while the wiki requires it of this member.
#[tracing::instrument(skip_all)]
async fn two_factor_disable(
    Member(member): Member,
    shell: Shell,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<DisableForm>,
) -> Result<Response, AppError> {
    let Some(row) = two_factor::find(&state.db.read, member.id).await?.filter(|row| row.is_enabled()) else {
        return Err(AppError::Conflict("Two-factor sign-in is not on."));
    };
    if setting::load(&state.db.read).await?.require_2fa.applies_to(member.role) {
        return Err(AppError::Forbidden(
            "This wiki requires two-factor sign-in for your account: it cannot be turned off.",
        ));
    }
    let mut errors = FieldErrors::default();
    if form.current_password.is_empty() {
        errors.current_password.push("Your current password is required.".into());
    }
    if form.code.trim().is_empty() {
        errors.code.push("A code from your app, or a recovery code, is required.".into());
    }
    if !errors.is_empty() {
        return two_factor_screen(
            &shell,
            &state,
            &member,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            Vec::new(),
        )
        .await;
    }
    let account = user::find_by_id(&state.db.read, member.id).await?.ok_or(AppError::NotFound)?;
    let key = client.key();
    if !attempts::confirm_password(&state, &key, &account, Password::unchecked(form.current_password)).await?
    {
        errors.current_password.push("Your current password is not correct.".into());
        return two_factor_screen(&shell, &state, &member, StatusCode::FORBIDDEN, errors, Vec::new()).await;
    }
    if let Err(wrong) = throttled_code_check(&state, &key, &account, &row, form.code.trim()).await? {
        errors.code.push(wrong.into());
        return two_factor_screen(&shell, &state, &member, StatusCode::FORBIDDEN, errors, Vec::new()).await;
    }
    two_factor::disable(&state.db.write, member.id).await?;
    tracing::info!(user.id = member.id, "two-factor sign-in turned off");
    shell.flash(Kind::Success, "Two-factor sign-in is off.");
    Ok(Redirect::to(session::ENROL_PATH).into_response())
}

/// Checks a code from the app (or a recovery code) of a signed-in member, counted against the
/// code limits like a login's: `Err` holds the message for a wrong one.
async fn throttled_code_check(
    state: &AppState,
    key: &str,
    account: &user::Model,
    row: &two_factor::Model,
    code: &str,
) -> Result<Result<(), &'static str>, AppError> {
    let device = crate::auth::device::KnownDevice::default();
    let attempt = attempts::CodeAttempt::begin(state, key, account, &device).await?;
    match crate::routes::auth::check_second_factor(state, account, row, code).await? {
        crate::routes::auth::SecondFactor::Right { .. } => {
            attempt.succeeded(state).await?;
            Ok(Ok(()))
        }
        wrong => {
            attempt.failed(state).await?;
            Ok(Err(wrong.message()))
        }
    }
}

/// New recovery codes in place of the old ones, after a code from the app (or a recovery code).
async fn two_factor_renew(
    Member(member): Member,
    shell: Shell,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    let Some(row) = two_factor::find(&state.db.read, member.id).await?.filter(|row| row.is_enabled()) else {
        return Err(AppError::Conflict("Two-factor sign-in is not on."));
    };
    let mut errors = FieldErrors::default();
    if form.code.trim().is_empty() {
        errors.form.push("A code from your app, or a recovery code, is required.".into());
        return two_factor_screen(
            &shell,
            &state,
            &member,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            Vec::new(),
        )
        .await;
    }
    let account = user::find_by_id(&state.db.read, member.id).await?.ok_or(AppError::NotFound)?;
    if let Err(wrong) = throttled_code_check(&state, &client.key(), &account, &row, form.code.trim()).await? {
        errors.form.push(wrong.into());
        return two_factor_screen(&shell, &state, &member, StatusCode::FORBIDDEN, errors, Vec::new()).await;
    }
    let codes = totp::new_recovery_codes()?;
    let hashes: Vec<String> = codes.iter().map(|code| totp::recovery_hash(code)).collect();
    two_factor::renew_codes(&state.db.write, member.id, &hashes).await?;
    tracing::info!(user.id = member.id, "recovery codes renewed");
    two_factor_screen(&shell, &state, &member, StatusCode::OK, FieldErrors::default(), codes).await
}

//! Password recovery by email, and members' email addresses (verified by a link before use).
//!
//! `/password/forgot` answers the same page, in the same time, whether or not the account or
//! the address exists: the lookup, the link and the mail happen in a task of their own after
//! the answer is decided. Without `--smtp-url` the page says to ask an admin.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sea_orm::TransactionTrait;
use serde::Deserialize;

use super::{Routes, render};
use crate::app::AppState;
use crate::auth::attempts;
use crate::auth::forms::CsrfForm;
use crate::auth::session::Member;
use crate::domain::Password;
use crate::error::AppError;
use crate::extract::ClientIp;
use crate::flash::Kind;
use crate::models::email::{self, Purpose};
use crate::models::{session, user};
use crate::shell::Shell;
use crate::templates::{FieldErrors, ForgotPage, ResetPage, VerifyEmailPage};

/// Password recovery exists only while passwords sign in (`--password-login`).
fn passwords_on(state: &AppState) -> Result<(), AppError> {
    if state.settings.password_login {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "This wiki signs members in through its single sign-on: it keeps no passwords to recover.",
        ))
    }
}

pub fn router() -> Routes {
    Routes::new()
        .post("/password/forgot", get(forgot_form).post(forgot))
        .post("/password/reset", get(reset_form).post(reset))
        .post("/email/verify", get(verify_form).post(verify))
        .post("/profile/security/email", post(set_email))
}

/// What the forgot-password page says after a request, whatever was found.
pub const SENT: &str = "If that account has a verified email address, a link to set a new password is on its way. It works once, for one hour.";

#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenQuery {
    token: String,
}

async fn forgot_form(shell: Shell, State(state): State<AppState>) -> Result<Response, AppError> {
    passwords_on(&state)?;
    forgot_page(&shell, &state, StatusCode::OK, false, FieldErrors::default())
}

fn forgot_page(
    shell: &Shell,
    state: &AppState,
    status: StatusCode,
    sent: bool,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        ForgotPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            mail: state.mailer.is_some(),
            sent: sent.then_some(SENT),
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ForgotForm {
    /// A username or an email address.
    login: String,
}

/// Sends a recovery link to the verified address of the account named (by username or by
/// address). Counted per client address like registrations; the answer is the same either way.
#[tracing::instrument(skip_all)]
async fn forgot(
    shell: Shell,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Result<Response, AppError> {
    passwords_on(&state)?;
    let Some(mailer) = state.mailer.clone() else {
        return forgot_page(&shell, &state, StatusCode::CONFLICT, false, FieldErrors::default());
    };
    let login: String = form.login.trim().chars().take(254).collect();
    if login.is_empty() {
        let errors = FieldErrors {
            username: vec!["Your username or email address is required.".into()],
            ..FieldErrors::default()
        };
        return forgot_page(&shell, &state, StatusCode::UNPROCESSABLE_ENTITY, false, errors);
    }
    attempts::count_recovery_request(&state, &client.key()).await?;
    // The answer does not wait for the lookup, the link or the mail.
    let db = state.db.clone();
    tokio::spawn(async move {
        if let Err(err) = send_recovery(&db, &mailer, &login).await {
            tracing::warn!(error = %format!("{err:#}"), "a password-recovery mail was not sent");
        }
    });
    forgot_page(&shell, &state, StatusCode::OK, true, FieldErrors::default())
}

async fn send_recovery(db: &crate::db::Db, mailer: &crate::mail::Mailer, login: &str) -> anyhow::Result<()> {
    let members = if login.contains('@') {
        email::members_with(&db.read, login).await?
    } else {
        user::find_by_username(&db.read, login).await?.map(|m| m.id).into_iter().collect()
    };
    for id in members {
        let Some(member) = user::find_by_id(&db.read, id).await? else { continue };
        let Some(address) = email::verified_of(&db.read, id).await? else { continue };
        if member.is_blocked() {
            continue;
        }
        let token = email::issue(&db.write, id, Purpose::Reset, None).await?;
        let link = mailer.link(&format!("/password/reset?token={token}"));
        let body = format!(
            "Hello {name},\n\nsomeone (we hope you) asked to set a new password for your account.\nOpen this link within one hour to choose one:\n\n{link}\n\nIf it was not you, ignore this mail: your password stays as it is.\n",
            name = member.username
        );
        mailer.send(&address, "Set a new password", body).await?;
        tracing::info!(user.id = id, "password-recovery link sent");
    }
    Ok(())
}

const BAD_LINK: &str =
    "This link is not valid: it was used already, it expired, or it was mistyped. Ask for a new one.";

async fn reset_form(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    passwords_on(&state)?;
    let token = query.map(|Query(q)| q.token).unwrap_or_default();
    if email::peek(&state.db.read, &token, Purpose::Reset).await?.is_none() {
        return Err(AppError::NotFoundWith(BAD_LINK));
    }
    reset_page(&shell, StatusCode::OK, token, FieldErrors::default())
}

fn reset_page(
    shell: &Shell,
    status: StatusCode,
    token: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        ResetPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            token: token.chars().take(100).collect(),
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResetForm {
    token: String,
    new_password: String,
    confirm_password: String,
}

/// Sets the new password with a recovery link: the link is used up, every session of the
/// member ends, and every other recovery link of theirs stops working.
#[tracing::instrument(skip_all)]
async fn reset(
    shell: Shell,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<Response, AppError> {
    passwords_on(&state)?;
    let Some(found) = email::peek(&state.db.read, &form.token, Purpose::Reset).await? else {
        return Err(AppError::NotFoundWith(BAD_LINK));
    };
    let mut errors = FieldErrors::default();
    if form.new_password != form.confirm_password {
        errors.confirm_password.push("Passwords must match.".into());
    }
    let password = Password::parse(form.new_password).map_err(|e| errors.password.push(e.into())).ok();
    let (Some(password), true) = (password, errors.is_empty()) else {
        return reset_page(&shell, StatusCode::UNPROCESSABLE_ENTITY, form.token, errors);
    };
    let hash = attempts::hash_new_password(&state, &client.key(), password).await?;
    let txn = state.db.write.begin().await?;
    let Some(used) = email::consume(&txn, &form.token, Purpose::Reset).await? else {
        return Err(AppError::NotFoundWith(BAD_LINK));
    };
    debug_assert_eq!(used.user_id, found.user_id);
    user::set_password_hash(&txn, used.user_id, &hash).await?;
    email::void_for_user(&txn, used.user_id, Purpose::Reset).await?;
    let ended = session::delete_for_user(&txn, used.user_id).await?;
    txn.commit().await?;
    tracing::info!(user.id = used.user_id, sessions_ended = ended, "password set with a recovery link");
    shell.flash(Kind::Success, "Your password has been changed. Please log in.");
    Ok(Redirect::to("/login").into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EmailForm {
    email: String,
}

/// Sends a verification link to a new address; the address is used only once the link is
/// opened. An empty address removes the member's address.
#[tracing::instrument(skip_all)]
async fn set_email(
    Member(member): Member,
    shell: Shell,
    client: ClientIp,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<Response, AppError> {
    if form.email.trim().is_empty() {
        email::remove(&state.db.write, member.id).await?;
        email::void_for_user(&state.db.write, member.id, Purpose::Verify).await?;
        shell.flash(Kind::Success, "Your email address has been removed.");
        return Ok(Redirect::to("/profile/security").into_response());
    }
    let Some(mailer) = state.mailer.clone() else {
        return Err(AppError::Conflict("This wiki sends no mail: an email address cannot be verified."));
    };
    let address = match crate::mail::parse_address(&form.email) {
        Ok(address) => address,
        Err(problem) => return Err(AppError::Unprocessable(problem.into())),
    };
    attempts::count_recovery_request(&state, &client.key()).await?;
    let token = email::issue(&state.db.write, member.id, Purpose::Verify, Some(&address)).await?;
    let link = mailer.link(&format!("/email/verify?token={token}"));
    let body = format!(
        "Hello {name},\n\nopen this link within a day to confirm that this is your address:\n\n{link}\n\nIf you did not ask for this, ignore this mail.\n",
        name = member.username
    );
    if let Err(err) = mailer.send(&address, "Confirm your email address", body).await {
        tracing::warn!(error = %format!("{err:#}"), "a verification mail was not sent");
        email::void_for_user(&state.db.write, member.id, Purpose::Verify).await?;
        return Err(AppError::Unavailable("The mail could not be sent. Please try again later."));
    }
    tracing::info!(user.id = member.id, "verification link sent");
    shell.flash(
        Kind::Success,
        &format!("A link was sent to {address}. The address is used once you open it."),
    );
    Ok(Redirect::to("/profile/security").into_response())
}

async fn verify_form(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let token = query.map(|Query(q)| q.token).unwrap_or_default();
    let Some(found) = email::peek(&state.db.read, &token, Purpose::Verify).await? else {
        return Err(AppError::NotFoundWith(BAD_LINK));
    };
    render(
        StatusCode::OK,
        VerifyEmailPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            token: token.chars().take(100).collect(),
            address: found.address.unwrap_or_default(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VerifyForm {
    token: String,
}

/// Confirms an address (a button, not the link itself: mail scanners open links).
async fn verify(
    shell: Shell,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<VerifyForm>,
) -> Result<Response, AppError> {
    let txn = state.db.write.begin().await?;
    let Some(used) = email::consume(&txn, &form.token, Purpose::Verify).await? else {
        return Err(AppError::NotFoundWith(BAD_LINK));
    };
    let address = used.address.unwrap_or_default();
    email::set_verified(&txn, used.user_id, &address).await?;
    txn.commit().await?;
    tracing::info!(user.id = used.user_id, "email address verified");
    shell.flash(Kind::Success, &format!("Your email address {address} is confirmed."));
    Ok(Redirect::to("/profile/security").into_response())
}

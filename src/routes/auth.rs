//! Accounts: register, log in, log out.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use tower_sessions::Session;

use super::{Routes, render};
use crate::access::Registration;
use crate::app::AppState;
use crate::auth::attempts::{self, LoginOutcome};
use crate::auth::device::KnownDevice;
use crate::auth::forms::CsrfForm;
use crate::auth::session::{self, Viewer};
use crate::domain::{Password, Username};
use crate::error::AppError;
use crate::extract::{ClientIp, TokenForm};
use crate::flash::{Flash, Kind};
use crate::models::invite;
use crate::models::setting;
use crate::models::user::{self, CreateUserError, RegisterError};
use crate::shell::Shell;
use crate::templates::{FieldErrors, LoginPage, LogoutPage, RegisterPage};
use crate::urls::safe_next;

pub fn router() -> Routes {
    Routes::new()
        .post("/register", get(register_form).post(register))
        .post("/login", get(login_form).post(login))
        .post("/logout", get(logout_page).post(logout))
}

/// What a form gives back to its page: the input, never longer than a field could be.
fn echo(input: &str) -> String {
    input.chars().take(200).collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterForm {
    username: String,
    password: String,
    confirm_password: String,
    /// The invitation token, when the visitor came by an invitation link.
    invite: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterQuery {
    invite: String,
}

/// Whether this visitor may register now: with a valid invitation always, without one only
/// while registration is open. A refusal says why.
async fn may_register(state: &AppState, invite: &str) -> Result<(), AppError> {
    if !invite.trim().is_empty() {
        return match invite::check(&state.db.read, invite).await? {
            Ok(_) => Ok(()),
            Err(problem) => Err(AppError::Forbidden(problem.message())),
        };
    }
    match setting::load(&state.db.read).await?.registration {
        Registration::Open => Ok(()),
        Registration::Invite => Err(AppError::Forbidden("Registration is by invitation only.")),
        Registration::Closed => Err(AppError::Forbidden("Registration is closed.")),
    }
}

async fn register_form(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<RegisterQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let invite = query.map(|Query(q)| q.invite).unwrap_or_default();
    let invite: String = invite.trim().chars().take(100).collect();
    may_register(&state, &invite).await?;
    render(
        StatusCode::OK,
        RegisterPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            username: String::new(),
            invite,
            errors: FieldErrors::default(),
        },
    )
}

#[tracing::instrument(skip_all)]
async fn register(
    shell: Shell,
    cookies: tower_cookies::Cookies,
    State(state): State<AppState>,
    client: ClientIp,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Result<Response, AppError> {
    let invite = form.invite.trim().to_owned();
    may_register(&state, &invite).await?;
    let mut errors = FieldErrors::default();
    let username = Username::parse(&form.username).map_err(|e| errors.username.push(e.into())).ok();
    if form.confirm_password != form.password {
        errors.confirm_password.push("Passwords must match.".into());
    }
    let password = Password::parse(form.password).map_err(|e| errors.password.push(e.into())).ok();

    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        return register_again(&shell, StatusCode::UNPROCESSABLE_ENTITY, &form.username, &invite, errors);
    };

    let hash = attempts::hash_for_registration(&state, &client.key(), password).await?;
    let invitation = (!invite.is_empty()).then_some(invite.as_str());
    match user::register(&state.db.write, &username, &hash, invitation).await {
        Ok(created) => {
            tracing::info!(user.id = created.id, user.role = %created.role, "registered");
            shell.flash(Kind::Success, "Registration successful! Please log in.");
            remember_registered(&cookies, &state, &created.username);
            if created.role() == crate::access::Role::Admin {
                shell.flash(
                    Kind::Info,
                    "You are this wiki's first member, so you administer it: once logged in, \
                     Admin in the menu manages members, invitations and settings.",
                );
            }
            Ok(Redirect::to("/login").into_response())
        }
        Err(RegisterError::Invite(problem)) => Err(AppError::Forbidden(problem.message())),
        Err(RegisterError::Create(
            taken @ (CreateUserError::UsernameTaken | CreateUserError::LooksLikeAnother),
        )) => {
            errors.username.push(taken.to_string());
            register_again(&shell, StatusCode::CONFLICT, username.as_str(), &invite, errors)
        }
        Err(RegisterError::Create(CreateUserError::Db(err))) => Err(err.into()),
    }
}

fn register_again(
    shell: &Shell,
    status: StatusCode,
    username: &str,
    invite: &str,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        RegisterPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            username: echo(username),
            invite: invite.chars().take(100).collect(),
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NextQuery {
    next: Option<String>,
}

fn next_of(query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>) -> String {
    query.ok().and_then(|Query(q)| q.next).map(|next| safe_next(Some(&next)).to_owned()).unwrap_or_default()
}

async fn login_form(
    shell: Shell,
    cookies: tower_cookies::Cookies,
    State(state): State<AppState>,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let username = just_registered(&cookies, &state);
    login_page(&shell, StatusCode::OK, username, next_of(query), FieldErrors::default())
}

/// The name registered in this browser a moment ago (taken: it fills the login form once).
fn just_registered(cookies: &tower_cookies::Cookies, state: &AppState) -> String {
    let secure = state.settings.secure_cookies;
    let name = crate::cookies::cookie_name(crate::cookies::REGISTERED, secure);
    let Some(cookie) = cookies.signed(&state.cookie_key).get(&name) else { return String::new() };
    cookies.remove(tower_cookies::Cookie::build((name, "")).path("/").secure(secure).http_only(true).build());
    echo(cookie.value())
}

/// Remembers the name just registered, for the login page it is sent to.
fn remember_registered(cookies: &tower_cookies::Cookies, state: &AppState, username: &str) {
    let secure = state.settings.secure_cookies;
    let cookie = tower_cookies::Cookie::build((
        crate::cookies::cookie_name(crate::cookies::REGISTERED, secure),
        username.to_owned(),
    ))
    .path("/")
    .http_only(true)
    .secure(secure)
    .same_site(tower_cookies::cookie::SameSite::Lax)
    .max_age(time::Duration::minutes(10))
    .build();
    cookies.signed(&state.cookie_key).add(cookie);
}

fn login_page(
    shell: &Shell,
    status: StatusCode,
    username: String,
    next: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let next = if next == "/" { String::new() } else { next };
    render(
        status,
        LoginPage { csrf_token: shell.csrf_token(), layout: shell.layout(), username, next, errors },
    )
}

/// The one message for an unknown user and a wrong password alike.
const INVALID_LOGIN: &str = "Invalid username or password.";

#[tracing::instrument(skip_all)]
async fn login(
    shell: Shell,
    session: Session,
    cookies: tower_cookies::Cookies,
    State(state): State<AppState>,
    client: ClientIp,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let next = next_of(query);
    let mut errors = FieldErrors::default();
    if form.username.trim().is_empty() {
        errors.username.push("Username is required.".into());
    }
    if form.password.is_empty() {
        errors.password.push("Password is required.".into());
    }
    if !errors.is_empty() {
        return login_page(&shell, StatusCode::UNPROCESSABLE_ENTITY, echo(&form.username), next, errors);
    }

    let device = KnownDevice::read(&cookies, &state.cookie_key, state.settings.secure_cookies);
    let password = Password::unchecked(form.password);
    match attempts::log_in(&state, &client.key(), &form.username, password, &device).await? {
        // The right password for a blocked account: refused, and counted like any failure.
        LoginOutcome::Blocked(user) => {
            tracing::info!(user.id = user.id, "login refused: the account is blocked");
            errors.form.push("This account is blocked.".into());
            login_page(&shell, StatusCode::FORBIDDEN, echo(&form.username), next, errors)
        }
        LoginOutcome::Verified(user) => {
            session::log_in(&session, user.id).await?;
            user::touch_login(&state.db.write, user.id).await?;
            tracing::info!(user.id = user.id, "logged in");
            device.remember(&cookies, &state.cookie_key, state.settings.secure_cookies, &user);
            shell.flash(Kind::Success, "Login successful!");
            Ok(Redirect::to(safe_next(Some(&next).filter(|n| !n.is_empty()).map(String::as_str)))
                .into_response())
        }
        LoginOutcome::Failed => {
            tracing::info!("failed login");
            errors.form.push(INVALID_LOGIN.into());
            login_page(&shell, StatusCode::UNAUTHORIZED, echo(&form.username), next, errors)
        }
    }
}

async fn logout_page(shell: Shell) -> Result<Response, AppError> {
    render(StatusCode::OK, LogoutPage { layout: shell.layout() })
}

async fn logout(
    viewer: Viewer,
    session: Session,
    flash: Flash,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    if viewer.is_member() {
        session::log_out(&session).await?;
    }
    flash.push(Kind::Info, "You have been logged out.");
    Ok(Redirect::to("/login").into_response())
}

//! Accounts: register, log in, log out.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::render;
use crate::app::AppState;
use crate::auth::attempts::{self, LoginOutcome};
use crate::auth::device::KnownDevice;
use crate::auth::session::Ctx;
use crate::domain::{Password, Username};
use crate::error::AppError;
use crate::extract::{Form, TokenForm};
use crate::flash::Kind;
use crate::models::user::{self, CreateUserError};
use crate::templates::{FieldErrors, LoginPage, LogoutPage, RegisterPage};
use crate::urls::safe_next;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/register", get(register_form).post(register))
        .route("/login", get(login_form).post(login))
        .route("/logout", get(logout_page).post(logout))
}

/// The client address rate limits are kept for.
fn client(ctx: &Ctx) -> String {
    ctx.client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
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
    csrf_token: String,
}

async fn register_form(ctx: Ctx) -> Result<Response, AppError> {
    render(
        StatusCode::OK,
        RegisterPage {
            csrf_token: ctx.csrf_token(),
            layout: ctx.layout(),
            username: String::new(),
            errors: FieldErrors::default(),
        },
    )
}

#[tracing::instrument(skip_all)]
async fn register(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<RegisterForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&form.csrf_token)?;
    let mut errors = FieldErrors::default();
    let username = Username::parse(&form.username).map_err(|e| errors.username.push(e.into())).ok();
    if form.confirm_password != form.password {
        errors.confirm_password.push("Passwords must match.".into());
    }
    let password = Password::parse(form.password).map_err(|e| errors.password.push(e.into())).ok();

    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        return register_again(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &form.username, errors);
    };

    let hash = attempts::hash_for_registration(&state, &client(&ctx), password).await?;
    match user::create(&state.db.write, &username, &hash).await {
        Ok(created) => {
            tracing::info!(user.id = created.id, "registered");
            super::wiki::promote_if_first(&state, created.id).await?;
            ctx.flash(Kind::Success, "Registration successful! Please log in.");
            Ok(Redirect::to("/login").into_response())
        }
        Err(taken @ (CreateUserError::UsernameTaken | CreateUserError::LooksLikeAnother)) => {
            errors.username.push(taken.to_string());
            register_again(&ctx, StatusCode::CONFLICT, username.as_str(), errors)
        }
        Err(CreateUserError::Db(err)) => Err(err.into()),
    }
}

fn register_again(
    ctx: &Ctx,
    status: StatusCode,
    username: &str,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        RegisterPage { csrf_token: ctx.csrf_token(), layout: ctx.layout(), username: echo(username), errors },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
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
    ctx: Ctx,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    login_page(&ctx, StatusCode::OK, String::new(), next_of(query), FieldErrors::default())
}

fn login_page(
    ctx: &Ctx,
    status: StatusCode,
    username: String,
    next: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let next = if next == "/" { String::new() } else { next };
    render(status, LoginPage { csrf_token: ctx.csrf_token(), layout: ctx.layout(), username, next, errors })
}

/// The one message for an unknown user and a wrong password alike.
const INVALID_LOGIN: &str = "Invalid username or password.";

#[tracing::instrument(skip_all)]
async fn login(
    ctx: Ctx,
    State(state): State<AppState>,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    ctx.check_csrf(&form.csrf_token)?;
    let next = next_of(query);
    let mut errors = FieldErrors::default();
    if form.username.trim().is_empty() {
        errors.username.push("Username is required.".into());
    }
    if form.password.is_empty() {
        errors.password.push("Password is required.".into());
    }
    if !errors.is_empty() {
        return login_page(&ctx, StatusCode::UNPROCESSABLE_ENTITY, echo(&form.username), next, errors);
    }

    let device = KnownDevice::read(&ctx.cookies, &state.cookie_key);
    let password = Password::unchecked(form.password);
    match attempts::log_in(&state, &client(&ctx), &form.username, password, &device).await? {
        LoginOutcome::Verified(user) => {
            ctx.log_in(user.id).await?;
            tracing::info!(user.id = user.id, "logged in");
            device.remember(&ctx.cookies, &state.cookie_key, state.settings.secure_cookies, &user);
            ctx.flash(Kind::Success, "Login successful!");
            Ok(Redirect::to(safe_next(Some(&next).filter(|n| !n.is_empty()).map(String::as_str)))
                .into_response())
        }
        LoginOutcome::Failed => {
            tracing::info!("failed login");
            errors.form.push(INVALID_LOGIN.into());
            login_page(&ctx, StatusCode::UNAUTHORIZED, echo(&form.username), next, errors)
        }
    }
}

async fn logout_page(ctx: Ctx) -> Result<Response, AppError> {
    render(StatusCode::OK, LogoutPage { layout: ctx.layout() })
}

async fn logout(ctx: Ctx, Form(form): Form<TokenForm>) -> Result<Response, AppError> {
    ctx.check_csrf(&form.csrf_token)?;
    if ctx.user.is_some() {
        ctx.log_out().await?;
    }
    ctx.flash(Kind::Info, "You have been logged out.");
    Ok(Redirect::to("/login").into_response())
}

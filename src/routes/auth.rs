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
use crate::auth::attempts::{self, CodeAttempt, LoginOutcome};
use crate::auth::device::KnownDevice;
use crate::auth::forms::CsrfForm;
use crate::auth::pending::Pending;
use crate::auth::session::{self, Viewer};
use crate::auth::totp;
use crate::domain::{Password, Username};
use crate::error::AppError;
use crate::extract::{ClientIp, TokenForm};
use crate::flash::{Flash, Kind};
use crate::models::invite;
use crate::models::setting;
use crate::models::two_factor;
use crate::models::user::{self, CreateUserError, RegisterError};
use crate::shell::Shell;
use crate::templates::{FieldErrors, LoginPage, LogoutPage, RegisterPage, TwoFactorLoginPage};
use crate::urls::safe_next;

pub fn router() -> Routes {
    Routes::new()
        .post("/register", get(register_form).post(register))
        .post("/login", get(login_form).post(login))
        .post("/login/two-factor", get(two_factor_form).post(two_factor_login))
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
    if !state.settings.password_login {
        return Err(AppError::Forbidden("Members join this wiki by signing in with its single sign-on."));
    }
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
    login_page(&shell, &state, StatusCode::OK, username, next_of(query), FieldErrors::default())
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
    state: &AppState,
    status: StatusCode,
    username: String,
    next: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let next = if next == "/" { String::new() } else { next };
    render(
        status,
        LoginPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            sso_name: state.oidc.as_ref().map(|oidc| oidc.settings.name.clone()),
            password_login: state.settings.password_login,
            username,
            next,
            errors,
        },
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
    origin: session::Origin,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<Response, AppError> {
    let next = next_of(query);
    if !state.settings.password_login {
        return Err(AppError::Forbidden(
            "This wiki signs members in through its single sign-on only: use the button on the login page.",
        ));
    }
    let mut errors = FieldErrors::default();
    if form.username.trim().is_empty() {
        errors.username.push("Username is required.".into());
    }
    if form.password.is_empty() {
        errors.password.push("Password is required.".into());
    }
    if !errors.is_empty() {
        return login_page(
            &shell,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            echo(&form.username),
            next,
            errors,
        );
    }

    let device = KnownDevice::read(&cookies, &state.cookie_key, state.settings.secure_cookies);
    let password = Password::unchecked(form.password);
    match attempts::log_in(&state, &origin.client.key(), &form.username, password, &device).await? {
        // The right password for a blocked account: refused, and counted like any failure.
        LoginOutcome::Blocked(user) => {
            tracing::info!(user.id = user.id, "login refused: the account is blocked");
            errors.form.push("This account is blocked.".into());
            login_page(&shell, &state, StatusCode::FORBIDDEN, echo(&form.username), next, errors)
        }
        LoginOutcome::Verified(user) => {
            if two_factor::is_enabled(&state.db.read, user.id).await? {
                // No session yet: the code comes first.
                Pending::issue(&cookies, &state.cookie_key, state.settings.secure_cookies, &user);
                tracing::info!(user.id = user.id, "password right: asking for the second factor");
                return Ok(Redirect::to(&with_next(TWO_FACTOR_PATH, &next)).into_response());
            }
            finish_login(&state, &shell, &session, &cookies, device, &origin, &user, &next).await
        }
        LoginOutcome::Failed => {
            tracing::info!("failed login");
            errors.form.push(INVALID_LOGIN.into());
            login_page(&shell, &state, StatusCode::UNAUTHORIZED, echo(&form.username), next, errors)
        }
    }
}

/// Where the second step of a login is asked for.
const TWO_FACTOR_PATH: &str = "/login/two-factor";

/// `path` with `?next=…` when there is somewhere to go back to.
fn with_next(path: &str, next: &str) -> String {
    if next.is_empty() || next == "/" {
        path.to_owned()
    } else {
        format!("{path}?next={}", crate::urls::encode_query(next))
    }
}

/// Both factors passed (or the only one there is): the session begins. A member the wiki
/// requires two-factor of, who has not enrolled, is taken to enrolment first.
// Every piece a login touches (the session, the cookies, the member, where to go next).
#[allow(clippy::too_many_arguments)]
async fn finish_login(
    state: &AppState,
    shell: &Shell,
    session: &Session,
    cookies: &tower_cookies::Cookies,
    device: KnownDevice,
    origin: &session::Origin,
    user: &user::Model,
    next: &str,
) -> Result<Response, AppError> {
    session::log_in(session, user.id, origin).await?;
    user::touch_login(&state.db.write, user.id).await?;
    tracing::info!(user.id = user.id, "logged in");
    device.remember(cookies, &state.cookie_key, state.settings.secure_cookies, user);
    let wiki = setting::load(&state.db.read).await?;
    if wiki.require_2fa.applies_to(user.role()) && !two_factor::is_enabled(&state.db.read, user.id).await? {
        session::require_enrolment(session).await?;
        shell.flash(
            Kind::Info,
            "This wiki requires two-factor sign-in for your account. Please set it up now.",
        );
        return Ok(Redirect::to(session::ENROL_PATH).into_response());
    }
    shell.flash(Kind::Success, "Login successful!");
    Ok(Redirect::to(safe_next(Some(next).filter(|n| !n.is_empty()))).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CodeForm {
    code: String,
}

/// The member a pending login names, if it is still good (signed, under five minutes old, the
/// same account and password, not blocked, two-factor still on).
async fn pending_member(
    state: &AppState,
    cookies: &tower_cookies::Cookies,
) -> Result<Option<(user::Model, two_factor::Model)>, AppError> {
    let Some(pending) = Pending::read(cookies, &state.cookie_key, state.settings.secure_cookies) else {
        return Ok(None);
    };
    let Some(member) = user::find_by_id(&state.db.read, pending.user_id).await? else {
        return Ok(None);
    };
    if !pending.is_for(&member) {
        return Ok(None);
    }
    match two_factor::find(&state.db.read, member.id).await? {
        Some(row) if row.is_enabled() => Ok(Some((member, row))),
        _ => Ok(None),
    }
}

/// Back to the password step, saying why.
fn start_over(shell: &Shell, cookies: &tower_cookies::Cookies, secure: bool, next: &str) -> Response {
    Pending::clear(cookies, secure);
    shell.flash(Kind::Info, "Your sign-in has expired. Please log in again.");
    Redirect::to(&with_next("/login", next)).into_response()
}

fn code_page(
    shell: &Shell,
    status: StatusCode,
    next: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let next = if next == "/" { String::new() } else { next };
    render(
        status,
        TwoFactorLoginPage { csrf_token: shell.csrf_token(), layout: shell.layout(), next, errors },
    )
}

async fn two_factor_form(
    shell: Shell,
    cookies: tower_cookies::Cookies,
    State(state): State<AppState>,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let next = next_of(query);
    if pending_member(&state, &cookies).await?.is_none() {
        return Ok(start_over(&shell, &cookies, state.settings.secure_cookies, &next));
    }
    code_page(&shell, StatusCode::OK, next, FieldErrors::default())
}

/// The second step: an authenticator code (once per time step) or an unused recovery code,
/// counted like a password; the session begins only when it is right.
#[tracing::instrument(skip_all)]
async fn two_factor_login(
    shell: Shell,
    session: Session,
    cookies: tower_cookies::Cookies,
    State(state): State<AppState>,
    origin: session::Origin,
    query: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, AppError> {
    let next = next_of(query);
    let secure = state.settings.secure_cookies;
    let Some((member, second)) = pending_member(&state, &cookies).await? else {
        return Ok(start_over(&shell, &cookies, secure, &next));
    };
    let code = form.code.trim();
    let mut errors = FieldErrors::default();
    if code.is_empty() {
        errors.code.push("Enter the code from your authenticator app, or a recovery code.".into());
        return code_page(&shell, StatusCode::UNPROCESSABLE_ENTITY, next, errors);
    }
    let device = KnownDevice::read(&cookies, &state.cookie_key, secure);
    let attempt = CodeAttempt::begin(&state, &origin.client.key(), &member, &device).await?;
    let outcome = check_second_factor(&state, &member, &second, code).await?;
    match outcome {
        SecondFactor::Right { recovery } => {
            attempt.succeeded(&state).await?;
            Pending::clear(&cookies, secure);
            let response =
                finish_login(&state, &shell, &session, &cookies, device, &origin, &member, &next).await?;
            if recovery {
                let left = two_factor::codes_left(&state.db.read, member.id).await?;
                shell.flash(
                    Kind::Info,
                    &format!(
                        "You used a recovery code: {left} left. Make new ones at /profile/security/two-factor."
                    ),
                );
            }
            Ok(response)
        }
        wrong => {
            attempt.failed(&state).await?;
            tracing::info!(user.id = member.id, "wrong second factor");
            errors.code.push(wrong.message().into());
            code_page(&shell, StatusCode::UNAUTHORIZED, next, errors)
        }
    }
}

/// What a second-factor code turned out to be.
pub enum SecondFactor {
    Right {
        recovery: bool,
    },
    /// Right, but for a time step already used: a replay.
    Used,
    Wrong,
}

impl SecondFactor {
    pub fn message(&self) -> &'static str {
        match self {
            Self::Right { .. } => "",
            Self::Used => "This code has been used already. Wait for the next one in your app.",
            Self::Wrong => "Invalid code.",
        }
    }
}

/// Checks a code against a member's enabled two-factor and uses it up: an authenticator code
/// for its time step, a recovery code for good.
pub async fn check_second_factor(
    state: &AppState,
    member: &user::Model,
    second: &two_factor::Model,
    code: &str,
) -> Result<SecondFactor, AppError> {
    if totp::looks_like_code(code) {
        return Ok(match totp::matching_step(&second.secret, code, totp::now_secs()) {
            Some(step) if two_factor::use_step(&state.db.write, member.id, step).await? => {
                SecondFactor::Right { recovery: false }
            }
            Some(_) => SecondFactor::Used,
            None => SecondFactor::Wrong,
        });
    }
    let hash = totp::recovery_hash(code);
    Ok(if two_factor::use_recovery_code(&state.db.write, member.id, &hash).await? {
        SecondFactor::Right { recovery: true }
    } else {
        SecondFactor::Wrong
    })
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

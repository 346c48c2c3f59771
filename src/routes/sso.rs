//! Single sign-on through an OpenID provider: "Sign in with NAME" on /login, the provider's
//! redirect back, and linking (or unlinking) a member's account there from /profile/security.
//!
//! A first sign-in makes a member (named after `preferred_username`, made unique; never an
//! existing member's account); later ones find the member by (issuer, subject). Sessions begin
//! as after a password (`session::log_in`), so logout and "end other sessions" apply; the
//! provider is trusted for the second factor, so Quire's own is not asked.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_sessions::Session;

use super::Routes;
use crate::access::Role;
use crate::app::AppState;
use crate::auth::forms::CsrfForm;
use crate::auth::oidc::{self, Flow, Identity, OidcError};
use crate::auth::session::{self, Member, Viewer};
use crate::domain::Username;
use crate::error::AppError;
use crate::flash::Kind;
use crate::models::audit::Actor;
use crate::models::identity::{self, LinkError, SignUp};
use crate::models::throttle::{self, Verdict};
use crate::models::user::{self, AdminChange, AdminChangeError};
use crate::shell::Shell;
use crate::urls::safe_next;

pub fn router() -> Routes {
    Routes::new()
        .get(oidc::START_PATH, get(start))
        .get(oidc::CALLBACK_PATH, get(callback))
        .post("/profile/security/oidc/link", post(link))
        .post("/profile/security/oidc/unlink", post(unlink))
}

fn provider(state: &AppState) -> Result<&oidc::Oidc, AppError> {
    state.oidc.as_ref().ok_or(AppError::NotFoundWith("This wiki has no single sign-on."))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartQuery {
    next: Option<String>,
}

/// The message for a provider that does not answer.
const UNREACHABLE: &str = "The sign-in provider cannot be reached right now. Please try again later.";

fn provider_error(err: OidcError) -> AppError {
    match err {
        OidcError::Unreachable(why) => {
            tracing::warn!(error = %why, "the OpenID provider cannot be reached");
            AppError::Unavailable(UNREACHABLE)
        }
        OidcError::CodeRefused(why) => {
            tracing::info!(error = %why, "the OpenID provider refused the code");
            AppError::BadRequest(
                "The sign-in could not be completed: the provider refused it (the link may have been \
                 used already). Please sign in again."
                    .into(),
            )
        }
        OidcError::InvalidToken(why) => {
            tracing::warn!(error = %why, "an ID token failed verification");
            AppError::BadRequest(
                "The sign-in could not be verified: the provider's answer is not valid for this wiki. \
                 Please sign in again, or tell an admin if it keeps happening."
                    .into(),
            )
        }
    }
}

/// Sends the browser to the provider.
async fn start(
    State(state): State<AppState>,
    cookies: tower_cookies::Cookies,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let next = query.ok().and_then(|Query(q)| q.next).unwrap_or_default();
    let next = safe_next(Some(&next)).to_owned();
    let url = provider
        .begin(&cookies, &state.cookie_key, state.settings.secure_cookies, next, None)
        .await
        .map_err(provider_error)?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Back from the provider: the state checked against this browser's flow, the code exchanged,
/// the ID token verified; then the member signs in (or links the account).
#[tracing::instrument(skip_all)]
async fn callback(
    State(state): State<AppState>,
    shell: Shell,
    session: Session,
    cookies: tower_cookies::Cookies,
    viewer: Viewer,
    origin: session::Origin,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let Ok(Query(query)) = query else {
        return Err(AppError::BadRequest("The sign-in answer could not be read.".into()));
    };
    let Some(flow) = Flow::take(&cookies, &state.cookie_key, state.settings.secure_cookies) else {
        return Err(AppError::BadRequest(
            "This sign-in has expired or was started in another browser. Please sign in again.".into(),
        ));
    };
    if !query.state.as_deref().is_some_and(|sent| flow.state_matches(sent)) {
        tracing::warn!("an OpenID callback with a state this browser did not send");
        return Err(AppError::BadRequest(
            "The sign-in could not be verified (its state does not match). Please sign in again.".into(),
        ));
    }
    if let Some(error) = query.error {
        let error: String = error.chars().take(100).collect();
        let description: String = query.error_description.unwrap_or_default().chars().take(200).collect();
        tracing::info!(oidc.error = %error, oidc.description = %description, "the provider did not sign in");
        shell.flash(
            Kind::Danger,
            &format!("{} did not sign you in ({error}). Please try again.", provider.settings.name),
        );
        let back = if flow.link_user.is_some() { "/profile/security" } else { "/login" };
        return Ok(Redirect::to(back).into_response());
    }
    let Some(code) = query.code.filter(|code| !code.is_empty() && code.len() <= 2048) else {
        return Err(AppError::BadRequest("The sign-in answer has no code.".into()));
    };

    // Counted like a failed login until it succeeds: a client replaying callbacks is throttled.
    let client = origin.client.key();
    let ticket = match throttle::take(
        &state.db.write,
        &format!("login-address|{client}"),
        state.settings.limits.address_login,
    )
    .await?
    {
        Verdict::Admitted(ticket) => ticket,
        Verdict::Refused { retry_after } => {
            state.metrics.refused("login-address");
            return Err(AppError::TooManyAttempts { what: "failed logins", retry_after });
        }
    };
    let identity = provider.finish(&flow, &code).await.map_err(provider_error)?;
    if identity.subject.len() > identity::MAX_LEN || identity.issuer.len() > identity::MAX_LEN {
        return Err(AppError::BadRequest("The provider's account id is too long for this wiki.".into()));
    }
    throttle::refund(&state.db.write, &ticket).await?;

    match flow.link_user {
        Some(user_id) => link_finish(&state, &shell, &viewer, user_id, &identity).await,
        None => sign_in(&state, &shell, &session, &origin, &identity, &flow.next).await,
    }
}

/// The name a new member gets: `preferred_username`, else the address's local part, else
/// "member"; whatever the rules of usernames refuse is left out.
fn wanted_name(identity: &Identity) -> Username {
    let from_email = identity.email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned);
    for candidate in
        [identity.preferred_username.clone(), from_email, identity.name.clone()].into_iter().flatten()
    {
        let cut: String = candidate.trim().chars().take(crate::domain::USERNAME_MAX).collect();
        if let Ok(name) = Username::parse(&cut) {
            return name;
        }
    }
    Username::parse("member").expect("a valid username")
}

/// Signs the member of this identity in, making them on the first sign-in.
async fn sign_in(
    state: &AppState,
    shell: &Shell,
    session: &Session,
    origin: &session::Origin,
    identity: &Identity,
    next: &str,
) -> Result<Response, AppError> {
    let settings = &provider(state)?.settings;
    let how = format!("first sign-in with {}", settings.name);
    let (mut member, link, created) =
        match identity::find(&state.db.read, &identity.issuer, &identity.subject).await? {
            Some((link, member)) => (member, link, false),
            None => {
                // With an admin group, the group decides who administers, not being first.
                let first_is_admin = settings.admin_group.is_none();
                match identity::sign_up(
                    &state.db.write,
                    &identity.issuer,
                    &identity.subject,
                    &wanted_name(identity),
                    Role::Editor,
                    first_is_admin,
                    &how,
                )
                .await?
                {
                    SignUp::Created(member, link) => (member, link, true),
                    SignUp::Existing(member, link) => (member, link, false),
                }
            }
        };
    if member.is_blocked() {
        tracing::info!(user.id = member.id, "single sign-on refused: the account is blocked");
        return Err(AppError::Forbidden("This account is blocked."));
    }
    if created {
        tracing::info!(user.id = member.id, user.name = %member.username, "member made at first single sign-on");
        if let Some(email) = &identity.email
            && email.len() <= 254
        {
            crate::models::email::set_verified(&state.db.write, member.id, email).await?;
        }
    }
    if let Some(group) = &settings.admin_group {
        member =
            follow_admin_group(state, member, identity.groups.iter().any(|g| g == group), origin).await?;
    }
    identity::touch(&state.db.write, link.id).await?;
    session::log_in(session, member.id, origin).await?;
    user::touch_login(&state.db.write, member.id).await?;
    tracing::info!(user.id = member.id, "logged in with single sign-on");
    if created {
        shell.flash(
            Kind::Success,
            &format!(
                "Welcome, {}! Your account was made from your {} sign-in.",
                member.username, settings.name
            ),
        );
    } else {
        shell.flash(Kind::Success, "Login successful!");
    }
    Ok(Redirect::to(safe_next(Some(next).filter(|n| !n.is_empty()))).into_response())
}

/// The admin role follows the admin group: given at sign-in to a member in it, taken from one
/// who left it (unless they are the last admin: the last-admin rule holds, and is logged).
async fn follow_admin_group(
    state: &AppState,
    member: user::Model,
    in_group: bool,
    origin: &session::Origin,
) -> Result<user::Model, AppError> {
    let role = match (in_group, member.role()) {
        (true, Role::Admin) | (false, Role::Editor | Role::Reader) => return Ok(member),
        (true, _) => Role::Admin,
        (false, Role::Admin) => Role::Editor,
    };
    let actor =
        Actor::Member { id: member.id, name: member.username.clone(), address: Some(origin.address.clone()) };
    match user::change_by(&state.db.write, &member.username, AdminChange::Role(role), &actor).await {
        Ok(_) => {
            tracing::info!(user.id = member.id, user.role = %role, "role set by the admin group");
            Ok(user::find_by_id(&state.db.read, member.id).await?.unwrap_or(member))
        }
        Err(AdminChangeError::LastAdmin) => {
            tracing::warn!(user.id = member.id, "left the admin group but is the last admin: stays admin");
            Ok(member)
        }
        Err(AdminChangeError::NoSuchMember) => Err(AppError::NotFound),
        Err(AdminChangeError::Db(err)) => Err(err.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NoFields {}

/// Starts linking the member's account at the provider to theirs: an explicit step, from
/// their own session.
async fn link(
    Member(member): Member,
    State(state): State<AppState>,
    cookies: tower_cookies::Cookies,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let url = provider
        .begin(
            &cookies,
            &state.cookie_key,
            state.settings.secure_cookies,
            "/profile/security".into(),
            Some(member.id),
        )
        .await
        .map_err(provider_error)?;
    Ok(Redirect::to(&url).into_response())
}

async fn link_finish(
    state: &AppState,
    shell: &Shell,
    viewer: &Viewer,
    user_id: i32,
    identity: &Identity,
) -> Result<Response, AppError> {
    let name = &provider(state)?.settings.name;
    // The member who started the link must still be the one signed in here.
    let Some(current) = viewer.member.as_ref().filter(|m| m.id == user_id) else {
        return Err(AppError::Forbidden(
            "Linking was started by another session: sign in and start it again.",
        ));
    };
    let member = user::find_by_id(&state.db.read, current.id).await?.ok_or(AppError::NotFound)?;
    match identity::link(
        &state.db.write,
        &member,
        &identity.issuer,
        &identity.subject,
        &current.actor(),
        name,
    )
    .await
    {
        Ok(()) => {
            tracing::info!(user.id = member.id, "account at the OpenID provider linked");
            shell.flash(Kind::Success, &format!("Your {name} account is linked: you can sign in with it."));
            Ok(Redirect::to("/profile/security").into_response())
        }
        Err(LinkError::Taken) => {
            Err(AppError::Conflict("That account at the provider is already linked to another member."))
        }
        Err(LinkError::Db(err)) => Err(err.into()),
    }
}

/// Removes the link, unless it is the member's only way in (no password of their own).
async fn unlink(
    Member(current): Member,
    State(state): State<AppState>,
    shell: Shell,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, AppError> {
    let provider = provider(&state)?;
    let member = user::find_by_id(&state.db.read, current.id).await?.ok_or(AppError::NotFound)?;
    if member.password_hash.is_empty() {
        return Err(AppError::Conflict(
            "Your account has no password of its own: this sign-in is your only way in, so it stays linked.",
        ));
    }
    let removed = identity::unlink(
        &state.db.write,
        &member,
        &provider.settings.issuer,
        &current.actor(),
        &provider.settings.name,
    )
    .await?;
    if removed == 0 {
        shell.flash(Kind::Info, &format!("Your account is not linked to {}.", provider.settings.name));
    } else {
        shell.flash(Kind::Success, &format!("Your {} account is no longer linked.", provider.settings.name));
    }
    Ok(Redirect::to("/profile/security").into_response())
}

/// Whether the member has an account at the provider linked (for /profile/security).
pub async fn linked(state: &AppState, user_id: i32) -> Result<bool, AppError> {
    match &state.oidc {
        Some(provider) => {
            Ok(!identity::of_member(&state.db.read, user_id, &provider.settings.issuer).await?.is_empty())
        }
        None => Ok(false),
    }
}

//! Who is asking, resolved once per request, and the proofs handlers take.
//!
//! A middleware ([`resolve`]) reads the server-side session, loads the member (a blocked or
//! deleted member's session ends there), and — for visitors — applies `read_access`: on a
//! members-only wiki a visitor is sent to the login page before any route runs, so no handler,
//! 404 page or feed can answer them with the wiki's content. The result is a [`Viewer`] in the
//! request's extensions, from which the extractors [`Member`], [`Editor`] and [`Admin`] prove
//! what a handler needs: a handler that takes `Editor` cannot run for a reader or a visitor.

use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::access::{ReadAccess, Role, WikiSettings};
use crate::app::AppState;
use crate::auth::csrf::random_value;
use crate::error::AppError;
use crate::flash::{Flash, Kind};
use crate::models::session::{
    ADDRESS_KEY, AGENT_KEY, CREATED_KEY, MEMBER_KEY, SEEN_KEY, SessionMember, USER_ID_KEY,
};
use crate::models::{now_ms, setting};

/// Session key set when the wiki requires two-factor of this member and they have not
/// enrolled: until they do, every page but enrolment (and logging out) sends them there.
const ENROL_KEY: &str = "enrol_2fa";
/// Where such a member is sent.
pub const ENROL_PATH: &str = "/profile/security/two-factor";

/// Session key of the member's CSRF nonce.
pub(crate) const CSRF_KEY: &str = "csrf";
/// The expiry moves at most this often: an hour of inactivity, with five minutes' grain, costs
/// one write per member per five minutes instead of one per request.
const REFRESH_EVERY_MS: i64 = 5 * 60 * 1000;

/// A logged-in member who is not blocked.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i32,
    pub username: String,
    pub avatar: Option<String>,
    pub role: Role,
    /// Where this request came from (see `proxy.rs`), as the audit log records it.
    pub address: String,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }

    /// How the audit log names them.
    pub fn actor(&self) -> crate::models::audit::Actor {
        crate::models::audit::Actor::Member {
            id: self.id,
            name: self.username.clone(),
            address: Some(self.address.clone()),
        }
    }
}

/// Whoever sent the request: a member, or a visitor (with the wiki's settings, which decide
/// what a visitor may do).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub member: Option<CurrentUser>,
    /// The member's CSRF nonce, kept in their session.
    pub(crate) nonce: Option<String>,
    /// Loaded for visitors only (members' requests do not need them).
    pub wiki: Option<WikiSettings>,
}

impl Viewer {
    pub fn is_member(&self) -> bool {
        self.member.is_some()
    }

    pub fn is_admin(&self) -> bool {
        self.member.as_ref().is_some_and(CurrentUser::is_admin)
    }
}

/// Paths a visitor reaches on a members-only wiki: the way in, and what its pages are made of.
fn open_to_visitors(path: &str) -> bool {
    matches!(
        path,
        "/login"
            | "/login/two-factor"
            | crate::auth::oidc::START_PATH
            | crate::auth::oidc::CALLBACK_PATH
            | "/register"
            | "/favicon.ico"
            | "/password/forgot"
            | "/password/reset"
            | "/email/verify"
    ) || path.starts_with("/static/")
}

/// The member behind a session, if any; a session whose member is gone or blocked is ended.
/// The member's row comes with the session, read in the same query (`models::session`).
async fn member_of(
    session: &Session,
    address: String,
) -> Result<(Option<CurrentUser>, Option<String>), AppError> {
    let Some(user_id) = session.get::<i32>(USER_ID_KEY).await? else {
        return Ok((None, None));
    };
    // Absent when the member's row is gone.
    let found = session.get::<SessionMember>(MEMBER_KEY).await?;
    match found {
        Some(found) if found.id == user_id && !found.blocked => {
            let nonce = session.get::<String>(CSRF_KEY).await?;
            let seen = session.get::<i64>(SEEN_KEY).await?.unwrap_or(0);
            let now = now_ms();
            if now - seen > REFRESH_EVERY_MS {
                session.insert(SEEN_KEY, now).await?;
                session.insert(ADDRESS_KEY, &address).await?;
            }
            let role = Role::parse(&found.role).unwrap_or(Role::Reader);
            Ok((
                Some(CurrentUser {
                    id: found.id,
                    username: found.username,
                    avatar: found.avatar,
                    role,
                    address,
                }),
                nonce,
            ))
        }
        // The account is gone or blocked: so is its session.
        _ => {
            session.flush().await?;
            Ok((None, None))
        }
    }
}

/// The path and query a visitor asked for, for `/login?next=`.
fn asked_for(uri: &Uri) -> String {
    uri.path_and_query().map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

/// Where the login page sends a member back to. A page they asked for, as asked; after a form
/// whose address shows nothing (delete, revert, a role change), the page the form was on.
fn return_to(method: &Method, uri: &Uri) -> String {
    if method == Method::GET || method == Method::HEAD {
        return asked_for(uri);
    }
    let path = uri.path();
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "wiki", _, "edit" | "rename"] => path.to_owned(),
        ["", "wiki", title, ..] => format!("/wiki/{title}"),
        ["", "admin", area, _, ..] => format!("/admin/{area}"),
        ["", "preview"] => "/".to_owned(),
        _ => path.to_owned(),
    }
}

/// The middleware that resolves the [`Viewer`] and keeps visitors out of a members-only wiki.
pub async fn resolve(
    State(state): State<AppState>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path.starts_with("/static/") || matches!(path, "/favicon.ico" | "/healthz" | "/metrics") {
        // Assets and the operator's probes need nobody: no session or settings lookup. (A
        // missing asset's 404 page then shows the visitor's layout, whoever asked.)
        request.extensions_mut().insert(Viewer { member: None, nonce: None, wiki: None });
        return next.run(request).await;
    }
    let uri = request.uri().clone();
    let flash = Flash::from_extensions(&state, request.extensions());
    let address = crate::extract::ClientIp::of(request.extensions()).shown();
    let refusal = match viewer_of(&state, &session, &uri, flash, address).await {
        Ok(Ok(viewer)) => {
            request.extensions_mut().insert(viewer);
            return next.run(request).await;
        }
        Ok(Err(refusal)) => refusal,
        Err(err) => err.into_response(),
    };
    let too_large = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|length| length > DISCARD_MAX);
    let mut refusal = refusal;
    if too_large {
        // Not worth reading: the connection cannot carry another request after it. (A smaller
        // body is read and dropped by the front, see `app::Front`, so that the client reads
        // this answer instead of a reset.)
        refusal
            .headers_mut()
            .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    refusal
}

/// The largest body of a refused visitor's request that is read (and dropped) before answering.
const DISCARD_MAX: usize = crate::app::FORM_BODY_LIMIT;

async fn viewer_of(
    state: &AppState,
    session: &Session,
    uri: &Uri,
    flash: Option<Flash>,
    address: String,
) -> Result<Result<Viewer, Response>, AppError> {
    let (member, nonce) = member_of(session, address).await?;
    if member.is_some() {
        let path = uri.path();
        let open = path.starts_with(ENROL_PATH) || path == "/logout" || open_to_visitors(path);
        if !open && session.get::<bool>(ENROL_KEY).await?.unwrap_or(false) {
            return Ok(Err(Redirect::to(ENROL_PATH).into_response()));
        }
        return Ok(Ok(Viewer { member, nonce, wiki: None }));
    }
    let wiki = match state.cache.stamp() {
        Some(stamp) => match state.cache.settings(stamp) {
            Some(kept) => kept,
            None => {
                let wiki = setting::load(&state.db.read).await?;
                state.cache.keep_settings(wiki, stamp);
                wiki
            }
        },
        None => setting::load(&state.db.read).await?,
    };
    let path = uri.path();
    if wiki.read_access == ReadAccess::Members && !open_to_visitors(path) {
        if path == "/recent.atom" {
            return Ok(Err(crate::error::error_page(
                StatusCode::UNAUTHORIZED,
                "Members only",
                "This wiki is for its members: log in to read its feed.",
            )));
        }
        if let Some(flash) = flash {
            flash.push(Kind::Info, "This wiki is for its members. Please log in.");
        }
        let target = format!("/login?next={}", crate::urls::encode_query(&asked_for(uri)));
        return Ok(Err(Redirect::to(&target).into_response()));
    }
    Ok(Ok(Viewer { member: None, nonce: None, wiki: Some(wiki) }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the viewer middleware is missing on this route").into())
    }
}

/// Proof that a member (any role) sent the request; a visitor is sent to the login page.
#[derive(Debug, Clone)]
pub struct Member(pub CurrentUser);

/// Proof that a member who may change pages (editor or admin) sent the request; a reader gets
/// a 403 page that says why, a visitor the login page.
#[derive(Debug, Clone)]
pub struct Editor(pub CurrentUser);

/// Proof that an admin sent the request; other members get a 403, visitors the login page.
#[derive(Debug, Clone)]
pub struct Admin(pub CurrentUser);

/// Proof that an admin sent a request that changes pages (restoring a deleted page): a reader
/// is told why readers change nothing, an editor that only admins may, a visitor goes to log in.
#[derive(Debug, Clone)]
pub struct PageAdmin(pub CurrentUser);

/// The member, or the redirect to the login page that comes back here.
async fn member_or_login(parts: &mut Parts, state: &AppState) -> Result<CurrentUser, AppError> {
    let viewer = Viewer::from_request_parts(parts, state).await?;
    match viewer.member {
        Some(member) => Ok(member),
        None => {
            if let Some(flash) = Flash::from_extensions(state, &parts.extensions) {
                flash.push(Kind::Danger, "You must be logged in to access this page.");
            }
            let uri = parts.extensions.get::<OriginalUri>().map_or(&parts.uri, |original| &original.0);
            Err(AppError::LoginRequired { next: return_to(&parts.method, uri) })
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        member_or_login(parts, state).await.map(Self)
    }
}

impl FromRequestParts<AppState> for Editor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let member = member_or_login(parts, state).await?;
        if member.role.may_edit() { Ok(Self(member)) } else { Err(AppError::ReadOnly) }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let member = member_or_login(parts, state).await?;
        if member.is_admin() {
            Ok(Self(member))
        } else {
            Err(AppError::Forbidden("Only an admin can do this."))
        }
    }
}

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let member = member_or_login(parts, state).await?;
        match member.role {
            Role::Admin => Ok(Self(member)),
            Role::Editor => Err(AppError::Forbidden("Only an admin can do this.")),
            Role::Reader => Err(AppError::ReadOnly),
        }
    }
}

/// Where a session was started from: the client address and its `User-Agent`, for the
/// member's list of sessions.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The address, as rate limits key it.
    pub client: crate::extract::ClientIp,
    pub address: String,
    pub agent: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).chars().take(255).collect())
            .unwrap_or_default();
        let client = crate::extract::ClientIp::of(&parts.extensions);
        Ok(Self { client, address: client.shown(), agent })
    }
}

/// Starts a member's session under a new id (no fixation), with a fresh CSRF nonce.
pub async fn log_in(session: &Session, user_id: i32, origin: &Origin) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.clear().await;
    let now = now_ms();
    session.insert(USER_ID_KEY, user_id).await?;
    session.insert(CSRF_KEY, random_value()).await?;
    session.insert(SEEN_KEY, now).await?;
    session.insert(CREATED_KEY, now).await?;
    session.insert(ADDRESS_KEY, &origin.address).await?;
    session.insert(AGENT_KEY, &origin.agent).await?;
    Ok(())
}

/// Marks the session as one that must enrol in two-factor before anything else.
pub async fn require_enrolment(session: &Session) -> Result<(), AppError> {
    session.insert(ENROL_KEY, true).await?;
    Ok(())
}

/// The member enrolled: the session is free again.
pub async fn enrolled(session: &Session) -> Result<(), AppError> {
    session.remove::<bool>(ENROL_KEY).await?;
    Ok(())
}

/// Ends the session: deleted server-side, so a replayed cookie is anonymous.
pub async fn log_out(session: &Session) -> Result<(), AppError> {
    session.flush().await?;
    Ok(())
}

//! The request context: who is asking (from the server-side session), their CSRF binding, and
//! the flash messages waiting for them.

use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};
use tower_sessions::Session;

use crate::app::AppState;
use crate::auth::csrf::random_value;
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::models::session::USER_ID_KEY;
use crate::models::{now_ms, user};
use crate::templates::{Layout, NavUser};

/// Session key of the member's CSRF nonce.
const CSRF_KEY: &str = "csrf";
/// Session key of the last time the expiry was pushed back (Unix ms).
const SEEN_KEY: &str = "seen";
/// The expiry moves at most this often: an hour of inactivity, with five minutes' grain, costs
/// one write per member per five minutes instead of one per request.
const REFRESH_EVERY_MS: i64 = 5 * 60 * 1000;

/// A logged-in member.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i32,
    pub username: String,
    pub avatar: Option<String>,
    pub is_admin: bool,
}

/// Everything a handler needs to know about the browser that asked.
pub struct Ctx {
    pub state: AppState,
    pub session: Session,
    pub cookies: Cookies,
    pub user: Option<CurrentUser>,
    session_nonce: Option<String>,
    visitor_value: OnceLock<String>,
    /// The peer address of the connection (rate limits are per address).
    pub client_ip: Option<std::net::IpAddr>,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the session layer is missing"))?;
        let cookies = parts
            .extensions
            .get::<Cookies>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the cookie layer is missing"))?;

        let mut user = None;
        let mut session_nonce = None;
        if let Some(user_id) = session.get::<i32>(USER_ID_KEY).await? {
            match user::find_by_id(&state.db.read, user_id).await? {
                Some(found) => {
                    session_nonce = session.get::<String>(CSRF_KEY).await?;
                    let seen = session.get::<i64>(SEEN_KEY).await?.unwrap_or(0);
                    let now = now_ms();
                    if now - seen > REFRESH_EVERY_MS {
                        session.insert(SEEN_KEY, now).await?;
                    }
                    user = Some(CurrentUser {
                        id: found.id,
                        username: found.username,
                        avatar: found.avatar,
                        is_admin: found.is_admin,
                    });
                }
                // The account is gone: so is its session.
                None => session.flush().await?,
            }
        }

        let client_ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        Ok(Self {
            state: state.clone(),
            session,
            cookies,
            user,
            session_nonce,
            visitor_value: OnceLock::new(),
            client_ip,
        })
    }
}

impl Ctx {
    fn cookie(&self, name: std::borrow::Cow<'static, str>, value: String) -> Cookie<'static> {
        Cookie::build((name, value))
            .path("/")
            .http_only(true)
            .secure(self.state.settings.secure_cookies)
            .same_site(SameSite::Lax)
            .build()
    }

    /// The cookie a visitor's form tokens are bound to.
    fn visitor_cookie(&self) -> std::borrow::Cow<'static, str> {
        crate::cookies::cookie_name(crate::cookies::VISITOR, self.state.settings.secure_cookies)
    }

    /// The value this browser's form tokens are bound to, created for a visitor on first use.
    fn binding(&self, create: bool) -> Option<String> {
        if self.user.is_some() {
            return self.session_nonce.as_ref().map(|nonce| format!("member:{nonce}"));
        }
        let value = match self.visitor_value.get() {
            Some(value) => value.clone(),
            None => match self.cookies.get(&self.visitor_cookie()) {
                Some(cookie) if cookie.value().len() == 64 => cookie.value().to_owned(),
                _ if create => {
                    let value = random_value();
                    self.cookies.add(self.cookie(self.visitor_cookie(), value.clone()));
                    value
                }
                _ => return None,
            },
        };
        let value = self.visitor_value.get_or_init(|| value).clone();
        Some(format!("visitor:{value}"))
    }

    /// The token the forms on this response carry.
    pub fn csrf_token(&self) -> String {
        self.binding(true).map(|binding| self.state.csrf.token(&binding)).unwrap_or_default()
    }

    /// Refuses a state-changing request whose token is missing, forged or made for another browser.
    pub fn check_csrf(&self, token: &str) -> Result<(), AppError> {
        match self.binding(false) {
            Some(binding) if self.state.csrf.verify(&binding, token) => Ok(()),
            _ => {
                tracing::warn!("refused a request with a bad CSRF token");
                Err(AppError::Csrf)
            }
        }
    }

    /// Queues a message for the next page.
    pub fn flash(&self, kind: Kind, text: &str) {
        flash::push(&self.cookies, &self.state.cookie_key, self.state.settings.secure_cookies, kind, text);
    }

    /// The layout of a page rendered for this browser; shows (and clears) pending messages.
    pub fn layout(&self) -> Layout {
        let user = self.user.as_ref().map(|user| NavUser {
            username: user.username.clone(),
            profile_href: "/profile".to_owned(),
            avatar_src: user.avatar.as_deref().map(crate::uploads::avatar_src),
        });
        let csrf_token = if user.is_some() { self.csrf_token() } else { String::new() };
        Layout {
            user,
            flashes: flash::take(&self.cookies, &self.state.cookie_key, self.state.settings.secure_cookies),
            csrf_token,
        }
    }

    /// The member, or a redirect to the login page that comes back to `next`.
    pub fn require_user(&self, next: &str) -> Result<&CurrentUser, AppError> {
        match &self.user {
            Some(user) => Ok(user),
            None => {
                self.flash(Kind::Danger, "You must be logged in to access this page.");
                Err(AppError::LoginRequired { next: next.to_owned() })
            }
        }
    }

    /// Starts a member's session under a new id (no fixation), with a fresh CSRF nonce.
    pub async fn log_in(&self, user_id: i32) -> Result<(), AppError> {
        self.session.cycle_id().await?;
        self.session.clear().await;
        self.session.insert(USER_ID_KEY, user_id).await?;
        self.session.insert(CSRF_KEY, random_value()).await?;
        self.session.insert(SEEN_KEY, now_ms()).await?;
        Ok(())
    }

    /// Ends the session: deleted server-side, so a replayed cookie is anonymous.
    pub async fn log_out(&self) -> Result<(), AppError> {
        self.session.flush().await?;
        Ok(())
    }
}

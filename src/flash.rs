//! Flash messages (the seed's `flash()`), kept in a signed cookie until the next page shows
//! them: a message for a visitor creates no server-side state, and one set at logout survives
//! the end of the session.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies, Key};

use crate::cookies::{FLASH, cookie_name};

/// More than this many pending messages and the oldest are dropped (cookies are small).
const MAX_PENDING: usize = 5;

/// The seed's three kinds of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Success,
    Danger,
    Info,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Danger => "danger",
            Self::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub kind: Kind,
    pub text: String,
    /// Where an Undo button posts (a path of this site, set by Quire itself: the cookie is
    /// signed), for whoever may undo what the message reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<String>,
}

fn read(cookies: &Cookies, key: &Key, secure: bool) -> Vec<Message> {
    cookies
        .signed(key)
        .get(&cookie_name(FLASH, secure))
        .and_then(|cookie| URL_SAFE_NO_PAD.decode(cookie.value()).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

/// Queues a message for the next page this browser sees.
pub fn push(cookies: &Cookies, key: &Key, secure: bool, kind: Kind, text: &str) {
    push_message(cookies, key, secure, Message { kind, text: text.to_owned(), undo: None });
}

fn push_message(cookies: &Cookies, key: &Key, secure: bool, message: Message) {
    let mut pending = read(cookies, key, secure);
    pending.push(message);
    if pending.len() > MAX_PENDING {
        pending.drain(..pending.len() - MAX_PENDING);
    }
    let json = serde_json::to_vec(&pending).unwrap_or_default();
    let cookie = Cookie::build((cookie_name(FLASH, secure), URL_SAFE_NO_PAD.encode(json)))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build();
    cookies.signed(key).add(cookie);
}

/// Takes the pending messages, clearing them for the next page.
pub fn take(cookies: &Cookies, key: &Key, secure: bool) -> Vec<Message> {
    let pending = read(cookies, key, secure);
    let name = cookie_name(FLASH, secure);
    if cookies.get(&name).is_some() {
        // A `__Host-` cookie is only replaced by one with the same attributes, removal included.
        cookies.remove(Cookie::build((name, "")).path("/").secure(secure).http_only(true).build());
    }
    pending
}

/// Queues messages for the next page (the seed's `flash()`), as an extractor.
#[derive(Clone)]
pub struct Flash {
    cookies: Cookies,
    key: Key,
    secure: bool,
}

impl Flash {
    /// The flash of a request, when the cookie layer ran.
    pub fn from_extensions(
        state: &crate::app::AppState,
        extensions: &axum::http::Extensions,
    ) -> Option<Self> {
        let cookies = extensions.get::<Cookies>()?.clone();
        Some(Self { cookies, key: state.cookie_key.clone(), secure: state.settings.secure_cookies })
    }

    pub fn push(&self, kind: Kind, text: &str) {
        push(&self.cookies, &self.key, self.secure, kind, text);
    }

    /// A message with an Undo button that posts to `undo` (a path of this site).
    pub fn push_with_undo(&self, kind: Kind, text: &str, undo: String) {
        let message = Message { kind, text: text.to_owned(), undo: Some(undo) };
        push_message(&self.cookies, &self.key, self.secure, message);
    }

    /// True when no message waits for this request (no flash cookie came with it).
    pub fn is_empty(&self) -> bool {
        self.cookies.get(&cookie_name(FLASH, self.secure)).is_none()
    }

    /// Takes the pending messages (a page that shows them).
    pub fn take(&self) -> Vec<Message> {
        take(&self.cookies, &self.key, self.secure)
    }
}

impl axum::extract::FromRequestParts<crate::app::AppState> for Flash {
    type Rejection = crate::error::AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::app::AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::from_extensions(state, &parts.extensions)
            .ok_or_else(|| anyhow::anyhow!("the cookie layer is missing").into())
    }
}

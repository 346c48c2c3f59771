//! A login half done: the password was right, the second factor is still to come. No session
//! exists yet; the browser holds a signed cookie naming the member for five minutes, bound to
//! the account (id and creation time) and to its password hash, so a password change or a
//! deleted account voids it.

use sha2::{Digest, Sha256};
use time::Duration;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies, Key};

use crate::models::{now_ms, user};

/// The cookie's name (with the `__Host-` prefix when cookies are `Secure`).
pub const COOKIE: &str = "quire_2fa";
/// How long the second step may take.
pub const LIFETIME_MS: i64 = 5 * 60 * 1000;

/// Who passed the password step, as the signed cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub user_id: i32,
    created_at: i64,
    issued_at: i64,
    fingerprint: String,
}

/// Binds the cookie to the password hash: 16 hex digits of its SHA-256.
fn fingerprint(member: &user::Model) -> String {
    hex::encode(&Sha256::digest(member.password_hash.as_bytes())[..8])
}

impl Pending {
    /// Sets the cookie after a right password.
    pub fn issue(cookies: &Cookies, key: &Key, secure: bool, member: &user::Model) {
        let value = format!("{}.{}.{}.{}", member.id, member.created_at, now_ms(), fingerprint(member));
        let cookie = Cookie::build((crate::cookies::cookie_name(COOKIE, secure), value))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(Duration::milliseconds(LIFETIME_MS))
            .build();
        cookies.signed(key).add(cookie);
    }

    /// The pending login of this browser: signed, not expired; `None` otherwise.
    pub fn read(cookies: &Cookies, key: &Key, secure: bool) -> Option<Self> {
        let name = crate::cookies::cookie_name(COOKIE, secure);
        let cookie = cookies.signed(key).get(&name)?;
        let mut parts = cookie.value().split('.');
        let pending = Self {
            user_id: parts.next()?.parse().ok()?,
            created_at: parts.next()?.parse().ok()?,
            issued_at: parts.next()?.parse().ok()?,
            fingerprint: parts.next()?.to_owned(),
        };
        let age = now_ms() - pending.issued_at;
        (parts.next().is_none() && (0..LIFETIME_MS).contains(&age)).then_some(pending)
    }

    /// True when `member` is still the account (and password) this cookie was made for.
    pub fn is_for(&self, member: &user::Model) -> bool {
        member.id == self.user_id
            && member.created_at == self.created_at
            && fingerprint(member) == self.fingerprint
            && !member.is_blocked()
    }

    /// Removes the cookie (the login finished, or must start over).
    pub fn clear(cookies: &Cookies, secure: bool) {
        let mut cookie = Cookie::from(crate::cookies::cookie_name(COOKIE, secure));
        cookie.set_path("/");
        cookies.remove(cookie);
    }
}

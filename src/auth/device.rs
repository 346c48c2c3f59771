//! The known-device cookie: signed proof that this browser logged in to an account before.
//!
//! Its holder is exempt from the account-wide login limit, so an attacker spraying guesses at
//! an account from many addresses slows everyone else down but cannot lock the owner out of
//! the browsers they already use (as GitHub and MediaWiki do). It proves nothing else: it
//! never logs anyone in. Each entry names the member by id and creation time, so a later
//! account that reuses an id is not covered.

use time::Duration;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies, Key};

use crate::models::user;

/// The cookie's name (with the `__Host-` prefix when cookies are `Secure`).
pub const COOKIE: &str = "quire_device";
/// Accounts remembered per browser; the oldest drops out.
const MAX_ACCOUNTS: usize = 8;
/// How long a browser stays known after its last successful login.
const LIFETIME: Duration = Duration::days(365);

/// The accounts this browser has logged in to, as its signed cookie says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    accounts: Vec<(i32, i64)>,
}

impl KnownDevice {
    /// Reads the cookie; a missing, forged or malformed one knows no account.
    pub fn read(cookies: &Cookies, key: &Key, secure: bool) -> Self {
        let name = crate::cookies::cookie_name(COOKIE, secure);
        let accounts = cookies.signed(key).get(&name).map(|cookie| parse(cookie.value())).unwrap_or_default();
        Self { accounts }
    }

    /// True when this browser logged in to `member` before.
    pub fn knows(&self, member: &user::Model) -> bool {
        self.accounts.contains(&(member.id, member.created_at))
    }

    /// Remembers `member` (after a successful login), most recent last.
    pub fn remember(mut self, cookies: &Cookies, key: &Key, secure: bool, member: &user::Model) {
        let entry = (member.id, member.created_at);
        self.accounts.retain(|known| *known != entry);
        self.accounts.push(entry);
        if self.accounts.len() > MAX_ACCOUNTS {
            self.accounts.drain(..self.accounts.len() - MAX_ACCOUNTS);
        }
        let value = self.accounts.iter().map(|(id, created)| format!("{id}-{created}")).collect::<Vec<_>>();
        let cookie = Cookie::build((crate::cookies::cookie_name(COOKIE, secure), value.join(".")))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(LIFETIME)
            .build();
        cookies.signed(key).add(cookie);
    }
}

fn parse(value: &str) -> Vec<(i32, i64)> {
    value
        .split('.')
        .filter_map(|entry| {
            let (id, created) = entry.split_once('-')?;
            Some((id.parse().ok()?, created.parse().ok()?))
        })
        .take(MAX_ACCOUNTS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn entries_parse_and_garbage_is_ignored() {
        assert_eq!(parse("3-1700000000000.12-5"), [(3, 1_700_000_000_000), (12, 5)]);
        assert_eq!(parse(""), []);
        assert_eq!(parse("x-1.4-y.7"), []);
        assert_eq!(parse(&"1-1.".repeat(100)).len(), 8);
    }
}

//! The names of Quire's cookies, in one place.
//!
//! When the public URL is https, every cookie name carries the `__Host-` prefix: browsers then
//! accept the cookie only when it is `Secure`, for `Path=/` and without a `Domain`, so neither a
//! sibling subdomain nor a plain-http response can plant or overwrite it (cookie tossing).

use std::borrow::Cow;

/// The session of a member (server-side; the cookie holds its id).
pub const SESSION: &str = "quire_session";
/// The random value a visitor's form tokens are bound to.
pub const VISITOR: &str = "quire_csrf";
/// Flash messages waiting for the next page.
pub const FLASH: &str = "quire_flash";

/// The colour scheme a reader chose (`light`, `dark`; none: the system's).
pub const THEME: &str = "quire_theme";

/// The name just registered, for the login page to fill in (signed, ten minutes).
pub const REGISTERED: &str = "quire_registered";

/// The name a cookie is set and read under: `base`, prefixed with `__Host-` when cookies are
/// `Secure` (an https public URL).
pub fn cookie_name(base: &'static str, secure: bool) -> Cow<'static, str> {
    if secure { Cow::Owned(format!("__Host-{base}")) } else { Cow::Borrowed(base) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_only_for_secure_cookies() {
        assert_eq!(cookie_name(SESSION, false), "quire_session");
        assert_eq!(cookie_name(SESSION, true), "__Host-quire_session");
        assert_eq!(cookie_name(VISITOR, true), "__Host-quire_csrf");
        assert_eq!(cookie_name(FLASH, true), "__Host-quire_flash");
    }
}

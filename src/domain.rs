//! Typed inputs: each is parsed once at the edge, with the contract's limits written here only.

use std::fmt;

/// A username: 1–50 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// A title: 1–100 characters after trimming, printable (no control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTitle(String);

/// A password: 8–1024 characters, kept as typed; `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

pub const USERNAME_MAX: usize = 50;
pub const TITLE_MAX: usize = 100;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
/// Page content: up to 1 MiB of Markdown.
pub const CONTENT_MAX_BYTES: usize = 1024 * 1024;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("Username is required.");
        }
        if name.chars().count() > USERNAME_MAX {
            return Err("Username must be at most 50 characters long.");
        }
        if has_control(name) {
            return Err("Username must not contain control characters.");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PageTitle {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let title = raw.trim();
        if title.is_empty() {
            return Err("Title is required.");
        }
        if title.chars().count() > TITLE_MAX {
            return Err("Title must be at most 100 characters long.");
        }
        if has_control(title) {
            return Err("Title must not contain control characters.");
        }
        // Browsers and HTTP clients resolve a path segment of `.` or `..` (even percent-encoded)
        // away, so such a page could never be opened.
        if title == "." || title == ".." {
            return Err("Title cannot be just “.” or “..”.");
        }
        Ok(Self(title.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Password {
    pub fn parse(raw: String) -> Result<Self, &'static str> {
        let length = raw.chars().count();
        if length < PASSWORD_MIN {
            return Err("Password must be at least 8 characters long.");
        }
        if length > PASSWORD_MAX {
            return Err("Password must be at most 1024 characters long.");
        }
        Ok(Self(raw))
    }

    /// A password as typed at login, which is checked rather than validated.
    pub fn unchecked(raw: String) -> Self {
        Self(raw)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Checks page content against its size limit.
pub fn check_content(content: &str) -> Result<(), &'static str> {
    if content.trim().is_empty() {
        return Err("Content is required.");
    }
    if content.len() > CONTENT_MAX_BYTES {
        return Err("Content must be at most 1 MiB.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_bounded_in_characters_not_bytes() {
        assert_eq!(Username::parse("  alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("   ").is_err());
        assert!(Username::parse(&"é".repeat(50)).is_ok());
        assert!(Username::parse(&"é".repeat(51)).is_err());
        assert!(Username::parse("a\u{0}b").is_err());
        assert!(Username::parse("a\nb").is_err());
        assert!(Username::parse("<script>").is_ok(), "markup is escaped on output, not refused");
    }

    #[test]
    fn titles_allow_any_printable_character() {
        for title in ["a/b", "What? #1 100% +", "日本語のページ", "<b>x</b>", "...", "a\\b", "../x"] {
            assert_eq!(PageTitle::parse(title).unwrap().as_str(), title);
        }
        assert!(PageTitle::parse(&"x".repeat(100)).is_ok());
        assert!(PageTitle::parse(&"x".repeat(101)).is_err());
        assert!(PageTitle::parse("tab\there").is_err());
        assert!(PageTitle::parse("").is_err());
        assert!(PageTitle::parse(".").is_err());
        assert!(PageTitle::parse(" .. ").is_err());
    }

    #[test]
    fn passwords_are_bounded_and_never_debug_printed() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("x".repeat(1024)).is_ok());
        assert!(Password::parse("x".repeat(1025)).is_err());
        let shown = format!("{:?}", Password::parse("hunter2hunter2".into()).unwrap());
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn content_is_limited_to_one_mebibyte() {
        assert!(check_content(&"a".repeat(CONTENT_MAX_BYTES)).is_ok());
        assert!(check_content(&"a".repeat(CONTENT_MAX_BYTES + 1)).is_err());
        assert!(check_content(" \n ").is_err());
    }
}

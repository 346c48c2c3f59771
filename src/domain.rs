//! Typed inputs: each is parsed once at the edge, with the contract's limits written here only.

use std::fmt;

use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// A username: 1–50 characters after trimming, text that stays text (see [`check_text`]), in
/// ordinary rather than compatibility characters (`Ａdmin` is refused: it is `Admin` in fullwidth
/// form). Unique in the database under [`username_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

/// A title: 1–100 characters after trimming, text that stays text, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTitle(String);

/// An edit summary: whitespace runs collapsed to one space, at most 200 characters, text that
/// stays text; may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary(String);

/// A password: 8–1024 characters, kept as typed; `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

pub const USERNAME_MAX: usize = 50;
pub const TITLE_MAX: usize = 100;
pub const SUMMARY_MAX: usize = 200;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 1024;
/// Page content: up to 1 MiB of Markdown (UTF-8 bytes, whatever the script).
pub const CONTENT_MAX_BYTES: usize = 1024 * 1024;

/// Why a name, title or summary was refused, in words for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} is required.")]
    Missing(&'static str),
    #[error("{0} must be at most {1} characters long.")]
    TooLong(&'static str, usize),
    #[error("{0} must not contain control characters or line breaks.")]
    Control(&'static str),
    #[error("{0} must not contain noncharacters (such as U+FFFE or U+FFFF).")]
    Noncharacter(&'static str),
    #[error(
        "{0} must not contain bidirectional text controls (they make text read in another order than it shows)."
    )]
    Bidi(&'static str),
    #[error(
        "{0} must not contain invisible characters (zero-width spaces or joiners, byte-order marks, fillers, variation selectors)."
    )]
    Invisible(&'static str),
    #[error(
        "Username must be written in ordinary characters, not fullwidth, ligature or other compatibility forms (for example “{0}”)."
    )]
    Compatibility(String),
    #[error("Title cannot be just “.” or “..”.")]
    DotSegment,
}

impl From<TextError> for String {
    fn from(err: TextError) -> Self {
        err.to_string()
    }
}

/// What is wrong with one character of a name, title or summary, if anything.
fn char_problem(c: char, field: &'static str) -> Option<TextError> {
    let code = u32::from(c);
    if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
        return Some(TextError::Control(field));
    }
    // U+FDD0..U+FDEF and the last two code points of every plane.
    if (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE {
        return Some(TextError::Noncharacter(field));
    }
    if matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
        return Some(TextError::Bidi(field));
    }
    // Blank without being Default_Ignorable: Braille blank, interlinear annotation marks.
    if matches!(c, '\u{2800}' | '\u{FFF9}'..='\u{FFFB}') || is_default_ignorable(c) {
        return Some(TextError::Invisible(field));
    }
    None
}

/// True for a Default_Ignorable_Code_Point (zero-width space and joiners, BOM, soft hyphen,
/// Hangul fillers, variation selectors, tags…). The UTS #39 skeleton drops exactly these
/// (`unicode-security` keeps its table private), so a character whose skeleton is empty is one.
fn is_default_ignorable(c: char) -> bool {
    let mut buf = [0u8; 4];
    unicode_security::skeleton(c.encode_utf8(&mut buf)).next().is_none()
}

/// Checks that `text` stays text: no control characters, noncharacters, bidirectional
/// controls or invisible characters. The rule shared by usernames, titles and summaries.
pub fn check_text(text: &str, field: &'static str) -> Result<(), TextError> {
    match text.chars().find_map(|c| char_problem(c, field)) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// The key under which usernames are unique: the UTS #39 confusable skeleton of the NFKC form,
/// hashed (SHA-256, hex) so that it fits an indexed column whatever the expansion. `admin`,
/// `аdmin` (Cyrillic а), `ａdmin` (fullwidth) and `admin` + U+200B share one key. Nothing folds
/// case: `Alice` and `alice` keep two keys, as the seed's data has them (the confusable table
/// itself equates a few case pairs that look the same, such as Cyrillic palochka `ӏ`/`Ӏ`).
pub fn username_key(name: &str) -> String {
    let nfkc: String = name.nfkc().collect();
    let skeleton: String = unicode_security::skeleton(&nfkc).collect();
    hex::encode(Sha256::digest(skeleton.as_bytes()))
}

impl Username {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        Self::parse_untrimmed(raw.trim())
    }

    /// The same rules on a name kept byte for byte (an import): only an empty one is refused
    /// for its surrounding spaces.
    pub fn parse_untrimmed(name: &str) -> Result<Self, TextError> {
        if name.trim().is_empty() {
            return Err(TextError::Missing("Username"));
        }
        if name.chars().count() > USERNAME_MAX {
            return Err(TextError::TooLong("Username", USERNAME_MAX));
        }
        check_text(name, "Username")?;
        // Canonical forms (a decomposed `noël`) are fine; compatibility forms are look-alikes.
        if !name.nfc().eq(name.nfkc()) {
            return Err(TextError::Compatibility(name.nfkc().collect()));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key the database keeps usernames unique under (see [`username_key`]).
    pub fn key(&self) -> String {
        username_key(&self.0)
    }
}

impl PageTitle {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let title = raw.trim();
        if title.is_empty() {
            return Err(TextError::Missing("Title"));
        }
        if title.chars().count() > TITLE_MAX {
            return Err(TextError::TooLong("Title", TITLE_MAX));
        }
        check_text(title, "Title")?;
        // Browsers and HTTP clients resolve a path segment of `.` or `..` (even percent-encoded)
        // away, so such a page could never be opened.
        if title == "." || title == ".." {
            return Err(TextError::DotSegment);
        }
        Ok(Self(title.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Summary {
    /// Collapses whitespace (a pasted line break becomes a space), then checks the rest.
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let summary = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if summary.chars().count() > SUMMARY_MAX {
            return Err(TextError::TooLong("The summary", SUMMARY_MAX));
        }
        check_text(&summary, "The summary")?;
        Ok(Self(summary))
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
    fn the_look_alikes_of_admin_are_refused_or_share_its_key() {
        let admin = Username::parse("admin").unwrap().key();
        // Invisible characters are refused outright, with a message that says so.
        for (name, expected) in [
            ("admin\u{200B}", TextError::Invisible("Username")),
            ("admin\u{FEFF}", TextError::Invisible("Username")),
            ("\u{FEFF}admin", TextError::Invisible("Username")),
            ("ad\u{3164}min", TextError::Invisible("Username")),
            ("admin\u{3164}", TextError::Invisible("Username")),
            ("adm\u{200D}in", TextError::Invisible("Username")),
            ("admin\u{00AD}", TextError::Invisible("Username")),
            ("admin\u{FE0F}", TextError::Invisible("Username")),
            ("admin\u{2800}", TextError::Invisible("Username")),
            ("admin\u{202E}", TextError::Bidi("Username")),
            ("admin\u{2066}", TextError::Bidi("Username")),
            ("admin\u{200F}", TextError::Bidi("Username")),
            ("admin\u{FFFF}", TextError::Noncharacter("Username")),
            ("admin\u{FDD0}", TextError::Noncharacter("Username")),
            ("admin\u{10FFFE}", TextError::Noncharacter("Username")),
            ("ad\u{2028}min", TextError::Control("Username")),
            ("ad\u{7}min", TextError::Control("Username")),
        ] {
            assert_eq!(Username::parse(name).unwrap_err(), expected, "{name:?}");
        }
        // Fullwidth letters are compatibility forms: refused, with the ordinary spelling.
        assert_eq!(Username::parse("\u{FF21}dmin").unwrap_err(), TextError::Compatibility("Admin".into()));
        assert_eq!(Username::parse("\u{FF41}dmin").unwrap_err(), TextError::Compatibility("admin".into()));
        assert!(Username::parse("x\u{B2}").is_err(), "superscript two");
        assert!(Username::parse("\u{FB01}sh").is_err(), "the fi ligature");
        // Other scripts' look-alikes parse, but share the key: the database refuses them.
        for name in ["\u{430}dmin", "\u{430}\u{501}min", "adm\u{456}n", "adm\u{131}n"] {
            assert_eq!(Username::parse(name).unwrap().key(), admin, "{name:?}");
        }
        // What NFKC makes of a fullwidth name (an old row) collides too.
        assert_eq!(username_key("\u{FF41}dmin"), admin);
        assert_eq!(username_key("admin\u{200B}"), admin, "old rows with invisible characters");
    }

    #[test]
    fn case_stays_significant_in_the_username_key() {
        assert_ne!(username_key("Alice"), username_key("alice"));
        assert_ne!(username_key("Admin"), username_key("admin"));
        assert_ne!(username_key("ADMIN"), username_key("admin"));
        for (upper, lower) in ('A'..='Z').zip('a'..='z') {
            assert_ne!(username_key(&format!("{upper}x")), username_key(&format!("{lower}x")), "{upper}");
        }
        for (upper, lower) in ['Ä', 'É', 'Ж', 'Д', 'Σ', 'Ω'].into_iter().zip(['ä', 'é', 'ж', 'д', 'σ', 'ω'])
        {
            assert_ne!(username_key(&upper.to_string()), username_key(&lower.to_string()), "{upper}");
        }
        // Capital I and small L look alike: one key. `AIice` cannot sit beside `Alice`.
        assert_eq!(username_key("AIice"), username_key("Alice"));
        // The seed's members all keep distinct keys.
        let seed = [
            "zoë",
            "данил",
            "李小龙",
            "rocket🚀",
            "José Álvarez",
            "o'brien",
            "say \"hi\"",
            "<b>bold</b>",
            "Alice",
            "alice",
            "noe\u{308}l",
            "x",
            "bench",
        ];
        let keys: std::collections::HashSet<_> = seed.iter().map(|n| username_key(n)).collect();
        assert_eq!(keys.len(), seed.len());
        for name in seed {
            assert!(Username::parse(name).is_ok(), "{name}");
        }
        // Canonical equivalents are one name.
        assert_eq!(username_key("noe\u{308}l"), username_key("no\u{EB}l"));
        assert_eq!(username_key("admin").len(), 64);
    }

    #[test]
    fn titles_and_summaries_refuse_what_does_not_stay_text() {
        assert_eq!(PageTitle::parse("Pay \u{202E}gnp.exe").unwrap_err(), TextError::Bidi("Title"));
        assert_eq!(PageTitle::parse("\u{200B}").unwrap_err(), TextError::Invisible("Title"));
        assert_eq!(PageTitle::parse("\u{3164}").unwrap_err(), TextError::Invisible("Title"));
        assert_eq!(PageTitle::parse("Page\u{FFFF}").unwrap_err(), TextError::Noncharacter("Title"));
        assert_eq!(PageTitle::parse("a\u{2029}b").unwrap_err(), TextError::Control("Title"));
        assert_eq!(
            PageTitle::parse("a\u{202E}b").unwrap_err().to_string(),
            "Title must not contain bidirectional text controls (they make text read in another order than it shows)."
        );
        // Compatibility characters are fine in titles (only names must be told apart).
        assert!(PageTitle::parse("x² and ｆｕｌｌ").is_ok());
        assert_eq!(Summary::parse("  fixed\n a\ttypo ").unwrap().as_str(), "fixed a typo");
        assert_eq!(Summary::parse("").unwrap().as_str(), "");
        assert_eq!(Summary::parse("x\u{1}").unwrap_err(), TextError::Control("The summary"));
        assert_eq!(Summary::parse("\u{FFFF}").unwrap_err(), TextError::Noncharacter("The summary"));
        assert_eq!(Summary::parse("a\u{2067}b").unwrap_err(), TextError::Bidi("The summary"));
        assert_eq!(Summary::parse("a\u{200B}b").unwrap_err(), TextError::Invisible("The summary"));
        assert!(Summary::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            Summary::parse(&"é".repeat(201)).unwrap_err().to_string(),
            "The summary must be at most 200 characters long."
        );
    }

    proptest::proptest! {
        #[test]
        fn a_parsed_name_title_or_summary_holds_no_invisible_or_control_character(raw in "\\PC{0,8}[\u{0}-\u{3000}\u{FE00}-\u{FFFF}\u{E0000}-\u{E0100}]{0,4}\\PC{0,8}") {
            let parsed = [
                Username::parse(&raw).map(|u| u.0),
                PageTitle::parse(&raw).map(|t| t.0),
                Summary::parse(&raw).map(|s| s.0),
            ];
            for text in parsed.into_iter().flatten() {
                for c in text.chars() {
                    proptest::prop_assert!(char_problem(c, "x").is_none(), "{:?} in {:?}", c, text);
                    proptest::prop_assert!(!is_default_ignorable(c));
                }
            }
        }

        #[test]
        fn a_username_key_ignores_inserted_invisible_characters(name in "[a-zA-Z]{1,20}", at in 0usize..20, invisible in proptest::sample::select(vec!['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{3164}', '\u{00AD}', '\u{115F}'])) {
            let at = at.min(name.len());
            let spoof = format!("{}{invisible}{}", &name[..at], &name[at..]);
            proptest::prop_assert!(Username::parse(&spoof).is_err());
            proptest::prop_assert_eq!(username_key(&spoof), username_key(&name));
        }

        #[test]
        fn a_username_key_keeps_ascii_case(name in "[a-z]{1,20}") {
            let upper = name.to_uppercase();
            proptest::prop_assert_ne!(username_key(&upper), username_key(&name));
        }
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

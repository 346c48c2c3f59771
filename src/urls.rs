//! Building links that route back: titles and names percent-encoded into one path segment.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, percent_encode, utf8_percent_encode};

/// Everything but unreserved characters is encoded, `/` included, so a title is one segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~').remove(b'.');
/// In a query value: the same, and `.` needs no care.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~').remove(b'.').remove(b'/');

/// What a `Location` header must not carry raw: controls, space, the characters RFC 3986
/// excludes from URIs, and (by `percent_encode`) every byte past ASCII. `%` stays, so what is
/// already encoded is left as it is.
const LOCATION: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// One path segment (titles `.` and `..` are refused: no encoding survives URL normalization).
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// `/wiki/TITLE`
pub fn page(title: &str) -> String {
    format!("/wiki/{}", segment(title))
}

/// `/users/NAME`
pub fn user(name: &str) -> String {
    format!("/users/{}", segment(name))
}

pub fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

/// A `Location` value as a URI: spaces and non-ASCII percent-encoded (UTF-8), the rest kept.
pub fn location(value: &[u8]) -> Cow<'_, str> {
    percent_encode(value, LOCATION).into()
}

/// Where to go after login: a path on this site only (no `//host`, no `/\host`, no scheme).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_one_segment_that_decodes_back() {
        assert_eq!(page("a/b"), "/wiki/a%2Fb");
        assert_eq!(page("What? #1 100% +"), "/wiki/What%3F%20%231%20100%25%20%2B");
        assert_eq!(page("..."), "/wiki/...");
        assert_eq!(page("v1.2"), "/wiki/v1.2");
        assert_eq!(page("日本"), "/wiki/%E6%97%A5%E6%9C%AC");
    }

    #[test]
    fn locations_are_percent_encoded_once() {
        assert_eq!(location("/wiki/a b/ü".as_bytes()), "/wiki/a%20b/%C3%BC");
        assert_eq!(location(b"/wiki/a%20b?x=1&y=2#top"), "/wiki/a%20b?x=1&y=2#top");
        assert_eq!(location("/search?q=\"<日本>\"".as_bytes()), "/search?q=%22%3C%E6%97%A5%E6%9C%AC%3E%22");
        assert_eq!(location(b"/a\\b|c^d`e{f}"), "/a%5Cb%7Cc%5Ed%60e%7Bf%7D");
        assert_eq!(location(b"/login"), "/login");
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/create")), "/create");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/a\\b")), "/");
        assert_eq!(safe_next(None), "/");
    }
}

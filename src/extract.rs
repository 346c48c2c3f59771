//! Extractors whose failures become Quire's own error pages (400, 413, 415) instead of axum's
//! plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use percent_encoding::percent_decode;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A form whose only field is its CSRF token (logout, delete, restore, revert).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    pub csrf_token: String,
}

/// A page title from the path; a rejection (invalid UTF-8) becomes a 400 in the handler.
pub type TitlePath = Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>;

/// A URL-encoded form. Unlike `axum::Form`, bytes that are not UTF-8 are refused (400) rather
/// than silently replaced; an oversized body is a 413, another content type a 415.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = form_body(req, state).await?;
        decode_form(&body).map(Form)
    }
}

/// The body of a URL-encoded form, checked to be one and to be UTF-8, not yet decoded.
pub async fn form_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    let is_form = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(AppError::UnsupportedMediaType);
    }
    let body = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge
        } else {
            AppError::BadRequest("The form could not be read.".into())
        }
    })?;
    if !is_utf8_form(&body) {
        return Err(AppError::BadRequest(
            "The form could not be read: it must be valid UTF-8, URL-encoded.".into(),
        ));
    }
    Ok(body)
}

/// Decodes a form body (see [`form_body`]) into its fields.
pub fn decode_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_urlencoded::from_bytes(body).map_err(|_| {
        AppError::BadRequest("The form could not be read: it must be valid UTF-8, URL-encoded.".into())
    })
}

/// The client's address: the connection's peer, or the client a trusted proxy names
/// (`proxy.rs`). Rate limits, sessions and the audit log are kept per address.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl ClientIp {
    /// The address as rate-limit keys (and the password queue's shares) spell it. An IPv6
    /// client is keyed by its /64, the block one subscriber gets: keying by the whole address
    /// would give one machine 2^64 fresh limits. An IPv4-mapped address is its IPv4 address.
    pub fn key(self) -> String {
        match self.0 {
            None => "unknown".to_owned(),
            Some(std::net::IpAddr::V4(v4)) => v4.to_string(),
            Some(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None if v6.is_loopback() => v6.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

#[cfg(test)]
mod client_ip_tests {
    use super::ClientIp;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_block() {
        let key = |ip: &str| ClientIp(Some(ip.parse().unwrap())).key();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::1"), "::1");
        assert_eq!(ClientIp(None).key(), "unknown");
    }
}

impl ClientIp {
    /// The address the outermost layer resolved, else the connection's peer.
    pub fn of(extensions: &axum::http::Extensions) -> Self {
        match extensions.get::<crate::proxy::ClientAddr>() {
            Some(client) => Self(client.ip),
            None => Self(
                extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip()),
            ),
        }
    }

    /// The address as people read it (the session list, the audit log).
    pub fn shown(self) -> String {
        self.0.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// True when every key and value decodes (`+` as space, `%XX` escapes) to valid UTF-8.
fn is_utf8_form(body: &[u8]) -> bool {
    body.split(|&b| b == b'&').all(|pair| {
        let pair: Vec<u8> = pair.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_decode(&pair).decode_utf8().is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::is_utf8_form;

    #[test]
    fn forms_with_bytes_that_are_not_utf8_are_recognised() {
        assert!(is_utf8_form(b"username=alice&password=p%C3%A4ss+word"));
        assert!(is_utf8_form(b""));
        assert!(!is_utf8_form(b"username=%FF%FE"));
        assert!(!is_utf8_form(b"username=\xff"));
        assert!(!is_utf8_form(b"%C3=x"));
    }
}

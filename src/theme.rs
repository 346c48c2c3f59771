//! The colour scheme a reader chose: light, dark, or the system's (`prefers-color-scheme`),
//! remembered in a cookie for a year. `GET /theme?set=dark&next=/wiki/Home` sets it and goes back.
//!
//! A GET, like a language switch: the choice is a link that works without script, it changes
//! nothing anyone else sees (so it moves no change epoch), and pages kept for visitors carry no
//! form token it could use. The worst a third-party link can do is switch a reader's colours.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};

use crate::app::AppState;
use crate::cookies::{THEME, cookie_name};

/// A reader's colour scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    Light,
    Dark,
    /// Whatever the browser's `prefers-color-scheme` says.
    #[default]
    System,
}

impl Theme {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            "system" => Some(Self::System),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "system",
        }
    }

    /// The theme a request's cookie names (either cookie name: the prefix depends on the
    /// public URL, which the request alone does not tell).
    pub fn of(parts: &Parts) -> Self {
        let Some(cookies) = parts.extensions.get::<Cookies>() else { return Self::System };
        [cookie_name(THEME, true), cookie_name(THEME, false)]
            .iter()
            .find_map(|name| cookies.get(name))
            .and_then(|cookie| Self::parse(cookie.value()))
            .unwrap_or_default()
    }

    /// [`Theme::of`] from the request's headers alone (before the cookie layer has run).
    pub fn of_headers(headers: &axum::http::HeaderMap) -> Self {
        [cookie_name(THEME, true), cookie_name(THEME, false)]
            .iter()
            .find_map(|name| crate::app::cookie_value(headers, name))
            .and_then(Self::parse)
            .unwrap_or_default()
    }

    /// The `data-theme` attribute of the page: none follows the system.
    pub fn attribute(&self) -> Option<&'static str> {
        (*self != Self::System).then(|| self.as_str())
    }

    /// The `color-scheme` the page declares (form controls, scrollbars).
    pub fn color_scheme(&self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
            Self::System => "light dark",
        }
    }

    /// The switch's choices: (value, label, chosen).
    pub fn choices(&self) -> [(&'static str, &'static str, bool); 3] {
        [Self::Light, Self::Dark, Self::System].map(|theme| {
            let label = match theme {
                Self::Light => "Light",
                Self::Dark => "Dark",
                Self::System => "System",
            };
            (theme.as_str(), label, theme == *self)
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ThemeQuery {
    set: String,
    next: Option<String>,
}

/// GET /theme?set=light|dark|system&next=PATH
pub async fn set(
    axum::extract::State(state): axum::extract::State<AppState>,
    cookies: Cookies,
    query: Result<Query<ThemeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return (StatusCode::BAD_REQUEST, "The theme link is malformed.").into_response();
    };
    let Some(theme) = Theme::parse(&query.set) else {
        return (StatusCode::BAD_REQUEST, "The theme must be light, dark or system.").into_response();
    };
    let secure = state.settings.secure_cookies;
    let name = cookie_name(THEME, secure);
    if theme == Theme::System {
        cookies.remove(Cookie::build((name, "")).path("/").secure(secure).http_only(true).build());
    } else {
        let cookie = Cookie::build((name, theme.as_str()))
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(time::Duration::days(365))
            .build();
        cookies.add(cookie);
    }
    Redirect::to(crate::urls::safe_next(query.next.as_deref())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_schemes_parse() {
        for theme in [Theme::Light, Theme::Dark, Theme::System] {
            assert_eq!(Theme::parse(theme.as_str()), Some(theme));
        }
        assert_eq!(Theme::parse("Dark"), None);
        assert_eq!(Theme::parse(""), None);
        assert_eq!(Theme::System.attribute(), None);
        assert_eq!(Theme::Dark.attribute(), Some("dark"));
    }
}

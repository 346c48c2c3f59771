//! What every rendered page needs around its content: the layout (who is logged in, what they
//! may do, pending messages) and the token its forms carry.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::access::Registration;
use crate::app::AppState;
use crate::auth::forms::Csrf;
use crate::auth::session::Viewer;
use crate::error::AppError;
use crate::flash::{Flash, Kind};
use crate::templates::{Layout, NavUser};
use crate::theme::Theme;

/// The frame of a page: an extractor for handlers that render HTML.
pub struct Shell {
    pub viewer: Viewer,
    csrf: Csrf,
    flash: Flash,
    pub theme: Theme,
    /// The path and query of the request.
    here: String,
    /// Passwords sign in (`--password-login`): registration is offered only then.
    password_login: bool,
}

impl FromRequestParts<AppState> for Shell {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self {
            viewer: Viewer::from_request_parts(parts, state).await?,
            csrf: Csrf::from_request_parts(parts, state).await?,
            flash: Flash::from_request_parts(parts, state).await?,
            theme: Theme::of(parts),
            here: parts.uri.path_and_query().map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            password_login: state.settings.password_login,
        })
    }
}

impl Shell {
    /// The token the forms on this page carry.
    pub fn csrf_token(&self) -> String {
        self.csrf.token()
    }

    /// The token for a member's forms; none for a visitor (who then gets no cookie either).
    pub fn member_csrf_token(&self) -> String {
        if self.viewer.is_member() { self.csrf.token() } else { String::new() }
    }

    /// True when no message waits to be shown and the address has no query: the page is the
    /// same for every such visitor (of one colour scheme).
    pub fn nothing_pending(&self) -> bool {
        self.flash.is_empty() && !self.here.contains('?')
    }

    /// Queues a message for the next page.
    pub fn flash(&self, kind: Kind, text: &str) {
        self.flash.push(kind, text);
    }

    /// Queues a message with an Undo button posting to `undo`.
    pub fn flash_with_undo(&self, kind: Kind, text: &str, undo: String) {
        self.flash.push_with_undo(kind, text, undo);
    }

    /// The layout of this page; shows (and clears) pending messages.
    pub fn layout(&self) -> Layout {
        let user = self.viewer.member.as_ref().map(|user| NavUser {
            username: user.username.clone(),
            profile_href: "/profile".to_owned(),
            avatar_src: user.avatar.as_deref().map(crate::uploads::avatar_src),
            may_edit: user.role.may_edit(),
            is_admin: user.is_admin(),
        });
        let csrf_token = self.member_csrf_token();
        let show_register = self.password_login
            && self.viewer.wiki.is_some_and(|wiki| wiki.registration == Registration::Open);
        Layout {
            user,
            flashes: self.flash.take(),
            csrf_token,
            show_register,
            theme: self.theme,
            here: self.here.clone(),
        }
    }
}

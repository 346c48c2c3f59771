//! One place that turns failures into responses: a page, a redirect or a status.
//!
//! What the user can act on gets a clear 4xx page with the reason; anything else is logged with
//! its whole cause chain and answered with a 500 page that shows no internals.

use askama::Template;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::templates::{ErrorPage, Layout};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    /// Something asked for by a link that is not (or no longer) there, with what to do.
    #[error("not found: {0}")]
    NotFoundWith(&'static str),
    /// A service Quire relies on (the SMTP relay) failed; nothing was done.
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    #[error("CSRF token missing or invalid")]
    Csrf,
    #[error("login required")]
    LoginRequired { next: String },
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A reader tried to change a page.
    #[error("read-only member")]
    ReadOnly,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A well-formed request with a value that is not allowed (422).
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error("too many attempts")]
    TooManyAttempts { what: &'static str, retry_after: u64 },
    /// A bounded queue is full (password checks, or CPU work such as rendering).
    #[error("busy: {what:?}")]
    Busy { what: BusyWith, retry_after: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// An upload over `--max-upload` or the storage quota, with the limit in words.
    #[error("upload too large: {0}")]
    UploadTooLarge(String),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What a [`AppError::Busy`] queue holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyWith {
    Passwords,
    Work,
}

impl From<crate::render::RenderError> for AppError {
    fn from(err: crate::render::RenderError) -> Self {
        Self::Unprocessable(err.to_string())
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Unexpected(err.into())
    }
}

impl From<crate::auth::password::HashError> for AppError {
    fn from(err: crate::auth::password::HashError) -> Self {
        match err {
            crate::auth::password::HashError::Busy { retry_after } => {
                Self::Busy { what: BusyWith::Passwords, retry_after }
            }
            crate::auth::password::HashError::Failed(err) => Self::Unexpected(err),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(err: askama::Error) -> Self {
        Self::Unexpected(err.into())
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(err: tower_sessions::session::Error) -> Self {
        Self::Unexpected(err.into())
    }
}

impl From<FormRejection> for AppError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::InvalidFormContentType(_) => Self::UnsupportedMediaType,
            FormRejection::FailedToDeserializeForm(_) | FormRejection::FailedToDeserializeFormBody(_) => {
                Self::BadRequest("The form could not be read: it must be valid UTF-8, URL-encoded.".into())
            }
            FormRejection::BytesRejection(rejection)
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Self::PayloadTooLarge
            }
            other => Self::BadRequest(other.body_text()),
        }
    }
}

impl From<PathRejection> for AppError {
    fn from(_: PathRejection) -> Self {
        Self::BadRequest("The address is not valid: it must be UTF-8.".into())
    }
}

impl From<QueryRejection> for AppError {
    fn from(_: QueryRejection) -> Self {
        Self::BadRequest("The query string could not be read.".into())
    }
}

impl From<MultipartError> for AppError {
    fn from(err: MultipartError) -> Self {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::BadRequest("The upload could not be read: the multipart body is malformed.".into())
        }
    }
}

impl AppError {
    fn status_and_text(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Page Not Found",
                "The page you’re looking for doesn’t exist.".into(),
            ),
            Self::NotFoundWith(why) => (StatusCode::NOT_FOUND, "Not found", (*why).into()),
            Self::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, "Unavailable", (*why).into()),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
            ),
            Self::Forbidden(why) => (StatusCode::FORBIDDEN, "Forbidden", (*why).into()),
            Self::ReadOnly => (
                StatusCode::FORBIDDEN,
                "Read-only account",
                "Your account can read this wiki but not change it. Ask an admin for the editor role.".into(),
            ),
            Self::Conflict(why) => (StatusCode::CONFLICT, "Conflict", (*why).into()),
            Self::BadRequest(why) => (StatusCode::BAD_REQUEST, "Bad Request", why.clone()),
            Self::Unprocessable(why) => (StatusCode::UNPROCESSABLE_ENTITY, "Not allowed", why.clone()),
            Self::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too Large",
                "The request is too large: forms take at most 1 MiB of text (about 3 MiB as sent) and uploads 6 MiB."
                    .into(),
            ),
            Self::UploadTooLarge(why) => (StatusCode::PAYLOAD_TOO_LARGE, "Too Large", why.clone()),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported Media Type",
                "This form must be sent as a form.".into(),
            ),
            Self::TooManyAttempts { what, retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!(
                    "Too many {what} from here. Try again in {}.",
                    if *retry_after < 90 { format!("{retry_after} seconds") } else { format!("{} minutes", retry_after.div_ceil(60)) }
                ),
            ),
            Self::Busy { what, retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                format!(
                    "{} right now. Nothing was done: try again in {retry_after} seconds.",
                    match what {
                        BusyWith::Passwords => "Too many passwords are being checked",
                        BusyWith::Work => "The server is busy rendering and comparing pages",
                    }
                ),
            ),
            Self::LoginRequired { .. } | Self::Unexpected(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server Error",
                "Something went wrong on our end. Please try again later.".into(),
            ),
        }
    }
}

/// An error page in the site's layout, with nothing that depends on who is asking.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { layout: Layout::bare(), status: status.as_u16(), title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "the error page failed to render");
            (status, message.to_owned()).into_response()
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let refused = !matches!(self, Self::Unexpected(_));
        let mut response = self.page();
        if refused {
            // A refusal changed nothing: the page-view cache keeps what it holds.
            response.extensions_mut().insert(crate::cache::Unchanged);
        }
        response
    }
}

impl AppError {
    fn page(self) -> Response {
        match &self {
            Self::LoginRequired { next } => {
                let target = format!("/login?next={}", crate::urls::encode_query(next));
                return Redirect::to(&target).into_response();
            }
            Self::Unexpected(err) => {
                tracing::error!(error = ?err, "request failed");
            }
            _ => {}
        }
        let (status, title, message) = self.status_and_text();
        let mut response = error_page(status, title, &message);
        if let Self::TooManyAttempts { retry_after, .. } | Self::Busy { retry_after, .. } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        // The rest of a too-large body is read and dropped by the front (`app::Front`), which
        // closes the connection when there is too much of it.
        response
    }
}

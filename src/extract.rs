//! Extractors whose failures become Quire's own error pages (400, 413, 415) instead of axum's
//! plain-text rejections.

use axum::extract::FromRequest;

use crate::error::AppError;

/// A URL-encoded form; invalid UTF-8 or a malformed body is a 400, an oversized one a 413.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(AppError))]
pub struct Form<T>(pub T);

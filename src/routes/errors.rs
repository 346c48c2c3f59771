//! The fallback: a styled 404, and old-style `/wiki/a/b` paths sent to their page.

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use percent_encoding::percent_decode_str;

use super::render;
use crate::app::AppState;
use crate::error::AppError;
use crate::models::page;
use crate::shell::Shell;
use crate::templates::ErrorPage;

pub async fn not_found(
    shell: Shell,
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AppError> {
    // A title with `/` typed by hand (or linked by the Flask wiki) arrives as several segments.
    if let Some(rest) = uri.path().strip_prefix("/wiki/")
        && let Ok(title) = percent_decode_str(rest).decode_utf8()
        && page::find_with_author(&state.db.read, &title).await?.is_some()
    {
        return Ok(Redirect::permanent(&crate::urls::page(&title)).into_response());
    }
    render(
        StatusCode::NOT_FOUND,
        ErrorPage {
            layout: shell.layout(),
            status: 404,
            title: "Page Not Found",
            message: "The page you’re looking for doesn’t exist.",
        },
    )
}

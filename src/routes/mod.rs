//! HTTP routes, one module per seed blueprint.

use axum::Router;

use crate::app::AppState;

pub mod auth;
pub mod browse;
pub mod edit;
pub mod errors;
pub mod history;
pub mod main;
pub mod profile;
pub mod wiki;

/// Every route of the wiki.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(main::router())
        .merge(auth::router())
        .merge(wiki::router())
        .merge(edit::router())
        .merge(history::router())
        .merge(browse::router())
        .merge(profile::router())
        .fallback(errors::not_found)
}

/// Renders a template into an HTML response with the given status.
pub fn render(
    status: axum::http::StatusCode,
    page: impl askama::Template,
) -> Result<axum::response::Response, crate::error::AppError> {
    use axum::response::IntoResponse;
    Ok((status, axum::response::Html(page.render()?)).into_response())
}

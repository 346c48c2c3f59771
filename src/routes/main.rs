//! The index: every page, alphabetically, a screen at a time.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{Routes, render};
use crate::app::AppState;
use crate::assets;
use crate::error::AppError;
use crate::models::page;
use crate::shell::Shell;
use crate::templates::{IndexPage, Link};

/// Titles per screen of the index.
const PER_PAGE: u64 = 200;

pub fn router() -> Routes {
    Routes::new()
        .get("/", get(index))
        .get("/static/{name}", get(assets::serve))
        .get("/favicon.ico", get(assets::favicon))
        .get("/healthz", get(crate::metrics::healthz))
        .get("/metrics", get(crate::metrics::metrics_on_main_port))
}

#[derive(Deserialize)]
struct IndexQuery {
    page: Option<u64>,
}

#[tracing::instrument(skip_all)]
async fn index(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<IndexQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let number = query.ok().and_then(|Query(q)| q.page).unwrap_or(1).clamp(1, 1_000_000);
    let screen = page::list_titles(&state.db.read, number, PER_PAGE).await?;
    let prev_href = (number > 1).then(|| format!("/?page={}", number - 1));
    let next_href = screen.has_next.then(|| format!("/?page={}", number + 1));
    render(
        StatusCode::OK,
        IndexPage {
            layout: shell.layout(),
            pages: screen.titles.into_iter().map(Link::page).collect(),
            prev_href,
            next_href,
        },
    )
}

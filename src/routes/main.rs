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
        .get("/theme", get(crate::theme::set))
        .get("/help/markdown", get(markdown_help))
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
    // The main page an admin chose, on the first screen only, shown as its own view shows it.
    let mut main_page = None;
    if number == 1
        && let Some(title) = crate::models::setting::main_page(&state.db.read).await?
        && let Some(found) = page::find_with_author(&state.db.read, &title).await?
    {
        let missing = crate::models::link::missing_targets(&state.db.read, found.page.id).await?;
        main_page = Some(crate::templates::MainPage {
            href: crate::urls::page(&found.page.title),
            html: crate::render::display(&found.page.html, &missing, &found.page.title),
            title: found.page.title,
        });
    }
    let member = shell.viewer.member.as_ref();
    render(
        StatusCode::OK,
        IndexPage {
            may_create: member.is_some_and(|m| m.role.may_edit()),
            is_member: member.is_some(),
            login_href: "/login?next=/create".to_owned(),
            layout: shell.layout(),
            pages: screen.titles.into_iter().map(Link::page).collect(),
            main_page,
            prev_href,
            next_href,
        },
    )
}

/// What the Markdown help shows: (what, source), rendered by the page renderer itself.
const HELP_EXAMPLES: &[(&str, &str)] = &[
    ("Heading", "## A section\n### A smaller one"),
    ("Emphasis", "*italic*, **bold**, ~~struck out~~"),
    ("Link to a wiki page", "See [[Home]] or [[Home|the front page]]."),
    ("Link elsewhere", "[Rust](https://www.rust-lang.org) or https://example.com"),
    ("List", "- apples\n- pears\n  - green ones"),
    ("Numbered list", "1. first\n2. second"),
    ("Task list", "- [x] written\n- [ ] reviewed"),
    ("Quote", "> Well said."),
    ("Code", "Use `cargo run`.\n\n```rust\nfn main() {\n    println!(\"hi\");\n}\n```"),
    ("Table", "| Name | Role |\n|------|------|\n| Ada  | admin |"),
    ("Math", "Inline $e^{i\\pi} + 1 = 0$, or a block:\n\n$$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$$"),
    ("Image", "![The Quire logo](/favicon.ico)"),
];

/// GET /help/markdown
async fn markdown_help(shell: Shell) -> Result<Response, AppError> {
    let examples = HELP_EXAMPLES
        .iter()
        .map(|(what, source)| crate::templates::HelpExample {
            what,
            source,
            html: crate::render::markdown(source).unwrap_or_default(),
        })
        .collect();
    render(StatusCode::OK, crate::templates::HelpPage { layout: shell.layout(), examples })
}

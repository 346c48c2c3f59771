//! History you can trust: every revision, each one viewable, diffs between any two.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::wiki::page_path;
use super::{Routes, render};
use crate::app::AppState;
use crate::error::AppError;
use crate::models::{page, revision};
use crate::shell::Shell;
use crate::templates::{DiffPage, HistoryPage, HistoryRow, RevisionPage, format_time};
use crate::{diff, render as content, urls};

/// Revisions per screen of the history.
const PER_PAGE: u64 = 50;

pub fn router() -> Routes {
    Routes::new()
        .get("/wiki/{title}/history", get(history))
        .get("/wiki/{title}/revisions/{id}", get(show))
        .get("/wiki/{title}/revisions/{id}/raw", get(raw))
        .get("/wiki/{title}/diff", get(compare))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScreenQuery {
    page: Option<u64>,
}

/// `+12` / `−3` / `0`
fn size_change(size: i32, before: Option<i32>) -> String {
    match before {
        None => format!("+{size}"),
        Some(before) if size >= before => format!("+{}", size - before),
        Some(before) => format!("−{}", before - size),
    }
}

async fn history(
    shell: Shell,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<ScreenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let db = &state.db.read;
    let view = page::find_with_author(db, &title).await?.ok_or(AppError::NotFound)?;
    let number = query.ok().and_then(|Query(q)| q.page).unwrap_or(1).clamp(1, 1_000_000);
    let mut entries = revision::history(db, view.page.id, (number - 1) * PER_PAGE, PER_PAGE + 1).await?;
    let has_next = entries.len() as u64 > PER_PAGE;
    // The revision just before this screen, for the last row's size change and diff.
    let older = if has_next { entries.pop() } else { None };
    let base = urls::page(&view.page.title);
    let live: Vec<String> = crate::models::file::names_for_page(db, view.page.id).await?;
    let file_events = crate::models::file::events_for_page(db, view.page.id, &view.page.title, 200)
        .await?
        .into_iter()
        .map(|event| crate::templates::FileEventRow {
            href: event.version.filter(|_| live.contains(&event.name)).map(|version| {
                format!("{}?version={version}", super::files::file_path(&view.page.title, &event.name))
            }),
            what: event.what,
            version: event.version,
            who: event.who,
            time: crate::templates::format_time(event.at),
            name: event.name,
        })
        .collect();
    let rows = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let previous = entries.get(i + 1).or(older.as_ref());
            HistoryRow {
                id: entry.id,
                href: format!("{base}/revisions/{}", entry.id),
                diff_href: previous.map(|p| format!("{base}/diff?from={}&to={}", p.id, entry.id)),
                author: entry.author.clone(),
                time: format_time(entry.created_at),
                summary: entry.summary.clone(),
                size: entry.size,
                change: size_change(entry.size, previous.map(|p| p.size)),
            }
        })
        .collect();
    render(
        StatusCode::OK,
        HistoryPage {
            file_events,
            layout: shell.layout(),
            page_href: base.clone(),
            diff_action: format!("{base}/diff"),
            title: view.page.title,
            rows,
            prev_href: (number > 1).then(|| format!("{base}/history?page={}", number - 1)),
            next_href: has_next.then(|| format!("{base}/history?page={}", number + 1)),
        },
    )
}

/// `/wiki/{title}/revisions/{id}`, or why it could not be read.
type RevisionPath = Result<Path<(String, i32)>, axum::extract::rejection::PathRejection>;

/// The live page of a revision path and that revision of it, or 404.
async fn live_revision(
    state: &AppState,
    path: RevisionPath,
) -> Result<(page::PageView, revision::Model), AppError> {
    let Path((title, id)) = path?;
    let db = &state.db.read;
    let view = page::find_with_author(db, &title).await?.ok_or(AppError::NotFound)?;
    let rev = revision::find(db, view.page.id, id).await?.ok_or(AppError::NotFound)?;
    Ok((view, rev))
}

async fn show(shell: Shell, State(state): State<AppState>, path: RevisionPath) -> Result<Response, AppError> {
    let (view, rev) = live_revision(&state, path).await?;
    let db = &state.db.read;
    let author = match rev.author_id {
        Some(author_id) => crate::models::user::find_by_id(db, author_id).await?.map(|u| u.username),
        None => None,
    };
    let html = match rev.html {
        Some(html) => html,
        None => {
            // Saved before revisions kept their HTML: rendered once, then stored.
            let source = (rev.content.clone(), rev.format.clone());
            let rendered = state
                .work
                .run_as("render", shell.viewer.member.is_some(), move || {
                    content::content(&source.0, &source.1)
                })
                .await?;
            match rendered {
                Ok(rendered) => {
                    // A cache fill: a failed write costs the next viewer a render, not this one
                    // their page.
                    if let Err(err) = revision::fill_html(&state.db.write, rev.id, &rendered.html).await {
                        tracing::warn!(error = %err, revision.id = rev.id, "could not store a revision's HTML");
                    }
                    rendered.html
                }
                // Not stored: a later Quire may render it.
                Err(why) => content::unrenderable(&rev.content, &why),
            }
        }
    };
    let current = view.page.revision_id == Some(rev.id);
    render(
        StatusCode::OK,
        RevisionPage {
            csrf_token: shell.member_csrf_token(),
            layout: shell.layout(),
            page_href: urls::page(&view.page.title),
            revert_action: page_path(&view.page.title, &format!("/revisions/{}/revert", rev.id)),
            diff_href: format!(
                "{}/diff?from={}&to={}",
                urls::page(&view.page.title),
                rev.id,
                view.page.revision_id.unwrap_or(rev.id)
            ),
            title: view.page.title,
            id: rev.id,
            author,
            time: format_time(rev.created_at),
            summary: rev.summary,
            current,
            html,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DiffQuery {
    from: String,
    to: String,
}

async fn compare(
    shell: Shell,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let Query(query) = query?;
    let (Ok(from), Ok(to)) = (query.from.trim().parse::<i32>(), query.to.trim().parse::<i32>()) else {
        return Err(AppError::BadRequest("A diff needs two revision numbers: ?from=A&to=B.".into()));
    };
    let db = &state.db.read;
    let view = page::find_with_author(db, &title).await?.ok_or(AppError::NotFound)?;
    let old = revision::find(db, view.page.id, from).await?.ok_or(AppError::NotFound)?;
    let new = revision::find(db, view.page.id, to).await?.ok_or(AppError::NotFound)?;
    let diff = state
        .work
        .run_as("diff", shell.viewer.member.is_some(), move || diff::diff(&old.content, &new.content))
        .await?;
    let base = urls::page(&view.page.title);
    render(
        StatusCode::OK,
        DiffPage {
            layout: shell.layout(),
            from_href: format!("{base}/revisions/{from}"),
            to_href: format!("{base}/revisions/{to}"),
            from_raw_href: format!("{base}/revisions/{from}/raw"),
            to_raw_href: format!("{base}/revisions/{to}/raw"),
            truncated: diff.truncated.then_some(diff::ROWS_MAX),
            history_href: format!("{base}/history"),
            page_href: base,
            title: view.page.title,
            from,
            to,
            rows: diff.rows,
        },
    )
}

/// `/wiki/TITLE/revisions/ID/raw`: the revision's text as it was saved, as plain text (what a
/// diff too long to show links to).
async fn raw(State(state): State<AppState>, path: RevisionPath) -> Result<Response, AppError> {
    let (_, rev) = live_revision(&state, path).await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        rev.content,
    )
        .into_response())
}

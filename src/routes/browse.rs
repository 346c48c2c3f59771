//! Finding things: search, recent changes (and their Atom feed), members' pages.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::{Routes, render};
use crate::app::AppState;
use crate::error::AppError;
use crate::models::{page, revision, search, user};
use crate::shell::Shell;
use crate::templates::{
    AtomEntry, AtomFeed, Change, Link, RecentPage, SearchPage, SearchResult, UserPage, format_time,
};
use crate::urls;

const RESULTS_PER_PAGE: u64 = 20;
const CHANGES_PER_PAGE: u64 = 50;
/// Longest query string looked at; the rest is ignored.
const QUERY_MAX_CHARS: usize = 200;
const SNIPPET_CHARS: usize = 180;

pub fn router() -> Routes {
    Routes::new()
        .get("/search", get(find))
        .get("/recent", get(recent))
        .get("/recent.atom", get(feed))
        .get("/users/{name}", get(member))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchQuery {
    q: String,
    page: Option<u64>,
}

#[tracing::instrument(skip_all)]
async fn find(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query?;
    let q: String = query.q.chars().take(QUERY_MAX_CHARS).collect();
    let number = query.page.unwrap_or(1).clamp(1, 10_000);
    let terms = search::parse(&q);
    let mut message = None;
    let mut results = Vec::new();
    let mut has_next = false;
    if q.trim().is_empty() {
        message = Some(
            "Type words to look for: \"a phrase\" finds them together, wiki* finds words starting with wiki.",
        );
    } else if terms.is_empty() {
        message = Some("Nothing to look for in that query: use letters or digits.");
    } else {
        let mut hits =
            search::search(&state.db.read, &terms, (number - 1) * RESULTS_PER_PAGE, RESULTS_PER_PAGE + 1)
                .await?;
        has_next = hits.len() as u64 > RESULTS_PER_PAGE;
        hits.truncate(RESULTS_PER_PAGE as usize);
        if hits.is_empty() {
            message = Some("No page matches.");
        }
        results = state
            .work
            .run_as("snippets", shell.viewer.member.is_some(), move || {
                hits.into_iter()
                    .map(|hit| SearchResult {
                        href: urls::page(&hit.title),
                        snippet: search::snippet(&hit.body, &terms, SNIPPET_CHARS),
                        title: hit.title,
                    })
                    .collect()
            })
            .await?;
    }
    let base = format!("/search?q={}", urls::encode_query(&q));
    render(
        StatusCode::OK,
        SearchPage {
            layout: shell.layout(),
            query: q,
            message,
            results,
            prev_href: (number > 1).then(|| format!("{base}&page={}", number - 1)),
            next_href: has_next.then(|| format!("{base}&page={}", number + 1)),
        },
    )
}

fn changes(entries: Vec<revision::Entry>) -> Vec<Change> {
    entries
        .into_iter()
        .map(|entry| {
            let base = urls::page(&entry.title);
            Change {
                revision_href: format!("{base}/revisions/{}", entry.id),
                author: entry.author.map(|name| Link { href: urls::user(&name), text: name }),
                time: format_time(entry.created_at),
                summary: entry.summary,
                page: Link { href: base, text: entry.title },
            }
        })
        .collect()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScreenQuery {
    page: Option<u64>,
}

async fn recent(
    shell: Shell,
    State(state): State<AppState>,
    query: Result<Query<ScreenQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let number = query.ok().and_then(|Query(q)| q.page).unwrap_or(1).clamp(1, 100_000);
    let mut entries =
        revision::recent(&state.db.read, (number - 1) * CHANGES_PER_PAGE, CHANGES_PER_PAGE + 1).await?;
    let has_next = entries.len() as u64 > CHANGES_PER_PAGE;
    entries.truncate(CHANGES_PER_PAGE as usize);
    render(
        StatusCode::OK,
        RecentPage {
            layout: shell.layout(),
            changes: changes(entries),
            prev_href: (number > 1).then(|| format!("/recent?page={}", number - 1)),
            next_href: has_next.then(|| format!("/recent?page={}", number + 1)),
        },
    )
}

/// RFC 3339, as Atom wants it.
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// `text` with every character XML 1.0 does not allow (controls but tab and line breaks,
/// surrogates, U+FFFE, U+FFFF) replaced by U+FFFD: old rows stored before the text rules, or
/// brought in by an import, cannot make the feed invalid for everyone.
fn xml_text(text: String) -> String {
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if text.chars().all(allowed) {
        return text;
    }
    text.chars().map(|c| if allowed(c) { c } else { char::REPLACEMENT_CHARACTER }).collect()
}

async fn feed(State(state): State<AppState>) -> Result<Response, AppError> {
    let entries = revision::recent(&state.db.read, 0, CHANGES_PER_PAGE).await?;
    let updated = entries.first().map_or_else(|| rfc3339(0), |e| rfc3339(e.created_at));
    let base = state.settings.public_url.clone().unwrap_or_default();
    let feed = AtomFeed {
        id: format!("{base}/recent"),
        self_href: format!("{base}/recent.atom"),
        alternate_href: format!("{base}/recent"),
        updated,
        entries: entries
            .into_iter()
            .map(|entry| {
                let href = format!("{base}{}/revisions/{}", urls::page(&entry.title), entry.id);
                AtomEntry {
                    id: href.clone(),
                    href,
                    updated: rfc3339(entry.created_at),
                    author: xml_text(entry.author.unwrap_or_else(|| "unknown".into())),
                    summary: xml_text(entry.summary),
                    title: xml_text(entry.title),
                }
            })
            .collect(),
    };
    let xml = askama::Template::render(&feed)?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/atom+xml; charset=utf-8"))], xml)
        .into_response())
}

async fn member(
    shell: Shell,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path(name) = path?;
    let db = &state.db.read;
    let found = user::find_by_username(db, &name).await?.ok_or(AppError::NotFound)?;
    let pages = page::titles_by_author(db, &found).await?;
    let contributions = revision::by_author(db, found.id, CHANGES_PER_PAGE).await?;
    // Avatars are served to members only; visitors see none.
    let avatar_src =
        shell.viewer.member.as_ref().and(found.avatar.as_deref()).map(crate::uploads::avatar_src);
    render(
        StatusCode::OK,
        UserPage {
            layout: shell.layout(),
            role: found.role().as_str(),
            username: found.username,
            avatar_src,
            joined: format_time(found.created_at),
            pages: pages.into_iter().map(Link::page).collect(),
            contributions: changes(contributions),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::xml_text;

    #[test]
    fn characters_xml_does_not_allow_are_replaced() {
        assert_eq!(xml_text("plain – 日本 🚀\ttab".into()), "plain – 日本 🚀\ttab");
        assert_eq!(xml_text("a\u{1}b\u{FFFF}c\u{FFFE}\u{1B}".into()), "a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}");
        assert_eq!(xml_text("\u{0}".into()), "\u{FFFD}");
        // Noncharacters outside the BMP and U+FDD0 are allowed by XML 1.0: kept.
        assert_eq!(xml_text("\u{1FFFF}\u{FDD0}".into()), "\u{1FFFF}\u{FDD0}");
    }
}

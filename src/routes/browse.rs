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
    AtomEntry, AtomFeed, Change, ChangeDay, Link, RecentPage, SearchPage, SearchResult, UserPage, format_day,
    format_time,
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
    let mut summary = None;
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
        // Exact once the last screen is reached; before it, at least the screens so far.
        let seen = (number - 1) * RESULTS_PER_PAGE + hits.len() as u64;
        let shown_query = q.trim();
        summary = Some(match (has_next, seen) {
            (true, _) => format!("More than {seen} results for ‘{shown_query}’"),
            (false, 1) => format!("1 result for ‘{shown_query}’"),
            (false, n) => format!("{n} results for ‘{shown_query}’"),
        });
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
            summary,
            message,
            results,
            prev_href: (number > 1).then(|| format!("{base}&page={}", number - 1)),
            next_href: has_next.then(|| format!("{base}&page={}", number + 1)),
        },
    )
}

/// A member's contributions (revisions only).
fn changes(entries: Vec<revision::Entry>) -> Vec<Change> {
    entries
        .into_iter()
        .map(|entry| {
            let base = urls::page(&entry.title);
            Change {
                revision_href: Some(format!("{base}/revisions/{}", entry.id)),
                diff_href: None,
                author: entry.author.map(|name| Link { href: urls::user(&name), text: name }),
                time: format_time(entry.created_at),
                summary: entry.summary,
                size_change: None,
                grew: std::cmp::Ordering::Equal,
                event: None,
                linked: true,
                page: Link { href: base, text: entry.title },
            }
        })
        .collect()
}

/// `+12` / `−3` / `0`, and which way.
fn size_change(size: i32, before: Option<i32>) -> (String, std::cmp::Ordering) {
    let before = before.unwrap_or(0);
    let change = match size.cmp(&before) {
        std::cmp::Ordering::Less => format!("−{}", before - size),
        _ => format!("+{}", size - before),
    };
    (change, size.cmp(&before))
}

/// A line of recent changes; `is_admin`: deleted pages' titles stay links (admins see them).
fn recent_change(change: revision::RecentChange, is_admin: bool) -> Change {
    let base = urls::page(&change.title);
    let author = change.author.map(|name| {
        if name == crate::models::audit::Actor::COMMAND_LINE {
            Link { href: String::new(), text: name }
        } else {
            Link { href: urls::user(&name), text: name }
        }
    });
    let (revision_href, diff_href, size, event, linked) = match change.kind {
        revision::ChangeKind::Revision => {
            let revision_href = format!("{base}/revisions/{}", change.id);
            let diff_href =
                change.previous_id.map(|from| format!("{base}/diff?from={from}&to={}", change.id));
            let size = change.size.map(|size| size_change(size, change.previous_size));
            (Some(revision_href), diff_href, size, None, true)
        }
        revision::ChangeKind::Deleted => (None, None, None, Some("deleted"), is_admin),
        revision::ChangeKind::Restored => (None, None, None, Some("restored"), true),
        revision::ChangeKind::Uploaded => (None, None, None, Some("file uploaded"), true),
        revision::ChangeKind::FileDeleted => (None, None, None, Some("file deleted"), true),
        revision::ChangeKind::FileRestored => (None, None, None, Some("file restored"), true),
    };
    let (size_change, grew) = size.map_or((None, std::cmp::Ordering::Equal), |(text, way)| (Some(text), way));
    Change {
        revision_href,
        diff_href,
        author,
        time: format_time(change.at),
        summary: change.summary,
        size_change,
        grew,
        event,
        linked,
        page: Link { href: base, text: change.title },
    }
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
        revision::recent_changes(&state.db.read, (number - 1) * CHANGES_PER_PAGE, CHANGES_PER_PAGE + 1)
            .await?;
    let has_next = entries.len() as u64 > CHANGES_PER_PAGE;
    entries.truncate(CHANGES_PER_PAGE as usize);
    let is_admin = shell.viewer.is_admin();
    let mut days: Vec<ChangeDay> = Vec::new();
    for entry in entries {
        let day = format_day(entry.at);
        let change = recent_change(entry, is_admin);
        match days.last_mut() {
            Some(last) if last.day == day => last.changes.push(change),
            _ => days.push(ChangeDay { day, changes: vec![change] }),
        }
    }
    render(
        StatusCode::OK,
        RecentPage {
            layout: shell.layout(),
            days,
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
    let entries = revision::recent_changes(&state.db.read, 0, CHANGES_PER_PAGE).await?;
    let updated = entries.first().map_or_else(|| rfc3339(0), |e| rfc3339(e.at));
    let base = state.settings.public_url.clone().unwrap_or_default();
    let feed = AtomFeed {
        id: format!("{base}/recent"),
        self_href: format!("{base}/recent.atom"),
        alternate_href: format!("{base}/recent"),
        updated,
        entries: entries
            .into_iter()
            .map(|entry| {
                let page = format!("{base}{}", urls::page(&entry.title));
                let (id, href, summary, title) = match entry.kind {
                    revision::ChangeKind::Revision => {
                        let href = format!("{page}/revisions/{}", entry.id);
                        (href.clone(), href, entry.summary, entry.title)
                    }
                    revision::ChangeKind::Deleted => (
                        format!("{base}/recent#deleted-{}", entry.id),
                        format!("{base}/recent"),
                        format!("Page “{}” deleted", entry.title),
                        format!("{} (deleted)", entry.title),
                    ),
                    revision::ChangeKind::Restored => (
                        format!("{base}/recent#restored-{}", entry.id),
                        page,
                        format!("Page “{}” restored", entry.title),
                        format!("{} (restored)", entry.title),
                    ),
                    revision::ChangeKind::Uploaded
                    | revision::ChangeKind::FileDeleted
                    | revision::ChangeKind::FileRestored => {
                        let (what, anchor) = match entry.kind {
                            revision::ChangeKind::Uploaded => ("uploaded", "uploaded"),
                            revision::ChangeKind::FileDeleted => ("deleted", "file-deleted"),
                            _ => ("restored", "file-restored"),
                        };
                        (
                            format!("{base}/recent#{anchor}-{}", entry.id),
                            format!("{page}/attachments"),
                            format!("File “{}” {what}", entry.summary),
                            format!("{} (file {what})", entry.title),
                        )
                    }
                };
                AtomEntry {
                    id,
                    href,
                    updated: rfc3339(entry.at),
                    author: xml_text(entry.author.unwrap_or_else(|| "unknown".into())),
                    summary: xml_text(summary),
                    title: xml_text(title),
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

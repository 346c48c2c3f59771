//! Editing without losing work: conditional saves, three-way merges of concurrent edits,
//! conflicts brought back to the editor, previews by the server's own renderer, reverts.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::wiki::{live_page, page_path};
use super::{Routes, render};
use crate::app::AppState;
use crate::auth::forms::CsrfForm;
use crate::auth::session::Editor;
use crate::domain::{SUMMARY_MAX, Summary, check_content};
use crate::error::AppError;
use crate::extract::{TitlePath, TokenForm};
use crate::flash::{Flash, Kind};
use crate::models::page::{self, Edit, PageView, Saved};
use crate::models::revision;
use crate::shell::Shell;
use crate::templates::{EditPage, FieldErrors};
use crate::{diff, render as content, urls};

/// A save is retried (merging again) this often when other saves keep landing in between; each
/// retry means another writer made progress, so this is only a bound against livelock.
const SAVE_ATTEMPTS: usize = 32;

pub fn router() -> Routes {
    Routes::new()
        .post("/wiki/{title}/edit", get(edit_form).post(save))
        .post("/wiki/{title}/revisions/{id}/revert", post(revert))
        .post("/preview", post(preview))
}

/// What the editor shows besides the form itself.
#[derive(Default)]
struct EditorState {
    content: String,
    summary: String,
    base: i32,
    preview: Option<String>,
    conflict: Option<Conflict>,
    errors: FieldErrors,
}

/// An overlapping edit: the user's own text and the other change, kept for them to resolve.
pub struct Conflict {
    pub yours: String,
    pub theirs: Vec<diff::DiffRow>,
}

fn editor(
    shell: &Shell,
    status: StatusCode,
    view: &PageView,
    state: EditorState,
) -> Result<Response, AppError> {
    render(
        status,
        EditPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            action: page_path(&view.page.title, "/edit"),
            page_href: urls::page(&view.page.title),
            title: view.page.title.clone(),
            content: state.content,
            summary: state.summary,
            base_revision: state.base,
            preview: state.preview,
            conflict: state.conflict,
            errors: state.errors,
        },
    )
}

async fn edit_form(
    _editor: Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
) -> Result<Response, AppError> {
    let view = live_page(&state, path).await?;
    let base = view.page.revision_id.unwrap_or_default();
    let content = view.page.content.clone();
    editor(&shell, StatusCode::OK, &view, EditorState { content, base, ..EditorState::default() })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EditForm {
    content: String,
    summary: String,
    base_revision: String,
    preview: Option<String>,
}

/// Renders Markdown in the bounded pool; the outer error is the server's (busy, failed), the
/// inner one the content's (a cap it breaks).
async fn render_markdown(
    state: &AppState,
    source: String,
) -> Result<Result<content::Rendered, content::RenderError>, AppError> {
    state.work.run_for_member("render", move || content::markdown_page(&source)).await
}

#[tracing::instrument(skip_all)]
async fn save(
    Editor(author): Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
    CsrfForm(form): CsrfForm<EditForm>,
) -> Result<Response, AppError> {
    let mut view = live_page(&state, path).await?;
    let author_id = author.id;

    let mut errors = FieldErrors::default();
    let summary = match Summary::parse(&form.summary) {
        Ok(summary) => summary.as_str().to_owned(),
        Err(e) => {
            errors.summary.push(e.into());
            form.summary.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    if let Err(e) = check_content(&form.content) {
        errors.content.push(e.into());
    }
    let base = form.base_revision.trim().parse::<i32>().ok();
    if base.is_none() {
        errors.form.push("The edit form is incomplete: reload the page to edit it again.".into());
    }
    let kept = |errors, preview, conflict, base| EditorState {
        content: if form.content.len() <= crate::domain::CONTENT_MAX_BYTES {
            form.content.clone()
        } else {
            String::new()
        },
        summary: summary.chars().take(SUMMARY_MAX * 2).collect(),
        base,
        preview,
        conflict,
        errors,
    };
    let Some(base) = base.filter(|_| errors.is_empty()) else {
        let base = base.unwrap_or_else(|| view.page.revision_id.unwrap_or_default());
        return editor(&shell, StatusCode::UNPROCESSABLE_ENTITY, &view, kept(errors, None, None, base));
    };
    if form.preview.is_some() {
        return match render_markdown(&state, form.content.clone()).await? {
            Ok(rendered) => {
                editor(&shell, StatusCode::OK, &view, kept(errors, Some(rendered.html), None, base))
            }
            Err(why) => {
                errors.content.push(why.to_string());
                editor(&shell, StatusCode::UNPROCESSABLE_ENTITY, &view, kept(errors, None, None, base))
            }
        };
    }

    let summary_text = summary.as_str();
    for _ in 0..SAVE_ATTEMPTS {
        let current = view.page.revision_id.unwrap_or_default();
        let (text, merged) = if base == current {
            (form.content.clone(), false)
        } else {
            let Some(ancestor) = revision::find(&state.db.read, view.page.id, base).await? else {
                errors.form.push("The revision this edit started from is not part of this page.".into());
                return editor(
                    &shell,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &view,
                    kept(errors, None, None, current),
                );
            };
            let texts = (ancestor.content, view.page.content.clone(), form.content.clone());
            let (merge, theirs) = state
                .work
                .run_for_member("merge", move || {
                    let (ancestor, theirs, mine) = texts;
                    let merge = diff::merge(&ancestor, &theirs, &mine);
                    let rows = match merge {
                        diff::Merge::Clean(_) => Vec::new(),
                        _ => diff::rows(&ancestor, &theirs),
                    };
                    (merge, rows)
                })
                .await?;
            match merge {
                diff::Merge::Clean(merged) => (merged, true),
                diff::Merge::Conflict(conflicted) => {
                    errors.form.push(
                        "Someone else changed this page while you were editing, in the same places. \
                         Nothing was saved: resolve the marked conflicts below and save again."
                            .into(),
                    );
                    let conflict = Conflict { yours: form.content.clone(), theirs };
                    let mut shown = kept(errors, None, Some(conflict), current);
                    shown.content = conflicted;
                    return editor(&shell, StatusCode::CONFLICT, &view, shown);
                }
                diff::Merge::TooCostly => {
                    errors.form.push(
                        "Someone else changed this page while you were editing, and the two versions \
                         differ too much to combine automatically. Nothing was saved: your text is in \
                         the editor; compare it with the other change below and save again."
                            .into(),
                    );
                    let conflict = Conflict { yours: form.content.clone(), theirs };
                    return editor(
                        &shell,
                        StatusCode::CONFLICT,
                        &view,
                        kept(errors, None, Some(conflict), current),
                    );
                }
            }
        };
        if text == view.page.content {
            shell.flash(Kind::Info, "No changes to save: the page already has this text.");
            return Ok(Redirect::to(&urls::page(&view.page.title)).into_response());
        }
        // A refused text goes back to the editor. After a merge it is the merged text that broke
        // the limit, and the member's own text stays on its old base: the next save merges again
        // instead of overwriting the other change.
        let retry_base = if merged { base } else { current };
        if let Err(e) = check_content(&text) {
            errors.content.push(e.into());
            return editor(
                &shell,
                StatusCode::UNPROCESSABLE_ENTITY,
                &view,
                kept(errors, None, None, retry_base),
            );
        }
        let rendered = match render_markdown(&state, text.clone()).await? {
            Ok(rendered) => rendered,
            Err(why) => {
                let why = if merged {
                    format!("Combined with the other change, {}", lowercase_first(&why.to_string()))
                } else {
                    why.to_string()
                };
                errors.content.push(why);
                return editor(
                    &shell,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &view,
                    kept(errors, None, None, retry_base),
                );
            }
        };
        let edit = Edit {
            page_id: view.page.id,
            base: current,
            content: &text,
            format: page::FORMAT_MARKDOWN,
            html: &rendered.html,
            links: &rendered.links,
            summary: summary_text,
            author_id: Some(author_id),
        };
        match page::save(&state.db.write, edit).await? {
            Saved::Revision(rev) => {
                tracing::info!(page.id = view.page.id, revision.id = rev.id, merged, "page saved");
                shell.flash(
                    Kind::Success,
                    if merged {
                        "Saved. Someone else changed other parts of this page meanwhile: both changes are kept."
                    } else {
                        "Saved."
                    },
                );
                return Ok(Redirect::to(&urls::page(&view.page.title)).into_response());
            }
            Saved::Moved => {
                // Another save landed between our read and our write: merge against it.
                view = page::find_with_author(&state.db.write, &view.page.title)
                    .await?
                    .ok_or(AppError::NotFound)?;
            }
        }
    }
    errors.form.push("The page keeps changing under this edit; nothing was saved. Try again.".into());
    let current = view.page.revision_id.unwrap_or_default();
    editor(&shell, StatusCode::CONFLICT, &view, kept(errors, None, None, base.min(current)))
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PreviewForm {
    content: String,
}

/// POST /preview — the HTML the server would store for this Markdown (members only).
async fn preview(
    _editor: Editor,
    State(state): State<AppState>,
    CsrfForm(form): CsrfForm<PreviewForm>,
) -> Result<Response, AppError> {
    if form.content.len() > crate::domain::CONTENT_MAX_BYTES {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, "Content must be at most 1 MiB.").into_response());
    }
    let rendered = match render_markdown(&state, form.content).await? {
        Ok(rendered) => rendered,
        Err(why) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, why.to_string()).into_response()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        rendered.html,
    )
        .into_response())
}

#[tracing::instrument(skip_all)]
async fn revert(
    Editor(author): Editor,
    flash: Flash,
    State(state): State<AppState>,
    path: Result<Path<(String, i32)>, axum::extract::rejection::PathRejection>,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path((title, id)) = path?;
    let mut view = page::find_with_author(&state.db.read, &title).await?.ok_or(AppError::NotFound)?;
    let author_id = author.id;
    let old = revision::find(&state.db.read, view.page.id, id).await?.ok_or(AppError::NotFound)?;
    let summary = format!("Reverted to revision {id}");
    for _ in 0..SAVE_ATTEMPTS {
        if old.content == view.page.content && old.format == view.page.format {
            flash.push(Kind::Info, "No changes to save: the page already has this text.");
            return Ok(Redirect::to(&urls::page(&view.page.title)).into_response());
        }
        let source = (old.content.clone(), old.format.clone());
        let rendered =
            state.work.run_for_member("render", move || content::content(&source.0, &source.1)).await??;
        let edit = Edit {
            page_id: view.page.id,
            base: view.page.revision_id.unwrap_or_default(),
            content: &old.content,
            format: &old.format,
            html: &rendered.html,
            links: &rendered.links,
            summary: &summary,
            author_id: Some(author_id),
        };
        match page::save(&state.db.write, edit).await? {
            Saved::Revision(_) => {
                flash.push(Kind::Success, &format!("Reverted to revision {id}."));
                return Ok(Redirect::to(&urls::page(&view.page.title)).into_response());
            }
            Saved::Moved => {
                view = page::find_with_author(&state.db.write, &title).await?.ok_or(AppError::NotFound)?;
            }
        }
    }
    Err(AppError::Conflict("The page keeps changing; nothing was reverted. Try again."))
}

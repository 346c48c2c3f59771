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

/// An overlapping edit, brought back to the member in plain language: the parts already
/// merged, and each region both changed as two labelled versions to choose from.
pub struct Conflict {
    /// The member's whole text, as submitted.
    pub yours: String,
    /// Who saved meanwhile, and when.
    pub saved_by: String,
    pub saved_at: String,
    /// The merge's parts, in order; empty when the texts were too far apart to merge.
    pub parts: Vec<ConflictPart>,
    /// How many regions conflict.
    pub regions: usize,
    /// The other change as a diff, when no merge was attempted.
    pub theirs: Vec<diff::DiffRow>,
}

/// One part of a conflicted merge, numbered for the form.
pub struct ConflictPart {
    pub index: usize,
    /// Text already merged (none: a conflicting region).
    pub merged: Option<String>,
    /// The region's number among the conflicting ones (from 1).
    pub region: usize,
    pub theirs: String,
    pub mine: String,
    pub choice: Option<&'static str>,
    /// Sent back without a choice.
    pub unchosen: bool,
}

impl Conflict {
    fn new(yours: String, view: &PageView, parts: &[diff::Part], theirs: Vec<diff::DiffRow>) -> Self {
        let mut region = 0;
        let parts: Vec<ConflictPart> = parts
            .iter()
            .enumerate()
            .map(|(index, part)| match part {
                diff::Part::Merged(text) => ConflictPart {
                    index,
                    merged: Some(text.clone()),
                    region: 0,
                    theirs: String::new(),
                    mine: String::new(),
                    choice: None,
                    unchosen: false,
                },
                diff::Part::Conflict { theirs, mine } => {
                    region += 1;
                    ConflictPart {
                        index,
                        merged: None,
                        region,
                        theirs: theirs.clone(),
                        mine: mine.clone(),
                        choice: None,
                        unchosen: false,
                    }
                }
            })
            .collect();
        Self {
            yours,
            saved_by: "someone".to_owned(),
            saved_at: crate::templates::format_time(view.page.updated_at),
            parts,
            regions: region,
            theirs,
        }
    }
}

/// The most parts a resolution form may carry (a merge of two 1 MiB texts makes far fewer).
const PARTS_MAX: usize = 10_000;

/// A resolution sent back from the conflict form: the parts and the choice of each region.
struct Resolution {
    parts: Vec<diff::Part>,
    choices: Vec<Option<diff::Choice>>,
}

impl Resolution {
    /// Reads `parts`, `partN` (merged text), `theirsN`, `mineN` and `choiceN` (mine, theirs,
    /// both); none when the form carries no resolution; an error when it is malformed.
    fn read(fields: &[(String, String)]) -> Result<Option<Self>, AppError> {
        let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let Some(count) = field("parts") else { return Ok(None) };
        let malformed = || {
            AppError::BadRequest("The conflict form is incomplete: reload the page to edit it again.".into())
        };
        let count: usize = count.trim().parse().map_err(|_| malformed())?;
        if count == 0 || count > PARTS_MAX {
            return Err(malformed());
        }
        let mut parts = Vec::with_capacity(count);
        let mut choices = Vec::new();
        for i in 0..count {
            if let Some(text) = field(&format!("part{i}")) {
                parts.push(diff::Part::Merged(crate::render::normalize_newlines(text).into_owned()));
                continue;
            }
            let (Some(theirs), Some(mine)) = (field(&format!("theirs{i}")), field(&format!("mine{i}")))
            else {
                return Err(malformed());
            };
            let choice = match field(&format!("choice{i}")) {
                None | Some("") => None,
                Some(value) => Some(diff::Choice::parse(value).ok_or_else(malformed)?),
            };
            parts.push(diff::Part::Conflict {
                theirs: crate::render::normalize_newlines(theirs).into_owned(),
                mine: crate::render::normalize_newlines(mine).into_owned(),
            });
            choices.push(choice);
        }
        Ok(Some(Self { parts, choices }))
    }
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
            resolving: state.conflict.as_ref().is_some_and(|c| !c.parts.is_empty()),
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
    // A page brought from the Flask wiki (HTML) opens as Markdown, saved as such.
    let content = if view.page.format == page::FORMAT_HTML {
        let html = view.page.content.clone();
        state.work.run_for_member("convert", move || content::html_to_markdown(&html)).await?
    } else {
        view.page.content.clone()
    };
    // The preview starts as the page shows now (beside the text on wide screens).
    let missing = crate::models::link::missing_targets(&state.db.read, view.page.id).await?;
    let preview = Some(content::display(&view.page.html, &missing, &view.page.title));
    editor(&shell, StatusCode::OK, &view, EditorState { content, base, preview, ..EditorState::default() })
}

#[derive(Default)]
struct EditForm {
    content: String,
    summary: String,
    base_revision: String,
    preview: Option<String>,
}

impl EditForm {
    fn read(fields: &[(String, String)]) -> Self {
        let field = |name: &str| fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
        Self {
            content: field("content").unwrap_or_default(),
            summary: field("summary").unwrap_or_default(),
            base_revision: field("base_revision").unwrap_or_default(),
            preview: field("preview"),
        }
    }
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
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let mut view = live_page(&state, path).await?;
    let mut form = EditForm::read(&fields);
    // A conflict resolved: the text is what the choices make; a region left unchosen sends the
    // same choices back.
    if let Some(resolution) = Resolution::read(&fields)? {
        let unchosen: Vec<usize> = resolution
            .choices
            .iter()
            .enumerate()
            .filter(|(_, choice)| choice.is_none())
            .map(|(i, _)| i + 1)
            .collect();
        if !unchosen.is_empty() {
            let mut errors = FieldErrors::default();
            errors.form.push(format!(
                "Choose which version to keep for every region: {} left (region {}).",
                unchosen.len(),
                unchosen.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ));
            // The member's own text: every region as they wrote it.
            let yours = diff::resolve(&resolution.parts, &vec![diff::Choice::Mine; resolution.choices.len()]);
            let mut conflict = Conflict::new(yours, &view, &resolution.parts, Vec::new());
            conflict.saved_by = last_author(&state, &view).await?;
            let regions = conflict.parts.iter_mut().filter(|p| p.merged.is_none());
            for (part, choice) in regions.zip(&resolution.choices) {
                part.choice = choice.map(choice_value);
                part.unchosen = part.choice.is_none();
            }
            let base = form
                .base_revision
                .trim()
                .parse::<i32>()
                .unwrap_or_else(|_| view.page.revision_id.unwrap_or_default());
            let state = EditorState {
                content: form.content.clone(),
                summary: form.summary.clone(),
                base,
                preview: None,
                conflict: Some(conflict),
                errors,
            };
            return editor(&shell, StatusCode::UNPROCESSABLE_ENTITY, &view, state);
        }
        let choices: Vec<diff::Choice> = resolution.choices.iter().flatten().copied().collect();
        form.content = diff::resolve(&resolution.parts, &choices);
    }
    // Stored as the editor shows it: a form submits CRLF line endings.
    form.content = content::normalize_newlines(&form.content).into_owned();
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
        return match preview_html(&state, form.content.clone(), &view.page.title).await? {
            Ok(html) => editor(&shell, StatusCode::OK, &view, kept(errors, Some(html), None, base)),
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
            // Pages brought from the Flask wiki are HTML until first saved: the member edited
            // their Markdown, so the merge compares Markdown.
            let as_edited = |text: String, format: &str| {
                if format == page::FORMAT_HTML { content::html_to_markdown(&text) } else { text }
            };
            let texts = (
                as_edited(ancestor.content, &ancestor.format),
                as_edited(view.page.content.clone(), &view.page.format),
                form.content.clone(),
            );
            let (merge, theirs) = state
                .work
                .run_for_member("merge", move || {
                    let (ancestor, theirs, mine) = texts;
                    let merge = diff::merge(&ancestor, &theirs, &mine);
                    let rows = match merge {
                        diff::Merge::TooCostly => diff::rows(&ancestor, &theirs),
                        _ => Vec::new(),
                    };
                    (merge, rows)
                })
                .await?;
            match merge {
                diff::Merge::Clean(merged) => (merged, true),
                diff::Merge::Conflict(parts) => {
                    let mut conflict = Conflict::new(form.content.clone(), &view, &parts, Vec::new());
                    conflict.saved_by = last_author(&state, &view).await?;
                    let which = if conflict.regions == 1 {
                        "for the region below".to_owned()
                    } else {
                        format!("for each of the {} regions below", conflict.regions)
                    };
                    errors.form.push(format!(
                        "Someone else changed this page while you were editing: {} saved it, with \
                         changes in some of the same places. Nothing is lost and nothing was saved \
                         yet: the parts that do not overlap are already combined; {which}, choose \
                         which version to keep, then save.",
                        conflict.saved_by,
                    ));
                    return editor(
                        &shell,
                        StatusCode::CONFLICT,
                        &view,
                        kept(errors, None, Some(conflict), current),
                    );
                }
                diff::Merge::TooCostly => {
                    errors.form.push(
                        "Someone else changed this page while you were editing, and the two versions \
                         differ too much to combine automatically. Nothing was saved: your text is in \
                         the editor; compare it with the other change below and save again."
                            .into(),
                    );
                    let mut conflict = Conflict::new(form.content.clone(), &view, &[], theirs);
                    conflict.saved_by = last_author(&state, &view).await?;
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

/// Who saved the page's current revision ("someone" when the account is gone).
async fn last_author(state: &AppState, view: &PageView) -> Result<String, AppError> {
    let latest = revision::history(&state.db.read, view.page.id, 0, 1).await?;
    Ok(latest.into_iter().next().and_then(|entry| entry.author).unwrap_or_else(|| "someone".to_owned()))
}

fn choice_value(choice: diff::Choice) -> &'static str {
    match choice {
        diff::Choice::Mine => "mine",
        diff::Choice::Theirs => "theirs",
        diff::Choice::Both => "both",
    }
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PreviewForm {
    content: String,
    /// The page's title (or the one being created): a first heading repeating it is left out,
    /// as the page will show it.
    title: String,
}

/// The HTML a page will show for this Markdown: rendered as it will be stored, its links to
/// missing pages marked, and its first heading left out when it repeats `title`.
pub async fn preview_html(
    state: &AppState,
    source: String,
    title: &str,
) -> Result<Result<String, content::RenderError>, AppError> {
    let rendered = match render_markdown(state, source).await? {
        Ok(rendered) => rendered,
        Err(why) => return Ok(Err(why)),
    };
    let missing = crate::models::link::missing_among(&state.db.read, &rendered.links).await?;
    let shown = content::display(&rendered.html, &missing, title);
    Ok(Ok(super::files::resolve_links(&state.db.read, &shown, title).await?))
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
    let html = match preview_html(&state, form.content, form.title.trim()).await? {
        Ok(html) => html,
        Err(why) => return Ok((StatusCode::UNPROCESSABLE_ENTITY, why.to_string()).into_response()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        html,
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

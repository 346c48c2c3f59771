//! Wiki pages: create, view (with what links here), rename, delete and restore.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Routes, render};
use crate::app::AppState;
use crate::auth::forms::CsrfForm;
use crate::auth::session::{CurrentUser, Editor, PageAdmin};
use crate::cache::{Rendered, ViewedPage};
use crate::domain::{PageTitle, check_content};
use crate::error::AppError;
use crate::extract::{TitlePath, TokenForm};
use crate::flash::{Flash, Kind};
use crate::models::link;
use crate::models::page::{self, CreatePageError, NewPage, PageView};
use crate::shell::Shell;
use crate::templates::{
    CreatePage, DeletePage, DeletedPages, DeletedRow, FieldErrors, Link, MissingPage, RenamePage, WikiPage,
    format_time,
};
use crate::{render as content, urls};

/// The page view's route (also what the metrics call the views answered ahead of the router).
pub const VIEW: &str = "/wiki/{title}";

pub fn router() -> Routes {
    Routes::new()
        .post("/create", get(create_form).post(create))
        .get(VIEW, get(view))
        .post("/wiki/{title}/rename", get(rename_form).post(rename))
        .post("/wiki/{title}/delete", get(delete_form).post(delete))
        .get("/deleted", get(deleted_pages))
        .post("/wiki/{title}/restore", post(restore))
}

/// The live page of a path, or 404.
pub async fn live_page(state: &AppState, path: TitlePath) -> Result<PageView, AppError> {
    let Path(title) = path?;
    page::find_with_author(&state.db.read, &title).await?.ok_or(AppError::NotFound)
}

/// `/wiki/TITLE` followed by `suffix`.
pub fn page_path(title: &str, suffix: &str) -> String {
    format!("{}{suffix}", urls::page(title))
}

/// An admin, or an editor who wrote the page (readers change nothing).
fn may_delete(user: &CurrentUser, author_id: Option<i32>) -> bool {
    user.is_admin() || (user.role.may_edit() && author_id == Some(user.id))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateQuery {
    title: String,
}

async fn create_form(
    _editor: Editor,
    shell: Shell,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let title = query.map(|Query(q)| q.title).unwrap_or_default();
    render(
        StatusCode::OK,
        CreatePage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            title: title.chars().take(100).collect(),
            content: String::new(),
            preview: None,
            cancel_href: "/".to_owned(),
            errors: FieldErrors::default(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateForm {
    title: String,
    content: String,
    /// Set by the Preview button: render, store nothing.
    preview: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create(
    Editor(author): Editor,
    shell: Shell,
    State(state): State<AppState>,
    CsrfForm(mut form): CsrfForm<CreateForm>,
) -> Result<Response, AppError> {
    let author_id = author.id;
    // Stored as the editor shows it: a form submits CRLF line endings.
    form.content = content::normalize_newlines(&form.content).into_owned();

    let mut errors = FieldErrors::default();
    let title = PageTitle::parse(&form.title).map_err(|e| errors.title.push(e.into())).ok();
    if let Err(e) = check_content(&form.content) {
        errors.content.push(e.into());
    }
    // A preview needs content within its limits only: the title may still be unsettled, and
    // is checked when the page is created.
    if form.preview.is_some() && errors.content.is_empty() {
        let shown_title =
            title.as_ref().map_or_else(|| form.title.trim().to_owned(), |t| t.as_str().to_owned());
        errors.title.clear();
        return match super::edit::preview_html(&state, form.content.clone(), &shown_title).await? {
            Ok(html) => create_again(&shell, StatusCode::OK, form, errors, Some(html)),
            Err(why) => {
                errors.content.push(why.to_string());
                create_again(&shell, StatusCode::UNPROCESSABLE_ENTITY, form, errors, None)
            }
        };
    }
    let Some(title) = title.filter(|_| errors.is_empty()) else {
        return create_again(&shell, StatusCode::UNPROCESSABLE_ENTITY, form, errors, None);
    };

    let source = form.content.clone();
    let rendered = match state.work.run_for_member("render", move || content::markdown_page(&source)).await? {
        Ok(rendered) => rendered,
        Err(why) => {
            errors.content.push(why.to_string());
            return create_again(&shell, StatusCode::UNPROCESSABLE_ENTITY, form, errors, None);
        }
    };
    let created = page::create(
        &state.db.write,
        NewPage {
            title: title.as_str(),
            content: &form.content,
            format: page::FORMAT_MARKDOWN,
            html: &rendered.html,
            author_id: Some(author_id),
            links: &rendered.links,
        },
    )
    .await;
    match created {
        Ok(created) => {
            tracing::info!(page.id = created.id, "page created");
            shell.flash(Kind::Success, "Page created successfully!");
            Ok(Redirect::to(&urls::page(&created.title)).into_response())
        }
        Err(CreatePageError::TitleTaken) => {
            errors.title.push(CreatePageError::TitleTaken.to_string());
            create_again(&shell, StatusCode::CONFLICT, form, errors, None)
        }
        Err(CreatePageError::Db(err)) => Err(err.into()),
    }
}

fn create_again(
    shell: &Shell,
    status: StatusCode,
    form: CreateForm,
    errors: FieldErrors,
    preview: Option<String>,
) -> Result<Response, AppError> {
    // The content is given back whole when it fits, so that nothing typed is lost.
    let content =
        if form.content.len() <= crate::domain::CONTENT_MAX_BYTES { form.content } else { String::new() };
    render(
        status,
        CreatePage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            title: form.title.chars().take(200).collect(),
            content,
            preview,
            cancel_href: "/".to_owned(),
            errors,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn view(shell: Shell, State(state): State<AppState>, path: TitlePath) -> Result<Response, AppError> {
    let Path(title) = path?;
    // Taken before anything is read, so that nothing read across a change is kept past it.
    let stamp = state.cache.stamp();
    // A visitor with no message pending gets exactly what the last visitor got.
    let visitor = !shell.viewer.is_member() && shell.nothing_pending();
    // Visitors' pages differ by colour scheme only.
    let visitor_key = crate::cache::visitor_key(shell.theme, &title);
    if visitor
        && let Some(stamp) = stamp
        && let Some(kept) = state.cache.visitor_page(&visitor_key, stamp)
    {
        return Ok(kept_page_response(&kept));
    }
    let kept = stamp.and_then(|stamp| state.cache.page(&title, stamp));
    let (viewed, deleted) = match kept {
        Some(viewed) => (viewed, false),
        None => match read_page(&state, &shell, &title).await? {
            Read::Found(viewed, deleted) => {
                if let Some(stamp) = stamp.filter(|_| !deleted) {
                    state.cache.keep_page(&title, viewed.clone(), stamp);
                }
                (viewed, deleted)
            }
            Read::Elsewhere(response) => return Ok(response),
        },
    };
    let member = shell.viewer.member.as_ref();
    let may_delete = member.is_some_and(|user| may_delete(user, viewed.author_id));
    let page = WikiPage {
        csrf_token: shell.member_csrf_token(),
        layout: shell.layout(),
        author: viewed.author.clone().map(|name| Link { href: urls::user(&name), text: name }),
        updated: format_time(viewed.updated_at),
        html: viewed.html.clone(),
        base: urls::page(&viewed.title),
        backlinks: viewed.backlinks.iter().cloned().map(Link::page).collect(),
        deleted,
        may_delete,
        title: viewed.title.clone(),
    };
    if !visitor {
        return render(StatusCode::OK, page);
    }
    let body = axum::body::Bytes::from(askama::Template::render(&page)?);
    let Some(etag) = crate::app::entity_tag(&body) else {
        return render(StatusCode::OK, page);
    };
    let rendered = Arc::new(Rendered::new(body, etag));
    if let Some(stamp) = stamp.filter(|_| !deleted) {
        state.cache.keep_visitor_page(&visitor_key, rendered.clone(), stamp);
    }
    Ok(kept_page_response(&rendered))
}

/// What reading a page view from the database gave.
enum Read {
    /// The page (deleted: shown to admins only, and never kept).
    Found(Arc<ViewedPage>, bool),
    /// Not a page here: the redirect to its new title, or the missing page.
    Elsewhere(Response),
}

async fn read_page(state: &AppState, shell: &Shell, title: &str) -> Result<Read, AppError> {
    let db = &state.db.read;
    let found = page::find_including_deleted(db, title).await?;
    let is_admin = shell.viewer.is_admin();
    let Some(found) = found.filter(|view| view.page.deleted_at.is_none() || is_admin) else {
        if let Some(current) = link::renamed_to(db, title).await? {
            return Ok(Read::Elsewhere(Redirect::permanent(&urls::page(&current)).into_response()));
        }
        return render(
            StatusCode::NOT_FOUND,
            MissingPage {
                layout: shell.layout(),
                may_create: shell.viewer.member.as_ref().is_none_or(|member| member.role.may_edit()),
                create_href: format!("/create?title={}", urls::encode_query(title)),
                title: title.to_owned(),
            },
        )
        .map(Read::Elsewhere);
    };
    let (missing, backlinks) = link::for_view(db, found.page.id, &found.page.title).await?;
    let deleted = found.page.deleted_at.is_some();
    let shown = content::display(&found.page.html, &missing, &found.page.title);
    let html = super::files::resolve_links(&state.db.read, &shown, &found.page.title).await?;
    let viewed = ViewedPage {
        id: found.page.id,
        html,
        author_id: found.page.author_id,
        author: found.author,
        updated_at: found.page.updated_at,
        backlinks,
        title: found.page.title,
    };
    Ok(Read::Found(Arc::new(viewed), deleted))
}

/// A whole page as kept: its HTML and its entity tag (so `entity_tags` hashes nothing).
fn kept_page_response(kept: &Rendered) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (axum::http::header::ETAG, kept.etag.clone()),
        ],
        kept.body.clone(),
    )
        .into_response()
}

async fn rename_form(
    _editor: Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    rename_page(&shell, StatusCode::OK, &found.page.title, found.page.title.clone(), FieldErrors::default())
}

fn rename_page(
    shell: &Shell,
    status: StatusCode,
    title: &str,
    new_title: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        RenamePage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            action: page_path(title, "/rename"),
            title: title.to_owned(),
            new_title: new_title.chars().take(200).collect(),
            errors,
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RenameForm {
    new_title: String,
}

#[tracing::instrument(skip_all)]
async fn rename(
    Editor(editor): Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    let actor = editor.id;
    let mut errors = FieldErrors::default();
    let new_title = match PageTitle::parse(&form.new_title) {
        Ok(new_title) if new_title.as_str() == found.page.title => {
            errors.title.push("The new title is the same as the old one.".into());
            None
        }
        Ok(new_title) => Some(new_title),
        Err(e) => {
            errors.title.push(e.into());
            None
        }
    };
    let Some(new_title) = new_title else {
        return rename_page(
            &shell,
            StatusCode::UNPROCESSABLE_ENTITY,
            &found.page.title,
            form.new_title,
            errors,
        );
    };
    match page::rename(&state.db.write, &found.page, new_title.as_str(), actor).await {
        Ok(()) => {
            shell.flash(Kind::Success, "Page renamed. The old title leads here.");
            Ok(Redirect::to(&urls::page(new_title.as_str())).into_response())
        }
        Err(CreatePageError::TitleTaken) => {
            errors.title.push(CreatePageError::TitleTaken.to_string());
            rename_page(&shell, StatusCode::CONFLICT, &found.page.title, form.new_title, errors)
        }
        Err(CreatePageError::Db(err)) => Err(err.into()),
    }
}

fn delete_page(
    shell: &Shell,
    status: StatusCode,
    user: &CurrentUser,
    title: &str,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        DeletePage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            action: page_path(title, "/delete"),
            page_href: urls::page(title),
            title: title.to_owned(),
            may_restore: user.is_admin(),
            errors,
        },
    )
}

/// GET /wiki/TITLE/delete — the confirmation, naming the page.
async fn delete_form(
    Editor(user): Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    if !may_delete(&user, found.page.author_id) {
        return Err(AppError::Forbidden("Only the page's author or an admin can delete it."));
    }
    delete_page(&shell, StatusCode::OK, &user, &found.page.title, FieldErrors::default())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DeleteForm {
    /// `yes`, from the confirmation's button.
    confirm: String,
}

#[tracing::instrument(skip_all)]
async fn delete(
    Editor(user): Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: TitlePath,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    if !may_delete(&user, found.page.author_id) {
        return Err(AppError::Forbidden("Only the page's author or an admin can delete it."));
    }
    if form.confirm != "yes" {
        let mut errors = FieldErrors::default();
        errors.form.push("Nothing was deleted: confirm with the “Delete” button of this page.".into());
        return delete_page(&shell, StatusCode::UNPROCESSABLE_ENTITY, &user, &found.page.title, errors);
    }
    page::set_deleted(&state.db.write, &found.page, true, &user.actor()).await?;
    tracing::info!(page.id = found.page.id, user.id = user.id, "page deleted");
    let title = &found.page.title;
    if user.is_admin() {
        shell.flash_with_undo(Kind::Info, &format!("Page “{title}” deleted."), page_path(title, "/restore"));
    } else {
        shell.flash(Kind::Info, &format!("Page “{title}” deleted. An admin can restore it."));
    }
    Ok(Redirect::to("/").into_response())
}

/// GET /deleted — deleted pages, for admins to restore.
async fn deleted_pages(
    PageAdmin(_): PageAdmin,
    shell: Shell,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    let pages = page::deleted(&state.db.read)
        .await?
        .into_iter()
        .map(|(title, at)| DeletedRow { href: urls::page(&title), deleted: format_time(at), title })
        .collect();
    render(StatusCode::OK, DeletedPages { csrf_token: shell.csrf_token(), layout: shell.layout(), pages })
}

#[tracing::instrument(skip_all)]
async fn restore(
    PageAdmin(user): PageAdmin,
    flash: Flash,
    State(state): State<AppState>,
    path: TitlePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let found = page::find_including_deleted(&state.db.read, &title)
        .await?
        .filter(|view| view.page.deleted_at.is_some())
        .ok_or(AppError::NotFound)?;
    page::set_deleted(&state.db.write, &found.page, false, &user.actor()).await?;
    flash.push(Kind::Success, "Page restored.");
    Ok(Redirect::to(&urls::page(&found.page.title)).into_response())
}

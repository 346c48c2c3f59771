//! Wiki pages: create, view (with what links here), rename, delete and restore.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::render;
use crate::app::AppState;
use crate::auth::session::{Ctx, CurrentUser};
use crate::domain::{PageTitle, check_content};
use crate::error::AppError;
use crate::extract::{Form, TitlePath, TokenForm};
use crate::flash::Kind;
use crate::models::page::{self, CreatePageError, NewPage, PageView};
use crate::models::{link, user};
use crate::templates::{CreatePage, FieldErrors, Link, MissingPage, RenamePage, WikiPage, format_time};
use crate::{render as content, urls};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/create", get(create_form).post(create))
        .route("/wiki/{title}", get(view))
        .route("/wiki/{title}/rename", get(rename_form).post(rename))
        .route("/wiki/{title}/delete", post(delete))
        .route("/wiki/{title}/restore", post(restore))
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

/// The author of a page, or an admin.
fn may_delete(user: &CurrentUser, view: &PageView) -> bool {
    user.is_admin || view.page.author_id == Some(user.id)
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateQuery {
    title: String,
}

async fn create_form(
    ctx: Ctx,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    ctx.require_user("/create")?;
    let title = query.map(|Query(q)| q.title).unwrap_or_default();
    render(
        StatusCode::OK,
        CreatePage {
            csrf_token: ctx.csrf_token(),
            layout: ctx.layout(),
            title: title.chars().take(100).collect(),
            content: String::new(),
            errors: FieldErrors::default(),
        },
    )
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CreateForm {
    title: String,
    content: String,
    csrf_token: String,
}

#[tracing::instrument(skip_all)]
async fn create(
    ctx: Ctx,
    State(state): State<AppState>,
    Form(form): Form<CreateForm>,
) -> Result<Response, AppError> {
    let author_id = ctx.require_user("/create")?.id;
    ctx.check_csrf(&form.csrf_token)?;

    let mut errors = FieldErrors::default();
    let title = PageTitle::parse(&form.title).map_err(|e| errors.title.push(e.into())).ok();
    if let Err(e) = check_content(&form.content) {
        errors.content.push(e.into());
    }
    let Some(title) = title.filter(|_| errors.is_empty()) else {
        return create_again(&ctx, StatusCode::UNPROCESSABLE_ENTITY, form, errors);
    };

    let source = form.content.clone();
    let rendered = tokio::task::spawn_blocking(move || content::markdown_page(&source))
        .await
        .map_err(|err| anyhow::anyhow!("rendering failed: {err}"))?;
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
            ctx.flash(Kind::Success, "Page created successfully!");
            Ok(Redirect::to(&urls::page(&created.title)).into_response())
        }
        Err(CreatePageError::TitleTaken) => {
            errors.title.push(CreatePageError::TitleTaken.to_string());
            create_again(&ctx, StatusCode::CONFLICT, form, errors)
        }
        Err(CreatePageError::Db(err)) => Err(err.into()),
    }
}

fn create_again(
    ctx: &Ctx,
    status: StatusCode,
    form: CreateForm,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    // The content is given back whole when it fits, so that nothing typed is lost.
    let content =
        if form.content.len() <= crate::domain::CONTENT_MAX_BYTES { form.content } else { String::new() };
    render(
        status,
        CreatePage {
            csrf_token: ctx.csrf_token(),
            layout: ctx.layout(),
            title: form.title.chars().take(200).collect(),
            content,
            errors,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn view(ctx: Ctx, State(state): State<AppState>, path: TitlePath) -> Result<Response, AppError> {
    let Path(title) = path?;
    let db = &state.db.read;
    let found = page::find_including_deleted(db, &title).await?;
    let is_admin = ctx.user.as_ref().is_some_and(|u| u.is_admin);
    let Some(found) = found.filter(|view| view.page.deleted_at.is_none() || is_admin) else {
        if let Some(current) = link::renamed_to(db, &title).await? {
            return Ok(Redirect::permanent(&urls::page(&current)).into_response());
        }
        return render(
            StatusCode::NOT_FOUND,
            MissingPage {
                layout: ctx.layout(),
                create_href: format!("/create?title={}", urls::encode_query(&title)),
                title,
            },
        );
    };
    let (missing, backlinks) = link::for_view(db, found.page.id, &found.page.title).await?;
    let may_delete = ctx.user.as_ref().is_some_and(|user| may_delete(user, &found));
    render(
        StatusCode::OK,
        WikiPage {
            csrf_token: if ctx.user.is_some() { ctx.csrf_token() } else { String::new() },
            layout: ctx.layout(),
            author: found.author.map(|name| Link { href: urls::user(&name), text: name }),
            updated: format_time(found.page.updated_at),
            html: content::mark_missing(&found.page.html, &missing),
            base: urls::page(&found.page.title),
            backlinks: backlinks.into_iter().map(Link::page).collect(),
            deleted: found.page.deleted_at.is_some(),
            may_delete,
            title: found.page.title,
        },
    )
}

async fn rename_form(ctx: Ctx, State(state): State<AppState>, path: TitlePath) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    ctx.require_user(&page_path(&found.page.title, "/rename"))?;
    rename_page(&ctx, StatusCode::OK, &found.page.title, found.page.title.clone(), FieldErrors::default())
}

fn rename_page(
    ctx: &Ctx,
    status: StatusCode,
    title: &str,
    new_title: String,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    render(
        status,
        RenamePage {
            csrf_token: ctx.csrf_token(),
            layout: ctx.layout(),
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
    csrf_token: String,
}

#[tracing::instrument(skip_all)]
async fn rename(
    ctx: Ctx,
    State(state): State<AppState>,
    path: TitlePath,
    Form(form): Form<RenameForm>,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    let actor = ctx.require_user(&page_path(&found.page.title, "/rename"))?.id;
    ctx.check_csrf(&form.csrf_token)?;
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
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &found.page.title,
            form.new_title,
            errors,
        );
    };
    match page::rename(&state.db.write, &found.page, new_title.as_str(), actor).await {
        Ok(()) => {
            ctx.flash(Kind::Success, "Page renamed. The old title leads here.");
            Ok(Redirect::to(&urls::page(new_title.as_str())).into_response())
        }
        Err(CreatePageError::TitleTaken) => {
            errors.title.push(CreatePageError::TitleTaken.to_string());
            rename_page(&ctx, StatusCode::CONFLICT, &found.page.title, form.new_title, errors)
        }
        Err(CreatePageError::Db(err)) => Err(err.into()),
    }
}

#[tracing::instrument(skip_all)]
async fn delete(
    ctx: Ctx,
    State(state): State<AppState>,
    path: TitlePath,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let found = live_page(&state, path).await?;
    let user = ctx.require_user(&urls::page(&found.page.title))?;
    ctx.check_csrf(&form.csrf_token)?;
    if !may_delete(user, &found) {
        return Err(AppError::Forbidden("Only the page's author or an admin can delete it."));
    }
    page::set_deleted(&state.db.write, &found.page, true).await?;
    tracing::info!(page.id = found.page.id, user.id = user.id, "page deleted");
    ctx.flash(Kind::Info, "Page deleted. An admin can restore it.");
    Ok(Redirect::to("/").into_response())
}

#[tracing::instrument(skip_all)]
async fn restore(
    ctx: Ctx,
    State(state): State<AppState>,
    path: TitlePath,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let user = ctx.require_user(&urls::page(&title))?;
    ctx.check_csrf(&form.csrf_token)?;
    if !user.is_admin {
        return Err(AppError::Forbidden("Only an admin can restore a page."));
    }
    let found = page::find_including_deleted(&state.db.read, &title)
        .await?
        .filter(|view| view.page.deleted_at.is_some())
        .ok_or(AppError::NotFound)?;
    page::set_deleted(&state.db.write, &found.page, false).await?;
    ctx.flash(Kind::Success, "Page restored.");
    Ok(Redirect::to(&urls::page(&found.page.title)).into_response())
}

/// Whether the first account ever registered is this one: it becomes admin.
pub async fn promote_if_first(state: &AppState, user_id: i32) -> Result<(), AppError> {
    if user::first_id(&state.db.write).await? == Some(user_id) {
        user::promote_id(&state.db.write, user_id).await?;
        tracing::info!(user.id = user_id, "the first account is admin");
    }
    Ok(())
}

//! Wiki pages: create and view.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::render;
use crate::app::AppState;
use crate::auth::session::Ctx;
use crate::domain::{PageTitle, check_content};
use crate::error::AppError;
use crate::extract::Form;
use crate::flash::Kind;
use crate::models::page::{self, CreatePageError, NewPage};
use crate::templates::{CreatePage, FieldErrors, MissingPage, WikiPage, format_time};
use crate::{render as content, urls};

pub fn router() -> Router<AppState> {
    Router::new().route("/create", get(create_form).post(create)).route("/wiki/{title}", get(view))
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
    let html = tokio::task::spawn_blocking(move || content::markdown(&source))
        .await
        .map_err(|err| anyhow::anyhow!("rendering failed: {err}"))?;
    let created = page::create(
        &state.db.write,
        NewPage {
            title: title.as_str(),
            content: &form.content,
            format: page::FORMAT_MARKDOWN,
            html: &html,
            author_id: Some(author_id),
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
async fn view(
    ctx: Ctx,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let Some(found) = page::find_with_author(&state.db.read, &title).await? else {
        return render(
            StatusCode::NOT_FOUND,
            MissingPage {
                layout: ctx.layout(),
                create_href: format!("/create?title={}", urls::encode_query(&title)),
                title,
            },
        );
    };
    render(
        StatusCode::OK,
        WikiPage {
            layout: ctx.layout(),
            author: found.author,
            updated: format_time(found.page.updated_at),
            html: found.page.html,
            title: found.page.title,
        },
    )
}

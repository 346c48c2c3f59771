//! The member's profile: their avatar, its upload, and the pages they wrote.

use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::render;
use crate::app::AppState;
use crate::auth::session::{Ctx, CurrentUser};
use crate::error::AppError;
use crate::flash::Kind;
use crate::models::{page, user};
use crate::templates::{FieldErrors, Link, ProfilePage};
use crate::uploads::{self, AvatarError};

/// The whole upload request: a 5 MiB image and the form around it.
pub const UPLOAD_BODY_LIMIT: usize = 6 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profile", get(profile).post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .route("/avatars/{name}", get(avatar))
}

async fn profile(ctx: Ctx, State(state): State<AppState>) -> Result<Response, AppError> {
    let user = ctx.require_user("/profile")?.clone();
    profile_page(&ctx, &state, &user, StatusCode::OK, FieldErrors::default()).await
}

async fn profile_page(
    ctx: &Ctx,
    state: &AppState,
    current: &CurrentUser,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let member = user::find_by_id(&state.db.read, current.id).await?.ok_or(AppError::NotFound)?;
    let pages = page::titles_by_author(&state.db.read, &member).await?;
    render(
        status,
        ProfilePage {
            csrf_token: ctx.csrf_token(),
            layout: ctx.layout(),
            avatar_src: member.avatar.as_deref().map(uploads::avatar_src),
            username: member.username,
            pages: pages.into_iter().map(Link::page).collect(),
            errors,
        },
    )
}

/// The parts of the upload form that matter.
#[derive(Default)]
struct UploadForm {
    csrf_token: String,
    filename: String,
    bytes: Vec<u8>,
    too_large: bool,
}

async fn read_upload(mut multipart: Multipart) -> Result<UploadForm, AppError> {
    let mut form = UploadForm::default();
    while let Some(mut field) = multipart.next_field().await? {
        match field.name() {
            Some("csrf_token") => {
                let text = field.text().await?;
                form.csrf_token = text.chars().take(256).collect();
            }
            Some("avatar") => {
                form.filename = field.file_name().unwrap_or_default().to_owned();
                while let Some(chunk) = field.chunk().await? {
                    if form.bytes.len() + chunk.len() > uploads::MAX_BYTES {
                        form.too_large = true;
                        form.bytes.clear();
                        // Keep reading (and dropping) so the rest of the form still arrives.
                        continue;
                    }
                    if !form.too_large {
                        form.bytes.extend_from_slice(&chunk);
                    }
                }
            }
            _ => while field.chunk().await?.is_some() {},
        }
    }
    Ok(form)
}

#[tracing::instrument(skip_all)]
async fn upload(
    ctx: Ctx,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    let current = ctx.require_user("/profile")?.clone();
    let multipart = multipart
        .map_err(|_| AppError::BadRequest("The upload must be sent as multipart/form-data.".into()))?;
    let form = read_upload(multipart).await?;
    ctx.check_csrf(&form.csrf_token)?;

    let checked = if form.too_large {
        Err(AvatarError::TooLarge)
    } else {
        let _permit = state.images.acquire().await.map_err(anyhow::Error::from)?;
        let UploadForm { filename, bytes, .. } = form;
        tokio::task::spawn_blocking(move || uploads::validate(&filename, &bytes))
            .await
            .map_err(|err| anyhow::anyhow!("the image check failed: {err}"))?
    };
    let avatar = match checked {
        Ok(avatar) => avatar,
        Err(err) => {
            let errors = FieldErrors { avatar: vec![err.to_string()], ..FieldErrors::default() };
            return profile_page(&ctx, &state, &current, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
        }
    };

    let dir = &state.settings.avatar_dir;
    let name = uploads::store(dir, &avatar).await?;
    match user::set_avatar(&state.db.write, current.id, &name).await {
        Ok(previous) => {
            if let Some(previous) = previous {
                uploads::remove(dir, &previous).await;
            }
        }
        Err(err) => {
            uploads::remove(dir, &name).await;
            return Err(err.into());
        }
    }
    tracing::info!(user.id = current.id, "avatar uploaded");
    ctx.flash(Kind::Success, "Avatar uploaded successfully!");
    Ok(Redirect::to("/profile").into_response())
}

/// GET /avatars/NAME — members only, and only names Quire generated.
async fn avatar(
    ctx: Ctx,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path(name) = path?;
    ctx.require_user(&format!("/avatars/{}", crate::urls::segment(&name)))?;
    let file = uploads::path_of(&state.settings.avatar_dir, &name).ok_or(AppError::NotFound)?;
    let bytes = match tokio::fs::read(&file).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(AppError::NotFound),
        Err(err) => return Err(anyhow::Error::from(err).into()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(uploads::content_type(&name))),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("inline")),
        ],
        bytes,
    )
        .into_response())
}

//! The member's profile: their avatar, its upload, and the pages they wrote.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::{Routes, render};
use crate::app::AppState;
use crate::auth::forms::{CsrfMultipart, FilePart};
use crate::auth::session::{CurrentUser, Member};
use crate::error::AppError;
use crate::flash::Kind;
use crate::models::{page, user};
use crate::shell::Shell;
use crate::templates::{FieldErrors, Link, ProfilePage};
use crate::uploads::{self, AvatarError};

/// The whole upload request: a 5 MiB image and the form around it.
pub const UPLOAD_BODY_LIMIT: usize = 6 * 1024 * 1024;

pub fn router() -> Routes {
    Routes::new()
        .post("/profile", get(profile).post(upload).layer(DefaultBodyLimit::max(UPLOAD_BODY_LIMIT)))
        .get("/avatars/{name}", get(avatar))
        .get("/export.zip", get(export_zip))
}

/// A member's export: every page they may read, as Markdown and static HTML, in one zip.
/// Visitors go to the login page, as for any member's page.
async fn export_zip(Member(_member): Member, State(state): State<AppState>) -> Result<Response, AppError> {
    super::export_download(&state, crate::export::Reader::Member).await
}

async fn profile(
    Member(member): Member,
    shell: Shell,
    State(state): State<AppState>,
) -> Result<Response, AppError> {
    profile_page(&shell, &state, &member, StatusCode::OK, FieldErrors::default()).await
}

async fn profile_page(
    shell: &Shell,
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
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            avatar_src: member.avatar.as_deref().map(uploads::avatar_src),
            username: member.username,
            pages: pages.into_iter().map(Link::page).collect(),
            errors,
        },
    )
}

#[tracing::instrument(skip_all)]
async fn upload(
    Member(current): Member,
    shell: Shell,
    State(state): State<AppState>,
    mut form: CsrfMultipart,
) -> Result<Response, AppError> {
    let checked = match form.take_file("avatar") {
        None => Err(AvatarError::Missing),
        Some(file) if file.bytes.len() > uploads::MAX_BYTES => Err(AvatarError::TooLarge),
        Some(file) => {
            let _permit = state.images.acquire().await.map_err(anyhow::Error::from)?;
            let FilePart { file_name, bytes, .. } = file;
            tokio::task::spawn_blocking(move || uploads::validate(&file_name, &bytes))
                .await
                .map_err(|err| anyhow::anyhow!("the image check failed: {err}"))?
        }
    };
    let avatar = match checked {
        Ok(avatar) => avatar,
        Err(err) => {
            let errors = FieldErrors { avatar: vec![err.to_string()], ..FieldErrors::default() };
            return profile_page(&shell, &state, &current, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
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
    shell.flash(Kind::Success, "Avatar uploaded successfully!");
    Ok(Redirect::to("/profile").into_response())
}

/// GET /avatars/NAME — members only, and only names Quire generated.
async fn avatar(
    _member: Member,
    State(state): State<AppState>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, AppError> {
    let Path(name) = path?;
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

//! Files attached to pages: the list and upload form, downloads (ranges, entity tags, versions,
//! image previews), deleting and restoring. Who may read a page may download its files; who may
//! edit it may upload and delete; admins restore. A file of a page that is missing, deleted or
//! hidden from the reader answers exactly as that page does.

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{Routes, render};
use crate::app::AppState;
use crate::auth::forms::{CsrfForm, CsrfUpload};
use crate::auth::session::{Editor, PageAdmin};
use crate::error::AppError;
use crate::extract::TokenForm;
use crate::files::{self, Range};
use crate::flash::Kind;
use crate::models::file::{self, Attachment, CHUNK_SIZE, NewVersion};
use crate::models::{link, page};
use crate::shell::Shell;
use crate::templates::{AttachmentRow, AttachmentsPage, FieldErrors, Link, VersionRow, format_time};
use crate::urls;

pub fn router() -> Routes {
    Routes::new()
        .post("/wiki/{title}/attachments", get(list).post(upload).layer(DefaultBodyLimit::disable()))
        .get("/wiki/{title}/attachments/{name}", get(download))
        .post("/wiki/{title}/attachments/{name}/delete", post(delete))
        .post("/wiki/{title}/attachments/{name}/restore", post(restore))
}

/// `/wiki/TITLE/attachments`
pub fn list_path(title: &str) -> String {
    format!("{}/attachments", urls::page(title))
}

/// `/wiki/TITLE/attachments/NAME`
pub fn file_path(title: &str, name: &str) -> String {
    format!("{}/attachments/{}", urls::page(title), urls::segment(name))
}

type TitlePath = Result<Path<String>, axum::extract::rejection::PathRejection>;
type FilePath = Result<Path<(String, String)>, axum::extract::rejection::PathRejection>;

/// The live page of a title, or what asking for that page answers: the way to its new title
/// (`suffix` kept), or 404.
async fn live_page(
    state: &AppState,
    title: &str,
    suffix: &str,
) -> Result<Result<page::Model, Response>, AppError> {
    if let Some(found) = page::find_with_author(&state.db.read, title).await? {
        return Ok(Ok(found.page));
    }
    if let Some(current) = link::renamed_to(&state.db.read, title).await? {
        let target = format!("{}{suffix}", urls::page(&current));
        return Ok(Err(Redirect::permanent(&target).into_response()));
    }
    Err(AppError::NotFound)
}

fn rows(title: &str, attachments: Vec<Attachment>) -> Vec<AttachmentRow> {
    attachments
        .into_iter()
        .filter_map(|attachment| {
            let latest = attachment.latest()?.clone();
            let name = attachment.attachment.name.clone();
            let href = file_path(title, &name);
            let versions = attachment
                .versions
                .iter()
                .map(|version| VersionRow {
                    number: version.version,
                    href: format!("{href}?version={}", version.version),
                    size: files::human_size(u64::try_from(version.size).unwrap_or(0)),
                    uploaded: format_time(version.created_at),
                    uploader_name: version.uploader_name.clone(),
                })
                .collect();
            Some(AttachmentRow {
                uploader: latest.uploader_id.is_some().then(|| Link {
                    href: urls::user(&latest.uploader_name),
                    text: latest.uploader_name.clone(),
                }),
                uploader_name: latest.uploader_name.clone(),
                size: files::human_size(u64::try_from(latest.size).unwrap_or(0)),
                bytes: latest.size,
                content_type: latest.content_type.clone(),
                uploaded: format_time(attachment.attachment.deleted_at.unwrap_or(latest.created_at)),
                versions,
                name,
                href,
            })
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    shell: &Shell,
    found: &page::Model,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<Response, AppError> {
    let is_admin = shell.viewer.is_admin();
    let all = file::list_for_page(&state.db.read, found.id, is_admin).await?;
    let (deleted, live): (Vec<_>, Vec<_>) = all.into_iter().partition(|a| a.attachment.deleted_at.is_some());
    let may_edit = shell.viewer.member.as_ref().is_some_and(|member| member.role.may_edit());
    render(
        status,
        AttachmentsPage {
            csrf_token: shell.csrf_token(),
            layout: shell.layout(),
            page_href: urls::page(&found.title),
            action: list_path(&found.title),
            files: rows(&found.title, live),
            deleted: rows(&found.title, deleted),
            may_edit,
            max_upload: files::human_size(state.settings.max_upload),
            errors,
            title: found.title.clone(),
        },
    )
}

/// GET /wiki/TITLE/attachments — the page's files and the upload form.
async fn list(shell: Shell, State(state): State<AppState>, path: TitlePath) -> Result<Response, AppError> {
    let Path(title) = path?;
    let found = match live_page(&state, &title, "/attachments").await? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    list_page(&state, &shell, &found, StatusCode::OK, FieldErrors::default()).await
}

/// POST /wiki/TITLE/attachments — stores the form's `file` (a new version when the name
/// exists), then back to the list.
#[tracing::instrument(skip_all)]
async fn upload(
    Editor(editor): Editor,
    shell: Shell,
    State(state): State<AppState>,
    headers: HeaderMap,
    path: TitlePath,
    form: CsrfUpload,
) -> Result<Response, AppError> {
    let Path(title) = path?;
    let found = page::find_with_author(&state.db.read, &title).await?.ok_or(AppError::NotFound)?.page;
    let Some(received) = form.receive(&state, "file").await? else {
        let errors = FieldErrors {
            form: vec!["No file was sent: choose one to upload.".into()],
            ..FieldErrors::default()
        };
        return list_page(&state, &shell, &found, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    };
    let name = match files::normalize_name(&received.file_name) {
        Ok(name) => name,
        Err(why) => {
            // Nothing of it is kept: the transaction is dropped.
            drop(received);
            let errors = FieldErrors { form: vec![why.to_string()], ..FieldErrors::default() };
            return list_page(&state, &shell, &found, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
        }
    };
    let written = received.written;
    if written.new
        && let Some(quota) = state.settings.storage_quota
    {
        let used = u64::try_from(file::stored_bytes(&received.txn).await?).unwrap_or(0);
        if used > quota {
            return Err(AppError::UploadTooLarge(format!(
                "The wiki's storage quota ({}) would be exceeded: {} are used. Nothing was stored.",
                files::human_size(quota),
                files::human_size(used - written.size)
            )));
        }
    }
    let content_type = files::sniff(&written.head);
    let dimensions = match written.kept.clone() {
        Some(bytes) if files::is_image_type(&content_type) => {
            let _permit = state.images.acquire().await.map_err(anyhow::Error::from)?;
            let kind = content_type.clone();
            tokio::task::spawn_blocking(move || files::check_image(&kind, &bytes))
                .await
                .map_err(|err| anyhow::anyhow!("the image check failed: {err}"))?
        }
        _ => None,
    };
    let number = file::add_version(
        received.txn,
        &written,
        NewVersion {
            page_id: found.id,
            name: &name,
            content_type: &content_type,
            inline_image: dimensions.is_some(),
            dimensions,
            uploader_id: editor.id,
            uploader_name: &editor.username,
        },
    )
    .await?;
    tracing::info!(
        page.id = found.id,
        user.id = editor.id,
        file.size = written.size,
        file.version = number,
        "file uploaded"
    );
    if wants_json(&headers) {
        let markdown = attachment_markdown(&name, dimensions.is_some());
        let answer = serde_json::json!({
            "name": name,
            "href": file_path(&found.title, &name),
            "version": number,
            "markdown": markdown,
        });
        return Ok(([(header::CONTENT_TYPE, "application/json")], answer.to_string()).into_response());
    }
    let what = if number > 1 {
        format!("“{name}” uploaded (version {number}).")
    } else {
        format!("“{name}” uploaded.")
    };
    shell.flash(Kind::Success, &what);
    Ok(Redirect::to(&list_path(&found.title)).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileQuery {
    version: Option<String>,
    width: Option<String>,
}

/// GET /wiki/TITLE/attachments/NAME[?version=N][?width=N] — the bytes as uploaded (or a
/// preview), streamed from the database.
#[tracing::instrument(skip_all)]
async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: FilePath,
    query: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Path((title, name)) = path?;
    let Query(query) = query?;
    let suffix = format!("/attachments/{}", urls::segment(&name));
    let found = match live_page(&state, &title, &suffix).await? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let attachment = file::find(&state.db.read, found.id, &name)
        .await?
        .filter(|a| a.attachment.deleted_at.is_none())
        .ok_or(AppError::NotFoundWith("No file of this name is attached to this page."))?;
    let version = match query.version.as_deref() {
        None => attachment.latest(),
        Some(raw) => {
            let number: i32 = raw
                .parse()
                .map_err(|_| AppError::BadRequest("The version must be a number, like ?version=2.".into()))?;
            attachment.versions.iter().find(|v| v.version == number)
        }
    }
    .ok_or(AppError::NotFoundWith("This file has no such version."))?
    .clone();
    let disposition_name = attachment.attachment.name.clone();
    if let Some(width) = query.width.as_deref() {
        let width = files::preview_width(width).map_err(|why| AppError::Unprocessable(why.to_string()))?;
        return preview(&state, &headers, &version, width, &disposition_name).await;
    }
    let inline = version.inline_image == 1;
    Ok(serve(
        state.db.read.clone(),
        &headers,
        Served {
            hash: version.blob_hash,
            size: u64::try_from(version.size).unwrap_or(0),
            content_type: version.content_type,
            inline,
            name: disposition_name,
        },
    ))
}

/// What a download serves.
struct Served {
    hash: String,
    size: u64,
    content_type: String,
    inline: bool,
    name: String,
}

/// `Content-Disposition` with the name in ASCII (others as `_`) and in UTF-8 (RFC 6266).
fn disposition(inline: bool, name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    let value = format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}", urls::segment(name));
    HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The policy of every served file: it is never a document of this origin (no script, no
/// form, no plugin), whatever a browser makes of it; images still show inline.
const FILE_POLICY: &str = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'";

fn serve(db: DatabaseConnection, headers: &HeaderMap, served: Served) -> Response {
    let etag = HeaderValue::try_from(format!("\"{}\"", served.hash))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::ETAG, etag.clone());
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Each reader revalidates (the tag makes that cheap); nothing shared keeps a member's file.
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(FILE_POLICY));
    response_headers.insert(header::CONTENT_DISPOSITION, disposition(served.inline, &served.name));
    if crate::app::none_match(headers.get(header::IF_NONE_MATCH), &etag) {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::try_from(served.content_type.as_str())
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    // Sent as stored: the compression layer leaves it alone, so lengths and ranges hold.
    response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("identity"));
    let if_range_matches =
        headers.get(header::IF_RANGE).is_none_or(|value| value.as_bytes() == etag.as_bytes());
    let range = if if_range_matches {
        files::parse_range(headers.get(header::RANGE).and_then(|v| v.to_str().ok()), served.size)
    } else {
        Range::Whole
    };
    let size = served.size;
    let (status, start, end) = match range {
        Range::Whole => (StatusCode::OK, 0, size),
        Range::Part { start, end } => {
            let value = format!("bytes {start}-{end}/{size}");
            if let Ok(value) = HeaderValue::try_from(value) {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            (StatusCode::PARTIAL_CONTENT, start, end + 1)
        }
        Range::Unsatisfiable => {
            if let Ok(value) = HeaderValue::try_from(format!("bytes */{size}")) {
                response_headers.insert(header::CONTENT_RANGE, value);
            }
            response_headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            response_headers.remove(header::CONTENT_DISPOSITION);
            let message = format!("The range asked for is outside the file, which is {size} bytes long.");
            return (StatusCode::RANGE_NOT_SATISFIABLE, response_headers, message).into_response();
        }
    };
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    (status, response_headers, Body::from_stream(chunks(db, served.hash, start, end))).into_response()
}

/// Bytes `start..end` of stored content, one chunk read at a time.
fn chunks(
    db: DatabaseConnection,
    hash: String,
    start: u64,
    end: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let chunk = CHUNK_SIZE as u64;
    futures_util::stream::unfold(Some(start), move |at| {
        let db = db.clone();
        let hash = hash.clone();
        async move {
            let at = at?;
            if at >= end {
                return None;
            }
            let seq = i32::try_from(at / chunk).ok()?;
            let data = match file::read_chunk(&db, &hash, seq).await {
                Ok(Some(data)) => Bytes::from(data),
                Ok(None) => {
                    tracing::error!(file.hash = %hash, chunk = seq, "a stored file lacks a chunk");
                    return Some((Err(std::io::Error::other("a chunk is missing")), None));
                }
                Err(err) => {
                    tracing::error!(error = %err, "a file could not be read");
                    return Some((Err(std::io::Error::other(err)), None));
                }
            };
            let from = usize::try_from(at % chunk).unwrap_or(0).min(data.len());
            let until =
                usize::try_from((end - u64::from(seq as u32) * chunk).min(data.len() as u64)).unwrap_or(0);
            if until <= from {
                return Some((Err(std::io::Error::other("a chunk is shorter than its file says")), None));
            }
            let next = u64::from(seq as u32) * chunk + until as u64;
            Some((Ok(data.slice(from..until)), Some(next)))
        }
    })
}

/// Reads stored content whole (an inline image, at most [`files::INLINE_MAX_BYTES`]).
async fn read_whole(db: &DatabaseConnection, hash: &str, size: u64) -> Result<Vec<u8>, AppError> {
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut seq = 0;
    while let Some(data) = file::read_chunk(db, hash, seq).await? {
        bytes.extend_from_slice(&data);
        seq += 1;
    }
    Ok(bytes)
}

async fn preview(
    state: &AppState,
    headers: &HeaderMap,
    version: &file::version::Model,
    width: u32,
    name: &str,
) -> Result<Response, AppError> {
    if version.inline_image != 1 {
        return Err(AppError::Unprocessable(if files::is_image_type(&version.content_type) {
            "This image has no preview: it is larger than 8192×8192 pixels, does not decode, or carries script.".into()
        } else {
            files::PreviewError::NotAnImage.to_string()
        }));
    }
    let width_key = i32::try_from(width).unwrap_or(0);
    let made = match file::find_preview(&state.db.read, &version.blob_hash, width_key).await? {
        Some(found) => found,
        None => {
            let source =
                read_whole(&state.db.read, &version.blob_hash, u64::try_from(version.size).unwrap_or(0))
                    .await?;
            let _permit = state.images.acquire().await.map_err(anyhow::Error::from)?;
            let kind = version.content_type.clone();
            let (bytes, content_type) =
                tokio::task::spawn_blocking(move || files::make_preview(&kind, &source, width))
                    .await
                    .map_err(|err| anyhow::anyhow!("the preview failed: {err}"))?
                    .map_err(|why| AppError::Unprocessable(why.to_string()))?;
            let (hash, size) =
                file::keep_preview(&state.db.write, &version.blob_hash, width_key, &bytes, content_type)
                    .await?;
            // Another instance may have kept its own first: serve the one kept.
            file::find_preview(&state.db.read, &version.blob_hash, width_key).await?.unwrap_or((
                hash,
                size,
                content_type.to_owned(),
            ))
        }
    };
    let (hash, size, content_type) = made;
    Ok(serve(
        state.db.read.clone(),
        headers,
        Served {
            hash,
            size: u64::try_from(size).unwrap_or(0),
            content_type,
            inline: true,
            name: name.to_owned(),
        },
    ))
}

/// POST /wiki/TITLE/attachments/NAME/delete — hides the file and its versions (editors).
#[tracing::instrument(skip_all)]
async fn delete(
    Editor(editor): Editor,
    shell: Shell,
    State(state): State<AppState>,
    path: FilePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path((title, name)) = path?;
    let found = page::find_with_author(&state.db.read, &title).await?.ok_or(AppError::NotFound)?.page;
    let attachment = file::find(&state.db.read, found.id, &name)
        .await?
        .filter(|a| a.attachment.deleted_at.is_none())
        .ok_or(AppError::NotFoundWith("No file of this name is attached to this page."))?;
    file::set_deleted(&state.db.write, &attachment.attachment, true, &editor.actor(), &found.title).await?;
    tracing::info!(page.id = found.id, user.id = editor.id, "file deleted");
    let restore = format!("{}/restore", file_path(&found.title, &name));
    if editor.is_admin() {
        shell.flash_with_undo(Kind::Info, &format!("“{name}” deleted."), restore);
    } else {
        shell.flash(Kind::Info, &format!("“{name}” deleted. An admin can restore it."));
    }
    Ok(Redirect::to(&list_path(&found.title)).into_response())
}

/// POST /wiki/TITLE/attachments/NAME/restore — shows a deleted file again (admins).
#[tracing::instrument(skip_all)]
async fn restore(
    PageAdmin(admin): PageAdmin,
    shell: Shell,
    State(state): State<AppState>,
    path: FilePath,
    CsrfForm(_): CsrfForm<TokenForm>,
) -> Result<Response, AppError> {
    let Path((title, name)) = path?;
    let found = page::find_with_author(&state.db.read, &title).await?.ok_or(AppError::NotFound)?.page;
    let attachment = file::find(&state.db.read, found.id, &name)
        .await?
        .filter(|a| a.attachment.deleted_at.is_some())
        .ok_or(AppError::NotFoundWith("No deleted file of this name is attached to this page."))?;
    file::set_deleted(&state.db.write, &attachment.attachment, false, &admin.actor(), &found.title).await?;
    shell.flash(Kind::Success, &format!("“{name}” restored."));
    Ok(Redirect::to(&list_path(&found.title)).into_response())
}

/// A page's HTML with its attachment links resolved: each to its file, or marked missing when
/// no live file of that page and name exists (`render::resolve_attachments`).
pub async fn resolve_links(db: &DatabaseConnection, html: &str, title: &str) -> Result<String, AppError> {
    let refs = crate::render::attachment_refs(html, title);
    if refs.is_empty() {
        return Ok(html.to_owned());
    }
    let live = file::live_among(db, &refs).await?;
    let facts = |wanted: &crate::render::FileRef| {
        live.iter().find(|(page, name, _)| *page == wanted.0 && *name == wanted.1).map(|(_, _, version)| {
            crate::render::FileFacts {
                image_width: (version.inline_image == 1)
                    .then(|| version.width.and_then(|w| u32::try_from(w).ok()))
                    .flatten(),
            }
        })
    };
    Ok(crate::render::resolve_attachments(html, title, &facts))
}

/// True when the client asked for JSON (the editor's script): it gets the stored name and the
/// Markdown to insert instead of the redirect.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("application/json"))
}

/// The Markdown that shows (an image) or links (anything else) a file of this page.
pub fn attachment_markdown(name: &str, image: bool) -> String {
    let label: String = name
        .rsplit_once('.')
        .map_or(name, |(stem, _)| if stem.is_empty() { name } else { stem })
        .chars()
        .filter(|c| !matches!(c, '[' | ']' | '\\'))
        .collect();
    let target = urls::segment(name);
    if image { format!("![{label}](attachment:{target})") } else { format!("[{label}](attachment:{target})") }
}

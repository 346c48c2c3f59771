//! Forms that prove they came from this site: [`CsrfForm`] and [`CsrfMultipart`] verify the
//! CSRF token before the handler runs (403 otherwise), so a handler that changes anything takes
//! one of them and cannot forget the check. [`Csrf`] gives the token the forms on a page carry.
//!
//! A member's tokens are bound to a nonce in their server-side session; a visitor's (login and
//! register forms) to a random value in an HttpOnly cookie — the signed double-submit pattern,
//! so visitors create no server-side state.

use std::sync::OnceLock;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tower_cookies::cookie::SameSite;
use tower_cookies::{Cookie, Cookies};

use super::csrf::{CsrfKey, random_value};
use super::session::Viewer;
use crate::app::AppState;
use crate::error::AppError;
use crate::extract::{TokenForm, decode_form, form_body};

/// Issues and checks this browser's CSRF tokens.
pub struct Csrf {
    key: CsrfKey,
    cookies: Cookies,
    secure: bool,
    member_nonce: Option<String>,
    is_member: bool,
    visitor_value: OnceLock<String>,
}

impl Csrf {
    /// The cookie a visitor's form tokens are bound to (`__Host-` prefixed behind https).
    fn cookie_name(&self) -> std::borrow::Cow<'static, str> {
        crate::cookies::cookie_name(crate::cookies::VISITOR, self.secure)
    }

    fn cookie(&self, value: String) -> Cookie<'static> {
        Cookie::build((self.cookie_name(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .build()
    }

    /// The value this browser's tokens are bound to, created for a visitor on first use.
    fn binding(&self, create: bool) -> Option<String> {
        if self.is_member {
            return self.member_nonce.as_ref().map(|nonce| format!("member:{nonce}"));
        }
        let value = match self.visitor_value.get() {
            Some(value) => value.clone(),
            None => match self.cookies.get(&self.cookie_name()) {
                Some(cookie) if cookie.value().len() == 64 => cookie.value().to_owned(),
                _ if create => {
                    let value = random_value();
                    self.cookies.add(self.cookie(value.clone()));
                    value
                }
                _ => return None,
            },
        };
        let value = self.visitor_value.get_or_init(|| value).clone();
        Some(format!("visitor:{value}"))
    }

    /// The token the forms on this response carry.
    pub fn token(&self) -> String {
        self.binding(true).map(|binding| self.key.token(&binding)).unwrap_or_default()
    }

    /// Refuses a token that is missing, forged or made for another browser.
    pub fn verify(&self, token: &str) -> Result<(), AppError> {
        match self.binding(false) {
            Some(binding) if self.key.verify(&binding, token) => Ok(()),
            _ => {
                tracing::warn!("refused a request with a bad CSRF token");
                Err(AppError::Csrf)
            }
        }
    }
}

impl FromRequestParts<AppState> for Csrf {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let cookies = parts
            .extensions
            .get::<Cookies>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("the cookie layer is missing"))?;
        Ok(Self {
            key: state.csrf.clone(),
            cookies,
            secure: state.settings.secure_cookies,
            is_member: viewer.is_member(),
            member_nonce: viewer.nonce,
            visitor_value: OnceLock::new(),
        })
    }
}

/// A URL-encoded form whose `csrf_token` field was verified before the handler runs. `T` need
/// not carry the token itself.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let csrf = Csrf::from_request_parts(&mut parts, state).await?;
        let body = form_body(Request::from_parts(parts, body), state).await?;
        let token: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        csrf.verify(&token.csrf_token)?;
        decode_form(&body).map(Self)
    }
}

/// One file of a multipart form.
pub struct FilePart {
    pub field: String,
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// A multipart form (uploads), read whole — its size is bounded by the route's body limit — and
/// verified like [`CsrfForm`] before the handler runs.
pub struct CsrfMultipart {
    pub fields: Vec<(String, String)>,
    pub files: Vec<FilePart>,
}

/// Longest text field of a multipart form that is kept.
const TEXT_FIELD_MAX: usize = 64 * 1024;

impl CsrfMultipart {
    /// The first text field of this name.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(field, _)| field == name).map(|(_, value)| value.as_str())
    }

    /// The first file sent in the field of this name.
    pub fn file(&self, name: &str) -> Option<&FilePart> {
        self.files.iter().find(|file| file.field == name)
    }

    pub fn take_file(&mut self, name: &str) -> Option<FilePart> {
        let index = self.files.iter().position(|file| file.field == name)?;
        Some(self.files.swap_remove(index))
    }
}

impl FromRequest<AppState> for CsrfMultipart {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let csrf = Csrf::from_request_parts(&mut parts, state).await?;
        let mut multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| AppError::BadRequest("The upload must be sent as multipart/form-data.".into()))?;
        let mut form = Self { fields: Vec::new(), files: Vec::new() };
        while let Some(mut field) = multipart.next_field().await? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await? {
                        bytes.extend_from_slice(&chunk);
                    }
                    form.files.push(FilePart { field: name, file_name, bytes });
                }
                None => {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = field.chunk().await? {
                        if bytes.len() < TEXT_FIELD_MAX {
                            bytes.extend_from_slice(&chunk);
                        }
                    }
                    bytes.truncate(TEXT_FIELD_MAX);
                    let text = String::from_utf8(bytes)
                        .map_err(|_| AppError::BadRequest("A form field is not valid UTF-8.".into()))?;
                    form.fields.push((name, text));
                }
            }
        }
        csrf.verify(form.field("csrf_token").unwrap_or_default())?;
        Ok(form)
    }
}

/// A file upload streamed from a multipart form (`routes::files`): the `csrf_token` field is
/// checked before the file's content is kept — as soon as the token is read when it comes first
/// (as browsers send Quire's forms), else before the upload's transaction commits — so that
/// the only way to the stored content is through a verified token.
pub struct CsrfUpload {
    csrf: Csrf,
    multipart: Multipart,
}

/// A file received by [`CsrfUpload::receive`]: written inside a transaction not yet committed.
pub struct Received {
    /// The name the browser gave the file, as sent.
    pub file_name: String,
    pub txn: sea_orm::DatabaseTransaction,
    pub written: crate::models::file::Written,
}

/// How many fields an upload form may have (the token, the file, a few the client adds).
const UPLOAD_FIELDS_MAX: usize = 16;

impl FromRequest<AppState> for CsrfUpload {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let csrf = Csrf::from_request_parts(&mut parts, state).await?;
        // A body announced as larger than the largest file and its form is refused unread.
        let max = state.settings.max_upload;
        let announced = parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if announced.is_some_and(|length| length > max.saturating_add(UPLOAD_FORM_SLACK)) {
            return Err(too_large(max));
        }
        let is_multipart = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("multipart/form-data"));
        if !is_multipart {
            // Another kind of form is refused too, and a forged one as forged.
            // Read within the form limit: this route has no body limit of its own.
            let body = axum::body::to_bytes(body, crate::app::FORM_BODY_LIMIT).await.unwrap_or_default();
            let token: TokenForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
            csrf.verify(&token.csrf_token)?;
            return Err(AppError::BadRequest("The upload must be sent as multipart/form-data.".into()));
        }
        let multipart = Multipart::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| AppError::BadRequest("The upload must be sent as multipart/form-data.".into()))?;
        Ok(Self { csrf, multipart })
    }
}

/// What a multipart body may carry around its file (boundaries, headers, the token).
const UPLOAD_FORM_SLACK: u64 = 64 * 1024;

/// The 413 of a file over `--max-upload`.
pub fn too_large(max: u64) -> AppError {
    AppError::UploadTooLarge(format!(
        "The file is too large: files may be at most {} ({max} bytes). Nothing was stored.",
        crate::files::human_size(max)
    ))
}

impl CsrfUpload {
    /// Streams the file of field `field` into the database (at most `--max-upload` bytes) and
    /// verifies the token. `None` when the form carried no such file. An error of any kind
    /// (a refused token, a file too large, a body cut short) drops the transaction: nothing of
    /// the upload is stored.
    pub async fn receive(mut self, state: &AppState, field: &str) -> Result<Option<Received>, AppError> {
        let max = state.settings.max_upload;
        let mut token: Option<String> = None;
        let mut verified = false;
        let mut received: Option<Received> = None;
        let mut fields = 0usize;
        while let Some(mut part) = self.multipart.next_field().await? {
            fields += 1;
            if fields > UPLOAD_FIELDS_MAX {
                return Err(AppError::BadRequest("The upload form has too many fields.".into()));
            }
            let name = part.name().unwrap_or_default().to_owned();
            match part.file_name().map(str::to_owned) {
                Some(file_name) if name == field && received.is_none() => {
                    if let Some(token) = &token {
                        self.csrf.verify(token)?;
                        verified = true;
                    }
                    let mut writer = crate::models::file::BlobWriter::begin(
                        &state.db.write,
                        crate::files::INLINE_MAX_BYTES,
                    )
                    .await?;
                    while let Some(bytes) = part.chunk().await? {
                        if writer.size() + bytes.len() as u64 > max {
                            return Err(too_large(max));
                        }
                        writer.write(&bytes).await?;
                    }
                    let (txn, written) = writer.finish().await?;
                    received = Some(Received { file_name, txn, written });
                }
                Some(_) => {
                    // Another file: read and dropped.
                    while part.chunk().await?.is_some() {}
                }
                None => {
                    let mut bytes = Vec::new();
                    while let Some(chunk) = part.chunk().await? {
                        if bytes.len() < TEXT_FIELD_MAX {
                            bytes.extend_from_slice(&chunk);
                        }
                    }
                    bytes.truncate(TEXT_FIELD_MAX);
                    if name == "csrf_token" && token.is_none() {
                        token = Some(String::from_utf8(bytes).unwrap_or_default());
                    }
                }
            }
        }
        if !verified {
            self.csrf.verify(token.as_deref().unwrap_or_default())?;
        }
        Ok(received)
    }
}

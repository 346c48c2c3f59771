//! Static assets, embedded in the binary and served under content-hashed names so browsers may
//! cache them forever.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

pub(crate) const STYLESHEET: &str = include_str!("../static/style.css");
const SCRIPT: &str = include_str!("../static/app.js");
const FAVICON: &str = include_str!("../static/favicon.svg");

fn hashed(name: &str, ext: &str, body: &str) -> String {
    let digest = hex::encode(Sha256::digest(body.as_bytes()));
    format!("/static/{name}.{}.{ext}", &digest[..12])
}

pub static STYLESHEET_PATH: LazyLock<String> = LazyLock::new(|| hashed("style", "css", STYLESHEET));
pub static SCRIPT_PATH: LazyLock<String> = LazyLock::new(|| hashed("app", "js", SCRIPT));
pub static FAVICON_PATH: LazyLock<String> = LazyLock::new(|| hashed("favicon", "svg", FAVICON));

/// GET /favicon.ico — what browsers ask for when a page names no icon.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
        ],
        FAVICON,
    )
        .into_response()
}

/// GET /static/NAME — only the current hashed names exist.
pub async fn serve(Path(name): Path<String>) -> Result<Response, AppError> {
    let path = format!("/static/{name}");
    let (body, content_type) = if path == *STYLESHEET_PATH {
        (STYLESHEET, "text/css; charset=utf-8")
    } else if path == *SCRIPT_PATH {
        (SCRIPT, "text/javascript; charset=utf-8")
    } else if path == *FAVICON_PATH {
        (FAVICON, "image/svg+xml")
    } else {
        return Err(AppError::NotFound);
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        body,
    )
        .into_response())
}

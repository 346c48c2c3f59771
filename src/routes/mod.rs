//! HTTP routes, one module per seed blueprint.

use axum::Router;
use axum::routing::MethodRouter;

use crate::app::AppState;

pub mod admin;
pub mod auth;
pub mod browse;
pub mod edit;
pub mod errors;
pub mod files;
pub mod history;
pub mod main;
pub mod profile;
pub mod recovery;
pub mod security;
pub mod sso;
pub mod wiki;

/// The routes of a module, remembering which paths accept POST — so that a test can send each
/// of them a request without a CSRF token and see it refused.
#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    posts: Vec<&'static str>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// A route that only reads (GET, and HEAD with it).
    pub fn get(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, methods);
        self
    }

    /// A route that accepts POST (and possibly GET): every such route goes through here.
    pub fn post(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, methods);
        self.posts.push(path);
        self
    }

    fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.posts.extend(other.posts);
        self
    }
}

/// An export (see `export.rs`) as a zip download, streamed from a temporary file.
async fn export_download(
    state: &AppState,
    reader: crate::export::Reader,
) -> Result<axum::response::Response, crate::error::AppError> {
    use axum::http::header::{
        CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
    };
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    let (file, size) = crate::export::to_temporary_file(&state.db, reader, &state.settings.data_dir).await?;
    // The file, 64 KiB at a time; after its end or an error, nothing more.
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0u8; 64 * 1024];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buffer)), Some(file)))
            }
            Err(err) => Some((Err(err), None)),
        }
    })
    .fuse();
    Ok((
        [
            (CONTENT_TYPE, "application/zip".to_owned()),
            (CONTENT_DISPOSITION, "attachment; filename=\"quire-export.zip\"".to_owned()),
            (CONTENT_LENGTH, size.to_string()),
            // Private, and not to be held whole in memory by the tagging middleware.
            (CACHE_CONTROL, "no-store".to_owned()),
            // Compressed already: the compression layer leaves it as it is.
            (CONTENT_ENCODING, "identity".to_owned()),
        ],
        axum::body::Body::from_stream(chunks),
    )
        .into_response())
}

fn all() -> Routes {
    Routes::new()
        .merge(main::router())
        .merge(auth::router())
        .merge(wiki::router())
        .merge(edit::router())
        .merge(files::router())
        .merge(history::router())
        .merge(browse::router())
        .merge(profile::router())
        .merge(security::router())
        .merge(sso::router())
        .merge(recovery::router())
        .merge(admin::router())
}

/// Every route of the wiki.
pub fn router() -> Router<AppState> {
    all().router.fallback(errors::not_found)
}

/// Every path that accepts POST, as registered (`/wiki/{title}/delete`).
pub fn post_routes() -> Vec<&'static str> {
    all().posts
}

/// Renders a template into an HTML response with the given status.
pub fn render(
    status: axum::http::StatusCode,
    page: impl askama::Template,
) -> Result<axum::response::Response, crate::error::AppError> {
    use axum::response::IntoResponse;
    Ok((status, axum::response::Html(page.render()?)).into_response())
}

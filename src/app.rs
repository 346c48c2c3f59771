//! The application: shared state, the router with its layers, start-up and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, DatabaseBackend, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use sha2::{Digest, Sha256, Sha512};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{DeadlineBody, TimeoutError};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::csrf::CsrfKey;
use crate::auth::password::Hasher;
use crate::config::Settings;
use crate::cookies::{self, cookie_name};
use crate::db::Db;
use crate::migrations::Migrator;
use crate::models::session::{self, DbSessionStore};

/// Forms (register, login, create, …) may carry at most this much on the wire: 1 MiB of page
/// text in any script, percent-encoded (up to three bytes per byte: CJK and emoji arrive as
/// `%E4%B8%AD`…), plus the other fields. The content limit itself (1 MiB, 422) is checked on
/// the decoded text.
pub const FORM_BODY_LIMIT: usize = 3 * crate::domain::CONTENT_MAX_BYTES + 64 * 1024;
/// Sessions end after this long without a request.
pub const SESSION_LIFETIME: time::Duration = time::Duration::hours(1);
/// How often expired sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(10 * 60);

/// The Content-Security-Policy of every response: no inline script, nothing framed, and images
/// from this site only, unless the operator allowed other hosts (`--image-hosts`): a page must not
/// embed a third party's tracking pixel by default. With single sign-on, forms may also lead to
/// the provider's origin (linking an account is a form whose answer redirects there, and
/// browsers apply `form-action` to redirects).
pub fn content_security_policy(image_sources: &[String], sign_in_origin: Option<&str>) -> String {
    let mut img_src = String::from("'self'");
    for source in image_sources {
        img_src.push(' ');
        img_src.push_str(source);
    }
    let mut form_action = String::from("'self'");
    if let Some(origin) = sign_in_origin {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img_src}; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
    )
}

/// What every handler can reach. One `Arc`, so cheap to clone: each layer with a state clones it
/// on every request (`BENCHMARKS.md`: as a struct of many `Arc`s its clone and drop took a
/// quarter of a kept page view's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub hasher: Hasher,
    pub csrf: CsrfKey,
    pub cookie_key: tower_cookies::Key,
    /// Bounds image decoding the way `hasher` bounds password hashing.
    pub images: Arc<Semaphore>,
    /// Rendering, diffing and merging: off the async workers, one job per core.
    pub work: crate::work::Work,
    /// What `/metrics` shows.
    pub metrics: crate::metrics::Metrics,
    /// Page views kept between requests, never stale (see `cache.rs`).
    pub cache: crate::cache::Cache,
    /// The SMTP relay, when `--smtp-url` set one.
    pub mailer: Option<crate::mail::Mailer>,
    /// The OpenID provider, when `--oidc-issuer` set one.
    pub oidc: Option<crate::auth::oidc::Oidc>,
    /// The LDAP directory, when `--ldap-url` set one.
    pub directory: Option<crate::auth::ldap::Directory>,
}

impl AppState {
    pub fn new(settings: Settings, db: Db) -> anyhow::Result<Self> {
        let secret = settings.secret.expose();
        let mut cookie_material = Sha512::new();
        cookie_material.update(b"quire cookie key v1");
        cookie_material.update(secret);
        let metrics = crate::metrics::Metrics::new();
        let (hits, misses) = metrics.cache_counters();
        let oidc = match (&settings.oidc, &settings.public_url) {
            (Some(oidc), Some(public_url)) => Some(crate::auth::oidc::Oidc::new(oidc.clone(), public_url)?),
            _ => None,
        };
        let directory = settings.ldap.clone().map(crate::auth::ldap::Directory::new).transpose()?;
        let mailer = match (&settings.mail, &settings.public_url) {
            (Some(mail), Some(public_url)) => Some(crate::mail::Mailer::new(mail, public_url)?),
            _ => None,
        };
        Ok(Self(Arc::new(Shared {
            mailer,
            oidc,
            directory,
            cache: crate::cache::Cache::new(settings.cache_bytes, hits, misses),
            hasher: Hasher::new(settings.hash_concurrency, settings.limits.hash_queue),
            csrf: CsrfKey::derive(secret),
            cookie_key: tower_cookies::Key::from(&cookie_material.finalize()),
            images: Arc::new(Semaphore::new(settings.hash_concurrency)),
            work: crate::work::Work::new(settings.hash_concurrency, crate::work::WAIT)
                .with_metrics(metrics.clone()),
            metrics,
            db,
            settings: Arc::new(settings),
        })))
    }
}

/// Applies pending migrations, holding a database-wide lock so that several instances
/// starting at once do not collide.
pub async fn migrate(db: &Db) -> anyhow::Result<()> {
    let conn = &db.write;
    let txn = conn.begin().await.context("cannot start the migration transaction")?;
    match conn.get_database_backend() {
        DatabaseBackend::Postgres => {
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(7152431)").await?;
        }
        DatabaseBackend::MySql => {
            txn.execute_unprepared("SELECT GET_LOCK('quire_migrate', 60)").await?;
        }
        _ => {}
    }
    Migrator::up(&txn, None).await.context("migrations failed")?;
    if conn.get_database_backend() == DatabaseBackend::MySql {
        txn.execute_unprepared("SELECT RELEASE_LOCK('quire_migrate')").await?;
    }
    txn.commit().await.context("cannot commit the migrations")?;
    Ok(())
}

/// The Content-Security-Policy every page carries unless its handler set a stricter one.
fn csp_header(state: &AppState) -> HeaderValue {
    HeaderValue::try_from(content_security_policy(
        &state.settings.image_sources,
        state.oidc.as_ref().map(|oidc| oidc.origin()).as_deref(),
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
}

/// The headers every answer carries: (name, value, whether it replaces a handler's own). A
/// handler may set a policy of its own for the CSP and the opener policy, never for the rest.
fn security_headers(csp: HeaderValue) -> [(HeaderName, HeaderValue, bool); 5] {
    [
        (header::CONTENT_SECURITY_POLICY, csp, false),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"), true),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin"), true),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"), true),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
            false,
        ),
    ]
}

/// What answers every request on the main port: a visitor's view of a kept page straight from
/// the cache ([`crate::cache::KeptViews`]: no routing, no layer, no clone of the layer stack),
/// anything else through the router and every layer. Cheap to clone.
///
/// A request whose body the handler left unread (a refusal: too large, a bad token, a visitor
/// kept out) has the rest of it read and dropped before the answer goes — at most
/// [`DRAIN_MAX`], within the body timeout — so that a client still sending reads the answer
/// instead of a connection reset by unread data; past those bounds the answer closes the
/// connection.
#[derive(Clone)]
pub struct Front {
    kept: crate::cache::KeptViews,
    router: Router,
    body_timeout: Duration,
}

/// The most of an unread request body that is read and dropped after its answer is made.
pub const DRAIN_MAX: u64 = 16 * 1024 * 1024;

impl Front {
    pub fn new(state: AppState) -> Self {
        let headers =
            security_headers(csp_header(&state)).into_iter().map(|(name, value, _)| (name, value)).collect();
        let kept = crate::cache::KeptViews::new(
            state.cache.clone(),
            state.settings.secure_cookies,
            headers,
            &state.metrics,
        );
        let body_timeout = state.settings.connections.body_timeout;
        Self { kept, router: router(state), body_timeout }
    }

    pub async fn answer(&self, request: Request) -> Response {
        if let Some(view) = self.kept.lookup(&request) {
            return self.kept.answer(view).await;
        }
        if request.body().is_end_stream() {
            return self.route(request).await;
        }
        let (parts, body) = request.into_parts();
        let unread = Arc::new(std::sync::Mutex::new(body));
        let mut response = self.route(Request::from_parts(parts, Body::new(Unread(unread.clone())))).await;
        let rest = std::mem::take(&mut *unread.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let closing = response.headers().get(header::CONNECTION).is_some_and(|v| v == "close");
        if !closing && !rest.is_end_stream() && !drained(rest, self.body_timeout).await {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    async fn route(&self, request: Request) -> Response {
        match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Whether what was left of a request body was read to its end, within [`DRAIN_MAX`] and `timeout`.
async fn drained(mut rest: Body, timeout: Duration) -> bool {
    if rest.size_hint().lower() > DRAIN_MAX {
        return false;
    }
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = rest.frame().await {
            let Ok(frame) = frame else { return false };
            seen += frame.data_ref().map_or(0, |data| data.len() as u64);
            if seen > DRAIN_MAX {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(false)
}

/// A request body as the router reads it: through the [`Front`], which keeps what is left.
struct Unread(Arc<std::sync::Mutex<Body>>);

impl Unread {
    fn body(&self) -> std::sync::MutexGuard<'_, Body> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl HttpBody for Unread {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut *self.body()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body().is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body().size_hint()
    }
}

/// The router with every layer, for a given state.
pub fn router(state: AppState) -> Router {
    let store = DbSessionStore::new(&state.db);
    let secure = state.settings.secure_cookies;
    let session_cookie = cookie_name(cookies::SESSION, secure);
    let csp = csp_header(&state);
    let sessions = SessionManagerLayer::new(store)
        .with_name(session_cookie.clone())
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.settings.secure_cookies)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME));

    let mut router = crate::routes::router()
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.settings.connections.body_timeout, body_deadline))
        // Inside the viewer's gate: a request it refused changed nothing.
        .layer(middleware::from_fn_with_state(
            (state.cache.clone(), state.db.write.clone()),
            crate::cache::track_changes,
        ))
        // Who is asking, once per request (and visitors kept out of a members-only wiki).
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::session::resolve))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(Arc::<str>::from(session_cookie), no_store_for_members))
        // Outside `no_store_for_members`, which it must see; inside compression, so the tag
        // is the identity body's (weak, so every encoding of it shares it).
        .layer(middleware::from_fn(entity_tags))
        .layer(CompressionLayer::new())
        .layer(middleware::map_response(encode_location));
    for (name, value, overriding) in security_headers(csp) {
        router = router.layer(if overriding {
            SetResponseHeaderLayer::overriding(name, value)
        } else {
            SetResponseHeaderLayer::if_not_present(name, value)
        });
    }
    router
        .layer(CatchPanicLayer::custom(|_| {
            crate::error::error_page(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Server Error",
                "Something went wrong on our end. Please try again later.",
            )
        }))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::record))
        // Outermost: who the client is, for every layer and handler inside.
        .layer(middleware::from_fn_with_state(state.settings.clone(), client_address))
        .with_state(state)
}

/// Resolves the client's address and scheme once ([`crate::proxy::client_of`]): from a trusted
/// proxy its headers name them, from anyone else the connection does. A client that reached a
/// trusted proxy over https gets its cookies marked `Secure` even without an https public URL.
async fn client_address(State(settings): State<Arc<Settings>>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let client = crate::proxy::client_of(peer, request.headers(), &settings.trusted_proxies);
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https && !settings.secure_cookies {
        crate::proxy::mark_cookies_secure(response.headers_mut());
    }
    response
}

/// A request body must arrive whole within `timeout` of its head; past it the request is
/// answered 408 and the connection closed, whatever the handler made of the cut body.
async fn body_deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let expired = Arc::new(AtomicBool::new(false));
    let seen = expired.clone();
    let request = request.map(|body| {
        Body::new(DeadlineBody::new(timeout, body).map_err(move |err| {
            if err.is::<TimeoutError>() {
                seen.store(true, Ordering::Relaxed);
            }
            err
        }))
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Relaxed) {
        return response;
    }
    tracing::info!(timeout_s = timeout.as_secs_f64(), "request body too slow: 408");
    let mut response = crate::error::error_page(
        StatusCode::REQUEST_TIMEOUT,
        "Request Timeout",
        "The request took too long to arrive. Please try again.",
    );
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `Cache-Control: no-store` on what is shown to a member (a request carrying a session cookie)
/// or sets a cookie, unless the handler chose its own caching (hashed static files, avatars): no
/// shared cache or back button keeps a member's page or token.
async fn no_store_for_members(
    State(session_cookie): State<Arc<str>>,
    request: Request,
    next: Next,
) -> Response {
    let member = carries_cookie(request.headers(), &session_cookie);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if (member || headers.contains_key(header::SET_COOKIE)) && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The weak entity tag of a body: its SHA-256, so it changes exactly when the bytes do.
pub fn entity_tag(body: &[u8]) -> Option<HeaderValue> {
    let digest = Sha256::digest(body);
    HeaderValue::try_from(format!("W/\"{}\"", hex::encode(&digest[..16]))).ok()
}

/// True when an `If-None-Match` list names `tag` (weakly, as GET and HEAD compare).
pub(crate) fn none_match(asked: Option<&HeaderValue>, tag: &HeaderValue) -> bool {
    let (Some(asked), Ok(tag)) = (asked.and_then(|v| v.to_str().ok()), tag.to_str()) else {
        return false;
    };
    let tag = tag.trim_start_matches("W/");
    asked.split(',').map(str::trim).any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

/// `ETag` on what anyone may keep (a 200 to GET or HEAD that sets no cookie and is not
/// `no-store`, nor already cached its own way): a weak tag of the body's SHA-256 ([`entity_tag`]),
/// so it changes exactly when the bytes do — never stale, whatever changed the page (an edit, a
/// page that now exists, a setting). A handler that knows its body's tag already (a kept page)
/// sets it, and no hashing is done. `If-None-Match` with that tag gets 304 and no body.
async fn entity_tags(request: Request, next: Next) -> Response {
    let conditional = matches!(*request.method(), Method::GET | Method::HEAD);
    let asked = request.headers().get(header::IF_NONE_MATCH).cloned();
    let response = next.run(request).await;
    let headers = response.headers();
    if !conditional
        || response.status() != StatusCode::OK
        || headers.contains_key(header::SET_COOKIE)
        || headers.contains_key(header::CACHE_CONTROL)
    {
        return response;
    }
    if let Some(tag) = headers.get(header::ETAG) {
        if !none_match(asked.as_ref(), tag) {
            return response;
        }
        return not_modified(response.into_parts().0);
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            tracing::error!(error = %err, "a response body failed");
            return crate::error::error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server Error",
                "Something went wrong on our end. Please try again later.",
            );
        }
    };
    let Some(tag) = entity_tag(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let matched = none_match(asked.as_ref(), &tag);
    parts.headers.insert(header::ETAG, tag);
    if matched {
        return not_modified(parts);
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn not_modified(mut parts: axum::http::response::Parts) -> Response {
    parts.status = StatusCode::NOT_MODIFIED;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    Response::from_parts(parts, Body::empty())
}

/// True when the request's `Cookie` headers name `name`.
/// The value of the first cookie called `name` in the request's `Cookie` headers.
pub(crate) fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim_start().split_once('=')?;
            (key.trim_end() == name).then(|| value.trim())
        })
}

pub(crate) fn carries_cookie(headers: &HeaderMap, name: &str) -> bool {
    cookie_value(headers, name).is_some()
}

/// Every `Location` goes out as a URI: spaces and non-ASCII characters (from titles, names or
/// a `next` path) percent-encoded, whichever handler built the redirect.
async fn encode_location(mut response: Response) -> Response {
    if let Some(location) = response.headers().get(header::LOCATION) {
        let encoded = crate::urls::location(location.as_bytes());
        if encoded.len() != location.len()
            && let Ok(value) = HeaderValue::try_from(encoded.as_ref())
        {
            response.headers_mut().insert(header::LOCATION, value);
        }
    }
    response
}

/// A running wiki: bound, migrated, ready to serve.
pub struct Application {
    listener: TcpListener,
    /// `/metrics` and `/healthz` on their own address (`--metrics-bind`).
    metrics_listener: Option<TcpListener>,
    /// The cache watcher's own connection.
    watch: sea_orm::DatabaseConnection,
    state: AppState,
    port: u16,
}

impl Application {
    /// Connects and migrates the database, then binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = Db::connect(&settings.database_url).await?;
        migrate(&db).await?;
        let watch = crate::db::connect_watcher(&settings.database_url).await?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let metrics_listener = match settings.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen for metrics on {addr}"))?,
            ),
            None => None,
        };
        Ok(Self { listener, metrics_listener, watch, state: AppState::new(settings, db)?, port })
    }

    /// The port of the dedicated metrics listener, when `--metrics-bind` set one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener.as_ref().and_then(|l| l.local_addr().ok()).map(|addr| addr.port())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let purge = tokio::spawn(purge_sessions(self.state.db.clone()));
        let watch = tokio::spawn(self.state.cache.clone().watch(self.watch));
        let backups = crate::backup::schedule::spawn(&self.state);
        let limits = self.state.settings.connections;
        let (stop_metrics, stopped) = tokio::sync::watch::channel(false);
        let metrics = self.metrics_listener.map(|listener| {
            let mut stopped = stopped.clone();
            let app = crate::metrics::own_router(self.state.clone());
            tracing::info!(address = ?listener.local_addr().ok(), "serving /metrics and /healthz");
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    })
                    .await
            })
        });
        let front = Front::new(self.state);
        tracing::info!(port = self.port, max_connections = limits.max_connections, "listening");
        let served = crate::server::serve(self.listener, front, limits, shutdown).await;
        purge.abort();
        watch.abort();
        if let Some(backups) = backups {
            backups.abort();
        }
        let _ = stop_metrics.send(true);
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        served.context("the server failed")
    }
}

async fn purge_sessions(db: Db) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match session::delete_expired(&db.write).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "purged expired sessions"),
            Err(err) => tracing::warn!(error = %err, "could not purge expired sessions"),
        }
        if let Err(err) = crate::models::email::purge(&db.write).await {
            tracing::warn!(error = %err, "could not purge old mail links");
        }
        if let Err(err) = crate::models::throttle::purge(&db.write).await {
            tracing::warn!(error = %err, "could not purge old rate-limit counters");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

//! What an operator watches: `/healthz` for load balancers and `/metrics` in the Prometheus
//! text format — requests by route template and status, latency histograms, the database pools,
//! the password-hash queue, the CPU work pool and rate-limit refusals.
//!
//! The figures live in the application's own registry (`prometheus-client`, not a global
//! recorder), so two apps in one process keep their own. `/metrics` answers on the main port to
//! loopback clients that came straight (no `X-Forwarded-For`/`Forwarded`: a request through a
//! reverse proxy on the same host is not the operator); `--metrics-bind ADDR:PORT` serves it on
//! a listener of its own instead, to whoever reaches that address.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::app::AppState;
use crate::extract::ClientIp;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    state: &'static str,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The registry and the metrics the request path updates. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    refusals: Family<RefusalLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
    hash_queue: Gauge,
    hash_lanes: Gauge,
    work_running: Gauge,
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bytes: Gauge,
    cache_entries: Gauge,
    cache_capacity: Gauge,
    backups: Family<ResultLabels, Counter>,
    backup_last_success: Gauge,
    backup_last_size: Gauge,
    backup_last_rows: Gauge,
    backup_last_duration: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("quire");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template and status",
            requests.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's head to its response, by route template",
            latency.clone(),
        );
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests refused by a limit (rate limits, a full password queue, busy CPU work)",
            refusals.clone(),
        );
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register("db_pool_connections", "Database pool connections, idle or in use", pool.clone());
        let hash_queue = Gauge::default();
        registry.register(
            "password_queue_length",
            "Password checks running or waiting for a hashing slot",
            hash_queue.clone(),
        );
        let hash_lanes = Gauge::default();
        registry.register("password_queue_capacity", "Places in the password queue", hash_lanes.clone());
        let work_running = Gauge::default();
        registry.register(
            "work_running",
            "CPU jobs (rendering, diffing, merging) running in the bounded pool",
            work_running.clone(),
        );
        let cache_hits = Counter::default();
        registry.register(
            "cache_hits",
            "Page-view cache lookups that found a fresh entry",
            cache_hits.clone(),
        );
        let cache_misses = Counter::default();
        registry.register(
            "cache_misses",
            "Page-view cache lookups that found nothing fresh (the database was read)",
            cache_misses.clone(),
        );
        let cache_bytes = Gauge::default();
        registry.register("cache_size_bytes", "Bytes held by the page-view cache", cache_bytes.clone());
        let cache_entries = Gauge::default();
        registry.register("cache_entries", "Entries in the page-view cache", cache_entries.clone());
        let cache_capacity = Gauge::default();
        registry.register(
            "cache_capacity_bytes",
            "The page-view cache's bound (--cache-size)",
            cache_capacity.clone(),
        );
        let backups = Family::<ResultLabels, Counter>::default();
        registry.register(
            "backups",
            "Scheduled backups this instance made, by result (success or failure)",
            backups.clone(),
        );
        for result in ["success", "failure"] {
            backups.get_or_create(&ResultLabels { result }).inc_by(0);
        }
        let backup_last_success = Gauge::default();
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When this instance's last scheduled backup was finished, in Unix seconds",
            backup_last_success.clone(),
        );
        let backup_last_size = Gauge::default();
        registry.register(
            "backup_last_size_bytes",
            "The size of this instance's last scheduled backup",
            backup_last_size.clone(),
        );
        let backup_last_rows = Gauge::default();
        registry.register(
            "backup_last_rows",
            "The rows in this instance's last scheduled backup",
            backup_last_rows.clone(),
        );
        let backup_last_duration = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "backup_last_duration_seconds",
            "How long this instance's last scheduled backup took",
            backup_last_duration.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                refusals,
                pool,
                hash_queue,
                hash_lanes,
                work_running,
                cache_hits,
                cache_misses,
                cache_bytes,
                cache_entries,
                cache_capacity,
                backups,
                backup_last_success,
                backup_last_size,
                backup_last_rows,
                backup_last_duration,
            }),
        }
    }

    /// The counters the page-view cache moves: (hits, misses).
    pub fn cache_counters(&self) -> (Counter, Counter) {
        (self.inner.cache_hits.clone(), self.inner.cache_misses.clone())
    }

    /// Counts a refusal by a limit; `reason` is a short fixed name (`login`, `hash_queue`, …).
    pub fn refused(&self, reason: &str) {
        self.inner.refusals.get_or_create(&RefusalLabels { reason: reason.to_owned() }).inc();
    }

    /// Counts a finished scheduled backup and shows its figures.
    pub fn backup_succeeded(&self, bytes: u64, rows: u64, took: Duration) {
        let inner = &self.inner;
        inner.backups.get_or_create(&ResultLabels { result: "success" }).inc();
        inner.backup_last_success.set(time::OffsetDateTime::now_utc().unix_timestamp());
        inner.backup_last_size.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        inner.backup_last_rows.set(i64::try_from(rows).unwrap_or(i64::MAX));
        inner.backup_last_duration.set(took.as_secs_f64());
    }

    /// Counts a scheduled backup that failed.
    pub fn backup_failed(&self) {
        self.inner.backups.get_or_create(&ResultLabels { result: "failure" }).inc();
    }

    /// The counters and the latency histogram of one route's answers of `statuses`, looked up
    /// once: for the answers made ahead of the router (kept visitor pages), where looking them
    /// up by label on every request would cost more than the answer.
    pub fn route(&self, method: &str, route: &str, statuses: &[StatusCode]) -> RouteMetrics {
        let labels = |status: StatusCode| RequestLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status: status.as_u16(),
        };
        RouteMetrics {
            requests: statuses
                .iter()
                .map(|&status| (status, self.inner.requests.get_or_create_owned(&labels(status))))
                .collect(),
            latency: self
                .inner
                .latency
                .get_or_create_owned(&RouteLabels { method: method.to_owned(), route: route.to_owned() }),
        }
    }

    fn observe(&self, method: &str, route: &str, status: StatusCode, took: Duration) {
        let (method, route) = (method.to_owned(), route.to_owned());
        self.inner
            .requests
            .get_or_create(&RequestLabels {
                method: method.clone(),
                route: route.clone(),
                status: status.as_u16(),
            })
            .inc();
        self.inner.latency.get_or_create(&RouteLabels { method, route }).observe(took.as_secs_f64());
    }

    /// The text exposition, with the gauges read now.
    fn render(&self, state: &AppState) -> Result<String, std::fmt::Error> {
        let inner = &self.inner;
        let pools: Vec<(&'static str, &DatabaseConnection)> = if state.db.backend() == DatabaseBackend::Sqlite
        {
            vec![("read", &state.db.read), ("write", &state.db.write)]
        } else {
            vec![("main", &state.db.read)]
        };
        for (name, conn) in pools {
            if let Some((size, idle)) = pool_use(conn) {
                inner.pool.get_or_create(&PoolLabels { pool: name, state: "idle" }).set(idle);
                inner.pool.get_or_create(&PoolLabels { pool: name, state: "in_use" }).set(size - idle);
            }
        }
        let (held, capacity) = state.hasher.usage();
        inner.hash_queue.set(i64::try_from(held).unwrap_or(i64::MAX));
        inner.hash_lanes.set(i64::try_from(capacity).unwrap_or(i64::MAX));
        inner.work_running.set(i64::try_from(state.work.running()).unwrap_or(i64::MAX));
        let (bytes, entries, capacity) = state.cache.usage();
        inner.cache_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        inner.cache_entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
        inner.cache_capacity.set(i64::try_from(capacity).unwrap_or(i64::MAX));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &inner.registry)?;
        Ok(out)
    }
}

/// (connections open, of them idle) of a pool.
fn pool_use(conn: &DatabaseConnection) -> Option<(i64, i64)> {
    let (size, idle) = match conn.get_database_backend() {
        DatabaseBackend::Sqlite => {
            let pool = conn.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Postgres => {
            let pool = conn.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::MySql => {
            let pool = conn.get_mysql_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => return None,
    };
    Some((i64::from(size), i64::try_from(idle).unwrap_or(i64::MAX)))
}

/// The middleware that counts and times every request by its route template (never the raw
/// path: titles would make one series per page).
pub async fn record(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics.observe(&method, &route, response.status(), started.elapsed());
    response
}

/// One route's request counters by status and its latency histogram ([`Metrics::route`]).
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    requests: Arc<[(StatusCode, Counter)]>,
    latency: Histogram,
}

impl RouteMetrics {
    /// Counts an answer of `status` (one of those the metrics were made for) that took `took`.
    pub fn observe(&self, status: StatusCode, took: Duration) {
        if let Some((_, counter)) = self.requests.iter().find(|(s, _)| *s == status) {
            counter.inc();
        }
        self.latency.observe(took.as_secs_f64());
    }
}

/// `GET /healthz`: 200 when the database answers within two seconds, 503 otherwise.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let probe = async {
        for conn in [&state.db.read, &state.db.write] {
            let backend = conn.get_database_backend();
            conn.query_one_raw(Statement::from_string(backend, "SELECT 1")).await?;
        }
        Ok::<_, sea_orm::DbErr>(())
    };
    let (status, body) = match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n")
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer within 2 s");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n")
        }
    };
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Whether a request on the main port may read the metrics: from loopback, straight, and only
/// while no dedicated metrics listener is configured.
fn may_read_on_main_port(state: &AppState, client: ClientIp, headers: &HeaderMap) -> bool {
    let proxied = headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
    state.settings.metrics_bind.is_none() && client.0.is_some_and(|ip| ip.is_loopback()) && !proxied
}

/// `GET /metrics` on the main port (see the module's note on who may read it).
pub async fn metrics_on_main_port(
    State(state): State<AppState>,
    client: ClientIp,
    headers: HeaderMap,
) -> Result<Response, crate::error::AppError> {
    if !may_read_on_main_port(&state, client, &headers) {
        return Err(crate::error::AppError::NotFound);
    }
    Ok(exposition(&state, &headers))
}

/// `GET /metrics` on the dedicated listener.
pub async fn metrics_on_own_port(State(state): State<AppState>, headers: HeaderMap) -> Response {
    exposition(&state, &headers)
}

fn exposition(state: &AppState, headers: &HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let content_type = if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    };
    match state.metrics.render(state) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            text,
        )
            .into_response(),
        Err(err) => crate::error::AppError::Unexpected(anyhow::anyhow!("metrics: {err}")).into_response(),
    }
}

/// The router of the dedicated metrics listener.
pub fn own_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics_on_own_port))
        .route("/healthz", axum::routing::get(healthz))
        .with_state(state)
}

//! Page views without the database: what one view read and rendered is kept for the next, and
//! any change — on this instance or on another over the same database — makes it unusable
//! before a reader could see it stale.
//!
//! Freshness rests on one number, the *epoch*, and two rules:
//! - This instance moves the epoch after every request that may have changed something (see
//!   [`track_changes`]), before its response leaves, and moves the database's change counter
//!   (`models::change`) so the other instances learn of it.
//! - A background task ([`Cache::watch`]) reads the change counter every [`POLL_EVERY`]; when it
//!   moved (another instance, a command such as `quire import-flask`) the epoch moves too.
//!
//! An entry carries the epoch read *before* the database was read for it, and is used only
//! while the epoch is still that one — so a view that raced a change is never kept past it — and
//! only while the last poll that succeeded began less than [`TRUST_FOR`] ago: a stalled poller
//! (an overloaded runtime, a database that stopped answering) turns the cache off rather than
//! letting another instance's change wait. A change on one instance is thus seen on every other
//! within `TRUST_FOR` of its response, and on its own instance at the very next request.
//!
//! What is kept is what every reader of a page is shown alike — the page's rendered HTML, its
//! author, what links to it — and, for visitors with no pending message, the whole page they get.
//! A member's navigation, CSRF token and session are never kept: their session is checked
//! against the database on every request, so ending it has no delay. Anything that decides who
//! may read (settings, roles) is a change like any other. A visitor page is only kept after the
//! members-only gate let a visitor through at that epoch, so [`KeptViews`] answers a visitor's
//! view of it ahead of the router and all its layers (with what they would have made of it: its
//! compressed forms made once, its tag, the security headers), counted in the metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use sea_orm::DatabaseConnection;

use crate::access::WikiSettings;
use crate::models::change;

/// How often the database's change counter is read.
pub const POLL_EVERY: Duration = Duration::from_millis(20);
/// How long the last successful poll vouches for the cache: past it, nothing cached is used.
pub const TRUST_FOR: Duration = Duration::from_millis(60);
/// The default bound on what the cache holds (`--cache-size`), in MiB.
pub const DEFAULT_SIZE_MIB: u64 = 64;

/// What a page view shows every reader alike, as read and rendered at one epoch.
#[derive(Debug, Clone)]
pub struct ViewedPage {
    pub id: i32,
    pub title: String,
    pub author_id: Option<i32>,
    pub author: Option<String>,
    pub updated_at: i64,
    /// The page's HTML with its links to missing pages marked.
    pub html: String,
    pub backlinks: Vec<String>,
}

/// A whole response body, with its entity tag and, made on first demand, its compressed forms.
#[derive(Debug)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: HeaderValue,
    brotli: OnceLock<Bytes>,
    gzip: OnceLock<Bytes>,
}

impl Rendered {
    pub fn new(body: Bytes, etag: HeaderValue) -> Self {
        Self { body, etag, brotli: OnceLock::new(), gzip: OnceLock::new() }
    }

    /// The body in `encoding`, compressed once (on the blocking pool: a large page takes
    /// milliseconds) and kept with it.
    async fn encoded(self: &Arc<Self>, encoding: Encoding) -> Bytes {
        let kept = match encoding {
            Encoding::Identity => return self.body.clone(),
            Encoding::Brotli => &self.brotli,
            Encoding::Gzip => &self.gzip,
        };
        if let Some(bytes) = kept.get() {
            return bytes.clone();
        }
        let rendered = self.clone();
        let compressed = tokio::task::spawn_blocking(move || compress(&rendered.body, encoding)).await;
        match compressed {
            Ok(Ok(bytes)) => kept.get_or_init(|| bytes).clone(),
            // Compressing into memory cannot fail short of a bug: the page goes out as it is.
            _ => self.body.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Brotli,
    Gzip,
}

impl Encoding {
    fn header(self) -> Option<HeaderValue> {
        match self {
            Self::Identity => None,
            Self::Brotli => Some(HeaderValue::from_static("br")),
            Self::Gzip => Some(HeaderValue::from_static("gzip")),
        }
    }

    /// What an `Accept-Encoding` allows, Brotli before gzip (what the compression layer picks
    /// for every other response); `q=0` refuses an encoding.
    fn accepted(headers: &HeaderMap) -> Self {
        let (mut brotli, mut gzip) = (false, false);
        for item in headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if refused {
                continue;
            }
            if name.eq_ignore_ascii_case("br") {
                brotli = true;
            } else if name.eq_ignore_ascii_case("gzip") {
                gzip = true;
            }
        }
        if brotli {
            Self::Brotli
        } else if gzip {
            Self::Gzip
        } else {
            Self::Identity
        }
    }
}

fn compress(body: &[u8], encoding: Encoding) -> std::io::Result<Bytes> {
    use std::io::Write;
    let mut out = Vec::with_capacity(body.len() / 3);
    match encoding {
        Encoding::Identity => out.extend_from_slice(body),
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams { quality: 9, lgwin: 22, ..Default::default() };
            brotli::BrotliCompress(&mut &body[..], &mut out, &params)?;
        }
        Encoding::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::best());
            encoder.write_all(body)?;
            out = encoder.finish()?;
        }
    }
    Ok(Bytes::from(out))
}

/// The visitor page kept for this request, when it is a plain page view by a visitor with no
/// session and no message pending: the page as it was answered by the whole stack of layers.
/// `None` sends the request the long way.
fn kept_for(cache: &Cache, request: &Request, cookies: &KeptCookies) -> Option<Arc<Rendered>> {
    if request.method() != Method::GET || request.uri().query().is_some() {
        return None;
    }
    let segment = request.uri().path().strip_prefix("/wiki/")?;
    if segment.is_empty() || segment.contains('/') {
        return None;
    }
    let headers = request.headers();
    if cookies.names.iter().any(|name| crate::app::carries_cookie(headers, name)) {
        return None;
    }
    let title = percent_encoding::percent_decode_str(segment).decode_utf8().ok()?;
    cache.visitor_page(&visitor_key(crate::theme::Theme::of_headers(headers), &title), cache.stamp()?)
}

/// What a visitor's page is kept under: its title and the colour scheme it was drawn in.
pub fn visitor_key(theme: crate::theme::Theme, title: &str) -> String {
    format!("{}\u{0}{title}", theme.as_str())
}

/// The names of the cookies that make a page view differ from a visitor's: the session and a
/// pending message.
#[derive(Clone)]
struct KeptCookies {
    names: Arc<[String]>,
}

impl KeptCookies {
    fn new(secure: bool) -> Self {
        use crate::cookies::{FLASH, SESSION, cookie_name};
        Self {
            names: [cookie_name(SESSION, secure), cookie_name(FLASH, secure)].map(|n| n.into_owned()).into(),
        }
    }
}

/// Visitors' views of kept pages, answered ahead of the router and all its layers: what the
/// whole stack would have answered (its tag and a 304 for `If-None-Match`, the compressed body
/// the client accepts, `Vary`, the security headers), counted in the metrics as the route's
/// other answers are. Answering a kept visitor page before the members-only gate is sound
/// because a visitor page is only kept after the gate let a visitor through at that epoch, and
/// any change of who may read moves the epoch.
#[derive(Clone)]
pub struct KeptViews {
    cache: Cache,
    cookies: KeptCookies,
    /// What the security-header layers add to every answer.
    headers: Arc<HeaderMap>,
    metrics: crate::metrics::RouteMetrics,
}

impl KeptViews {
    /// The kept views of `cache`; `metrics` counts them under the page view's route.
    pub fn new(cache: Cache, secure: bool, headers: HeaderMap, metrics: &crate::metrics::Metrics) -> Self {
        let statuses = [StatusCode::OK, StatusCode::NOT_MODIFIED];
        Self {
            cache,
            cookies: KeptCookies::new(secure),
            headers: Arc::new(headers),
            metrics: metrics.route("GET", crate::routes::wiki::VIEW, &statuses),
        }
    }

    /// The kept page `request` asks for, when it is a visitor's view of one; `None` sends it to
    /// the router. (Apart from [`Self::answer`], so that the request is not held across its
    /// await: its body is not `Sync`.)
    pub fn lookup(&self, request: &Request) -> Option<KeptView> {
        let started = Instant::now();
        let kept = kept_for(&self.cache, request, &self.cookies)?;
        let headers = request.headers();
        let not_modified = crate::app::none_match(headers.get(header::IF_NONE_MATCH), &kept.etag);
        Some(KeptView { kept, not_modified, encoding: Encoding::accepted(headers), started })
    }

    /// The answer to a view that [`Self::lookup`] found.
    pub async fn answer(&self, view: KeptView) -> Response {
        let KeptView { kept, not_modified, encoding, started } = view;
        let mut response = if not_modified {
            let mut response = Response::new(axum::body::Body::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            response
        } else {
            let body = kept.encoded(encoding).await;
            let length = HeaderValue::from(body.len());
            let mut response = Response::new(axum::body::Body::from(body));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            // What the router sets for a body of known size (hyper would not: the server wraps
            // every body to see it written).
            headers.insert(header::CONTENT_LENGTH, length);
            if let Some(value) = encoding.header() {
                headers.insert(header::CONTENT_ENCODING, value);
            }
            response
        };
        let headers = response.headers_mut();
        headers.reserve(self.headers.len() + 2);
        headers.insert(header::ETAG, kept.etag.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        for (name, value) in self.headers.iter() {
            headers.insert(name.clone(), value.clone());
        }
        self.metrics.observe(response.status(), started.elapsed());
        response
    }
}

/// A visitor's view of a kept page, found and not yet answered.
pub struct KeptView {
    kept: Arc<Rendered>,
    not_modified: bool,
    encoding: Encoding,
    started: Instant,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    Page(Box<str>),
    VisitorPage(Box<str>),
}

#[derive(Clone)]
enum Value {
    Page(Arc<ViewedPage>),
    VisitorPage(Arc<Rendered>),
}

#[derive(Clone)]
struct Entry {
    epoch: u64,
    value: Value,
}

#[derive(Clone)]
struct Weight;

impl quick_cache::Weighter<Key, Entry> for Weight {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let key = match key {
            Key::Page(title) | Key::VisitorPage(title) => title.len(),
        };
        let value = match &entry.value {
            Value::Page(page) => {
                page.title.len()
                    + page.html.len()
                    + page.author.as_ref().map_or(0, String::len)
                    + page.backlinks.iter().map(|t| t.len() + 24).sum::<usize>()
            }
            // Room for its compressed forms, made later (a page compresses to under a half).
            Value::VisitorPage(rendered) => rendered.body.len() * 3 / 2 + rendered.etag.len(),
        };
        // Bookkeeping around each entry: the map's slot, the Arc, the strings' headers.
        (key + value + 128) as u64
    }
}

/// Proof that the cache may be used now, carrying the epoch it was taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(u64);

/// The cache of one application. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: AtomicU64,
    /// Milliseconds after `origin` at which the last successful poll began, plus one (0: never).
    polled: AtomicU64,
    origin: Instant,
    capacity: u64,
    entries: Option<quick_cache::sync::Cache<Key, Entry, Weight>>,
    settings: Mutex<Option<(u64, WikiSettings)>>,
    hits: Counter,
    misses: Counter,
    /// The values this instance moved the database's change counter to, not yet seen by the
    /// poller: it does not drop the cache again for those, which this instance dropped already
    /// when it made the change.
    own_changes: Mutex<std::collections::BTreeSet<i64>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("capacity", &self.inner.capacity).finish_non_exhaustive()
    }
}

/// Page views are about this big (10 KB of Markdown makes ~16 KB of HTML): how many entries to
/// expect for a given capacity.
const TYPICAL_ENTRY: u64 = 16 * 1024;

impl Cache {
    /// A cache holding at most `capacity` bytes; 0 turns it off (every view reads the database).
    pub fn new(capacity: u64, hits: Counter, misses: Counter) -> Self {
        let entries = (capacity > 0).then(|| {
            let items = usize::try_from((capacity / TYPICAL_ENTRY).max(16)).unwrap_or(usize::MAX);
            quick_cache::sync::Cache::with_weighter(items, capacity, Weight)
        });
        Self {
            inner: Arc::new(Inner {
                epoch: AtomicU64::new(0),
                polled: AtomicU64::new(0),
                origin: Instant::now(),
                capacity,
                entries,
                settings: Mutex::new(None),
                hits,
                misses,
                own_changes: Mutex::new(std::collections::BTreeSet::new()),
            }),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.inner.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A stamp when the cache may be used now: the poller vouched for it recently. Take it
    /// before reading the database for what will be kept.
    pub fn stamp(&self) -> Option<Stamp> {
        let polled = self.inner.polled.load(Ordering::Acquire);
        if polled == 0 || self.elapsed_ms().saturating_sub(polled - 1) > TRUST_FOR.as_millis() as u64 {
            return None;
        }
        Some(Stamp(self.inner.epoch.load(Ordering::Acquire)))
    }

    /// Everything kept so far is unusable from now on.
    pub fn invalidate(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.inner.entries {
            entries.clear();
        }
        if let Ok(mut settings) = self.inner.settings.lock() {
            *settings = None;
        }
    }

    fn get(&self, key: &Key, stamp: Stamp) -> Option<Value> {
        let found = self.inner.entries.as_ref()?.get(key).filter(|entry| entry.epoch == stamp.0);
        match found {
            Some(entry) => {
                self.inner.hits.inc();
                Some(entry.value)
            }
            None => {
                self.inner.misses.inc();
                None
            }
        }
    }

    fn put(&self, key: Key, value: Value, stamp: Stamp) {
        // Made from a read that raced a change: not worth keeping.
        if self.inner.epoch.load(Ordering::Acquire) != stamp.0 {
            return;
        }
        if let Some(entries) = &self.inner.entries {
            entries.insert(key, Entry { epoch: stamp.0, value });
        }
    }

    pub fn page(&self, title: &str, stamp: Stamp) -> Option<Arc<ViewedPage>> {
        match self.get(&Key::Page(title.into()), stamp)? {
            Value::Page(page) => Some(page),
            Value::VisitorPage(_) => None,
        }
    }

    /// Keeps a page as viewed under `title` (the title asked for).
    pub fn keep_page(&self, title: &str, page: Arc<ViewedPage>, stamp: Stamp) {
        self.put(Key::Page(title.into()), Value::Page(page), stamp);
    }

    pub fn visitor_page(&self, title: &str, stamp: Stamp) -> Option<Arc<Rendered>> {
        match self.get(&Key::VisitorPage(title.into()), stamp)? {
            Value::VisitorPage(rendered) => Some(rendered),
            Value::Page(_) => None,
        }
    }

    pub fn keep_visitor_page(&self, title: &str, rendered: Arc<Rendered>, stamp: Stamp) {
        self.put(Key::VisitorPage(title.into()), Value::VisitorPage(rendered), stamp);
    }

    /// The wiki's settings as kept at this epoch.
    pub fn settings(&self, stamp: Stamp) -> Option<WikiSettings> {
        let kept = self.inner.settings.lock().ok()?;
        match *kept {
            Some((epoch, settings)) if epoch == stamp.0 => Some(settings),
            _ => None,
        }
    }

    pub fn keep_settings(&self, settings: WikiSettings, stamp: Stamp) {
        if self.inner.entries.is_none() || self.inner.epoch.load(Ordering::Acquire) != stamp.0 {
            return;
        }
        if let Ok(mut kept) = self.inner.settings.lock() {
            *kept = Some((stamp.0, settings));
        }
    }

    /// (bytes held, entries, capacity in bytes), for `/metrics`.
    pub fn usage(&self) -> (u64, usize, u64) {
        match &self.inner.entries {
            Some(entries) => (entries.weight(), entries.len(), self.inner.capacity),
            None => (0, 0, 0),
        }
    }

    /// Reads the change counter every [`POLL_EVERY`] until the task is aborted; a counter that
    /// moved invalidates the cache, a poll that failed leaves it untrusted.
    pub async fn watch(self, db: DatabaseConnection) {
        let mut every = tokio::time::interval(POLL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<i64> = None;
        let mut failing = false;
        loop {
            every.tick().await;
            let began = self.elapsed_ms();
            match tokio::time::timeout(TRUST_FOR, change::version(&db)).await {
                Ok(Ok(version)) => {
                    if last.is_some_and(|seen| seen != version) && !self.only_own_changes(last, version) {
                        self.invalidate();
                    }
                    last = Some(version);
                    self.inner.polled.store(began + 1, Ordering::Release);
                    if failing {
                        tracing::info!("the change counter answers again: page views use the cache");
                        failing = false;
                    }
                }
                Ok(Err(err)) => {
                    if !failing {
                        tracing::warn!(error = %err, "cannot read the change counter: page views bypass the cache");
                        failing = true;
                    }
                }
                Err(_) => {
                    if !failing {
                        tracing::warn!("the change counter is slow to answer: page views bypass the cache");
                        failing = true;
                    }
                }
            }
        }
    }
}

/// Marks a response that refused its request (`AppError`): whatever its status, nothing changed.
#[derive(Debug, Clone, Copy)]
pub struct Unchanged;

/// How long a change that decides who may read waits before its response leaves: by then every
/// other instance has either read the change counter since the change (and dropped what it
/// kept) or stopped trusting its cache ([`TRUST_FOR`]). Such a change (the wiki's settings)
/// thus holds at the very next request on every instance, not within a window.
pub const SETTLE: Duration = Duration::from_millis(TRUST_FOR.as_millis() as u64 + 15);

/// Records a change that decides who may read, and returns once it holds on every instance
/// (see [`SETTLE`]).
pub async fn settle_access_change(cache: &Cache, db: &DatabaseConnection) {
    cache.invalidate();
    cache.record_change(db).await;
    tokio::time::sleep(SETTLE).await;
}

/// Paths whose POSTs change nothing a page view shows (a session starts or ends, a preview is
/// rendered): they do not move the epoch.
fn changes_nothing_shown(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/preview")
}

/// Moves the epoch after every request that may have changed something, before its response
/// leaves: any method but GET, HEAD and OPTIONS whose answer is not a refusal (a 4xx, or any
/// [`AppError`](crate::error::AppError) but an unexpected one: a refused request changed nothing). A request abandoned midway (the client went away after the handler wrote)
/// moves it too, when it is dropped.
pub async fn track_changes(
    State((cache, db)): State<(Cache, DatabaseConnection)>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || changes_nothing_shown(request.uri().path())
    {
        return next.run(request).await;
    }
    let mut guard = ChangeGuard { cache, db: Some(db) };
    let response = next.run(request).await;
    if response.status().is_client_error() || response.extensions().get::<Unchanged>().is_some() {
        guard.db = None;
        return response;
    }
    guard.record().await;
    response
}

/// Records a change when it is done with — awaited on the normal path, spawned if the request
/// is dropped before.
struct ChangeGuard {
    cache: Cache,
    db: Option<DatabaseConnection>,
}

impl ChangeGuard {
    async fn record(&mut self) {
        let Some(db) = self.db.take() else { return };
        self.cache.invalidate();
        self.cache.record_change(&db).await;
    }
}

impl Drop for ChangeGuard {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        self.cache.invalidate();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cache = self.cache.clone();
            runtime.spawn(async move { cache.record_change(&db).await });
        }
    }
}

impl Cache {
    /// Moves the database's change counter for a change this instance made (and dropped its
    /// own cache for already), so that the other instances drop theirs.
    pub async fn record_change(&self, db: &DatabaseConnection) {
        match change::bump(db).await {
            Ok(moved_to) => {
                if let Ok(mut own) = self.inner.own_changes.lock() {
                    own.insert(moved_to);
                    // Bounded: a poller that stopped must not let this grow.
                    while own.len() > 1024 {
                        own.pop_first();
                    }
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot record a change: other instances may show it late")
            }
        }
    }

    /// True when every move of the counter from `seen` to `version` is one this instance made
    /// (it dropped its cache for each already); forgets the moves up to `version`.
    fn only_own_changes(&self, seen: Option<i64>, version: i64) -> bool {
        let (Some(seen), Ok(mut own)) = (seen, self.inner.own_changes.lock()) else { return false };
        let all_own = seen < version && (seen + 1..=version).all(|v| own.contains(&v));
        own.retain(|v| *v > version);
        all_own
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: u64) -> Cache {
        Cache::new(capacity, Counter::default(), Counter::default())
    }

    fn trusted(cache: &Cache) {
        cache.inner.polled.store(cache.elapsed_ms() + 1, Ordering::Release);
    }

    fn page(html: &str) -> Arc<ViewedPage> {
        Arc::new(ViewedPage {
            id: 1,
            title: "Home".into(),
            author_id: None,
            author: None,
            updated_at: 0,
            html: html.into(),
            backlinks: Vec::new(),
        })
    }

    #[test]
    fn nothing_is_used_until_a_poll_vouches_for_it() {
        let cache = cache(1 << 20);
        assert_eq!(cache.stamp(), None);
        trusted(&cache);
        assert!(cache.stamp().is_some());
        cache.inner.polled.store(1, Ordering::Release);
        std::thread::sleep(TRUST_FOR + Duration::from_millis(5));
        assert_eq!(cache.stamp(), None, "a poll older than TRUST_FOR vouches for nothing");
    }

    #[test]
    fn a_change_makes_every_entry_unusable() {
        let cache = cache(1 << 20);
        trusted(&cache);
        let stamp = cache.stamp().unwrap();
        cache.keep_page("Home", page("<p>old</p>"), stamp);
        assert_eq!(cache.page("Home", stamp).unwrap().html, "<p>old</p>");
        cache.invalidate();
        let now = cache.stamp().unwrap();
        assert!(cache.page("Home", now).is_none());
        assert!(cache.page("Home", stamp).is_none(), "cleared, whatever the stamp");
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let cache = cache(1 << 20);
        trusted(&cache);
        let before = cache.stamp().unwrap();
        cache.invalidate();
        cache.keep_page("Home", page("<p>read before the change</p>"), before);
        let after = cache.stamp().unwrap();
        assert!(cache.page("Home", after).is_none());
    }

    #[test]
    fn the_cache_holds_no_more_than_its_capacity() {
        let cache = cache(256 * 1024);
        trusted(&cache);
        let stamp = cache.stamp().unwrap();
        for i in 0..200 {
            cache.keep_page(&format!("Page {i}"), page(&"x".repeat(10_000)), stamp);
        }
        let (bytes, entries, capacity) = cache.usage();
        assert!(bytes <= capacity, "{bytes} > {capacity}");
        assert!(entries < 200 && entries > 0);
    }

    #[test]
    fn a_cache_of_size_zero_keeps_nothing() {
        let cache = cache(0);
        trusted(&cache);
        let stamp = cache.stamp().unwrap();
        cache.keep_page("Home", page("x"), stamp);
        cache.keep_settings(WikiSettings::default(), stamp);
        assert!(cache.page("Home", stamp).is_none());
        assert!(cache.settings(stamp).is_none());
        assert_eq!(cache.usage(), (0, 0, 0));
    }
}

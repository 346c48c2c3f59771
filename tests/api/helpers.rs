//! The test harness: a real Quire on port 0 with its own data dir and its own database, and a
//! browser-like client (cookies kept, redirects not followed) with one helper per endpoint.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use quire::{AppState, Application, RawSettings, Settings};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// The database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

pub const POSTGRES_ENV: &str = "QUIRE_TEST_POSTGRES_URL";
pub const MYSQL_ENV: &str = "QUIRE_TEST_MYSQL_URL";

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// The server URL the test databases are created on, when one is configured.
    pub fn server_url(self) -> Option<String> {
        let var = match self {
            Self::Sqlite => return None,
            Self::Postgres => POSTGRES_ENV,
            Self::MySql => MYSQL_ENV,
        };
        std::env::var(var).ok().filter(|url| !url.trim().is_empty())
    }

    pub fn available(self) -> bool {
        self == Self::Sqlite || self.server_url().is_some()
    }
}

/// A database made for one test, dropped when the test ends (even when it fails).
pub struct TestDatabase {
    pub url: String,
    drop: Option<(String, String, Backend)>,
}

fn unique_name() -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    format!("quire_test_{}", hex::encode(bytes))
}

/// Replaces the database name in a server URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..path_start])
}

impl TestDatabase {
    pub async fn create(backend: Backend, dir: &std::path::Path) -> Self {
        let Some(server) = backend.server_url() else {
            return Self { url: quire::config::sqlite_url(&dir.join("quire.db")), drop: None };
        };
        let name = unique_name();
        let admin = Database::connect(server.clone()).await.expect("the test database server answers");
        let create = match backend {
            Backend::MySql => format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
            _ => format!("CREATE DATABASE {name}"),
        };
        admin.execute_unprepared(&create).await.expect("the test database is created");
        admin.close().await.ok();
        Self { url: with_database(&server, &name), drop: Some((server, name, backend)) }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((server, name, backend)) = self.drop.take() else { return };
        // Drop runs outside async: a thread with its own runtime does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(server).await {
                    let sql = match backend {
                        Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        _ => format!("DROP DATABASE IF EXISTS {name}"),
                    };
                    let _ = admin.execute_unprepared(&sql).await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A running Quire and a client for it.
pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    /// The dedicated metrics listener's port, when `Options::metrics_bind` asked for one.
    pub metrics_port: Option<u16>,
    pub state: AppState,
    pub browser: Browser,
    pub data_dir: Arc<TempDir>,
    pub database: Arc<TestDatabase>,
    pub options: Options,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// Settings for a test app; tests adjust them before spawning.
#[derive(Default, Clone)]
pub struct Options {
    pub public_url: Option<String>,
    pub limits: Option<quire::config::Limits>,
    pub connections: Option<quire::config::ConnectionLimits>,
    pub image_hosts: Option<String>,
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// The page-view cache's size in MiB (`--cache-size`); the default when unset.
    pub cache_mib: Option<u64>,
    /// `--backup-every`, `--backup-dir`, `--backup-keep`.
    pub backup_every: Option<std::time::Duration>,
    pub backup_dir: Option<PathBuf>,
    pub backup_keep: Option<usize>,
    /// `--trusted-proxies`.
    pub trusted_proxies: Option<String>,
    /// `--smtp-url`, `--smtp-from`.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    /// The address to listen on [default: 127.0.0.1:0] (a provider must know the callback first).
    pub bind: Option<std::net::SocketAddr>,
    /// `--oidc-*`, `--ldap-*`, `--password-login`.
    pub oidc: quire::auth::oidc::RawOidc,
    pub ldap: quire::auth::ldap::RawLdap,
    pub password_login: Option<bool>,
    /// `--max-upload` and `--storage-quota`, in bytes.
    pub max_upload: Option<u64>,
    pub storage_quota: Option<u64>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_with(backend, Options::default()).await
}

pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
    let data_dir = Arc::new(tempfile::tempdir().expect("a temporary data dir"));
    let database = Arc::new(TestDatabase::create(backend, data_dir.path()).await);
    start(backend, data_dir, database, options).await
}

/// A Quire on a database (and data dir) made beforehand, e.g. by `quire restore`.
pub async fn spawn_on(backend: Backend, data_dir: Arc<TempDir>, database: Arc<TestDatabase>) -> TestApp {
    start(backend, data_dir, database, Options::default()).await
}

/// Another instance over the same data dir and database, with its own options.
pub async fn spawn_on_with(
    backend: Backend,
    data_dir: Arc<TempDir>,
    database: Arc<TestDatabase>,
    options: Options,
) -> TestApp {
    start(backend, data_dir, database, options).await
}

async fn start(
    backend: Backend,
    data_dir: Arc<TempDir>,
    database: Arc<TestDatabase>,
    options: Options,
) -> TestApp {
    let settings = Settings::resolve(RawSettings {
        bind: Some(options.bind.unwrap_or_else(|| "127.0.0.1:0".parse().unwrap())),
        data_dir: Some(data_dir.path().to_path_buf()),
        database_url: Some(database.url.clone()),
        public_url: options.public_url.clone(),
        limits: options.limits,
        connections: options.connections,
        image_hosts: options.image_hosts.clone(),
        metrics_bind: options.metrics_bind,
        cache_mib: options.cache_mib,
        backup_every: options.backup_every,
        backup_dir: options.backup_dir.clone(),
        backup_keep: options.backup_keep,
        trusted_proxies: options
            .trusted_proxies
            .as_deref()
            .map(|list| quire::proxy::TrustedProxies::parse(list).expect("a valid proxy list")),
        smtp_url: options.smtp_url.clone(),
        smtp_from: options.smtp_from.clone(),
        oidc: options.oidc.clone(),
        ldap: options.ldap.clone(),
        password_login: options.password_login,
        max_upload: options.max_upload,
        storage_quota: options.storage_quota,
        ..RawSettings::default()
    })
    .expect("test settings resolve");
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        backend,
        browser: Browser::new(&address),
        address,
        metrics_port,
        state,
        data_dir,
        database,
        options,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server (finishing requests in flight) and starts a new one on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let browser = self.browser.clone();
        let mut app =
            start(self.backend, self.data_dir.clone(), self.database.clone(), self.options.clone()).await;
        app.browser = browser.rebase(&app.address);
        app
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("the server task ends").expect("the server stops cleanly");
        }
        self.state.db.read.clone().close().await.ok();
        self.state.db.write.clone().close().await.ok();
    }

    /// A second browser, with its own cookies.
    pub fn new_browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    pub fn avatar_dir(&self) -> PathBuf {
        self.state.settings.avatar_dir.clone()
    }

    pub async fn user_count(&self) -> u64 {
        quire::models::user::count(&self.state.db.read).await.unwrap()
    }

    pub async fn page_count(&self) -> u64 {
        use sea_orm::{EntityTrait, PaginatorTrait};
        quire::models::page::Entity::find().count(&self.state.db.read).await.unwrap()
    }

    pub async fn session_count(&self) -> u64 {
        quire::models::session::count(&self.state.db.read).await.unwrap()
    }

    /// Registers and logs in a member with the default browser.
    pub async fn member(&self, username: &str) -> &Browser {
        self.browser.register(username, PASSWORD).await;
        let response = self.browser.login(username, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "login of {username}");
        &self.browser
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A client that behaves like one browser: it keeps its cookies and shows redirects.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Self::with_jar(base, jar)
    }

    /// A browser whose connections come from another loopback address (`127.0.0.N`).
    pub fn from_address(base: &str, ip: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        Self { base: base.to_owned(), client, jar }
    }

    /// A client behind a reverse proxy at `proxy_ip` (`127.0.0.N`): every request carries
    /// `headers`, as the proxy would add them.
    pub fn behind_proxy(base: &str, proxy_ip: &str, headers: &[(&str, &str)]) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let mut default_headers = HeaderMap::new();
        for (name, value) in headers {
            default_headers.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(value).unwrap(),
            );
        }
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .local_address(proxy_ip.parse::<std::net::IpAddr>().unwrap())
            .default_headers(default_headers)
            .build()
            .unwrap();
        Self { base: base.to_owned(), client, jar }
    }

    fn with_jar(base: &str, jar: Arc<reqwest::cookie::Jar>) -> Self {
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { base: base.to_owned(), client, jar }
    }

    /// Another view of the same browser (same cookie jar) on another address: cookies are not
    /// scoped by port, so two instances on one host see the same session cookie.
    pub fn sharing(&self, base: &str) -> Self {
        Self::with_jar(base, self.jar.clone())
    }

    /// The same cookies, pointed at another address (a restarted server listens elsewhere).
    fn rebase(&self, base: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let old: reqwest::Url = self.base.parse().unwrap();
        let new: reqwest::Url = base.parse().unwrap();
        if let Some(cookies) = reqwest::cookie::CookieStore::cookies(&*self.jar, &old) {
            for cookie in cookies.to_str().unwrap().split("; ") {
                jar.add_cookie_str(cookie, &new);
            }
        }
        Self::with_jar(base, jar)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The cookie header this browser would send.
    pub fn cookies(&self) -> String {
        let url: reqwest::Url = self.base.parse().unwrap();
        reqwest::cookie::CookieStore::cookies(&*self.jar, &url)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies().split("; ").find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        let url: reqwest::Url = self.base.parse().unwrap();
        self.jar.add_cookie_str(&format!("{name}={value}; Path=/"), &url);
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET answers")
    }

    pub async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.expect("POST answers")
    }

    /// The CSRF token of the form on `path`.
    pub async fn csrf(&self, path: &str) -> String {
        let (status, body) = self.get_text(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path} for its CSRF token");
        csrf_in(&body).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    pub async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.register_confirmed(username, password, password).await
    }

    pub async fn register_confirmed(
        &self,
        username: &str,
        password: &str,
        confirm: &str,
    ) -> reqwest::Response {
        let token = self.csrf("/register").await;
        self.post_form(
            "/register",
            &[
                ("username", username),
                ("password", password),
                ("confirm_password", confirm),
                ("csrf_token", &token),
            ],
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        let token = self.csrf("/login").await;
        self.post_form("/login", &[("username", username), ("password", password), ("csrf_token", &token)])
            .await
    }

    pub async fn logout(&self) -> reqwest::Response {
        let token = self.csrf("/logout").await;
        self.post_form("/logout", &[("csrf_token", &token)]).await
    }

    pub async fn create_page(&self, title: &str, content: &str) -> reqwest::Response {
        let token = self.csrf("/create").await;
        self.post_form("/create", &[("title", title), ("content", content), ("csrf_token", &token)]).await
    }

    pub async fn upload_avatar(&self, filename: &str, bytes: Vec<u8>) -> reqwest::Response {
        let token = self.csrf("/profile").await;
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token)
            .part("avatar", reqwest::multipart::Part::bytes(bytes).file_name(filename.to_owned()));
        self.client.post(self.url("/profile")).multipart(form).send().await.expect("upload answers")
    }

    /// True when GET /profile answers 200 (the contract's test for "logged in").
    pub async fn is_logged_in(&self) -> bool {
        let status = self.get("/profile").await.status();
        assert!(status == StatusCode::OK || status == StatusCode::SEE_OTHER, "GET /profile: {status}");
        status == StatusCode::OK
    }
}

/// The value of the first `csrf_token` input in an HTML page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find(r#"name="csrf_token" value=""#)?;
    let rest = &html[at + r#"name="csrf_token" value=""#.len()..];
    let token = &rest[..rest.find('"')?];
    (!token.is_empty()).then(|| token.to_owned())
}

pub fn location(headers: &HeaderMap) -> String {
    headers.get(LOCATION).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// Asserts a 303 to `target`.
#[track_caller]
pub fn assert_redirects_to(response: &reqwest::Response, target: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "expected a redirect to {target}");
    assert_eq!(location(response.headers()), target);
}

/// The text of a page after following one redirect.
pub async fn follow(browser: &Browser, response: reqwest::Response) -> (StatusCode, String) {
    assert!(response.status().is_redirection(), "expected a redirect, got {}", response.status());
    browser.get_text(&location(response.headers())).await
}

pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub type TestFn = fn(Backend) -> TestFuture;

/// Lists async test functions as `(name, fn)` pairs for the harness.
#[macro_export]
macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        pub fn tests() -> Vec<(&'static str, $crate::helpers::TestFn)> {
            vec![$((stringify!($name), |backend| Box::pin($name(backend)))),*]
        }
    };
}

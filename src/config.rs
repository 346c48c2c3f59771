//! Settings: where Quire listens, where it keeps its state, and the secret it signs with.
//!
//! Values come from flags, the environment or a `.env` file (clap reads the first two; `main` loads
//! `.env` before parsing). Everything that has to exist on disk (the data dir, the persisted secret)
//! is prepared here, once, before the application is built.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::models::throttle::Limit;

/// The name of the file, inside the data dir, that keeps the generated session secret.
const SECRET_FILE: &str = "secret";
/// The SQLite database file used when no `DATABASE_URL` is given.
const DEFAULT_DB_FILE: &str = "quire.db";
/// The shortest secret accepted from the environment: 32 bytes of key material.
const MIN_SECRET_LEN: usize = 32;

/// Everything the application needs to start, resolved and validated.
#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub avatar_dir: PathBuf,
    pub database_url: String,
    /// Key material for CSRF tokens and signed cookies. Never logged.
    pub secret: Secret,
    /// Cookies get `Secure` when the public URL is https.
    pub secure_cookies: bool,
    /// The URL people reach the wiki at, without a trailing slash (feeds use it).
    pub public_url: Option<String>,
    /// How many password hashes may run at once (each holds 64 MiB).
    pub hash_concurrency: usize,
    pub limits: Limits,
    /// Timeouts and the cap on open connections.
    pub connections: ConnectionLimits,
    /// Where pages may load images from besides this site, as Content-Security-Policy sources
    /// (`https://images.example.com`, `https://*.example.org`, or `https:` for anywhere).
    pub image_sources: Vec<String>,
    /// Where `/metrics` (and `/healthz`) get a listener of their own; `None`: `/metrics` on the
    /// main port, for loopback clients only.
    pub metrics_bind: Option<SocketAddr>,
    /// Bytes the page-view cache may hold (`--cache-size`, in MiB); 0 turns it off.
    pub cache_bytes: u64,
    /// Backups the running server makes (`--backup-every`); `None`: none.
    pub backups: Option<BackupSchedule>,
    /// Proxies whose `Forwarded` / `X-Forwarded-*` headers are believed (`--trusted-proxies`).
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// The SMTP relay and sender (`--smtp-url`, `--smtp-from`); `None`: no mail is sent.
    pub mail: Option<crate::mail::MailSettings>,
    /// OpenID Connect sign-in (`--oidc-*`); `None`: none.
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
    /// LDAP sign-in (`--ldap-*`); `None`: none.
    pub ldap: Option<crate::auth::ldap::LdapSettings>,
    /// The username and password form on /login (`--password-login`); off only with another way in.
    pub password_login: bool,
    /// The largest file accepted, in bytes (`--max-upload`).
    pub max_upload: u64,
    /// The most bytes all stored files may take together (`--storage-quota`); `None`: no bound.
    pub storage_quota: Option<u64>,
}

/// Scheduled backups: how often, where, and how many are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSchedule {
    /// One backup per slot of this length, counted from 00:00 UTC (every 24 hours: at midnight UTC).
    pub every: Duration,
    pub dir: PathBuf,
    /// Archives kept in `dir`; older ones made by Quire are removed (nothing else is).
    pub keep: usize,
}

/// Scheduled backups kept when `--backup-keep` is not given.
pub const DEFAULT_BACKUP_KEEP: usize = 7;
/// The backup directory inside the data dir when `--backup-dir` is not given.
pub const DEFAULT_BACKUP_DIR: &str = "backups";

/// Parses `--backup-every`: a number of hours, fractions allowed (`0.5` is every half hour),
/// at least one second.
pub fn parse_hours(text: &str) -> Result<Duration, String> {
    let hours: f64 = text.trim().parse().map_err(|_| {
        format!("{text:?} is not a number of hours; give one like 24, or 0.5 for every half hour")
    })?;
    if !hours.is_finite() || hours <= 0.0 {
        return Err(format!("{text:?}: the interval must be a number of hours above 0, like 24 or 0.5"));
    }
    let every = Duration::try_from_secs_f64(hours * 3600.0)
        .map_err(|_| format!("{text:?}: the interval is too long"))?;
    if every < Duration::from_secs(1) {
        return Err(format!("{text:?}: the interval must be at least 1 second (0.0003 hours)"));
    }
    Ok(every)
}

/// How long a client may take, and how many connections may be open at once: a slow or silent
/// client must not hold the server (see `server.rs` for what each one bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A request head must arrive within this time: counted from the connection's opening for
    /// its first request, from the first byte of the next one on a kept-alive connection.
    pub header_timeout: Duration,
    /// A kept-alive connection that sends nothing for this long after a response is closed.
    /// Zero turns keep-alive off.
    pub keep_alive_timeout: Duration,
    /// A request body must have arrived whole this long after its head (408 otherwise).
    pub body_timeout: Duration,
    /// Open connections at most; past it the longest-idle one is closed, and when none is idle
    /// new connections wait in the listen backlog.
    pub max_connections: usize,
}

pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_KEEP_ALIVE_TIMEOUT_SECS: u64 = 20;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// File descriptors kept for everything but client connections (database files and sockets,
/// avatars, logs) when the connection cap is derived from the open-file limit.
pub const RESERVED_FDS: u64 = 64;

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            keep_alive_timeout: Duration::from_secs(DEFAULT_KEEP_ALIVE_TIMEOUT_SECS),
            body_timeout: Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// Refuses a zero timeout where zero means nothing sensible, and keeps the connection cap
    /// below what the open-file limit allows (`fd_limit`, when known).
    fn checked(self, fd_limit: Option<u64>) -> anyhow::Result<Self> {
        if self.header_timeout.is_zero() {
            bail!("the header timeout (QUIRE_HEADER_TIMEOUT) must be at least 1 second");
        }
        if self.body_timeout.is_zero() {
            bail!("the body timeout (QUIRE_BODY_TIMEOUT) must be at least 1 second");
        }
        if self.max_connections == 0 {
            bail!("the connection cap (QUIRE_MAX_CONNECTIONS) must be at least 1");
        }
        let mut limits = self;
        if let Some(fds) = fd_limit {
            let ceiling = usize::try_from(fds.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
            if limits.max_connections > ceiling {
                if limits.max_connections == DEFAULT_MAX_CONNECTIONS {
                    tracing::info!(open_file_limit = fds, max_connections = ceiling, "connection cap");
                } else {
                    tracing::warn!(
                        asked = limits.max_connections,
                        open_file_limit = fds,
                        used = ceiling,
                        "the connection cap is lowered to stay below the open-file limit"
                    );
                }
                limits.max_connections = ceiling;
            }
        }
        Ok(limits)
    }
}

/// Parses the operator's list of image hosts (commas or spaces between them) into
/// Content-Security-Policy sources. A bare host means https; `*.example.org` covers its
/// subdomains; `*` alone means any https host. Anything else is refused with the entry named.
pub fn parse_image_hosts(text: &str) -> anyhow::Result<Vec<String>> {
    let mut sources = Vec::new();
    for entry in text.split([',', ' ', '\t', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
        let source = image_source(entry).ok_or_else(|| {
            anyhow::anyhow!(
                "QUIRE_IMAGE_HOSTS: {entry:?} is not a host name; give host names separated by commas, \
                 like images.example.com, *.example.org, https://cdn.example.net:8443 or * for any https host"
            )
        })?;
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    Ok(sources)
}

fn image_source(entry: &str) -> Option<String> {
    if entry == "*" {
        return Some("https:".to_owned());
    }
    let lower = entry.to_ascii_lowercase();
    let (scheme, rest) = match lower.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some(_) => return None,
        None => ("https", lower.as_str()),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            let number: u16 = port.parse().ok().filter(|p| *p > 0 && !port.starts_with('0'))?;
            (host, Some(number))
        }
        None => (rest, None),
    };
    let name = host.strip_prefix("*.").unwrap_or(host);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return None;
    }
    Some(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Rate limits on what attackers repeat, and the bound on the password-hash queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed logins per account and client address (with exponential backoff past half of it).
    pub login: Limit,
    /// Failed logins per account, from all addresses together; a browser that logged in to the
    /// account before (the known-device cookie) is exempt.
    pub account_login: Limit,
    /// Failed logins per client address, whatever the username.
    pub address_login: Limit,
    /// Registrations per client address.
    pub register: Limit,
    /// Password checks that may wait for a hashing slot; past it, 503 with `Retry-After`.
    pub hash_queue: usize,
}

pub const DEFAULT_LOGIN_LIMIT: &str = "10/300";
pub const DEFAULT_ACCOUNT_LOGIN_LIMIT: &str = "50/900";
pub const DEFAULT_ADDRESS_LOGIN_LIMIT: &str = "100/900";
pub const DEFAULT_REGISTER_LIMIT: &str = "50/3600";
pub const DEFAULT_HASH_QUEUE: usize = 32;

impl Default for Limits {
    fn default() -> Self {
        let parse = |text| Limit::parse(text).expect("the default limits parse");
        Self {
            login: parse(DEFAULT_LOGIN_LIMIT),
            account_login: parse(DEFAULT_ACCOUNT_LOGIN_LIMIT),
            address_login: parse(DEFAULT_ADDRESS_LOGIN_LIMIT),
            register: parse(DEFAULT_REGISTER_LIMIT),
            hash_queue: DEFAULT_HASH_QUEUE,
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("avatar_dir", &self.avatar_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("secure_cookies", &self.secure_cookies)
            .field("hash_concurrency", &self.hash_concurrency)
            .field("limits", &self.limits)
            .field("connections", &self.connections)
            .field("image_sources", &self.image_sources)
            .field("metrics_bind", &self.metrics_bind)
            .field("cache_bytes", &self.cache_bytes)
            .field("backups", &self.backups)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("mail", &self.mail)
            .field("oidc", &self.oidc)
            .field("ldap", &self.ldap)
            .field("password_login", &self.password_login)
            .finish_non_exhaustive()
    }
}

/// Secret bytes that never show up in `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The raw inputs, as the command line and environment give them.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub avatar_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub session_secret: Option<String>,
    pub public_url: Option<String>,
    pub limits: Option<Limits>,
    /// Timeouts and the connection cap; the defaults when unset (and the cap derived from the
    /// open-file limit).
    pub connections: Option<ConnectionLimits>,
    /// The operator's list of image hosts, unparsed.
    pub image_hosts: Option<String>,
    pub metrics_bind: Option<SocketAddr>,
    /// The page-view cache's bound in MiB; the default when unset.
    pub cache_mib: Option<u64>,
    /// `--backup-every`: scheduled backups are made only when it is set.
    pub backup_every: Option<Duration>,
    /// `--backup-dir` [default: DATA_DIR/backups].
    pub backup_dir: Option<PathBuf>,
    /// `--backup-keep` [default: 7].
    pub backup_keep: Option<usize>,
    /// `--trusted-proxies` [default: none].
    pub trusted_proxies: Option<crate::proxy::TrustedProxies>,
    /// `--smtp-url` [default: none: no mail].
    pub smtp_url: Option<String>,
    /// `--smtp-from`, needed with `--smtp-url`.
    pub smtp_from: Option<String>,
    /// `--oidc-*` [default: none: no single sign-on].
    pub oidc: crate::auth::oidc::RawOidc,
    /// `--ldap-*` [default: none: no directory].
    pub ldap: crate::auth::ldap::RawLdap,
    /// `--password-login` [default: true].
    pub password_login: Option<bool>,
    /// `--max-upload` in bytes [default: 50 MiB].
    pub max_upload: Option<u64>,
    /// `--storage-quota` in bytes [default: none].
    pub storage_quota: Option<u64>,
}

/// The largest page-view cache accepted, in MiB: a typo (a size in bytes) must not be taken.
const MAX_CACHE_MIB: u64 = 64 * 1024;

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "data";

impl Settings {
    /// Resolves defaults, creates the data dir and loads (or generates) the secret.
    pub fn resolve(raw: RawSettings) -> anyhow::Result<Self> {
        // What needs no disk is checked first: a refused setting leaves nothing behind.
        let connections = raw.connections.unwrap_or_default().checked(crate::server::open_file_limit())?;
        let image_sources = parse_image_hosts(raw.image_hosts.as_deref().unwrap_or_default())?;
        let cache_mib = raw.cache_mib.unwrap_or(crate::cache::DEFAULT_SIZE_MIB);
        if cache_mib > MAX_CACHE_MIB {
            bail!("QUIRE_CACHE_SIZE is in MiB and at most {MAX_CACHE_MIB} (64 GiB), got {cache_mib}");
        }
        let cache_bytes = cache_mib * 1024 * 1024;
        let max_upload = raw.max_upload.unwrap_or(crate::files::DEFAULT_MAX_UPLOAD);
        if max_upload == 0 {
            bail!("the largest upload (QUIRE_MAX_UPLOAD, --max-upload) must be more than 0 bytes");
        }
        let backup_keep = raw.backup_keep.unwrap_or(DEFAULT_BACKUP_KEEP);
        if backup_keep == 0 {
            bail!("the number of backups kept (QUIRE_BACKUP_KEEP, --backup-keep) must be at least 1");
        }
        let bind = raw.bind.unwrap_or_else(|| DEFAULT_BIND.parse().expect("the default bind address parses"));
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let avatar_dir = raw.avatar_dir.unwrap_or_else(|| data_dir.join("avatars"));
        fs::create_dir_all(&avatar_dir)
            .with_context(|| format!("cannot create the avatar directory {}", avatar_dir.display()))?;

        let backups = match raw.backup_every {
            Some(every) => {
                let dir = raw.backup_dir.unwrap_or_else(|| data_dir.join(DEFAULT_BACKUP_DIR));
                fs::create_dir_all(&dir)
                    .with_context(|| format!("cannot create the backup directory {}", dir.display()))?;
                Some(BackupSchedule { every, dir, keep: backup_keep })
            }
            None => {
                if raw.backup_dir.is_some() || raw.backup_keep.is_some() {
                    tracing::warn!("--backup-dir and --backup-keep do nothing without --backup-every");
                }
                None
            }
        };

        let database_url = match raw.database_url.filter(|url| !url.trim().is_empty()) {
            Some(url) => url,
            None => sqlite_url(&data_dir.join(DEFAULT_DB_FILE)),
        };

        let secret = match raw.session_secret.filter(|s| !s.is_empty()) {
            Some(secret) if secret.len() < MIN_SECRET_LEN => {
                bail!("SESSION_SECRET must be at least {MIN_SECRET_LEN} bytes long")
            }
            Some(secret) => Secret(secret.into_bytes()),
            None => load_or_create_secret(&data_dir.join(SECRET_FILE))?,
        };

        let secure_cookies = match raw.public_url.as_deref().map(str::trim) {
            None | Some("") => false,
            Some(url) if url.starts_with("https://") => true,
            Some(url) if url.starts_with("http://") => false,
            Some(url) => bail!("QUIRE_PUBLIC_URL must start with http:// or https://, got {url:?}"),
        };

        let public_url = raw
            .public_url
            .as_deref()
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty());
        let hash_concurrency = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mail = match raw.smtp_url.as_deref().map(str::trim).filter(|url| !url.is_empty()) {
            Some(url) => {
                Some(crate::mail::MailSettings::parse(url, raw.smtp_from.as_deref(), public_url.as_deref())?)
            }
            None => None,
        };

        let oidc = crate::auth::oidc::OidcSettings::parse(&raw.oidc, public_url.as_deref())?;
        let ldap = crate::auth::ldap::LdapSettings::parse(&raw.ldap)?;
        let password_login = raw.password_login.unwrap_or(true);
        if !password_login && oidc.is_none() {
            bail!(
                "--password-login=false (QUIRE_PASSWORD_LOGIN) hides the only way in: it needs single \
                 sign-on (--oidc-issuer)"
            );
        }

        Ok(Self {
            bind,
            data_dir,
            avatar_dir,
            database_url,
            secret,
            secure_cookies,
            public_url,
            hash_concurrency,
            limits: raw.limits.unwrap_or_default(),
            connections,
            image_sources,
            metrics_bind: raw.metrics_bind,
            cache_bytes,
            backups,
            trusted_proxies: raw.trusted_proxies.unwrap_or_default(),
            mail,
            oidc,
            ldap,
            password_login,
            max_upload,
            storage_quota: raw.storage_quota,
        })
    }
}

/// The `sqlite://` URL of a database file, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// Reads the secret kept in the data dir, or generates one and keeps it with 0600 permissions.
fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    match fs::read(path) {
        Ok(bytes) if bytes.len() >= MIN_SECRET_LEN => return Ok(Secret(bytes)),
        Ok(_) => bail!(
            "the secret file {} is shorter than {MIN_SECRET_LEN} bytes; delete it to generate a new one",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read the secret {}", path.display()));
        }
    }
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the operating system gave no random bytes")?;
    let encoded = hex::encode(bytes);

    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write the secret {}", path.display()))?;
            Ok(Secret(encoded.into_bytes()))
        }
        // Another process sharing the data dir created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(Secret(fs::read(path).with_context(|| format!("cannot read the secret {}", path.display()))?))
        }
        Err(err) => Err(err).with_context(|| format!("cannot create the secret {}", path.display())),
    }
}

/// A database URL with its password replaced, fit for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_the_password_but_keeps_the_rest() {
        assert_eq!(
            redact_url("postgres://quire:s3cret@db.example:5432/wiki?sslmode=require"),
            "postgres://quire:***@db.example:5432/wiki?sslmode=require"
        );
        assert_eq!(redact_url("mysql://root@localhost/test"), "mysql://root@localhost/test");
        assert_eq!(redact_url("sqlite://data/quire.db?mode=rwc"), "sqlite://data/quire.db?mode=rwc");
        assert_eq!(redact_url("mysql://u:p%40ss@h/db"), "mysql://u:***@h/db");
    }

    #[test]
    fn image_hosts_become_https_sources_and_bad_entries_are_refused_by_name() {
        assert_eq!(parse_image_hosts("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_image_hosts("images.example.com, *.Wikimedia.org  http://cdn.example.net:8080/").unwrap(),
            ["https://images.example.com", "https://*.wikimedia.org", "http://cdn.example.net:8080"]
        );
        assert_eq!(parse_image_hosts("*").unwrap(), ["https:"]);
        assert_eq!(parse_image_hosts("a.example,a.example").unwrap(), ["https://a.example"]);
        for bad in [
            "evil.example;script-src",
            "'unsafe-inline'",
            "https://a.example/path",
            "ftp://a.example",
            "*.",
            "a..b",
            "-a.example",
            "a.example:0",
            "a.example:99999",
            "a.example:",
            "*.*.example",
            "data:",
            "exämple.com",
            "*example.com",
        ] {
            let err = parse_image_hosts(&format!("ok.example, {bad}")).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
            assert!(err.contains("QUIRE_IMAGE_HOSTS"), "{err}");
        }
    }

    #[test]
    fn backup_intervals_are_positive_hours_of_at_least_a_second() {
        assert_eq!(parse_hours("24").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_hours(" 0.5 ").unwrap(), Duration::from_secs(1_800));
        assert_eq!(parse_hours("0.001").unwrap(), Duration::from_millis(3_600));
        for (bad, says) in [
            ("0", "above 0"),
            ("-1", "above 0"),
            ("nan", "above 0"),
            ("inf", "above 0"),
            ("", "is not a number of hours"),
            ("daily", "is not a number of hours"),
            ("1h", "is not a number of hours"),
            ("0.0001", "at least 1 second"),
            ("1e300", "too long"),
        ] {
            let err = parse_hours(bad).unwrap_err();
            assert!(err.contains(says) && err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn connection_limits_refuse_zero_and_stay_below_the_open_file_limit() {
        let limits = ConnectionLimits::default();
        assert_eq!(limits.checked(None).unwrap().max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(limits.checked(Some(256)).unwrap().max_connections, 192);
        assert_eq!(limits.checked(Some(1_048_576)).unwrap().max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(limits.checked(Some(10)).unwrap().max_connections, 1);
        let zero = Duration::ZERO;
        assert!(ConnectionLimits { header_timeout: zero, ..limits }.checked(None).is_err());
        assert!(ConnectionLimits { body_timeout: zero, ..limits }.checked(None).is_err());
        assert!(ConnectionLimits { max_connections: 0, ..limits }.checked(None).is_err());
        let no_keep_alive = ConnectionLimits { keep_alive_timeout: zero, ..limits };
        assert_eq!(no_keep_alive.checked(None).unwrap(), no_keep_alive);
    }

    #[test]
    fn the_generated_secret_is_kept_with_owner_only_permissions_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let first = load_or_create_secret(&path).unwrap();
        let second = load_or_create_secret(&path).unwrap();
        assert_eq!(first.expose(), second.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}

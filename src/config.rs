//! Settings: where Quire listens, where it keeps its state, and the secret it signs with.
//!
//! Values come from flags, the environment or a `.env` file (clap reads the first two; `main` loads
//! `.env` before parsing). Everything that has to exist on disk (the data dir, the persisted secret)
//! is prepared here, once, before the application is built.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
            .finish_non_exhaustive()
    }
}

/// Secret bytes that never show up in `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
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
}

pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
pub const DEFAULT_DATA_DIR: &str = "data";

impl Settings {
    /// Resolves defaults, creates the data dir and loads (or generates) the secret.
    pub fn resolve(raw: RawSettings) -> anyhow::Result<Self> {
        let bind = raw.bind.unwrap_or_else(|| DEFAULT_BIND.parse().expect("the default bind address parses"));
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        let avatar_dir = raw.avatar_dir.unwrap_or_else(|| data_dir.join("avatars"));
        fs::create_dir_all(&avatar_dir)
            .with_context(|| format!("cannot create the avatar directory {}", avatar_dir.display()))?;

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

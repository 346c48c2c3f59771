//! The command line: `quire serve` (the default), `quire migrate`, `quire user …`,
//! `quire import-flask`, `quire backup`, `quire restore`, `quire copy-database`, `quire export`. Every command
//! works on whichever database `DATABASE_URL` names.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::access::{Role, SettingKey};
use crate::config::{RawSettings, Settings};
use crate::db::Db;
use crate::models::throttle::Limit;

#[derive(Debug, Parser)]
#[command(
    name = "quire",
    version,
    about = "A wiki server: one binary, SQLite by default, PostgreSQL or MySQL by URL"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the wiki (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(StateArgs),
    /// Manage members.
    User {
        #[command(subcommand)]
        command: UserCommand,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Read or change the wiki's settings (read_access, registration), shared by every instance.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Import a database made by the seed's Flask app, with its avatar files.
    ImportFlask {
        /// The Flask app's SQLite database (opened read-only).
        #[arg(long)]
        db: PathBuf,
        /// The Flask app's avatar directory (uploads/avatars).
        #[arg(long)]
        uploads: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Write one archive of the whole wiki (every table and the avatar files) while it serves.
    Backup {
        /// The archive to write (a zip; see docs/backup-format.md).
        #[arg(long)]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Restore an archive made by `quire backup` into an empty database of any backend.
    Restore {
        /// The archive made by `quire backup`.
        file: PathBuf,
        /// Erase a database that is not empty (every member, page and setting) and restore over it.
        #[arg(long)]
        force: bool,
        /// Keep the archive's sessions, so members stay logged in (they are dropped otherwise).
        #[arg(long)]
        keep_sessions: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Export every page as Markdown (with front matter) and as static HTML, in one zip.
    Export {
        /// The zip to write.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Copy the whole wiki from DATABASE_URL to another database (SQLite to PostgreSQL, …).
    CopyDatabase {
        /// The database to copy into: sqlite://PATH, postgres://… or mysql://…
        #[arg(long)]
        to: String,
        /// Erase a target that is not empty and copy over it.
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// List every member with their role and status.
    List,
    /// Add a member; the password is asked for on a terminal, or read from stdin.
    Add {
        name: String,
        /// admin, editor or reader.
        #[arg(long, default_value = "editor", value_parser = parse_role)]
        role: Role,
    },
    /// Set a member's password (asked for, or read from stdin) and end their sessions.
    Passwd { name: String },
    /// Turn a member's two-factor sign-in off (they lost their device and recovery codes) and end their sessions.
    #[command(name = "reset-2fa")]
    Reset2fa { name: String },
    /// Delete a member; their pages stay, with no author. The last admin cannot be deleted.
    Delete { name: String },
    /// Make a member an admin (the same as `role NAME admin`).
    Promote { name: String },
    /// Set a member's role: admin, editor or reader.
    Role {
        name: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Block a member: their sessions end at once and they cannot log in.
    Block { name: String },
    /// Let a blocked member log in again.
    Unblock { name: String },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Print every setting as `key = value`.
    List,
    /// Print one setting's value.
    Get { key: String },
    /// Change one setting; it holds at the next request on every instance.
    Set { key: String, value: String },
}

fn parse_role(raw: &str) -> Result<Role, String> {
    Role::parse(raw).map_err(|e| e.to_string())
}

/// Where the state lives: shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct StateArgs {
    /// Directory for all state: the SQLite database, avatars and the generated secret.
    #[arg(long, global = true, env = "QUIRE_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Database URL: sqlite://PATH, postgres://… or mysql://… [default: sqlite://DATA_DIR/quire.db]
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for avatar files; give every instance the same one. [default: DATA_DIR/avatars]
    #[arg(long, global = true, env = "QUIRE_AVATAR_DIR")]
    pub avatar_dir: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "QUIRE_BIND", default_value = crate::config::DEFAULT_BIND)]
    pub bind: SocketAddr,
    #[command(flatten)]
    pub state: StateArgs,
    /// Secret for CSRF tokens and signed cookies, at least 32 bytes. [default: generated once and kept in DATA_DIR/secret, mode 0600]
    #[arg(long, env = "SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// The URL people reach the wiki at; when it is https, cookies are marked Secure.
    #[arg(long, env = "QUIRE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Failed logins allowed per account and client address, as COUNT/SECONDS (0/… turns it off).
    #[arg(long, env = "QUIRE_LOGIN_LIMIT", default_value = crate::config::DEFAULT_LOGIN_LIMIT, value_parser = Limit::parse)]
    pub login_limit: Limit,
    /// Failed logins allowed per account from all addresses together, as COUNT/SECONDS.
    #[arg(long, env = "QUIRE_ACCOUNT_LOGIN_LIMIT", default_value = crate::config::DEFAULT_ACCOUNT_LOGIN_LIMIT, value_parser = Limit::parse)]
    pub account_login_limit: Limit,
    /// Failed logins allowed per client address whatever the username, as COUNT/SECONDS.
    #[arg(long, env = "QUIRE_ADDRESS_LOGIN_LIMIT", default_value = crate::config::DEFAULT_ADDRESS_LOGIN_LIMIT, value_parser = Limit::parse)]
    pub address_login_limit: Limit,
    /// Password checks allowed to wait for a hashing slot; past it, 503 with Retry-After.
    #[arg(long, env = "QUIRE_HASH_QUEUE", default_value_t = crate::config::DEFAULT_HASH_QUEUE)]
    pub hash_queue: usize,
    /// Registrations allowed per client address, as COUNT/SECONDS.
    #[arg(long, env = "QUIRE_REGISTER_LIMIT", default_value = crate::config::DEFAULT_REGISTER_LIMIT, value_parser = Limit::parse)]
    pub register_limit: Limit,
    /// Seconds a client has to send a request's head (from connecting, or from the first byte of its next request).
    #[arg(long, env = "QUIRE_HEADER_TIMEOUT", value_name = "SECONDS", default_value_t = crate::config::DEFAULT_HEADER_TIMEOUT_SECS)]
    pub header_timeout: u64,
    /// Seconds an idle kept-alive connection stays open after a response (0 turns keep-alive off).
    #[arg(long, env = "QUIRE_KEEP_ALIVE_TIMEOUT", value_name = "SECONDS", default_value_t = crate::config::DEFAULT_KEEP_ALIVE_TIMEOUT_SECS)]
    pub keep_alive_timeout: u64,
    /// Seconds a request body has to arrive whole after its head (then 408).
    #[arg(long, env = "QUIRE_BODY_TIMEOUT", value_name = "SECONDS", default_value_t = crate::config::DEFAULT_BODY_TIMEOUT_SECS)]
    pub body_timeout: u64,
    /// Open connections at most; past it the longest-idle one is closed. [default: 1024, or the open-file limit minus 64 when lower]
    #[arg(long, env = "QUIRE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Hosts pages may show images from, comma-separated (images.example.com, *.example.org, https://cdn.example.net:8443, or * for any https host). [default: none, this site only]
    #[arg(long, env = "QUIRE_IMAGE_HOSTS", value_name = "HOSTS")]
    pub image_hosts: Option<String>,
    /// Serve /metrics and /healthz on a listener of their own at this address (then /metrics is not on the main port). [default: /metrics on the main port, for loopback clients only]
    #[arg(long, env = "QUIRE_METRICS_BIND", value_name = "ADDR:PORT")]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// MiB of memory for the page-view cache (rendered pages kept between requests); 0 turns it off.
    #[arg(long, env = "QUIRE_CACHE_SIZE", value_name = "MIB", default_value_t = crate::cache::DEFAULT_SIZE_MIB)]
    pub cache_size: u64,
    /// Make a backup every HOURS (fractions allowed: 0.5 is every half hour), counted from 00:00 UTC; one instance makes each even when several run. [default: no scheduled backups]
    #[arg(long, env = "QUIRE_BACKUP_EVERY", value_name = "HOURS", value_parser = crate::config::parse_hours)]
    pub backup_every: Option<Duration>,
    /// Where scheduled backups are written; give every instance the same one. [default: DATA_DIR/backups]
    #[arg(long, env = "QUIRE_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Reverse proxies whose Forwarded / X-Forwarded-For / X-Forwarded-Proto headers are believed, as addresses and CIDR blocks, comma-separated (10.0.0.0/8, 127.0.0.1). [default: none: those headers are ignored]
    #[arg(long, env = "QUIRE_TRUSTED_PROXIES", value_name = "CIDR,...", value_parser = crate::proxy::TrustedProxies::parse)]
    pub trusted_proxies: Option<crate::proxy::TrustedProxies>,
    /// The SMTP relay for password-recovery, address-verification and invitation mails: smtp://host:25 (plain, a local relay), smtp://user:pass@host:587?tls=required (STARTTLS) or smtps://user:pass@host:465. Needs --smtp-from and --public-url. [default: none: no mail; members ask an admin]
    #[arg(long, env = "QUIRE_SMTP_URL", value_name = "URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of Quire's mails, like "Wiki <wiki@example.org>".
    #[arg(long, env = "QUIRE_SMTP_FROM", value_name = "ADDRESS")]
    pub smtp_from: Option<String>,
    /// The OpenID Connect issuer for single sign-on, like https://id.example.org/realms/wiki (discovery is read from ISSUER/.well-known/openid-configuration). Needs --oidc-client-id and --public-url; register PUBLIC_URL/login/oidc/callback at the provider. [default: none: no single sign-on]
    #[arg(long, env = "QUIRE_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// This wiki's client id at the OpenID provider.
    #[arg(long, env = "QUIRE_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// This wiki's client secret at the OpenID provider (sent with HTTP Basic authentication). [default: none: a public client, PKCE only]
    #[arg(long, env = "QUIRE_OIDC_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// The provider's name on the login page's button: "Sign in with NAME". [default: single sign-on]
    #[arg(long, env = "QUIRE_OIDC_NAME", value_name = "NAME")]
    pub oidc_name: Option<String>,
    /// The ID-token claim that lists a member's groups (read for --oidc-admin-group; Quire has no groups of its own yet). [default: groups]
    #[arg(long, env = "QUIRE_OIDC_GROUPS_CLAIM", value_name = "CLAIM")]
    pub oidc_groups_claim: Option<String>,
    /// Members in this group (in the groups claim) are admins, set at each sign-in; leaving it takes admin away (except from the last admin). [default: none: roles are Quire's own]
    #[arg(long, env = "QUIRE_OIDC_ADMIN_GROUP", value_name = "GROUP")]
    pub oidc_admin_group: Option<String>,
    /// Offer the username and password form on /login (and registration, password recovery); false leaves single sign-on as the only way in (needs --oidc-issuer).
    #[arg(long, env = "QUIRE_PASSWORD_LOGIN", value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub password_login: bool,
    /// The LDAP directory members sign in with, by their directory password on the login form: ldap://host:389 or ldaps://host:636. [default: none: no directory]
    #[arg(long, env = "QUIRE_LDAP_URL", value_name = "URL")]
    pub ldap_url: Option<String>,
    /// The DN a member binds as, with {username} (escaped) in it: "uid={username},ou=people,dc=example,dc=org". Either this or --ldap-base-dn.
    #[arg(long, env = "QUIRE_LDAP_BIND_DN_TEMPLATE", value_name = "DN")]
    pub ldap_bind_dn_template: Option<String>,
    /// Search-then-bind: where members' entries are searched for (the whole subtree).
    #[arg(long, env = "QUIRE_LDAP_BASE_DN", value_name = "DN")]
    pub ldap_base_dn: Option<String>,
    /// Search-then-bind: the filter that finds a member's entry, with {username} (escaped) in it. [default: (uid={username})]
    #[arg(long, env = "QUIRE_LDAP_USER_FILTER", value_name = "FILTER")]
    pub ldap_user_filter: Option<String>,
    /// Search-then-bind: the service account that searches. [default: none: an anonymous search]
    #[arg(long, env = "QUIRE_LDAP_BIND_DN", value_name = "DN")]
    pub ldap_bind_dn: Option<String>,
    /// Search-then-bind: the service account's password.
    #[arg(long, env = "QUIRE_LDAP_BIND_PASSWORD", value_name = "PASSWORD", hide_env_values = true)]
    pub ldap_bind_password: Option<String>,
    /// Upgrade an ldap:// connection with StartTLS before binding.
    #[arg(long, env = "QUIRE_LDAP_STARTTLS", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ldap_starttls: bool,
    /// Trust only the certificates in this PEM file for the directory's TLS. [default: the system's roots]
    #[arg(long, env = "QUIRE_LDAP_CA_FILE", value_name = "FILE")]
    pub ldap_ca_file: Option<PathBuf>,
    /// Do not check the directory's certificate. For tests only: anyone on the path can read the passwords.
    #[arg(long, env = "QUIRE_LDAP_INSECURE_SKIP_VERIFY", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ldap_insecure_skip_verify: bool,
    /// The attribute of a member's entry that holds their email address (kept as verified at their first sign-in). [default: mail]
    #[arg(long, env = "QUIRE_LDAP_EMAIL_ATTRIBUTE", value_name = "ATTRIBUTE")]
    pub ldap_email_attribute: Option<String>,
    /// Scheduled backups kept; older quire-backup-*.zip files in the backup dir are removed (no other file is). [default: 7]
    #[arg(long, env = "QUIRE_BACKUP_KEEP", value_name = "N")]
    pub backup_keep: Option<usize>,
    /// The largest file a member may attach to a page, like 50MiB, 2GiB or 1048576 (bytes); larger uploads get 413 and nothing is stored.
    #[arg(long, env = "QUIRE_MAX_UPLOAD", value_name = "SIZE", default_value = "50MiB", value_parser = crate::files::parse_size)]
    pub max_upload: u64,
    /// The most all stored files (each content counted once) may take together, like 10GiB; shown on /admin. [default: no quota]
    #[arg(long, env = "QUIRE_STORAGE_QUOTA", value_name = "SIZE", value_parser = crate::files::parse_size)]
    pub storage_quota: Option<u64>,
}

impl StateArgs {
    fn raw(&self) -> RawSettings {
        RawSettings {
            data_dir: Some(self.data_dir.clone()),
            database_url: self.database_url.clone(),
            avatar_dir: self.avatar_dir.clone(),
            ..RawSettings::default()
        }
    }
}

impl ServeArgs {
    pub fn settings(&self) -> anyhow::Result<Settings> {
        Settings::resolve(RawSettings {
            bind: Some(self.bind),
            session_secret: self.session_secret.clone(),
            public_url: self.public_url.clone(),
            limits: Some(crate::config::Limits {
                login: self.login_limit,
                account_login: self.account_login_limit,
                address_login: self.address_login_limit,
                register: self.register_limit,
                hash_queue: self.hash_queue,
            }),
            connections: Some(crate::config::ConnectionLimits {
                header_timeout: Duration::from_secs(self.header_timeout),
                keep_alive_timeout: Duration::from_secs(self.keep_alive_timeout),
                body_timeout: Duration::from_secs(self.body_timeout),
                max_connections: self.max_connections.unwrap_or(crate::config::DEFAULT_MAX_CONNECTIONS),
            }),
            image_hosts: self.image_hosts.clone(),
            metrics_bind: self.metrics_bind,
            cache_mib: Some(self.cache_size),
            backup_every: self.backup_every,
            backup_dir: self.backup_dir.clone(),
            backup_keep: self.backup_keep,
            trusted_proxies: self.trusted_proxies.clone(),
            smtp_url: self.smtp_url.clone(),
            smtp_from: self.smtp_from.clone(),
            oidc: crate::auth::oidc::RawOidc {
                issuer: self.oidc_issuer.clone(),
                client_id: self.oidc_client_id.clone(),
                client_secret: self.oidc_client_secret.clone(),
                name: self.oidc_name.clone(),
                groups_claim: self.oidc_groups_claim.clone(),
                admin_group: self.oidc_admin_group.clone(),
            },
            ldap: crate::auth::ldap::RawLdap {
                url: self.ldap_url.clone(),
                bind_dn_template: self.ldap_bind_dn_template.clone(),
                bind_dn: self.ldap_bind_dn.clone(),
                bind_password: self.ldap_bind_password.clone(),
                base_dn: self.ldap_base_dn.clone(),
                user_filter: self.ldap_user_filter.clone(),
                starttls: self.ldap_starttls,
                ca_file: self.ldap_ca_file.clone(),
                insecure_skip_verify: self.ldap_insecure_skip_verify,
                email_attribute: self.ldap_email_attribute.clone(),
            },
            password_login: Some(self.password_login),
            max_upload: Some(self.max_upload),
            storage_quota: self.storage_quota,
            ..self.state.raw()
        })
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let args = Cli::parse_from(["quire", "serve"]).command;
            let Some(Command::Serve(args)) = args else { unreachable!("serve parses") };
            serve(*args).await
        }
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Migrate(args)) => {
            let (settings, _db) = open(&args).await?;
            println!("migrations applied to {}", crate::config::redact_url(&settings.database_url));
            Ok(())
        }
        Some(Command::User { command, state }) => {
            let (settings, db) = open(&state).await?;
            let mutates = !matches!(command, UserCommand::List);
            user_command(&settings, &db, command).await?;
            if mutates {
                changed(&db).await;
            }
            Ok(())
        }
        Some(Command::Settings { command, state }) => {
            let (_settings, db) = open(&state).await?;
            let set = matches!(command, SettingsCommand::Set { .. });
            settings_command(&db, command).await?;
            if set {
                changed(&db).await;
                // Who may read changed: it holds at the next request on every running instance.
                tokio::time::sleep(crate::cache::SETTLE).await;
            }
            Ok(())
        }
        Some(Command::ImportFlask { db: source, uploads, state }) => {
            let (settings, db) = open(&state).await?;
            let progress = crate::cli::TermProgress::new();
            let started = std::time::Instant::now();
            let report =
                crate::import::import_flask(&db, &settings.avatar_dir, &source, &uploads, &progress).await?;
            changed(&db).await;
            print!("{}", report.summary());
            println!("done in {:.2} s", started.elapsed().as_secs_f64());
            Ok(())
        }
        Some(Command::Backup { out, quiet, state }) => {
            let (settings, db) = open(&state).await?;
            let progress = progress_for(quiet, "backing up");
            let report = crate::backup::backup(&db, &settings.avatar_dir, &out, progress.as_ref()).await?;
            if !quiet {
                let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
                println!(
                    "backup written to {}: {} tables, {rows} rows, {} files, {} bytes",
                    out.display(),
                    report.tables.len(),
                    report.files,
                    report.bytes
                );
            }
            Ok(())
        }
        Some(Command::Restore { file, force, keep_sessions, quiet, state }) => {
            // Every check of the archive comes before the database is touched (even migrated).
            let path = file.clone();
            let archive = tokio::task::spawn_blocking(move || crate::backup::read_archive(&path)).await??;
            let (settings, db) = open(&state).await?;
            let shown = crate::config::redact_url(&settings.database_url);
            let progress = progress_for(quiet, "restoring");
            let options = crate::backup::WriteOptions { force, keep_sessions };
            let report = crate::backup::restore(
                &db,
                &shown,
                &settings.avatar_dir,
                &archive,
                options,
                progress.as_ref(),
                &announce,
            )
            .await?;
            changed(&db).await;
            if !quiet {
                print!("{}", report.summary());
                println!("restored {} (taken {}) into {shown}", file.display(), archive.manifest.created_at);
            }
            Ok(())
        }
        Some(Command::Export { out, state }) => {
            let (_settings, db) = open(&state).await?;
            let (pages, bytes) =
                crate::export::export_to(&db, crate::export::Reader::Everything, &out).await?;
            println!("export written to {} ({pages} pages, {bytes} bytes)", out.display());
            Ok(())
        }
        Some(Command::CopyDatabase { to, force, quiet, state }) => {
            let (settings, source) = open(&state).await?;
            if to.trim() == settings.database_url.trim() {
                return Err(Refused("--to names the database the wiki is in already".into()).into());
            }
            let shown = crate::config::redact_url(&to);
            let target = Db::connect(&to).await?;
            crate::app::migrate(&target).await?;
            let progress = progress_for(quiet, "copying");
            let report =
                crate::backup::copy_database(&source, &target, &shown, force, progress.as_ref(), &announce)
                    .await?;
            changed(&target).await;
            if !quiet {
                print!("{}", report.summary());
                println!(
                    "copied {} into {shown}; avatar files stay in {}",
                    crate::config::redact_url(&settings.database_url),
                    settings.avatar_dir.display()
                );
            }
            Ok(())
        }
    }
}

/// Tells running instances that the wiki may have changed under them (`cache.rs`): what they
/// kept is dropped within moments.
async fn changed(db: &Db) {
    if let Err(err) = crate::models::change::bump(&db.write).await {
        eprintln!("warning: running instances may show the old state for a while: {err}");
    }
}

/// What `--force` is about to erase, on stderr (even with `--quiet`).
fn announce(text: &str) {
    eprintln!("{text}");
}

/// A progress bar on a terminal (a line per stage otherwise), or nothing with `--quiet`.
fn progress_for(quiet: bool, verb: &'static str) -> Box<dyn crate::import::Progress + Sync> {
    if quiet { Box::new(crate::import::Quiet) } else { Box::new(TermProgress::with_verb(verb)) }
}

/// Resolves the settings of a command and opens (and migrates) its database.
async fn open(args: &StateArgs) -> anyhow::Result<(Settings, Db)> {
    let settings = Settings::resolve(args.raw())?;
    let db = Db::connect(&settings.database_url).await?;
    crate::app::migrate(&db).await?;
    Ok((settings, db))
}

/// A password from a prompt without echo on a terminal, or the first line of stdin otherwise.
fn read_password(prompt: &str) -> anyhow::Result<crate::domain::Password> {
    use std::io::IsTerminal;
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the passwords do not match");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    crate::domain::Password::parse(raw).map_err(|e| anyhow::anyhow!(e))
}

/// What a refused command says: printed on stderr with a non-zero exit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

async fn settings_command(db: &Db, command: SettingsCommand) -> anyhow::Result<()> {
    use crate::models::{audit::Actor, setting};
    let current = setting::load(&db.read).await?;
    match command {
        SettingsCommand::List => {
            for key in SettingKey::ALL {
                println!("{} = {}", key.as_str(), key.value_in(&current));
            }
        }
        SettingsCommand::Get { key } => {
            let key = SettingKey::parse(&key).map_err(|e| Refused(e.to_string()))?;
            println!("{}", key.value_in(&current));
        }
        SettingsCommand::Set { key, value } => {
            let key = SettingKey::parse(&key).map_err(|e| Refused(e.to_string()))?;
            let value = key.check(&value).map_err(|e| Refused(e.to_string()))?;
            setting::set_many(&db.write, &[(key, value)], &Actor::CommandLine).await?;
            println!("{} = {value}", key.as_str());
        }
    }
    Ok(())
}

/// A member's name from the command line, or the refusal.
fn no_such_member(name: &str) -> anyhow::Error {
    Refused(format!("there is no member {name:?}")).into()
}

async fn user_command(settings: &Settings, db: &Db, command: UserCommand) -> anyhow::Result<()> {
    use crate::models::audit::Actor;
    use crate::models::user::{AdminChange, AdminChangeError};
    use crate::models::{session, user};
    let change = |name: String, change: AdminChange| async move {
        match user::change_by(&db.write, &name, change, &Actor::CommandLine).await {
            Ok(before) => Ok(before),
            Err(AdminChangeError::NoSuchMember) => Err(no_such_member(&name)),
            Err(AdminChangeError::LastAdmin) => Err(Refused(AdminChangeError::LastAdmin.to_string()).into()),
            Err(AdminChangeError::Db(err)) => Err(anyhow::Error::from(err)),
        }
    };
    match command {
        UserCommand::List => {
            let members = user::list_with_page_counts(&db.read).await?;
            println!(
                "{:>6}  {:<50}  {:<6}  {:<7}  {:>6}  avatar",
                "id", "username", "role", "status", "pages"
            );
            for (member, pages) in &members {
                println!(
                    "{:>6}  {:<50}  {:<6}  {:<7}  {:>6}  {}",
                    member.id,
                    member.username,
                    member.role().as_str(),
                    if member.is_blocked() { "blocked" } else { "active" },
                    pages,
                    member.avatar.as_deref().unwrap_or("-")
                );
            }
            println!("{} members", members.len());
        }
        UserCommand::Add { name, role } => {
            let username = crate::domain::Username::parse(&name).map_err(|e| Refused(e.to_string()))?;
            let password = read_password("Password: ")?;
            let hash = tokio::task::spawn_blocking(move || crate::auth::password::hash_blocking(&password))
                .await??;
            match user::add_by(&db.write, &username, &hash, role, &Actor::CommandLine).await {
                Ok(created) => println!("added {:?} (id {}) as {role}", created.username, created.id),
                Err(user::CreateUserError::UsernameTaken) => {
                    return Err(Refused(format!("the username {name:?} already exists")).into());
                }
                Err(user::CreateUserError::LooksLikeAnother) => {
                    return Err(Refused(format!(
                        "the username {name:?} looks too much like an existing member's name"
                    ))
                    .into());
                }
                Err(user::CreateUserError::Db(err)) => return Err(err.into()),
            }
        }
        UserCommand::Passwd { name } => {
            let member =
                user::find_by_username(&db.read, &name).await?.ok_or_else(|| no_such_member(&name))?;
            let password = read_password("New password: ")?;
            let hash = tokio::task::spawn_blocking(move || crate::auth::password::hash_blocking(&password))
                .await??;
            user::set_password_hash(&db.write, member.id, &hash).await?;
            crate::models::email::void_for_user(&db.write, member.id, crate::models::email::Purpose::Reset)
                .await?;
            let ended = session::delete_for_user(&db.write, member.id).await?;
            println!("password of {name:?} changed; {ended} sessions ended");
        }
        UserCommand::Reset2fa { name } => {
            let member =
                user::find_by_username(&db.read, &name).await?.ok_or_else(|| no_such_member(&name))?;
            crate::models::two_factor::disable(&db.write, member.id).await?;
            let ended = session::delete_for_user(&db.write, member.id).await?;
            println!("two-factor sign-in of {name:?} turned off; {ended} sessions ended");
        }
        UserCommand::Delete { name } => {
            let deleted = change(name.clone(), AdminChange::Delete).await?;
            if let Some(avatar) = &deleted.avatar {
                crate::uploads::remove(&settings.avatar_dir, avatar).await;
            }
            println!("deleted {name:?}; their pages remain, with no author");
        }
        UserCommand::Promote { name } => {
            change(name.clone(), AdminChange::Role(Role::Admin)).await?;
            println!("{name:?} is now an admin");
        }
        UserCommand::Role { name, role } => {
            let before = change(name.clone(), AdminChange::Role(role)).await?;
            println!("{name:?} is now {role} (was {})", before.role());
        }
        UserCommand::Block { name } => {
            change(name.clone(), AdminChange::Block).await?;
            println!("{name:?} is blocked; their sessions have ended");
        }
        UserCommand::Unblock { name } => {
            change(name.clone(), AdminChange::Unblock).await?;
            println!("{name:?} may log in again");
        }
    }
    Ok(())
}

/// Import progress: a bar on a terminal, a line per stage otherwise.
pub struct TermProgress {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
    terminal: bool,
    verb: &'static str,
}

impl TermProgress {
    pub fn new() -> Self {
        Self::with_verb("importing")
    }

    /// Progress whose plain lines (off a terminal) say `VERB N STAGE`.
    pub fn with_verb(verb: &'static str) -> Self {
        use std::io::IsTerminal;
        Self { bar: std::sync::Mutex::new(None), terminal: std::io::stderr().is_terminal(), verb }
    }
}

impl Default for TermProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::import::Progress for TermProgress {
    fn start(&self, stage: &str, total: u64) {
        if self.terminal {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(stage.to_owned());
            *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        } else {
            eprintln!("{} {total} {stage}", self.verb);
        }
    }

    fn advance(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish();
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    tracing::info!(settings = ?settings, "starting");
    let app = crate::Application::build(settings).await?;
    println!("Quire is serving the wiki at http://{}:{}", args.bind.ip(), app.port());
    app.run_until_stopped().await
}

//! The command line: `quire serve` (the default), `quire migrate`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{RawSettings, Settings};
use crate::db::Db;

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
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(StateArgs),
}

/// Where the state lives: shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct StateArgs {
    /// Directory for all state: the SQLite database, avatars and the generated secret.
    #[arg(long, env = "QUIRE_DATA_DIR", default_value = crate::config::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Database URL: sqlite://PATH, postgres://… or mysql://… [default: sqlite://DATA_DIR/quire.db]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for avatar files; give every instance the same one. [default: DATA_DIR/avatars]
    #[arg(long, env = "QUIRE_AVATAR_DIR")]
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
            serve(args).await
        }
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Migrate(args)) => {
            let settings = Settings::resolve(args.raw())?;
            let db = Db::connect(&settings.database_url).await?;
            crate::app::migrate(&db).await?;
            println!("migrations applied to {}", crate::config::redact_url(&settings.database_url));
            Ok(())
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

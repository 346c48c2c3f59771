//! The `quire` binary: parse the command line, set up logging, hand over to the library.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A .env file in the working directory fills in what the environment does not set.
    let _ = dotenvy::dotenv();
    let cli = quire::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match quire::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            // A refusal (a bad value, an unknown member, the last admin) is a usage error.
            if err.downcast_ref::<quire::backup::Damaged>().is_some() {
                // A damaged or foreign archive: refused before anything was written.
                std::process::ExitCode::from(3)
            } else if err.downcast_ref::<quire::cli::Refused>().is_some() {
                std::process::ExitCode::from(2)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

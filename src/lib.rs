//! Quire: a wiki server in one binary.
//!
//! `Application::build(settings)` connects and migrates the database and binds the listener;
//! `run_until_stopped` serves until Ctrl-C or SIGTERM. The binary (`main.rs`) only parses the
//! command line; tests and every subcommand reuse this library.

pub mod access;
pub mod app;
pub mod assets;
pub mod auth;
pub mod backup;
pub mod cache;
pub mod cli;
pub mod config;
pub mod cookies;
pub mod db;
pub mod diff;
pub mod domain;
pub mod error;
pub mod export;
pub mod extract;
pub mod files;
pub mod flash;
pub mod import;
pub mod mail;
pub mod metrics;
pub mod migrations;
pub mod models;
pub mod proxy;
pub mod render;
pub mod routes;
pub mod server;
pub mod shell;
pub mod templates;
pub mod theme;
pub mod uploads;
pub mod urls;
pub mod work;

pub use app::{AppState, Application};
pub use config::{RawSettings, Settings};

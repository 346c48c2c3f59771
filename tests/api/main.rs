//! Integration tests over real HTTP, against SQLite always and against PostgreSQL and MySQL
//! when `QUIRE_TEST_POSTGRES_URL` / `QUIRE_TEST_MYSQL_URL` name a server. Each test gets its own
//! data dir and its own database. One binary, so it links once.

mod helpers;
mod hostile;

mod access_admin;
mod access_audit;
mod access_blocking;
mod access_csrf;
mod access_helpers;
mod access_invites;
mod access_members_only;
mod access_roles;
mod access_settings;

mod accounts;
mod backup;
mod cache;
mod cli;
mod connections;
mod csrf;
mod files;
mod hygiene;
mod ldap;
mod limits;
mod mail;
mod observe;
mod oidc;
mod pages;
mod peers;
mod profile;
mod profile_security;
mod proxies;
mod search;
mod search_corpus;
mod security;
mod sessions;
mod smtp;
mod stall;
mod throttle;
mod two_factor;
mod ui;
mod wiki;

use helpers::Backend;
use libtest_mimic::{Arguments, Trial};

fn main() {
    let args = Arguments::from_args();
    let groups = [
        ("accounts", accounts::tests()),
        ("backup", backup::tests()),
        ("cache", cache::tests()),
        ("cli", cli::tests()),
        ("connections", connections::tests()),
        ("csrf", csrf::tests()),
        ("files", files::tests()),
        ("hygiene", hygiene::tests()),
        ("hostile", hostile::tests()),
        ("ldap", ldap::tests()),
        ("limits", limits::tests()),
        ("mail", mail::tests()),
        ("observe", observe::tests()),
        ("oidc", oidc::tests()),
        ("pages", pages::tests()),
        ("profile", profile::tests()),
        ("profile_security", profile_security::tests()),
        ("proxies", proxies::tests()),
        ("security", security::tests()),
        ("sessions", sessions::tests()),
        ("stall", stall::tests()),
        ("throttle", throttle::tests()),
        ("two_factor", two_factor::tests()),
        ("wiki", wiki::tests()),
        ("ui", ui::tests()),
        ("search", search::tests()),
        ("search_corpus", search_corpus::tests()),
        ("access_settings", access_settings::tests()),
        ("access_members_only", access_members_only::tests()),
        ("access_invites", access_invites::tests()),
        ("access_roles", access_roles::tests()),
        ("access_admin", access_admin::tests()),
        ("access_blocking", access_blocking::tests()),
        ("access_audit", access_audit::tests()),
        ("access_csrf", access_csrf::tests()),
    ];
    for backend in [Backend::Postgres, Backend::MySql] {
        if !backend.available() {
            let var = if backend == Backend::Postgres { helpers::POSTGRES_ENV } else { helpers::MYSQL_ENV };
            eprintln!("note: {var} is not set: the {} runs of the suite are marked ignored", backend.name());
        }
    }
    let mut trials = Vec::new();
    for backend in Backend::ALL {
        for (group, tests) in &groups {
            for (name, test) in tests {
                let test = *test;
                let trial = Trial::test(format!("{}::{group}::{name}", backend.name()), move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(test(backend));
                    Ok(())
                })
                .with_ignored_flag(!backend.available());
                trials.push(trial);
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

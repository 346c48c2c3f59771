//! Scheduled backups (`--backup-every HOURS`): the running server writes an archive into the
//! backup dir once per slot of that length, counted from 00:00 UTC, and keeps the newest
//! `--backup-keep` of them.
//!
//! When several instances serve one database, exactly one makes each slot's backup: each
//! claims the slot in the database (`models::lease`, one conditional UPDATE), and a slot once
//! claimed is not claimed again. The winner renews its lease while it writes; one that dies
//! lets it expire, so the next slot goes ahead without it. The archive is written under a
//! temporary name and renamed once complete; each result is logged and counted in `/metrics`,
//! and a failure leaves the server serving.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

use crate::app::AppState;
use crate::config::BackupSchedule;
use crate::models::lease::{self, Job};
use crate::models::now_ms;

/// How long a claim holds without renewal: an instance that dies mid-backup blocks the next
/// slot at most this long.
const LEASE_TTL_MS: i64 = 2 * 60 * 1000;
/// How often the holder renews its lease while it writes.
const RENEW_EVERY: Duration = Duration::from_secs(30);

const PREFIX: &str = "quire-backup-";
const SUFFIX: &str = ".zip";
const STAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");

/// Starts the scheduler when `--backup-every` is set; the caller aborts it at shutdown.
pub fn spawn(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let schedule = state.settings.backups.clone()?;
    Some(tokio::spawn(run(state.clone(), schedule)))
}

/// The archive name of the slot starting at `start_ms`: `quire-backup-20261203T120000Z.zip`.
pub fn file_name(start_ms: i64) -> String {
    let stamp = time::OffsetDateTime::from_unix_timestamp(start_ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(STAMP).ok())
        .unwrap_or_else(|| start_ms.to_string());
    format!("{PREFIX}{stamp}{SUFFIX}")
}

/// True for the names [`file_name`] makes, and no other: only these are ever removed.
fn is_ours(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_suffix(SUFFIX))
        .is_some_and(|stamp| time::PrimitiveDateTime::parse(stamp, STAMP).is_ok())
}

/// A name for this process in the lease row: random, so two instances never share one.
fn holder_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Unique enough among the instances of one database: the process and the time.
        return format!("{}-{}", std::process::id(), now_ms());
    }
    hex::encode(bytes)
}

async fn run(state: AppState, schedule: BackupSchedule) {
    let holder = holder_id();
    let every_ms = i64::try_from(schedule.every.as_millis()).unwrap_or(i64::MAX).max(1);
    tracing::info!(
        every_hours = schedule.every.as_secs_f64() / 3600.0,
        dir = %schedule.dir.display(),
        keep = schedule.keep,
        "scheduled backups"
    );
    let mut last = i64::MIN;
    loop {
        let now = now_ms();
        let slot = (now.div_euclid(every_ms) + 1).max(last.saturating_add(1));
        let start = slot.saturating_mul(every_ms);
        let wait = u64::try_from(start.saturating_sub(now)).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        last = slot;
        once(&state, &schedule, &holder, slot, start).await;
    }
}

/// Claims the slot and, when this instance won it, makes its backup.
async fn once(state: &AppState, schedule: &BackupSchedule, holder: &str, slot: i64, start: i64) {
    let db = &state.db.write;
    match lease::claim(db, Job::ScheduledBackup, holder, slot, now_ms(), LEASE_TTL_MS).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(slot, "another instance makes this scheduled backup");
            return;
        }
        Err(err) => {
            tracing::error!(error = %err, "scheduled backup failed: the slot cannot be claimed");
            state.metrics.backup_failed();
            return;
        }
    }
    let path = schedule.dir.join(file_name(start));
    let started = Instant::now();
    let renewing = async {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            match lease::renew(db, Job::ScheduledBackup, holder, slot, now_ms(), LEASE_TTL_MS).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(slot, "the scheduled backup's lease expired while it was written")
                }
                Err(err) => tracing::warn!(error = %err, "the scheduled backup's lease cannot be renewed"),
            }
        }
    };
    let written = tokio::select! {
        written = super::backup(&state.db, &state.settings.avatar_dir, &path, &crate::import::Quiet) => written,
        () = renewing => unreachable!("renewing never ends"),
    };
    if let Err(err) = lease::release(db, Job::ScheduledBackup, holder, slot).await {
        tracing::warn!(error = %err, "the scheduled backup's lease cannot be released; it expires on its own");
    }
    match written {
        Ok(report) => {
            let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
            let took = started.elapsed();
            let removed = prune(&schedule.dir, schedule.keep).await;
            tracing::info!(
                path = %path.display(),
                bytes = report.bytes,
                rows,
                files = report.files,
                duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                removed,
                "scheduled backup written"
            );
            state.metrics.backup_succeeded(report.bytes, rows, took);
        }
        Err(err) => {
            tracing::error!(path = %path.display(), error = format!("{err:#}"), "scheduled backup failed");
            state.metrics.backup_failed();
        }
    }
}

/// Removes Quire's own archives in `dir` beyond the newest `keep`; every other file stays.
/// Returns how many were removed.
async fn prune(dir: &Path, keep: usize) -> usize {
    let mut ours: Vec<(String, PathBuf)> = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) => {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot list the backup directory");
            return 0;
        }
    };
    loop {
        match entries.next_entry().await {
            Ok(Some(entry)) => {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_file = entry.file_type().await.is_ok_and(|t| t.is_file());
                if is_file && is_ours(&name) {
                    ours.push((name, entry.path()));
                }
            }
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot list the backup directory");
                return 0;
            }
        }
    }
    // The time stamp in the name sorts as the time does.
    ours.sort_by(|a, b| b.0.cmp(&a.0));
    let mut removed = 0;
    for (_, path) in ours.iter().skip(keep) {
        match tokio::fs::remove_file(path).await {
            Ok(()) => removed += 1,
            Err(err) => tracing::warn!(path = %path.display(), error = %err, "cannot remove an old backup"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_carry_the_slot_time_and_only_they_are_ours() {
        assert_eq!(file_name(1_796_299_200_000), "quire-backup-20261203T120000Z.zip");
        assert!(is_ours("quire-backup-20261203T120000Z.zip"));
        for other in [
            "quire-backup-20261203T120000Z.zip.partial",
            ".quire-backup-20261203T120000Z.zip.partial",
            "quire-backup-latest.zip",
            "quire-backup-20261203T120000Z.tar",
            "my-quire-backup-20261203T120000Z.zip",
            "notes.txt",
        ] {
            assert!(!is_ours(other), "{other}");
        }
    }

    #[tokio::test]
    async fn pruning_keeps_the_newest_archives_and_every_other_file() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..5).map(|i| file_name(1_796_299_200_000 + i * 3_600_000)).collect();
        for name in &names {
            std::fs::write(dir.path().join(name), b"zip").unwrap();
        }
        for other in ["notes.txt", "quire-backup-latest.zip", ".quire-backup-20261203T170000Z.zip.partial"] {
            std::fs::write(dir.path().join(other), b"keep me").unwrap();
        }
        assert_eq!(prune(dir.path(), 2).await, 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".quire-backup-20261203T170000Z.zip.partial",
                "notes.txt",
                names[3].as_str(),
                names[4].as_str(),
                "quire-backup-latest.zip"
            ]
        );
    }
}

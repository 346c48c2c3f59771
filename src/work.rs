//! CPU-heavy work of a request — rendering, sanitizing, highlighting, diffing, merging — off
//! the async workers and bounded.
//!
//! At most one job per core runs at once, on the blocking pool; a request waits for a slot at
//! most [`WAIT`], then gets a 503 with `Retry-After` instead of queueing without end. The slot
//! belongs to the job, not to the request: a client that goes away does not free it before the
//! work ends, so abandoned requests cannot pile more work onto the cores than there are slots.
//! Each job's own cost is bounded by the caps of [`crate::render`] and [`crate::diff`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::error::AppError;

/// How long a request may wait for a slot before it is told to come back.
pub const WAIT: Duration = Duration::from_secs(10);
/// A job taking longer than this is logged: the caps should keep every job well under it.
const SLOW: Duration = Duration::from_secs(2);

/// The bounded pool. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Work {
    slots: Arc<Semaphore>,
    /// What visitors may hold of `slots` (running or waiting for one): one lane fewer than
    /// all, so a flood of anonymous diffs and searches leaves members' saves a lane.
    visitors: Arc<Semaphore>,
    lanes: usize,
    wait: Duration,
    metrics: Option<crate::metrics::Metrics>,
}

impl Work {
    /// `lanes` jobs at once (at least one); requests wait `wait` at most for one.
    pub fn new(lanes: usize, wait: Duration) -> Self {
        let lanes = lanes.max(1);
        let visitors = Arc::new(Semaphore::new(lanes.saturating_sub(1).max(1)));
        Self { slots: Arc::new(Semaphore::new(lanes)), visitors, lanes, wait, metrics: None }
    }

    /// Counts the requests it turns away in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs `job` for anyone (a visitor, say) once a slot is free; `what` names it in the logs.
    pub async fn run<T, F>(&self, what: &'static str, job: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.run_as(what, false, job).await
    }

    /// Runs `job` for a member: the lane visitors cannot take is theirs too.
    pub async fn run_for_member<T, F>(&self, what: &'static str, job: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.run_as(what, true, job).await
    }

    /// Runs `job` on the blocking pool once a slot is free, for a member or for anyone.
    pub async fn run_as<T, F>(&self, what: &'static str, member: bool, job: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let acquire = async {
            let visitor = if member { None } else { Some(self.visitors.clone().acquire_owned().await?) };
            let slot = self.slots.clone().acquire_owned().await?;
            Ok::<_, tokio::sync::AcquireError>((visitor, slot))
        };
        let slot = tokio::time::timeout(self.wait, acquire)
            .await
            .map_err(|_| {
                tracing::warn!(work = what, "no free slot for CPU work: answered 503");
                if let Some(metrics) = &self.metrics {
                    metrics.refused("work");
                }
                AppError::Busy { what: crate::error::BusyWith::Work, retry_after: 5 }
            })?
            .map_err(|_| AppError::Unexpected(anyhow::anyhow!("the work pool is closed")))?;
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let started = Instant::now();
            let out = job();
            let took = started.elapsed();
            if took > SLOW {
                tracing::warn!(work = what, took_ms = took.as_millis() as u64, "slow CPU work");
            }
            out
        });
        handle.await.map_err(|err| AppError::Unexpected(anyhow::anyhow!("{what} failed: {err}")))
    }

    /// Visitor places free right now.
    pub fn visitor_places(&self) -> usize {
        self.visitors.available_permits()
    }

    /// Slots free right now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Jobs running right now.
    pub fn running(&self) -> usize {
        self.lanes.saturating_sub(self.available())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_answers_busy_after_the_wait_and_frees_its_slot_when_the_job_ends() {
        let work = Work::new(1, Duration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let work = work.clone();
            async move { work.run("hold", move || hold.recv().is_ok()).await }
        });
        while work.available() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = work.run("second", || 1).await;
        assert!(matches!(refused, Err(AppError::Busy { .. })), "{refused:?}");
        release.send(()).expect("the job waits");
        assert!(running.await.expect("joins").expect("ran"));
        assert_eq!(work.run("third", || 3).await.expect("a slot again"), 3);
    }

    #[tokio::test]
    async fn visitors_leave_members_a_lane() {
        let work = Work::new(2, Duration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(std::sync::Mutex::new(hold));
        let visitor = tokio::spawn({
            let (work, hold) = (work.clone(), hold.clone());
            async move { work.run("visitor", move || hold.lock().unwrap().recv().is_ok()).await }
        });
        while work.visitor_places() > 0 || work.available() > 1 {
            tokio::task::yield_now().await;
        }
        let second = work.run("another visitor", || 2).await;
        assert!(matches!(second, Err(AppError::Busy { .. })), "visitors hold one lane at most");
        assert_eq!(work.run_for_member("save", || 3).await.expect("the member's lane"), 3);
        release.send(()).unwrap();
        assert!(visitor.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn an_abandoned_request_keeps_its_slot_until_the_job_ends() {
        let work = Work::new(1, Duration::from_millis(50));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let abandoned = tokio::spawn({
            let work = work.clone();
            async move { work.run("abandoned", move || hold.recv().is_ok()).await }
        });
        while work.available() > 0 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(work.available(), 0, "the job still runs and holds its slot");
        release.send(()).expect("the job waits");
        let deadline = Instant::now() + Duration::from_secs(5);
        while work.available() == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(work.available(), 1);
    }
}

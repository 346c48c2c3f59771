//! The argon2 ceiling: how many verifications per second this machine does with Quire's
//! parameters (argon2-cffi's defaults), one thread per core, for a fixed time.
//!
//!     cargo run --release --example bench-argon2 -- SECONDS

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quire::auth::password::{hash_blocking, verify_blocking};
use quire::domain::Password;

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(5), |s| s.parse())?;
    let password = Password::parse("bench-password".into()).map_err(anyhow::Error::msg)?;
    let hash = Arc::new(hash_blocking(&password)?);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (hash, done, password) = (hash.clone(), done.clone(), password.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    assert!(verify_blocking(&password, &hash));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker panicked");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    println!("{rate:.1}");
    Ok(())
}

//! Argon2id hashing and verification, off the async workers and bounded.
//!
//! Parameters are argon2-cffi's defaults (m = 64 MiB, t = 3, p = 4, 16-byte salt, 32-byte
//! hash), so hashes from the seed's Python app verify here and the reverse. Each hash holds
//! 64 MiB for ~100–200 ms of CPU: a semaphore sized to the cores lets a burst of logins queue
//! instead of starving page views or exhausting memory, and the queue itself is bounded: past
//! `queue` waiting requests, [`HashError::Busy`] answers at once (a 503 with `Retry-After`)
//! rather than letting a flood of logins with random names push a real one back by seconds.
//! One client address holds at most half of the places ([`Hasher::share`]), so a flood
//! from one address is refused on its own while other people's logins still find a place; and
//! a few places are kept for logins from a browser that logged in to that account before (its
//! known-device cookie), so a flood from many addresses does not keep the owner out either.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::Password;

/// argon2-cffi's `PasswordHasher()` defaults.
const M_COST_KIB: u32 = 65_536;
const T_COST: u32 = 3;
const P_COST: u32 = 4;
const HASH_LEN: usize = 32;
const SALT_LEN: usize = 16;
/// Refuse stored hashes asking for more memory than this (a corrupted or hostile import).
const MAX_M_COST_KIB: u32 = 4 * M_COST_KIB;

/// A hash of a random password nobody knows, with the same parameters as real ones: verifying
/// an unknown username against it costs what a wrong password costs.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=65536,t=3,p=4$iS/U7Vm1VfM2iu0fgLJu5g$5nceeQohYL43eCUgrXoWEt41RGkcZixBiers67yqy7E";

/// Places kept for logins from a known browser.
const KEPT_PLACES: usize = 4;

/// Who asks for a password check, as far as the queue cares.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The client address (its share of the queue is bounded).
    pub client: &'a str,
    /// A browser that logged in to this account before may take a kept place.
    pub known_device: bool,
}

impl<'a> Asker<'a> {
    pub fn from(client: &'a str) -> Self {
        Self { client, known_device: false }
    }
}

/// Roughly what one hash costs on one core, for the `Retry-After` of a full queue.
const HASH_MS: u64 = 250;

#[derive(Clone, Debug)]
pub struct Hasher {
    /// One per hash that may run at once.
    permits: Lanes,
    /// One per request that may hold or wait for a permit: the running ones and the queue.
    places: Arc<Semaphore>,
    /// Places only logins from a known browser may take, once `places` are all taken.
    kept: Arc<Semaphore>,
    concurrency: usize,
    capacity: usize,
    /// Places held per client address.
    held: Arc<Mutex<HashMap<String, usize>>>,
    share: usize,
}

/// The hashing slots, handed out in order of arrival — except that a login from a known browser
/// goes before everyone who waits without one, so a flood does not make the owner wait for it.
#[derive(Clone, Debug)]
struct Lanes {
    inner: Arc<Mutex<LanesState>>,
}

#[derive(Debug)]
struct LanesState {
    free: usize,
    first: std::collections::VecDeque<tokio::sync::oneshot::Sender<Lane>>,
    others: std::collections::VecDeque<tokio::sync::oneshot::Sender<Lane>>,
}

/// A hashing slot; handed to the next waiter when dropped.
#[derive(Debug)]
struct Lane {
    lanes: Option<Lanes>,
}

impl Lanes {
    fn new(slots: usize) -> Self {
        let state = LanesState { free: slots, first: Default::default(), others: Default::default() };
        Self { inner: Arc::new(Mutex::new(state)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LanesState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn acquire(&self, first: bool) -> Lane {
        let waiting = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                return Lane { lanes: Some(self.clone()) };
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            if first {
                state.first.push_back(tx)
            } else {
                state.others.push_back(tx)
            }
            rx
        };
        match waiting.await {
            Ok(lane) => lane,
            // Unreachable while a `Lanes` lives (a sender is only dropped by handing on), but a
            // slot must never be invented: wait again.
            Err(_) => Box::pin(self.acquire(first)).await,
        }
    }

    /// Hands a freed slot to the next live waiter, or back to the pool.
    fn release(&self) {
        let mut state = self.lock();
        loop {
            let next = state.first.pop_front().or_else(|| state.others.pop_front());
            let Some(next) = next else {
                state.free += 1;
                return;
            };
            // A waiter whose request went away has dropped its receiver: try the next one.
            match next.send(Lane { lanes: Some(self.clone()) }) {
                Ok(()) => return,
                Err(mut lane) => lane.lanes = None,
            }
        }
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        if let Some(lanes) = self.lanes.take() {
            lanes.release();
        }
    }
}

/// One client's hold on a place; given back when dropped.
struct Held {
    held: Arc<Mutex<HashMap<String, usize>>>,
    client: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = held.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.client);
            }
        }
    }
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every running and waiting place is taken: come back in `retry_after` seconds.
    #[error("the password queue is full")]
    Busy { retry_after: u64 },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, Some(HASH_LEN)).expect("argon2-cffi's parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Hasher {
    /// `concurrency` hashes at once, and at most `queue` more requests waiting for one.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        let capacity = concurrency.saturating_add(queue);
        Self {
            permits: Lanes::new(concurrency),
            places: Arc::new(Semaphore::new(capacity)),
            kept: Arc::new(Semaphore::new(KEPT_PLACES)),
            concurrency,
            capacity,
            held: Arc::default(),
            share: capacity.div_ceil(2).max(1),
        }
    }

    /// (places held now, places in all) of the queue, kept places included.
    pub fn usage(&self) -> (usize, usize) {
        let general = self.capacity.saturating_sub(self.places.available_permits());
        let kept = KEPT_PLACES.saturating_sub(self.kept.available_permits());
        (general + kept, self.capacity + KEPT_PLACES)
    }

    /// The most places one client address may hold at once.
    pub fn share(&self) -> usize {
        self.share
    }

    /// A place in the queue (or `Busy` at once: the queue is full, or this client holds its
    /// share of it), then a permit to run.
    async fn turn(&self, asker: Asker<'_>) -> Result<(Held, OwnedSemaphorePermit, Lane), HashError> {
        let client = asker.client;
        // When full, every place is taken: the whole queue drains in about this long.
        let busy = || {
            let ahead = u64::try_from(self.capacity).unwrap_or(u64::MAX);
            let lanes = u64::try_from(self.concurrency).unwrap_or(1);
            HashError::Busy { retry_after: (ahead.saturating_mul(HASH_MS) / lanes).div_ceil(1000).max(1) }
        };
        let held = {
            let mut held = self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = held.entry(client.to_owned()).or_default();
            if *count >= self.share {
                return Err(busy());
            }
            *count += 1;
            Held { held: self.held.clone(), client: client.to_owned() }
        };
        let place = match self.places.clone().try_acquire_owned() {
            Ok(place) => place,
            Err(_) if asker.known_device => self.kept.clone().try_acquire_owned().map_err(|_| busy())?,
            Err(_) => return Err(busy()),
        };
        let permit = self.permits.acquire(asker.known_device).await;
        Ok((held, place, permit))
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, asker: Asker<'_>, password: Password) -> Result<String, HashError> {
        let _turn = self.turn(asker).await?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("the hashing task failed")?
            .map_err(HashError::Failed)
    }

    /// Checks a password against a stored hash; `None` (an unknown user) is checked against a
    /// dummy hash so that it costs the same and answers the same.
    pub async fn verify(
        &self,
        asker: Asker<'_>,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _turn = self.turn(asker).await?;
        let verified = tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
            verify_blocking(&password, &hash) && known
        })
        .await
        .context("the verifying task failed")?;
        Ok(verified)
    }
}

/// Hashes on the calling thread (CLI commands and the blocking pool).
pub fn hash_blocking(password: &Password) -> anyhow::Result<String> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the operating system gave no random bytes")?;
    let hash = argon2()
        .hash_password_with_salt(password.expose().as_bytes(), &salt)
        .map_err(|err| anyhow::anyhow!("argon2 failed: {err}"))?;
    Ok(hash.to_string())
}

/// Verifies on the calling thread; a malformed or unsupported hash never verifies.
pub fn verify_blocking(password: &Password, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    if hash.algorithm.as_str() != "argon2id"
        && hash.algorithm.as_str() != "argon2i"
        && hash.algorithm.as_str() != "argon2d"
    {
        return false;
    }
    let too_costly = hash.params.get_decimal("m").is_some_and(|m| m > MAX_M_COST_KIB);
    if too_costly {
        return false;
    }
    Argon2::default().verify_password(password.expose().as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_hash_has_argon2_cffi_parameters_and_verifies() {
        let password = Password::unchecked("correct horse battery staple".into());
        let hash = hash_blocking(&password).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=65536,t=3,p=4$"), "{hash}");
        assert!(verify_blocking(&password, &hash));
        assert!(!verify_blocking(&Password::unchecked("wrong".into()), &hash));
    }

    #[test]
    fn hashes_written_by_argon2_cffi_verify() {
        #[derive(serde::Deserialize)]
        struct Vector {
            password: String,
            hash: String,
            wrong: String,
        }
        let vectors: Vec<Vector> =
            serde_json::from_str(include_str!("../../tests/fixtures/argon2_cffi_vectors.json")).unwrap();
        assert!(vectors.len() >= 6);
        for v in vectors {
            assert!(verify_blocking(&Password::unchecked(v.password.clone()), &v.hash), "{}", v.password);
            assert!(!verify_blocking(&Password::unchecked(v.wrong), &v.hash));
        }
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once_instead_of_waiting() {
        let hasher = Hasher::new(1, 1);
        let running = hasher.turn(Asker::from("a")).await.unwrap();
        let waiting = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.turn(Asker::from("b")).await.map(|_| ()) })
        };
        tokio::task::yield_now().await;
        while hasher.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify(Asker::from("c"), Password::unchecked("x".into()), None).await;
        assert!(matches!(refused, Err(HashError::Busy { retry_after: 1 })), "{refused:?}");
        drop(running);
        waiting.await.unwrap().unwrap();
        assert!(hasher.turn(Asker::from("c")).await.is_ok(), "places come back");
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_and_others_still_get_a_place() {
        let hasher = Hasher::new(2, 6);
        assert_eq!(hasher.share(), 4);
        let mut flood = Vec::new();
        for _ in 0..hasher.share() {
            let (held, place, _permit) =
                hasher.turn(Asker::from("10.0.0.1")).await.expect("within the share");
            flood.push((held, place));
        }
        // Permits are given back at once here: the places and the address's holds are what count.
        assert!(matches!(hasher.turn(Asker::from("10.0.0.1")).await, Err(HashError::Busy { .. })));
        assert!(hasher.turn(Asker::from("10.0.0.2")).await.is_ok(), "another address still gets a place");
        flood.pop();
        assert!(hasher.turn(Asker::from("10.0.0.1")).await.is_ok(), "a freed place is the address's again");
        drop(flood);
        assert!(hasher.held.lock().unwrap().is_empty(), "every hold is given back");
    }

    #[tokio::test]
    async fn a_known_browser_waits_for_the_next_free_slot_not_behind_the_queue() {
        let lanes = Lanes::new(1);
        let running = lanes.acquire(false).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (name, first) in [("stranger 1", false), ("stranger 2", false), ("owner", true)] {
            let (lanes, order) = (lanes.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let _lane = lanes.acquire(first).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        while {
            let state = lanes.lock();
            state.first.len() + state.others.len()
        } < 3
        {
            tokio::task::yield_now().await;
        }
        // A waiter that gives up frees its turn.
        let gone = tokio::spawn({
            let lanes = lanes.clone();
            async move { lanes.acquire(false).await }
        });
        tokio::task::yield_now().await;
        gone.abort();
        drop(running);
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["owner", "stranger 1", "stranger 2"]);
        assert_eq!(lanes.lock().free, 1, "every slot came back");
    }

    #[tokio::test]
    async fn a_known_browser_finds_a_kept_place_in_a_full_queue() {
        let hasher = Hasher::new(1, 3);
        let mut full = Vec::new();
        for i in 0..4 {
            let (held, place, _permit) =
                hasher.turn(Asker::from(&format!("10.0.1.{i}"))).await.expect("a place");
            full.push((held, place));
        }
        assert!(matches!(hasher.turn(Asker::from("10.0.2.1")).await, Err(HashError::Busy { .. })));
        let owner = Asker { client: "10.0.2.2", known_device: true };
        assert!(hasher.turn(owner).await.is_ok(), "the owner's browser gets a kept place");
    }

    #[test]
    fn garbage_and_hostile_hashes_never_verify() {
        let password = Password::unchecked("whatever1".into());
        assert!(!verify_blocking(&password, ""));
        assert!(!verify_blocking(&password, "not a hash"));
        assert!(!verify_blocking(
            &password,
            "$argon2id$v=19$m=4194304,t=3,p=4$iS/U7Vm1VfM2iu0fgLJu5g$5nceeQohYL43eCUgrXoWEt41RGkcZixBiers67yqy7E"
        ));
        assert!(!verify_blocking(&password, DUMMY_HASH));
    }
}

//! Argon2id hashing and verification, off the async workers and bounded.
//!
//! Parameters are argon2-cffi's defaults (m = 64 MiB, t = 3, p = 4, 16-byte salt, 32-byte
//! hash), so hashes from the seed's Python app verify here and the reverse. Each hash holds
//! 64 MiB for ~100–200 ms of CPU: a semaphore sized to the cores lets a burst of logins queue
//! instead of starving page views or exhausting memory.

use std::sync::Arc;

use anyhow::Context;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier, Version};
use tokio::sync::Semaphore;

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

#[derive(Clone, Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

fn argon2() -> Argon2<'static> {
    let params =
        Params::new(M_COST_KIB, T_COST, P_COST, Some(HASH_LEN)).expect("argon2-cffi's parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Hasher {
    pub fn new(concurrency: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: Password) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await.context("the hasher is closed")?;
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .context("the hashing task failed")?
    }

    /// Checks a password against a stored hash; `None` (an unknown user) is checked against a
    /// dummy hash so that it costs the same and answers the same.
    pub async fn verify(&self, password: Password, stored: Option<String>) -> anyhow::Result<bool> {
        let _permit = self.permits.acquire().await.context("the hasher is closed")?;
        tokio::task::spawn_blocking(move || {
            let known = stored.is_some();
            let hash = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
            verify_blocking(&password, &hash) && known
        })
        .await
        .context("the verifying task failed")
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

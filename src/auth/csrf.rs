//! CSRF tokens: an HMAC of a per-browser value, checked in constant time.
//!
//! For a member the value is a random nonce kept in their server-side session; for a visitor
//! (login and register forms) it is a random value in an HttpOnly cookie — the signed
//! double-submit pattern, so that anonymous visitors create no server-side state.
//!
//! Every token handed out is masked afresh (`mask ‖ mac ⊕ mask`, as Rails and Django do): the
//! same secret never appears twice in compressed responses, so a page that also reflects an
//! attacker's text cannot leak it byte by byte through the compressed length (BREACH).

use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The key CSRF tokens are signed with, derived from the server secret.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey([redacted])")
    }
}

impl CsrfKey {
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"quire csrf key v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self, binding: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"csrf:");
        mac.update(binding.as_bytes());
        mac
    }

    /// The token a form bound to `binding` carries, masked afresh on every call.
    pub fn token(&self, binding: &str) -> String {
        let mac: [u8; MAC_LEN] = self.mac(binding).finalize().into_bytes().into();
        let mask = fresh_mask();
        let mut token = [0u8; 2 * MAC_LEN];
        token[..MAC_LEN].copy_from_slice(&mask);
        for (i, (m, k)) in mac.iter().zip(mask).enumerate() {
            token[MAC_LEN + i] = m ^ k;
        }
        hex::encode(token)
    }

    /// True when `token` was made for `binding` by this server, whatever its mask
    /// (constant-time). Unmasked tokens are refused.
    pub fn verify(&self, binding: &str, token: &str) -> bool {
        let Ok(bytes) = hex::decode(token.trim()) else { return false };
        if bytes.len() != 2 * MAC_LEN {
            return false;
        }
        let (mask, masked) = bytes.split_at(MAC_LEN);
        let mac: Vec<u8> = masked.iter().zip(mask).map(|(m, k)| m ^ k).collect();
        self.mac(binding).verify_slice(&mac).is_ok()
    }
}

/// Bytes of an HMAC-SHA256.
const MAC_LEN: usize = 32;

/// A new mask for one token. It travels with the token and hides nothing; it only has to
/// differ from one response to the next, so should the system's random source ever fail, a
/// digest of a counter and the clock serves instead.
fn fresh_mask() -> [u8; MAC_LEN] {
    let mut mask = [0u8; MAC_LEN];
    if getrandom::fill(&mut mask).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        mask = Sha256::new()
            .chain_update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes())
            .chain_update(nanos.to_le_bytes())
            .finalize()
            .into();
    }
    mask
}

/// A fresh random value: session nonces and visitor cookies.
pub fn random_value() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_own_binding_and_key() {
        let key = CsrfKey::derive(b"0123456789abcdef0123456789abcdef");
        let token = key.token("browser-a");
        assert!(key.verify("browser-a", &token));
        assert!(!key.verify("browser-b", &token));
        assert!(!key.verify("browser-a", ""));
        assert!(!key.verify("browser-a", "zz"));
        assert!(!CsrfKey::derive(b"another secret, also 32 bytes long").verify("browser-a", &token));
    }

    #[test]
    fn every_token_is_masked_afresh_and_each_verifies() {
        let key = CsrfKey::derive(b"0123456789abcdef0123456789abcdef");
        let tokens: Vec<String> = (0..50).map(|_| key.token("browser-a")).collect();
        for (i, token) in tokens.iter().enumerate() {
            assert_eq!(token.len(), 128);
            assert!(key.verify("browser-a", token));
            assert!(!tokens[..i].contains(token), "a token repeated");
        }
        // No stretch of the secret survives from one token to the next.
        let (a, b) = (hex::decode(&tokens[0]).unwrap(), hex::decode(&tokens[1]).unwrap());
        let shared = a[32..].iter().zip(&b[32..]).filter(|(x, y)| x == y).count();
        assert!(shared < 8, "{shared} of 32 masked bytes equal");
    }

    #[test]
    fn unmasked_tampered_and_truncated_tokens_are_refused() {
        let key = CsrfKey::derive(b"0123456789abcdef0123456789abcdef");
        let unmasked = hex::encode(key.mac("browser-a").finalize().into_bytes());
        assert!(!key.verify("browser-a", &unmasked));
        let token = key.token("browser-a");
        let mut bytes = hex::decode(&token).unwrap();
        bytes[40] ^= 1;
        assert!(!key.verify("browser-a", &hex::encode(&bytes)));
        bytes[40] ^= 1;
        // Changing the mask alone breaks the token too: mask and masked mac go together.
        bytes[3] ^= 0x80;
        assert!(!key.verify("browser-a", &hex::encode(&bytes)));
        assert!(!key.verify("browser-a", &token[..126]));
        assert!(!key.verify("browser-a", &format!("{token}00")));
        assert!(key.verify("browser-a", &format!(" {token}\n")));
    }
}

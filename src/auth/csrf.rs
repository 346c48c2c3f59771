//! CSRF tokens: an HMAC of a per-browser value, checked in constant time.
//!
//! For a member the value is a random nonce kept in their server-side session; for a visitor
//! (login and register forms) it is a random value in an HttpOnly cookie — the signed
//! double-submit pattern, so that anonymous visitors create no server-side state.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

    /// The token a form bound to `binding` carries.
    pub fn token(&self, binding: &str) -> String {
        hex::encode(self.mac(binding).finalize().into_bytes())
    }

    /// True when `token` was made for `binding` by this server (constant-time).
    pub fn verify(&self, binding: &str, token: &str) -> bool {
        match hex::decode(token.trim()) {
            Ok(bytes) => self.mac(binding).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
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
}

//! Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30-second steps, what every
//! authenticator app reads), their QR code, and recovery codes.
//!
//! A code is accepted for the step before and after the current one (clock drift); the step
//! it matched is returned so that the caller can refuse it a second time (`models::two_factor`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per code.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A new random secret, base32 (as the app and the database keep it).
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
    Ok(encode(&bytes))
}

fn encode(bytes: &[u8]) -> String {
    match Secret::Raw(bytes.to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => unreachable!("to_encoded gives an encoded secret"),
    }
}

fn totp(secret: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    Some(TOTP::new_unchecked(Algorithm::SHA1, DIGITS, 0, STEP_SECS, bytes))
}

/// The current Unix time in seconds.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The code an app shows for `secret` at `time` (tests and the enrolment check use it).
pub fn code_at(secret: &str, time: u64) -> Option<String> {
    totp(secret).map(|totp| totp.generate(time))
}

/// Digits as typed: spaces and dashes dropped (`123 456`).
fn typed_digits(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

/// True when the text looks like an authenticator code rather than a recovery code.
pub fn looks_like_code(code: &str) -> bool {
    let digits = typed_digits(code);
    digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The time step `code` belongs to, if it is right for the step before, at or after `time`.
pub fn matching_step(secret: &str, code: &str, time: u64) -> Option<i64> {
    let code = typed_digits(code);
    if !looks_like_code(&code) {
        return None;
    }
    let totp = totp(secret)?;
    let now = time / STEP_SECS;
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let expected = totp.generate(step * STEP_SECS);
        // Every candidate is compared, in constant time, whatever matched before.
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found.and_then(|step| i64::try_from(step).ok())
}

/// The `otpauth://` URI an app reads from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |text: &str| {
        percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

/// The QR code of `text` as an inline SVG element, drawn here (no image service, no script).
pub fn qr_svg(text: &str) -> anyhow::Result<String> {
    let code =
        qrcode::QrCode::new(text.as_bytes()).map_err(|e| anyhow::anyhow!("cannot draw the QR code: {e}"))?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    // Inline in the page: the XML declaration belongs to files only.
    Ok(match svg.find("<svg") {
        Some(at) => svg[at..].to_owned(),
        None => svg,
    })
}

/// The secret grouped by four for reading and typing (`ABCD EFGH …`).
pub fn grouped(secret: &str) -> String {
    secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// Lower-case letters and digits without the ones people confuse (0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// Ten new recovery codes, `xxxx-xxxx-xxxx-xxxx` (about 79 bits each).
pub fn new_recovery_codes() -> anyhow::Result<Vec<String>> {
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
        let chars: Vec<char> = bytes
            .iter()
            // 256 = 8 × 31 + 8: the small bias is far below what matters at 79 bits.
            .map(|b| RECOVERY_ALPHABET[usize::from(*b) % RECOVERY_ALPHABET.len()] as char)
            .collect();
        let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
        codes.push(groups.join("-"));
    }
    Ok(codes)
}

/// What is stored of a recovery code: the SHA-256 of its characters, dashes, spaces and case
/// left aside (a code has too much entropy for a slow hash to matter).
pub fn recovery_hash(code: &str) -> String {
    let normal: String =
        code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors_and_the_window() {
        // RFC 6238's SHA-1 secret "12345678901234567890", 8 digits there; 6 are its last six.
        let secret = encode(b"12345678901234567890");
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        assert_eq!(code_at(&secret, 1_111_111_109).unwrap(), "081804");
        let now = 1_111_111_109;
        let step = i64::try_from(now / STEP_SECS).unwrap();
        assert_eq!(matching_step(&secret, "081804", now), Some(step));
        assert_eq!(matching_step(&secret, "081 804", now), Some(step));
        let next = code_at(&secret, now + STEP_SECS).unwrap();
        assert_eq!(matching_step(&secret, &next, now), Some(step + 1));
        let far = code_at(&secret, now + 3 * STEP_SECS).unwrap();
        assert_eq!(matching_step(&secret, &far, now), None);
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn secrets_uris_and_qr_codes() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.len(), 32);
        assert_ne!(secret, new_secret().unwrap());
        let uri = otpauth_uri("Quire wiki", "zoé", &secret);
        assert!(uri.starts_with("otpauth://totp/Quire%20wiki:zo%C3%A9?secret="), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("style") && !svg.contains("script"));
    }

    #[test]
    fn recovery_codes_are_random_and_hash_whatever_their_spelling() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| c.len() == 19 && c.split('-').count() == 4));
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(recovery_hash(code), recovery_hash(&code.to_uppercase().replace('-', " ")));
        assert_ne!(recovery_hash(code), recovery_hash(&codes[1]));
    }
}

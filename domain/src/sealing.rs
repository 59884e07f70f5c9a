//! Secrets at rest: AEAD (ChaCha20-Poly1305) under a keyring keyed by `CALLFLEET_SECRET_KEY`.
//!
//! Format of a sealed value: `v2:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The key id names the
//! key that sealed it, so keys rotate: the first key of the ring seals, every key of the ring opens.
//! The associated data binds the key id and the value's *context* — what the secret belongs to
//! (a SIP password: its Telnyx credential id) — so a value can neither be re-labelled to another
//! key nor moved by a database writer onto another row: it opens only for the context it was
//! sealed for. `v1:` values (key id only, from before the context was bound) still open for
//! any context and always count as needing a re-seal.
//!
//! `CALLFLEET_SECRET_KEY` is a comma-separated list of `<key id>:<base64 of 32 bytes>`; the first
//! entry is the current key. Parsing never echoes key material in its errors.
//!
//! The nonce is supplied by the caller (96 random bits from the OS RNG in the adapters), so this
//! module stays deterministic and testable.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

/// Why a keyring or a sealed value is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("secret key list is empty")]
    Empty,
    #[error("secret key entry {0} must be <key id>:<base64 of 32 bytes>")]
    BadEntry(usize),
    #[error("key id {0:?} appears twice")]
    DuplicateKeyId(String),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("no key with id {0:?} in the keyring")]
    UnknownKey(String),
    #[error("sealed value does not authenticate")]
    Forged,
}

/// The keys that seal and open secrets. `Debug` shows key ids only.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Key)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("key_ids", &self.key_ids()).finish()
    }
}

impl Keyring {
    /// Parses `kid:base64,kid:base64,…` (first = current).
    pub fn parse(spec: &str) -> Result<Self, SealError> {
        let mut keys: Vec<(String, Key)> = Vec::new();
        for (i, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let (kid, b64) = entry.split_once(':').ok_or(SealError::BadEntry(i + 1))?;
            let valid_kid =
                !kid.is_empty() && kid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            let raw = STANDARD.decode(b64.trim()).map_err(|_| SealError::BadEntry(i + 1))?;
            if !valid_kid || raw.len() != 32 {
                return Err(SealError::BadEntry(i + 1));
            }
            if keys.iter().any(|(k, _)| k == kid) {
                return Err(SealError::DuplicateKeyId(kid.to_owned()));
            }
            keys.push((kid.to_owned(), *Key::from_slice(&raw)));
        }
        if keys.is_empty() {
            return Err(SealError::Empty);
        }
        Ok(Self { keys })
    }

    /// The raw bytes of the oldest key, from which long-lived per-purpose keys are derived (the
    /// `client_state` MAC of live calls): rotation adds keys in front, so the oldest one changes
    /// only when an operator retires it, days after the calls it signed have ended.
    pub fn oldest_key_bytes(&self) -> &[u8] {
        self.keys.last().map(|(_, k)| k.as_slice()).unwrap_or_default()
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].0
    }

    /// Seals `plaintext` for `context` with the current key and the given 96-bit nonce (never
    /// reuse one).
    pub fn seal(&self, plaintext: &str, context: &str, nonce: [u8; 12]) -> String {
        let (kid, key) = &self.keys[0];
        let cipher = ChaCha20Poly1305::new(key);
        let aad = bound(kid, context);
        let payload = Payload { msg: plaintext.as_bytes(), aad: &aad };
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("v2:{kid}:{}", STANDARD.encode(blob))
    }

    /// Opens a value sealed for `context` by any key of the ring (a `v1:` value: for any context).
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, SealError> {
        let kid = sealed_key_id(sealed)?;
        let aad = if sealed.starts_with("v1:") { kid.as_bytes().to_vec() } else { bound(kid, context) };
        let b64 = &sealed["v2:".len() + kid.len() + 1..]; // both prefixes are 3 bytes
        let key = self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key);
        let key = key.ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let blob = STANDARD.decode(b64).map_err(|_| SealError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let plain = ChaCha20Poly1305::new(key)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| SealError::Forged)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }

    /// What every value the current key seals starts with (`v2:<key id>:`); the store selects
    /// the values due for a re-seal by it.
    pub fn current_prefix(&self) -> String {
        format!("v2:{}:", self.current_key_id())
    }

    /// Whether a sealed value should be re-sealed (sealed by a key other than the current one,
    /// or in the `v1:` format that binds no context).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed.starts_with("v1:") || sealed_key_id(sealed).is_ok_and(|kid| kid != self.current_key_id())
    }
}

/// The associated data of a `v2:` value: the key id and the context, unambiguously joined (a key
/// id has no NUL).
fn bound(kid: &str, context: &str) -> Vec<u8> {
    [kid.as_bytes(), b"\0", context.as_bytes()].concat()
}

/// The key id of a sealed value (`v1:<kid>:…` or `v2:<kid>:…`).
pub fn sealed_key_id(sealed: &str) -> Result<&str, SealError> {
    let rest =
        sealed.strip_prefix("v2:").or_else(|| sealed.strip_prefix("v1:")).ok_or(SealError::Malformed)?;
    let (kid, _) = rest.split_once(':').ok_or(SealError::Malformed)?;
    if kid.is_empty() {
        return Err(SealError::Malformed);
    }
    Ok(kid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens_and_rotates() {
        let old = Keyring::parse(&format!("k1:{}", key(1))).unwrap();
        let sealed = old.seal("sip-password-123", "cred-1", [7; 12]);
        assert!(sealed.starts_with("v2:k1:"));
        assert!(!sealed.contains("sip-password-123"));
        assert_eq!(old.open(&sealed, "cred-1").unwrap(), "sip-password-123");
        let rotated = Keyring::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(&sealed, "cred-1").unwrap(), "sip-password-123");
        assert!(rotated.needs_reseal(&sealed));
        let fresh = rotated.seal("x", "cred-1", [8; 12]);
        assert!(fresh.starts_with("v2:k2:") && !rotated.needs_reseal(&fresh));
        assert_eq!(rotated.current_prefix(), "v2:k2:");
        assert_eq!(old.open(&fresh, "cred-1"), Err(SealError::UnknownKey("k2".into())));
    }

    #[test]
    fn tampering_and_relabelling_are_refused() {
        let ring = Keyring::parse(&format!("a:{},b:{}", key(1), key(1))).unwrap();
        let sealed = ring.seal("secret", "cred-1", [1; 12]);
        let relabelled = sealed.replacen("v2:a:", "v2:b:", 1);
        assert_eq!(ring.open(&relabelled, "cred-1"), Err(SealError::Forged));
        let downgraded = sealed.replacen("v2:", "v1:", 1);
        assert_eq!(ring.open(&downgraded, "cred-1"), Err(SealError::Forged));
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(ring.open(&String::from_utf8(bytes).unwrap(), "cred-1").is_err());
        assert_eq!(ring.open("plain", "cred-1"), Err(SealError::Malformed));
    }

    /// A database writer who copies one credential's sealed password onto another row gets a
    /// value that does not open there (before, the associated data bound the key id only).
    #[test]
    fn a_sealed_value_opens_only_for_its_own_context() {
        let ring = Keyring::parse(&format!("k:{}", key(3))).unwrap();
        let sealed = ring.seal("pw-of-alice", "cred-alice", [2; 12]);
        assert_eq!(ring.open(&sealed, "cred-alice").unwrap(), "pw-of-alice");
        assert_eq!(ring.open(&sealed, "cred-bob"), Err(SealError::Forged));
        assert_eq!(ring.open(&sealed, "cred-alice\0"), Err(SealError::Forged));
    }

    /// Values sealed before the context was bound still open, and are due for a re-seal.
    #[test]
    fn legacy_v1_values_open_and_need_a_reseal() {
        let ring = Keyring::parse(&format!("k:{}", key(4))).unwrap();
        let cipher = ChaCha20Poly1305::new(&ring.keys[0].1);
        let nonce = [5u8; 12];
        let ct = cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: b"old-pw", aad: b"k" }).unwrap();
        let legacy = format!("v1:k:{}", STANDARD.encode([nonce.to_vec(), ct].concat()));
        assert_eq!(ring.open(&legacy, "anything").unwrap(), "old-pw");
        assert!(ring.needs_reseal(&legacy));
    }

    #[test]
    fn key_specs_are_validated_without_echoing_keys() {
        assert_eq!(Keyring::parse("").unwrap_err(), SealError::Empty);
        assert_eq!(Keyring::parse("nocolon").unwrap_err(), SealError::BadEntry(1));
        assert_eq!(
            Keyring::parse(&format!("k:{}", STANDARD.encode([0; 16]))).unwrap_err(),
            SealError::BadEntry(1)
        );
        let dup = format!("k:{},k:{}", key(1), key(2));
        assert_eq!(Keyring::parse(&dup).unwrap_err(), SealError::DuplicateKeyId("k".into()));
        let ring = Keyring::parse(&format!("k:{}", key(9))).unwrap();
        assert!(!format!("{ring:?}").contains(&key(9)));
        assert_eq!(sealed_key_id("v1:k:abc").unwrap(), "k");
        assert_eq!(sealed_key_id("v2:k:abc").unwrap(), "k");
    }
}

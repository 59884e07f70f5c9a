//! Secrets at rest: AEAD (ChaCha20-Poly1305) under a keyring keyed by `CALLFLEET_SECRET_KEY`.
//!
//! Format of a sealed value: `v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The key id names the
//! key that sealed it, so keys rotate: the first key of the ring seals, every key of the ring opens.
//! The key id is also bound as associated data, so a value cannot be re-labelled to another key.
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

    /// Seals `plaintext` with the current key and the given 96-bit nonce (never reuse one).
    pub fn seal(&self, plaintext: &str, nonce: [u8; 12]) -> String {
        let (kid, key) = &self.keys[0];
        let cipher = ChaCha20Poly1305::new(key);
        let payload = Payload { msg: plaintext.as_bytes(), aad: kid.as_bytes() };
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let ct = cipher.encrypt(Nonce::from_slice(&nonce), payload).unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        format!("v1:{kid}:{}", STANDARD.encode(blob))
    }

    /// Opens a value sealed by any key of the ring.
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let kid = sealed_key_id(sealed)?;
        let b64 = &sealed["v1:".len() + kid.len() + 1..];
        let key = self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key);
        let key = key.ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let blob = STANDARD.decode(b64).map_err(|_| SealError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let plain = ChaCha20Poly1305::new(key)
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: kid.as_bytes() })
            .map_err(|_| SealError::Forged)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }

    /// Whether a sealed value should be re-sealed (sealed by a key other than the current one).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        sealed_key_id(sealed).is_ok_and(|kid| kid != self.current_key_id())
    }
}

/// The key id of a sealed value (`v1:<kid>:…`).
pub fn sealed_key_id(sealed: &str) -> Result<&str, SealError> {
    let rest = sealed.strip_prefix("v1:").ok_or(SealError::Malformed)?;
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
        let sealed = old.seal("sip-password-123", [7; 12]);
        assert!(sealed.starts_with("v1:k1:"));
        assert!(!sealed.contains("sip-password-123"));
        assert_eq!(old.open(&sealed).unwrap(), "sip-password-123");
        let rotated = Keyring::parse(&format!("k2:{},k1:{}", key(2), key(1))).unwrap();
        assert_eq!(rotated.open(&sealed).unwrap(), "sip-password-123");
        assert!(rotated.needs_reseal(&sealed));
        let fresh = rotated.seal("x", [8; 12]);
        assert!(fresh.starts_with("v1:k2:") && !rotated.needs_reseal(&fresh));
        assert_eq!(old.open(&fresh), Err(SealError::UnknownKey("k2".into())));
    }

    #[test]
    fn tampering_and_relabelling_are_refused() {
        let ring = Keyring::parse(&format!("a:{},b:{}", key(1), key(1))).unwrap();
        let sealed = ring.seal("secret", [1; 12]);
        let relabelled = sealed.replacen("v1:a:", "v1:b:", 1);
        assert_eq!(ring.open(&relabelled), Err(SealError::Forged));
        let mut bytes = sealed.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert!(ring.open(&String::from_utf8(bytes).unwrap()).is_err());
        assert_eq!(ring.open("plain"), Err(SealError::Malformed));
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
    }
}

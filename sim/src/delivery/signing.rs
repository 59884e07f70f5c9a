//! The simulator's webhook signing key and the Telnyx signature scheme.
//!
//! The Ed25519 secret key is `SHA-256("callfleet-sim/telnyx-webhook-key/v1" || seed as 8 little-endian
//! bytes)`, so the public key is a pure function of the seed and can be configured in the fleet before the
//! simulator starts. Signature: standard base64 of Ed25519(`<timestamp>|<raw body>`), the timestamp being
//! the exact `telnyx-timestamp` header value (unix seconds).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signs webhook bodies.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// The key derived from `seed` (see the module docs).
    pub fn from_seed(seed: u64) -> Self {
        let secret: [u8; 32] = Sha256::new()
            .chain_update(b"callfleet-sim/telnyx-webhook-key/v1")
            .chain_update(seed.to_le_bytes())
            .finalize()
            .into();
        Self { key: SigningKey::from_bytes(&secret) }
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// Standard base64 of the raw 32-byte public key (the form Mission Control shows).
    pub fn public_key_base64(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    /// The `telnyx-signature-ed25519` header value for `body` sent with `timestamp`.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        let mut msg = Vec::with_capacity(timestamp.len() + 1 + body.len());
        msg.extend_from_slice(timestamp.as_bytes());
        msg.push(b'|');
        msg.extend_from_slice(body);
        STANDARD.encode(self.key.sign(&msg).to_bytes())
    }
}

/// Derives a 32-byte secret for another purpose (JWT, recording URLs) from the seed.
pub fn derived_secret(seed: u64, label: &str) -> [u8; 32] {
    Sha256::new().chain_update(label.as_bytes()).chain_update(seed.to_le_bytes()).finalize().into()
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    #[test]
    fn signature_verifies_over_timestamp_pipe_body() {
        let s = Signer::from_seed(42);
        let sig = s.sign("1700000000", br#"{"a":1}"#);
        assert_eq!(sig.len(), 88);
        let raw: [u8; 64] = STANDARD.decode(&sig).expect("b64").try_into().expect("64 bytes");
        let key = s.verifying_key();
        assert!(key.verify(br#"1700000000|{"a":1}"#, &Signature::from_bytes(&raw)).is_ok());
        assert!(key.verify(br#"1700000000.{"a":1}"#, &Signature::from_bytes(&raw)).is_err());
        assert_eq!(s.public_key_base64(), Signer::from_seed(42).public_key_base64());
        assert_ne!(s.public_key_base64(), Signer::from_seed(43).public_key_base64());
        assert_eq!(STANDARD.decode(s.public_key_base64()).expect("b64").len(), 32);
    }
}

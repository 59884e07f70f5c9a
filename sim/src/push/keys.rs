//! Key material the simulator issues, derived deterministically from the seed.
//!
//! - FCM: a 2048-bit RSA service-account key (RS256 assertions are verified against it). 2048
//!   bits because that is what Google issues and what ring/aws-lc based JWT signers accept.
//!   Generation costs about a second in a debug build, so keys are cached per seed for the whole
//!   process and made only when first needed.
//! - APNs: a P-256 key (the `.p8` file), a 10-character key id and team id.
//!
//! Same seed, same keys and ids (as long as the `rand` and `rsa` crate versions stay put).
//! Key generation cannot fail with a working RNG; should it ever, that is a bug and panics.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use p256::pkcs8::EncodePrivateKey as _;
use rand::SeedableRng;
use rsa::pkcs8::LineEnding;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The service account's `client_email` (also the JWT `iss` the token endpoint expects).
pub(crate) const CLIENT_EMAIL: &str = "firebase-adminsdk-sim@callfleet-sim.iam.gserviceaccount.com";

/// The RSA service-account key.
pub(crate) struct RsaKeys {
    /// PKCS#8 PEM of the private key (the JSON's `private_key`).
    pub(crate) pem: String,
    /// The JSON's `private_key_id` (40 hex digits, like Google's).
    pub(crate) key_id: String,
    pub(crate) verifying: rsa::pkcs1v15::VerifyingKey<Sha256>,
}

static RSA_CACHE: LazyLock<Mutex<HashMap<u64, Arc<RsaKeys>>>> = LazyLock::new(Default::default);

fn derive(seed: u64, label: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update(seed.to_le_bytes());
    h.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The RSA key for `seed`, generated on first call (blocking) and cached.
pub(crate) fn rsa_keys(seed: u64) -> Arc<RsaKeys> {
    let mut cache = RSA_CACHE.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(seed)
        .or_insert_with(|| {
            let mut rng = rand::rngs::StdRng::from_seed(derive(seed, "fleet-sim rsa"));
            let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key generation");
            let pem = private.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM encoding");
            Arc::new(RsaKeys {
                pem: pem.to_string(),
                key_id: hex(&derive(seed, "fleet-sim rsa kid")[..20]),
                verifying: rsa::pkcs1v15::VerifyingKey::new(private.to_public_key()),
            })
        })
        .clone()
}

/// The APNs signing key.
pub(crate) struct ApnsKey {
    pub(crate) key_id: String,
    pub(crate) team_id: String,
    pem: String,
    pub(crate) verifying: p256::ecdsa::VerifyingKey,
}

/// What a provider needs to sign APNs provider tokens: the `.p8` file's content, its key id
/// (JWT header `kid`) and the team id (JWT claim `iss`).
#[derive(Debug, Clone, Serialize)]
pub struct ApnsKeyInfo {
    pub key_id: String,
    pub team_id: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), exactly like Apple's `.p8` download.
    pub private_key_pem: String,
}

impl ApnsKey {
    pub(crate) fn info(&self) -> ApnsKeyInfo {
        ApnsKeyInfo {
            key_id: self.key_id.clone(),
            team_id: self.team_id.clone(),
            private_key_pem: self.pem.clone(),
        }
    }
}

/// Ten characters of `[A-Z0-9]`, like Apple's key and team ids.
fn apple_id(seed: u64, label: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    derive(seed, label)[..10].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

pub(crate) fn apns_key(seed: u64) -> ApnsKey {
    // A random 32-byte string is a valid P-256 scalar except with negligible probability;
    // re-derive with a counter in that case.
    let secret = (0u64..)
        .find_map(|i| {
            let bytes = derive(seed ^ i.rotate_left(32), "fleet-sim apns p256");
            p256::SecretKey::from_slice(&bytes).ok()
        })
        .expect("a valid P-256 scalar");
    let pem = secret.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM encoding");
    let signing = p256::ecdsa::SigningKey::from(&secret);
    ApnsKey {
        key_id: apple_id(seed, "fleet-sim apns kid"),
        team_id: apple_id(seed, "fleet-sim apns team"),
        pem: pem.to_string(),
        verifying: *signing.verifying_key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apns_key_is_deterministic_and_parses_back() {
        use p256::pkcs8::DecodePrivateKey as _;
        let a = apns_key(7);
        let b = apns_key(7);
        assert_eq!(a.pem, b.pem);
        assert_eq!(a.key_id.len(), 10);
        assert_ne!(a.key_id, apns_key(8).key_id);
        let parsed = p256::ecdsa::SigningKey::from_pkcs8_pem(&a.pem).unwrap();
        assert_eq!(*parsed.verifying_key(), a.verifying);
    }
}

//! Identifier and time formatting, all drawn from the world's seeded RNG (never from the OS), so the same
//! seed and request sequence yield the same ids.
//!
//! Shapes follow Telnyx: `call_control_id` is `v3:` + 54 URL-safe base64 characters; session, leg, event,
//! recording and credential ids are UUIDs; `sip_username` is `gencred` + 22 alphanumerics.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::Rng;
use rand::rngs::StdRng;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid().to_string()
}

pub fn call_control_id(rng: &mut StdRng) -> String {
    let mut raw = [0u8; 40];
    rng.fill(&mut raw[..]);
    format!("v3:{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

pub fn alnum(rng: &mut StdRng, len: usize) -> String {
    (0..len).map(|_| char::from(ALNUM[rng.gen_range(0..ALNUM.len())])).collect()
}

pub fn hex(rng: &mut StdRng, bytes: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let _ = write!(s, "{:02x}", rng.r#gen::<u8>());
    }
    s
}

/// `2025-11-23T03:30:00.996306Z`, the timestamp shape of webhook bodies.
pub fn micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `2020-06-18T21:32:38.000Z`, the timestamp shape of REST resources.
pub fn millis(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn shapes_and_determinism() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        let id = call_control_id(&mut a);
        assert_eq!(id, call_control_id(&mut b));
        assert!(id.starts_with("v3:") && id.len() == 57, "{id}");
        assert_eq!(uuid(&mut a).len(), 36);
        assert_eq!(alnum(&mut a, 22).len(), 22);
        assert_eq!(hex(&mut a, 16).len(), 32);
    }
}

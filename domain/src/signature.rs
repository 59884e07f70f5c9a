//! Telnyx webhook signatures (API v2, Ed25519), verified exactly as the official SDKs do.
//!
//! Signed bytes are `<telnyx-timestamp header, verbatim> | <raw body>`; the signature is standard,
//! padded base64 of the 64-byte Ed25519 signature; the account key is standard base64 of the raw
//! 32-byte public key. A timestamp more than [`TOLERANCE_SECS`] away from now, in either direction,
//! is rejected (exactly 300 s is accepted). Checks run in the SDKs' order — headers, timestamp,
//! signature encoding, Ed25519 — so the first failure is the reason reported.
//!
//! During a key rotation the account has two keys at once, so a verifier holds one or more keys and
//! a signature is good when any of them verifies it (each extra key costs one more Ed25519 check,
//! only for bodies the first key refuses).
//!
//! Every failure maps to a stable, machine-readable [`SignatureError::reason`] that the ingress
//! returns with its 401; nothing here logs or allocates on the hot path beyond the decode buffers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

/// Maximum distance between `telnyx-timestamp` and the receiver's clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook's signature was refused. `reason()` is the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the telnyx-signature-ed25519 header is missing or empty")]
    MissingSignature,
    #[error("the telnyx-timestamp header is missing or empty")]
    MissingTimestamp,
    #[error("the telnyx-timestamp header is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("the telnyx-timestamp header is more than 300 s away from now")]
    StaleTimestamp,
    #[error("the signature is not standard base64 of 64 bytes")]
    MalformedSignature,
    #[error("the signature does not match the body and timestamp")]
    BadSignature,
}

impl SignatureError {
    /// Stable, machine-readable reason returned to the caller.
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::MissingTimestamp => "missing_timestamp",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::MalformedSignature => "malformed_signature",
            Self::BadSignature => "signature_mismatch",
        }
    }
}

/// A public key that is not standard base64 of exactly 32 bytes, or not a valid curve point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TELNYX_PUBLIC_KEY must be standard base64 of a raw 32-byte Ed25519 key")]
pub struct InvalidPublicKey;

/// The account's webhook public keys (one, or two during a rotation), parsed once at start.
#[derive(Clone)]
pub struct WebhookVerifier {
    keys: Vec<VerifyingKey>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier").field("keys", &self.keys_base64()).finish()
    }
}

impl WebhookVerifier {
    /// Parses the Mission Control key: strict standard base64 of 32 raw bytes (not PEM, not DER).
    pub fn from_base64(key: &str) -> Result<Self, InvalidPublicKey> {
        Ok(Self { keys: vec![parse_key(key)?] })
    }

    /// Every key of `keys` (at least one); the first that does not parse is the error.
    pub fn from_keys<S: AsRef<str>>(keys: &[S]) -> Result<Self, InvalidPublicKey> {
        if keys.is_empty() {
            return Err(InvalidPublicKey);
        }
        let keys = keys.iter().map(|k| parse_key(k.as_ref())).collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// The keys in force, as configured (standard base64; public keys, safe to log).
    pub fn keys_base64(&self) -> Vec<String> {
        self.keys.iter().map(|k| STANDARD.encode(k.as_bytes())).collect()
    }

    /// Verifies one delivery. `timestamp` and `signature` are the raw header values (`None` when
    /// absent); `body` the exact bytes received; `now` the receiver's Unix time in seconds.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let signature = signature.filter(|s| !s.is_empty()).ok_or(SignatureError::MissingSignature)?;
        let timestamp = timestamp.filter(|s| !s.is_empty()).ok_or(SignatureError::MissingTimestamp)?;
        let sent_at = parse_timestamp(timestamp)?;
        if (now - sent_at).abs() > TOLERANCE_SECS {
            return Err(SignatureError::StaleTimestamp);
        }
        let sig = decode_signature(signature)?;
        let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.push(b'|');
        signed.extend_from_slice(body);
        if self.keys.iter().any(|key| key.verify(&signed, &sig).is_ok()) {
            Ok(())
        } else {
            Err(SignatureError::BadSignature)
        }
    }
}

fn parse_key(key: &str) -> Result<VerifyingKey, InvalidPublicKey> {
    let bytes = STANDARD.decode(key.trim()).map_err(|_| InvalidPublicKey)?;
    let raw: [u8; 32] = bytes.try_into().map_err(|_| InvalidPublicKey)?;
    VerifyingKey::from_bytes(&raw).map_err(|_| InvalidPublicKey)
}

/// Decimal ASCII seconds only: no sign, no spaces, no fraction. A value that does not fit is invalid.
fn parse_timestamp(raw: &str) -> Result<i64, SignatureError> {
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::InvalidTimestamp);
    }
    raw.parse().map_err(|_| SignatureError::InvalidTimestamp)
}

fn decode_signature(raw: &str) -> Result<Signature, SignatureError> {
    let bytes = STANDARD.decode(raw).map_err(|_| SignatureError::MalformedSignature)?;
    let raw: [u8; 64] = bytes.try_into().map_err(|_| SignatureError::MalformedSignature)?;
    Ok(Signature::from_bytes(&raw))
}

/// Signs a delivery the way Telnyx does; used by the carrier simulator and by tests.
/// Returns the `telnyx-signature-ed25519` header value.
pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(timestamp.len() + 1 + body.len());
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'|');
    signed.extend_from_slice(body);
    STANDARD.encode(key.sign(&signed).to_bytes())
}

/// Standard base64 of the raw public key, the form Mission Control shows.
pub fn public_key_base64(key: &SigningKey) -> String {
    STANDARD.encode(key.verifying_key().as_bytes())
}

#[cfg(test)]
mod tests;

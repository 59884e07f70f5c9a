//! Compact JWS (JWT) signing: `base64url(header).base64url(claims).base64url(signature)`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The signing input of a JWT.
pub(crate) fn signing_input(header: &Value, claims: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    format!("{}.{}", enc(header), enc(claims))
}

/// Appends the signature.
pub(crate) fn finish(input: String, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

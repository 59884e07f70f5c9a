//! Compact JWS (JWT) decoding shared by the OAuth token endpoint and the APNs provider-token check.
//!
//! Splits `header.claims.signature`, base64url-decodes each part (RFC 7515: no padding) and parses
//! header and claims as JSON objects. It never verifies anything by itself: the caller checks
//! `alg`, the key id and the signature over [`Jws::signing_input`] with the key it expects, so a
//! token cannot pick its own algorithm.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Why a token could not be decoded or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    #[error("not a compact JWS (want three dot-separated parts)")]
    Shape,
    #[error("the {0} is not base64url without padding")]
    Base64(&'static str),
    #[error("the {0} is not a JSON object")]
    Json(&'static str),
    #[error("alg {0:?} is not the expected algorithm")]
    Alg(String),
    #[error("unknown key id")]
    KeyId,
    #[error("signature does not verify")]
    Signature,
    #[error("claim {0} is missing or has the wrong type")]
    Claim(&'static str),
}

/// A decoded, *unverified* compact JWS.
#[derive(Debug, Clone)]
pub(crate) struct Jws {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    /// `base64url(header) "." base64url(claims)`: the bytes the signature covers.
    pub(crate) signing_input: String,
    pub(crate) signature: Vec<u8>,
}

impl Jws {
    /// Decode `token` without verifying it.
    pub(crate) fn decode(token: &str) -> Result<Self, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Shape);
        };
        let object = |part: &str, what: &'static str| -> Result<Map<String, Value>, JwtError> {
            let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Base64(what))?;
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(m)) => Ok(m),
                _ => Err(JwtError::Json(what)),
            }
        };
        Ok(Self {
            header: object(h, "header")?,
            claims: object(c, "claims")?,
            signing_input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Base64("signature"))?,
        })
    }

    /// Require header `alg` to be `alg`.
    pub(crate) fn expect_alg(&self, alg: &str) -> Result<(), JwtError> {
        match self.header.get("alg").and_then(Value::as_str) {
            Some(a) if a == alg => Ok(()),
            other => Err(JwtError::Alg(other.unwrap_or_default().to_owned())),
        }
    }

    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub(crate) fn claim_str(&self, name: &'static str) -> Result<&str, JwtError> {
        self.claims.get(name).and_then(Value::as_str).ok_or(JwtError::Claim(name))
    }

    /// A NumericDate claim (integer seconds; a float is truncated).
    pub(crate) fn claim_secs(&self, name: &'static str) -> Result<i64, JwtError> {
        let v = self.claims.get(name).ok_or(JwtError::Claim(name))?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)).ok_or(JwtError::Claim(name))
    }
}

/// base64url without padding (for tests and for callers building tokens).
#[cfg(test)]
pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects_shapes() {
        let token = format!(
            "{}.{}.{}",
            b64(br#"{"alg":"ES256","kid":"K"}"#),
            b64(br#"{"iss":"T","iat":5}"#),
            b64(b"sig")
        );
        let jws = Jws::decode(&token).unwrap();
        assert_eq!(jws.header_str("kid"), Some("K"));
        assert_eq!(jws.claim_secs("iat"), Ok(5));
        assert_eq!(jws.claim_str("iss"), Ok("T"));
        assert_eq!(jws.signature, b"sig");
        assert!(jws.expect_alg("ES256").is_ok());
        assert_eq!(jws.expect_alg("RS256"), Err(JwtError::Alg("ES256".into())));
        assert_eq!(Jws::decode("a.b").unwrap_err(), JwtError::Shape);
        assert_eq!(Jws::decode("a.b.c.d").unwrap_err(), JwtError::Shape);
        assert_eq!(Jws::decode("!!.e30.e30").unwrap_err(), JwtError::Base64("header"));
        let not_object = format!("{}.{}.", b64(b"[1]"), b64(b"{}"));
        assert_eq!(Jws::decode(&not_object).unwrap_err(), JwtError::Json("header"));
    }
}

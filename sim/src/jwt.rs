//! Telephony-credential login tokens: HS512 JWTs shaped like Telnyx's (`aud`/`iss` `telnyx_telephony`,
//! `sub` = credential id, `typ` `access`, `tel_token`), signed with a key derived from the seed.
//!
//! HMAC-SHA512 is written out here (RFC 2104, a dozen lines over `sha2`) rather than pulling in `hmac`.
//! The simulator only needs to recognise its own tokens (a device logging in by token), which it does by
//! lookup, so verification is not implemented.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha512};

/// HMAC-SHA512 of `msg` under `key`.
pub fn hmac_sha512(key: &[u8], msg: &[u8]) -> [u8; 64] {
    const BLOCK: usize = 128;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..64].copy_from_slice(&Sha512::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha512::new().chain_update(ipad).chain_update(msg).finalize();
    let outer = Sha512::new().chain_update(opad).chain_update(inner).finalize();
    outer.into()
}

/// Claims of a token.
pub struct Claims<'a> {
    pub credential_id: &'a str,
    pub iat: i64,
    pub exp: i64,
    pub jti: &'a str,
    pub tel_token: &'a str,
}

/// Builds and signs the JWT.
pub fn encode(key: &[u8], c: &Claims<'_>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "aud": "telnyx_telephony",
        "exp": c.exp,
        "iat": c.iat,
        "iss": "telnyx_telephony",
        "jti": c.jti,
        "nbf": c.iat - 1,
        "sub": c.credential_id,
        "tel_token": c.tel_token,
        "typ": "access",
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha512(key, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha512_rfc4231_case_2() {
        let mac = hmac_sha512(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
    }

    #[test]
    fn token_has_three_parts_and_claims() {
        let t = encode(b"k", &Claims { credential_id: "c1", iat: 10, exp: 20, jti: "j", tel_token: "t" });
        let parts: Vec<_> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["sub"], "c1");
        assert_eq!(claims["aud"], "telnyx_telephony");
    }
}

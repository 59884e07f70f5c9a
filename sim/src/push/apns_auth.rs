//! APNs provider-token (ES256 JWT) authentication.
//!
//! `authorization: bearer <jwt>`; the JWT must have header `alg` ES256 and `kid` = the
//! simulator's key id, claim `iss` = its team id, an integer `iat`, and a JOSE (r‖s, 64 bytes)
//! ECDSA P-256 / SHA-256 signature that verifies with the simulator's APNs key (crate `p256`).
//! Answers: no header or an empty token → `403 MissingProviderToken`; anything malformed,
//! unknown or unverifiable → `403 InvalidProviderToken`; `iat` more than one hour before the
//! simulator's clock → `403 ExpiredProviderToken`.
//!
//! Update rate: APNs rejects a *new* token less than 20 minutes after the previous one came
//! into use → `429 TooManyProviderTokenUpdates` (the old token stays valid). Apple counts tokens
//! of all keys of one team together and per connection, so the simulator tracks the current token
//! per (connection, team id). The connection is known when the router is served with
//! `into_make_service_with_connect_info::<SocketAddr>()`; without it, all connections share one
//! history per team (stricter than Apple: several fleet replicas each minting their own token
//! would then trip it).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::http::HeaderValue;
use p256::ecdsa::signature::Verifier as _;

use super::jwt::Jws;
use super::keys::ApnsKey;

/// Minimum time between token changes for one team on one connection.
pub(crate) const MIN_UPDATE_MS: i64 = 20 * 60 * 1000;
/// Maximum age of a token's `iat`.
pub(crate) const MAX_AGE_SECS: i64 = 60 * 60;

/// A refused provider token; the `Display` text is the APNs `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProviderTokenError {
    #[error("MissingProviderToken")]
    Missing,
    #[error("InvalidProviderToken")]
    Invalid,
    #[error("ExpiredProviderToken")]
    Expired,
    #[error("TooManyProviderTokenUpdates")]
    TooManyUpdates,
}

impl ProviderTokenError {
    pub(crate) fn status(self) -> u16 {
        match self {
            ProviderTokenError::TooManyUpdates => 429,
            _ => 403,
        }
    }
}

/// The token in use per (connection, team).
#[derive(Debug, Default)]
pub(crate) struct ProviderTokens {
    current: HashMap<(Option<SocketAddr>, String), InUse>,
}

#[derive(Debug)]
struct InUse {
    jwt: String,
    since_ms: i64,
}

/// Authenticate one request and note its token as in use.
pub(crate) fn authenticate(
    key: &ApnsKey,
    tokens: &mut ProviderTokens,
    connection: Option<SocketAddr>,
    authorization: Option<&HeaderValue>,
    now_ms: i64,
) -> Result<(), ProviderTokenError> {
    use ProviderTokenError::*;
    let value = authorization.ok_or(Missing)?.to_str().map_err(|_| Invalid)?.trim();
    let jwt = match value.split_once(' ') {
        Some((scheme, jwt)) if scheme.eq_ignore_ascii_case("bearer") => jwt.trim(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => return Err(Invalid),
    };
    if jwt.is_empty() {
        return Err(Missing);
    }
    let jws = Jws::decode(jwt).map_err(|_| Invalid)?;
    jws.expect_alg("ES256").map_err(|_| Invalid)?;
    if jws.header_str("kid") != Some(key.key_id.as_str())
        || jws.claim_str("iss").ok() != Some(key.team_id.as_str())
    {
        return Err(Invalid);
    }
    let iat = jws.claim_secs("iat").map_err(|_| Invalid)?;
    let sig = p256::ecdsa::Signature::from_slice(&jws.signature).map_err(|_| Invalid)?;
    key.verifying.verify(jws.signing_input.as_bytes(), &sig).map_err(|_| Invalid)?;
    if now_ms / 1000 - iat > MAX_AGE_SECS {
        return Err(Expired);
    }

    let slot = (connection, key.team_id.clone());
    match tokens.current.get_mut(&slot) {
        Some(in_use) if in_use.jwt == jwt => Ok(()),
        Some(in_use) if now_ms - in_use.since_ms < MIN_UPDATE_MS => Err(TooManyUpdates),
        Some(in_use) => {
            *in_use = InUse { jwt: jwt.to_owned(), since_ms: now_ms };
            Ok(())
        }
        None => {
            tokens.current.insert(slot, InUse { jwt: jwt.to_owned(), since_ms: now_ms });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::signature::Signer as _;
    use p256::pkcs8::DecodePrivateKey as _;

    use super::super::jwt::b64;
    use super::super::keys::apns_key;
    use super::*;
    use ProviderTokenError::*;

    fn sign(pem: &str, kid: &str, iss: &str, iat: i64) -> HeaderValue {
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem).unwrap();
        let input = format!(
            "{}.{}",
            b64(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#).as_bytes()),
            b64(format!(r#"{{"iss":"{iss}","iat":{iat}}}"#).as_bytes())
        );
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        HeaderValue::from_str(&format!("bearer {input}.{}", b64(&sig.to_bytes()))).unwrap()
    }

    #[test]
    fn verdicts() {
        let key = apns_key(1);
        let info = key.info();
        let mut t = ProviderTokens::default();
        let now = 10_000_000_i64;
        let good = sign(&info.private_key_pem, &info.key_id, &info.team_id, now - 10);
        assert_eq!(authenticate(&key, &mut t, None, Some(&good), now * 1000), Ok(()));
        assert_eq!(authenticate(&key, &mut t, None, None, now * 1000), Err(Missing));
        let empty = HeaderValue::from_static("bearer ");
        assert_eq!(authenticate(&key, &mut t, None, Some(&empty), now * 1000), Err(Missing));
        let other_key = apns_key(2).info();
        let forged = sign(&other_key.private_key_pem, &info.key_id, &info.team_id, now);
        assert_eq!(authenticate(&key, &mut t, None, Some(&forged), now * 1000), Err(Invalid));
        let wrong_kid = sign(&info.private_key_pem, "OTHERKEY00", &info.team_id, now);
        assert_eq!(authenticate(&key, &mut t, None, Some(&wrong_kid), now * 1000), Err(Invalid));
        let old = sign(&info.private_key_pem, &info.key_id, &info.team_id, now - 3601);
        assert_eq!(authenticate(&key, &mut t, None, Some(&old), now * 1000), Err(Expired));
        // A new token 10 minutes later is refused; the old one still works; after 20 min it's fine.
        let newer = sign(&info.private_key_pem, &info.key_id, &info.team_id, now + 600);
        assert_eq!(authenticate(&key, &mut t, None, Some(&newer), (now + 600) * 1000), Err(TooManyUpdates));
        assert_eq!(authenticate(&key, &mut t, None, Some(&good), (now + 600) * 1000), Ok(()));
        let conn: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(authenticate(&key, &mut t, Some(conn), Some(&newer), (now + 600) * 1000), Ok(()));
        assert_eq!(authenticate(&key, &mut t, None, Some(&newer), (now + 1200) * 1000), Ok(()));
    }
}

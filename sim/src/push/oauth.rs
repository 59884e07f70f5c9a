//! Google's OAuth2 token endpoint (`POST /token`, JWT-bearer grant, RFC 7523) and the bearer
//! check FCM sends go through.
//!
//! Checks, in order (first failure answers `400` with Google's `{"error","error_description"}`):
//! `grant_type` is `urn:ietf:params:oauth:grant-type:jwt-bearer` (`unsupported_grant_type`);
//! an `assertion` is present (`invalid_request`); it decodes as a JWT with `alg` RS256, a `kid`
//! (if any) equal to the service account's `private_key_id`, and an RS256 signature that
//! verifies with the service-account key (`invalid_grant` "Invalid JWT Signature."); `iss` is the
//! `client_email` (`invalid_grant` account not found); `aud` is a `token_uri` this simulator handed
//! out, `http://{Host}/token`, or Google's own endpoint; `iat`/`exp` present, `exp - iat` ≤ 3600,
//! `iat` at most 5 min in the future and `exp` not past (`invalid_grant` "…short-lived token…");
//! `scope` contains `…/auth/firebase.messaging` or `…/auth/cloud-platform` (`invalid_scope`).
//! Success: `{"access_token","expires_in":3599,"token_type":"Bearer"}`, valid for 3599 s of
//! simulator time. The `error_description` texts are Google's as commonly reported, not re-verified.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use signature::Verifier as _;

use super::jwt::{Jws, JwtError};
use super::keys::{CLIENT_EMAIL, RsaKeys};
use super::record::{RecordedRequest, Reply, RequestKind, interesting_headers};
use super::state::{State as SimState, latency};
use super::{Provider, PushSim};

use rsa::signature;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
const SCOPES: [&str; 2] =
    ["https://www.googleapis.com/auth/firebase.messaging", "https://www.googleapis.com/auth/cloud-platform"];
/// Lifetime of an issued access token, as Google reports it.
pub(crate) const EXPIRES_IN_SECS: i64 = 3599;

/// A refused grant, rendered as Google's token-endpoint error.
#[derive(Debug, thiserror::Error)]
enum GrantError {
    #[error("Invalid grant_type: {0}")]
    GrantType(String),
    #[error("Missing required parameter: assertion")]
    MissingAssertion,
    #[error("Invalid JWT Signature.")]
    Signature(#[source] JwtError),
    #[error("Invalid grant: account not found")]
    Account,
    #[error("Invalid JWT: Failed audience check. The expected audience is {GOOGLE_TOKEN_URI}.")]
    Audience,
    #[error(
        "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
    )]
    Timeframe,
    #[error("Invalid OAuth scope or ID token audience provided.")]
    Scope,
}

impl GrantError {
    fn code(&self) -> &'static str {
        match self {
            GrantError::GrantType(_) => "unsupported_grant_type",
            GrantError::MissingAssertion => "invalid_request",
            GrantError::Scope => "invalid_scope",
            _ => "invalid_grant",
        }
    }
}

pub(super) fn routes() -> Router<PushSim> {
    Router::new().route("/token", post(token))
}

async fn token(State(sim): State<PushSim>, version: Version, headers: HeaderMap, body: Bytes) -> Response {
    let now = sim.inner.clock.now();
    let rsa = sim.inner.rsa_async().await;
    let form = parse_form(&body);
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let host_uri =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(|h| format!("http://{h}/token"));

    let mut recorded = serde_json::Map::new();
    for (k, v) in &form {
        recorded.insert(k.clone(), Value::String(v.clone()));
    }
    if let Some(jws) = field("assertion").and_then(|a| Jws::decode(a).ok()) {
        recorded.insert("assertion_header".into(), Value::Object(jws.header.clone()));
        recorded.insert("assertion_claims".into(), Value::Object(jws.claims));
    }

    let (response, delay) = {
        let mut state = sim.inner.state();
        let decided = check_grant(
            &state,
            &rsa,
            field("grant_type"),
            field("assertion"),
            host_uri.as_deref(),
            now.unix_ms / 1000,
        );
        let (response, reason) = match decided {
            Ok(()) => {
                let access_token = format!("ya29.sim-{}", hex32(&state.fresh_bytes(sim.inner.seed)));
                state.access_tokens.insert(access_token.clone(), now.unix_ms + EXPIRES_IN_SECS * 1000);
                let body = json!({"access_token": access_token, "expires_in": EXPIRES_IN_SECS, "token_type": "Bearer"});
                ((StatusCode::OK, axum::Json(body)).into_response(), None)
            }
            Err(e) => {
                let body = json!({"error": e.code(), "error_description": e.to_string()});
                ((StatusCode::BAD_REQUEST, axum::Json(body)).into_response(), Some(e.code().to_owned()))
            }
        };
        let status = response.status().as_u16();
        let reply =
            Reply { status: Some(status), reason, retry_after_secs: None, delivered: false, scripted: false };
        state.record(RecordedRequest {
            seq: 0,
            provider: Provider::Fcm,
            kind: RequestKind::OauthToken,
            token: None,
            path: "/token".into(),
            http_version: format!("{version:?}"),
            headers: interesting_headers(&headers),
            body: Value::Object(recorded),
            reply,
            at: now.at,
            at_ms: now.at_ms,
            unix_ms: now.unix_ms,
        });
        (response, state.default_latency)
    };
    latency(delay).await;
    response
}

fn check_grant(
    state: &SimState,
    rsa: &RsaKeys,
    grant_type: Option<&str>,
    assertion: Option<&str>,
    host_uri: Option<&str>,
    now_secs: i64,
) -> Result<(), GrantError> {
    match grant_type {
        Some(GRANT_TYPE) => {}
        other => return Err(GrantError::GrantType(other.unwrap_or_default().to_owned())),
    }
    let assertion = assertion.filter(|a| !a.is_empty()).ok_or(GrantError::MissingAssertion)?;
    let jws = Jws::decode(assertion).map_err(GrantError::Signature)?;
    jws.expect_alg("RS256").map_err(GrantError::Signature)?;
    if jws.header_str("kid").is_some_and(|kid| kid != rsa.key_id) {
        return Err(GrantError::Signature(JwtError::KeyId));
    }
    let sig = rsa::pkcs1v15::Signature::try_from(jws.signature.as_slice())
        .map_err(|_| GrantError::Signature(JwtError::Signature))?;
    rsa.verifying
        .verify(jws.signing_input.as_bytes(), &sig)
        .map_err(|_| GrantError::Signature(JwtError::Signature))?;

    if jws.claim_str("iss").ok() != Some(CLIENT_EMAIL) {
        return Err(GrantError::Account);
    }
    let aud = jws.claim_str("aud").map_err(|_| GrantError::Audience)?;
    if !(aud == GOOGLE_TOKEN_URI || state.token_uris.contains(aud) || Some(aud) == host_uri) {
        return Err(GrantError::Audience);
    }
    let (iat, exp) = match (jws.claim_secs("iat"), jws.claim_secs("exp")) {
        (Ok(i), Ok(e)) => (i, e),
        _ => return Err(GrantError::Timeframe),
    };
    if exp <= iat || exp - iat > 3600 || iat > now_secs + 300 || exp <= now_secs {
        return Err(GrantError::Timeframe);
    }
    let scope = jws.claim_str("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| SCOPES.contains(&s)) {
        return Err(GrantError::Scope);
    }
    Ok(())
}

/// Why a bearer token was refused by an FCM endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BearerError {
    #[error(
        "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    )]
    Missing,
    #[error(
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    )]
    Invalid,
}

/// Accept `Authorization: Bearer <token>` when the token was issued and has not expired.
pub(crate) fn check_bearer(state: &SimState, headers: &HeaderMap, now_ms: i64) -> Result<(), BearerError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(BearerError::Missing);
    };
    let value = value.to_str().map_err(|_| BearerError::Invalid)?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(BearerError::Invalid),
    };
    match state.access_tokens.get(token) {
        Some(expires) if *expires > now_ms => Ok(()),
        _ => Err(BearerError::Invalid),
    }
}

/// `application/x-www-form-urlencoded` into (name, value) pairs; undecodable escapes are kept as is.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let form = parse_form(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b-c_d.e&x=1+2%zz%4");
        assert_eq!(form[0], ("grant_type".into(), GRANT_TYPE.into()));
        assert_eq!(form[1], ("assertion".into(), "a.b-c_d.e".into()));
        assert_eq!(form[2], ("x".into(), "1 2%zz%4".into()));
    }
}

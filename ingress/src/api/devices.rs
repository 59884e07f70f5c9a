//! `PUT|GET|DELETE /v1/devices/{id}` and `POST /v1/devices/{id}/token`.
//!
//! Views never include the SIP password (nor its sealed form); the credential shows only its
//! status, SIP username and expiry.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use fleet_domain::credentials::{CredentialStatus, dialable};
use fleet_store::{Device, DeviceRegistration};
use fleet_telnyx::TelnyxError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::IdPath;
use super::{ApiState, bounded, check_id, invalid_field, parse_body, store_rejection};
use crate::error::{ErrorBody, Rejection};

/// A device to register: whose it is, and where its pushes go.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeviceInput)]
pub(super) struct DeviceBody {
    user_id: String,
    org_id: String,
    #[schema(value_type = Platform)]
    platform: String,
    /// FCM token (Android) or APNs alert token
    #[serde(default)]
    #[schema(max_length = 4096)]
    push_token: Option<String>,
    /// APNs VoIP (PushKit) device token, hex
    #[serde(default)]
    #[schema(pattern = "^([0-9A-Fa-f]{2}){8,200}$")]
    voip_token: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64)]
    app_version: Option<String>,
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
}

/// What a device is; `platform` is checked against it (and stored as the word).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Platform {
    Android,
    Ios,
    Web,
}

/// The device's Telnyx SIP credential (never its password).
#[derive(Serialize, ToSchema)]
#[schema(as = Credential)]
pub(super) struct CredentialView {
    status: CredentialStatus,
    sip_username: Option<String>,
    expires_at: Option<DateTime<Utc>>,
}

/// A registered device and the state of its credential.
#[derive(Serialize, ToSchema)]
#[schema(as = Device)]
pub(super) struct DeviceView {
    id: String,
    user_id: String,
    org_id: String,
    #[schema(value_type = Platform)]
    platform: String,
    push_token: Option<String>,
    voip_token: Option<String>,
    app_version: Option<String>,
    name: Option<String>,
    credential: Option<CredentialView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn view(d: Device) -> DeviceView {
    let r = d.registration;
    DeviceView {
        id: r.id,
        user_id: r.user_id,
        org_id: r.org_id,
        platform: r.platform,
        push_token: r.push_token,
        voip_token: r.voip_token,
        app_version: r.app_version,
        name: r.name,
        credential: d.credential.map(|c| CredentialView {
            status: c.status,
            sip_username: c.sip_username,
            expires_at: c.expires_at,
        }),
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

fn not_found() -> Rejection {
    Rejection::new(StatusCode::NOT_FOUND, "device_not_found", "no device with this id")
}

/// Register a device (idempotent). Provisions its Telnyx SIP credential asynchronously, at most
/// once per (user, org, device); re-registering retries a failed provisioning.
#[utoipa::path(put, path = "/v1/devices/{id}", operation_id = "put_device", params(IdPath), request_body = DeviceBody, responses(
    (status = 200, description = "Updated", body = DeviceView),
    (status = 201, description = "Created", body = DeviceView),
    (status = 422, description = "invalid_reference: unknown user, or user not in that organization", body = ErrorBody),
))]
pub(super) async fn put(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
    body: Bytes,
) -> Result<(StatusCode, Json<DeviceView>), Rejection> {
    check_id("device id", &id)?;
    let b: DeviceBody = parse_body(&body)?;
    check_id("user_id", &b.user_id)?;
    check_id("org_id", &b.org_id)?;
    if serde_json::from_value::<Platform>(serde_json::Value::String(b.platform.clone())).is_err() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "invalid_field",
            "platform must be android, ios or web",
        ));
    }
    bounded("push_token", &b.push_token, 4096)?;
    if b.voip_token.as_deref().is_some_and(|t| !fleet_domain::push::is_apns_device_token(t)) {
        return Err(invalid_field("voip_token must be the APNs device token in hex (8 to 200 bytes)"));
    }
    bounded("app_version", &b.app_version, 64)?;
    bounded("name", &b.name, super::orgs::MAX_NAME_CHARS)?;
    let reg = DeviceRegistration {
        id: id.clone(),
        user_id: b.user_id,
        org_id: b.org_id,
        platform: b.platform,
        push_token: b.push_token,
        voip_token: b.voip_token,
        app_version: b.app_version,
        name: b.name,
    };
    let registered = state.store.register_device(&reg).await.map_err(store_rejection)?;
    let mut device = state.store.device(&id).await.map_err(store_rejection)?.ok_or_else(not_found)?;
    // The credential as this registration left it (a worker may already be past it).
    device.credential = Some(registered.credential);
    let status = if registered.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view(device))))
}

/// A device and the state of its credential (never the password)
#[utoipa::path(get, path = "/v1/devices/{id}", operation_id = "get_device", params(IdPath), responses(
    (status = 200, description = "The device", body = DeviceView),
    (status = 404, description = "device_not_found", body = ErrorBody),
))]
pub(super) async fn get(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<Json<DeviceView>, Rejection> {
    check_id("device id", &id)?;
    let device = state.store.device(&id).await.map_err(store_rejection)?.ok_or_else(not_found)?;
    Ok(Json(view(device)))
}

/// Deregister: deletes the device and (asynchronously) its Telnyx credential. Idempotent.
#[utoipa::path(delete, path = "/v1/devices/{id}", operation_id = "delete_device", params(IdPath), responses(
    (status = 204, description = "Gone (or never existed)"),
))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<StatusCode, Rejection> {
    check_id("device id", &id)?;
    state.store.deregister_device(&id).await.map_err(store_rejection)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A login token for the Telnyx SDKs.
#[derive(Serialize, ToSchema)]
#[schema(as = LoginToken)]
pub(super) struct TokenView {
    /// Telnyx JWT; valid up to 24 h or until the credential expires
    token: String,
    sip_username: String,
    credential_expires_at: Option<DateTime<Utc>>,
}

/// A short-lived Telnyx login token (JWT) for the WebRTC/mobile SDKs
#[utoipa::path(post, path = "/v1/devices/{id}/token", operation_id = "issue_login_token", params(IdPath), responses(
    (status = 201, description = "Token issued", body = TokenView),
    (status = 404, description = "device_not_found", body = ErrorBody),
    (status = 409, description = "credential_not_ready: provisioning, failed, expired or missing", body = ErrorBody),
    (status = 503, description = "telnyx_unavailable, telnyx_busy (the shared Telnyx rate budget had no room within 2 s) or store_unavailable; retry", body = ErrorBody),
))]
pub(super) async fn token(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
) -> Result<(StatusCode, Json<TokenView>), Rejection> {
    check_id("device id", &id)?;
    let device = state.store.device(&id).await.map_err(store_rejection)?.ok_or_else(not_found)?;
    let not_ready = |why: String| Rejection::new(StatusCode::CONFLICT, "credential_not_ready", why);
    let cred =
        device.credential.ok_or_else(|| not_ready("the device has no credential; re-register it".into()))?;
    if !dialable(cred.status, cred.expires_at, Utc::now()) {
        let why = match cred.status {
            CredentialStatus::Active => "the credential expired; re-register the device".to_owned(),
            s => format!("the credential is {}", s.as_str()),
        };
        return Err(not_ready(why));
    }
    let (Some(telnyx_id), Some(sip_username)) = (cred.telnyx_id, cred.sip_username) else {
        return Err(not_ready("the credential is not recorded yet".into()));
    };
    let telnyx = state.telnyx.as_ref().ok_or_else(|| {
        Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "telnyx_unavailable",
            "TELNYX_API_KEY is not configured",
        )
    })?;
    match telnyx.credential_token(&telnyx_id).await {
        Ok(token) => Ok((
            StatusCode::CREATED,
            Json(TokenView { token, sip_username, credential_expires_at: cred.expires_at }),
        )),
        Err(TelnyxError::NotFound) => Err(not_ready("the credential no longer exists on Telnyx".into())),
        Err(TelnyxError::Busy { .. }) => Err(Rejection::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "telnyx_busy",
            "the Telnyx rate budget is in use (e.g. by a cleanup run); retry in a few seconds",
        )),
        Err(e) => {
            tracing::warn!(device_id = %id, error = %e, "Login token request to Telnyx failed.");
            Err(Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "telnyx_unavailable",
                "Telnyx did not issue a token; retry",
            ))
        }
    }
}

//! `PUT /v1/organizations/{id}` and `PUT /v1/users/{id}`.
//!
//! An organization carries its voicemail and AI-agent settings. Settings left out are stored as
//! "not set" so the product default applies (and follows it if it changes); the answer shows the
//! effective value (`voicemail_greeting`, `voicemail_max_secs`). A PUT replaces the whole
//! resource: a field left out goes back to its default.
//!
//! A user belongs to one or more organizations: `org_ids`, or `org_id` alone as before. With
//! both, `org_id` (the primary one) must be among `org_ids`. Each PUT replaces the memberships, so
//! moving a user is leaving the old organization.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use fleet_domain::call::{DEFAULT_GREETING, DEFAULT_VOICEMAIL_MAX_SECS};
use fleet_domain::routing::{ValidationError, validate_sip_uri, validate_voicemail_max_secs};
use fleet_store::{OrgSettings, Organization, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::IdPath;
use super::{ApiState, bounded, check_id, invalid, invalid_field, parse_body, secs, store_rejection};
use crate::error::{ErrorBody, Rejection};

/// Longest greeting, in characters (what a text-to-speech request takes comfortably).
const MAX_GREETING_CHARS: usize = 3000;
/// Most organizations one user may belong to.
const MAX_MEMBERSHIPS: usize = 100;
/// Display names of organizations, users and devices, in characters.
pub(super) const MAX_NAME_CHARS: usize = 256;

/// An organization's settings; a setting left out (or null) is the product default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrganizationInput)]
pub(super) struct OrgBody {
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
    /// spoken before the beep; null or absent = the product default
    #[serde(default)]
    #[schema(min_length = 1, max_length = 3000)]
    voicemail_greeting: Option<String>,
    /// Telnyx speak voice
    #[serde(default)]
    #[schema(max_length = 64)]
    voicemail_voice: Option<String>,
    #[serde(default)]
    #[schema(max_length = 64, example = "en-US")]
    voicemail_language: Option<String>,
    // Signed so that a negative or huge number gets the range error, not a parse error.
    #[serde(default)]
    #[schema(minimum = 10, maximum = 600, default = json!(DEFAULT_VOICEMAIL_MAX_SECS))]
    voicemail_max_secs: Option<i64>,
    /// where ai_agent calls are transferred; null = none (they go to voicemail)
    #[serde(default)]
    #[schema(pattern = "^sips?:\\S+$", max_length = 512)]
    ai_agent_sip_uri: Option<String>,
}

/// An organization as the API shows it, defaults filled in.
#[derive(Serialize, ToSchema)]
#[schema(as = Organization)]
pub(super) struct OrgView {
    id: String,
    name: Option<String>,
    /// the effective greeting
    #[schema(default = json!(DEFAULT_GREETING))]
    voicemail_greeting: String,
    voicemail_voice: Option<String>,
    voicemail_language: Option<String>,
    /// the effective maximum, in seconds
    #[schema(default = json!(DEFAULT_VOICEMAIL_MAX_SECS))]
    voicemail_max_secs: u32,
    ai_agent_sip_uri: Option<String>,
}

impl From<Organization> for OrgView {
    fn from(org: Organization) -> Self {
        let s = org.settings;
        Self {
            id: org.id,
            name: org.name,
            voicemail_greeting: s.voicemail_greeting.unwrap_or_else(|| DEFAULT_GREETING.to_owned()),
            voicemail_voice: s.voicemail_voice,
            voicemail_language: s.voicemail_language,
            voicemail_max_secs: s.voicemail_max_secs.unwrap_or(DEFAULT_VOICEMAIL_MAX_SECS),
            ai_agent_sip_uri: s.ai_agent_sip_uri,
        }
    }
}

/// org_ids, or org_id alone (then org_ids = [org_id]); with both, org_id must be in org_ids
/// (invalid_field otherwise); at least one is required.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UserInput)]
pub(super) struct UserBody {
    /// the primary organization
    #[serde(default)]
    org_id: Option<String>,
    /// every organization the user belongs to; a call to any of them rings all the user's devices
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    org_ids: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_length = 256)]
    name: Option<String>,
    /// do not disturb: inbound calls go to voicemail
    #[serde(default)]
    #[schema(default = false)]
    dnd: Option<bool>,
}

/// A user as the API shows it: `org_ids` is every membership, the primary `org_id` first.
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub(super) struct UserView {
    id: String,
    org_id: String,
    /// every membership, org_id first
    org_ids: Vec<String>,
    name: Option<String>,
    dnd: bool,
}

fn status(created: bool) -> StatusCode {
    if created { StatusCode::CREATED } else { StatusCode::OK }
}

fn org_settings(b: &OrgBody) -> Result<OrgSettings, Rejection> {
    if let Some(g) = &b.voicemail_greeting {
        if g.trim().is_empty() {
            return Err(invalid_field("voicemail_greeting is empty; leave it out (or null) for the default"));
        }
    }
    bounded("voicemail_greeting", &b.voicemail_greeting, MAX_GREETING_CHARS)?;
    bounded("voicemail_voice", &b.voicemail_voice, 64)?;
    bounded("voicemail_language", &b.voicemail_language, 64)?;
    let max_secs = b
        .voicemail_max_secs
        .map(|s| secs(s, validate_voicemail_max_secs, ValidationError::VoicemailMaxSecsOutOfRange))
        .transpose()?;
    if let Some(uri) = &b.ai_agent_sip_uri {
        validate_sip_uri(uri).map_err(invalid)?;
    }
    bounded("ai_agent_sip_uri", &b.ai_agent_sip_uri, 512)?;
    Ok(OrgSettings {
        voicemail_greeting: b.voicemail_greeting.clone(),
        voicemail_voice: b.voicemail_voice.clone(),
        voicemail_language: b.voicemail_language.clone(),
        voicemail_max_secs: max_secs,
        ai_agent_sip_uri: b.ai_agent_sip_uri.clone(),
    })
}

/// Create or update an organization and its voicemail / AI-agent settings (idempotent)
#[utoipa::path(put, path = "/v1/organizations/{id}", operation_id = "put_organization", params(IdPath), request_body = OrgBody, responses(
    (status = 200, description = "Updated", body = OrgView),
    (status = 201, description = "Created", body = OrgView),
))]
pub(super) async fn put_org(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
    body: Bytes,
) -> Result<(StatusCode, Json<OrgView>), Rejection> {
    check_id("organization id", &id)?;
    let body: OrgBody = parse_body(&body)?;
    bounded("name", &body.name, MAX_NAME_CHARS)?;
    let settings = org_settings(&body)?;
    let org = Organization { id, name: body.name, settings };
    let created = state.store.upsert_organization(&org).await.map_err(store_rejection)?;
    Ok((status(created), Json(org.into())))
}

/// The primary organization and every membership (primary first, no repeats).
fn memberships(b: &UserBody) -> Result<(String, Vec<String>), Rejection> {
    let mut all: Vec<String> = Vec::new();
    for o in b.org_ids.iter().flatten() {
        check_id("org_ids", o)?;
        if !all.contains(o) {
            all.push(o.clone());
        }
    }
    if all.len() > MAX_MEMBERSHIPS {
        return Err(invalid_field(format!("a user belongs to at most {MAX_MEMBERSHIPS} organizations")));
    }
    if b.org_ids.is_some() && all.is_empty() {
        return Err(invalid_field("org_ids is empty; a user belongs to at least one organization"));
    }
    let primary = match &b.org_id {
        Some(o) => {
            check_id("org_id", o)?;
            if b.org_ids.is_some() && !all.contains(o) {
                return Err(invalid_field("org_id must be one of org_ids"));
            }
            o.clone()
        }
        None => all.first().cloned().ok_or_else(|| invalid_field("org_id or org_ids is required"))?,
    };
    all.retain(|o| *o != primary);
    all.insert(0, primary.clone());
    Ok((primary, all))
}

/// Create or update a user: its organizations (org_ids, or org_id alone), name and
/// do-not-disturb. Memberships are replaced, so moving a user is leaving the old organization.
#[utoipa::path(put, path = "/v1/users/{id}", operation_id = "put_user", params(IdPath), request_body = UserBody, responses(
    (status = 200, description = "Updated", body = UserView),
    (status = 201, description = "Created", body = UserView),
    (status = 422, description = "invalid_reference: one of the organizations does not exist", body = ErrorBody),
))]
pub(super) async fn put_user(
    State(state): State<ApiState>,
    Path(IdPath { id }): Path<IdPath>,
    body: Bytes,
) -> Result<(StatusCode, Json<UserView>), Rejection> {
    check_id("user id", &id)?;
    let body: UserBody = parse_body(&body)?;
    bounded("name", &body.name, MAX_NAME_CHARS)?;
    let (org_id, org_ids) = memberships(&body)?;
    let user = User { id, org_id, org_ids, name: body.name, dnd: body.dnd.unwrap_or(false) };
    let created = state.store.upsert_user(&user).await.map_err(store_rejection)?;
    let org_ids = user.memberships();
    Ok((
        status(created),
        Json(UserView { id: user.id, org_id: user.org_id, org_ids, name: user.name, dnd: user.dnd }),
    ))
}

//! `GET /v1/openapi.json`: the app API's OpenAPI 3.1 document (hand-written, kept beside the
//! handlers it documents). Public: it is served without the token. The integration tests check
//! that every route of the router ([`super::routes`]) is documented here.
//!
//! Error convention, stated in `info.description` too: `400` for anything wrong with the request
//! itself (malformed JSON, unknown fields, bad ids, values refused by a validator, each with its
//! own `error` reason), `422 invalid_reference` for a reference the store refuses (unknown
//! organization, user not in it). Neither changes anything.

mod schemas;

use axum::Json;
use serde_json::{Value, json};

pub(super) async fn document() -> Json<Value> {
    Json(spec())
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn ok(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}})
}

fn e164_param() -> Value {
    json!({"name": "e164", "in": "path", "required": true,
           "description": "E.164 with a literal + (percent-encoded %2B is accepted too)",
           "schema": {"type": "string", "pattern": "^\\+[1-9][0-9]{1,14}$"}, "example": "+15551234567"})
}

const VALIDATION: &str = "Bad input; nothing changed. invalid_id, invalid_body (malformed JSON, unknown or \
    mistyped field), invalid_field, and the validators' reasons: invalid_e164, invalid_timezone, invalid_time \
    (not HH:MM), empty_days, empty_window, invalid_day, invalid_mode, invalid_outside_hours, \
    ring_timeout_out_of_range (5-120), voicemail_max_secs_out_of_range (10-600), invalid_sip_uri";

pub(crate) fn spec() -> Value {
    let common = json!({
        "400": error_response(VALIDATION),
        "401": error_response("missing_token, invalid_token, or api_disabled (no CALLFLEET_API_TOKEN configured)"),
        "500": error_response("internal_error"),
        "503": error_response("store_unavailable; retry"),
    });
    let with = |extra: Value| {
        let mut m = common.as_object().cloned().unwrap_or_default();
        m.extend(extra.as_object().cloned().unwrap_or_default());
        Value::Object(m)
    };
    let upserted = |schema: &str, extra: Value| {
        let mut m = json!({"200": ok("Updated", schema), "201": ok("Created", schema)});
        if let (Some(m), Some(e)) = (m.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        with(m)
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "callfleet app API", "version": "1", "description":
            "Bearer CALLFLEET_API_TOKEN on every route but this document. Idempotent PUTs with ids chosen by the \
             app: 201 created, 200 updated; a PUT replaces the whole resource. DELETEs answer 204 whether or not \
             the thing existed. Errors are {\"error\": reason, \"detail\": text}: 400 for a bad request (including \
             every validation failure), 422 invalid_reference for a reference the store refuses. A refused request \
             changes nothing."},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/openapi.json": {"get": {
                "summary": "This document (no token needed)",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}}
            }},
            "/v1/organizations/{id}": {"put": {
                "summary": "Create or update an organization and its voicemail / AI-agent settings (idempotent)",
                "parameters": [id_param("id")],
                "requestBody": body("OrganizationInput"),
                "responses": upserted("Organization", json!({}))
            }},
            "/v1/organizations/{id}/blocked-numbers/{e164}": {
                "put": {
                    "summary": "Block a caller for this organization: its calls are rejected (idempotent). Body: none or {}.",
                    "parameters": [id_param("id"), e164_param()],
                    "responses": with(json!({
                        "200": ok("Already blocked", "BlockedNumber"),
                        "201": ok("Blocked", "BlockedNumber"),
                        "422": error_response("invalid_reference: the organization does not exist")
                    }))
                },
                "delete": {
                    "summary": "Unblock a caller. Idempotent.",
                    "parameters": [id_param("id"), e164_param()],
                    "responses": with(json!({"204": {"description": "Not blocked (any more, or never was)"}}))
                }
            },
            "/v1/users/{id}": {"put": {
                "summary": "Create or update a user: its organizations (org_ids, or org_id alone), name and do-not-disturb. Memberships are replaced, so moving a user is leaving the old organization.",
                "parameters": [id_param("id")],
                "requestBody": body("UserInput"),
                "responses": upserted("User", json!({
                    "422": error_response("invalid_reference: one of the organizations does not exist")
                }))
            }},
            "/v1/users/{id}/active-call": {"get": {
                "summary": "The user's newest call that has not ended (ringing, answered, voicemail, AI agent)",
                "parameters": [id_param("id")],
                "responses": with(json!({
                    "200": ok("The live call", "Call"),
                    "404": error_response("no_active_call (also for an unknown user)")
                }))
            }},
            "/v1/devices/{id}": {
                "put": {
                    "summary": "Register a device (idempotent). Provisions its Telnyx SIP credential asynchronously, at most once per (user, org, device); re-registering retries a failed provisioning.",
                    "parameters": [id_param("id")],
                    "requestBody": body("DeviceInput"),
                    "responses": upserted("Device", json!({
                        "422": error_response("invalid_reference: unknown user, or user not in that organization")
                    }))
                },
                "get": {
                    "summary": "A device and the state of its credential (never the password)",
                    "parameters": [id_param("id")],
                    "responses": with(json!({
                        "200": ok("The device", "Device"),
                        "404": error_response("device_not_found")
                    }))
                },
                "delete": {
                    "summary": "Deregister: deletes the device and (asynchronously) its Telnyx credential. Idempotent.",
                    "parameters": [id_param("id")],
                    "responses": with(json!({"204": {"description": "Gone (or never existed)"}}))
                }
            },
            "/v1/devices/{id}/token": {"post": {
                "summary": "A short-lived Telnyx login token (JWT) for the WebRTC/mobile SDKs",
                "parameters": [id_param("id")],
                "responses": with(json!({
                    "201": ok("Token issued", "LoginToken"),
                    "404": error_response("device_not_found"),
                    "409": error_response("credential_not_ready: provisioning, failed, expired or missing"),
                    "503": error_response("telnyx_unavailable, telnyx_busy (the shared Telnyx rate budget had no room within 2 s) or store_unavailable; retry")
                }))
            }},
            "/v1/numbers/{e164}": {
                "put": {
                    "summary": "Create or replace a number's routing (idempotent)",
                    "parameters": [e164_param()],
                    "requestBody": body("NumberInput"),
                    "responses": upserted("Number", json!({
                        "422": error_response("invalid_reference: the organization does not exist, or the user is not a member of it")
                    }))
                },
                "get": {
                    "summary": "A number's stored routing",
                    "parameters": [e164_param()],
                    "responses": with(json!({
                        "200": ok("The number", "Number"),
                        "404": error_response("number_not_found")
                    }))
                },
                "delete": {
                    "summary": "Remove a number: its calls are rejected as unknown from then on. Idempotent.",
                    "parameters": [e164_param()],
                    "responses": with(json!({"204": {"description": "Gone (or never existed)"}}))
                }
            },
            "/v1/calls/{call_session_id}": {"get": {
                "summary": "Status of a call by its Telnyx call_session_id: the polling dismissal channel (was it answered elsewhere?)",
                "parameters": [id_param("call_session_id")],
                "responses": with(json!({
                    "200": ok("The call", "Call"),
                    "404": error_response("call_not_found")
                }))
            }},
            "/v1/calls/{call_control_id}/recording": {"post": {
                "summary": "Record a direct WebRTC call (placed by a browser, not routed by callfleet) by its Telnyx \
                    call_control_id. May come before callfleet has seen the call or before it is answered: the \
                    recording starts once Telnyx accepts it (retried while the call lives, never past its end), and \
                    goes through the recordings pipeline like any other. A repeat answers 200 with the request as it stands.",
                "parameters": [id_param("call_control_id")],
                "requestBody": body("RecordingRequestBody"),
                "responses": with(json!({
                    "200": ok("Already requested: the request as it stands", "RecordingRequest"),
                    "202": ok("Requested: the recording starts once the call is answered", "RecordingRequest"),
                    "404": error_response("unknown_call: neither callfleet nor Telnyx knows the call"),
                    "409": error_response("call_ended, or recorded_by_callfleet (a call callfleet routed is recorded from its answer)"),
                    "422": error_response("unknown_party: from names none of callfleet's credentials or numbers"),
                    "503": error_response("store_unavailable or telnyx_unavailable; retry")
                }))
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "CALLFLEET_API_TOKEN"}},
            "schemas": schemas::all()
        }
    })
}

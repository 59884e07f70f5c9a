//! `GET /v1/openapi.json`: the app API's OpenAPI 3.1 document (hand-written, kept beside the
//! handlers it documents).

use axum::Json;
use serde_json::{Value, json};

pub(super) async fn document() -> Json<Value> {
    Json(spec())
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}})
}

pub(crate) fn spec() -> Value {
    let common = json!({
        "400": error_response("Bad input (invalid_id, invalid_body, invalid_field); nothing changed"),
        "401": error_response("missing_token, invalid_token, or api_disabled (no CALLFLEET_API_TOKEN configured)"),
        "503": error_response("store_unavailable; retry"),
    });
    let with = |extra: Value| {
        let mut m = common.as_object().cloned().unwrap_or_default();
        m.extend(extra.as_object().cloned().unwrap_or_default());
        Value::Object(m)
    };
    json!({
        "openapi": "3.1.0",
        "info": {"title": "callfleet app API", "version": "1"},
        "security": [{"bearer": []}],
        "paths": {
            "/v1/organizations/{id}": {"put": {
                "summary": "Create or update an organization (idempotent)",
                "parameters": [id_param("id")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrganizationInput"}}}},
                "responses": with(json!({
                    "200": {"description": "Updated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Organization"}}}},
                    "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Organization"}}}}
                }))
            }},
            "/v1/users/{id}": {"put": {
                "summary": "Create or update a user; a user belongs to one organization (moving them is leaving the old one)",
                "parameters": [id_param("id")],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UserInput"}}}},
                "responses": with(json!({
                    "200": {"description": "Updated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}},
                    "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/User"}}}},
                    "422": error_response("invalid_reference: the organization does not exist")
                }))
            }},
            "/v1/devices/{id}": {
                "put": {
                    "summary": "Register a device (idempotent). Provisions its Telnyx SIP credential asynchronously, at most once per (user, org, device); re-registering retries a failed provisioning.",
                    "parameters": [id_param("id")],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DeviceInput"}}}},
                    "responses": with(json!({
                        "200": {"description": "Updated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Device"}}}},
                        "201": {"description": "Created", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Device"}}}},
                        "422": error_response("invalid_reference: unknown user, or user not in that organization")
                    }))
                },
                "get": {
                    "summary": "A device and the state of its credential (never the password)",
                    "parameters": [id_param("id")],
                    "responses": with(json!({
                        "200": {"description": "The device", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Device"}}}},
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
                    "201": {"description": "Token issued", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoginToken"}}}},
                    "404": error_response("device_not_found"),
                    "409": error_response("credential_not_ready: provisioning, failed, expired or missing"),
                    "503": error_response("telnyx_unavailable or store_unavailable; retry")
                }))
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "CALLFLEET_API_TOKEN"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                    "error": {"type": "string", "description": "machine-readable reason"},
                    "detail": {"description": "human-readable detail"}}},
                "OrganizationInput": {"type": "object", "additionalProperties": false, "properties": {"name": {"type": ["string", "null"]}}},
                "Organization": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
                "UserInput": {"type": "object", "additionalProperties": false, "required": ["org_id"], "properties": {
                    "org_id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
                "User": {"type": "object", "required": ["id", "org_id"], "properties": {
                    "id": {"type": "string"}, "org_id": {"type": "string"}, "name": {"type": ["string", "null"]}}},
                "DeviceInput": {"type": "object", "additionalProperties": false, "required": ["user_id", "org_id", "platform"], "properties": {
                    "user_id": {"type": "string"}, "org_id": {"type": "string"},
                    "platform": {"type": "string", "enum": ["android", "ios", "web"]},
                    "push_token": {"type": ["string", "null"], "description": "FCM token (Android) or APNs alert token"},
                    "voip_token": {"type": ["string", "null"], "description": "APNs VoIP (PushKit) token"},
                    "app_version": {"type": ["string", "null"], "maxLength": 64},
                    "name": {"type": ["string", "null"], "maxLength": 256}}},
                "Credential": {"type": "object", "required": ["status"], "properties": {
                    "status": {"type": "string", "enum": ["provisioning", "active", "failed", "deleting"]},
                    "sip_username": {"type": ["string", "null"]},
                    "expires_at": {"type": ["string", "null"], "format": "date-time"}}},
                "Device": {"type": "object", "required": ["id", "user_id", "org_id", "platform", "created_at", "updated_at"], "properties": {
                    "id": {"type": "string"}, "user_id": {"type": "string"}, "org_id": {"type": "string"},
                    "platform": {"type": "string"}, "push_token": {"type": ["string", "null"]},
                    "voip_token": {"type": ["string", "null"]}, "app_version": {"type": ["string", "null"]},
                    "name": {"type": ["string", "null"]},
                    "credential": {"oneOf": [{"$ref": "#/components/schemas/Credential"}, {"type": "null"}]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"}}},
                "LoginToken": {"type": "object", "required": ["token", "sip_username"], "properties": {
                    "token": {"type": "string", "description": "Telnyx JWT; valid up to 24 h or until the credential expires"},
                    "sip_username": {"type": "string"},
                    "credential_expires_at": {"type": ["string", "null"], "format": "date-time"}}}
            }
        }
    })
}

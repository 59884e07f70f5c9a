//! The request and response schemas of the OpenAPI document.

use fleet_domain::call::{DEFAULT_GREETING, DEFAULT_VOICEMAIL_MAX_SECS};
use fleet_domain::routing::DEFAULT_RING_TIMEOUT_SECS;
use serde_json::{Value, json};

fn nullable_string() -> Value {
    json!({"type": ["string", "null"]})
}

fn time() -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": "RFC 3339, UTC; null until it happens"})
}

pub(super) fn all() -> Value {
    let mut m = serde_json::Map::new();
    for part in [directory(), devices(), routing(), calls()] {
        if let Value::Object(o) = part {
            m.extend(o);
        }
    }
    Value::Object(m)
}

fn directory() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error", "detail"], "properties": {
            "error": {"type": "string", "description": "machine-readable reason"},
            "detail": {"description": "human-readable detail"}}},
        "OrganizationInput": {"type": "object", "additionalProperties": false, "properties": {
            "name": {"type": ["string", "null"], "maxLength": 256},
            "voicemail_greeting": {"type": ["string", "null"], "minLength": 1, "maxLength": 3000,
                "description": "spoken before the beep; null or absent = the product default"},
            "voicemail_voice": {"type": ["string", "null"], "maxLength": 64, "description": "Telnyx speak voice"},
            "voicemail_language": {"type": ["string", "null"], "maxLength": 64, "example": "en-US"},
            "voicemail_max_secs": {"type": ["integer", "null"], "minimum": 10, "maximum": 600,
                "default": DEFAULT_VOICEMAIL_MAX_SECS},
            "ai_agent_sip_uri": {"type": ["string", "null"], "pattern": "^sips?:\\S+$", "maxLength": 512,
                "description": "where ai_agent calls are transferred; null = none (they go to voicemail)"}}},
        "Organization": {"type": "object",
            "required": ["id", "voicemail_greeting", "voicemail_max_secs"], "properties": {
            "id": {"type": "string"}, "name": nullable_string(),
            "voicemail_greeting": {"type": "string", "description": "the effective greeting", "default": DEFAULT_GREETING},
            "voicemail_voice": nullable_string(), "voicemail_language": nullable_string(),
            "voicemail_max_secs": {"type": "integer", "description": "the effective maximum", "default": DEFAULT_VOICEMAIL_MAX_SECS},
            "ai_agent_sip_uri": nullable_string()}},
        "UserInput": {"type": "object", "additionalProperties": false,
            "description": "org_ids, or org_id alone (then org_ids = [org_id]); with both, org_id must be in org_ids (invalid_field otherwise); at least one is required",
            "properties": {
            "org_id": {"type": "string", "description": "the primary organization"},
            "org_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100,
                "description": "every organization the user belongs to; a call to any of them rings all the user's devices"},
            "name": {"type": ["string", "null"], "maxLength": 256},
            "dnd": {"type": ["boolean", "null"], "default": false, "description": "do not disturb: inbound calls go to voicemail"}}},
        "User": {"type": "object", "required": ["id", "org_id", "org_ids", "dnd"], "properties": {
            "id": {"type": "string"}, "org_id": {"type": "string"},
            "org_ids": {"type": "array", "items": {"type": "string"}, "description": "every membership, org_id first"},
            "name": nullable_string(), "dnd": {"type": "boolean"}}}
    })
}

fn devices() -> Value {
    json!({
        "DeviceInput": {"type": "object", "additionalProperties": false, "required": ["user_id", "org_id", "platform"], "properties": {
            "user_id": {"type": "string"}, "org_id": {"type": "string"},
            "platform": {"type": "string", "enum": ["android", "ios", "web"]},
            "push_token": {"type": ["string", "null"], "description": "FCM token (Android) or APNs alert token"},
            "voip_token": {"type": ["string", "null"], "pattern": "^([0-9A-Fa-f]{2}){8,200}$",
                "description": "APNs VoIP (PushKit) device token, hex"},
            "app_version": {"type": ["string", "null"], "maxLength": 64},
            "name": {"type": ["string", "null"], "maxLength": 256}}},
        "Credential": {"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "enum": ["provisioning", "active", "failed", "deleting"]},
            "sip_username": nullable_string(),
            "expires_at": {"type": ["string", "null"], "format": "date-time"}}},
        "Device": {"type": "object", "required": ["id", "user_id", "org_id", "platform", "created_at", "updated_at"], "properties": {
            "id": {"type": "string"}, "user_id": {"type": "string"}, "org_id": {"type": "string"},
            "platform": {"type": "string"}, "push_token": nullable_string(),
            "voip_token": nullable_string(), "app_version": nullable_string(),
            "name": nullable_string(),
            "credential": {"oneOf": [{"$ref": "#/components/schemas/Credential"}, {"type": "null"}]},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"}}},
        "LoginToken": {"type": "object", "required": ["token", "sip_username"], "properties": {
            "token": {"type": "string", "description": "Telnyx JWT; valid up to 24 h or until the credential expires"},
            "sip_username": {"type": "string"},
            "credential_expires_at": {"type": ["string", "null"], "format": "date-time"}}}
    })
}

fn routing() -> Value {
    let schedule = json!({"type": ["object", "null"], "additionalProperties": false, "required": ["timezone", "weekly"],
        "description": "opening hours; null = always open. A window whose end is before its start crosses midnight; end may be 24:00",
        "properties": {
            "timezone": {"type": "string", "description": "IANA zone (invalid_timezone)", "example": "America/Chicago"},
            "weekly": {"type": "array", "maxItems": 64, "items": {"type": "object", "additionalProperties": false,
                "required": ["days", "start", "end"], "properties": {
                "days": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}},
                "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "example": "09:00"},
                "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "example": "17:00"}}}}}});
    let mode = json!({"type": "string", "enum": ["ring", "ai_agent", "voicemail"], "default": "ring"});
    let outside = json!({"type": "string", "enum": ["voicemail", "ai_agent"], "default": "voicemail",
        "description": "where calls go outside the schedule"});
    let ring = json!({"type": "integer", "minimum": 5, "maximum": 120, "default": DEFAULT_RING_TIMEOUT_SECS});
    json!({
        "NumberInput": {"type": "object", "additionalProperties": false, "required": ["org_id"], "properties": {
            "org_id": {"type": "string"},
            "user_id": {"type": ["string", "null"], "description": "who receives the calls; null = nobody (voicemail). Must be a member of org_id"},
            "mode": mode, "ring_timeout_secs": ring, "schedule": schedule, "outside_hours": outside}},
        "Number": {"type": "object", "required": ["e164", "org_id", "user_id", "mode", "ring_timeout_secs", "schedule", "outside_hours"], "properties": {
            "e164": {"type": "string"}, "org_id": {"type": "string"}, "user_id": nullable_string(),
            "mode": mode, "ring_timeout_secs": ring, "schedule": schedule, "outside_hours": outside}},
        "BlockedNumber": {"type": "object", "required": ["org_id", "e164", "blocked"], "properties": {
            "org_id": {"type": "string"}, "e164": {"type": "string"}, "blocked": {"type": "boolean", "const": true}}}
    })
}

fn calls() -> Value {
    json!({
        "Leg": {"type": "object", "required": ["device_id", "call_control_id", "state", "hangup_cause"], "properties": {
            "device_id": {"type": "string"},
            "call_control_id": {"type": ["string", "null"], "description": "from the dial response; null while dialing"},
            "state": {"type": "string", "enum": ["dialing", "ringing", "answered", "bridged", "ended"]},
            "hangup_cause": {"type": ["string", "null"], "description": "Telnyx hangup_cause"}}},
        "Call": {"type": "object",
            "required": ["call_session_id", "org_id", "user_id", "direction", "from", "to", "state", "end_reason",
                         "answered_by_device_id", "started_at", "answered_at", "ended_at", "legs", "recordings",
                         "recording_errors", "log"],
            "properties": {
            "call_session_id": {"type": "string"},
            "org_id": {"type": "string", "description": "the organization of the number called (inbound) or of the placing device's credential (outbound)"},
            "user_id": nullable_string(),
            "direction": {"type": "string", "enum": ["inbound", "outbound", "direct"],
                "description": "outbound: placed by a device; `from` is the org number shown as caller id, `legs` is empty and `ringing` is the far end's. direct: a browser's own WebRTC call, followed (not routed) by callfleet; recorded when asked"},
            "from": {"type": "string"}, "to": {"type": "string"},
            "state": {"type": "string", "enum": ["routing", "ringing", "answered", "voicemail", "ai_agent", "ended"]},
            "end_reason": {"type": ["string", "null"], "enum": [
                "answered_elsewhere", "caller_cancelled", "no_answer", "all_declined", "no_devices", "completed",
                "blocked", "unknown_number", "bridge_failed", "voicemail", "ai_agent", "outside_hours", "dnd",
                "no_user", "no_caller_id", null]},
            "answered_by_device_id": {"type": ["string", "null"], "description": "outbound: the placing device, once the far end answered"},
            "started_at": {"type": "string", "format": "date-time"},
            "answered_at": time(), "ended_at": time(),
            "legs": {"type": "array", "items": {"$ref": "#/components/schemas/Leg"}},
            "recordings": {"type": "array", "items": {"$ref": "#/components/schemas/Recording"}},
            "recording_errors": {"type": "array", "items": {"$ref": "#/components/schemas/RecordingError"}},
            "log": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/CallLog"}],
                "description": "the call log line and billing, once the call ended and was logged"}}},
        "CallLog": {"type": "object", "required": ["status", "duration_secs", "device_id", "billing"], "properties": {
            "status": {"type": "string", "enum": ["answered", "missed", "voicemail", "ai_agent", "rejected", "failed"]},
            "duration_secs": {"type": "integer", "minimum": 0, "description": "connected time, rounded up to whole seconds"},
            "device_id": {"type": ["string", "null"], "description": "the phone that answered (inbound) or placed the call (outbound)"},
            "billing": {"type": "object", "required": ["kind", "billable_secs", "billed_minutes"], "properties": {
                "kind": {"type": "string", "enum": ["human", "ai_agent"]},
                "billable_secs": {"type": "integer", "minimum": 0,
                    "description": "answer (or, for the AI agent, the transfer) to end, rounded up to the next second; 0 if never connected"},
                "billed_minutes": {"type": "integer", "minimum": 0, "description": "billable_secs rounded up to whole minutes"}}}}},
        "Recording": {"type": "object",
            "description": "a recording copied into the fleet's object store (checksummed), with its transcript",
            "required": ["recording_id", "format", "channels", "duration_ms", "size_bytes", "sha256", "saved_at",
                         "stored_at", "transcript_status", "transcript", "transcript_error"],
            "properties": {
            "recording_id": {"type": "string", "description": "Telnyx recording_id"},
            "format": {"type": "string", "enum": ["mp3", "wav"]},
            "channels": {"type": "string", "enum": ["single", "dual"], "description": "dual: the caller on channel A, the other side on B"},
            "duration_ms": {"type": ["integer", "null"]},
            "size_bytes": {"type": "integer"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "saved_at": {"type": "string", "format": "date-time", "description": "when Telnyx announced it (call.recording.saved)"},
            "stored_at": {"type": "string", "format": "date-time"},
            "transcript_status": {"type": "string", "enum": ["pending", "done", "failed"]},
            "transcript": nullable_string(),
            "transcript_error": {"type": ["string", "null"], "description": "why the transcription was refused"}}},
        "RecordingRequestBody": {"type": "object", "required": ["from", "to"], "additionalProperties": false, "properties": {
            "format": {"type": "string", "enum": ["mp3", "wav"], "default": "mp3"},
            "channels": {"type": "string", "enum": ["dual", "single"], "default": "dual"},
            "from": {"type": "string", "minLength": 1, "maxLength": 256,
                "description": "the caller: the browser's SIP user (sip:<user>@… or bare) or one of the org's numbers; names the org the recording is kept in"},
            "to": {"type": "string", "minLength": 1, "maxLength": 256}}},
        "RecordingRequest": {"type": "object",
            "required": ["call_control_id", "org_id", "status", "format", "channels", "detail", "requested_at"], "properties": {
            "call_control_id": {"type": "string"},
            "org_id": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "started", "ended", "failed"],
                "description": "pending: waiting for the answer; started: Telnyx records (the copy shows on GET /v1/calls/{call_session_id}); ended: the call ended before it could be recorded; failed: Telnyx refused (detail)"},
            "format": {"type": "string", "enum": ["mp3", "wav"]},
            "channels": {"type": "string", "enum": ["dual", "single"]},
            "detail": nullable_string(),
            "requested_at": {"type": "string", "format": "date-time"}}},
        "RecordingError": {"type": "object", "required": ["reason", "failed_at"], "properties": {
            "reason": {"type": "string", "description": "Telnyx's reason (call.recording.error)"},
            "failed_at": {"type": "string", "format": "date-time"}}}
    })
}

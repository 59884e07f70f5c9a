//! OpenAPI 3.1 description of the control API (`GET /sim/openapi.json`). Written by hand next to the
//! handlers it describes; the crate's tests check that every route of `control::router` appears here and
//! that the document's own `$ref`s resolve.

use serde_json::{Value, json};

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": schema } } })
}

fn empty(desc: &str) -> Value {
    json!({ "description": desc })
}

fn errors() -> Value {
    ok("Error", r("Error"))
}

fn id_param() -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }])
}

fn since_param() -> Value {
    json!([{ "name": "since", "in": "query", "required": false,
             "description": "Only entries with a larger seq.", "schema": { "type": "integer", "minimum": 0 } }])
}

fn ms(desc: &str) -> Value {
    json!({ "type": "integer", "minimum": 0, "description": desc })
}

/// The `Fault` schema (one entry per `scenario::Fault` kind).
fn fault_schema() -> Value {
    json!({
        "description": "Applies to the next `count` matching occurrences. api_error/api_timeout without an operation match every Telnyx operation except transcription, which they match only when it is named (operation \"transcription\"; the failure body is then {\"detail\": \"Injected failure.\"}).",
        "oneOf": [
            { "type": "object", "required": ["kind", "status", "count"], "properties": {
                "kind": { "enum": ["api_error"] }, "operation": { "type": ["string", "null"] },
                "status": { "type": "integer" }, "code": { "type": ["string", "null"] }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "delay_ms", "count"], "properties": {
                "kind": { "enum": ["api_timeout"] }, "operation": { "type": ["string", "null"] },
                "delay_ms": ms("Wall-clock delay of the answer."), "apply": { "type": "boolean" }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "count"], "properties": {
                "kind": { "enum": ["webhook_drop"] }, "event_type": { "type": ["string", "null"] }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "count"], "properties": {
                "kind": { "enum": ["recording_error"] }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "status", "count"], "properties": {
                "kind": { "enum": ["app_event_error"] }, "status": { "type": "integer" }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "status", "count"], "properties": {
                "kind": { "enum": ["recording_download"] }, "status": { "type": "integer" }, "count": { "type": "integer" } } },
            { "type": "object", "required": ["kind", "status", "count"],
              "description": "The next `count` valid POST /v2/ai/audio/transcriptions requests answer `status` with {\"detail\": \"Injected failure.\"} (requests refused with 401/400/413/422 do not consume it).",
              "properties": {
                "kind": { "enum": ["transcription_error"] }, "status": { "type": "integer" }, "count": { "type": "integer" } } }
        ]
    })
}

/// The `RecordedRequest` schema (`log::RecordedRequest`).
fn recorded_request_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" }, "method": { "type": "string" },
                        "path": { "type": "string" }, "query": { "type": ["string", "null"] },
                        "operation": { "type": "string" }, "target": { "type": ["string", "null"] },
                        "body": {}, "status": { "type": "integer" }, "response": {},
                        "content_type": { "type": "string" }, "deduplicated": { "type": "boolean" },
                        "fault": { "type": ["string", "null"], "description": "api_error, api_timeout or transcription_error." },
                        "upload": { "description": "The file of a multipart upload (transcription); its text fields are in body.",
                            "oneOf": [{ "type": "null" }, { "type": "object", "required": ["field", "bytes", "sha256"], "properties": {
                                "field": { "type": "string" }, "filename": { "type": ["string", "null"] },
                                "content_type": { "type": ["string", "null"] }, "bytes": { "type": "integer", "minimum": 0 },
                                "sha256": { "type": "string", "description": "Lowercase hex." } } }] } }
    })
}

fn schemas() -> Value {
    json!({
        "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
        "RingBehaviour": {
            "description": "What the far end of a ringing leg does.",
            "oneOf": [
                { "type": "object", "required": ["kind", "after_ms"], "properties": {
                    "kind": { "enum": ["answer", "decline", "busy"] }, "after_ms": ms("Delay after ringing starts.") } },
                { "type": "object", "required": ["kind"], "properties": { "kind": { "enum": ["never", "ignore_hangup"] } },
                  "description": "never: rings until the dial's timeout. ignore_hangup: never answers, and keeps ringing when its leg is hung up (only a call_ended push dismisses it)." },
                { "type": "object", "required": ["kind", "after_ms"], "properties": {
                    "kind": { "enum": ["unregister_after"] }, "after_ms": ms("Unregisters this long into ringing (the leg fails 480).") } },
                { "type": "object", "required": ["kind", "after_ms", "drop_after_ms"], "properties": {
                    "kind": { "enum": ["answer_then_drop"] }, "after_ms": ms("Answer delay."),
                    "drop_after_ms": ms("Hangup delay after the answer.") } }
            ]
        },
        "CredentialRef": {
            "description": "How a device finds its telephony credential (exactly one key).",
            "type": "object", "minProperties": 1, "maxProperties": 1,
            "properties": { "sip_username": { "type": "string" }, "name": { "type": "string" },
                            "token": { "type": "string", "description": "A JWT issued by POST /v2/telephony_credentials/{id}/token." } }
        },
        "DeviceScript": {
            "type": "object", "required": ["id", "platform", "credential", "on_ring"],
            "properties": {
                "id": { "type": "string" },
                "platform": { "enum": ["android", "ios", "web"] },
                "push_token": { "type": ["string", "null"] },
                "credential": r("CredentialRef"),
                "online": { "type": "boolean", "default": false, "description": "Registered from the start." },
                "register_after_push_ms": { "type": ["integer", "null"], "minimum": 0,
                    "description": "Registers this long after a push for push_token was accepted." },
                "on_ring": r("RingBehaviour")
            }
        },
        "CallerScript": {
            "type": "object", "required": ["from", "to"],
            "properties": {
                "from": { "type": "object", "minProperties": 1, "maxProperties": 1,
                          "properties": { "pstn": { "type": "string", "description": "+E.164 caller." },
                                          "device": { "type": "string", "description": "Device id placing an outbound call." },
                                          "webrtc": { "type": "string", "description": "Device id whose browser dials `to` (+E.164) straight out over WebRTC: an outgoing leg on its credential's connection, from its SIP user, rung like any PSTN callee." } } },
                "to": { "type": "string" },
                "at_ms": ms("Start, from now."),
                "hangup_after_ms": { "type": ["integer", "null"], "minimum": 0, "description": "Caller hangs up this long after the start." }
            }
        },
        "PlacedCall": {
            "type": "object", "required": ["call_control_id", "call_leg_id", "call_session_id", "starts_at_ms"],
            "properties": { "call_control_id": { "type": "string" }, "call_leg_id": { "type": "string" },
                            "call_session_id": { "type": "string" }, "starts_at_ms": ms("Sim time of call.initiated.") }
        },
        "Fault": fault_schema(),
        "DeliveryKnobs": {
            "type": "object",
            "properties": {
                "latency": ms("ms"), "jitter": ms("ms"), "duplicate_rate": { "type": "number" },
                "duplicate_delay": ms("ms"), "reorder_rate": { "type": "number" }, "reorder_delay": ms("ms"),
                "drop_rate": { "type": "number" }, "retry_delay": ms("ms"),
                "primary_attempts": { "type": "integer" }, "failover_attempts": { "type": "integer" },
                "http_timeout": ms("ms"), "lanes": { "type": "integer" }
            }
        },
        "CallView": {
            "type": "object",
            "required": ["call_control_id", "call_leg_id", "call_session_id", "direction", "from", "to", "state", "start_ms"],
            "properties": {
                "call_control_id": { "type": "string" }, "call_leg_id": { "type": "string" },
                "call_session_id": { "type": "string" }, "connection_id": { "type": "string" },
                "direction": { "enum": ["incoming", "outgoing"] }, "from": { "type": "string" }, "to": { "type": "string" },
                "state": { "enum": ["parked", "ringing", "answered", "ended"] },
                "client_state": { "type": ["string", "null"] }, "bridged_with": { "type": ["string", "null"] },
                "hangup_cause": { "type": ["string", "null"] }, "hangup_source": { "type": ["string", "null"] },
                "start_ms": { "type": "integer" }, "answered_ms": { "type": ["integer", "null"] },
                "ended_ms": { "type": ["integer", "null"] }, "recording": { "type": ["string", "null"] }
            }
        },
        "Credential": {
            "type": "object",
            "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "tag": { "type": ["string", "null"] },
                            "connection_id": { "type": "string" }, "sip_username": { "type": "string" },
                            "sip_password": { "type": "string" }, "created_at": { "type": "string" },
                            "updated_at": { "type": "string" }, "expires_at": { "type": ["string", "null"] } }
        },
        "RecordedRequest": recorded_request_schema(),
        "SentWebhook": {
            "type": "object",
            "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" }, "event_id": { "type": "string" },
                            "event_type": { "type": "string" }, "attempt": { "type": "integer" }, "url": { "type": "string" },
                            "failover": { "type": "boolean" }, "call_control_id": { "type": ["string", "null"] },
                            "call_session_id": { "type": ["string", "null"] },
                            "body": { "type": "object", "description": "The exact envelope sent." },
                            "outcome": { "type": "object", "required": ["kind"], "properties": {
                                "kind": { "enum": ["pending", "delivered", "rejected", "error", "dropped"] },
                                "status": { "type": "integer" }, "message": { "type": "string" } } } }
        },
        "Anomaly": {
            "type": "object",
            "description": "Race kinds: leg_still_ringing (an outgoing leg still ringing the grace period after its call was answered or ended), device_not_dismissed (a device that got an incoming_call push or a ringing SIP leg, and neither a hangup it heeded nor a call_ended push, by the grace period after the call ended).",
            "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" }, "kind": { "type": "string" },
                            "call_control_id": { "type": ["string", "null"] },
                            "call_session_id": { "type": ["string", "null"] }, "detail": { "type": "string" } }
        },
        "DeliveredPush": {
            "type": "object", "required": ["platform", "token", "data"],
            "properties": { "platform": { "enum": ["fcm", "apns"] }, "token": { "type": "string" }, "data": {} }
        }
    })
}

/// The routes of `control/races.rs` (issue 10, item 5), merged into [`document`].
fn race_paths() -> Value {
    let session =
        json!({ "name": "call_session_id", "in": "path", "required": true, "schema": { "type": "string" } });
    let device =
        json!({ "name": "device_id", "in": "path", "required": true, "schema": { "type": "string" } });
    json!({
        "/sim/devices/{id}/behaviour": { "put": { "operationId": "setDeviceBehaviour", "parameters": id_param(),
            "description": "Changes a scripted device's behaviour for every later call.",
            "requestBody": body(r("DeviceBehaviour")),
            "responses": { "204": empty("Set."), "400": errors(), "404": errors() } } },
        "/sim/calls/{call_session_id}/devices/{device_id}/behaviour": { "put": { "operationId": "setCallDeviceBehaviour",
            "parameters": [session, device],
            "description": "Changes a scripted device's behaviour for the legs of one call (legs dialed with link_to share the linked leg's call_session_id).",
            "requestBody": body(r("DeviceBehaviour")),
            "responses": { "204": empty("Set."), "400": errors(), "404": errors() } } },
        "/sim/sessions": { "get": { "operationId": "callSessions",
            "responses": { "200": ok("Every call session with legs, oldest first.", json!({ "type": "array", "items": r("CallSummary") })) } } },
        "/sim/calls/{call_session_id}/timeline": { "get": { "operationId": "callTimeline", "parameters": [session.clone()],
            "description": "The merged timeline of one call: webhooks sent, commands received, pushes delivered, app events received and anomalies, in the order they happened.",
            "responses": { "200": ok("The call's legs and timeline.", r("CallTimeline")), "404": errors() } } },
        "/sim/timeline": { "get": { "operationId": "timelineIndexPage",
            "responses": { "200": { "description": "HTML index of calls, linking to each call's page.", "content": { "text/html": { "schema": { "type": "string" } } } } } } },
        "/sim/timeline/{call_session_id}": { "get": { "operationId": "timelinePage", "parameters": [session.clone()],
            "responses": { "200": { "description": "One call's timeline as an HTML page.", "content": { "text/html": { "schema": { "type": "string" } } } },
                           "404": { "description": "Unknown call session (HTML).", "content": { "text/html": { "schema": { "type": "string" } } } } } } },
        "/sim/events": {
            "post": { "operationId": "receiveAppEvent",
                "description": "The application backend's stand-in: receives the fleet's app events, signed per Standard Webhooks (webhook-id, webhook-timestamp within 5 minutes, webhook-signature v1,<base64 HMAC-SHA256 of id.timestamp.body> under events_secret from /sim/info). Records each webhook-id once; redeliveries count as duplicates.",
                "parameters": [
                    { "name": "webhook-id", "in": "header", "required": true, "schema": { "type": "string" } },
                    { "name": "webhook-timestamp", "in": "header", "required": true, "schema": { "type": "integer" } },
                    { "name": "webhook-signature", "in": "header", "required": true, "schema": { "type": "string" } }],
                "requestBody": body(json!({ "type": "object", "required": ["type", "timestamp", "data"],
                    "properties": { "type": { "type": "string" }, "timestamp": { "type": "string" },
                                    "data": { "type": "object", "properties": { "call_session_id": { "type": "string" } } } } })),
                "responses": { "204": empty("Recorded (or a duplicate, counted)."), "400": errors(), "401": errors(),
                               "500": errors(), "503": errors() } },
            "get": { "operationId": "appEvents", "parameters": since_param(),
                "responses": { "200": ok("Verified app events, once per webhook-id, in arrival order.", json!({ "type": "array", "items": r("ReceivedEvent") })) } } },
        "/sim/pushes": { "get": { "operationId": "pushes", "parameters": since_param(),
            "responses": { "200": ok("Pushes delivered to the call model, in order.", json!({ "type": "array", "items": r("PushRecord") })) } } },
        "/sim/api-latency": {
            "get": { "operationId": "getApiLatency",
                     "responses": { "200": ok("The constant /v2 answer latency.", r("ApiLatency")) } },
            "put": { "operationId": "setApiLatency",
                     "description": "Every /v2 answer is held this long after the request was applied (applies to requests arriving from now on).",
                     "requestBody": body(r("ApiLatency")), "responses": { "204": empty("Set."), "400": errors() } } }
    })
}

fn race_schemas() -> Value {
    json!({
        "ApiLatency": { "type": "object", "required": ["ms"], "properties": { "ms": ms("Milliseconds.") } },
        "DeviceBehaviour": {
            "type": "object", "description": "Absent fields change nothing.",
            "properties": {
                "on_ring": r("RingBehaviour"),
                "register_after_push_ms": { "type": ["integer", "null"], "minimum": 0,
                    "description": "Registers late: unregistered now, registers this long after a push for its token (per call: carrying that call_session_id)." }
            }
        },
        "CallSummary": {
            "type": "object", "required": ["call_session_id", "start_ms", "from", "to", "legs", "live_legs", "anomalies"],
            "properties": { "call_session_id": { "type": "string" }, "start_ms": { "type": "integer" },
                            "from": { "type": "string" }, "to": { "type": "string" }, "legs": { "type": "integer" },
                            "live_legs": { "type": "integer" }, "anomalies": { "type": "integer" } }
        },
        "TimelineEntry": {
            "type": "object", "required": ["seq", "at_ms", "at", "kind", "summary", "detail"],
            "properties": { "seq": { "type": "integer", "description": "Order of effects across all kinds." },
                            "at_ms": { "type": "integer", "description": "Sim time." },
                            "at": { "type": "string", "description": "Wall-clock equivalent (epoch + sim time)." },
                            "kind": { "enum": ["webhook", "command", "push", "app_event", "anomaly"] },
                            "call_control_id": { "type": ["string", "null"] },
                            "summary": { "type": "string" }, "detail": {} }
        },
        "CallTimeline": {
            "type": "object", "required": ["call_session_id", "legs", "entries"],
            "properties": { "call_session_id": { "type": "string" },
                            "legs": { "type": "array", "items": r("CallView") },
                            "entries": { "type": "array", "items": r("TimelineEntry") } }
        },
        "ReceivedEvent": {
            "type": "object", "required": ["seq", "at_ms", "webhook_id", "webhook_timestamp", "body", "duplicates"],
            "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" },
                            "webhook_id": { "type": "string" }, "webhook_timestamp": { "type": "integer" },
                            "event_type": { "type": ["string", "null"] }, "call_session_id": { "type": ["string", "null"] },
                            "body": {}, "duplicates": { "type": "integer", "description": "Later deliveries of the same webhook-id." } }
        },
        "PushRecord": {
            "type": "object", "required": ["seq", "at_ms", "platform", "token", "data"],
            "properties": { "seq": { "type": "integer" }, "at_ms": { "type": "integer" },
                            "platform": { "enum": ["fcm", "apns"] }, "token": { "type": "string" },
                            "device_id": { "type": ["string", "null"] }, "push_type": { "type": ["string", "null"] },
                            "call_session_id": { "type": ["string", "null"] }, "data": {} }
        }
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// The document.
pub(crate) fn document() -> Value {
    let mut doc = base_document();
    merge(&mut doc["paths"], race_paths());
    merge(&mut doc["components"]["schemas"], race_schemas());
    doc
}

fn base_document() -> Value {
    let arr = |name: &str| json!({ "type": "array", "items": r(name) });
    let now = json!({ "type": "object", "properties": { "now_ms": { "type": "integer" } } });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "callfleet carrier simulator — control API",
            "version": "1",
            "description": "Scenarios, clock, faults and logs of the simulator. The Telnyx API itself is served under /v2 (see Telnyx's OpenAPI document); FCM/APNs under their own paths."
        },
        "paths": {
            "/sim/info": { "get": { "operationId": "info", "responses": { "200": ok("Addresses, public key, clock.", json!({ "type": "object" })) } } },
            "/sim/clock/advance": { "post": { "operationId": "advance",
                "requestBody": body(json!({ "type": "object", "required": ["ms"], "properties": { "ms": ms("How far to move the manual clock.") } })),
                "responses": { "200": ok("New sim time.", now.clone()), "400": errors(), "409": errors() } } },
            "/sim/settle": { "post": { "operationId": "settle", "description": "Returns once everything due has run and every webhook attempt was answered.",
                "responses": { "200": ok("Sim time.", now) } } },
            "/sim/numbers": { "post": { "operationId": "addNumber",
                "requestBody": body(json!({ "type": "object", "required": ["number"], "properties": {
                    "number": { "type": "string" }, "connection_id": { "type": ["string", "null"] } } })),
                "responses": { "204": empty("Added."), "400": errors() } } },
            "/sim/pstn": { "post": { "operationId": "setPstnBehaviour",
                "requestBody": body(json!({ "type": "object", "required": ["number", "behaviour"], "properties": {
                    "number": { "type": "string" }, "behaviour": r("RingBehaviour") } })),
                "responses": { "204": empty("Set."), "400": errors() } } },
            "/sim/devices": { "post": { "operationId": "addDevice", "requestBody": body(r("DeviceScript")),
                "responses": { "201": empty("Added."), "400": errors(), "409": errors() } } },
            "/sim/devices/{id}/online": { "post": { "operationId": "deviceOnline", "parameters": id_param(),
                "responses": { "204": empty("Registered."), "404": errors() } } },
            "/sim/devices/{id}/offline": { "post": { "operationId": "deviceOffline", "parameters": id_param(),
                "responses": { "204": empty("Unregistered."), "404": errors() } } },
            "/sim/calls": {
                "post": { "operationId": "placeCall", "requestBody": body(r("CallerScript")),
                          "responses": { "201": ok("Scheduled.", r("PlacedCall")), "400": errors(), "404": errors(), "409": errors() } },
                "get": { "operationId": "listCalls", "responses": { "200": ok("Every leg.", arr("CallView")) } } },
            "/sim/calls/{id}": { "get": { "operationId": "getCall", "parameters": id_param(),
                "responses": { "200": ok("The leg.", r("CallView")), "404": errors() } } },
            "/sim/calls/{id}/hangup": { "post": { "operationId": "remoteHangup", "parameters": id_param(),
                "description": "The far end hangs up (declines a ringing outgoing leg).",
                "responses": { "204": empty("Done."), "404": errors(), "409": errors() } } },
            "/sim/calls/{id}/answer": { "post": { "operationId": "remoteAnswer", "parameters": id_param(),
                "responses": { "204": empty("Done."), "404": errors(), "409": errors() } } },
            "/sim/credentials": { "get": { "operationId": "listCredentials", "responses": { "200": ok("Live credentials.", arr("Credential")) } } },
            "/sim/push-delivered": { "post": { "operationId": "pushDelivered", "requestBody": body(r("DeliveredPush")),
                "responses": { "204": empty("Reported to the call model."), "400": errors() } } },
            "/sim/faults": {
                "post": { "operationId": "injectFault", "requestBody": body(r("Fault")),
                          "responses": { "201": ok("Injected.", json!({ "type": "object", "properties": { "id": { "type": "integer" } } })), "400": errors() } },
                "get": { "operationId": "listFaults", "responses": { "200": ok("Active faults.", json!({ "type": "array" })) } },
                "delete": { "operationId": "clearFaults", "responses": { "204": empty("Cleared.") } } },
            "/sim/delivery": {
                "put": { "operationId": "setDelivery", "requestBody": body(r("DeliveryKnobs")), "responses": { "204": empty("Set."), "400": errors() } },
                "get": { "operationId": "getDelivery", "responses": { "200": ok("Current knobs.", r("DeliveryKnobs")) } } },
            "/sim/requests": { "get": { "operationId": "requests", "parameters": since_param(),
                "responses": { "200": ok("API requests received, in order.", arr("RecordedRequest")) } } },
            "/sim/webhooks": { "get": { "operationId": "webhooks", "parameters": since_param(),
                "responses": { "200": ok("Webhook attempts, in order.", arr("SentWebhook")) } } },
            "/sim/anomalies": { "get": { "operationId": "anomalies", "responses": { "200": ok("Anomalies.", arr("Anomaly")) } } },
            "/sim/logs": { "delete": { "operationId": "clearLogs", "responses": { "204": empty("Cleared.") } } },
            "/sim/openapi.json": { "get": { "operationId": "openapi", "responses": { "200": ok("This document.", json!({ "type": "object" })) } } }
        },
        "components": { "schemas": schemas() }
    })
}

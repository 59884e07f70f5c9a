//! OpenAPI 3.1 fragment for the `/sim/push/` control routes, for the simulator's
//! `/sim/openapi.json` to merge (`paths` into its `paths`, `components.schemas` into its schemas;
//! every schema name starts with `Push` to avoid clashes). Written by hand next to `control.rs`;
//! the test below checks that every route there is described here.

use serde_json::{Value, json};

/// `{"paths": {…}, "components": {"schemas": {…}}}` describing [`super::control_router`].
pub fn control_openapi() -> Value {
    let provider = json!({"name": "provider", "in": "path", "required": true,
        "schema": {"type": "string", "enum": ["fcm", "apns"]}});
    let token = json!({"name": "token", "in": "path", "required": true, "schema": {"type": "string"},
        "description": "FCM registration token or APNs device token (hex)."});
    let no_content = json!({"204": {"description": "Done."}});
    let json_of = |schema: Value, what: &str| json!({"200": {"description": what, "content": {"application/json": {"schema": schema}}}});
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    json!({
        "paths": {
            "/sim/push/scripts/{provider}/{token}": {
                "put": {"summary": "Script the outcomes of a token's next push requests",
                    "parameters": [provider, token],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": schema("PushScript")}}},
                    "responses": no_content},
                "delete": {"summary": "Forget a token's script (back to always succeed)",
                    "parameters": [provider, token], "responses": no_content}
            },
            "/sim/push/requests": {"get": {"summary": "Every push/OAuth request received, in arrival order",
                "parameters": [
                    {"name": "provider", "in": "query", "schema": {"type": "string", "enum": ["fcm", "apns"]}},
                    {"name": "token", "in": "query", "schema": {"type": "string"}}],
                "responses": json_of(json!({"type": "array", "items": schema("PushRecordedRequest")}), "The log.")}},
            "/sim/push/delivered/{token}": {"get": {"summary": "Pushes delivered to a token",
                "parameters": [token],
                "responses": json_of(json!({"type": "array", "items": schema("PushDelivered")}), "Deliveries.")}},
            "/sim/push/latency": {"put": {"summary": "Default simulated provider latency",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
                    "required": ["latency_ms"], "properties": {"latency_ms": {"type": "integer", "minimum": 0}}}}}},
                "responses": no_content}},
            "/sim/push/reset": {"post": {"summary": "Clear log, deliveries, scripts and APNs token history",
                "responses": no_content}},
            "/sim/push/revoke-access-tokens": {"post": {"summary": "Invalidate every issued FCM access token",
                "responses": no_content}},
            "/sim/push/service-account": {"get": {"summary": "Google service-account key file for FCM",
                "parameters": [{"name": "token_uri_base", "in": "query", "schema": {"type": "string"},
                    "description": "Base URL of the token endpoint; default http://{Host}."}],
                "responses": json_of(json!({"type": "object"}), "Service-account JSON (token_uri = base + /token).")}},
            "/sim/push/apns-key": {"get": {"summary": "APNs signing key (.p8 PEM), key id and team id",
                "responses": json_of(schema("PushApnsKey"), "The key.")}}
        },
        "components": {"schemas": {
            "PushOutcome": {"type": "object", "required": ["kind"], "properties": {
                "kind": {"type": "string", "enum": ["ok", "status", "retry_after", "unregistered",
                    "bad_device_token", "reason", "hang"]},
                "status": {"type": "integer", "description": "HTTP status (status, retry_after, reason)."},
                "after_ms": {"type": "integer", "description": "Retry-After, ms, rounded up to seconds (retry_after)."},
                "reason": {"type": "string", "description": "APNs reason or FCM errorCode (reason)."}}},
            "PushScript": {"type": "object", "properties": {
                "steps": {"type": "array", "items": schema("PushOutcome")},
                "then": schema("PushOutcome"),
                "latency_ms": {"type": ["integer", "null"], "minimum": 0}}},
            "PushRecordedRequest": {"type": "object", "properties": {
                "seq": {"type": "integer"}, "provider": {"type": "string", "enum": ["fcm", "apns"]},
                "kind": {"type": "string", "enum": ["oauth_token", "fcm_send", "apns_send"]},
                "token": {"type": ["string", "null"]}, "path": {"type": "string"},
                "http_version": {"type": "string"}, "headers": {"type": "object"}, "body": {},
                "reply": {"type": "object", "properties": {
                    "status": {"type": ["integer", "null"]}, "reason": {"type": ["string", "null"]},
                    "retry_after_secs": {"type": ["integer", "null"]}, "delivered": {"type": "boolean"},
                    "scripted": {"type": "boolean"}}},
                "at_ms": {"type": "integer"}, "unix_ms": {"type": "integer"}}},
            "PushDelivered": {"type": "object", "properties": {
                "provider": {"type": "string", "enum": ["fcm", "apns"]}, "token": {"type": "string"},
                "data": {}, "message_id": {"type": "string"}, "at_ms": {"type": "integer"},
                "unix_ms": {"type": "integer"}}},
            "PushApnsKey": {"type": "object", "properties": {
                "key_id": {"type": "string"}, "team_id": {"type": "string"},
                "private_key_pem": {"type": "string"}}}
        }}
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_control_route_is_described() {
        let doc = super::control_openapi();
        let src = include_str!("control.rs");
        let mut routes = 0;
        for line in src.lines().filter(|l| l.trim_start().starts_with(".route(\"")) {
            let path = line.split('"').nth(1).unwrap_or_default();
            assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI fragment");
            routes += 1;
        }
        assert_eq!(routes, doc["paths"].as_object().map_or(0, |p| p.len()));
    }
}

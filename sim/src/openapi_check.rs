//! A small validator of JSON instances against an OpenAPI 3.x document, for the simulator's conformance
//! suite (and for the fleet's own tests if they want to check what they send).
//!
//! It implements the schema constructs the Telnyx subset actually uses: `$ref` (local, `#/…`), `type`
//! (a name or a list, `null` included), OpenAPI 3.0 `nullable`, `enum`, `const`, `required`, `properties`,
//! `additionalProperties` (boolean or schema), `items`, `oneOf` (exactly one), `anyOf`, `allOf`, `minimum`,
//! `maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`, `minProperties`, `maxProperties`. `format`,
//! `pattern`, `discriminator` and annotations are ignored. On top of schemas it matches an HTTP exchange to
//! its operation (path templates under the server's base path), checks the request body (`application/json`,
//! or for a `multipart/form-data` operation its text fields given as a JSON object of strings) and
//! `deepObject` query parameters, the response by status (falling back to `default`) and content type, and
//! webhook bodies by `data.event_type`.
//!
//! Nothing here panics on odd documents: an unresolvable `$ref` or an undocumented status is reported as a
//! [`Violation`], like any mismatch.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

/// One mismatch: where in the instance, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the instance (`""` is the root).
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", if self.at.is_empty() { "/" } else { &self.at }, self.message)
    }
}

/// An OpenAPI document ready to validate against.
pub struct OpenApi {
    doc: Value,
    base_path: String,
    lenient_nulls: HashSet<String>,
}

fn v(at: &str, message: impl Into<String>) -> Violation {
    Violation { at: at.to_owned(), message: message.into() }
}

fn type_matches(t: &str, x: &Value) -> bool {
    match t {
        "null" => x.is_null(),
        "boolean" => x.is_boolean(),
        "object" => x.is_object(),
        "array" => x.is_array(),
        "string" => x.is_string(),
        "number" => x.is_number(),
        "integer" => {
            x.as_i64().is_some() || x.as_u64().is_some() || x.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

impl OpenApi {
    /// Wraps a parsed document. The base path is taken from `servers[0].url` (e.g. `/v2`).
    pub fn new(doc: Value) -> Self {
        let base_path = doc["servers"][0]["url"]
            .as_str()
            .and_then(|u| u.split_once("://").map(|(_, rest)| rest))
            .and_then(|rest| rest.find('/').map(|i| rest[i..].trim_end_matches('/').to_owned()))
            .unwrap_or_default();
        Self { doc, base_path, lenient_nulls: HashSet::new() }
    }

    /// Parses a JSON document.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::new(serde_json::from_str(text)?))
    }

    /// Accepts `null` for properties with these names whatever their schema says (documented deviations of
    /// real traffic from the spec, e.g. Telnyx's `"client_state": null`).
    pub fn with_lenient_nulls(mut self, names: &[&str]) -> Self {
        self.lenient_nulls.extend(names.iter().map(|s| (*s).to_owned()));
        self
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> Result<&'a Value, String> {
        for _ in 0..32 {
            let Some(r) = node.get("$ref").and_then(Value::as_str) else { return Ok(node) };
            let ptr = r.strip_prefix('#').ok_or_else(|| format!("non-local $ref {r}"))?;
            node = self.doc.pointer(ptr).ok_or_else(|| format!("unresolvable $ref {r}"))?;
        }
        Err("$ref chain too long".to_owned())
    }

    /// Validates `instance` against `schema` (a schema node of this document).
    pub fn validate(&self, schema: &Value, instance: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, instance, "", &mut out);
        out
    }

    fn check(&self, schema: &Value, x: &Value, at: &str, out: &mut Vec<Violation>) {
        let s = match self.resolve(schema) {
            Ok(s) => s,
            Err(e) => return out.push(v(at, e)),
        };
        let Some(o) = s.as_object() else { return };
        if x.is_null() && o.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(t) = o.get("type") {
            let ok = match t {
                Value::String(t) => type_matches(t, x),
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_matches(t, x)),
                _ => true,
            };
            if !ok {
                return out.push(v(at, format!("expected type {t}, got {x}")));
            }
        }
        if let Some(Value::Array(e)) = o.get("enum") {
            if !e.contains(x) {
                out.push(v(at, format!("{x} is not one of {}", Value::Array(e.clone()))));
            }
        }
        if let Some(c) = o.get("const").filter(|c| *c != x) {
            out.push(v(at, format!("{x} is not {c}")));
        }
        self.check_bounds(o, x, at, out);
        if let Some(obj) = x.as_object() {
            self.check_object(o, obj, at, out);
        }
        if let (Some(items), Some(arr)) = (o.get("items"), x.as_array()) {
            for (i, item) in arr.iter().enumerate() {
                self.check(items, item, &format!("{at}/{i}"), out);
            }
        }
        for sub in o.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.check(sub, x, at, out);
        }
        if let Some(Value::Array(subs)) = o.get("anyOf") {
            if !subs.iter().any(|sub| self.validate_at(sub, x, at).is_empty()) {
                out.push(v(at, "matches none of anyOf"));
            }
        }
        if let Some(Value::Array(subs)) = o.get("oneOf") {
            let n = subs.iter().filter(|sub| self.validate_at(sub, x, at).is_empty()).count();
            if n != 1 {
                out.push(v(at, format!("matches {n} of oneOf (exactly 1 required)")));
            }
        }
    }

    fn validate_at(&self, schema: &Value, x: &Value, at: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, x, at, &mut out);
        out
    }

    fn check_bounds(&self, o: &Map<String, Value>, x: &Value, at: &str, out: &mut Vec<Violation>) {
        let num = |k: &str| o.get(k).and_then(Value::as_f64);
        let len = |k: &str| o.get(k).and_then(Value::as_u64).map(|n| n as usize);
        if let Some(n) = x.as_f64() {
            if num("minimum").is_some_and(|m| n < m) || num("maximum").is_some_and(|m| n > m) {
                out.push(v(at, format!("{n} is out of range")));
            }
        }
        let size = match x {
            Value::String(s) => Some((s.chars().count(), "minLength", "maxLength")),
            Value::Array(a) => Some((a.len(), "minItems", "maxItems")),
            Value::Object(m) => Some((m.len(), "minProperties", "maxProperties")),
            _ => None,
        };
        if let Some((n, lo, hi)) = size {
            if len(lo).is_some_and(|m| n < m) || len(hi).is_some_and(|m| n > m) {
                out.push(v(at, format!("size {n} violates {lo}/{hi}")));
            }
        }
    }

    fn check_object(
        &self,
        o: &Map<String, Value>,
        obj: &Map<String, Value>,
        at: &str,
        out: &mut Vec<Violation>,
    ) {
        let props = o.get("properties").and_then(Value::as_object);
        for r in o.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                out.push(v(at, format!("missing required property {r:?}")));
            }
        }
        for (k, val) in obj {
            let here = format!("{at}/{k}");
            if val.is_null() && self.lenient_nulls.contains(k) {
                continue;
            }
            match (props.and_then(|p| p.get(k)), o.get("additionalProperties")) {
                (Some(ps), _) => self.check(ps, val, &here, out),
                (None, Some(Value::Bool(false))) => out.push(v(&here, "property not allowed")),
                (None, Some(extra @ Value::Object(_))) => self.check(extra, val, &here, out),
                _ => {}
            }
        }
    }

    /// Finds the operation for `method` and a request path (with or without the base path).
    pub fn operation(&self, method: &str, path: &str) -> Option<(&str, &Value)> {
        let path = path.strip_prefix(self.base_path.as_str()).unwrap_or(path);
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.doc.get("paths")?.as_object()?;
        paths.iter().find_map(|(template, item)| {
            let t: Vec<&str> = template.trim_matches('/').split('/').collect();
            let fits = t.len() == segs.len()
                && t.iter().zip(&segs).all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b);
            let op = item.get(method.to_ascii_lowercase())?;
            fits.then_some((template.as_str(), op))
        })
    }

    /// Checks a request's JSON body and query string against its operation.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(), Vec<Violation>> {
        let (_, op) = self
            .operation(method, path)
            .ok_or_else(|| vec![v("", format!("no operation {method} {path}"))])?;
        let mut out = Vec::new();
        if let Some(rb) = op.get("requestBody") {
            match self.resolve(rb) {
                Err(e) => out.push(v("", e)),
                Ok(rb) => match (body, Self::body_schema(rb)) {
                    (Some(b), Some(schema)) => self.check(schema, b, "", &mut out),
                    (None, _) if rb.get("required") == Some(&Value::Bool(true)) => {
                        out.push(v("", "request body required"));
                    }
                    _ => {}
                },
            }
        }
        self.check_query(op, query.unwrap_or(""), &mut out);
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// The request body's schema: `application/json`, else `multipart/form-data` (whose text fields are
    /// then checked as a JSON object of strings; file parts are not part of the instance).
    fn body_schema(rb: &Value) -> Option<&Value> {
        rb.pointer("/content/application~1json/schema")
            .or_else(|| rb.pointer("/content/multipart~1form-data/schema"))
    }

    fn check_query(&self, op: &Value, query: &str, out: &mut Vec<Violation>) {
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, val) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(val))
            })
            .collect();
        for param in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
            let Ok(param) = self.resolve(param) else { continue };
            if param.get("in").and_then(Value::as_str) != Some("query") {
                continue;
            }
            let (Some(name), Some(schema)) = (param.get("name").and_then(Value::as_str), param.get("schema"))
            else {
                continue;
            };
            let schema = self.resolve(schema).unwrap_or(schema);
            if param.get("style").and_then(Value::as_str) == Some("deepObject") {
                let mut obj = BTreeMap::new();
                for (k, val) in &pairs {
                    if let Some(key) = k
                        .strip_prefix(name)
                        .and_then(|r| r.strip_prefix('['))
                        .and_then(|r| r.strip_suffix(']'))
                    {
                        let prop = schema.pointer(&format!("/properties/{key}")).unwrap_or(&Value::Null);
                        obj.insert(key.to_owned(), coerce(self.resolve(prop).unwrap_or(prop), val));
                    }
                }
                if !obj.is_empty() {
                    let instance = Value::Object(obj.into_iter().collect());
                    self.check(schema, &instance, &format!("?{name}"), out);
                }
            } else if let Some((_, val)) = pairs.iter().find(|(k, _)| k == name) {
                self.check(schema, &coerce(schema, val), &format!("?{name}"), out);
            }
        }
    }

    /// Checks a response by status (or `default`) and content type.
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        body: &Value,
    ) -> Result<(), Vec<Violation>> {
        let (_, op) = self
            .operation(method, path)
            .ok_or_else(|| vec![v("", format!("no operation {method} {path}"))])?;
        let responses = op.get("responses").cloned().unwrap_or(Value::Null);
        let resp = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| vec![v("", format!("status {status} is not documented for {method} {path}"))])?;
        let resp = self.resolve(resp).map_err(|e| vec![v("", e)])?;
        let Some(content) = resp.get("content").and_then(Value::as_object) else { return Ok(()) };
        let media = content_type.split(';').next().unwrap_or("").trim();
        let schema = content.get(media).and_then(|m| m.get("schema")).ok_or_else(|| {
            vec![v("", format!("content type {media:?} is not documented for status {status}"))]
        })?;
        let out = self.validate(schema, body);
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// Checks a webhook body against the `webhooks` entry whose `data.event_type` enum names its type.
    pub fn check_webhook(&self, body: &Value) -> Result<(), Vec<Violation>> {
        let et = body.pointer("/data/event_type").and_then(Value::as_str).unwrap_or("");
        let hooks = self.doc.get("webhooks").and_then(Value::as_object).into_iter().flat_map(|m| m.values());
        for hook in hooks {
            let Some(schema) = hook.pointer("/post/requestBody/content/application~1json/schema") else {
                continue;
            };
            let Ok(root) = self.resolve(schema) else { continue };
            let data = root.pointer("/properties/data").and_then(|d| self.resolve(d).ok());
            let types = data.and_then(|d| d.pointer("/properties/event_type/enum")).and_then(Value::as_array);
            if types.is_some_and(|t| t.iter().any(|x| x == et)) {
                let out = self.validate(schema, body);
                return if out.is_empty() { Ok(()) } else { Err(out) };
            }
        }
        Err(vec![v("/data/event_type", format!("no webhook schema for {et:?}"))])
    }
}

/// Turns a query string value into the JSON type its schema expects (numbers, booleans), else a string.
fn coerce(schema: &Value, raw: &str) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer" | "number") => serde_json::from_str::<serde_json::Number>(raw)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(raw.to_owned())),
        Some("boolean") => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_owned()),
        },
        _ => Value::String(raw.to_owned()),
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' if i + 2 < bytes.len() => hex(bytes[i + 1]).zip(hex(bytes[i + 2])).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (decoded, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, b) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn api() -> OpenApi {
        OpenApi::new(json!({
            "servers": [{"url": "https://api.example.com/v2"}],
            "paths": {"/things/{id}": {"post": {
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                "parameters": [{"in": "query", "name": "page", "style": "deepObject",
                                "schema": {"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}}}}],
                "responses": {"200": {"content": {"application/json": {"schema": {"type": "object", "required": ["ok"]}}}},
                              "default": {"$ref": "#/components/responses/Err"}}}}},
            "components": {
                "responses": {"Err": {"content": {"application/json": {"schema": {"type": "object", "required": ["errors"]}}}}},
                "schemas": {"Thing": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "kind": {"enum": ["a", "b"]},
                    "to": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "n": {"type": ["integer", "null"]},
                    "old": {"type": "string", "nullable": true},
                    "all": {"allOf": [{"type": "object"}, {"required": ["x"]}]},
                    "any": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
                    "closed": {"type": "object", "additionalProperties": false, "properties": {"y": {}}}
                }}}
            }
        }))
    }

    #[test]
    fn accepts_valid_and_reports_each_construct() {
        let a = api();
        let good = json!({"name": "x", "kind": "a", "to": ["s"], "n": null, "old": null, "all": {"x": 1}, "any": true, "closed": {"y": 1}});
        assert_eq!(a.check_request("POST", "/v2/things/7", Some("page[size]=3"), Some(&good)), Ok(()));
        let bad = json!({"kind": "c", "to": 5, "n": "1", "old": 3, "all": {}, "any": 1, "closed": {"z": 1}, "name": ""});
        let errs =
            a.check_request("POST", "/v2/things/7", Some("page%5Bsize%5D=30"), Some(&bad)).unwrap_err();
        let at: Vec<&str> = errs.iter().map(|e| e.at.as_str()).collect();
        for p in ["/name", "/kind", "/to", "/n", "/old", "/all", "/any", "/closed/z", "?page/size"] {
            assert!(at.contains(&p), "{p} not reported in {errs:?}");
        }
        assert!(a.check_request("POST", "/v2/things/7", None, None).is_err(), "required body");
        assert!(
            a.check_request("POST", "/v2/things/7", None, Some(&json!({}))).is_err(),
            "required property"
        );
    }

    #[test]
    fn responses_use_status_then_default() {
        let a = api();
        assert!(a.check_response("POST", "/v2/things/1", 200, "application/json", &json!({"ok": 1})).is_ok());
        assert!(a.check_response("POST", "/v2/things/1", 200, "application/json", &json!({})).is_err());
        assert!(
            a.check_response("POST", "/v2/things/1", 422, "application/json", &json!({"errors": []})).is_ok()
        );
        assert!(a.check_response("POST", "/v2/things/1", 422, "text/plain", &json!("x")).is_err());
        assert!(a.check_response("GET", "/v2/things/1", 200, "application/json", &json!({})).is_err());
    }

    #[test]
    fn multipart_text_fields_are_checked_against_the_form_schema() {
        let a = OpenApi::new(json!({
            "paths": {"/upload": {"post": {
                "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["model"], "properties": {
                        "file": {"type": "string", "format": "binary"}, "model": {"enum": ["a", "b"]}}}}}},
                "responses": {}}}}
        }));
        assert_eq!(a.check_request("POST", "/upload", None, Some(&json!({"model": "a"}))), Ok(()));
        assert!(a.check_request("POST", "/upload", None, Some(&json!({"model": "c"}))).is_err());
        assert!(a.check_request("POST", "/upload", None, Some(&json!({}))).is_err());
    }

    #[test]
    fn lenient_nulls_only_for_named_properties() {
        let a = api().with_lenient_nulls(&["name"]);
        let thing = json!({"$ref": "#/components/schemas/Thing"});
        assert!(a.validate(&thing, &json!({"name": null})).is_empty());
        assert!(!a.validate(&thing, &json!({"name": "x", "kind": null})).is_empty());
    }
}

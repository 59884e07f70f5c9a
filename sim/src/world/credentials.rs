//! Telephony credentials (`/v2/telephony_credentials`): create with `expires_at` and `tag`, filtered and
//! paginated listing, get, update, delete, and login tokens (201 `text/plain` JWT).
//!
//! Resource shape follows the spec's `TelephonyCredential` (`resource_id` = `connection:<id>`, `sip_username`
//! `gencred…`, `expired` computed against the sim clock). `tag` is stored and filterable but, as in the
//! spec's schema, not part of the resource. Assumptions (unverified): `filter[status]` accepts `active` and
//! `expired` (other values match nothing); name and tag filters are exact matches; a token expires 24 h after
//! issue or at the credential's expiry, whichever comes first.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::World;
use super::commands::{Outcome, ReplyBody};
use crate::telnyx_errors::ApiError;
use crate::{ids, jwt};

/// A stored credential (also the library's view of it).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Credential {
    pub id: String,
    pub name: String,
    pub tag: Option<String>,
    pub connection_id: String,
    pub sip_username: String,
    pub sip_password: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Credential {
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }
}

#[derive(Default)]
pub(crate) struct Credentials {
    by_seq: BTreeMap<u64, Credential>,
    by_id: HashMap<String, u64>,
    by_user: HashMap<String, u64>,
    next: u64,
    /// Login token → credential id.
    pub tokens: HashMap<String, String>,
    /// sip_usernames of deleted credentials (to tell "deleted" from "never existed").
    pub deleted: HashMap<String, String>,
}

impl Credentials {
    pub fn get(&self, id: &str) -> Option<&Credential> {
        self.by_id.get(id).and_then(|s| self.by_seq.get(s))
    }

    pub fn by_username(&self, user: &str) -> Option<&Credential> {
        self.by_user.get(user).and_then(|s| self.by_seq.get(s))
    }

    /// The newest credential named `name`.
    pub fn newest_named(&self, name: &str) -> Option<&Credential> {
        self.by_seq.values().rev().find(|c| c.name == name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Credential> {
        self.by_seq.values()
    }

    fn insert(&mut self, c: Credential) {
        self.next += 1;
        self.by_id.insert(c.id.clone(), self.next);
        self.by_user.insert(c.sip_username.clone(), self.next);
        self.by_seq.insert(self.next, c);
    }

    fn remove(&mut self, id: &str) -> Option<Credential> {
        let seq = self.by_id.remove(id)?;
        let c = self.by_seq.remove(&seq)?;
        self.by_user.remove(&c.sip_username);
        self.deleted.insert(c.sip_username.clone(), c.id.clone());
        Some(c)
    }
}

fn parse_time(v: &Value, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc()))
            .map(Some)
            .map_err(|_| ApiError::invalid_value(field, format!("'{field}' must be an ISO-8601 date-time."))),
        Some(_) => Err(ApiError::invalid_value(field, format!("'{field}' must be a string."))),
    }
}

fn opt_str(v: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid_value(field, format!("'{field}' must be a string."))),
    }
}

fn ok(status: StatusCode, data: Value) -> Outcome {
    Outcome { status, body: ReplyBody::Json(json!({ "data": data })), deduplicated: false }
}

impl World {
    pub(crate) fn credential_json(&self, c: &Credential) -> Value {
        let mut v = json!({
            "created_at": ids::millis(c.created_at),
            "expired": c.expired_at(self.now_utc()),
            "id": c.id,
            "name": c.name,
            "record_type": "credential",
            "resource_id": format!("connection:{}", c.connection_id),
            "sip_password": c.sip_password,
            "sip_username": c.sip_username,
            "updated_at": ids::millis(c.updated_at),
            "user_id": self.user_id,
        });
        if let Some(e) = c.expires_at {
            v["expires_at"] = json!(ids::millis(e));
        }
        v
    }

    pub(crate) fn credential_create(&mut self, body: &Value) -> Result<Outcome, ApiError> {
        let connection_id = opt_str(body, "connection_id")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::missing("connection_id"))?;
        let expires_at = parse_time(body, "expires_at")?;
        let tag = opt_str(body, "tag")?;
        if let Some(t) = &tag {
            if self.creds.all().filter(|c| c.tag.as_ref() == Some(t)).count() >= 1000 {
                return Err(ApiError::invalid_value(
                    "tag",
                    "A single tag can hold at maximum 1000 credentials.",
                ));
            }
        }
        let now = self.now_utc();
        let name = opt_str(body, "name")?.unwrap_or_else(|| now.format("%Y-%m-%d %H:%M:%S%.6fZ").to_string());
        let c = Credential {
            id: ids::uuid(&mut self.rng),
            sip_username: format!("gencred{}", ids::alnum(&mut self.rng, 22)),
            sip_password: ids::hex(&mut self.rng, 16),
            name,
            tag,
            connection_id,
            created_at: now,
            updated_at: now,
            expires_at,
        };
        let data = self.credential_json(&c);
        self.creds.insert(c);
        self.devices.dirty = true;
        Ok(ok(StatusCode::CREATED, data))
    }

    pub(crate) fn credential_list(&self, query: &[(String, String)]) -> Result<Outcome, ApiError> {
        let mut page = 1usize;
        let mut size = 50usize;
        let mut filters: Vec<(&str, &str)> = Vec::new();
        for (k, v) in query {
            let num =
                || v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{k} must be an integer")));
            match k.as_str() {
                "page[number]" => page = num()?,
                "page[size]" => size = num()?,
                "filter[tag]"
                | "filter[name]"
                | "filter[status]"
                | "filter[resource_id]"
                | "filter[sip_username]" => filters.push((&k[7..k.len() - 1], v.as_str())),
                _ => {}
            }
        }
        if page < 1 {
            return Err(ApiError::bad_request("page[number] must be at least 1"));
        }
        if !(1..=250).contains(&size) {
            return Err(ApiError::bad_request("page[size] must be between 1 and 250"));
        }
        let now = self.now_utc();
        let matching: Vec<&Credential> = self
            .creds
            .all()
            .filter(|c| {
                filters.iter().all(|&(f, v)| match f {
                    "tag" => c.tag.as_deref() == Some(v),
                    "name" => c.name == v,
                    "status" => match v {
                        "active" => !c.expired_at(now),
                        "expired" => c.expired_at(now),
                        _ => false,
                    },
                    "resource_id" => v.strip_prefix("connection:").unwrap_or(v) == c.connection_id,
                    "sip_username" => c.sip_username == v,
                    _ => true,
                })
            })
            .collect();
        let total = matching.len();
        let data: Vec<Value> =
            matching.iter().skip((page - 1) * size).take(size).map(|c| self.credential_json(c)).collect();
        let body = json!({
            "data": data,
            "meta": {
                "page_number": page,
                "page_size": size,
                "total_pages": total.div_ceil(size),
                "total_results": total,
            },
        });
        Ok(Outcome { status: StatusCode::OK, body: ReplyBody::Json(body), deduplicated: false })
    }

    pub(crate) fn credential_get(&self, id: &str) -> Result<Outcome, ApiError> {
        let c = self.creds.get(id).ok_or_else(ApiError::not_found)?;
        Ok(ok(StatusCode::OK, self.credential_json(c)))
    }

    pub(crate) fn credential_update(&mut self, id: &str, body: &Value) -> Result<Outcome, ApiError> {
        self.creds.get(id).ok_or_else(ApiError::not_found)?;
        let expires_at = parse_time(body, "expires_at")?;
        let (name, tag, conn) =
            (opt_str(body, "name")?, opt_str(body, "tag")?, opt_str(body, "connection_id")?);
        let now = self.now_utc();
        let seq = self.creds.by_id.get(id).copied().ok_or_else(ApiError::not_found)?;
        let c = self.creds.by_seq.get_mut(&seq).ok_or_else(ApiError::not_found)?;
        if let Some(e) = expires_at {
            c.expires_at = Some(e);
        }
        if let Some(n) = name {
            c.name = n;
        }
        if tag.is_some() {
            c.tag = tag;
        }
        if let Some(conn) = conn {
            c.connection_id = conn;
        }
        c.updated_at = now;
        let c = c.clone();
        self.devices.dirty = true;
        Ok(ok(StatusCode::OK, self.credential_json(&c)))
    }

    pub(crate) fn credential_delete(&mut self, id: &str) -> Result<Outcome, ApiError> {
        let c = self.creds.remove(id).ok_or_else(ApiError::not_found)?;
        self.devices.dirty = true;
        Ok(ok(StatusCode::OK, self.credential_json(&c)))
    }

    pub(crate) fn credential_token(&mut self, id: &str) -> Result<Outcome, ApiError> {
        let c = self.creds.get(id).ok_or_else(ApiError::not_found)?;
        let iat = self.now_utc().timestamp();
        let mut exp = iat + 86_400;
        if let Some(e) = c.expires_at {
            exp = exp.min(e.timestamp());
        }
        let cred_id = c.id.clone();
        let jti = ids::uuid(&mut self.rng);
        let tel_token = ids::alnum(&mut self.rng, 64);
        let claims = jwt::Claims { credential_id: &cred_id, iat, exp, jti: &jti, tel_token: &tel_token };
        let token = jwt::encode(&self.jwt_key, &claims);
        self.creds.tokens.insert(token.clone(), cred_id);
        self.devices.dirty = true;
        Ok(Outcome { status: StatusCode::CREATED, body: ReplyBody::Text(token), deduplicated: false })
    }
}

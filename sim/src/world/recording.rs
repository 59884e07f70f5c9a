//! Recordings: start/stop on a leg, `call.recording.saved` with a pre-signed-looking URL, downloads that stop
//! working 600 s (sim time) after the URL was issued, like Telnyx's S3 links (`X-Amz-Expires=600`), and
//! `GET /v2/recordings/{recording_id}`, which answers the saved recording with freshly signed
//! `download_urls` (Telnyx: "After 10 minutes, you may retrieve recordings via API").
//!
//! # Design
//! A URL is `<public base>/sim-s3/recordings/<recording_id>.<wav|mp3>?X-Amz-Algorithm=…&X-Amz-Date=<issue
//! time>&X-Amz-Expires=600&…&X-Amz-Signature=<hex>`, the signature being SHA-256 over a seed-derived key, the
//! recording id and the issue time (sim ms), so a URL cannot be forged or extended. Every signature issued
//! for a recording (the event's, then one per `GET /v2/recordings/{id}` at a distinct sim time) is kept with
//! its issue time; a download is accepted with any of them until that signature's own 600 s have passed, so
//! re-signing never invalidates an older URL early, and an old URL never lives longer because a new one was
//! issued. The bytes served are [`media::recording`] of the recording's format and channels (1 s of audio
//! whatever the call's length; `duration_millis` in the API answer is the recording's real length).
//!
//! `initiated_by` is sim-chosen (unverified against Telnyx): `StartCallRecordingAPI` for `record_start`
//! and for `answer` with `record`, `OutboundAPI` for a dial with `record`.
//!
//! # Failure behaviour
//! As on S3: a download that also carries an `Authorization` header is refused (400 `InvalidArgument`); one
//! whose signature was never issued for that recording, or whose `X-Amz-Date`/`X-Amz-Expires` differ from
//! what was signed, 403 `SignatureDoesNotMatch`; an expired one 403 `AccessDenied` ("Request has expired");
//! an unknown key 404 `NoSuchKey`; a [`crate::Fault::RecordingDownload`] answers its status
//! (`InternalError`). All as S3's XML error document. `GET /v2/recordings/{id}` answers Telnyx's 404 `10005`
//! for an id that was never saved (still recording, or ended in `call.recording.error`), and goes through
//! the API layer like every `/v2` operation (auth, injected API faults, the request log: `recording_get`).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Outcome, ReplyBody, World};
use crate::telnyx_errors::ApiError;
use crate::timeline::SimMs;
use crate::{ids, media};

/// How long a recording URL works (sim time), from its issue.
pub const URL_TTL_MS: SimMs = 600_000;

#[derive(Clone, Debug)]
pub(crate) struct RecordSpec {
    pub id: String,
    pub format: &'static str,
    pub channels: &'static str,
    /// `initiated_by` of the recording resource.
    pub initiated_by: &'static str,
}

pub(crate) struct ActiveRecording {
    pub id: String,
    pub spec: RecordSpec,
    pub started: SimMs,
}

pub(crate) struct StoredRecording {
    pub format: &'static str,
    pub channels: &'static str,
    pub initiated_by: &'static str,
    pub started_at: SimMs,
    pub saved_at: SimMs,
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub connection_id: String,
    pub from: String,
    pub to: String,
    /// Every signature issued for this recording, with its issue time, oldest first.
    pub issued: Vec<(String, SimMs)>,
}

/// A download answer: status, content type, body.
pub(crate) type Download = (StatusCode, &'static str, Vec<u8>);

fn s3_error(status: StatusCode, code: &str, message: &str) -> Download {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, "application/xml", xml.into_bytes())
}

fn amz_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

impl World {
    /// Starts recording a leg (no-op returning the current id if it is already recording).
    pub(super) fn start_recording(&mut self, ccid: &str, spec: RecordSpec) -> Option<String> {
        let now = self.now;
        let leg = self.legs.get_mut(ccid)?;
        if let Some(r) = &leg.recording {
            return Some(r.id.clone());
        }
        let id = spec.id.clone();
        leg.recording = Some(ActiveRecording { id: id.clone(), spec, started: now });
        Some(id)
    }

    /// Stops the leg's recording and announces it (`saved`, or `error` under an injected fault).
    pub(super) fn save_recording(&mut self, ccid: &str) {
        let Some(rec) = self.legs.get_mut(ccid).and_then(|l| l.recording.take()) else { return };
        if self.faults.take_recording_error() {
            let mut f = Map::new();
            f.insert("reason".into(), json!("Internal server error"));
            self.emit_recording(ccid, f, true);
            return;
        }
        let Some(leg) = self.legs.get(ccid) else { return };
        let start_time = ids::micros(self.utc_at(leg.start));
        self.recordings.insert(
            rec.id.clone(),
            StoredRecording {
                format: rec.spec.format,
                channels: rec.spec.channels,
                initiated_by: rec.spec.initiated_by,
                started_at: rec.started,
                saved_at: self.now,
                call_control_id: leg.ccid.clone(),
                call_leg_id: leg.leg_id.clone(),
                call_session_id: leg.session_id.clone(),
                connection_id: leg.connection_id.clone(),
                from: leg.from.clone(),
                to: leg.to.clone(),
                issued: Vec::new(),
            },
        );
        let urls = self.issue_download_urls(&rec.id);
        let started = ids::micros(self.utc_at(rec.started));
        let ended = ids::micros(self.now_utc());
        let mut f = Map::new();
        f.insert("channels".into(), json!(rec.spec.channels));
        f.insert("end_time".into(), json!(ended));
        f.insert("format".into(), json!(rec.spec.format));
        f.insert("public_recording_urls".into(), json!({}));
        f.insert("recording_ended_at".into(), json!(ended));
        f.insert("recording_id".into(), json!(rec.id));
        f.insert("recording_started_at".into(), json!(started));
        f.insert("recording_urls".into(), urls);
        f.insert("start_time".into(), json!(start_time));
        self.emit_recording(ccid, f, false);
    }

    fn recording_signature(&self, id: &str, issued: SimMs) -> String {
        let digest = Sha256::new()
            .chain_update(self.recording_key)
            .chain_update(id.as_bytes())
            .chain_update(issued.to_le_bytes())
            .finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Signs a download URL of a saved recording now, remembers the signature, and returns
    /// `{"<format>": url}` (`recording_urls` / `download_urls`); `{}` for an unknown id.
    fn issue_download_urls(&mut self, id: &str) -> Value {
        let now = self.now;
        let signature = self.recording_signature(id, now);
        let date = amz_date(self.now_utc());
        let base = self.public_base.trim_end_matches('/').to_owned();
        let Some(rec) = self.recordings.get_mut(id) else { return json!({}) };
        if !rec.issued.iter().any(|(s, _)| *s == signature) {
            rec.issued.push((signature.clone(), now));
        }
        let url = format!(
            "{base}/sim-s3/recordings/{id}.{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATOR%2Faws4_request&X-Amz-Date={date}&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
            rec.format,
        );
        let mut urls = Map::new();
        urls.insert(rec.format.to_owned(), Value::String(url));
        Value::Object(urls)
    }

    /// `GET /v2/recordings/{recording_id}`: the saved recording, with freshly signed `download_urls`.
    pub(crate) fn recording_get(&mut self, id: &str) -> Result<Outcome, ApiError> {
        if !self.recordings.contains_key(id) {
            return Err(ApiError::not_found());
        }
        let urls = self.issue_download_urls(id);
        let rec = self.recordings.get(id).ok_or_else(ApiError::not_found)?;
        let saved = ids::millis(self.utc_at(rec.saved_at));
        let data = json!({
            "call_control_id": rec.call_control_id,
            "call_leg_id": rec.call_leg_id,
            "call_session_id": rec.call_session_id,
            "channels": rec.channels,
            "connection_id": rec.connection_id,
            "created_at": saved,
            "download_urls": urls,
            "duration_millis": rec.saved_at.saturating_sub(rec.started_at),
            "from": rec.from,
            "id": id,
            "initiated_by": rec.initiated_by,
            "record_type": "recording",
            "recording_ended_at": saved,
            "recording_started_at": ids::millis(self.utc_at(rec.started_at)),
            "source": "call",
            "status": "completed",
            "to": rec.to,
            "updated_at": saved,
        });
        Ok(Outcome {
            status: StatusCode::OK,
            body: ReplyBody::Json(json!({ "data": data })),
            deduplicated: false,
        })
    }

    /// Serves `GET /sim-s3/recordings/<file>?<query>`, logged in `log.downloads`.
    pub(crate) fn download_recording(
        &mut self,
        file: &str,
        query: &[(String, String)],
        has_authorization: bool,
    ) -> Download {
        let answer = self.serve_download(file, query, has_authorization);
        let entry = crate::log::RecordingDownload {
            at_ms: self.now,
            file: file.to_owned(),
            status: answer.0.as_u16(),
        };
        self.log.downloads.push(entry);
        answer
    }

    fn serve_download(
        &mut self,
        file: &str,
        query: &[(String, String)],
        has_authorization: bool,
    ) -> Download {
        if let Some(status) = self.faults.take_recording_download() {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return s3_error(status, "InternalError", "Injected failure.");
        }
        let Some((id, ext)) = file.rsplit_once('.') else {
            return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.");
        };
        let Some(rec) = self.recordings.get(id).filter(|r| r.format == ext) else {
            return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.");
        };
        if has_authorization {
            self.anomaly("recording_fetched_with_authorization", None, format!("recording {id}"));
            return s3_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
            );
        }
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let issued = param("X-Amz-Signature")
            .and_then(|sig| rec.issued.iter().find(|(s, _)| s == sig))
            .map(|(_, at)| *at)
            .filter(|at| {
                param("X-Amz-Date") == Some(amz_date(self.utc_at(*at)).as_str())
                    && param("X-Amz-Expires") == Some("600")
            });
        let Some(issued) = issued else {
            return s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            );
        };
        if self.now > issued + URL_TTL_MS {
            return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
        }
        let ctype = if rec.format == "mp3" { "audio/mpeg" } else { "audio/wav" };
        (StatusCode::OK, ctype, media::recording(rec.format, rec.channels))
    }
}

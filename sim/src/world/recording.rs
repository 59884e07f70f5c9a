//! Recordings: start/stop on a leg, `call.recording.saved` with a pre-signed-looking URL, and downloads that
//! stop working 600 s (sim time) after the event, like Telnyx's S3 links (`X-Amz-Expires=600`).
//!
//! The URL is `<public base>/sim-s3/recordings/<recording_id>.<wav|mp3>?X-Amz-…&X-Amz-Signature=<hex>`, the
//! signature being SHA-256 over a seed-derived key, the id and the issue time, so a URL cannot be forged
//! or extended. As on S3, a download that also carries an `Authorization` header is refused (400), and so is
//! an expired one (403, `AccessDenied`, "Request has expired").

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::World;
use crate::timeline::SimMs;
use crate::{ids, media};

/// How long a recording URL works (sim time).
pub const URL_TTL_MS: SimMs = 600_000;

#[derive(Clone, Debug)]
pub(crate) struct RecordSpec {
    pub id: String,
    pub format: &'static str,
    pub channels: &'static str,
}

pub(crate) struct ActiveRecording {
    pub id: String,
    pub spec: RecordSpec,
    pub started: SimMs,
}

pub(crate) struct StoredRecording {
    pub format: &'static str,
    pub channels: &'static str,
    pub saved_at: SimMs,
    pub signature: String,
}

/// A download answer: status, content type, body.
pub(crate) type Download = (StatusCode, &'static str, Vec<u8>);

fn s3_error(status: StatusCode, code: &str, message: &str) -> Download {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, "application/xml", xml.into_bytes())
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
        let issued = self.now_utc();
        let amz_date = issued.format("%Y%m%dT%H%M%SZ").to_string();
        let signature = self.recording_signature(&rec.id, self.now);
        let url = format!(
            "{}/sim-s3/recordings/{}.{}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=SIMULATOR%2Faws4_request&X-Amz-Date={amz_date}&X-Amz-Expires=600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
            self.public_base.trim_end_matches('/'),
            rec.id,
            rec.spec.format,
        );
        self.recordings.insert(
            rec.id.clone(),
            StoredRecording {
                format: rec.spec.format,
                channels: rec.spec.channels,
                saved_at: self.now,
                signature,
            },
        );
        let mut urls = Map::new();
        urls.insert(rec.spec.format.to_owned(), Value::String(url));
        let started = ids::micros(self.utc_at(rec.started));
        let ended = ids::micros(issued);
        let start_time = self.legs.get(ccid).map(|l| ids::micros(self.utc_at(l.start)));
        let mut f = Map::new();
        f.insert("channels".into(), json!(rec.spec.channels));
        f.insert("end_time".into(), json!(ended));
        f.insert("format".into(), json!(rec.spec.format));
        f.insert("public_recording_urls".into(), json!({}));
        f.insert("recording_ended_at".into(), json!(ended));
        f.insert("recording_id".into(), json!(rec.id));
        f.insert("recording_started_at".into(), json!(started));
        f.insert("recording_urls".into(), Value::Object(urls));
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

    /// Serves `GET /sim-s3/recordings/<file>`.
    pub(crate) fn download_recording(
        &mut self,
        file: &str,
        signature: Option<&str>,
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
        if signature != Some(rec.signature.as_str()) {
            return s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            );
        }
        if self.now > rec.saved_at + URL_TTL_MS {
            return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
        }
        let channels = if rec.channels == "dual" { 2 } else { 1 };
        match rec.format {
            "mp3" => (StatusCode::OK, "audio/mpeg", media::mp3()),
            _ => (StatusCode::OK, "audio/wav", media::wav(channels)),
        }
    }
}

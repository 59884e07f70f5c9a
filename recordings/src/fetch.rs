//! Downloading a recording from its pre-signed S3 URL.
//!
//! The request carries no `Authorization` header (S3 refuses a request that has both a query
//! signature and a header) and no URL reaches a log line or an error. Connect timeout 5 s,
//! whole-download timeout 5 min, at most [`MAX_BYTES`] (a 4-hour dual-channel mp3 is ~230 MB).
//! An expired link is `Expired` (S3 answers 403 `AccessDenied` "Request has expired"); a link
//! whose signature does not match is reported the same way, since a fresh link is the cure for
//! both.

use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{MediaError, retry_after};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// The largest recording the fleet copies.
pub const MAX_BYTES: u64 = 1 << 30;

/// A downloaded recording.
#[derive(Debug, Clone)]
pub struct Downloaded {
    pub bytes: Bytes,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
}

/// Fetches recordings; cheap to clone.
#[derive(Clone, Debug)]
pub struct Downloader {
    http: reqwest::Client,
}

impl Downloader {
    pub fn new() -> Result<Self, MediaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(DOWNLOAD_TIMEOUT)
            .build()
            .map_err(|e| MediaError::Permanent { message: format!("HTTP client: {e}") })?;
        Ok(Self { http })
    }

    /// GETs `url` and checksums what came.
    pub async fn download(&self, url: &str) -> Result<Downloaded, MediaError> {
        let res = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| MediaError::transport("the recording download", &e))?;
        let status = res.status();
        if status == reqwest::StatusCode::FORBIDDEN {
            return Err(MediaError::Expired);
        }
        if !status.is_success() {
            return Err(MediaError::from_status("the recording download", status, retry_after(&res)));
        }
        if res.content_length().is_some_and(|n| n > MAX_BYTES) {
            return Err(MediaError::Permanent {
                message: format!("the recording is larger than {MAX_BYTES} bytes"),
            });
        }
        let bytes = res.bytes().await.map_err(|e| MediaError::transport("the recording download", &e))?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(MediaError::Permanent {
                message: format!("the recording is larger than {MAX_BYTES} bytes"),
            });
        }
        if bytes.is_empty() {
            return Err(MediaError::retryable("the recording download came back empty"));
        }
        let sha256 = sha256_hex(&bytes);
        Ok(Downloaded { bytes, sha256 })
    }
}

/// The checksum a stored copy carries: lowercase hex SHA-256 of its bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

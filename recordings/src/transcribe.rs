//! Transcription through an OpenAI-compatible `POST {base}/audio/transcriptions` (multipart:
//! `file`, `model`, optional `language`, `response_format=json`; answer `{"text": …}`), which is
//! what Telnyx (`https://api.telnyx.com/v2/ai`), OpenAI and the simulator serve.
//!
//! Connect timeout 5 s, whole request 5 min (a long recording takes a while). 408/409/425/429/5xx
//! and transport failures are `Retryable` (with `Retry-After`); other 4xx are `Permanent`; the
//! provider's answer body is never kept (it may echo the audio's content), only its status. The
//! API key prints as `***`.

use std::time::Duration;

use bytes::Bytes;
use fleet_platform::Secret;
use serde::Deserialize;

use crate::{MediaError, retry_after};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and how to transcribe.
#[derive(Debug, Clone)]
pub struct TranscriberSettings {
    /// The API base (`TRANSCRIPTION_API_BASE`), without `/audio/transcriptions`.
    pub base: String,
    pub api_key: Secret,
    pub model: String,
    pub language: Option<String>,
}

/// The transcription client; cheap to clone.
#[derive(Clone, Debug)]
pub struct Transcriber {
    http: reqwest::Client,
    settings: TranscriberSettings,
}

#[derive(Deserialize)]
struct Answer {
    text: String,
}

impl Transcriber {
    pub fn new(settings: TranscriberSettings) -> Result<Self, MediaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| MediaError::Permanent { message: format!("HTTP client: {e}") })?;
        Ok(Self { http, settings })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// Transcribes one recording's bytes.
    pub async fn transcribe(
        &self,
        audio: Bytes,
        file_name: &str,
        content_type: &str,
    ) -> Result<String, MediaError> {
        let length = audio.len() as u64;
        let part = reqwest::multipart::Part::stream_with_length(audio, length)
            .file_name(file_name.to_owned())
            .mime_str(content_type)
            .map_err(|e| MediaError::Permanent { message: format!("content type {content_type:?}: {e}") })?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", part)
            .text("model", self.settings.model.clone())
            .text("response_format", "json");
        if let Some(language) = &self.settings.language {
            form = form.text("language", language.clone());
        }
        let url = format!("{}/audio/transcriptions", self.settings.base.trim_end_matches('/'));
        let res = self
            .http
            .post(url)
            .bearer_auth(self.settings.api_key.expose())
            .multipart(form)
            .send()
            .await
            .map_err(|e| MediaError::transport("the transcription API", &e))?;
        let status = res.status();
        if !status.is_success() {
            return Err(MediaError::from_status("the transcription API", status, retry_after(&res)));
        }
        let answer: Answer = res.json().await.map_err(|_| MediaError::Retryable {
            message: "the transcription API's answer has no text".into(),
            retry_after: None,
        })?;
        Ok(answer.text)
    }
}

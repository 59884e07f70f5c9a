//! What job handlers can reach: the store and the outbound clients, built once per process.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::Duration;
use fleet_domain::client_state::ClientStateKey;
use fleet_domain::credentials::CredentialPolicy;
use fleet_domain::sealing::Keyring;
use fleet_platform::Config;
use fleet_push::PushGateway;
use fleet_store::Store;
use fleet_telnyx::TelnyxClient;
use fleet_telnyx::call_control::CallControl;

use crate::{EventsClient, JobError};

/// Shared by every job of a process; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub store: Arc<dyn Store>,
    /// Telnyx API client (`None` without `TELNYX_API_KEY`: credential jobs fail permanently).
    pub telnyx: Option<TelnyxClient>,
    /// Telnyx Call Control, with its own rate budget ahead of credential housekeeping (`None`
    /// without `TELNYX_API_KEY`: call commands fail permanently, into the dead set).
    pub call_control: Option<CallControl>,
    /// `TELNYX_CONNECTION_ID`: the Call Control app the ring legs are dialed on.
    pub call_connection_id: Option<String>,
    /// Authenticates our `client_state` (see [`client_state_key`]).
    pub client_state_key: ClientStateKey,
    /// FCM and APNs behind their rate limits and breakers (a provider without configuration
    /// fails its pushes permanently, into the dead set).
    pub push: Arc<PushGateway>,
    /// Seals SIP passwords at rest (`None` without `CALLFLEET_SECRET_KEY`: passwords are not kept).
    pub keyring: Option<Keyring>,
    /// `TELNYX_CREDENTIAL_CONNECTION_ID`.
    pub credential_connection_id: Option<String>,
    pub credential_policy: CredentialPolicy,
    /// How long one attempt of a long maintenance job works before handing the rest to a
    /// continuation job (`None`: 40 s, under the 60 s attempt timeout). Benchmarks raise it.
    pub attempt_budget: Option<std::time::Duration>,
    /// Signed app events to `CALLFLEET_EVENTS_URL` (`None` without it: event jobs are skipped).
    pub events: Option<EventsClient>,
    /// Whether "app events are off" was logged (once per process).
    pub(crate) events_off_logged: Arc<AtomicBool>,
    /// Where recordings are kept (`CALLFLEET_RECORDINGS_URL`, else the data dir, whose
    /// `recordings/` folder the copies' keys name).
    pub archive: fleet_recordings::Archive,
    /// Fetches recordings from their pre-signed URLs.
    pub downloader: fleet_recordings::Downloader,
    /// `None` without `TRANSCRIPTION_API_KEY` and `TELNYX_API_KEY`: transcripts are marked failed.
    pub transcriber: Option<fleet_recordings::Transcriber>,
    /// Orders the transitions of one call within this process (see [`crate::calls::CallSerializer`]).
    pub(crate) call_turns: Arc<crate::calls::CallSerializer>,
}

/// The configuration cannot build a runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("CALLFLEET_SECRET_KEY: {0}")]
    SecretKey(#[from] fleet_domain::sealing::SealError),
    #[error("Telnyx client: {0}")]
    Telnyx(#[from] fleet_telnyx::TelnyxError),
    #[error("push providers: {0}")]
    Push(#[from] fleet_push::PushConfigError),
    #[error("app events: {0}")]
    Events(#[from] crate::EventsConfigError),
    #[error(transparent)]
    Archive(#[from] fleet_recordings::ArchiveConfigError),
    #[error("recordings: {0}")]
    Media(#[from] fleet_recordings::MediaError),
}

impl Runtime {
    /// Builds the runtime from configuration; invalid secret keys stop the start (as does
    /// `CALLFLEET_EVENTS_URL` without a valid `CALLFLEET_EVENTS_SECRET`).
    pub fn from_config(config: &Config, store: Arc<dyn Store>) -> Result<Self, RuntimeError> {
        let keyring = config.secret_key.as_ref().map(|k| Keyring::parse(k.expose())).transpose()?;
        let secs = |d: std::time::Duration| Duration::seconds(d.as_secs() as i64);
        let telnyx_settings = fleet_telnyx::TelnyxSettings::from_env(config).map_err(|e| {
            RuntimeError::Telnyx(fleet_telnyx::TelnyxError::Permanent { status: 0, message: e.to_string() })
        })?;
        Ok(Self {
            store,
            telnyx: fleet_telnyx::client_with_settings(config, &telnyx_settings)?,
            call_control: fleet_telnyx::call_control_from_config(config, &telnyx_settings)?,
            call_connection_id: config.telnyx_connection_id.clone(),
            client_state_key: client_state_key(config, keyring.as_ref()),
            push: Arc::new(PushGateway::from_config(config)?),
            keyring,
            credential_connection_id: config.telnyx_credential_connection_id.clone(),
            credential_policy: CredentialPolicy {
                ttl: secs(config.credential_ttl),
                rotate_before: secs(config.credential_rotate_before),
                ..CredentialPolicy::default()
            },
            attempt_budget: None,
            events: EventsClient::from_config(config)?,
            events_off_logged: Arc::default(),
            archive: archive(config)?,
            downloader: fleet_recordings::Downloader::new()?,
            transcriber: transcriber(config)?,
            call_turns: Arc::default(),
        })
    }

    pub(crate) fn call_control(&self) -> Result<&CallControl, JobError> {
        self.call_control.as_ref().ok_or_else(|| JobError::permanent("TELNYX_API_KEY is not configured"))
    }

    pub(crate) fn telnyx(&self) -> Result<&TelnyxClient, JobError> {
        self.telnyx.as_ref().ok_or_else(|| JobError::permanent("TELNYX_API_KEY is not configured"))
    }
}

/// The recordings' object store the configuration names.
fn archive(config: &Config) -> Result<fleet_recordings::Archive, RuntimeError> {
    let archive = match &config.recordings_url {
        Some(url) => {
            let options: Vec<(String, String)> =
                config.recordings_s3.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect();
            fleet_recordings::Archive::open(url, &options)?
        }
        // Keys start with `recordings/`: the copies land in `<data dir>/recordings/<org>/…`.
        None => fleet_recordings::Archive::local(&config.data_dir)?,
    };
    tracing::info!(recordings = archive.describe(), "Recording copies are kept here.");
    Ok(archive)
}

/// Telnyx's OpenAI-compatible transcription API by default (`<TELNYX_API_BASE>/ai`, its key),
/// or `TRANSCRIPTION_API_BASE` with `TRANSCRIPTION_API_KEY` (else the Telnyx key).
fn transcriber(config: &Config) -> Result<Option<fleet_recordings::Transcriber>, RuntimeError> {
    let Some(api_key) = config.transcription_api_key.clone().or_else(|| config.telnyx_api_key.clone()) else {
        return Ok(None);
    };
    let base = config
        .transcription_api_base
        .clone()
        .unwrap_or_else(|| format!("{}/ai", config.telnyx_api_base.trim_end_matches('/')));
    let settings = fleet_recordings::TranscriberSettings {
        base,
        api_key,
        model: config.transcription_model.clone(),
        language: config.transcription_language.clone(),
    };
    Ok(Some(fleet_recordings::Transcriber::new(settings)?))
}

/// The `client_state` MAC key, the same in every process of a fleet: derived from the oldest key
/// of `CALLFLEET_SECRET_KEY` (rotation adds keys in front, so live calls keep verifying), else from
/// `TELNYX_API_KEY` (a secret every process of the fleet shares). With neither — the simulator
/// demo in one process — a random key of this process, and a warning: other processes could not
/// verify its legs.
fn client_state_key(config: &Config, keyring: Option<&Keyring>) -> ClientStateKey {
    if let Some(ring) = keyring {
        return ClientStateKey::derive(ring.oldest_key_bytes());
    }
    if let Some(api_key) = &config.telnyx_api_key {
        return ClientStateKey::derive(api_key.expose().as_bytes());
    }
    tracing::warn!(
        "Neither CALLFLEET_SECRET_KEY nor TELNYX_API_KEY is set: client_state is signed with a key of this process only."
    );
    ClientStateKey::derive(&rand::random::<[u8; 32]>())
}

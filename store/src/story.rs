//! One call's story, as an operator reads it (`callfleet call SESSION`, the admin page): the
//! engine's call record, the leg rows Telnyx's webhooks built, and a summary of every stored
//! webhook of the session in the order received. Webhook bodies are left out (they carry the
//! parties' numbers and names; `callfleet replay` re-runs them, nothing here needs them).

use chrono::{DateTime, Utc};
use fleet_domain::call::Call;
use serde::Serialize;

use crate::{CallLeg, ReplaySelector, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct CallStory {
    pub call_session_id: String,
    pub call: Option<Call>,
    pub leg_records: Vec<CallLeg>,
    pub webhooks: Vec<WebhookSummary>,
}

/// A stored webhook without its body.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookSummary {
    pub event_id: String,
    pub event_type: String,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
}

/// The story of `session`, or `None` when the fleet knows nothing of it.
pub async fn call_story(store: &dyn Store, session: &str) -> Result<Option<CallStory>, StoreError> {
    let call = store.call(session).await?;
    let leg_records = store.call_legs(session).await?;
    let mut webhooks = Vec::new();
    for target in store.select_webhooks(&ReplaySelector::Session(session.to_owned())).await? {
        if let Some(w) = store.webhook(&target.event_id).await? {
            webhooks.push(WebhookSummary {
                event_id: w.event_id,
                event_type: w.event_type,
                source: w.source,
                received_at: w.received_at,
                processed_at: w.processed_at,
                outcome: w.outcome,
            });
        }
    }
    if call.is_none() && leg_records.is_empty() && webhooks.is_empty() {
        return Ok(None);
    }
    Ok(Some(CallStory { call_session_id: session.to_owned(), call, leg_records, webhooks }))
}

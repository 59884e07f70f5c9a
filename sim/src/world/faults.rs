//! Injected faults: a list of (fault, remaining count), consumed by the code paths they target.
//!
//! Matching is first-in-first-out among faults that match; a fault with `count` 0 is dropped on insert.
//! API faults (`ApiError`, `ApiTimeout`) without an `operation` match every operation taken with
//! [`Faults::take_api`]; operations outside the Telnyx REST surface proper (transcription) use
//! [`Faults::take_api_named`], which only matches faults that name them.

use crate::scenario::Fault;

#[derive(Default)]
pub(crate) struct Faults {
    active: Vec<(u64, Fault, u32)>,
    next_id: u64,
}

/// What an API request must suffer.
pub(crate) enum ApiFault {
    Error { status: u16, code: Option<String> },
    Timeout { delay: std::time::Duration, apply: bool },
}

impl Faults {
    pub fn add(&mut self, fault: Fault) -> u64 {
        self.next_id += 1;
        let count = match &fault {
            Fault::ApiError { count, .. }
            | Fault::ApiTimeout { count, .. }
            | Fault::WebhookDrop { count, .. }
            | Fault::RecordingError { count }
            | Fault::RecordingDownload { count, .. }
            | Fault::AppEventError { count, .. }
            | Fault::TranscriptionError { count, .. } => *count,
        };
        if count > 0 {
            self.active.push((self.next_id, fault, count));
        }
        self.next_id
    }

    pub fn clear(&mut self) {
        self.active.clear();
    }

    pub fn list(&self) -> Vec<(u64, Fault, u32)> {
        self.active.clone()
    }

    fn take(&mut self, pred: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.active.iter().position(|(_, f, _)| pred(f))?;
        let entry = &mut self.active[i];
        entry.2 -= 1;
        let f = entry.1.clone();
        if entry.2 == 0 {
            self.active.remove(i);
        }
        Some(f)
    }

    /// Consumes a fault for API operation `op`, if one matches (its own, or one without an operation).
    pub fn take_api(&mut self, op: &str) -> Option<ApiFault> {
        self.take_api_where(|o| o.is_none_or(|o| o == op))
    }

    /// Consumes a fault naming API operation `op`, if there is one (faults without an operation are left).
    pub fn take_api_named(&mut self, op: &str) -> Option<ApiFault> {
        self.take_api_where(|o| o == Some(op))
    }

    fn take_api_where(&mut self, pred: impl Fn(Option<&str>) -> bool) -> Option<ApiFault> {
        let matches = |o: &Option<String>| pred(o.as_deref());
        match self.take(|f| match f {
            Fault::ApiError { operation, .. } | Fault::ApiTimeout { operation, .. } => matches(operation),
            _ => false,
        })? {
            Fault::ApiError { status, code, .. } => Some(ApiFault::Error { status, code }),
            Fault::ApiTimeout { delay, apply, .. } => Some(ApiFault::Timeout { delay, apply }),
            _ => None,
        }
    }

    pub fn take_webhook_drop(&mut self, event_type: &str) -> bool {
        self.take(|f| match f {
            Fault::WebhookDrop { event_type: t, .. } => t.as_deref().is_none_or(|t| t == event_type),
            _ => false,
        })
        .is_some()
    }

    pub fn take_recording_error(&mut self) -> bool {
        self.take(|f| matches!(f, Fault::RecordingError { .. })).is_some()
    }

    pub fn take_app_event_error(&mut self) -> Option<u16> {
        match self.take(|f| matches!(f, Fault::AppEventError { .. }))? {
            Fault::AppEventError { status, .. } => Some(status),
            _ => None,
        }
    }

    pub fn take_transcription_error(&mut self) -> Option<u16> {
        match self.take(|f| matches!(f, Fault::TranscriptionError { .. }))? {
            Fault::TranscriptionError { status, .. } => Some(status),
            _ => None,
        }
    }

    pub fn take_recording_download(&mut self) -> Option<u16> {
        match self.take(|f| matches!(f, Fault::RecordingDownload { .. }))? {
            Fault::RecordingDownload { status, .. } => Some(status),
            _ => None,
        }
    }
}

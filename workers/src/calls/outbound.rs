//! An outbound call placed by a device (it arrives on the credential connection, from the
//! device's SIP URI): checked, then connected to its destination by `place_outbound.v1`.
//!
//! The device is found by its SIP username (a credential of ours; an unknown one is rejected).
//! The destination must not be on its organization's block list, and the caller id is forced to
//! one of the organization's own numbers (the user's own number first) — a device never picks
//! the caller id. A device whose org has no number cannot call out (rejected, and logged).

use fleet_domain::event::CallEvent;
use fleet_jobs::{Envelope, Job};
use fleet_store::NewJob;

use crate::{JobError, Runtime};

/// `sip:<user>@host` (or a bare user) → `<user>`.
fn sip_user(uri: &str) -> &str {
    let rest = uri.strip_prefix("sip:").unwrap_or(uri);
    rest.split(['@', ';']).next().unwrap_or(rest)
}

pub(super) async fn place(
    runtime: &Runtime,
    event: &CallEvent,
    session: &str,
    parent: &str,
) -> Result<(), JobError> {
    let store = &runtime.store;
    let p = &event.payload;
    let (from, to) = (p.from.clone().unwrap_or_default(), p.to.clone().unwrap_or_default());
    let job = match store.credential_by_sip_username(sip_user(&from)).await? {
        None => {
            tracing::warn!("Outbound call from a SIP user callfleet does not know; rejecting it.");
            None
        }
        Some(cred) if store.is_blocked(&cred.org_id, &to).await? => {
            tracing::info!(org_id = %cred.org_id, "Outbound call to a blocked number; rejecting it.");
            None
        }
        Some(cred) => {
            let numbers = store.org_numbers(&cred.org_id).await?;
            let own = numbers.iter().find(|(_, c)| c.user_id.as_deref() == Some(cred.user_id.as_str()));
            match own.or(numbers.first()) {
                Some((caller_id, _)) => Some(Job::PlaceOutboundV1 {
                    call_session_id: session.to_owned(),
                    call_control_id: parent.to_owned(),
                    to,
                    from: caller_id.clone(),
                }),
                None => {
                    tracing::warn!(org_id = %cred.org_id, "Outbound call from an org without a number; rejecting it.");
                    None
                }
            }
        }
    };
    let job = job.unwrap_or_else(|| Job::RejectCallV1 {
        call_session_id: session.to_owned(),
        call_control_id: parent.to_owned(),
    });
    let envelope =
        Envelope::new(job, format!("outbound:{session}")).with_call_session(Some(session.to_owned()));
    store.enqueue(&[NewJob::once(envelope)]).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn sip_users_are_read_from_uris() {
        assert_eq!(super::sip_user("sip:gencred123@sip.telnyx.com"), "gencred123");
        assert_eq!(super::sip_user("sip:gencred123@sip.telnyx.com;transport=tls"), "gencred123");
        assert_eq!(super::sip_user("gencred123"), "gencred123");
    }
}

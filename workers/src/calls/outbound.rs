//! An outbound call placed by a device (it arrives on the credential connection, from the
//! device's SIP URI): checked, stored as a call of its own, then connected to its destination.
//!
//! The device is found by its SIP username (a credential of ours). An unknown one is rejected
//! with nothing stored: there is no organization to keep the call in. Otherwise the call is
//! stored (`direction: outbound`, the device's user, the credential's org) with its first
//! decision, in one transaction, so it is the user's active call while it lasts and
//! `GET /v1/calls/{id}` shows it:
//! - a destination on the organization's block list → rejected (`blocked`);
//! - an organization without a number → rejected (`no_caller_id`): the caller id is always one
//!   of the org's own numbers (the user's own first), never one the device picks;
//! - otherwise `transfer` to the destination, whose new leg carries our sealed `outbound`
//!   client state so its answer and hangup are the call's (`fleet_domain::call` takes it from
//!   there: far end answers → `answered`; either side hangs up → the other is ended).
//!
//! Do-not-disturb is about being rung: it does not stop a user calling out, and a destination
//! that is one of our numbers meets its own user's DND when the call comes back in.

use super::routing::{reject_unstored, store_routed};
use crate::{JobError, Runtime};
use fleet_domain::call::{Call, CallDirection, CallSetup, EndReason, Route, VoicemailSettings};
use fleet_domain::event::CallEvent;
use fleet_domain::routing::sip_user;

/// The destination to transfer to: a number dialed as `sip:+1312…@host` is the number itself.
fn destination(to: &str) -> String {
    let user = sip_user(to);
    let is_number =
        user.strip_prefix('+').is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if is_number { user.to_owned() } else { to.to_owned() }
}

pub(super) async fn place(
    runtime: &Runtime,
    event: &CallEvent,
    session: &str,
    parent: &str,
) -> Result<(), JobError> {
    let store = &runtime.store;
    let p = &event.payload;
    let device_uri = p.from.clone().unwrap_or_default();
    let to = destination(p.to.as_deref().unwrap_or_default());
    let Some(cred) = store.credential_by_sip_username(sip_user(&device_uri)).await? else {
        tracing::warn!("Outbound call from a SIP user callfleet does not know; rejecting it.");
        return reject_unstored(runtime, session, parent, &format!("outbound:{session}")).await;
    };
    let numbers = store.org_numbers(&cred.org_id).await?;
    let own = numbers.iter().find(|(_, c)| c.user_id.as_deref() == Some(cred.user_id.as_str()));
    let caller_id = own.or(numbers.first()).map(|(number, _)| number.clone());
    let route = if store.is_blocked(&cred.org_id, &to).await? {
        tracing::info!(org_id = %cred.org_id, "Outbound call to a blocked number; rejecting it.");
        Route::Reject { reason: EndReason::Blocked }
    } else if caller_id.is_none() {
        tracing::warn!(org_id = %cred.org_id, "Outbound call from an org without a number; rejecting it.");
        Route::Reject { reason: EndReason::NoCallerId }
    } else {
        Route::Outbound
    };
    let org = store.organization(&cred.org_id).await?.unwrap_or_default();
    let now = store.now();
    let call = Call::new(
        CallSetup {
            id: session.to_owned(),
            direction: CallDirection::Outbound,
            placed_by: Some(cred.device_id.clone()),
            org_id: cred.org_id.clone(),
            user_id: Some(cred.user_id.clone()),
            parent_call_control_id: parent.to_owned(),
            from: caller_id.unwrap_or(device_uri),
            to,
            caller_name: None,
            org_name: org.name,
            voicemail: VoicemailSettings::default(),
        },
        event.occurred_at.unwrap_or(now),
    );
    store_routed(runtime, call, route, now).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_number_dialed_as_a_sip_uri_is_the_number() {
        assert_eq!(super::destination("sip:+13125557777@sip.telnyx.com"), "+13125557777");
        assert_eq!(super::destination("+13125557777"), "+13125557777");
        assert_eq!(super::destination("sip:support@example.com"), "sip:support@example.com");
    }
}

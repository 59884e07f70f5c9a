//! The seam between the push simulator (`crate::push`) and the call model.
//!
//! A scripted device can be "woken" by a push: it registers its SIP credential N ms after a push for its
//! token was delivered. The push simulator does not know about devices or SIP; it only reports each push it
//! accepted through a [`PushObserver`]. The call model implements the trait (see
//! [`crate::SimHandle::push_observer`]) and looks the token up among its scripted devices.
//!
//! Contract for implementors of the push side:
//! - call [`PushObserver::push_delivered`] once per push the simulated FCM/APNs endpoint **accepted**
//!   (a 2xx it returned), after deciding to accept it, never for rejected pushes;
//! - the call is synchronous and cheap (it takes a short, non-async lock); it never blocks on I/O and
//!   never fails: unknown tokens are ignored by the call model;
//! - it may be called from any thread or task, concurrently.

use serde::{Deserialize, Serialize};

/// Which push service accepted the push.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPlatform {
    /// Firebase Cloud Messaging (Android).
    Fcm,
    /// Apple Push Notification service (iOS, VoIP pushes included).
    Apns,
}

/// One push that the simulated FCM/APNs endpoint accepted for delivery to a device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveredPush {
    /// The service that accepted it.
    pub platform: PushPlatform,
    /// The device token (FCM registration token or APNs device token) it was addressed to.
    pub token: String,
    /// The push's data (FCM `message.data`, APNs JSON payload), as received.
    pub data: serde_json::Value,
}

/// Receives every push the push simulator accepted. See the module docs for the contract.
pub trait PushObserver: Send + Sync + 'static {
    /// A push was accepted for `push.token`. Must not block; must not panic.
    fn push_delivered(&self, push: DeliveredPush);
}

/// An observer that ignores every push (for a push simulator running without a call model).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopPushObserver;

impl PushObserver for NoopPushObserver {
    fn push_delivered(&self, _push: DeliveredPush) {}
}

//! Wiring of the push simulator (`crate::push`) into the carrier simulator.
//!
//! One [`PushSim`] per simulator, seeded with the simulator's seed; its provider routes (FCM, OAuth token,
//! APNs) and its control routes (`/sim/push/…`) are merged into the simulator's router. Every push it
//! delivers is forwarded, synchronously, to the call model's [`PushObserver`], which wakes the scripted
//! device owning the token (see `world::devices`).

use std::sync::Arc;

use axum::Router;

use crate::observer::{DeliveredPush, PushObserver, PushPlatform};
use crate::push::{self, Provider, PushSim};

/// Creates the push simulator and connects its deliveries to `observer`.
pub(crate) fn push_sim(seed: u64, observer: Arc<dyn PushObserver>) -> PushSim {
    let sim = PushSim::new(seed);
    sim.on_delivered(move |p: &push::DeliveredPush| {
        observer.push_delivered(DeliveredPush {
            platform: match p.provider {
                Provider::Fcm => PushPlatform::Fcm,
                Provider::Apns => PushPlatform::Apns,
            },
            token: p.token.clone(),
            data: p.data.clone(),
        });
    });
    sim
}

/// The push simulator's provider and control routes.
pub(crate) fn router(sim: &PushSim) -> Router {
    push::router(sim.clone()).merge(push::control_router(sim.clone()))
}

//! The process's one LISTEN for new jobs (Postgres), feeding every worker pool's wake-ups.
//!
//! Jobs inserted by other processes (the ingress above all) wake this process's workers through
//! NOTIFY; jobs this process inserts wake them through the store's [`QueueWaker`] directly. The
//! listener ([`fleet_store::notify`]) turns each notice into a wake of that pool on the same
//! waker, so a worker's wake stream is the waker's alone, whatever the engine.
//!
//! Failure behaviour: while the database is unreachable the listener retries with [`Backoff`]
//! (100 ms doubling to 5 s) and `callfleet_db_listener_up` reads 0; workers then still poll at
//! their periodic nudge. Once connected again it wakes every pool once, since notifications sent
//! meanwhile are lost, and counts `callfleet_db_listener_reconnects_total`.

use std::time::Instant;

use fleet_jobs::Pool;
use fleet_platform::shutdown::CancellationToken;
use fleet_store::notify::Notice;
use fleet_store::postgres::PgStore;
use fleet_store::wake::QueueWaker;

use crate::backoff::Backoff;

/// Runs until `shutdown`, waking `pools` on `waker` for each notice.
pub async fn run(store: PgStore, waker: QueueWaker, pools: Vec<Pool>, shutdown: CancellationToken) {
    let mut backoff = Backoff::default();
    let mut connected_before = false;
    let wake_all = || pools.iter().for_each(|p| waker.notify(*p));
    while !shutdown.is_cancelled() {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = store.listen_for_jobs() => outcome,
        };
        match outcome {
            Ok(mut notices) => {
                up(true);
                if connected_before {
                    metrics::counter!("callfleet_db_listener_reconnects_total").increment(1);
                    tracing::info!("Listening for new jobs again.");
                }
                connected_before = true;
                wake_all();
                let error = loop {
                    let notice = tokio::select! {
                        () = shutdown.cancelled() => return,
                        notice = notices.next() => notice,
                    };
                    match notice {
                        Ok(Notice::Jobs(pool)) => waker.notify(pool),
                        Ok(Notice::Reconnected) => {
                            metrics::counter!("callfleet_db_listener_reconnects_total").increment(1);
                            wake_all();
                        }
                        Err(e) => break e,
                    }
                };
                tracing::warn!(error = %error, "The listener for new jobs lost its connection.");
            }
            Err(e) => tracing::warn!(error = %e, "Listening for new jobs failed."),
        }
        up(false);
        let wait = backoff.next(Instant::now());
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// `callfleet_db_listener_up`: 1 while this process hears NOTIFY of new jobs.
fn up(yes: bool) {
    metrics::gauge!("callfleet_db_listener_up").set(if yes { 1.0 } else { 0.0 });
}

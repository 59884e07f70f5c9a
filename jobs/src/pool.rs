//! Worker pools: one queue each, scaled independently (`callfleet worker --pool a,b`).

use std::fmt;
use std::str::FromStr;

/// The pools named in the product brief.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pool {
    /// Telnyx webhook event processing, call inputs, and the call log and ledger entry of each
    /// ended call (quick store writes, kept apart from the recordings' long downloads).
    Webhooks,
    /// Creating call legs (simultaneous ring).
    Legs,
    /// Delayed sim-ring retries for devices that were not reachable yet.
    SimringRetries,
    /// FCM and APNs delivery.
    Push,
    /// Recording copy and transcription.
    Recordings,
    /// Signed events to the app backend.
    Events,
    /// Telnyx telephony-credential provisioning.
    Credentials,
    /// Cron work: expiry cleanup, orphan sweeps, retention.
    Maintenance,
}

/// A pool name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown pool {0:?}; pools are: webhooks, legs, simring-retries, push, recordings, events, credentials, maintenance"
)]
pub struct UnknownPool(pub String);

impl Pool {
    pub const ALL: [Pool; 8] = [
        Pool::Webhooks,
        Pool::Legs,
        Pool::SimringRetries,
        Pool::Push,
        Pool::Recordings,
        Pool::Events,
        Pool::Credentials,
        Pool::Maintenance,
    ];

    /// The pool's name, which is also its queue name.
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Webhooks => "webhooks",
            Pool::Legs => "legs",
            Pool::SimringRetries => "simring-retries",
            Pool::Push => "push",
            Pool::Recordings => "recordings",
            Pool::Events => "events",
            Pool::Credentials => "credentials",
            Pool::Maintenance => "maintenance",
        }
    }

    /// Parses a comma-separated list (`webhooks,push`); `all` means every pool.
    pub fn parse_list(list: &str) -> Result<Vec<Pool>, UnknownPool> {
        if list.trim() == "all" {
            return Ok(Pool::ALL.to_vec());
        }
        let mut pools: Vec<Pool> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        pools.sort();
        pools.dedup();
        if pools.is_empty() {
            return Err(UnknownPool(list.to_owned()));
        }
        Ok(pools)
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Pool {
    type Err = UnknownPool;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pool::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownPool(s.to_owned()))
    }
}

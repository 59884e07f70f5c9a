//! The Telnyx clients' knobs that `fleet_platform::Config` does not (yet) carry, read from the same
//! kind of lookup (`Config::from_lookup`'s), each with a default, validated at start.
//!
//! Rate budgets: live-call commands (`calls`) and credential housekeeping (`housekeeping`) each
//! have their own limiter, keyed apart in Redis (`<prefix>:ratelimit:telnyx:calls` and
//! `…:telnyx:housekeeping`), so the cleanup cron's parallel deletes cannot delay a hangup. A
//! live-call command waits at most `calls_max_wait` for its slot, then fails as `Wait`
//! (`rate_budget`); housekeeping waits as long as it takes. Note for operators: the two rates add
//! up; keep their sum under the account's real limit (Telnyx does not publish it; dials are
//! separately limited to 30/s per account).
//!
//! Not read from the `CALLFLEET_CONFIG` file: [`TelnyxSettings::from_env`] reads the process
//! environment only (the platform crate owns the file; these keys should move there).

use std::time::Duration;

use fleet_platform::{Config, ConfigError};

/// Knobs of the Call Control client and the credentials client.
#[derive(Debug, Clone, PartialEq)]
pub struct TelnyxSettings {
    /// Live-call commands per second (`CALLFLEET_TELNYX_CALLS_RATE_LIMIT`, default 15).
    pub calls_rate: u32,
    /// Largest burst of live-call commands (`CALLFLEET_TELNYX_CALLS_RATE_BURST`; default five
    /// seconds' worth of `calls_rate`, 75). A simultaneous ring sends its dials at once: with a
    /// burst of one second's worth, 25 devices could not be dialed together. Any 5 s window then
    /// holds at most `burst + 5 × rate` commands — 150 with the defaults, Telnyx's documented dial
    /// limit (30/s as a 5-second rolling sum) even if every command were a dial.
    pub calls_burst: u32,
    /// Longest wait of a live-call command for a rate slot (`CALLFLEET_TELNYX_CALLS_MAX_WAIT_MS`,
    /// default 250 ms).
    pub calls_max_wait: Duration,
    /// Credential API calls per second (`CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT`; default: the
    /// existing `CALLFLEET_TELNYX_RATE_LIMIT`, 20).
    pub housekeeping_rate: u32,
    /// Connect timeout of Call Control requests (`CALLFLEET_TELNYX_CALLS_CONNECT_TIMEOUT_MS`, 1000).
    pub calls_connect_timeout: Duration,
    /// Whole-request timeout of Call Control requests (`CALLFLEET_TELNYX_CALLS_TIMEOUT_MS`, 3000).
    pub calls_timeout: Duration,
    /// Immediate re-sends (same `command_id`) after a 5xx, timeout or transport error, as Telnyx
    /// advises (`CALLFLEET_TELNYX_CALLS_IMMEDIATE_RETRIES`, default 1, 0–3).
    pub calls_immediate_retries: u32,
    /// Consecutive API failures that open a breaker (`CALLFLEET_TELNYX_BREAKER_THRESHOLD`, 10).
    pub breaker_threshold: u32,
    /// How long an open breaker refuses (`CALLFLEET_TELNYX_BREAKER_COOLDOWN_MS`, 10000).
    pub breaker_cooldown: Duration,
}

impl Default for TelnyxSettings {
    fn default() -> Self {
        Self {
            calls_rate: 15,
            calls_burst: 75,
            calls_max_wait: Duration::from_millis(250),
            housekeeping_rate: 20,
            calls_connect_timeout: Duration::from_millis(1000),
            calls_timeout: Duration::from_millis(3000),
            calls_immediate_retries: 1,
            breaker_threshold: 10,
            breaker_cooldown: Duration::from_secs(10),
        }
    }
}

impl TelnyxSettings {
    /// From the process environment, completing `config`.
    pub fn from_env(config: &Config) -> Result<Self, ConfigError> {
        Self::from_lookup(config, |k| std::env::var(k).ok())
    }

    /// From any lookup (tests); empty values count as unset.
    pub fn from_lookup(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |key: &str| lookup(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let num = |key: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            let Some(raw) = get(key) else { return Ok(default) };
            match raw.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError {
                    key,
                    problem: format!("{raw:?} is not a whole number from {min} to {max}"),
                }),
            }
        };
        let d = Self::default();
        let ms = |key, default: Duration, min, max| {
            num(key, default.as_millis() as u64, min, max).map(Duration::from_millis)
        };
        let calls_rate = num("CALLFLEET_TELNYX_CALLS_RATE_LIMIT", d.calls_rate.into(), 1, 100_000)? as u32;
        Ok(Self {
            calls_rate,
            calls_burst: num("CALLFLEET_TELNYX_CALLS_RATE_BURST", u64::from(calls_rate) * 5, 1, 1_000_000)?
                as u32,
            calls_max_wait: ms("CALLFLEET_TELNYX_CALLS_MAX_WAIT_MS", d.calls_max_wait, 0, 10_000)?,
            housekeeping_rate: num(
                "CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT",
                config.telnyx_rate_limit.into(),
                1,
                100_000,
            )? as u32,
            calls_connect_timeout: ms(
                "CALLFLEET_TELNYX_CALLS_CONNECT_TIMEOUT_MS",
                d.calls_connect_timeout,
                50,
                30_000,
            )?,
            calls_timeout: ms("CALLFLEET_TELNYX_CALLS_TIMEOUT_MS", d.calls_timeout, 100, 60_000)?,
            calls_immediate_retries: num(
                "CALLFLEET_TELNYX_CALLS_IMMEDIATE_RETRIES",
                d.calls_immediate_retries.into(),
                0,
                3,
            )? as u32,
            breaker_threshold: num(
                "CALLFLEET_TELNYX_BREAKER_THRESHOLD",
                d.breaker_threshold.into(),
                1,
                10_000,
            )? as u32,
            breaker_cooldown: ms("CALLFLEET_TELNYX_BREAKER_COOLDOWN_MS", d.breaker_cooldown, 100, 600_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|_| None).unwrap()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = TelnyxSettings::from_lookup(&config(), |_| None).unwrap();
        assert_eq!(s, TelnyxSettings::default());
        let s = TelnyxSettings::from_lookup(&config(), |k| match k {
            "CALLFLEET_TELNYX_CALLS_RATE_LIMIT" => Some("40".into()),
            "CALLFLEET_TELNYX_CALLS_MAX_WAIT_MS" => Some("0".into()),
            "CALLFLEET_TELNYX_HOUSEKEEPING_RATE_LIMIT" => Some(" ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!((s.calls_rate, s.calls_max_wait, s.housekeeping_rate), (40, Duration::ZERO, 20));
        assert_eq!(s.calls_burst, 200, "five seconds' worth of the configured rate");
        let s = TelnyxSettings::from_lookup(&config(), |k| {
            (k == "CALLFLEET_TELNYX_CALLS_RATE_BURST").then(|| "10".into())
        })
        .unwrap();
        assert_eq!((s.calls_rate, s.calls_burst), (15, 10));
        let bad = TelnyxSettings::from_lookup(&config(), |k| {
            (k == "CALLFLEET_TELNYX_CALLS_IMMEDIATE_RETRIES").then(|| "9".into())
        });
        assert_eq!(bad.unwrap_err().key, "CALLFLEET_TELNYX_CALLS_IMMEDIATE_RETRIES");
    }
}

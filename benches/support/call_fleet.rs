//! What the call benchmarks share: a fleet in this process (ingress + every worker pool) on a
//! fresh PostgreSQL database, wired both ways to a simulator on its real clock (dials-per-second
//! account limit off), phones provisioned through the fleet, and the measuring helpers.
//!
//! Timing points (one host, one system clock): "at the ingress" is the `received_at` the ingress
//! stamps on the stored `webhook_events` row; "at the simulator" is the sim time at which the
//! simulator applied a request (`RecordedRequest.at_ms`, whole milliseconds, before its answer
//! hold) mapped to the wall clock ([`CallFleet::wall`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fleet_domain::credentials::CredentialStatus;
use fleet_domain::routing::{Mode, NumberConfig, OutsideHours};
use fleet_jobs::Pool;
use fleet_sim::{
    CredentialRef, DevicePlatform, DeviceScript, RingBehaviour, SimConfig, SimHandle, Simulator,
};
use fleet_store::{Db, DeviceRegistration, Organization, Store, User};
use tokio_util::sync::CancellationToken;

/// A call bench's `main`. `env` are knobs the fleet reads from the process environment only,
/// each kept when this command's environment sets it; this process may not change its own
/// environment (no `unsafe`), so it runs itself again with the missing ones set (printed, so a
/// run says what it measured), then runs `bench` on a multi-threaded runtime.
pub fn main_with<F: std::future::Future<Output = ()>>(env: &[(&str, &str)], bench: impl FnOnce() -> F) {
    let missing: Vec<_> = env.iter().filter(|(k, _)| std::env::var(k).is_err()).collect();
    if !missing.is_empty() {
        let mut again = std::process::Command::new(std::env::current_exe().unwrap());
        again.args(std::env::args_os().skip(1));
        for (k, v) in missing {
            again.env(k, v);
        }
        std::process::exit(again.status().unwrap().code().unwrap_or(1));
    }
    for (k, _) in env {
        eprintln!("{k}={}", std::env::var(k).unwrap());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(bench());
}

pub struct CallFleet {
    pub store: Arc<dyn Store>,
    pub sim: SimHandle,
    pub pool: sqlx::PgPool,
    admin: sqlx::PgPool,
    name: String,
    keys: std::path::PathBuf,
    stop: CancellationToken,
    db: Option<Db>,
}

impl CallFleet {
    /// `defaults` are the bench's own settings, each overridden by the same variable in this
    /// command's environment (printed, so a run says what it measured).
    pub async fn start(bench: &str, defaults: &[(&str, &str)]) -> Self {
        let admin_url = std::env::var("CALLFLEET_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let admin = sqlx::PgPool::connect(&admin_url).await.expect("Postgres");
        let name = format!("cf_bench_{bench}_{}", std::process::id());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        let keys = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&keys).unwrap();

        let stop = CancellationToken::new();
        let ingress = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook_url = format!("http://{}/webhooks/telnyx", ingress.local_addr().unwrap());
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut sim_config = SimConfig::new(webhook_url);
        // The benches measure the fleet, not Telnyx's 30 dials/s account limit.
        sim_config.dial_limit = None;
        let sim = Simulator::start(sim_config, sim_listener, stop.clone()).await.unwrap();
        let mut vars: Vec<(String, String)> = vec![
            ("CALLFLEET_DATABASE_URL".into(), url.clone()),
            ("CALLFLEET_LISTEN".into(), "127.0.0.1:0".into()),
            ("TELNYX_PUBLIC_KEY".into(), sim.public_key_base64()),
            ("TELNYX_API_KEY".into(), "bench-telnyx-key".into()),
            ("TELNYX_API_BASE".into(), sim.telnyx_api_base()),
            ("TELNYX_CONNECTION_ID".into(), sim.config().connection_id.clone()),
            ("TELNYX_CREDENTIAL_CONNECTION_ID".into(), "cred-conn-1".into()),
            ("CALLFLEET_SECRET_KEY".into(), format!("k1:{}", secret_key())),
            ("CALLFLEET_EVENTS_URL".into(), sim.events_url()),
            ("CALLFLEET_EVENTS_SECRET".into(), sim.events_secret().to_owned()),
        ];
        for (k, v) in sim.push_env(&keys.join("apns.p8"), "com.example.phone").unwrap() {
            vars.push((k.to_owned(), v));
        }
        for (k, v) in defaults {
            let v = std::env::var(k).unwrap_or_else(|_| (*v).to_owned());
            eprintln!("{k}={v}");
            vars.push(((*k).to_owned(), v));
        }
        let config = fleet_platform::Config::from_lookup(|k| {
            vars.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok())
        })
        .unwrap();
        let db = Db::open(&url).await.unwrap();
        db.migrate().await.unwrap();
        let store = db.store();
        let Db::Postgres(pg) = &db else { unreachable!() };
        let pool = pg.pool().clone();
        let (c, s, t) = (config.clone(), store.clone(), stop.clone());
        tokio::spawn(async move { fleet_ingress::run(&c, s, ingress, t).await });
        let (c, d, t) = (config.clone(), db.clone(), stop.clone());
        tokio::spawn(async move { fleet_workers::run(&c, &d, &Pool::ALL, t).await });
        store
            .upsert_organization(&Organization {
                id: "org-1".into(),
                name: Some("Acme".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        Self { store, sim, pool, admin, name, keys, stop, db: Some(db) }
    }

    /// A user of org `org-1` and the number `e164` that rings it (30 s), known to the simulator.
    pub async fn user_with_number(&self, user: &str, e164: &str) {
        let profile = User {
            id: user.into(),
            org_id: "org-1".into(),
            org_ids: vec!["org-1".into()],
            ..Default::default()
        };
        self.store.upsert_user(&profile).await.unwrap();
        let ring = NumberConfig {
            org_id: "org-1".into(),
            user_id: Some(user.into()),
            mode: Mode::Ring,
            ring_timeout_secs: 30,
            schedule: None,
            outside_hours: OutsideHours::Voicemail,
        };
        self.store.put_number(e164, &ring).await.unwrap();
        self.sim.add_number(e164);
    }

    /// Registers Android phones `(id, user, on_ring)` of org `org-1`, waits until the fleet
    /// provisioned each one's credential, then scripts them in the simulator.
    pub async fn phones(&self, phones: &[(String, String, RingBehaviour)]) {
        for (id, user, _) in phones {
            let reg = DeviceRegistration {
                id: id.clone(),
                user_id: user.clone(),
                org_id: "org-1".into(),
                platform: "android".into(),
                push_token: Some(format!("tok-{id}")),
                voip_token: None,
                app_version: None,
                name: None,
            };
            self.store.register_device(&reg).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(60 + phones.len() as u64 / 5);
        for (id, _, on_ring) in phones {
            let sip = loop {
                if let Some(cred) = self.store.device(id).await.unwrap().and_then(|d| d.credential)
                    && cred.status == CredentialStatus::Active
                    && let Some(sip) = cred.sip_username
                {
                    break sip;
                }
                assert!(Instant::now() < deadline, "credential of {id} not provisioned");
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            self.sim
                .add_device(DeviceScript {
                    id: id.clone(),
                    platform: DevicePlatform::Android,
                    push_token: Some(format!("tok-{id}")),
                    credential: CredentialRef::SipUsername(sip),
                    online: true,
                    register_after_push: None,
                    on_ring: on_ring.clone(),
                })
                .unwrap();
        }
    }

    /// Maps a simulator request time to the wall clock.
    pub fn wall(&self) -> impl Fn(u64) -> DateTime<Utc> + use<> {
        let offset = self.sim.now_utc() - chrono::Duration::from_std(self.sim.now()).unwrap();
        move |at_ms| offset + chrono::Duration::milliseconds(at_ms as i64)
    }

    /// When the ingress received the webhook `event_id`.
    pub async fn received_at(&self, event_id: &str) -> DateTime<Utc> {
        for _ in 0..250 {
            if let Some(at) = sqlx::query_scalar("SELECT received_at FROM webhook_events WHERE event_id = $1")
                .bind(event_id)
                .fetch_optional(&self.pool)
                .await
                .unwrap()
            {
                return at;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("event {event_id} not stored");
    }

    /// Stops the fleet and the simulator and drops the database.
    pub async fn finish(mut self) {
        self.stop.cancel();
        drop(self.db.take());
        let drop_db = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = sqlx::query(sqlx::AssertSqlSafe(drop_db)).execute(&self.admin).await;
        let _ = std::fs::remove_dir_all(&self.keys);
    }
}

/// Stage breakdowns, which only the simring bench reads (each bench compiles this module).
#[allow(dead_code, reason = "read by the simring bench only")]
impl CallFleet {
    /// Where the time from the ingress to a call's dials went, in ms after `received_at` of the
    /// webhook `event_id`: its job's start and end, the start of the transaction that enqueued
    /// the dials (their `run_at` is its `now()`), and the first and last dial job's start. `None`
    /// while a row is missing.
    pub async fn dial_stages(&self, event_id: &str, session: &str) -> Option<[f64; 5]> {
        type Row = (Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
        let row: Option<Row> = sqlx::query_as(
            "WITH e AS (SELECT received_at AS t FROM webhook_events WHERE event_id = $1),
                  w AS (SELECT min(lock_at) AS s, min(done_at) AS d FROM apalis.jobs
                        WHERE job_type = 'webhooks' AND convert_from(job, 'UTF8')::jsonb->'job'->>'event_id' = $1),
                  d AS (SELECT min(run_at) AS r, min(lock_at) AS f, max(lock_at) AS l FROM apalis.jobs
                        WHERE job_type = 'legs' AND convert_from(job, 'UTF8')::jsonb->>'call_session_id' = $2
                          AND convert_from(job, 'UTF8')::jsonb->'job'->'effect'->'command'->>'command' = 'dial')
             SELECT (extract(epoch FROM w.s - e.t) * 1000)::float8, (extract(epoch FROM w.d - e.t) * 1000)::float8,
                    (extract(epoch FROM d.r - e.t) * 1000)::float8, (extract(epoch FROM d.f - e.t) * 1000)::float8,
                    (extract(epoch FROM d.l - e.t) * 1000)::float8
             FROM e, w, d",
        )
        .bind(event_id)
        .bind(session)
        .fetch_optional(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("dial stages: {e}"));
        let (a, b, c, d, e) = row?;
        Some([a?, b?, c?, d?, e?])
    }

    /// Where the time from the winning `call.answered` (event `event_id`) to the last `call_ended`
    /// push goes, in ms after the ingress received it: that webhook's job start and end, then
    /// the call's `call_ended` push jobs: enqueued (their transaction's start), the first and the
    /// last one's start, the last one's end. `None` if a stage is missing.
    pub async fn dismiss_stages(&self, event_id: &str, session: &str) -> Option<[f64; 6]> {
        type Row = (Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
        let row: Option<Row> = sqlx::query_as(
            "WITH e AS (SELECT received_at AS t FROM webhook_events WHERE event_id = $1),
                  w AS (SELECT min(lock_at) AS s, min(done_at) AS d FROM apalis.jobs
                        WHERE job_type = 'webhooks' AND convert_from(job, 'UTF8')::jsonb->'job'->>'event_id' = $1),
                  p AS (SELECT min(run_at) AS r, min(lock_at) AS f, max(lock_at) AS l, max(done_at) AS d
                        FROM apalis.jobs
                        WHERE job_type = 'push' AND convert_from(job, 'UTF8')::jsonb->>'call_session_id' = $2
                          AND convert_from(job, 'UTF8')::jsonb->'job'->'message'->>'type' = 'call_ended')
             SELECT (extract(epoch FROM w.s - e.t) * 1000)::float8, (extract(epoch FROM w.d - e.t) * 1000)::float8,
                    (extract(epoch FROM p.r - e.t) * 1000)::float8, (extract(epoch FROM p.f - e.t) * 1000)::float8,
                    (extract(epoch FROM p.l - e.t) * 1000)::float8, (extract(epoch FROM p.d - e.t) * 1000)::float8
             FROM e, w, p",
        )
        .bind(event_id)
        .bind(session)
        .fetch_optional(&self.pool)
        .await
        .unwrap_or_else(|e| panic!("dismiss stages: {e}"));
        let (a, b, c, d, e, f) = row?;
        Some([a?, b?, c?, d?, e?, f?])
    }
}

pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
}

pub fn stats(mut ms: Vec<f64>) -> Option<Stats> {
    if ms.is_empty() {
        return None;
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1];
    Some(Stats { n: ms.len(), p50: at(0.50), p99: at(0.99) })
}

pub fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap() as f64 / 1000.0
}

/// The sum of a counter's series in this process's metrics (every label set).
pub fn counter(name: &str) -> u64 {
    fleet_platform::metrics::render()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn secret_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

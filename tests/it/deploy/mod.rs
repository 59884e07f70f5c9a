//! The deployment files in `deploy/`: each checked by the tool that reads it (docker-compose,
//! kubernetes-validate, systemd-analyze), the per-pool Kubernetes manifests rendered from the code
//! (pools, scaler queries), the KEDA shapes checked here (no KEDA schema is at hand offline), the
//! scaler queries run against PostgreSQL, and the compose topology run as processes
//! (`deploy/local-fleet.sh`, in `topology`) with a call through it.
//!
//! The tools are installed by `scripts/test.sh`; a missing one fails the test, it never skips.

mod render;
mod topology;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_jobs::Pool;
use fleet_store::postgres::{oldest_ready_age_sql, ready_jobs_sql};
use serde_json::Value;

use crate::support::{Engine, TestDb};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs `tool args…`; (success, stdout + stderr). Panics when the tool is not installed.
fn run_tool(tool: &str, args: &[&str]) -> (bool, String) {
    let out =
        std::process::Command::new(tool).args(args).current_dir(repo("")).output().unwrap_or_else(|e| {
            panic!("{tool} is needed for this test ({e}); ./scripts/test.sh installs it")
        });
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const WORKERS_HEADER: &str =
    "A Deployment and a PodDisruptionBudget per worker pool, each scaled on its own (keda.yaml).
Rendered from the code by tests/it/deploy/render.rs: edit there, then
CALLFLEET_BLESS=1 cargo nextest run -E 'test(deploy::rendered)' rewrites this file.";

const KEDA_HEADER: &str =
    "KEDA: a ScaledObject per worker pool on its ready jobs (per replica) and its oldest ready job's
age, polled with the queries `callfleet queues` counts with (fleet_store::postgres::ready_jobs_sql,
oldest_ready_age_sql). The database URL comes from the Secret callfleet-secrets.
Rendered from the code by tests/it/deploy/render.rs: edit there, then
CALLFLEET_BLESS=1 cargo nextest run -E 'test(deploy::rendered)' rewrites this file.";

/// The committed per-pool manifests are what the code renders (a new pool, a changed query or
/// scaling rule shows up as a diff here first).
#[test]
fn rendered_manifests_are_committed() {
    let files = [
        ("deploy/k8s/workers.yaml", render::yaml_stream(WORKERS_HEADER, &render::workers())),
        ("deploy/k8s/keda.yaml", render::yaml_stream(KEDA_HEADER, &render::keda())),
    ];
    for (path, rendered) in files {
        if std::env::var("CALLFLEET_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(repo(path), &rendered).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(repo(path)).unwrap_or_default();
        assert!(
            committed == rendered,
            "{path} differs from what tests/it/deploy/render.rs renders; \
             CALLFLEET_BLESS=1 cargo nextest run -E 'test(deploy::rendered)' rewrites it"
        );
    }
}

/// Every ScaledObject scales a worker Deployment of its own pool, on the two documented
/// `postgresql` trigger shapes, with only fields KEDA's v1alpha1 CRD defines.
#[test]
fn every_pool_has_a_scaled_object_of_keda_shape() {
    let deployments: Vec<Value> =
        render::workers().into_iter().filter(|d| d["kind"] == "Deployment").collect();
    let keda = render::keda();
    let auth = keda.iter().find(|d| d["kind"] == "TriggerAuthentication").expect("a TriggerAuthentication");
    let auth_name = auth["metadata"]["name"].as_str().unwrap();
    assert_eq!(auth["spec"]["secretTargetRef"][0]["parameter"], "connection");
    let mut covered = Vec::new();
    for so in keda.iter().filter(|d| d["kind"] == "ScaledObject") {
        assert_eq!(so["apiVersion"], "keda.sh/v1alpha1");
        let spec = so["spec"].as_object().unwrap();
        let allowed = [
            "scaleTargetRef",
            "minReplicaCount",
            "maxReplicaCount",
            "pollingInterval",
            "cooldownPeriod",
            "triggers",
        ];
        assert!(spec.keys().all(|k| allowed.contains(&k.as_str())), "{spec:?}");
        let target = spec["scaleTargetRef"]["name"].as_str().unwrap();
        let deployment = deployments.iter().find(|d| d["metadata"]["name"] == target).expect("a Deployment");
        let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
        let pool: Pool = args[2].as_str().unwrap().parse().unwrap();
        assert_eq!(args[1], "--pool");
        assert!(spec["minReplicaCount"].as_u64() <= spec["maxReplicaCount"].as_u64());
        if matches!(pool, Pool::Webhooks | Pool::Legs | Pool::SimringRetries | Pool::Push) {
            assert!(spec["minReplicaCount"].as_u64() >= Some(1), "the call path never waits for a scale-up");
        }
        let triggers = spec["triggers"].as_array().unwrap();
        let queries: Vec<&str> = triggers.iter().map(|t| t["metadata"]["query"].as_str().unwrap()).collect();
        assert_eq!(queries, [ready_jobs_sql(pool), oldest_ready_age_sql(pool)]);
        for t in triggers {
            let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
            assert!(
                keys.iter()
                    .all(|k| ["type", "name", "metricType", "metadata", "authenticationRef"].contains(k))
            );
            assert_eq!(t["type"], "postgresql");
            assert!(["AverageValue", "Value"].contains(&t["metricType"].as_str().unwrap()));
            assert_eq!(t["authenticationRef"]["name"], auth_name);
            let meta = t["metadata"].as_object().unwrap();
            assert!(
                meta.keys().all(
                    |k| ["query", "targetQueryValue", "activationTargetQueryValue"].contains(&k.as_str())
                )
            );
            for k in ["targetQueryValue", "activationTargetQueryValue"] {
                assert!(meta[k].as_str().unwrap().parse::<f64>().is_ok(), "KEDA reads {k} from a string");
            }
        }
        covered.push(pool);
    }
    covered.sort_by_key(|p| p.as_str());
    let mut all = Pool::ALL.to_vec();
    all.sort_by_key(|p| p.as_str());
    assert_eq!(covered, all, "one ScaledObject per pool");
}

/// Strict schema validation of every Kubernetes manifest (Kubernetes 1.37's schemas, offline);
/// only KEDA's kinds and the Kustomization have no schema there (checked above instead).
#[test]
fn kubernetes_manifests_validate() {
    let mut files: Vec<String> = std::fs::read_dir(repo("deploy/k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let mut args = vec!["--strict"];
    args.extend(files.iter().map(String::as_str));
    let (ok, out) = run_tool("kubernetes-validate", &args);
    assert!(ok, "{out}");
    for line in out.lines().filter(|l| !l.starts_with("INFO")) {
        assert!(line.contains("keda.sh/v1alpha1") || line.contains("kind Kustomization"), "{line}");
    }
    assert!(out.contains("passed for resource deployment/callfleet-worker-webhooks"), "{out}");
}

/// The scaler queries count what `callfleet queues` counts: ready (due and retryable failed
/// jobs, not scheduled, running or dead ones) and the oldest due job's age in whole seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaler_queries_count_what_callfleet_queues_counts() {
    use fleet_jobs::{Envelope, Job};
    use fleet_store::NewJob;
    let db = TestDb::new(Engine::Postgres).await;
    let store = db.open().await.store();
    let job = |n: i64, delay: u64| NewJob {
        envelope: Envelope::new(Job::PurgeWebhookEventsV1 { before: n }, format!("w{n}")),
        delay: Duration::from_secs(delay),
        unique_key: None,
    };
    store.enqueue(&[job(1, 0), job(2, 0), job(3, 0), job(4, 0), job(5, 600)]).await.unwrap();
    // One waited 90 s, one failed with retries left, one is dead, one runs.
    let ids: Vec<String> = {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let ids = sqlx::query_scalar("SELECT id FROM apalis.jobs WHERE run_at <= now() ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        ids
    };
    db.exec(&format!(
        "UPDATE apalis.jobs SET run_at = now() - interval '90.2 seconds' WHERE id = '{}'",
        ids[0]
    ))
    .await;
    db.exec(&format!("UPDATE apalis.jobs SET status = 'Failed', attempts = 1 WHERE id = '{}'", ids[1])).await;
    db.exec(&format!("UPDATE apalis.jobs SET status = 'Killed' WHERE id = '{}'", ids[2])).await;
    db.exec(&format!("UPDATE apalis.jobs SET status = 'Running', lock_at = now() WHERE id = '{}'", ids[3]))
        .await;

    let stats = store.queue_stats().await.unwrap();
    let m = stats.iter().find(|s| s.pool == Pool::Maintenance.as_str()).unwrap();
    assert_eq!((m.ready, m.scheduled, m.running, m.dead), (2, 1, 1, 1));
    assert_eq!(db.count(&ready_jobs_sql(Pool::Maintenance)).await, m.ready as i64);
    let age = db.count(&oldest_ready_age_sql(Pool::Maintenance)).await;
    assert_eq!(age, m.oldest_ready_age_secs.ceil() as i64, "{}", m.oldest_ready_age_secs);
    assert!((91..=120).contains(&age), "{age}");
    // Another pool's jobs are not counted; an empty pool is 0, not NULL.
    assert_eq!(db.count(&ready_jobs_sql(Pool::Push)).await, 0);
    assert_eq!(db.count(&oldest_ready_age_sql(Pool::Push)).await, 0);
}

/// The worker groups of the compose file and of `deploy/local-fleet.sh`: the same two lists.
fn worker_groups() -> (Vec<String>, Vec<String>) {
    let compose = std::fs::read_to_string(repo("deploy/compose.yaml")).unwrap();
    let script = std::fs::read_to_string(repo("deploy/local-fleet.sh")).unwrap();
    let in_compose = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix(r#"command: ["worker", "--pool", ""#))
        .map(|rest| rest.trim_end_matches(r#""]"#).to_owned())
        .collect();
    let in_script = script
        .lines()
        .filter_map(|l| l.strip_prefix("CALL_POOLS=").or_else(|| l.strip_prefix("BACKGROUND_POOLS=")))
        .map(str::to_owned)
        .collect();
    (in_compose, in_script)
}

/// docker-compose accepts the compose file; its worker groups are the script's and run every
/// pool exactly once.
#[test]
fn compose_file_is_valid_and_runs_every_pool_once() {
    let (ok, out) = run_tool("docker-compose", &["-f", "deploy/compose.yaml", "config", "-q"]);
    assert!(ok, "{out}");
    let (compose, script) = worker_groups();
    assert_eq!(compose.len(), 2, "two worker groups");
    assert_eq!(compose, script, "deploy/local-fleet.sh runs the compose topology");
    let mut pools: Vec<Pool> = compose.iter().flat_map(|g| Pool::parse_list(g).unwrap()).collect();
    pools.sort_by_key(|p| p.as_str());
    let mut all = Pool::ALL.to_vec();
    all.sort_by_key(|p| p.as_str());
    assert_eq!(pools, all);
}

/// systemd reads every unit without a complaint, the worker template with a comma in its
/// (escaped) instance name and the push instance with its key drop-in.
#[test]
fn systemd_units_verify() {
    let dir = std::env::temp_dir().join(format!("callfleet-units-{}", ulid::Ulid::generate()));
    copy_dir(&repo("deploy/systemd"), &dir, env!("CARGO_BIN_EXE_callfleet"));
    let units = [
        "callfleet-ingress.service",
        "callfleet-migrate.service",
        "callfleet-scheduler.service",
        r"callfleet-worker@webhooks\x2clegs.service",
        "callfleet-worker@push.service",
    ];
    let paths: Vec<String> = units.iter().map(|u| dir.join(u).display().to_string()).collect();
    let mut args = vec!["verify", "--man=no"];
    args.extend(paths.iter().map(String::as_str));
    let (ok, out) = run_tool("systemd-analyze", &args);
    std::fs::remove_dir_all(&dir).ok();
    assert!(ok && out.trim().is_empty(), "{out}");
    let worker = std::fs::read_to_string(repo("deploy/systemd/callfleet-worker@.service")).unwrap();
    assert!(worker.contains("--pool %I"), "the unescaped instance name is the pool list");
}

/// Copies the unit folder, pointing `ExecStart` at `binary` (verify checks that it exists).
fn copy_dir(from: &Path, to: &Path, binary: &str) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest, binary);
        } else {
            let text = std::fs::read_to_string(&path).unwrap().replace("/usr/local/bin/callfleet", binary);
            std::fs::write(dest, text).unwrap();
        }
    }
}

/// The Prometheus configuration and alert rules load, and each alert fires on the series that
/// should fire it and stays quiet otherwise (`alerts.test.yml`).
#[test]
fn alert_rules_pass_their_unit_tests() {
    let (ok, out) = run_tool("promtool", &["check", "config", "deploy/prometheus/prometheus.yml"]);
    assert!(ok, "{out}");
    let (ok, out) = run_tool("promtool", &["test", "rules", "deploy/prometheus/alerts.test.yml"]);
    assert!(ok && out.contains("SUCCESS"), "{out}");
}

/// Every metric the dashboard and the alerts name is one the code emits (a renamed metric
/// would leave a panel empty and an alert silent), and every dashboard query parses.
#[test]
fn dashboard_and_alerts_name_only_emitted_metrics() {
    let emitted = emitted_metric_names();
    assert!(emitted.contains("callfleet_jobs_total") && emitted.len() > 20, "{emitted:?}");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo("deploy/grafana/callfleet.json")).unwrap())
            .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned()))
        .collect();
    assert!(exprs.len() >= 15);
    let alerts = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    for text in exprs.iter().map(String::as_str).chain([alerts.as_str()]) {
        for name in metric_names_in(text) {
            let base =
                ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
            assert!(emitted.contains(base) || emitted.contains(&name), "{name} is not emitted by the code");
        }
    }
    // Each query through Prometheus's own parser: an expression test per query, on no series.
    let mut tests = String::from(
        "rule_files: []\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series: []\n    promql_expr_test:\n",
    );
    for e in &exprs {
        tests.push_str(&format!(
            "      - expr: {}\n        eval_time: 1m\n        exp_samples: []\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    let path = std::env::temp_dir().join(format!("callfleet-dashboard-{}.yml", ulid::Ulid::generate()));
    std::fs::write(&path, tests).unwrap();
    let (ok, out) = run_tool("promtool", &["test", "rules", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert!(ok, "{out}");
}

/// `callfleet_…` names in `text`.
fn metric_names_in(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("callfleet_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit()))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// Metric names in string literals of the crates' sources (`"callfleet_…"`).
fn emitted_metric_names() -> std::collections::HashSet<String> {
    fn walk(dir: &Path, out: &mut std::collections::HashSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("\"callfleet_").skip(1) {
                    if let Some(end) = piece.find('"') {
                        out.insert(format!("callfleet_{}", &piece[..end]));
                    }
                }
            }
        }
    }
    let mut names = std::collections::HashSet::new();
    for dir in [
        "src",
        "ingress/src",
        "workers/src",
        "platform/src",
        "push/src",
        "telnyx/src",
        "scheduler/src",
        "store/src",
    ] {
        walk(&repo(dir), &mut names);
    }
    names
}

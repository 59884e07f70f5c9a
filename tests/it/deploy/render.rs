//! The per-pool Kubernetes manifests (`deploy/k8s/workers.yaml`, `deploy/k8s/keda.yaml`), built
//! from the pool list and the store's scaler queries, so a new pool or a changed query cannot
//! leave the committed files behind: a test compares them (and `CALLFLEET_BLESS=1` rewrites them).
//!
//! A YAML emitter of our own (block style, JSON-quoted strings where a plain scalar could be
//! misread): no YAML crate is in the tree, and these few shapes need nothing more.

use fleet_jobs::Pool;
use fleet_store::postgres::{oldest_ready_age_sql, ready_jobs_sql};
use serde_json::{Value, json};

/// How one pool scales: replicas, ready jobs per replica, and the oldest-job age (s) the
/// fleet holds it under.
pub struct Scaling {
    pub pool: Pool,
    pub min: u32,
    pub max: u32,
    pub ready_per_replica: u32,
    pub max_age_secs: u32,
}

/// The call path never scales to zero (a call cannot wait for KEDA's poll); the maintenance
/// pools may.
pub const SCALING: [Scaling; 8] = [
    Scaling { pool: Pool::Webhooks, min: 1, max: 10, ready_per_replica: 200, max_age_secs: 2 },
    Scaling { pool: Pool::Legs, min: 1, max: 10, ready_per_replica: 100, max_age_secs: 1 },
    Scaling { pool: Pool::SimringRetries, min: 1, max: 5, ready_per_replica: 100, max_age_secs: 2 },
    Scaling { pool: Pool::Push, min: 1, max: 10, ready_per_replica: 200, max_age_secs: 2 },
    Scaling { pool: Pool::Events, min: 1, max: 5, ready_per_replica: 200, max_age_secs: 10 },
    Scaling { pool: Pool::Recordings, min: 1, max: 5, ready_per_replica: 20, max_age_secs: 60 },
    Scaling { pool: Pool::Credentials, min: 0, max: 3, ready_per_replica: 50, max_age_secs: 60 },
    Scaling { pool: Pool::Maintenance, min: 0, max: 1, ready_per_replica: 1, max_age_secs: 300 },
];

pub fn deployment_name(pool: Pool) -> String {
    format!("callfleet-worker-{}", pool.as_str())
}

fn labels(pool: Pool) -> Value {
    json!({"app.kubernetes.io/name": "callfleet", "app.kubernetes.io/component": "worker",
           "callfleet.dev/pool": pool.as_str()})
}

/// A Deployment and a PodDisruptionBudget per pool.
pub fn workers() -> Vec<Value> {
    let mut docs = Vec::new();
    for s in &SCALING {
        let name = deployment_name(s.pool);
        let selector = json!({"app.kubernetes.io/name": "callfleet", "callfleet.dev/pool": s.pool.as_str()});
        docs.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels(s.pool)},
            "spec": {
                "replicas": s.min.max(1),
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {
                        "labels": labels(s.pool),
                        "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"},
                    },
                    "spec": {
                        "terminationGracePeriodSeconds": 40,
                        "securityContext": {"runAsNonRoot": true, "runAsUser": 10001, "runAsGroup": 10001},
                        "volumes": [{"name": "push-keys", "secret": {"secretName": "callfleet-push-keys", "optional": true}}],
                        "containers": [{
                            "name": "worker",
                            "image": "callfleet:latest",
                            "args": ["worker", "--pool", s.pool.as_str()],
                            "envFrom": [{"configMapRef": {"name": "callfleet-config"}},
                                        {"secretRef": {"name": "callfleet-secrets"}}],
                            "ports": [{"name": "metrics", "containerPort": 9100}],
                            "volumeMounts": [{"name": "push-keys", "mountPath": "/etc/callfleet/keys", "readOnly": true}],
                            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10},
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5},
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                                "capabilities": {"drop": ["ALL"]}},
                        }],
                    },
                },
            },
        }));
        docs.push(json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": name},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }));
    }
    docs
}

/// KEDA: one TriggerAuthentication (the database URL from the Secret) and a ScaledObject per
/// pool with two `postgresql` triggers, ready jobs per replica and the oldest ready job's age.
pub fn keda() -> Vec<Value> {
    let auth = json!({"name": "callfleet-postgres"});
    let mut docs = vec![json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "callfleet-postgres"},
        "spec": {"secretTargetRef": [{"parameter": "connection", "name": "callfleet-secrets", "key": "CALLFLEET_DATABASE_URL"}]},
    })];
    for s in &SCALING {
        docs.push(json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": {"name": deployment_name(s.pool)},
            "spec": {
                "scaleTargetRef": {"name": deployment_name(s.pool)},
                "minReplicaCount": s.min,
                "maxReplicaCount": s.max,
                "pollingInterval": 5,
                "cooldownPeriod": 120,
                "triggers": [
                    {"type": "postgresql", "name": "ready-jobs", "metricType": "AverageValue",
                     "metadata": {"query": ready_jobs_sql(s.pool), "targetQueryValue": s.ready_per_replica.to_string(),
                                  "activationTargetQueryValue": "0"},
                     "authenticationRef": auth},
                    {"type": "postgresql", "name": "oldest-ready-age", "metricType": "Value",
                     "metadata": {"query": oldest_ready_age_sql(s.pool), "targetQueryValue": s.max_age_secs.to_string(),
                                  "activationTargetQueryValue": "0"},
                     "authenticationRef": auth},
                ],
            },
        }));
    }
    docs
}

/// `docs` as one YAML stream, under a header comment.
pub fn yaml_stream(header: &str, docs: &[Value]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
    }
    for doc in docs {
        out.push_str("---\n");
        emit(&mut out, doc, 0);
    }
    out
}

fn emit(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            // Kubernetes' reading order first (serde_json's map is sorted), then the rest.
            const FIRST: [&str; 6] = ["apiVersion", "kind", "name", "metadata", "type", "spec"];
            let rank = |k: &str| FIRST.iter().position(|f| *f == k).unwrap_or(FIRST.len());
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by_key(|(k, _)| rank(k));
            for (key, v) in entries {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", scalar_str(key)));
                        emit(out, v, indent + 2);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", scalar_str(key)));
                        emit(out, v, indent);
                    }
                    _ => out.push_str(&format!("{pad}{}: {}\n", scalar_str(key), inline(v))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        // The first key on the dash line, the rest under it.
                        let mut first = String::new();
                        emit(&mut first, item, indent + 2);
                        out.push_str(&format!("{pad}- {}", &first[indent + 2..]));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", inline(item))),
                }
            }
        }
        _ => out.push_str(&format!("{pad}{}\n", inline(value))),
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => scalar_str(s),
        Value::Array(a) if a.iter().all(|v| !v.is_object() && !v.is_array()) => {
            format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", "))
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

/// A plain scalar when it cannot be read as anything but this string, else a JSON-quoted one
/// (valid YAML double-quoted).
fn scalar_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        && !s.starts_with(['-', '.'])
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { s.to_owned() } else { serde_json::to_string(s).unwrap() }
}

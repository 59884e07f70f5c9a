#!/usr/bin/env bash
# The fleet of deploy/compose.yaml as processes on one machine: the same roles with the same
# arguments (migrate first, then the ingress, two worker groups and the scheduler), and the
# carrier simulator when no TELNYX_API_KEY is set. The test suite drives it (tests/it/deploy.rs).
#
#   CALLFLEET_DATABASE_URL=postgres://postgres@127.0.0.1/callfleet deploy/local-fleet.sh
#
# Settings (environment): CALLFLEET_DATABASE_URL (required), CALLFLEET_BIN (default: `callfleet`
# on PATH, else target/release, else target/debug), LOCAL_FLEET_DIR (state and logs; default a
# new temporary folder), LOCAL_FLEET_INGRESS (127.0.0.1:8080), LOCAL_FLEET_SIM (127.0.0.1:8090),
# LOCAL_FLEET_METRICS_PORT (9101: worker groups and scheduler on this port and the next two),
# LOCAL_FLEET_METRICS_PORTS (three comma-separated ports instead, one per role, in that order).
# Every other CALLFLEET_* / TELNYX_* variable is passed to every role, and wins over the
# simulator's settings file (a configured value is never replaced).
#
# It runs until SIGINT/SIGTERM, which it passes on to every role; when any role exits, it stops
# the others and exits with that role's status (as a supervisor would restart it, this says so).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${CALLFLEET_DATABASE_URL:?set CALLFLEET_DATABASE_URL to the PostgreSQL URL of the fleet}"
export CALLFLEET_DATABASE_URL
if [ -z "${CALLFLEET_BIN:-}" ]; then
    if command -v callfleet >/dev/null; then CALLFLEET_BIN=callfleet
    elif [ -x target/release/callfleet ]; then CALLFLEET_BIN=target/release/callfleet
    else CALLFLEET_BIN=target/debug/callfleet; fi
fi
dir=${LOCAL_FLEET_DIR:-$(mktemp -d -t callfleet-fleet.XXXXXX)}
mkdir -p "$dir"
ingress=${LOCAL_FLEET_INGRESS:-127.0.0.1:8080}
sim=${LOCAL_FLEET_SIM:-127.0.0.1:8090}
metrics=${LOCAL_FLEET_METRICS_PORT:-9101}
IFS=, read -r calls_metrics background_metrics scheduler_metrics <<<"${LOCAL_FLEET_METRICS_PORTS:-$metrics,$((metrics + 1)),$((metrics + 2))}"

# The two worker groups of compose.yaml: the call path, and everything that can wait.
CALL_POOLS=webhooks,legs,simring-retries,push
BACKGROUND_POOLS=events,recordings,credentials,maintenance

pids=()
stop() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap 'stop; wait; exit 143' TERM INT
start() {
    local name=$1; shift
    "$CALLFLEET_BIN" "$@" >"$dir/$name.out" 2>"$dir/$name.log" &
    pids+=("$!")
    printf '==> %s (pid %s): callfleet %s\n' "$name" "$!" "$*" >&2
}

if [ -z "${TELNYX_API_KEY:-}" ]; then
    start sim sim --listen "$sim" --webhook-url "http://$ingress/webhooks/telnyx" \
        --failover-url "http://$ingress/webhooks/telnyx/failover" --seed "${LOCAL_FLEET_SEED:-$RANDOM}" \
        --env-file "$dir/sim.env"
    for _ in $(seq 1 100); do [ -f "$dir/sim.env" ] && break; sleep 0.1; done
    [ -f "$dir/sim.env" ] || { echo "error: the simulator wrote no settings (see $dir/sim.log)" >&2; stop; exit 1; }
    export CALLFLEET_CONFIG="$dir/sim.env"
fi
if [ -z "${CALLFLEET_API_TOKEN:-}" ]; then
    CALLFLEET_API_TOKEN="dev-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    export CALLFLEET_API_TOKEN
    printf '==> app API token: %s\n' "$CALLFLEET_API_TOKEN" >&2
fi

"$CALLFLEET_BIN" migrate >"$dir/migrate.out" 2>"$dir/migrate.log" \
    || { echo "error: migrate failed (see $dir/migrate.log)" >&2; stop; exit 1; }
CALLFLEET_LISTEN=$ingress start ingress ingress
start worker-calls worker --pool "$CALL_POOLS" --metrics-listen "127.0.0.1:$calls_metrics"
start worker-background worker --pool "$BACKGROUND_POOLS" --metrics-listen "127.0.0.1:$background_metrics"
start scheduler scheduler --metrics-listen "127.0.0.1:$scheduler_metrics"
printf '==> fleet up: ingress http://%s, logs in %s\n' "$ingress" "$dir" >&2

status=0
wait -n "${pids[@]}" || status=$?
echo "error: a role exited (status $status); stopping the others (logs in $dir)" >&2
stop
wait || true
exit "$status"

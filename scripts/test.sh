#!/usr/bin/env bash
# The test command: provisions PostgreSQL and Redis when they are missing or stopped, then runs
# every test of the workspace with cargo-nextest.
#
#   ./scripts/test.sh [extra nextest args]
#
# Postgres: 127.0.0.1:5432, user postgres, trust auth (override the server with CALLFLEET_TEST_PG).
# Redis: 127.0.0.1:6379. The deployment checks need docker-compose, systemd-analyze and promtool
# (Debian's packages) and kubernetes-validate (PyPI, in a virtualenv under ~/.cache/callfleet); the
# recordings' S3 test needs moto's server (PyPI moto[server], same virtualenv), the API document's
# check openapi-spec-validator (PyPI, same virtualenv). Before the tests, scripts/advisories.sh
# checks Cargo.lock against the RustSec advisory database (cargo-audit from crates.io; the
# database as a git checkout at ~/.cargo/advisory-db, see there). With
# CI=true, a service or tool that cannot be had fails the run; it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null || return 1
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq || return 1; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null || return 1
}

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && psql_ok; }
psql_ok() {
    if command -v psql >/dev/null; then psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; else return 0; fi
}

ensure_postgres() {
    pg_up && return 0
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
        say "PostgreSQL is not installed; installing it from Debian's packages"
        apt_install postgresql postgresql-contrib || return 1
    fi
    local version; version=$(ls /etc/postgresql | sort -V | tail -n 1)
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba" 2>/dev/null; then
        say "allowing trust auth for 127.0.0.1 (test server)"
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba" || return 1
    fi
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
        || as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
    for _ in $(seq 1 50); do pg_up && return 0; sleep 0.2; done
    return 1
}

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

ensure_redis() {
    redis_up && return 0
    if ! command -v redis-server >/dev/null; then
        say "Redis is not installed; installing it from Debian's packages"
        apt_install redis-server || return 1
    fi
    say "starting Redis"
    mkdir -p /tmp/callfleet-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/callfleet-redis --logfile /tmp/callfleet-redis/redis.log || return 1
    for _ in $(seq 1 50); do redis_up && return 0; sleep 0.2; done
    return 1
}

ensure_docker_compose() {
    command -v docker-compose >/dev/null && return 0
    say "installing docker-compose from Debian's packages (the compose file check)"
    apt_install docker-compose
}

ensure_systemd_analyze() {
    command -v systemd-analyze >/dev/null && return 0
    say "installing systemd from Debian's packages (systemd-analyze verify for the units)"
    apt_install systemd
}

ensure_promtool() {
    command -v promtool >/dev/null && return 0
    say "installing prometheus from Debian's packages (promtool: the alert rules' unit tests)"
    apt_install prometheus
}

tools_venv=${CALLFLEET_TOOLS_VENV:-$HOME/.cache/callfleet/venv}
ensure_kubernetes_validate() {
    [ -x "$tools_venv/bin/kubernetes-validate" ] && return 0
    say "installing kubernetes-validate from PyPI into $tools_venv (the manifest check)"
    python3 -m venv "$tools_venv" >/dev/null || return 1
    "$tools_venv/bin/pip" install -q 'kubernetes-validate==1.37.0' >/dev/null || return 1
}

ensure_openapi_validator() {
    [ -x "$tools_venv/bin/openapi-spec-validator" ] && return 0
    say "installing openapi-spec-validator from PyPI into $tools_venv (the app API document's check)"
    [ -x "$tools_venv/bin/pip" ] || python3 -m venv "$tools_venv" >/dev/null || return 1
    "$tools_venv/bin/pip" install -q 'openapi-spec-validator==0.9.0' >/dev/null || return 1
}

ensure_moto() {
    [ -x "$tools_venv/bin/moto_server" ] && return 0
    say "installing moto[server] from PyPI into $tools_venv (an S3-compatible server for the recordings test)"
    [ -x "$tools_venv/bin/pip" ] || python3 -m venv "$tools_venv" >/dev/null || return 1
    "$tools_venv/bin/pip" install -q 'moto[server]==5.1.18' >/dev/null || return 1
}

ensure_telnyx_verifier() {
    [ -x "$tools_venv/bin/python3" ] && "$tools_venv/bin/python3" -c 'import telnyx, nacl' 2>/dev/null && return 0
    say "installing telnyx and pynacl from PyPI into $tools_venv (Telnyx's own webhook verifier, checked against ours)"
    [ -x "$tools_venv/bin/pip" ] || python3 -m venv "$tools_venv" >/dev/null || return 1
    "$tools_venv/bin/pip" install -q 'telnyx==4.189.0' 'pynacl==1.6.2' >/dev/null || return 1
}

need() {
    local what=$1; shift
    if ! "$@"; then
        if [ "${CI:-}" = "true" ]; then die "$what is required for the tests and could not be started or installed"; fi
        die "$what is required for the tests; install it or start it on 127.0.0.1 (see README)"
    fi
}

if [ -z "${CALLFLEET_TEST_PG:-}" ]; then need PostgreSQL ensure_postgres; fi
need Redis ensure_redis
need docker-compose ensure_docker_compose
need systemd-analyze ensure_systemd_analyze
need promtool ensure_promtool
need kubernetes-validate ensure_kubernetes_validate
need moto ensure_moto
need openapi-spec-validator ensure_openapi_validator
need "Telnyx's Python verifier" ensure_telnyx_verifier
export PATH="$tools_venv/bin:$PATH"

if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install cargo-nextest --locked >/dev/null 2>&1 || die "cargo-nextest could not be installed"
fi

say "checking Cargo.lock against the RustSec advisories (scripts/advisories.sh)"
./scripts/advisories.sh || die "dependency advisories: see above (accepted ones are listed with their reasons in .cargo/audit.toml)"

say "running the tests"
exec cargo nextest run --workspace --profile ci "$@"

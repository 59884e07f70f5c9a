#!/usr/bin/env bash
# The dependency advisory check (issue 12): `cargo audit` over Cargo.lock against the RustSec
# advisory database. Every advisory it reports fails the check unless `.cargo/audit.toml` accepts
# it, with the reason written beside it.
#
#   ./scripts/advisories.sh          (./scripts/test.sh runs it before the tests)
#
# The database is a git checkout at $CALLFLEET_ADVISORY_DB, default cargo-audit's own
# ~/.cargo/advisory-db. It is refreshed from GitHub when that can be reached; a machine without
# internet (this project's build machines reach only the package registries) uses the checkout
# it has and says how old it is: put one there by any means (`git clone` of a mirror, a copy).
# cargo-audit itself comes from crates.io. With no database at all the check fails; it never
# skips, whether or not CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

db=${CALLFLEET_ADVISORY_DB:-$HOME/.cargo/advisory-db}
upstream=https://github.com/rustsec/advisory-db

if ! cargo audit --version >/dev/null 2>&1; then
    say "installing cargo-audit from crates.io (the dependency advisory check)"
    cargo install cargo-audit --locked --version 0.22.2 >/dev/null 2>&1 || die "cargo-audit could not be installed"
fi

if [ -d "$db/.git" ]; then
    if ! timeout 30 git -C "$db" pull -q --ff-only "$upstream" main >/dev/null 2>&1; then
        say "the advisory database could not be refreshed from $upstream; using the checkout at $db"
    fi
elif ! timeout 60 git clone -q "$upstream" "$db" >/dev/null 2>&1; then
    rm -rf "$db"
    die "no RustSec advisory database at $db and $upstream cannot be reached: put a git checkout of it there (or point CALLFLEET_ADVISORY_DB at one)"
fi
[ -d "$db/crates" ] || die "$db is not a RustSec advisory database (no crates/ directory)"

say "advisories as of $(git -C "$db" log -1 --format=%cs) ($(git -C "$db" log -1 --format=%h) of $db)"
# --stale: an offline checkout is older than cargo-audit's 90 days; its date is printed above.
exec cargo audit --db "$db" --no-fetch --stale --deny warnings "$@"

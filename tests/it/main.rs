//! callfleet's integration tests: one binary, real PostgreSQL and SQLite, no mocks.
//!
//! Every test gets its own database (a fresh Postgres database, dropped afterwards, or a fresh
//! SQLite file) and binds port 0. Tests that involve both engines run the same body twice
//! (`_postgres` / `_sqlite`). Workers are driven to idle with `drain` helpers that watch the queue
//! tables, never with fixed sleeps.

mod support;

mod api_routing;
mod call_crash;
mod call_delivery;
mod call_fallbacks;
mod calls;
mod calls_outbound;
mod calls_redis;
mod calls_soak;
mod chaos;
mod crash;
mod credentials;
mod db_pool;
mod demo;
mod deploy;
mod events;
mod ingress;
mod liveness;
mod memory;
mod operations;
mod push;
mod rate_limit;
mod recordings;
mod recordings_acceptance;
mod recordings_crash;
mod recordings_direct;
mod scheduler_replicas;
mod signature_official;
mod store_calls;
mod store_conformance;
mod traces;
mod workers;

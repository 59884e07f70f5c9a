//! callfleet's domain: pure types and decisions, no I/O.
//!
//! Everything here is deterministic and unit-tested without a runtime, a database or a network:
//! webhook signature verification ([`signature`]), the Telnyx webhook envelope and typed events
//! ([`webhook`], [`event`]), our authenticated `client_state` ([`client_state`]), the call state
//! machine ([`call`]), inbound routing and its validators ([`routing`]), push messages and what a
//! provider's answer means ([`push`]), the retry policy that every job kind uses ([`retry`]), the
//! circuit breaker kept per outside provider ([`breaker`]), device-credential decisions
//! ([`credentials`]), sealing secrets at rest ([`sealing`]), rate-limit arithmetic ([`rate`]) and
//! the Standard Webhooks payload, signature and answer table of app events ([`app_events`]) and
//! the facts and copy decisions of call recordings ([`recording`]).
//! Adapters (store, HTTP, queues) live in other crates and call into this one; nothing in here
//! knows about tokio, sqlx, axum, Redis or apalis.

pub mod app_events;
pub mod breaker;
pub mod call;
pub mod client_state;
pub mod credentials;
pub mod event;
pub mod push;
pub mod rate;
pub mod recording;
pub mod retry;
pub mod routing;
pub mod sealing;
pub mod signature;
pub mod webhook;

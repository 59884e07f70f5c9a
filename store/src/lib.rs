//! The storage port and its two adapters: PostgreSQL (fleets) and SQLite (the embedded default).
//!
//! One database holds both the system of record and the job queues, so "store the webhook and
//! enqueue its job" is one local transaction on either engine: either both exist or neither does.
//! That is the ingress's durability guarantee (a 2xx means stored *and* queued).
//!
//! [`Store`] is the port the roles program against. One implementation serves both engines:
//! [`sql::SqlStore`], generic over the sqlx database, with the few things that really differ in
//! [`postgres`] and [`sqlite`] (see the [`sql`] module header for how a table is added once).
//! Each engine has its own migrations under `migrations/`, and both pass the same conformance
//! suite (`tests/it/store_conformance.rs`). Errors are one enum, [`StoreError`], that says
//! whether trying again can help and keeps its cause.

mod db;
pub mod devices;
mod error;
pub mod liveness;
pub mod notify;
pub mod parties;
mod port;
pub mod postgres;
pub mod push;
mod queue_rows;
pub mod recordings;
pub mod sql;
pub mod sqlite;
pub mod story;
mod types;
pub mod wake;
pub mod webhook_jobs;

pub use db::{Db, PoolSize};
pub use devices::{
    Device, DeviceCredential, DeviceRegistration, DialableCredential, OrgCredential, OrgSettings,
    Organization, ProvisionedCredential, Registered, RingTarget, SealedPassword, User,
};
pub use error::StoreError;
pub use port::{
    CallStore, DirectoryStore, PushStore, QueueStore, RecordingStore, RoutingStore, Store, WebhookStore,
};
pub use queue_rows::APALIS_MAX_ATTEMPTS;
pub(crate) use queue_rows::{dead_job, queue_rows, restart_from_dead};
pub use recordings::{
    Recording, RecordingFailure, RecordingRequest, RequestStatus, Transcript, TranscriptStatus,
};
pub use types::*;

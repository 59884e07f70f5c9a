//! The storage port, one trait per area; [`Store`] is all of them.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fleet_domain::push::Provider;
use fleet_jobs::Pool;

use fleet_domain::call::{Call, CallLog, LedgerEntry};
use fleet_domain::routing::NumberConfig;

use crate::recordings::{Recording, RecordingFailure, RecordingRequest, RequestStatus, Transcript};
use crate::{
    Accepted, CallLeg, ConnectionUse, DeadJob, Device, DeviceCredential, DeviceRegistration,
    DialableCredential, Engine, LegUpdate, NewJob, NewWebhook, OrgCredential, Organization,
    ProvisionedCredential, QueueStats, Registered, ReplaySelector, ReplayTarget, RingTarget, StoreError,
    StoredWebhook, User,
};

/// The storage port. Every method is one short transaction (or none); none holds a connection
/// across a call to anything outside the database. It is the sum of one trait per area, so each
/// area's implementation sits beside its SQL (see `sql/`); `dyn Store` offers all of them.
#[async_trait]
pub trait Store:
    WebhookStore
    + QueueStore
    + DirectoryStore
    + RoutingStore
    + CallStore
    + PushStore
    + RecordingStore
    + Send
    + Sync
    + 'static
{
    /// Which engine this is.
    fn engine(&self) -> Engine;

    /// The store's clock: the time it writes on records and compares delayed jobs with. Workers
    /// read the same clock, so a test that moves it moves the whole fleet's timers.
    fn now(&self) -> DateTime<Utc>;

    /// Round-trips to the database (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Stored webhooks and the leg rows their events fill in.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores each webhook unless its event id is already stored, and enqueues the processing
    /// job of each newly stored one — all in one transaction. Outcomes are in input order; a
    /// repeated id within the batch is `Duplicate` after its first occurrence.
    async fn accept_webhooks(&self, batch: &[NewWebhook]) -> Result<Vec<Accepted>, StoreError>;

    /// One stored webhook by Telnyx event id.
    async fn webhook(&self, event_id: &str) -> Result<Option<StoredWebhook>, StoreError>;

    /// Records that processing finished (outcome is a short word: `processed`, `ignored`), and
    /// applies the event's leg fact, if any, in the same transaction (one commit per event).
    async fn finish_webhook(
        &self,
        event_id: &str,
        outcome: &str,
        leg: Option<&LegUpdate>,
    ) -> Result<(), StoreError>;

    /// Ids (with call session) of stored webhooks matching the selector, oldest first.
    async fn select_webhooks(&self, selector: &ReplaySelector) -> Result<Vec<ReplayTarget>, StoreError>;

    /// Deletes webhooks received before `before`; returns how many.
    async fn purge_webhooks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Applies one lifecycle event to its leg row; any order and any repetition converge.
    async fn apply_leg_event(&self, update: &LegUpdate) -> Result<(), StoreError>;

    /// The leg rows of a call session.
    async fn call_legs(&self, call_session_id: &str) -> Result<Vec<CallLeg>, StoreError>;

    /// The leg record of one `call_control_id`, if any of its events arrived.
    async fn call_leg(&self, call_control_id: &str) -> Result<Option<CallLeg>, StoreError>;
}

/// The job queues: transactional enqueue, depth, the dead set, cron ticks.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Enqueues jobs. A job whose `unique_key` was already pushed is skipped (`false`).
    async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<bool>, StoreError>;

    /// Moves up to `limit` delayed jobs of `pools` that are due (by the store's clock) into their
    /// queues, in one transaction, and wakes this process's workers; returns how many. Safe to
    /// run from any number of processes at once: each job is promoted once.
    async fn promote_due_jobs(&self, pools: &[Pool], limit: u32) -> Result<usize, StoreError>;

    /// When the next delayed job of `pools` falls due, if any is waiting.
    async fn next_due_at(&self, pools: &[Pool]) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Depth and age per pool.
    async fn queue_stats(&self) -> Result<Vec<QueueStats>, StoreError>;

    /// This process's connection pool use, read without a query.
    fn connections(&self) -> ConnectionUse;

    /// Jobs that ended in the dead set (budget spent or permanent failure), newest first.
    async fn dead_jobs(&self, pool: Option<Pool>, limit: u32) -> Result<Vec<DeadJob>, StoreError>;

    /// One dead job with its payload and last error, if that id is in the dead set.
    async fn dead_job(&self, job_id: &str) -> Result<Option<DeadJob>, StoreError>;

    /// Closes a dead job for good (kept, as done, until the retention purge). `false` if no dead
    /// job has that id.
    async fn discard_dead_job(&self, job_id: &str) -> Result<bool, StoreError>;

    /// Puts a dead job back in its queue as a first attempt. `false` if no dead job has that id.
    async fn retry_dead_job(&self, job_id: &str) -> Result<bool, StoreError>;

    /// Enqueues the job of one schedule tick, once across any number of schedulers: the tick row
    /// and the job commit together; `false` if the tick was already enqueued.
    async fn enqueue_tick(
        &self,
        schedule: &str,
        tick_at: DateTime<Utc>,
        job: &NewJob,
    ) -> Result<bool, StoreError>;
}

/// Organizations, users, devices and their Telnyx credentials.
#[async_trait]
pub trait DirectoryStore: Send + Sync {
    /// Creates or updates an organization; `true` if it was created.
    async fn upsert_organization(&self, org: &Organization) -> Result<bool, StoreError>;

    /// Creates or updates a user and replaces its memberships (`Invalid` if one of its
    /// organizations does not exist); `true` if created.
    async fn upsert_user(&self, user: &User) -> Result<bool, StoreError>;

    /// One organization with its settings.
    async fn organization(&self, id: &str) -> Result<Option<Organization>, StoreError>;

    /// One user with its memberships.
    async fn user(&self, id: &str) -> Result<Option<User>, StoreError>;

    /// Every registered device of a user in any organization the user belongs to (a call to any
    /// of them rings all), each with its dialable SIP username at `now` (active, unexpired), by id.
    async fn ring_targets(&self, user_id: &str, now: DateTime<Utc>) -> Result<Vec<RingTarget>, StoreError>;

    /// Registers a device: stores it and, at most once per (user, org, device), a credential row in
    /// `provisioning` plus its job, in one transaction. A `failed` row goes back to `provisioning`
    /// under a new generation. If the device moved to another user or org, its old rows are marked
    /// `deleting` and their deletion enqueued. `Invalid` if the user is unknown or not in the org.
    async fn register_device(&self, reg: &DeviceRegistration) -> Result<Registered, StoreError>;

    /// A device and its current credential row.
    async fn device(&self, id: &str) -> Result<Option<Device>, StoreError>;

    /// Removes the device and marks its credential rows `deleting` with their deletion jobs, in one
    /// transaction. `false` if no such device (idempotent).
    async fn deregister_device(&self, id: &str) -> Result<bool, StoreError>;

    /// One credential row.
    async fn credential(&self, id: &str) -> Result<Option<DeviceCredential>, StoreError>;

    /// Records the Telnyx credential of a `provisioning` row and makes it `active`. `false` if the
    /// row is no longer provisioning (deleted or deregistered meanwhile: the caller deletes what it
    /// created).
    async fn activate_credential(
        &self,
        id: &str,
        created: &ProvisionedCredential,
    ) -> Result<bool, StoreError>;

    /// Marks a `provisioning` row `failed` with the reason. `false` if it was not provisioning.
    async fn fail_credential(&self, id: &str, error: &str) -> Result<bool, StoreError>;

    /// Rotation: in one transaction the `active` row `old_id` becomes `deleting` and a new `active`
    /// row `new_id` with `created` takes its place, so the device is dialable throughout. `false`
    /// if `old_id` is not active any more.
    async fn swap_credential(
        &self,
        old_id: &str,
        new_id: &str,
        created: &ProvisionedCredential,
    ) -> Result<bool, StoreError>;

    /// Marks rows `deleting` (before their Telnyx deletion).
    async fn mark_credentials_deleting(&self, ids: &[String]) -> Result<(), StoreError>;

    /// Deletes credential rows; returns how many.
    async fn delete_credential_rows(&self, ids: &[String]) -> Result<u64, StoreError>;

    /// Up to `limit` rows to clean up at `now`: expired ones (`expires_at <= now`, any status) and
    /// `deleting` ones not touched since `stale_before` (a deletion that crashed), oldest first.
    async fn expired_credentials(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeviceCredential>, StoreError>;

    /// Ids of `active` rows with `now < expires_at <= horizon` (due for rotation).
    async fn credentials_to_rotate(
        &self,
        now: DateTime<Utc>,
        horizon: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Sealed SIP passwords that do not start with `current` (the prefix the current key seals
    /// with, `v2:<key id>:`), in row id order after `after` (`""` first): one page of what a
    /// re-seal still has to do.
    async fn sealed_passwords_to_reseal(
        &self,
        current: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<crate::devices::SealedPassword>, StoreError>;

    /// Replaces a row's sealed password if it is still `old` (a rotation or a concurrent re-seal
    /// wins); whether it was replaced.
    async fn replace_sealed_password(&self, id: &str, old: &str, new: &str) -> Result<bool, StoreError>;

    /// Which of these Telnyx credential ids the store knows (device or org-level).
    async fn known_telnyx_ids(&self, ids: &[String]) -> Result<HashSet<String>, StoreError>;

    /// The live credential row (any status but `deleting`) with this SIP username: whose device
    /// places an outbound call.
    async fn credential_by_sip_username(
        &self,
        sip_username: &str,
    ) -> Result<Option<DeviceCredential>, StoreError>;

    /// The credentials routing may dial for a user in an org at `now`: `active` and not expired,
    /// of devices that are registered. Never a provisioning, failed, deleting or expired one.
    async fn dialable_credentials(
        &self,
        user_id: &str,
        org_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<DialableCredential>, StoreError>;

    /// Records an org-level credential (idempotent by id).
    async fn upsert_org_credential(&self, cred: &OrgCredential) -> Result<(), StoreError>;

    /// Org-level credentials whose user is gone or now in another organization.
    async fn departed_org_credentials(&self, limit: u32) -> Result<Vec<OrgCredential>, StoreError>;

    /// Deletes org-level credential rows.
    async fn delete_org_credentials(&self, ids: &[String]) -> Result<u64, StoreError>;
}

/// The numbers calls arrive on, and each organization's blocked callers.
#[async_trait]
pub trait RoutingStore: Send + Sync {
    /// Creates or replaces a number's routing (`Invalid` if its organization does not exist, or
    /// its user is not a member of it); `true` if created.
    async fn put_number(&self, e164: &str, config: &NumberConfig) -> Result<bool, StoreError>;

    async fn number(&self, e164: &str) -> Result<Option<NumberConfig>, StoreError>;

    /// `false` if there was no such number (idempotent).
    async fn delete_number(&self, e164: &str) -> Result<bool, StoreError>;

    /// Blocks a caller for an organization (`Invalid` if the organization does not exist);
    /// `true` if newly blocked.
    async fn block_number(&self, org_id: &str, e164: &str) -> Result<bool, StoreError>;

    /// `false` if it was not blocked (idempotent).
    async fn unblock_number(&self, org_id: &str, e164: &str) -> Result<bool, StoreError>;

    async fn is_blocked(&self, org_id: &str, e164: &str) -> Result<bool, StoreError>;

    /// The organization's numbers with their configuration, by number.
    async fn org_numbers(&self, org_id: &str) -> Result<Vec<(String, NumberConfig)>, StoreError>;
}

/// Calls: one row per call session, changed only by compare-and-set transitions that commit
/// together with the jobs they cause (a transactional outbox).
#[async_trait]
pub trait CallStore: Send + Sync {
    async fn call(&self, call_session_id: &str) -> Result<Option<Call>, StoreError>;

    /// Stores a new call and enqueues `jobs`, in one transaction. `false` (nothing written, no
    /// job enqueued) if the session already has a call: the first `call.initiated` wins.
    async fn create_call(&self, call: &Call, jobs: &[NewJob]) -> Result<bool, StoreError>;

    /// Replaces the call stored at version `expected_version` by `next` and enqueues `jobs`, in
    /// one transaction. `false` (nothing written, nothing enqueued) if the stored version is
    /// another: a concurrent transition won, and the caller reloads and decides again.
    async fn transition_call(
        &self,
        expected_version: u64,
        next: &Call,
        jobs: &[NewJob],
    ) -> Result<bool, StoreError>;

    /// The user's newest call that has not ended (ringing, answered, voicemail, AI agent).
    async fn live_call_of_user(&self, user_id: &str) -> Result<Option<Call>, StoreError>;

    /// Calls still routing or ringing that started before `started_before`: none should be (a
    /// ring ends at its timeout, 120 s at most), so any is a call the engine lost track of.
    async fn stuck_calls(&self, started_before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Push fan-out, delivery records and token pruning.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// The registered devices of a user in an organization (whom a call rings), by id.
    async fn user_devices(&self, user_id: &str, org_id: &str) -> Result<Vec<DeviceRegistration>, StoreError>;

    /// One device's registration (platform, tokens, user and org), without its credential: what
    /// a push needs, in one query.
    async fn device_registration(&self, device_id: &str) -> Result<Option<DeviceRegistration>, StoreError>;

    /// Whether the push `push_key` (see [`crate::push::push_key`]) was already accepted by a provider.
    async fn push_delivered(&self, push_key: &str) -> Result<bool, StoreError>;

    /// Records that a provider accepted the push `push_key` (idempotent), committed together
    /// with `jobs` (what the delivery causes: its call learns of it), so a delivery is never
    /// recorded without its follow-up.
    async fn record_push_delivery(
        &self,
        push_key: &str,
        device_id: &str,
        provider: Provider,
        jobs: &[NewJob],
    ) -> Result<(), StoreError>;

    /// Removes a dead token from a device: the FCM `push_token` or the APNs `voip_token`, only if
    /// it still is `token` (a token the app refreshed meanwhile is kept). `true` if removed.
    async fn prune_push_token(
        &self,
        device_id: &str,
        provider: Provider,
        token: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes push delivery records older than `before`; returns how many.
    async fn purge_push_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The recording pipeline's rows: recordings copied into the object store, their transcripts,
/// failed recordings, and the call log and billing ledger of ended calls.
#[async_trait]
pub trait RecordingStore: Send + Sync {
    /// Records a copied recording (transcript `pending`) and pushes `jobs` (its transcription)
    /// in the same transaction, unless a row with its id exists (`false`: nothing pushed).
    async fn store_recording(&self, recording: &Recording, jobs: &[NewJob]) -> Result<bool, StoreError>;

    async fn recording(&self, id: &str) -> Result<Option<Recording>, StoreError>;

    /// The recordings of one call session, oldest first.
    async fn call_recordings(&self, call_session_id: &str) -> Result<Vec<Recording>, StoreError>;

    /// Settles a transcript that is not `done` yet; `false` when it was (a repeat).
    async fn finish_transcript(&self, id: &str, outcome: &Transcript) -> Result<bool, StoreError>;

    /// Keeps a `call.recording.error` (once per event id); `false` for a repeat.
    async fn record_recording_failure(
        &self,
        event_id: &str,
        call_session_id: &str,
        reason: &str,
    ) -> Result<bool, StoreError>;

    async fn recording_failures(&self, call_session_id: &str) -> Result<Vec<RecordingFailure>, StoreError>;

    /// Writes an ended call's log line and ledger entry and pushes `jobs` (its `call.log`
    /// event) in one transaction, unless the session is logged already (`false`: nothing
    /// written, nothing pushed).
    async fn log_call(&self, log: &CallLog, entry: &LedgerEntry, jobs: &[NewJob])
    -> Result<bool, StoreError>;

    /// Up to `limit` recordings stored before `before`, oldest first (the retention purge).
    async fn recordings_stored_before(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Recording>, StoreError>;

    /// Deletes the recording rows `ids` (transcripts included); returns how many.
    async fn delete_recordings(&self, ids: &[String]) -> Result<u64, StoreError>;

    /// The call log line and ledger entry of a session, once it ended.
    async fn call_log(&self, call_session_id: &str) -> Result<Option<(CallLog, LedgerEntry)>, StoreError>;

    /// Keeps a browser's request to record its direct call (`pending`) and pushes `jobs` (the
    /// job that starts it) in one transaction, unless one exists for the `call_control_id`
    /// (`false`: nothing written, nothing pushed).
    async fn request_recording(
        &self,
        request: &RecordingRequest,
        jobs: &[NewJob],
    ) -> Result<bool, StoreError>;

    async fn recording_request(&self, call_control_id: &str) -> Result<Option<RecordingRequest>, StoreError>;

    /// Moves a `pending` request to `status` (with `detail`); `false` when it was settled before.
    async fn settle_recording_request(
        &self,
        call_control_id: &str,
        status: RequestStatus,
        detail: Option<&str>,
    ) -> Result<bool, StoreError>;
}

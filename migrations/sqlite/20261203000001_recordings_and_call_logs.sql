-- The recording pipeline. Recordings copied into the fleet's object store, one row per Telnyx recording id, written in
-- the transaction that enqueues the recording's transcription (a copy job that runs twice finds
-- the row and enqueues nothing more). The transcript is kept with its recording.
-- Failed recordings (`call.recording.error`, which names no recording) are kept per event, for
-- an operator to see beside the call.
-- Times are Unix milliseconds.
CREATE TABLE recordings (
    id                TEXT PRIMARY KEY,
    call_session_id   TEXT NOT NULL,
    org_id            TEXT NOT NULL,
    format            TEXT NOT NULL,
    channels          TEXT NOT NULL,
    object_key        TEXT NOT NULL,
    sha256            TEXT NOT NULL,
    size_bytes        INTEGER NOT NULL,
    duration_ms       INTEGER,
    started_at        INTEGER,
    ended_at          INTEGER,
    saved_at          INTEGER NOT NULL,
    stored_at         INTEGER NOT NULL,
    transcript_status TEXT NOT NULL,
    transcript        TEXT,
    transcript_error  TEXT,
    transcribed_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX recordings_session_idx ON recordings (call_session_id);
CREATE INDEX recordings_stored_idx ON recordings (stored_at);

CREATE TABLE recording_failures (
    event_id        TEXT PRIMARY KEY,
    call_session_id TEXT NOT NULL,
    reason          TEXT NOT NULL,
    failed_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX recording_failures_session_idx ON recording_failures (call_session_id);

-- One call log line and one billing ledger entry per ended call session, written together in
-- one transaction with the call.log event's job (the session id is the arbiter: a second
-- writer inserts nothing). `doc` is the JSON of fleet_domain::call::CallLog.
CREATE TABLE call_logs (
    call_session_id TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    doc             TEXT NOT NULL,
    ended_at        INTEGER NOT NULL,
    logged_at       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX call_logs_org_idx ON call_logs (org_id, ended_at);

CREATE TABLE billing_ledger (
    call_session_id TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    user_id         TEXT,
    kind            TEXT NOT NULL,
    billable_secs   INTEGER NOT NULL,
    billed_minutes  INTEGER NOT NULL,
    ended_at        INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX billing_ledger_org_idx ON billing_ledger (org_id, ended_at);

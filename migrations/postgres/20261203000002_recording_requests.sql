-- Recordings a browser asked for on its own direct WebRTC call (`POST /v1/calls/{id}/recording`),
-- one row per call_control_id, written in the transaction that enqueues the job starting it.
-- `status` moves once from `pending` to `started` (Telnyx accepted record_start), `ended` (the
-- call ended before it could be recorded) or `failed` (Telnyx refused it for good).
CREATE TABLE recording_requests (
    call_control_id TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    user_id         TEXT,
    device_id       TEXT,
    from_party      TEXT NOT NULL,
    to_party        TEXT NOT NULL,
    format          TEXT NOT NULL,
    channels        TEXT NOT NULL,
    status          TEXT NOT NULL,
    detail          TEXT,
    requested_at    TIMESTAMPTZ NOT NULL,
    settled_at      TIMESTAMPTZ
);

-- Every Telnyx webhook delivery that got a 2xx, exactly once per Telnyx event id.
-- The raw body is kept verbatim: it is what was signed, and what replay re-reads.
-- Times are Unix milliseconds (INTEGER) so comparisons and ranges are exact.
CREATE TABLE webhook_events (
    event_id        TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    call_session_id TEXT,
    source          TEXT NOT NULL CHECK (source IN ('primary', 'failover')),
    attempt         INTEGER,
    body            TEXT NOT NULL,
    received_at     INTEGER NOT NULL,
    processed_at    INTEGER,
    outcome         TEXT
) WITHOUT ROWID;

CREATE INDEX webhook_events_received_at_idx ON webhook_events (received_at);
CREATE INDEX webhook_events_call_session_idx ON webhook_events (call_session_id);

-- The lifecycle of each call leg as Telnyx reported it; one row per call_control_id.
CREATE TABLE call_legs (
    call_control_id TEXT PRIMARY KEY,
    call_session_id TEXT,
    call_leg_id     TEXT,
    direction       TEXT,
    from_number     TEXT,
    to_number       TEXT,
    initiated_at    INTEGER,
    answered_at     INTEGER,
    bridged_at      INTEGER,
    ended_at        INTEGER,
    hangup_cause    TEXT,
    hangup_source   TEXT,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX call_legs_call_session_idx ON call_legs (call_session_id);

-- Cron ticks already enqueued, one row per (schedule, tick).
CREATE TABLE schedule_ticks (
    schedule    TEXT NOT NULL,
    tick_at     INTEGER NOT NULL,
    enqueued_at INTEGER NOT NULL,
    PRIMARY KEY (schedule, tick_at)
) WITHOUT ROWID;

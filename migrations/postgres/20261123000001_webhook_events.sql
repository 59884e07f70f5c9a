-- Every Telnyx webhook delivery that got a 2xx, exactly once per Telnyx event id.
-- The raw body is kept verbatim: it is what was signed, and what replay re-reads.
CREATE TABLE webhook_events (
    event_id        TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    call_session_id TEXT,
    source          TEXT NOT NULL CHECK (source IN ('primary', 'failover')),
    attempt         INTEGER,
    body            TEXT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    processed_at    TIMESTAMPTZ,
    outcome         TEXT
);

CREATE INDEX webhook_events_received_at_idx ON webhook_events (received_at);
CREATE INDEX webhook_events_call_session_idx ON webhook_events (call_session_id);

-- The lifecycle of each call leg as Telnyx reported it; one row per call_control_id.
-- Updates only move forward (timestamps are set once), so any order and any repetition of
-- events converge on the same row.
CREATE TABLE call_legs (
    call_control_id TEXT PRIMARY KEY,
    call_session_id TEXT,
    call_leg_id     TEXT,
    direction       TEXT,
    from_number     TEXT,
    to_number       TEXT,
    initiated_at    TIMESTAMPTZ,
    answered_at     TIMESTAMPTZ,
    bridged_at      TIMESTAMPTZ,
    ended_at        TIMESTAMPTZ,
    hangup_cause    TEXT,
    hangup_source   TEXT,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX call_legs_call_session_idx ON call_legs (call_session_id);

-- Cron ticks already enqueued, one row per (schedule, tick): any number of scheduler replicas
-- enqueue each tick once.
CREATE TABLE schedule_ticks (
    schedule    TEXT NOT NULL,
    tick_at     TIMESTAMPTZ NOT NULL,
    enqueued_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (schedule, tick_at)
);

-- Routing settings and the call engine's rows.
--
-- An organization's voicemail and AI-agent settings travel as one JSON document (`settings`); a
-- user may belong to several organizations (`user_orgs`, the primary one included) and has a
-- do-not-disturb flag. A number's routing configuration is a JSON document beside its org.
ALTER TABLE organizations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN dnd BOOLEAN NOT NULL DEFAULT false;

CREATE TABLE user_orgs (
    user_id TEXT NOT NULL,
    org_id  TEXT NOT NULL,
    PRIMARY KEY (user_id, org_id)
);
CREATE INDEX user_orgs_org_idx ON user_orgs (org_id);
INSERT INTO user_orgs (user_id, org_id) SELECT id, org_id FROM users WHERE true ON CONFLICT DO NOTHING;

CREATE TABLE numbers (
    e164       TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    config     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX numbers_org_idx ON numbers (org_id);

CREATE TABLE blocked_numbers (
    org_id     TEXT NOT NULL,
    e164       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, e164)
);

-- One row per call session: the state machine's value (`doc`, JSON) and the columns the API
-- reads. `version` is the compare-and-set token of every transition.
CREATE TABLE calls (
    call_session_id TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL,
    user_id         TEXT,
    state           TEXT NOT NULL,
    version         BIGINT NOT NULL,
    doc             TEXT NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX calls_live_user_idx ON calls (user_id, started_at) WHERE state <> 'ended';
CREATE INDEX calls_updated_idx ON calls (updated_at);

-- Delayed jobs, held apart from the queue until they fall due: the promoter of each worker
-- process moves due rows into the queue (millisecond due times on both engines).
CREATE TABLE scheduled_jobs (
    id         TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    job        BYTEA NOT NULL,
    unique_key TEXT,
    due_at     TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX scheduled_jobs_key ON scheduled_jobs (queue, unique_key);
CREATE INDEX scheduled_jobs_due_idx ON scheduled_jobs (queue, due_at);

-- Tenants, users (each in one organization), devices, and their Telnyx telephony credentials.
-- Times are Unix milliseconds (INTEGER).
CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    org_id      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    push_token  TEXT,
    voip_token  TEXT,
    app_version TEXT,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX devices_user_idx ON devices (user_id, org_id);

-- One row per Telnyx credential of a device (or one being created). The partial unique index is
-- the "one credential per (user, org, device)" rule; rows being deleted (rotation, expiry,
-- deregistration) step out of it. The SIP password, if kept, is sealed (v1:<key id>:…).
CREATE TABLE device_credentials (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('provisioning', 'active', 'failed', 'deleting')),
    generation      INTEGER NOT NULL DEFAULT 1,
    telnyx_id       TEXT,
    sip_username    TEXT,
    sip_password    TEXT,
    expires_at      INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX device_credentials_one_live ON device_credentials (user_id, org_id, device_id)
    WHERE status <> 'deleting';
CREATE INDEX device_credentials_expiry_idx ON device_credentials (expires_at);
CREATE INDEX device_credentials_device_idx ON device_credentials (device_id);
CREATE INDEX device_credentials_telnyx_idx ON device_credentials (telnyx_id);

-- Org-level (web) credentials of users: never dialed; deleted when the user leaves the org.
CREATE TABLE org_credentials (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    org_id          TEXT NOT NULL,
    telnyx_id       TEXT NOT NULL,
    sip_username    TEXT NOT NULL,
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX org_credentials_user_idx ON org_credentials (user_id, org_id);
CREATE INDEX org_credentials_telnyx_idx ON org_credentials (telnyx_id);

-- Pushes that a provider accepted, one row per (message kind, call session, device): a push job
-- that runs again (at-least-once delivery, an operator retry) finds its row and does not ring the
-- phone a second time. Rows older than the webhook retention are purged with the webhooks.
-- Times are Unix milliseconds.
CREATE TABLE push_deliveries (
    push_key     TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL,
    provider     TEXT NOT NULL,
    delivered_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX push_deliveries_delivered_idx ON push_deliveries (delivered_at);

-- The generation counter is a 64-bit integer on both engines, so one row type decodes it.
ALTER TABLE device_credentials ALTER COLUMN generation TYPE BIGINT;

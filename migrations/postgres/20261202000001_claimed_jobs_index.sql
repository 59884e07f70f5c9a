-- The claimed jobs (fetched into a worker's buffer, 'Queued', or started, 'Running'), by the
-- worker that claimed them: what the rescue of jobs whose worker process is gone scans several
-- times a second (see store/src/liveness.rs). Partial, so it holds only the jobs in flight (a few
-- per worker), not the finished history.
CREATE INDEX IF NOT EXISTS callfleet_jobs_claimed_by_worker ON apalis.jobs (lock_by)
    WHERE status IN ('Running', 'Queued');

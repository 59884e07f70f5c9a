-- apalis notifies workers with one pg_notify per inserted job row (a plpgsql trigger per row).
-- callfleet inserts jobs in batches; one notification per queue per statement wakes the same
-- workers (they fetch a batch) at a fraction of the cost. The payload keeps apalis's shape
-- ({"job_type", "id", "run_at"}), and, like apalis's trigger, only jobs already due notify.
DROP TRIGGER IF EXISTS notify_workers ON apalis.jobs;

CREATE OR REPLACE FUNCTION callfleet_notify_new_jobs() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify(
        'apalis::job::insert',
        json_build_object('job_type', job_type, 'id', max(id), 'run_at', min(run_at))::text
    )
    FROM new_jobs
    WHERE run_at <= now()
    GROUP BY job_type;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER callfleet_notify_workers
AFTER INSERT ON apalis.jobs
REFERENCING NEW TABLE AS new_jobs
FOR EACH STATEMENT EXECUTE FUNCTION callfleet_notify_new_jobs();

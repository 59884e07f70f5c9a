-- apalis 1.0 leaves two pairs of identical indexes on its jobs table: `unique_job_id` repeats the
-- primary key on `id`, and `lidx` repeats `idx_apalis_jobs_lock_by` on `lock_by`. Every job
-- insert pays for each index; keep one of each.
DROP INDEX IF EXISTS apalis.unique_job_id;
DROP INDEX IF EXISTS apalis.lidx;

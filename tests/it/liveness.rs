//! The rescue of running jobs whose worker process is gone (Postgres, `fleet_store::liveness`):
//! only jobs claimed (`Queued` in a buffer, or `Running`) by a worker whose process lock nobody holds go back to the queue; a
//! live process's jobs, finished jobs and workers without a key stay as they are.

use fleet_jobs::Pool;
use fleet_store::{Db, Engine};

use crate::support::{TestDb, eventually};

const JOBS: &str = "SELECT id, status, lock_by IS NULL, attempts FROM apalis.jobs ORDER BY id";

#[tokio::test]
async fn only_claimed_jobs_of_processes_without_their_lock_are_rescued() {
    let db = TestDb::new(Engine::Postgres).await;
    let Db::Postgres(pg) = db.open().await else { unreachable!("a Postgres test database") };
    db.exec(
        "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen) VALUES
             ('webhooks@h-1-A.111', 'webhooks', 'PgStorage', '', now()),
             ('webhooks@h-2-B.222', 'webhooks', 'PgStorage', '', now()),
             ('legs@h-2-C.222', 'legs', 'PgStorage', '', now()),
             ('webhooks@old-3-D', 'webhooks', 'PgStorage', '', now());
         INSERT INTO apalis.jobs (id, job_type, job, status, lock_by, lock_at, run_at) VALUES
             ('j1', 'webhooks', '\\x00', 'Running', 'webhooks@h-1-A.111', now(), now()),
             ('j2', 'webhooks', '\\x00', 'Running', 'webhooks@h-2-B.222', now(), now()),
             ('j3', 'legs', '\\x00', 'Running', 'legs@h-2-C.222', now(), now()),
             ('j4', 'webhooks', '\\x00', 'Running', 'webhooks@old-3-D', now(), now()),
             ('j5', 'webhooks', '\\x00', 'Done', 'webhooks@h-1-A.111', now(), now()),
             ('j6', 'webhooks', '\\x00', 'Queued', 'webhooks@h-1-A.111', now(), now());",
    )
    .await;
    // Process 222 lives (holds its lock); process 111 does not.
    let lock = pg.take_process_lock(222).await.unwrap().expect("the key is free");
    assert!(pg.take_process_lock(222).await.unwrap().is_none(), "one holder per key");
    assert_eq!(pg.gone_processes().await.unwrap(), vec![111]);

    let rescued = pg.rescue_jobs_of(&[111, 222]).await.unwrap();
    assert_eq!(rescued, vec![(Pool::Webhooks, 2)], "222 is re-checked inside the statement");
    let rows: Vec<(String, String, bool, i32)> = sqlx::query_as(JOBS).fetch_all(pg.pool()).await.unwrap();
    let expected = [
        ("j1", "Pending", true, 1),
        ("j2", "Running", false, 0),
        ("j3", "Running", false, 0),
        ("j4", "Running", false, 0),
        ("j5", "Done", false, 0),
        ("j6", "Pending", true, 1),
    ];
    let expected: Vec<(String, String, bool, i32)> =
        expected.iter().map(|(i, s, n, a)| ((*i).into(), (*s).into(), *n, *a)).collect();
    assert_eq!(rows, expected);
    assert!(pg.rescue_jobs_of(&[111]).await.unwrap().is_empty(), "rescued once");

    // Process 222 goes away: its lock goes with its connection.
    drop(lock);
    eventually(10, "222's lock to be released", || async {
        (pg.gone_processes().await.unwrap() == vec![222]).then_some(())
    })
    .await;
    let mut rescued = pg.rescue_jobs_of(&[222]).await.unwrap();
    rescued.sort_by_key(|(pool, _)| pool.as_str());
    assert_eq!(rescued, vec![(Pool::Legs, 1), (Pool::Webhooks, 1)]);
    pg.pool().close().await;
}

/// A worker that apalis stopped on a database error (its process lives on, under a new worker):
/// its claimed jobs go back to the queue at once, nobody else's, and no finished one.
#[tokio::test]
async fn a_stopped_workers_claimed_jobs_are_released_and_only_its_own() {
    let db = TestDb::new(Engine::Postgres).await;
    let Db::Postgres(pg) = db.open().await else { unreachable!("a Postgres test database") };
    db.exec(
        "INSERT INTO apalis.workers (id, worker_type, storage_name, layers, last_seen) VALUES
             ('webhooks@h-1-A.111', 'webhooks', 'PgStorage', '', now()),
             ('webhooks@h-1-B.111', 'webhooks', 'PgStorage', '', now()),
             ('legs@h-1-C.111', 'legs', 'PgStorage', '', now());
         INSERT INTO apalis.jobs (id, job_type, job, status, lock_by, lock_at, run_at) VALUES
             ('j1', 'webhooks', '\\x00', 'Running', 'webhooks@h-1-A.111', now(), now()),
             ('j2', 'webhooks', '\\x00', 'Queued', 'webhooks@h-1-A.111', now(), now()),
             ('j3', 'webhooks', '\\x00', 'Done', 'webhooks@h-1-A.111', now(), now()),
             ('j4', 'webhooks', '\\x00', 'Running', 'webhooks@h-1-B.111', now(), now()),
             ('j5', 'legs', '\\x00', 'Running', 'legs@h-1-C.111', now(), now());",
    )
    .await;
    let released = pg.release_jobs_of_worker("webhooks@h-1-A.111").await.unwrap();
    assert_eq!(released, vec![(Pool::Webhooks, 2)]);
    let rows: Vec<(String, String, bool, i32)> = sqlx::query_as(JOBS).fetch_all(pg.pool()).await.unwrap();
    let rows: Vec<(&str, &str, bool, i32)> =
        rows.iter().map(|(a, b, c, d)| (a.as_str(), b.as_str(), *c, *d)).collect();
    assert_eq!(
        rows,
        [
            ("j1", "Pending", true, 1),
            ("j2", "Pending", true, 1),
            ("j3", "Done", false, 0),
            ("j4", "Running", false, 0),
            ("j5", "Running", false, 0),
        ]
    );
    assert!(
        pg.release_jobs_of_worker("webhooks@h-1-A.111").await.unwrap().is_empty(),
        "a second call finds none"
    );
}

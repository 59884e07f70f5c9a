//! A database per test: a fresh Postgres database (dropped on drop) or a fresh SQLite file.

use fleet_store::{Db, Engine};

/// Where the tests find Postgres (the server, not a database).
pub fn pg_admin_url() -> String {
    std::env::var("CALLFLEET_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct TestDb {
    pub engine: Engine,
    pub url: String,
    pg_name: Option<String>,
    dir: Option<std::path::PathBuf>,
}

impl TestDb {
    /// Creates an empty database and migrates it.
    pub async fn new(engine: Engine) -> Self {
        let id = ulid::Ulid::generate().to_string().to_lowercase();
        let this = match engine {
            Engine::Postgres => {
                let name = format!("cf_test_{id}");
                let admin = sqlx::PgPool::connect(&pg_admin_url())
                    .await
                    .expect("Postgres must be running for the tests");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                let base = pg_admin_url();
                let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
                Self { engine, url, pg_name: Some(name), dir: None }
            }
            Engine::Sqlite => {
                let dir = std::env::temp_dir().join(format!("callfleet-test-{id}"));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}?mode=rwc", dir.join("callfleet.db").display());
                Self { engine, url, pg_name: None, dir: Some(dir) }
            }
        };
        this.open().await.migrate().await.expect("migrations");
        this
    }

    pub async fn open(&self) -> Db {
        Db::open(&self.url).await.expect("open database")
    }

    /// A raw Postgres pool on this test's database (Postgres only).
    pub async fn pg(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.pg_name.take() {
            // Drop needs async I/O; do it on a thread of its own so it works inside or outside a runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    if let Ok(admin) = sqlx::PgPool::connect(&pg_admin_url()).await {
                        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                    }
                });
            })
            .join();
        }
    }
}

impl TestDb {
    /// Runs raw SQL on this test's database (to inject faults or repair data, as an operator would).
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.engine {
            Engine::Postgres => {
                let pool = self.pg().await;
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }
}

impl TestDb {
    /// The apalis jobs table of this engine.
    pub fn jobs_table(&self) -> &'static str {
        match self.engine {
            Engine::Postgres => "apalis.jobs",
            Engine::Sqlite => "Jobs",
        }
    }

    /// Makes every delayed job of `queue` due now and waits until the promoter moved them into
    /// the queue (tests honour the order of a persisted backoff without waiting it out).
    pub async fn make_scheduled_due(&self, queue: &str) {
        let epoch = match self.engine {
            Engine::Postgres => "to_timestamp(0)",
            Engine::Sqlite => "0",
        };
        self.exec(&format!("UPDATE scheduled_jobs SET due_at = {epoch} WHERE queue = '{queue}'")).await;
        let waiting =
            format!("SELECT count(*) FROM scheduled_jobs WHERE queue = '{queue}' AND due_at = {epoch}");
        super::eventually(10, "the due jobs to be promoted", || async {
            (self.count(&waiting).await == 0).then_some(())
        })
        .await;
    }

    /// The first column of every row of a query, as strings.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.engine {
            Engine::Postgres => {
                let pool = self.pg().await;
                let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
            Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                let rows = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
                pool.close().await;
                rows
            }
        }
    }

    /// A single integer from a query (counts).
    pub async fn count(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self.engine {
            Engine::Postgres => {
                let pool = self.pg().await;
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
            Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                n
            }
        }
    }
}

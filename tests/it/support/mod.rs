//! Test harness: per-test databases, an in-process fleet, signed deliveries, and drains.

pub mod calls;
pub mod clock;
pub mod db;
pub mod fleet;
pub mod logs;
pub mod metrics;
pub mod process;
pub mod proxy;
pub mod s3;
pub mod webhook;

pub use clock::TestClock;
pub use db::TestDb;
pub use fleet::Fleet;
pub use fleet_store::Engine;

/// `on_both!(body => name_postgres, name_sqlite)` declares two tests that run
/// `async fn body(Engine)` on each engine.
#[macro_export]
macro_rules! on_both {
    ($($body:ident => $pg:ident, $sqlite:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $pg() {
                $body($crate::support::Engine::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $sqlite() {
                $body($crate::support::Engine::Sqlite).await
            }
        )*
    };
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `secs` seconds with `what`.
/// For conditions another task or process brings about; never a fixed sleep.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {secs} s waiting for: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

//! Running the real `callfleet` binary as a child process (for crash tests and role tests).

use std::process::Stdio;

use tokio::process::{Child, Command};

use super::webhook;

/// Spawns `callfleet <args>` against `db_url`, signing key of the tests, stdout piped. With
/// `CALLFLEET_TEST_CHILD_LOGS=DIR`, each child's log (stderr) goes to a file in DIR, for
/// looking into a failing process test.
pub fn spawn(db_url: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Child {
    let mut cmd = command(db_url, args, extra_env);
    if let Some(dir) = std::env::var_os("CALLFLEET_TEST_CHILD_LOGS") {
        let name = format!("{}-{}.log", args.join("_").replace([',', '/'], "+"), ulid::Ulid::generate());
        let file = std::fs::File::create(std::path::Path::new(&dir).join(name)).expect("child log file");
        cmd.stderr(file).env("RUST_LOG", "info,sqlx=warn,apalis=warn");
    }
    cmd.spawn().expect("spawn callfleet")
}

/// The command [`spawn`] runs, to adjust before spawning (unset a variable, pipe stderr).
pub fn command(db_url: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callfleet"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CALLFLEET_DATABASE_URL", db_url)
        .env("TELNYX_PUBLIC_KEY", webhook::public_key())
        .env("CALLFLEET_ORPHAN_AFTER_SECS", "3")
        .env("CALLFLEET_SHUTDOWN_TIMEOUT_SECS", "2")
        .env("CALLFLEET_SHUTDOWN_DRAIN_SECS", "0")
        .env("RUST_LOG", "warn")
        // Not the checkout's `data/recordings` (a test that copies recordings sets its own).
        .env(
            "CALLFLEET_RECORDINGS_URL",
            format!("file://{}", std::env::temp_dir().join("callfleet-child-recordings").display()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `callfleet <args>` to completion; returns (success, stdout).
pub async fn run(db_url: &str, args: &[&str]) -> (bool, String) {
    let out = spawn(db_url, args, &[]).wait_with_output().await.expect("callfleet output");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Sends SIGTERM (what systemd and Kubernetes send to stop a process).
pub fn sigterm(child: &Child) {
    let pid = child.id().expect("a running child").to_string();
    let ok = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success();
    assert!(ok, "kill -TERM {pid}");
}

/// SIGKILLs the child and reaps it.
pub async fn kill9(child: &mut Child) {
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

//! `callfleet`: one binary, every role. `main` only parses flags, loads configuration, sets up
//! telemetry and hands over to the role libraries (see `roles.rs` and `ops.rs`).

mod cli;
mod demo;
mod inspect;
mod ops;
mod roles;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("callfleet: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("callfleet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

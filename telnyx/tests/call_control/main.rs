//! Call Control client tests: against the in-process carrier simulator (`fleet_sim`), checking
//! every request it accepted against the Telnyx OpenAPI subset; and against a tiny axum stub for
//! what the simulator does not serve (playback, gather, 404 `10005`, `90042` on a real bridge
//! refusal shape, `Retry-After`).

mod sim_commands;
mod sim_faults;
mod stub;
mod support;

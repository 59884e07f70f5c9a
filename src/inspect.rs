//! `callfleet call SESSION`: everything the fleet knows about one call session, for an operator
//! chasing a report ("it kept ringing", "it never rang"): the call's state machine record (state,
//! end reason, winner, every leg the engine dialed), the leg lifecycle rows Telnyx's webhooks
//! built, and every stored webhook of the session with when it was received and processed, merged
//! into one timeline. Read-only; `--json` prints the same as one document.

use chrono::{DateTime, Utc};
use fleet_platform::Config;
use fleet_store::story::{CallStory, call_story};

use crate::ops::open;

pub async fn call(config: &Config, session: &str, json: bool) -> anyhow::Result<()> {
    let store = open(config).await?.store();
    let Some(story) = call_story(store.as_ref(), session).await? else {
        anyhow::bail!("nothing is known about call session {session}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&story)?);
        return Ok(());
    }
    let CallStory { call, leg_records: legs, webhooks, .. } = story;
    println!("call session {session}");
    match &call {
        Some(c) => {
            println!(
                "  {} call in org {} for user {}: {} → {}",
                c.direction.as_str(),
                c.org_id,
                c.user_id.as_deref().unwrap_or("-"),
                c.from,
                c.to
            );
            let reason = c.end_reason.map(|r| r.as_str()).unwrap_or("-");
            let winner = c.winner.as_ref().map(|w| w.to_string()).unwrap_or_else(|| "-".into());
            println!(
                "  state {} (end reason {reason}), winner {winner}, version {}",
                c.state.as_str(),
                c.version
            );
            for leg in &c.legs {
                let hangup =
                    leg.hangup_reason.map(|r| r.as_str()).or(leg.hangup_cause.as_deref()).unwrap_or("");
                println!(
                    "  leg {:<24} {:<10} {} {hangup}{}",
                    leg.id.to_string(),
                    leg.state.as_str(),
                    leg.call_control_id.as_deref().unwrap_or("(not dialed yet)"),
                    if leg.dial_failed { " dial failed" } else { "" }
                );
            }
        }
        None => println!("  no call record (not routed: an unknown number, or not ours)"),
    }
    let mut timeline: Vec<(DateTime<Utc>, String)> = Vec::new();
    if let Some(c) = &call {
        timeline.push((c.started_at, "call started".into()));
        timeline.extend(c.answered_at.map(|t| (t, "call answered".to_owned())));
        timeline.extend(c.ended_at.map(|t| (t, "call ended".to_owned())));
    }
    for w in &webhooks {
        let done = match (&w.processed_at, &w.outcome) {
            (Some(at), Some(outcome)) => {
                format!("{outcome} after {} ms", (*at - w.received_at).num_milliseconds())
            }
            _ => "not processed yet".into(),
        };
        timeline
            .push((w.received_at, format!("webhook {} {} ({}, {done})", w.event_type, w.event_id, w.source)));
    }
    for leg in &legs {
        let id = &leg.call_control_id;
        for (at, what) in [
            (leg.initiated_at, "initiated"),
            (leg.answered_at, "answered"),
            (leg.bridged_at, "bridged"),
            (leg.ended_at, "ended"),
        ] {
            if let Some(at) = at {
                let cause = if what == "ended" { leg.hangup_cause.as_deref().unwrap_or("") } else { "" };
                timeline.push((at, format!("leg {id} {what} {cause}").trim_end().to_owned()));
            }
        }
    }
    timeline.sort();
    println!("timeline");
    for (at, what) in timeline {
        println!("  {}  {what}", at.format("%Y-%m-%d %H:%M:%S%.3f"));
    }
    Ok(())
}

//! What the simulator does not serve, against a tiny axum stub: `playback_start`,
//! `playback_stop` and `gather` (not in the simulator, nor in the OpenAPI subset — their fields
//! are checked against the lists copied from the full `spec3.yml` schemas below), a 404 `10005`,
//! a refused bridge answering `90042` while the command is another one, `Retry-After` on 429, and a
//! non-Telnyx 502 body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fleet_telnyx::call_control::{
    Bridge, Failure, Gather, Hangup, Outcome, PlaybackStart, PlaybackStop, Speak,
};
use fleet_telnyx::{CallControl, RateLimiter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{id, settings};

/// `PlayAudioUrlRequest` properties (spec3.yml, components.schemas), none required.
const PLAYBACK_START: &[&str] = &[
    "audio_type",
    "audio_url",
    "cache_audio",
    "client_state",
    "command_id",
    "loop",
    "media_name",
    "overlay",
    "playback_content",
    "stop",
    "target_legs",
];
/// `PlaybackStopRequest` properties.
const PLAYBACK_STOP: &[&str] = &["client_state", "command_id", "overlay", "stop"];
/// `GatherRequest` properties (all integers except the digit strings and ids).
const GATHER: &[&str] = &[
    "client_state",
    "command_id",
    "gather_id",
    "initial_timeout_millis",
    "inter_digit_timeout_millis",
    "maximum_digits",
    "minimum_digits",
    "terminating_digit",
    "timeout_millis",
    "valid_digits",
];

type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

fn telnyx_error(status: u16, code: &str, title: &str) -> Response {
    let body = json!({"errors": [{"code": code, "title": title, "detail": title}]});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

async fn action(
    State(seen): State<Seen>,
    Path((call, action)): Path<(String, String)>,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    seen.lock().unwrap().push((call.clone(), action.clone(), body));
    match (call.as_str(), action.as_str()) {
        ("busy", "bridge") => telnyx_error(422, "90042", "Call already bridged"),
        ("noaudio", "playback_start") => telnyx_error(404, "10005", "Audio file not found"),
        ("gone", _) => telnyx_error(404, "10005", "Resource not found"),
        ("slow", _) => {
            let mut r = telnyx_error(429, "10011", "Too many requests");
            r.headers_mut().insert("retry-after", HeaderValue::from_static("2"));
            r
        }
        ("proxy", _) => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
        _ => axum::Json(json!({"data": {"result": "ok"}})).into_response(),
    }
}

async fn start(cancel: &CancellationToken) -> (CallControl, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().route("/v2/calls/{id}/actions/{action}", post(action)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await.unwrap();
    });
    let cc =
        CallControl::new(&format!("http://{addr}/v2"), "k", RateLimiter::unlimited(), &settings()).unwrap();
    (cc, seen)
}

fn assert_declared(body: &Value, allowed: &[&str]) {
    for k in body.as_object().expect("a JSON object").keys() {
        assert!(allowed.contains(&k.as_str()), "undeclared field {k} in {body}");
    }
    assert!(body["command_id"].is_string(), "{body}");
}

#[tokio::test]
async fn playback_and_gather_send_spec_fields() {
    let cancel = CancellationToken::new();
    let (cc, seen) = start(&cancel).await;
    let mut play = PlaybackStart::url("https://example.com/ring.mp3", id("p1"));
    play.loop_count = Some(json!("infinity"));
    play.overlay = Some(false);
    play.target_legs = Some("self".into());
    play.client_state = Some("YQ==".into());
    cc.playback_start("v3:a", &play).await.unwrap();
    let mut stop = PlaybackStop::new(id("p2"));
    stop.stop = Some("all".into());
    cc.playback_stop("v3:a", &stop).await.unwrap();
    let mut gather = Gather::new(id("g1"));
    gather.minimum_digits = Some(1);
    gather.maximum_digits = Some(4);
    gather.timeout_millis = Some(10_000);
    gather.terminating_digit = Some("#".into());
    gather.valid_digits = Some("0123456789".into());
    cc.gather("v3:a", &gather).await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let names: Vec<&str> = seen.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(names, ["playback_start", "playback_stop", "gather"]);
    assert_declared(&seen[0].2, PLAYBACK_START);
    assert_eq!(seen[0].2["audio_url"], "https://example.com/ring.mp3");
    assert_eq!(seen[0].2["loop"], "infinity");
    assert_declared(&seen[1].2, PLAYBACK_STOP);
    assert_declared(&seen[2].2, GATHER);
    assert!(seen[2].2["maximum_digits"].is_u64());
    cancel.cancel();
}

#[tokio::test]
async fn codes_the_simulator_does_not_answer() {
    let cancel = CancellationToken::new();
    let (cc, _) = start(&cancel).await;
    let gone = cc.hangup("gone", &Hangup::new(id("h"))).await.unwrap_err();
    assert_eq!((gone.status(), gone.outcome()), (Some(404), Outcome::Gone), "{gone}");
    assert_eq!(gone.errors[0].title, "Resource not found");

    let busy = cc.bridge("busy", &Bridge::new("v3:b", id("b"))).await.unwrap_err();
    assert_eq!(busy.outcome(), Outcome::AlreadyBridged);

    let audio =
        cc.playback_start("noaudio", &PlaybackStart::url("https://x/404.mp3", id("p"))).await.unwrap_err();
    assert_eq!(audio.outcome(), Outcome::Permanent, "a missing audio file is not a gone call");

    let slow = cc.speak("slow", &Speak::new("hi", "female", id("s"))).await.unwrap_err();
    assert_eq!(slow.outcome(), Outcome::Wait { retry_after: Some(Duration::from_secs(2)) });

    let proxy = cc.hangup("proxy", &Hangup::new(id("h2"))).await.unwrap_err();
    assert_eq!((proxy.failure, proxy.errors.len()), (Failure::Http { status: 502 }, 0));
    assert!(matches!(proxy.outcome(), Outcome::Wait { .. }));
    cancel.cancel();
}

#[tokio::test]
async fn an_unreachable_api_is_a_transport_wait() {
    // A port nobody listens on: bind, learn the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cc =
        CallControl::new(&format!("http://127.0.0.1:{port}/v2"), "k", RateLimiter::unlimited(), &settings())
            .unwrap();
    let err = cc.hangup("v3:a", &Hangup::new(id("h"))).await.unwrap_err();
    assert_eq!(err.failure, Failure::Transport, "{err}");
    assert!(matches!(err.outcome(), Outcome::Wait { .. }));
}

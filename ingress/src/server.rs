//! The HTTP server of every role that serves HTTP: a router on hyper, with the limits a public
//! endpoint needs and `axum::serve` does not set.
//!
//! - **Header read timeout** (`CALLFLEET_HTTP_HEADER_TIMEOUT_SECS`): a connection that has not
//!   sent a whole request head in time is closed, so half-sent requests (slowloris) cannot pile
//!   up. Without a timer, hyper waits for ever; `axum::serve` sets none. The timer also runs
//!   while a keep-alive connection idles between requests (hyper's design), so an idle
//!   connection closes after it too: clients should not keep one idle longer (the simulator's
//!   webhook client drops idle connections after 4 s).
//! - **Request timeout** (`CALLFLEET_HTTP_REQUEST_TIMEOUT_SECS`): the whole request, body read
//!   included (handlers read their bodies), answers 408 `request_timeout` past it.
//! - **In-flight limit with load shedding** (`CALLFLEET_HTTP_MAX_IN_FLIGHT`): past it, a request
//!   is answered 503 `overloaded` at once, before its body is read; Telnyx retries a 503.
//! - **Shutdown order**: on the stop signal the listener keeps accepting for the drain period
//!   (while `/readyz` fails, see [`crate::health`]), then closes; open connections finish their
//!   requests and close, for at most the shutdown timeout.
//!
//! - **Request ids**: every answer carries `x-request-id` (the caller's, or a fresh UUID), and
//!   each request runs in a `http` span (debug level) that names it.
//!
//! Written on `hyper_util`'s connection builder rather than `axum::serve`, because the latter
//! exposes neither the timer nor the header timeout; the limits themselves are tower's layers.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use fleet_platform::Config;
use fleet_platform::shutdown::CancellationToken;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::IngressError;
use crate::error::Rejection;

/// The limits and shutdown timing of one HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
    /// How long the listener keeps serving after the stop signal.
    pub drain: Duration,
    /// How long open connections then get to finish.
    pub close_timeout: Duration,
}

impl ServeOptions {
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_timeout: config.http_header_timeout,
            request_timeout: config.http_request_timeout,
            max_in_flight: config.http_max_in_flight,
            drain: config.shutdown_drain,
            close_timeout: config.shutdown_timeout,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled and the drain period is over.
pub async fn serve(
    app: Router,
    listener: TcpListener,
    shutdown: CancellationToken,
    options: ServeOptions,
) -> Result<(), IngressError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Ingress listening.");
    }
    let service = ServiceBuilder::new()
        // Every answer carries an `x-request-id` (the caller's, or a fresh UUID) and every
        // request gets a span with it, shed and timed-out ones included.
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::debug_span!("http", method = %req.method(), path = req.uri().path(), request_id = id)
        }))
        .layer(HandleErrorLayer::new(refusal))
        .load_shed()
        .concurrency_limit(options.max_in_flight)
        .timeout(options.request_timeout)
        .service(app);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(options.header_timeout);
    builder.http2().timer(TokioTimer::new());
    let connections = GracefulShutdown::new();
    let stop = async {
        shutdown.cancelled().await;
        if !options.drain.is_zero() {
            tracing::info!(
                drain_secs = options.drain.as_secs_f64(),
                "Stopping: /readyz fails, still serving while the load balancer notices."
            );
            tokio::time::sleep(options.drain).await;
        }
    };
    tokio::pin!(stop);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, typically: back off instead of spinning.
                    tracing::warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let service = service.clone().map_request(|req: Request<Incoming>| req.map(Body::new));
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = connections.watch(conn.into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "Connection ended with an error.");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.close_timeout, connections.shutdown()).await.is_err() {
        tracing::warn!(
            timeout_secs = options.close_timeout.as_secs_f64(),
            "Connections still open after the shutdown timeout; closing them."
        );
    }
    Ok(())
}

/// What the limits answer, in the JSON error shape of every other refusal.
async fn refusal(error: BoxError) -> Result<Response, Infallible> {
    let rejection = if error.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!("callfleet_http_shed_total").increment(1);
        Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "too many requests in flight; retry")
            .closing()
    } else if error.is::<tower::timeout::error::Elapsed>() {
        Rejection::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request took too long").closing()
    } else {
        tracing::error!(error = %error, "HTTP service failed.");
        Rejection::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error")
    };
    Ok(rejection.into_response())
}

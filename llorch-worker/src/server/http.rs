//! The worker's HTTP API (WORK-3040): axum routes over a [`LocalExecutor`].
//!
//! - `POST /execute` → SSE `started` → `token`* → `end` | `error` (WORK-3050).
//! - `POST /cancel {job_id}` → 202 (idempotent), 404 for an unknown id.
//! - `GET /health` (live: the decode loop makes progress), `GET /ready` (loaded,
//!   accepting and a free slot), `GET /metrics` (WORK-3080), `POST /shutdown`.
//!
//! Client mistakes never give a 500 (WORK-3120): malformed or wrongly typed JSON and
//! out-of-range values give 400 with the error body, a body over [`MAX_BODY_BYTES`]
//! gives 413 (checked on `Content-Length` before reading, and while reading), nesting
//! deeper than serde_json's recursion limit (128) is a parse error. Every response
//! carries `X-Correlation-Id`: the caller's when it is a valid id, else a minted one.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::StreamExt;
use llorch_core::wire::task::{CancelRequest, ExecuteRequest};
use llorch_core::{CancelOutcome, Error, ErrorCode, WorkerExecutor};
use tokio::sync::watch;

use super::executor::LocalExecutor;
use super::metrics::{CONTENT_TYPE, Outcome};

/// Largest request body, bytes (a 4 MiB prompt with JSON escaping fits).
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// The correlation header (ORCH-1092).
pub const CORRELATION_HEADER: &str = "x-correlation-id";
/// SSE comment interval: keeps proxies open and finds gone clients of waiting jobs.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A one-way switch that asks the daemon to shut down (`/shutdown`, signals).
#[derive(Debug, Clone)]
pub struct ShutdownSwitch(Arc<watch::Sender<bool>>);

impl ShutdownSwitch {
    /// An open switch.
    pub fn new() -> Self {
        Self(Arc::new(watch::channel(false).0))
    }

    /// Asks for shutdown (idempotent).
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Waits until shutdown is asked for.
    pub async fn triggered(&self) {
        let mut rx = self.0.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }
}

impl Default for ShutdownSwitch {
    fn default() -> Self {
        Self::new()
    }
}

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    /// The jobs.
    pub exec: LocalExecutor,
    /// Set once the ready callback went through: until then `/execute` answers 503.
    pub accepting: Arc<AtomicBool>,
    /// `/shutdown` flips it.
    pub shutdown: ShutdownSwitch,
}

/// The request's correlation id (an extension set by the middleware).
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

/// The routes, with correlation ids on every response.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/execute", post(execute))
        .route("/cancel", post(cancel))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/shutdown", post(shutdown))
        .fallback(not_found)
        .layer(middleware::from_fn(correlation))
        .with_state(state)
}

/// An error as an HTTP response: its status and `{error_code, message, retriable, details}`.
pub fn error_response(e: &Error) -> Response {
    let status =
        StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(e.to_body())).into_response()
}

fn valid_correlation_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

async fn correlation(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_correlation_id(s))
        .map_or_else(
            || format!("corr-{}", uuid::Uuid::new_v4().simple()),
            str::to_owned,
        );
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(CORRELATION_HEADER, v);
    }
    res
}

/// Reads a body up to `limit` bytes: 413 past it, 400 when the body cannot be read.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, Error> {
    let too_large = || {
        Error::new(
            ErrorCode::PayloadTooLarge,
            format!("the request body exceeds {limit} bytes"),
        )
        .with_details(serde_json::json!({ "limit_bytes": limit }))
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(64 << 10) as usize);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Error::new(
                ErrorCode::InvalidRequest,
                format!("could not read the body: {e}"),
            )
        })?;
        if out.len() + chunk.len() > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn bad_json(e: &serde_json::Error) -> Error {
    Error::new(ErrorCode::InvalidRequest, format!("invalid JSON body: {e}"))
}

/// The request's own mistakes carry the worker's code (WORK-3090).
fn as_invalid_request(mut e: Error) -> Error {
    if e.code == ErrorCode::InvalidParams {
        e.code = ErrorCode::InvalidRequest;
    }
    e
}

async fn execute(
    State(st): State<AppState>,
    Extension(CorrelationId(corr)): Extension<CorrelationId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let refuse = |e: Error| {
        st.exec.metrics().request(Outcome::rejected);
        let id = st.exec.ident();
        tracing::info!(
            event = "job_rejected",
            worker_id = %id.worker_id,
            correlation_id = %corr,
            error_code = %e.code,
            "execute refused"
        );
        error_response(&e)
    };
    if !st.accepting.load(Ordering::SeqCst) {
        let e = if st.exec.is_draining() {
            Error::new(ErrorCode::ShuttingDown, "the worker is shutting down")
        } else {
            Error::new(ErrorCode::WorkerUnavailable, "the worker is still starting")
        };
        return refuse(e);
    }
    let bytes = match read_body(&headers, body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return refuse(e),
    };
    let job = match serde_json::from_slice::<ExecuteRequest>(&bytes) {
        Ok(req) => match req.validate() {
            Ok(job) => job,
            Err(e) => return refuse(as_invalid_request(e)),
        },
        Err(e) => return refuse(bad_json(&e)),
    };
    // The executor counts and logs its own refusals.
    match st.exec.execute_with(job, corr).await {
        Ok(stream) => {
            let events = stream.map(|ev| {
                Ok::<_, Infallible>(Event::default().event(ev.name()).data(ev.data_json()))
            });
            Sse::new(events)
                .keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE))
                .into_response()
        }
        Err(e) => error_response(&as_invalid_request(e)),
    }
}

async fn cancel(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match read_body(&headers, body, 64 << 10).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let req: CancelRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return error_response(&bad_json(&e)),
    };
    match st.exec.cancel(&req.job_id).await {
        Ok(outcome) => {
            let status = match outcome {
                CancelOutcome::Cancelled => "cancelled",
                CancelOutcome::AlreadyFinished => "already_finished",
            };
            (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "job_id": req.job_id, "status": status })),
            )
                .into_response()
        }
        Err(e) => error_response(&e),
    }
}

async fn health(State(st): State<AppState>) -> Response {
    let report = st.exec.health_report();
    let status = if report.health.status == "unhealthy" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(report)).into_response()
}

async fn ready(State(st): State<AppState>) -> Response {
    let report = st.exec.health_report();
    let why = if report.health.status != "ok" {
        Some(if st.exec.is_draining() {
            Error::new(ErrorCode::ShuttingDown, "the worker is shutting down")
        } else {
            Error::new(ErrorCode::WorkerUnavailable, "the worker is unhealthy")
        })
    } else if !st.accepting.load(Ordering::SeqCst) {
        Some(Error::new(
            ErrorCode::WorkerUnavailable,
            "the worker is still starting",
        ))
    } else if report.health.slots_free == 0 {
        Some(Error::new(
            ErrorCode::WorkerUnavailable,
            "every slot is taken",
        ))
    } else {
        None
    };
    match why {
        Some(e) => error_response(&e),
        None => Json(serde_json::json!({
            "ready": true,
            "slots_free": report.health.slots_free,
        }))
        .into_response(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        st.exec.metrics().encode(),
    )
        .into_response()
}

async fn shutdown(State(st): State<AppState>) -> Response {
    st.shutdown.trigger();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "draining" })),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(&Error::new(ErrorCode::NotFound, "no such route"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_ids_are_bounded_plain_text() {
        assert!(valid_correlation_id("corr-1:a.b_c"));
        for bad in ["", "a b", "x\r\ny", "é", &"a".repeat(129)] {
            assert!(!valid_correlation_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn parse_errors_are_invalid_request_and_params_errors_are_renamed() {
        // Nesting inside an unknown field (collected as a JSON value) hits the limit.
        let deep = format!(
            r#"{{"job_id":"j","prompt":"x","deep":{}{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = serde_json::from_str::<ExecuteRequest>(&deep).unwrap_err();
        assert!(e.to_string().contains("recursion limit"), "{e}");
        assert_eq!(bad_json(&e).code, ErrorCode::InvalidRequest);
        let e = as_invalid_request(Error::new(ErrorCode::InvalidParams, "x"));
        assert_eq!(e.code.http_status(), 400);
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}

//! Callbacks to the pool manager that spawned the worker (WORK-3011, POOL-2022).
//!
//! Ready: `POST {url}/v2/internal/workers/ready` with a [`ReadyCallback`] and
//! `Authorization: Bearer {token}` (POOL-2100). Failure: `POST
//! {url}/v2/internal/workers/failed` with a [`FailedCallback`], best effort.
//! The token is never logged.

use std::time::Duration;

use llorch_core::wire::pool::ReadyCallback;
use llorch_core::{Error, ErrorBody, ErrorCode, WorkerId};
use serde::Serialize;

/// Path of the ready callback.
pub const READY_PATH: &str = "/v2/internal/workers/ready";
/// Path of the failure callback.
pub const FAILED_PATH: &str = "/v2/internal/workers/failed";
/// Timeout of one callback attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts of the ready callback when the pool manager cannot be reached or answers 5xx.
pub const READY_ATTEMPTS: u32 = 3;

/// `POST /v2/internal/workers/failed`: a worker that could not start says why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedCallback {
    /// The worker.
    pub worker_id: WorkerId,
    /// The error, with its SPEC code.
    pub error: ErrorBody,
}

/// Where to call back, and the shared secret.
#[derive(Clone)]
pub struct CallbackTarget {
    /// Base URL of the pool manager (`http://127.0.0.1:9200`).
    pub url: String,
    /// Bearer token for this worker.
    pub token: String,
}

impl std::fmt::Debug for CallbackTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackTarget")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl CallbackTarget {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url.trim_end_matches('/'))
    }

    fn client() -> Result<reqwest::Client, Error> {
        reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| Error::new(ErrorCode::Internal, format!("HTTP client: {e}")))
    }

    /// Reports the worker ready; retries transient failures, fails on a refusal.
    pub async fn ready(&self, body: &ReadyCallback) -> Result<(), Error> {
        let client = Self::client()?;
        let url = self.endpoint(READY_PATH);
        let mut last = String::new();
        for attempt in 0..READY_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            let res = client
                .post(&url)
                .bearer_auth(&self.token)
                .json(body)
                .send()
                .await;
            match res {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    return Err(Error::new(
                        ErrorCode::WorkerStartFailed,
                        format!(
                            "the pool manager refused the ready callback ({status}): {}",
                            text.chars().take(300).collect::<String>()
                        ),
                    ));
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(Error::new(
            ErrorCode::WorkerStartFailed,
            format!("the ready callback to {url} failed: {last}"),
        ))
    }

    /// Tells the pool manager the worker failed to start (best effort: errors ignored).
    pub async fn failed(&self, worker_id: &WorkerId, err: &Error) {
        let Ok(client) = Self::client() else {
            return;
        };
        let body = FailedCallback {
            worker_id: worker_id.clone(),
            error: err.to_body(),
        };
        let _ = client
            .post(self.endpoint(FAILED_PATH))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await;
    }
}

//! Stable error codes (ORCH-1120, POOL-2090, WORK-3090) and the error type of the seams.
//!
//! Every error that crosses a process boundary is an [`ErrorBody`]
//! `{error_code, message, retriable, details}`; in Rust it is an [`Error`].
//! Codes are stable strings (`QUEUE_FULL`, …); worker codes pass through the
//! orchestrator to clients unchanged (ORCH-1122).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // --- orchestrator (ORCH-1120) ---
    /// Admission refused the job: model unknown or retired, context too long, budget spent.
    AdmissionReject,
    /// The queue is full (ORCH-1012); retry after the advertised delay.
    QueueFull,
    /// A request parameter is invalid.
    InvalidParams,
    /// No pool can host the job now.
    PoolUnavailable,
    /// The chosen worker cannot be reached or refused the job.
    WorkerUnavailable,
    /// A worker did not answer in time.
    WorkerTimeout,
    /// A bug or an unexpected condition; details are in the server's logs.
    Internal,
    // --- pool manager (POOL-2090) ---
    /// Not enough free VRAM on the GPU to start the worker.
    InsufficientVram,
    /// The GPU is missing, unhealthy or reports driver errors.
    GpuUnavailable,
    /// The model cannot be found or fetched.
    ModelNotFound,
    /// The worker process could not be started or exited during start-up.
    WorkerStartFailed,
    /// The worker did not report ready in time.
    WorkerStartTimeout,
    /// No worker with that id.
    WorkerNotFound,
    // --- worker (WORK-3090) ---
    /// The request to the worker is invalid.
    InvalidRequest,
    /// The model file could not be loaded.
    ModelLoadFailed,
    /// The device does not have the memory the model needs (at start-up).
    VramInsufficient,
    /// The device ran out of memory while running a job.
    VramOom,
    /// A CUDA call failed.
    CudaError,
    /// A job ran past its time limit.
    InferenceTimeout,
    /// The job was cancelled (by the client, a disconnect or the orchestrator).
    Cancelled,
    // --- EXT: HTTP-level conditions shared by all services ---
    /// Missing or wrong bearer token.
    Unauthorized,
    /// No such task, session, route or catalog entry.
    NotFound,
    /// The request body exceeds the size limit.
    PayloadTooLarge,
    /// The service is shutting down or draining and takes no new work.
    ShuttingDown,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 24] = [
        Self::AdmissionReject,
        Self::QueueFull,
        Self::InvalidParams,
        Self::PoolUnavailable,
        Self::WorkerUnavailable,
        Self::WorkerTimeout,
        Self::Internal,
        Self::InsufficientVram,
        Self::GpuUnavailable,
        Self::ModelNotFound,
        Self::WorkerStartFailed,
        Self::WorkerStartTimeout,
        Self::WorkerNotFound,
        Self::InvalidRequest,
        Self::ModelLoadFailed,
        Self::VramInsufficient,
        Self::VramOom,
        Self::CudaError,
        Self::InferenceTimeout,
        Self::Cancelled,
        Self::Unauthorized,
        Self::NotFound,
        Self::PayloadTooLarge,
        Self::ShuttingDown,
    ];

    /// The stable text form, e.g. `"QUEUE_FULL"`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AdmissionReject => "ADMISSION_REJECT",
            QueueFull => "QUEUE_FULL",
            InvalidParams => "INVALID_PARAMS",
            PoolUnavailable => "POOL_UNAVAILABLE",
            WorkerUnavailable => "WORKER_UNAVAILABLE",
            WorkerTimeout => "WORKER_TIMEOUT",
            Internal => "INTERNAL",
            InsufficientVram => "INSUFFICIENT_VRAM",
            GpuUnavailable => "GPU_UNAVAILABLE",
            ModelNotFound => "MODEL_NOT_FOUND",
            WorkerStartFailed => "WORKER_START_FAILED",
            WorkerStartTimeout => "WORKER_START_TIMEOUT",
            WorkerNotFound => "WORKER_NOT_FOUND",
            InvalidRequest => "INVALID_REQUEST",
            ModelLoadFailed => "MODEL_LOAD_FAILED",
            VramInsufficient => "VRAM_INSUFFICIENT",
            VramOom => "VRAM_OOM",
            CudaError => "CUDA_ERROR",
            InferenceTimeout => "INFERENCE_TIMEOUT",
            Cancelled => "CANCELLED",
            Unauthorized => "UNAUTHORIZED",
            NotFound => "NOT_FOUND",
            PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ShuttingDown => "SHUTTING_DOWN",
        }
    }

    /// Whether the same request may succeed if sent again later (ORCH-1121).
    ///
    /// Retriable: `QUEUE_FULL`, `POOL_UNAVAILABLE`, `WORKER_TIMEOUT` (SPEC), and the
    /// transient conditions `GPU_UNAVAILABLE`, `WORKER_START_TIMEOUT`, `VRAM_OOM`,
    /// `SHUTTING_DOWN`. Everything else would fail the same way again.
    pub fn retriable(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            QueueFull
                | PoolUnavailable
                | WorkerTimeout
                | GpuUnavailable
                | WorkerStartTimeout
                | VramOom
                | ShuttingDown
        )
    }

    /// The HTTP status a service answers with when the error ends a request.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            AdmissionReject | InvalidParams | InvalidRequest => 400,
            Unauthorized => 401,
            ModelNotFound | WorkerNotFound | NotFound => 404,
            PayloadTooLarge => 413,
            QueueFull => 429,
            Cancelled => 499,
            Internal | ModelLoadFailed | CudaError => 500,
            WorkerStartFailed => 502,
            PoolUnavailable | WorkerUnavailable | GpuUnavailable | VramOom | ShuttingDown => 503,
            WorkerTimeout | WorkerStartTimeout | InferenceTimeout => 504,
            InsufficientVram | VramInsufficient => 507,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, UnknownErrorCode> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

/// A text that names no [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

/// The JSON error body every service returns: `{error_code, message, retriable, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The stable code.
    pub error_code: ErrorCode,
    /// A human-readable explanation (never a prompt or a secret).
    pub message: String,
    /// Whether retrying later may succeed.
    pub retriable: bool,
    /// Structured context (field names, limits, retry delays), or `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// The error type of the seams and the libraries: a code, a message and optional details.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: String,
    /// Structured context, or `None`.
    pub details: Option<serde_json::Value>,
}

impl Error {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Whether retrying later may succeed.
    pub fn retriable(&self) -> bool {
        self.code.retriable()
    }

    /// The wire form.
    pub fn to_body(&self) -> ErrorBody {
        ErrorBody {
            error_code: self.code,
            message: self.message.clone(),
            retriable: self.code.retriable(),
            details: self.details.clone(),
        }
    }
}

impl From<ErrorBody> for Error {
    fn from(b: ErrorBody) -> Self {
        Self {
            code: b.error_code,
            message: b.message,
            details: b.details,
        }
    }
}

/// `Result` with the seams' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text_and_json() {
        for c in ErrorCode::ALL {
            assert_eq!(c.as_str().parse::<ErrorCode>().unwrap(), c);
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(j, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&j).unwrap(), c);
            assert!((400..600).contains(&c.http_status()));
        }
        assert!("NOPE".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn spec_retriable_set() {
        let retriable: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.retriable())
            .collect();
        for c in [
            ErrorCode::QueueFull,
            ErrorCode::PoolUnavailable,
            ErrorCode::WorkerTimeout,
        ] {
            assert!(retriable.contains(&c), "{c} must be retriable (ORCH-1121)");
        }
        for c in [
            ErrorCode::AdmissionReject,
            ErrorCode::InvalidParams,
            ErrorCode::InvalidRequest,
            ErrorCode::Cancelled,
            ErrorCode::Internal,
        ] {
            assert!(!c.retriable(), "{c}");
        }
        assert_eq!(ErrorCode::QueueFull.http_status(), 429);
    }

    #[test]
    fn body_shape() {
        let e = Error::new(ErrorCode::QueueFull, "queue is full")
            .with_details(serde_json::json!({"retry_after_ms": 250}));
        let v = serde_json::to_value(e.to_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "error_code": "QUEUE_FULL",
                "message": "queue is full",
                "retriable": true,
                "details": {"retry_after_ms": 250}
            })
        );
        let back: ErrorBody = serde_json::from_value(v).unwrap();
        assert_eq!(Error::from(back), e);
        assert_eq!(e.to_string(), "QUEUE_FULL: queue is full");
    }
}

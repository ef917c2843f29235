//! Plumbing of `worker-orcd`: logging and exit codes.

use llorch_core::ErrorCode;

/// Exit code for a failed worker, by SPEC code (WORK-3011): 3 the model could not be
/// loaded, 4 not enough device memory, 5 the device is missing or failed (`cuda:N`
/// in a build without the CUDA backend included), 2 a bad argument, 1 anything else.
pub fn exit_code(code: ErrorCode) -> u8 {
    match code {
        ErrorCode::InvalidRequest | ErrorCode::InvalidParams => crate::EXIT_USAGE,
        ErrorCode::ModelLoadFailed | ErrorCode::ModelNotFound => 3,
        ErrorCode::VramInsufficient | ErrorCode::InsufficientVram | ErrorCode::VramOom => 4,
        ErrorCode::GpuUnavailable | ErrorCode::CudaError => 5,
        _ => 1,
    }
}

/// JSON log lines on stdout (WORK-3080); `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

//! The demo model and the model cache directory (POOL-2031, issue 4).
//!
//! The demo model is gemma-3-270m Q4_K_M, fetched by
//! `scripts/fetch-demo-model.sh` into the model cache. Tests that need it call
//! [`require_demo_model`], which panics (never skips) when it is absent.

use std::path::PathBuf;

/// The environment variable that overrides the model cache directory.
pub const MODEL_DIR_ENV: &str = "LLORCH_MODEL_DIR";
/// File name of the demo model in the model cache.
pub const DEMO_MODEL_FILE: &str = "gemma-3-270m-q4_k_m.gguf";
/// sha256 of the demo model file.
pub const DEMO_MODEL_SHA256: &str =
    "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
/// Size of the demo model file in bytes.
pub const DEMO_MODEL_SIZE: u64 = 253_113_024;

/// The model cache: `$LLORCH_MODEL_DIR`, else `$HOME/.cache/llama-orch/models`
/// (`./.cache/llama-orch/models` without a home). The one place that reads the
/// environment for it.
pub fn model_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("llama-orch").join("models")
}

/// Where compiled CUDA kernels are cached: `kernels/` beside the model cache.
pub fn kernel_cache_dir() -> PathBuf {
    let models = model_cache_dir();
    models
        .parent()
        .map_or_else(|| models.join("kernels"), |p| p.join("kernels"))
}

/// Where the demo model lives: [`model_cache_dir`]/[`DEMO_MODEL_FILE`].
pub fn demo_model_path() -> PathBuf {
    model_cache_dir().join(DEMO_MODEL_FILE)
}

/// The demo model's path for tests; panics with "demo model missing: run
/// scripts/fetch-demo-model.sh" when the file is absent (tests never skip).
#[allow(clippy::panic)]
pub fn require_demo_model() -> PathBuf {
    let p = demo_model_path();
    if !p.is_file() {
        panic!(
            "demo model missing: run scripts/fetch-demo-model.sh (looked for {})",
            p.display()
        );
    }
    p
}

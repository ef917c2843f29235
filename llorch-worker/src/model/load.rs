//! Opening a model file for a device.

use std::path::Path;
use std::sync::Arc;

use llorch_core::{Error, ErrorCode};

use super::{ModelConfig, Weights};
use crate::cpu::CpuBackend;
use crate::gguf::GgufFile;

/// Maps a GGUF file and reads its configuration and weights (WORK-3030).
pub fn open(path: &Path) -> Result<(Arc<GgufFile>, ModelConfig, Weights), Error> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorCode::ModelLoadFailed,
            format!("{}: {e}", path.display()),
        )
    };
    let file = Arc::new(GgufFile::open(path).map_err(|e| fail(&e))?);
    let cfg = ModelConfig::from_metadata(file.metadata()).map_err(|e| fail(&e))?;
    let weights = Weights::load(Arc::clone(&file), &cfg).map_err(|e| fail(&e))?;
    Ok((file, cfg, weights))
}

/// A CPU backend for the model at `path` with room for `ctx_tokens` KV positions.
pub fn cpu_backend(path: &Path, ctx_tokens: usize, page_size: usize) -> Result<CpuBackend, Error> {
    let (_, cfg, weights) = open(path)?;
    let pages = ctx_tokens.div_ceil(page_size).max(1);
    Ok(CpuBackend::new(cfg, weights, pages, page_size))
}

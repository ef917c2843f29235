//! Opening a model file: configuration, weights and tokenizer, then a backend.

use std::path::Path;
use std::sync::Arc;

use llorch_core::{Error, ErrorCode};

use super::{ModelConfig, Weights};
use crate::cpu::CpuBackend;
use crate::engine::{Engine, EngineConfig};
use crate::gguf::GgufFile;
use crate::tokenizer::Tokenizer;

/// Tokens per KV page.
pub const PAGE_SIZE: usize = 16;

/// A model read from its GGUF file, ready to put on a device.
#[derive(Debug)]
pub struct LoadedModel {
    /// The mapped file.
    pub file: Arc<GgufFile>,
    /// Its configuration.
    pub cfg: ModelConfig,
    /// Its weights (views into the file).
    pub weights: Weights,
    /// Its tokenizer.
    pub tokenizer: Arc<Tokenizer>,
}

/// Maps a GGUF file and reads its configuration, weights and tokenizer (WORK-3030).
pub fn load(path: &Path) -> Result<LoadedModel, Error> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorCode::ModelLoadFailed,
            format!("{}: {e}", path.display()),
        )
    };
    let file = Arc::new(GgufFile::open(path).map_err(|e| fail(&e))?);
    let cfg = ModelConfig::from_metadata(file.metadata()).map_err(|e| fail(&e))?;
    let weights = Weights::load(Arc::clone(&file), &cfg).map_err(|e| fail(&e))?;
    let tokenizer = Tokenizer::from_metadata(file.metadata()).map_err(|e| fail(&e))?;
    if tokenizer.vocab_size() != weights.vocab {
        return Err(fail(&format!(
            "the tokenizer has {} tokens but the output layer {}",
            tokenizer.vocab_size(),
            weights.vocab
        )));
    }
    Ok(LoadedModel {
        file,
        cfg,
        weights,
        tokenizer: Arc::new(tokenizer),
    })
}

impl LoadedModel {
    /// A CPU backend with room for `kv_tokens` positions (SYS-0002 EXT: an explicit CPU device).
    pub fn into_cpu_backend(self, kv_tokens: usize) -> (CpuBackend, Arc<Tokenizer>) {
        let pages = kv_tokens.div_ceil(PAGE_SIZE).max(1);
        (
            CpuBackend::new(self.cfg, self.weights, pages, PAGE_SIZE),
            self.tokenizer,
        )
    }

    /// A CPU engine whose KV cache holds `max_seqs` sequences of `max_ctx` tokens.
    pub fn into_cpu_engine(self, cfg: EngineConfig) -> Engine {
        let max_ctx = cfg.max_ctx.min(self.cfg.ctx_len);
        let cfg = EngineConfig { max_ctx, ..cfg };
        let (backend, tok) =
            self.into_cpu_backend(cfg.max_seqs * max_ctx.next_multiple_of(PAGE_SIZE));
        Engine::new(Box::new(backend), tok, cfg)
    }
}

/// A CPU backend for the model at `path` with room for `ctx_tokens` KV positions.
pub fn cpu_backend(path: &Path, ctx_tokens: usize) -> Result<CpuBackend, Error> {
    Ok(load(path)?.into_cpu_backend(ctx_tokens).0)
}

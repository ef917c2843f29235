//! Opening a model file: configuration, weights and tokenizer, then a backend.

use std::path::Path;
use std::sync::Arc;

use llorch_core::{Device, Error, ErrorCode};
use llorch_cuda::CudaError;

use super::{ModelConfig, Weights};
use crate::cpu::CpuBackend;
use crate::cuda::{CudaBackend, CudaOptions, MatmulPath};
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

/// The worker error for a failure of the GPU path (WORK-3090 codes).
pub fn cuda_error(e: CudaError) -> Error {
    let code = match &e {
        CudaError::NoDriver | CudaError::NoCompiler | CudaError::NoDevice { .. } => {
            ErrorCode::GpuUnavailable
        }
        CudaError::OutOfMemory { .. } => ErrorCode::VramInsufficient,
        CudaError::Compile { .. } | CudaError::Shape { .. } | CudaError::Driver(_) => {
            ErrorCode::CudaError
        }
    };
    Error::new(code, e.to_string())
}

impl LoadedModel {
    /// A CUDA backend on device `ordinal` with room for `kv_tokens` positions and
    /// steps of up to `max_step_tokens` tokens (SYS-0002: all in VRAM or a typed error).
    pub fn into_cuda_backend(
        self,
        ordinal: usize,
        kv_tokens: usize,
        max_step_tokens: usize,
    ) -> Result<(CudaBackend, Arc<Tokenizer>), Error> {
        self.into_cuda_backend_on(ordinal, kv_tokens, max_step_tokens, MatmulPath::default())
    }

    /// [`LoadedModel::into_cuda_backend`] with the matrix kernels of `path`.
    pub fn into_cuda_backend_on(
        self,
        ordinal: usize,
        kv_tokens: usize,
        max_step_tokens: usize,
        path: MatmulPath,
    ) -> Result<(CudaBackend, Arc<Tokenizer>), Error> {
        self.into_cuda_backend_with(&CudaOptions {
            ordinal,
            num_pages: kv_tokens.div_ceil(PAGE_SIZE).max(1),
            page_size: PAGE_SIZE,
            max_step_tokens,
            max_logit_rows: 64,
            kernel_cache: Some(crate::demo::kernel_cache_dir()),
            tensor_cores: path == MatmulPath::TensorCores,
            graph_overlap: true,
            overlap_max_rows: crate::cuda::OVERLAP_MAX_ROWS,
        })
    }

    /// A CUDA backend built with `opts`.
    pub fn into_cuda_backend_with(
        self,
        opts: &CudaOptions,
    ) -> Result<(CudaBackend, Arc<Tokenizer>), Error> {
        let b = CudaBackend::new(self.cfg, &self.weights, opts).map_err(cuda_error)?;
        Ok((b, self.tokenizer))
    }

    /// An engine on `device` whose KV cache holds `max_seqs` sequences of `max_ctx` tokens.
    pub fn into_engine(self, device: Device, cfg: EngineConfig) -> Result<Engine, Error> {
        self.into_engine_on(device, MatmulPath::default(), cfg)
    }

    /// [`LoadedModel::into_engine`] with the GPU matrix kernels of `path` (ignored on the CPU).
    pub fn into_engine_on(
        self,
        device: Device,
        path: MatmulPath,
        cfg: EngineConfig,
    ) -> Result<Engine, Error> {
        match device {
            Device::Cpu => Ok(self.into_cpu_engine(cfg)),
            Device::Cuda(gpu) => {
                let max_ctx = cfg.max_ctx.min(self.cfg.ctx_len);
                let cfg = EngineConfig { max_ctx, ..cfg };
                let kv = cfg.max_seqs * max_ctx.next_multiple_of(PAGE_SIZE);
                let step = cfg.max_step_tokens.max(cfg.max_seqs);
                let (backend, tok) = self.into_cuda_backend_on(gpu.0 as usize, kv, step, path)?;
                Ok(Engine::new(Box::new(backend), tok, cfg))
            }
        }
    }
}

/// A CPU backend for the model at `path` with room for `ctx_tokens` KV positions.
pub fn cpu_backend(path: &Path, ctx_tokens: usize) -> Result<CpuBackend, Error> {
    Ok(load(path)?.into_cpu_backend(ctx_tokens).0)
}

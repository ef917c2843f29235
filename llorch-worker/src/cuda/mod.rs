//! The CUDA compute backend: the whole model step in device memory, through the
//! kernels of `llorch-cuda` (SYS-0002: weights, KV cache and activations in VRAM,
//! no host fallback). Draws from a row's 64 best logits run on the device with the
//! CPU sampler's stream and arithmetic; the others (penalties, untruncated sampling)
//! use the CPU sampler on the rows of logits copied back.

mod backend;
mod pass;
mod weights;

pub use backend::{CudaBackend, CudaOptions, OVERLAP_MAX_ROWS};

/// Which kernels multiply matrices on a GPU. Fixed for the life of a loaded model: the
/// two give different bits (each is batch-invariant on its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MatmulPath {
    /// Tensor cores: integer formats with 16-bit quantized inputs and exact integer block
    /// sums, float formats with half-precision operands; f32 sums across blocks.
    #[default]
    TensorCores,
    /// f32 lanes: f32 operands and sums (lowest latency for one stream on small models).
    F32Lanes,
}

impl std::str::FromStr for MatmulPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tensor-cores" => Ok(Self::TensorCores),
            "f32" => Ok(Self::F32Lanes),
            other => Err(format!("unknown matmul path {other:?} (tensor-cores, f32)")),
        }
    }
}

impl std::fmt::Display for MatmulPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::TensorCores => "tensor-cores",
            Self::F32Lanes => "f32",
        })
    }
}

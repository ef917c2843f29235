//! The CUDA compute backend: the whole model step in device memory, through the
//! kernels of `llorch-cuda` (SYS-0002: weights, KV cache and activations in VRAM,
//! no host fallback). Draws use the same sampler as the CPU backend, on the rows of
//! logits copied back.

mod backend;
mod pass;
mod weights;

pub use backend::{CudaBackend, CudaOptions};

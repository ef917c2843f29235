//! The CPU compute backend: SIMD-friendly kernels on quantized blocks, all cores.

pub mod matmul;
pub mod qdot;

//! The CPU compute backend: kernels on quantized blocks, all cores.

pub mod attention;
mod backend;
pub mod matmul;
pub mod ops;
pub mod qdot;

pub use backend::CpuBackend;

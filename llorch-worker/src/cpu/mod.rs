//! The CPU compute backend: kernels on quantized blocks, all cores.

pub mod attention;
mod backend;
pub mod lanes;
pub mod matmul;
pub mod ops;
pub mod qbatch;
pub mod qdot;
pub mod qdot16;
pub mod simd;
pub mod unpack;

pub use backend::CpuBackend;

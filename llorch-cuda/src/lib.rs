//! Hand-written CUDA kernels and their safe launchers.
//!
//! Kernels live as `.cu` sources embedded in the crate ([`kernels::source`]), are
//! compiled with NVRTC when a [`Gpu`] opens and cached on disk by (source hash, GPU
//! arch). The crate always compiles without CUDA installed: the driver and the
//! compiler are loaded at run time, and their absence is a typed error
//! ([`CudaError::NoDriver`], [`CudaError::NoCompiler`]). It knows nothing about
//! models; `llorch-worker` builds its CUDA backend from these launchers.
//!
//! Every kernel is batch-invariant (SYS-0003 EXT): a row's result never depends on
//! how many rows a launch has.
//!
//! Matrix products: [`Gpu::qmm`] takes f32 inputs for every format (f16 tensor cores or
//! f32 lanes); for block-quantized formats, [`Gpu::quantize_acts`] (or a norm/gate
//! kernel given a [`QActs`]) quantizes the inputs once (one scale per 32 columns, per
//! 256 for the k-quants: [`QGroup`]) and [`Gpu::qmm_q`] multiplies them with exact
//! integer block sums. [`Gpu::row_topk`] and [`Gpu::draw_rows`] keep
//! sampling on the device.
//!
//! ```no_run
//! # fn main() -> Result<(), llorch_cuda::CudaError> {
//! use llorch_cuda::{Gpu, QFormat};
//! let gpu = Gpu::open(0, None)?;
//! // A 2×8 F32 matrix times one row of 8 inputs.
//! let w: Vec<f32> = (0..16).map(|i| i as f32).collect();
//! let w = gpu.upload(bytemuck::cast_slice::<f32, u8>(&w))?;
//! let x = gpu.upload(&[1.0f32; 8])?;
//! let mut y = gpu.alloc::<f32>(2)?;
//! gpu.qmm(QFormat::F32, &w.as_view(), 2, 8, &x.as_view(), 1, &mut y.as_view_mut())?;
//! let mut out = [0.0f32; 2];
//! gpu.read(&y.as_view(), &mut out)?;
//! assert_eq!(out, [28.0, 92.0]);
//! # Ok(()) }
//! ```

pub mod compile;
mod error;
mod gpu;
mod graph;
pub mod kernels;
mod ops;
mod staging;

pub use cudarc::driver::{CudaSlice, CudaView, CudaViewMut};
pub use error::{CudaError, Result};
pub use gpu::{Gpu, IndexBuf, Mark, device_count, driver_available};
pub use graph::Graph;
pub use kernels::{Kernel, QFormat, QK_TILES, QQ_TILES, QS_TILES};
pub use ops::{
    AttnDims, AttnPlan, AttnSplit, DecodeProducts, DrawBuf, DrawParams, MAX_HEAD_DIM, ProductPart,
    QActs, QGroup, QkvOp, TOPK_MAX, TopKScratch, WideProducts,
};
pub use staging::Staging;

//! Safe launchers: each checks that its buffers hold what the kernel will touch,
//! then queues the kernel on the GPU's stream. Index contents are checked when an
//! [`crate::IndexBuf`] or [`AttnPlan`] is filled, so no launch reads or writes outside its
//! buffers. Each launch is an `unsafe` block with its `// SAFETY:` reasoning.

mod attention;
mod draw;
mod matmul;
mod qmm_q;
mod qmm_staged;
mod qmv;
mod rows;
mod topk;

pub use attention::{AttnDims, AttnPlan, AttnSplit};
pub use draw::{DrawBuf, DrawParams};
pub use qmm_q::{ProductPart, QActs, QGroup};
pub use qmm_staged::WideProducts;
pub(crate) use qmm_staged::staged_smem;
pub use qmv::DecodeProducts;
pub(crate) use qmv::kd_smem;
pub use rows::QkvOp;
pub use topk::TopKScratch;

use cudarc::driver::LaunchConfig;

use crate::error::{CudaError, Result};

/// Threads per block of the matrix kernel, rows per warp and tokens per block
/// (must match `matmul.cu`).
const QMM_WARPS: usize = 4;
const QMM_TT: usize = 8;
/// Warps of a tensor-core block (`mma.cu`).
const TC_WARPS: usize = 8;
/// Rows of at most this many values are read by one warp; longer ones by four.
const QMM_SHORT_ROW: usize = 1024;
/// Most candidates [`crate::Gpu::row_topk`] keeps per row (`topk.cu`).
pub const TOPK_MAX: usize = 64;
/// Logits per slice of the first top-k pass (`topk.cu`).
const TOPK_SLICE: usize = 4096;
/// Largest head width the row and attention kernels take.
pub const MAX_HEAD_DIM: usize = 256;

fn shape(kernel: &'static str, ok: bool, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(CudaError::Shape { kernel, why: why() })
    }
}

fn cfg(grid: (usize, usize), block: usize) -> Result<LaunchConfig> {
    shape(
        "launch",
        grid.0 <= i32::MAX as usize && grid.1 <= 65_535,
        || format!("grid {grid:?} too large"),
    )?;
    Ok(LaunchConfig {
        grid_dim: (grid.0.max(1) as u32, grid.1.max(1) as u32, 1),
        block_dim: (block as u32, 1, 1),
        shared_mem_bytes: 0,
    })
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| CudaError::Shape {
        kernel: "launch",
        why: format!("{v} does not fit a 32-bit index"),
    })
}

/// Null for an absent optional pointer argument.
const NULL: u64 = 0;

/// Pushes `w`, or a null pointer when absent (kernels skip null optional inputs).
fn opt_arg<'a>(
    b: &mut cudarc::driver::LaunchArgs<'a>,
    w: Option<&'a cudarc::driver::CudaView<'_, f32>>,
) {
    use cudarc::driver::PushKernelArg;
    match w {
        Some(w) => b.arg(w),
        None => b.arg(&NULL),
    };
}

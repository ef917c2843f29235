//! Launchers of the matrix products and embedding rows.
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, CudaViewMut, DevicePtr, PushKernelArg};

use super::*;
use crate::error::Result;
use crate::gpu::{Gpu, IndexBuf};
use crate::kernels::{Kernel, QFormat, TC_TILES};
use crate::ops::ProductPart;
use crate::ops::qmm_q::{part_rows, push_parts};

impl Gpu {
    /// `y[t][j] = Σ_k w[j][k] · x[t][k]` for `ntok` rows of `x` and `rows` rows of `w`
    /// (GGUF blocks of `fmt`, `cols` values each). Batch-invariant.
    #[allow(clippy::too_many_arguments)]
    pub fn qmm(
        &self,
        fmt: QFormat,
        w: &CudaView<'_, u8>,
        rows: usize,
        cols: usize,
        x: &CudaView<'_, f32>,
        ntok: usize,
        y: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        check_product(self, "qmm", fmt, w, rows, cols, ntok, y)?;
        check_inputs(x, ntok, cols)?;
        if rows == 0 || ntok == 0 {
            return Ok(());
        }
        // Tensor cores for every matrix when enabled (the output projection included:
        // 64-sequence decode +21%, batch 1 +3% over f32 lanes); the choice never
        // depends on the step.
        if self.tensor_cores() {
            return self.qmm_tc(fmt, cols, x, ntok, &mut [ProductPart { w, rows, y }]);
        }
        // Warps sharing a row from the matrix's shape alone (batch invariance): four
        // for long rows, one for short. Rows per warp group from the step: one for
        // decode-sized steps (more blocks), four for larger ones (inputs reused).
        let split: u8 = if cols > QMM_SHORT_ROW { 4 } else { 1 };
        let group_rows: u8 = if ntok <= QMM_TT { 1 } else { 4 };
        let rows_per_block = usize::from(group_rows) * QMM_WARPS / usize::from(split);
        // One dimension, token tiles fastest (see matmul.cu).
        let blocks = ntok.div_ceil(QMM_TT) * rows.div_ceil(rows_per_block);
        let c = cfg((blocks, 1), QMM_WARPS * 32)?;
        let (rows, cols, ntok) = (int(rows)?, int(cols)?, int(ntok)?);
        let f = self.func(Kernel::Qmm {
            fmt,
            split,
            rows: group_rows,
        });
        let mut b = self.stream.launch_builder(f);
        b.arg(w).arg(&rows).arg(&cols).arg(x).arg(&ntok).arg(y);
        // SAFETY: the kernel reads `rows * row_bytes` weight bytes, `ntok * cols`
        // inputs and writes `ntok * rows` outputs, all checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// [`Gpu::qmm`] of several matrices of one format and width over the same inputs
    /// (q/k/v, gate/up): one tensor-core launch for up to three matrices (the same
    /// bits as one product each), else one product each.
    pub fn qmm_group(
        &self,
        fmt: QFormat,
        cols: usize,
        x: &CudaView<'_, f32>,
        ntok: usize,
        parts: &mut [ProductPart<'_, '_, '_>],
    ) -> Result<()> {
        if !self.tensor_cores() || parts.len() > 3 {
            for p in parts.iter_mut() {
                self.qmm(fmt, p.w, p.rows, cols, x, ntok, p.y)?;
            }
            return Ok(());
        }
        for p in parts.iter() {
            check_product(self, "qmm", fmt, p.w, p.rows, cols, ntok, p.y)?;
        }
        check_inputs(x, ntok, cols)?;
        self.qmm_tc(fmt, cols, x, ntok, parts)
    }

    /// [`Gpu::qmm_group`] on tensor cores (half-precision operands, f32 sums), 1-3
    /// matrices; checked by the callers.
    fn qmm_tc(
        &self,
        fmt: QFormat,
        cols: usize,
        x: &CudaView<'_, f32>,
        ntok: usize,
        parts: &mut [ProductPart<'_, '_, '_>],
    ) -> Result<()> {
        shape("qmm", cols.is_multiple_of(32), || {
            format!("{cols} columns, not whole 32s")
        })?;
        shape("qmm", (1..=3).contains(&parts.len()), || {
            format!("{} matrices in one launch", parts.len())
        })?;
        let total: usize = parts.iter().map(|p| p.rows).sum();
        if total == 0 || ntok == 0 {
            return Ok(());
        }
        // The tile from all the launch's rows; the blocks are each matrix's (whole
        // 16-row blocks per matrix).
        let tile = self.tc_tile(total, ntok);
        let tiles = ntok.div_ceil(usize::from(tile));
        let blocks: usize = parts.iter().map(|p| p.rows.div_ceil(16) * tiles).sum();
        let c = cfg((blocks, 1), TC_WARPS * 32)?;
        let rows = part_rows(parts)?;
        let (cols, ntok) = (int(cols)?, int(ntok)?);
        let mut b = self
            .stream
            .launch_builder(self.func(Kernel::QmmTc { fmt, tile }));
        push_parts(&mut b, parts, &rows);
        b.arg(&cols).arg(x).arg(&ntok);
        // SAFETY: as for `qmm` (every matrix's sizes checked by the callers): the kernel
        // reads each matrix's `rows * row_bytes` weight bytes and `ntok * cols` inputs
        // and writes its `ntok * rows` outputs; absent matrices have no rows.
        unsafe { b.launch(c) }?;
        Ok(())
    }

    /// Tokens per block of a tensor-core product, from the step and the matrix (it
    /// changes no sum): the largest tile, up to the first that holds every token, that
    /// still gives every multiprocessor a block; else the smallest (small matrices, few
    /// tokens).
    fn tc_tile(&self, rows: usize, ntok: usize) -> u8 {
        let row_blocks = rows.div_ceil(16);
        let cap = TC_TILES
            .into_iter()
            .find(|&t| usize::from(t) >= ntok)
            .unwrap_or(TC_TILES[TC_TILES.len() - 1]);
        TC_TILES
            .into_iter()
            .rev()
            .filter(|&t| t <= cap)
            .find(|&t| row_blocks * ntok.div_ceil(usize::from(t)) >= self.sms())
            .unwrap_or(TC_TILES[0])
    }

    /// `x[i] = table[tokens[i]] · scale` (`d` values per row, table of `vocab` rows).
    #[allow(clippy::too_many_arguments)]
    pub fn embed(
        &self,
        fmt: QFormat,
        table: &CudaView<'_, u8>,
        vocab: usize,
        d: usize,
        tokens: &IndexBuf,
        scale: f32,
        x: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        let rb = fmt.row_bytes(d);
        shape("embed", rb.is_some(), || format!("{d} columns in {fmt:?}"))?;
        shape("embed", table.len() >= vocab * rb.unwrap_or(0), || {
            "table too short".into()
        })?;
        shape("embed", tokens.bound() as usize <= vocab, || {
            format!("token bound {} over {vocab}", tokens.bound())
        })?;
        let n = tokens.len();
        shape("embed", x.len() >= n * d, || "output too short".into())?;
        if n == 0 {
            return Ok(());
        }
        let c = cfg((n, 1), 128)?;
        let d = int(d)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::Embed(fmt)));
        b.arg(table)
            .arg(&d)
            .arg(tokens.device()?)
            .arg(&scale)
            .arg(x);
        // SAFETY: token ids are below `vocab` (IndexBuf bound), rows and output sizes
        // checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

/// Checks that `x` holds `ntok` rows of `cols` inputs of [`Gpu::qmm`].
fn check_inputs(x: &CudaView<'_, f32>, ntok: usize, cols: usize) -> Result<()> {
    shape("qmm", x.len() >= ntok * cols, || {
        format!("{} inputs for {ntok} rows of {cols}", x.len())
    })
}

/// Checks that `w` holds `rows` rows of `cols` values in `fmt`, starting on the
/// 16-byte boundary the kernels' vector loads need, and `y` room for `ntok` rows of
/// `rows` outputs.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_product(
    gpu: &Gpu,
    kernel: &'static str,
    fmt: QFormat,
    w: &CudaView<'_, u8>,
    rows: usize,
    cols: usize,
    ntok: usize,
    y: &CudaViewMut<'_, f32>,
) -> Result<()> {
    let rb = fmt.row_bytes(cols);
    shape(kernel, rb.is_some(), || {
        format!("{cols} columns in {fmt:?}")
    })?;
    let rb = rb.unwrap_or(0);
    let (ptr, _sync) = w.device_ptr(&gpu.stream);
    shape(kernel, ptr % 16 == 0, || {
        format!("weights at {ptr:#x}, not on a 16-byte boundary")
    })?;
    shape(kernel, w.len() >= rows * rb, || {
        format!("{} weight bytes for {rows} rows of {rb}", w.len())
    })?;
    shape(kernel, y.len() >= ntok * rows, || {
        format!("{} outputs for {ntok} × {rows}", y.len())
    })
}

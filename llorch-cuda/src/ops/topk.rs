//! Exact top-k and log-sum-exp of logit rows.
#![allow(unsafe_code)]

use cudarc::driver::{CudaView, CudaViewMut, PushKernelArg};

use super::*;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::Kernel;

impl Gpu {
    /// For each of `rows` rows of `vocab` logits: the `k` best values and ids, best
    /// first with ties to the lower id (`vals`, `ids`: `rows * k`), and the row's
    /// log-sum-exp (`lse`: `rows`). `k` at most [`TOPK_MAX`] and `vocab`.
    #[allow(clippy::too_many_arguments)]
    pub fn row_topk(
        &self,
        logits: &CudaView<'_, f32>,
        rows: usize,
        vocab: usize,
        k: usize,
        scratch: &mut TopKScratch,
        vals: &mut CudaViewMut<'_, f32>,
        ids: &mut CudaViewMut<'_, i32>,
        lse: &mut CudaViewMut<'_, f32>,
    ) -> Result<()> {
        let slices = vocab.div_ceil(TOPK_SLICE);
        shape(
            "row_topk",
            (1..=TOPK_MAX.min(vocab)).contains(&k)
                && rows <= scratch.rows
                && vocab <= scratch.vocab
                && logits.len() >= rows * vocab
                && vals.len() >= rows * k
                && ids.len() >= rows * k
                && lse.len() >= rows
                // The merge holds two factors per slice in one slice's shared memory.
                && 2 * slices <= TOPK_SLICE,
            || format!("k {k}, {rows} rows of {vocab}"),
        )?;
        if rows == 0 {
            return Ok(());
        }
        let (vocab_i, k_i) = (int(vocab)?, int(k)?);
        let c = cfg((slices, rows), 1024)?;
        let mut b = self.stream.launch_builder(self.func(Kernel::RowTopk));
        b.arg(logits)
            .arg(&vocab_i)
            .arg(&k_i)
            .arg(&mut scratch.key)
            .arg(&mut scratch.max)
            .arg(&mut scratch.sum)
            .arg(&mut scratch.done)
            .arg(vals)
            .arg(ids)
            .arg(lse);
        // SAFETY: rows × vocab inputs; the scratch holds rows × slices × TOPK_MAX
        // candidate keys, rows × slices sums and rows counters (checked above, sized by
        // `TopKScratch::new`; the counters are zero between launches); rows × k outputs
        // and rows sums checked above.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

/// Device scratch of [`Gpu::row_topk`] for up to `rows` rows of `vocab` logits.
#[derive(Debug)]
pub struct TopKScratch {
    rows: usize,
    vocab: usize,
    key: cudarc::driver::CudaSlice<u64>,
    max: cudarc::driver::CudaSlice<f32>,
    sum: cudarc::driver::CudaSlice<f64>,
    done: cudarc::driver::CudaSlice<i32>,
}

impl TopKScratch {
    /// Room for `rows` rows of `vocab` logits.
    pub fn new(gpu: &Gpu, rows: usize, vocab: usize) -> Result<Self> {
        let slices = vocab.div_ceil(TOPK_SLICE);
        Ok(Self {
            rows,
            vocab,
            key: gpu.alloc(rows * slices * TOPK_MAX)?,
            max: gpu.alloc(rows * slices)?,
            sum: gpu.alloc(rows * slices)?,
            done: gpu.alloc(rows)?,
        })
    }

    /// Device bytes it holds for `rows` rows of `vocab`.
    pub fn bytes(rows: usize, vocab: usize) -> u64 {
        let slices = vocab.div_ceil(TOPK_SLICE);
        (rows * slices * (TOPK_MAX * 8 + 12) + rows * 4) as u64
    }
}

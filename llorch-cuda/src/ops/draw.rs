//! Seeded draws from each row's best logits, on the device (`draw.cu`).
#![allow(unsafe_code)]

use cudarc::driver::{CudaSlice, CudaView, PushKernelArg};

use super::*;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::Kernel;

/// One row's draw: the sampler's settings and its place in the sequence's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DrawParams {
    /// The sequence's seed.
    pub seed: u64,
    /// Index of this draw in the sequence's stream.
    pub counter: u64,
    /// Temperature; `<= 0` takes the best candidate.
    pub temperature: f32,
    /// Candidates considered (at most the row's `k`).
    pub top_k: u32,
    /// Nucleus mass (1 = off).
    pub top_p: f32,
    /// Floor relative to the best candidate's weight (0 = off).
    pub min_p: f32,
}

impl DrawParams {
    /// A row that takes its best candidate.
    pub const GREEDY: DrawParams = DrawParams {
        seed: 0,
        counter: 0,
        temperature: 0.0,
        top_k: 1,
        top_p: 1.0,
        min_p: 0.0,
    };

    fn words(&self) -> [u64; 4] {
        let bits = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
        [
            self.seed,
            self.counter,
            bits(self.temperature.to_bits(), self.top_p.to_bits()),
            bits(self.min_p.to_bits(), self.top_k),
        ]
    }
}

/// Device buffers of [`Gpu::draw_rows`] for up to `rows` rows.
#[derive(Debug)]
pub struct DrawBuf {
    rows: usize,
    params: CudaSlice<u64>,
    ids: CudaSlice<i32>,
    host: Vec<u64>,
}

impl DrawBuf {
    /// Room for `rows` rows.
    pub fn new(gpu: &Gpu, rows: usize) -> Result<Self> {
        let rows = rows.max(1);
        Ok(Self {
            rows,
            params: gpu.alloc(rows * 4)?,
            ids: gpu.alloc(rows)?,
            host: Vec::with_capacity(rows * 4),
        })
    }

    /// Device bytes for `rows` rows.
    pub fn bytes(rows: usize) -> u64 {
        (rows.max(1) * 36) as u64
    }

    /// The ids drawn by the last [`Gpu::draw_rows`], one per row.
    pub fn ids(&self) -> CudaView<'_, i32> {
        self.ids.slice(..)
    }
}

impl DrawBuf {
    /// Checks and uploads the draws of the next [`Gpu::draw_rows_queued`] launches (or
    /// replays of a graph holding one): one per row, from `k` candidates each.
    pub fn set(&mut self, gpu: &Gpu, params: &[DrawParams], k: usize) -> Result<()> {
        let rows = params.len();
        shape(
            "draw_rows",
            (1..=TOPK_MAX).contains(&k) && rows <= self.rows,
            || format!("{rows} rows of {k} candidates, room for {}", self.rows),
        )?;
        // A drawing row needs 1..=k candidates (the CPU's sampler decides that case).
        let bad = params
            .iter()
            .position(|p| p.temperature > 0.0 && !(1..=k).contains(&(p.top_k as usize)));
        shape("draw_rows", bad.is_none(), || {
            format!("row {bad:?}: top-k outside 1..={k} with temperature > 0")
        })?;
        self.host.clear();
        self.host.extend(params.iter().flat_map(DrawParams::words));
        if rows > 0 {
            gpu.write_view(&self.host, &mut self.params.slice_mut(..rows * 4))?;
        }
        Ok(())
    }
}

impl Gpu {
    /// For each row `r` of `params`: a token id drawn from the row's `k` best logits
    /// (`vals`/`ids` as [`Gpu::row_topk`] writes them) with `params[r]`, into `buf`.
    /// Same stream and arithmetic as the CPU sampler's draw from the same candidates.
    pub fn draw_rows(
        &self,
        vals: &CudaView<'_, f32>,
        ids: &CudaView<'_, i32>,
        k: usize,
        params: &[DrawParams],
        buf: &mut DrawBuf,
    ) -> Result<()> {
        buf.set(self, params, k)?;
        self.draw_rows_queued(vals, ids, k, params.len(), buf)
    }

    /// Queues the draws of `rows` rows with the settings last given to
    /// [`DrawBuf::set`] (launches only: it can be captured in a graph, whose replays
    /// read the settings set before each).
    pub fn draw_rows_queued(
        &self,
        vals: &CudaView<'_, f32>,
        ids: &CudaView<'_, i32>,
        k: usize,
        rows: usize,
        buf: &mut DrawBuf,
    ) -> Result<()> {
        shape(
            "draw_rows",
            (1..=TOPK_MAX).contains(&k)
                && rows <= buf.rows
                && vals.len() >= rows * k
                && ids.len() >= rows * k,
            || format!("{rows} rows of {k} candidates, room for {}", buf.rows),
        )?;
        if rows == 0 {
            return Ok(());
        }
        let c = cfg((rows.div_ceil(64), 1), 64)?;
        let (k_i, rows_i) = (int(k)?, int(rows)?);
        let mut b = self.stream.launch_builder(self.func(Kernel::DrawRows));
        b.arg(vals)
            .arg(ids)
            .arg(&k_i)
            .arg(&buf.params)
            .arg(&rows_i)
            .arg(&mut buf.ids);
        // SAFETY: reads `rows * k` candidates and `rows * 4` parameter words (the buffer
        // holds `buf.rows >= rows` rows), writes `rows` ids (all checked above); the
        // kernel clamps each row's top-k to `k` and reads only the row's candidates,
        // whatever the settings hold.
        unsafe { b.launch(c) }?;
        Ok(())
    }
}

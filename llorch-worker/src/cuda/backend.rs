//! [`CudaBackend`]: the model step on one GPU behind the compute seam.

use std::collections::HashMap;
use std::path::PathBuf;

use llorch_cuda::{CudaError, CudaSlice, DrawParams, Gpu, Graph, MAX_HEAD_DIM, Staging, TOPK_MAX};
use rayon::prelude::*;

use super::pass::{Indices, Pass, Scratch, Widths};
use super::weights::{DeviceWeights, plan};
use crate::backend::{
    BackendError, ComputeBackend, LogitsWant, SeqOutput, SeqStep, StepTiming, finish_seq,
    logit_rows, validate_batch,
};
use crate::cpu::ops::{Rope, RopeStyle};
use crate::model::{Arch, ModelConfig, Weights};
use crate::sampling::{SamplerScratch, TopRow, sampled_from_top, top_suffices};

/// How to build a [`CudaBackend`].
#[derive(Debug, Clone)]
pub struct CudaOptions {
    /// Device ordinal (`cuda:N`).
    pub ordinal: usize,
    /// KV pages to hold.
    pub num_pages: usize,
    /// Tokens per page.
    pub page_size: usize,
    /// Most tokens in one step (activation buffers are sized for it up front).
    pub max_step_tokens: usize,
    /// Most rows of logits in one step (sizes the logits buffer up front; more grow it).
    pub max_logit_rows: usize,
    /// Where compiled kernels are cached (none: compile at every start).
    pub kernel_cache: Option<PathBuf>,
    /// Matrix products on tensor cores (integer block sums for integer formats,
    /// half-precision operands for float ones, f32 sums) rather than f32 lanes;
    /// ignored before sm_80.
    pub tensor_cores: bool,
    /// Replayed steps let each kernel start while the previous one finishes
    /// (programmatic graph edges, sm_90 on; `llorch_cuda::Gpu::set_graph_overlap`).
    /// The same bits either way.
    pub graph_overlap: bool,
    /// Steps of at most this many tokens overlap (with `graph_overlap`; default
    /// [`OVERLAP_MAX_ROWS`]).
    pub overlap_max_rows: usize,
}

/// Device memory reserved beyond our buffers (context, module, driver).
const RESERVE: u64 = 256 << 20;
/// Steps of at most this many tokens are replayed from captured graphs.
const GRAPH_MAX_ROWS: usize = 256;
/// Steps of at most this many tokens let each kernel start while the previous one
/// finishes (programmatic graph edges), by default: on the H200, batch-1 decode gained
/// 2-7% with them and 64-sequence steps lost 2-6% (benches/reports/cuda.md, session 9).
pub const OVERLAP_MAX_ROWS: usize = 8;
/// Captured graphs kept (one per step shape); all are dropped when full.
const GRAPH_CACHE: usize = 64;

/// The model on one GPU, with its KV cache in device memory.
pub struct CudaBackend {
    cfg: ModelConfig,
    gpu: Gpu,
    w: DeviceWeights,
    vocab: usize,
    page_size: usize,
    num_pages: usize,
    neox: bool,
    inv_global: CudaSlice<f64>,
    inv_local: CudaSlice<f64>,
    kv: Vec<CudaSlice<u16>>,
    s: Scratch,
    ix: Indices,
    host: HostRows,
    /// Per-row draw settings of the step.
    draw_params: Vec<DrawParams>,
    graphs: HashMap<(usize, usize, usize, bool), Graph>,
    /// Steps of at most this many tokens are captured with overlapping kernels.
    overlap_rows: usize,
    /// Generation of the buffers the graphs were captured with.
    graph_gen: u64,
    scratch_gen: u64,
    fixed_bytes: u64,
    timing: StepTiming,
}

/// What comes back from the device after a step (candidates, sums and draws through
/// page-locked buffers, copied without a wait each).
#[derive(Default)]
struct HostRows {
    /// Whole rows, for sequences that need them (teacher forcing, penalties, …).
    full: Vec<f32>,
    vals: Staging<f32>,
    ids: Staging<i32>,
    lse: Staging<f32>,
    /// The token drawn on the device for each logit row (rows drawn from candidates).
    drawn: Staging<i32>,
}

impl std::fmt::Debug for CudaBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaBackend")
            .field("device", &self.gpu.describe())
            .field("num_pages", &self.num_pages)
            .finish_non_exhaustive()
    }
}

fn dev(e: CudaError) -> BackendError {
    BackendError::Device(e.to_string())
}

impl CudaBackend {
    /// Opens the GPU, checks it has the memory (weights + KV + activations), and
    /// copies the weights over. Fails fast, naming bytes needed and free.
    pub fn new(cfg: ModelConfig, weights: &Weights, opts: &CudaOptions) -> Result<Self, CudaError> {
        if cfg.head_dim > MAX_HEAD_DIM || cfg.v_head_dim > MAX_HEAD_DIM {
            return Err(CudaError::Shape {
                kernel: "attention",
                why: format!(
                    "head width {} / {} over the kernels' {MAX_HEAD_DIM}",
                    cfg.head_dim, cfg.v_head_dim
                ),
            });
        }
        let mut gpu = Gpu::open(opts.ordinal, opts.kernel_cache.as_deref())?;
        gpu.set_tensor_cores(opts.tensor_cores);
        gpu.set_graph_overlap(opts.graph_overlap);
        let layout = plan(weights);
        let widths = Widths::of(&cfg);
        let vocab = weights.vocab;
        let page_size = opts.page_size.max(1);
        let num_pages = opts.num_pages.max(1);
        let kv_len = num_pages * page_size * cfg.kv_width();
        let kv_bytes = (kv_len * 2 * cfg.n_layers) as u64;
        let rows = opts.max_step_tokens.max(1);
        let logit_rows = opts.max_logit_rows.max(1);
        let scratch = Scratch::bytes(widths, vocab, rows, logit_rows);
        let weight_bytes = layout.0.device_bytes();
        let need = weight_bytes + kv_bytes + scratch + RESERVE;
        gpu.ensure_free(
            need,
            &format!(
                "weights {weight_bytes} + KV cache {kv_bytes} + activations {scratch} + reserve {RESERVE}"
            ),
        )?;
        let w = DeviceWeights::upload(&gpu, weights, layout)?;
        let style = match cfg.arch {
            Arch::Llama => RopeStyle::Interleaved,
            Arch::Gemma3 | Arch::Qwen2 => RopeStyle::Neox,
        };
        let freqs = weights.rope_freqs.as_deref();
        let global = Rope::new(style, cfg.rope_dims, cfg.rope_base, freqs, cfg.rope_linear);
        let local_base = cfg.rope_base_local.unwrap_or(cfg.rope_base);
        let local = Rope::new(style, cfg.rope_dims, local_base, freqs, 1.0);
        let pad = |v: Vec<f64>| if v.is_empty() { vec![0.0] } else { v };
        let inv_global = gpu.upload(&pad(global.inv_freq))?;
        let inv_local = gpu.upload(&pad(local.inv_freq))?;
        let kv = (0..cfg.n_layers)
            .map(|_| gpu.alloc::<u16>(kv_len))
            .collect::<Result<Vec<_>, _>>()?;
        let s = Scratch::new(&gpu, widths, vocab, rows, logit_rows)?;
        // Index buffers at their largest up front: graphs keep pointing at them.
        let mut ix = Indices::default();
        for b in [&mut ix.tokens, &mut ix.pos, &mut ix.slots, &mut ix.want] {
            b.reserve(&gpu, rows)?;
        }
        ix.plan.reserve(&gpu, rows, num_pages)?;
        Ok(Self {
            neox: style == RopeStyle::Neox,
            cfg,
            gpu,
            w,
            vocab,
            page_size,
            num_pages,
            inv_global,
            inv_local,
            kv,
            s,
            ix,
            host: HostRows::default(),
            draw_params: Vec::new(),
            graphs: HashMap::new(),
            overlap_rows: opts.overlap_max_rows,
            graph_gen: 0,
            scratch_gen: 0,
            fixed_bytes: weight_bytes + kv_bytes,
            timing: StepTiming::default(),
        })
    }

    /// Grows the activation buffers when a step needs more rows than they hold.
    fn reserve(&mut self, rows: usize, logit_rows: usize) -> Result<(), CudaError> {
        if rows <= self.s.rows && logit_rows <= self.s.logit_rows {
            return Ok(());
        }
        let rows = rows.max(self.s.rows);
        let logit_rows = logit_rows.max(self.s.logit_rows);
        let w = Widths::of(&self.cfg);
        // Free the old buffers first: both sets may not fit at once.
        let old_bytes = Scratch::bytes(w, self.vocab, self.s.rows, self.s.logit_rows);
        let new_bytes = Scratch::bytes(w, self.vocab, rows, logit_rows);
        self.gpu
            .ensure_free(new_bytes.saturating_sub(old_bytes), "activations")?;
        self.graphs.clear();
        self.s = Scratch::new(&self.gpu, w, self.vocab, rows, logit_rows)?;
        self.scratch_gen += 1;
        Ok(())
    }

    /// Sets the step's indices from the batch (validated on the host).
    fn index(&mut self, batch: &[SeqStep<'_>], n: usize) -> Result<usize, CudaError> {
        let ps = self.page_size;
        let mut tokens = Vec::with_capacity(n);
        let mut pos = Vec::with_capacity(n);
        let mut slots = Vec::with_capacity(n);
        let mut rows = Vec::with_capacity(n);
        let mut table = Vec::new();
        let mut want = Vec::new();
        let mut first = 0u32;
        for sq in batch {
            let off = table.len() as u32;
            table.extend_from_slice(sq.pages);
            for (i, &t) in sq.tokens.iter().enumerate() {
                let p = sq.start_pos + i;
                tokens.push(t);
                pos.push(p as u32);
                slots.push(sq.pages[p / ps] * ps as u32 + (p % ps) as u32);
                rows.push((p as u32, off));
            }
            let len = sq.tokens.len() as u32;
            let k = logit_rows(sq) as u32;
            want.extend(first + len - k..first + len);
            first += len;
        }
        let g = &self.gpu;
        self.ix.tokens.set(g, &tokens, self.vocab as u32)?;
        self.ix.pos.set(g, &pos, i32::MAX as u32)?;
        self.ix.slots.set(g, &slots, (self.num_pages * ps) as u32)?;
        self.ix.want.set(g, &want, n as u32)?;
        self.ix.plan.set(g, &rows, &table, ps, self.num_pages)?;
        Ok(want.len())
    }
}

impl ComputeBackend for CudaBackend {
    fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn page_size(&self) -> usize {
        self.page_size
    }

    fn num_pages(&self) -> usize {
        self.num_pages
    }

    fn memory_bytes(&self) -> u64 {
        let w = Widths::of(&self.cfg);
        self.fixed_bytes + Scratch::bytes(w, self.vocab, self.s.rows, self.s.logit_rows)
    }

    fn device_name(&self) -> String {
        let path = if self.gpu.tensor_cores() {
            "tensor cores"
        } else {
            "f32 lanes"
        };
        format!("{}, {path}", self.gpu.describe())
    }

    fn timing(&self) -> Option<StepTiming> {
        Some(self.timing)
    }

    fn step(
        &mut self,
        batch: &[SeqStep<'_>],
        out: &mut Vec<SeqOutput>,
    ) -> Result<(), BackendError> {
        let t0 = std::time::Instant::now();
        validate_batch(batch, self.vocab, self.page_size, self.num_pages)?;
        let n: usize = batch.iter().map(|sq| sq.tokens.len()).sum();
        let wanted: usize = batch.iter().map(logit_rows).sum();
        self.reserve(n, wanted).map_err(dev)?;
        self.index(batch, n).map_err(dev)?;
        let k = self.top_k_for(batch);
        // Which sequences draw from the candidates (on the device, in the step's graph).
        let tops: Vec<bool> = batch.iter().map(|sq| self.draws_from_top(sq, k)).collect();
        let draw = self.set_draws(batch, wanted, k, &tops).map_err(dev)?;
        let t1 = std::time::Instant::now();
        let start = self.gpu.mark().map_err(dev)?;
        self.run(n, wanted, k, draw).map_err(dev)?;
        let end = self.gpu.mark().map_err(dev)?;
        self.collect(batch, k, draw, &tops).map_err(dev)?;
        let device_ms = end.ms_since(&start).map_err(dev)?;
        let t2 = std::time::Instant::now();
        self.finish(batch, k, &tops, out).map_err(dev)?;
        let t = &mut self.timing;
        t.steps += 1;
        t.prepare_s += (t1 - t0).as_secs_f64();
        t.device_s += f64::from(device_ms) / 1e3;
        t.wait_s += (t2 - t1).as_secs_f64();
        t.finish_s += t2.elapsed().as_secs_f64();
        Ok(())
    }
}

impl CudaBackend {
    /// Candidates to keep per row: enough for every draw of the step that can be made
    /// from the best logits alone (0 when none can).
    fn top_k_for(&self, batch: &[SeqStep<'_>]) -> usize {
        let cap = TOPK_MAX.min(self.vocab);
        let need = batch
            .iter()
            .filter(|sq| sq.logits == LogitsWant::Last)
            .filter_map(|sq| sq.sample)
            .filter(|r| top_suffices(r.params, cap, self.vocab))
            .map(|r| {
                (r.params.top_k as usize)
                    .max(r.params.top_logprobs as usize)
                    .max(1)
            })
            .max();
        // One size, so few graph shapes.
        need.map_or(0, |_| cap)
    }

    /// Whether a sequence's draw is made from the candidates.
    fn draws_from_top(&self, sq: &SeqStep<'_>, k: usize) -> bool {
        k > 0
            && sq.logits == LogitsWant::Last
            && sq
                .sample
                .is_some_and(|r| top_suffices(r.params, k, self.vocab))
    }

    /// Runs the forward pass (and the draws, with `draw`), replayed from a captured
    /// graph for small steps.
    fn run(&mut self, n: usize, wanted: usize, k: usize, draw: bool) -> Result<(), CudaError> {
        let ix = &self.ix;
        let gen_now = self.scratch_gen
            + ix.tokens.generation()
            + ix.pos.generation()
            + ix.slots.generation()
            + ix.want.generation()
            + ix.plan.generation();
        if gen_now != self.graph_gen {
            self.graphs.clear();
            self.graph_gen = gen_now;
        }
        let mut pass = Pass {
            c: &self.cfg,
            w: &self.w,
            s: &mut self.s,
            ix: &self.ix,
            kv: &mut self.kv,
            inv_global: &self.inv_global,
            inv_local: &self.inv_local,
            neox: self.neox,
            vocab: self.vocab,
        };
        if n > GRAPH_MAX_ROWS {
            return pass.launch(&self.gpu, n, wanted, k, draw);
        }
        let key = (n, wanted, k, draw);
        if !self.graphs.contains_key(&key) {
            if self.graphs.len() >= GRAPH_CACHE {
                self.graphs.clear();
            }
            let overlap = n <= self.overlap_rows;
            let graph = self
                .gpu
                .capture_with(overlap, |g| pass.launch(g, n, wanted, k, draw))?;
            self.graphs.insert(key, graph);
        }
        match self.graphs.get(&key) {
            Some(g) => self.gpu.replay(g),
            None => Err(CudaError::Driver("graph cache lost a graph".into())),
        }
    }

    /// Sets the device's draws for the step's logit rows (the rows of sequences not
    /// drawn from candidates take their best, unused); whether any row draws.
    fn set_draws(
        &mut self,
        batch: &[SeqStep<'_>],
        wanted: usize,
        k: usize,
        tops: &[bool],
    ) -> Result<bool, CudaError> {
        if !tops.iter().any(|&t| t) {
            return Ok(false);
        }
        let p = &mut self.draw_params;
        p.clear();
        for (sq, &top) in batch.iter().zip(tops) {
            let rows = logit_rows(sq);
            match sq.sample.filter(|_| top) {
                Some(r) => p.push(DrawParams {
                    seed: r.params.seed,
                    counter: r.draw,
                    temperature: r.params.temperature,
                    top_k: r.params.top_k,
                    top_p: r.params.top_p,
                    min_p: r.params.min_p,
                }),
                None => p.extend(std::iter::repeat_n(DrawParams::GREEDY, rows)),
            }
        }
        debug_assert_eq!(p.len(), wanted);
        self.s.draws.set(&self.gpu, p, k)?;
        Ok(true)
    }

    /// Copies back what the draws and the callers need: the device's draws and the
    /// candidates of the rows drawn from them, and whole rows only for the others.
    fn collect(
        &mut self,
        batch: &[SeqStep<'_>],
        k: usize,
        draw: bool,
        tops: &[bool],
    ) -> Result<(), CudaError> {
        let wanted: usize = batch.iter().map(logit_rows).sum();
        let (g, s, h, vocab) = (&self.gpu, &self.s, &mut self.host, self.vocab);
        if k > 0 {
            g.read_async(&s.top_val.slice(..wanted * k), &mut h.vals)?;
            g.read_async(&s.top_id.slice(..wanted * k), &mut h.ids)?;
            g.read_async(&s.lse.slice(..wanted), &mut h.lse)?;
            if draw {
                g.read_async(&s.draws.ids().slice(..wanted), &mut h.drawn)?;
            }
        }
        h.full.clear();
        let mut row = 0;
        for (sq, &top) in batch.iter().zip(tops) {
            let n = logit_rows(sq);
            if n > 0 && !top {
                let at = h.full.len();
                h.full.resize(at + n * vocab, 0.0);
                let src = s.logits.slice(row * vocab..(row + n) * vocab);
                g.read(&src, &mut h.full[at..])?;
            }
            row += n;
        }
        g.sync()
    }

    /// Draws and outputs, sequences in parallel (they are independent).
    fn finish(
        &self,
        batch: &[SeqStep<'_>],
        k: usize,
        tops: &[bool],
        out: &mut Vec<SeqOutput>,
    ) -> Result<(), CudaError> {
        let vocab = self.vocab;
        let h = &self.host;
        // (Copied by `collect`; `get` waits for each copy.)
        let (vals, ids, lse, drawn) = (h.vals.get()?, h.ids.get()?, h.lse.get()?, h.drawn.get()?);
        // Each sequence's first logit row and first value in `full`.
        let mut at = Vec::with_capacity(batch.len());
        let (mut row, mut full) = (0, 0);
        for (sq, &top) in batch.iter().zip(tops) {
            let n = logit_rows(sq);
            at.push((row, full, top));
            row += n;
            if !top {
                full += n * vocab;
            }
        }
        batch
            .par_iter()
            .zip(at.into_par_iter())
            .map_init(
                SamplerScratch::default,
                |scratch, (sq, (row, full, top))| {
                    if top {
                        // The token was drawn on the device (`draw`).
                        let id = drawn.get(row).map_or(0, |&i| i as u32);
                        let span = row * k..(row + 1) * k;
                        let best: Vec<(f32, u32)> = vals[span.clone()]
                            .iter()
                            .zip(&ids[span])
                            .map(|(&v, &i)| (v, i as u32))
                            .collect();
                        let row = TopRow {
                            best: &best,
                            lse: lse[row],
                            vocab,
                        };
                        SeqOutput {
                            logits: Vec::new(),
                            sampled: sq.sample.map(|r| sampled_from_top(row, r.params, id)),
                        }
                    } else {
                        let n = logit_rows(sq) * vocab;
                        finish_seq(sq, &h.full[full..full + n], vocab, scratch)
                    }
                },
            )
            .collect_into_vec(out);
        Ok(())
    }
}

//! The paged attention on the GPU (issue 8): segments split over blocks or walked in
//! one give the same bits and match a float64 reference; the fused output quantization
//! gives `quantize_acts`'s inputs (SYS-0003).
//!
//! These need a CUDA GPU, so they are `#[ignore]`d: CI (no GPU) compiles them; on the
//! GPU machine `cargo test -- --ignored` runs them.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use common::gpu::{bits, noise, quantized_matrix};
use llorch_cuda::{AttnDims, AttnPlan, AttnSplit, Gpu, QActs, QFormat, QGroup};
use llorch_worker::quant::GgmlType;

fn half_to_f64(h: u16) -> f64 {
    half::f16::from_bits(h).to_f64()
}

/// One attention case: rows at `positions`, each with its own pages (in reverse order,
/// so positions are scattered), random cache and queries.
struct Case {
    dims: AttnDims,
    positions: Vec<u32>,
    page_size: usize,
    pages_per_row: usize,
    cache: Vec<u16>,
    q: Vec<f32>,
}

impl Case {
    fn new(head: usize, window: Option<usize>, positions: &[u32]) -> Self {
        let (n_heads, n_kv_heads, page_size) = (8, 2, 16);
        let dims = AttnDims {
            n_heads,
            n_kv_heads,
            head_dim: head,
            v_head_dim: head,
            window,
        };
        let pages_per_row = *positions.iter().max().unwrap() as usize / page_size + 1;
        let kv_width = n_kv_heads * 2 * head;
        let slots = positions.len() * pages_per_row * page_size;
        let cache = noise(head as u64 + 7, slots * kv_width)
            .into_iter()
            .map(half_bits)
            .collect();
        // Queries of a scaled size, so the softmax neither flattens nor saturates.
        let q = noise(head as u64 + 8, positions.len() * n_heads * head)
            .into_iter()
            .map(|v| v * 4.0 / (head as f32).sqrt())
            .collect();
        Self {
            dims,
            positions: positions.to_vec(),
            page_size,
            pages_per_row,
            cache,
            q,
        }
    }

    fn num_pages(&self) -> usize {
        self.positions.len() * self.pages_per_row
    }

    /// Cache slot of row `r`'s position `p`.
    fn slot(&self, r: usize, p: usize) -> usize {
        let page = self.num_pages() - 1 - (r * self.pages_per_row + p / self.page_size);
        page * self.page_size + p % self.page_size
    }

    /// The attention of every row and head on the GPU, split over blocks where `split`
    /// allows it.
    fn run(&self, gpu: &Gpu, split: &mut AttnSplit) -> Vec<f32> {
        let d = &self.dims;
        let table: Vec<u32> = (0..self.num_pages() as u32).rev().collect();
        let rows: Vec<(u32, u32)> = self
            .positions
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, (i * self.pages_per_row) as u32))
            .collect();
        let mut plan = AttnPlan::default();
        plan.set(gpu, &rows, &table, self.page_size, self.num_pages())
            .unwrap();
        let cache = gpu.upload(&self.cache).unwrap();
        let q = gpu.upload(&self.q).unwrap();
        let n = rows.len() * d.n_heads * d.v_head_dim;
        let mut out = gpu.alloc::<f32>(n).unwrap();
        gpu.attention(
            &q.as_view(),
            &cache.as_view(),
            &mut out.as_view_mut(),
            &plan,
            d,
            split,
            None,
        )
        .unwrap();
        let mut h = vec![0.0f32; n];
        gpu.read(&out.as_view(), &mut h).unwrap();
        h
    }

    /// The float64 attention of row `r`, head `h`.
    fn reference(&self, r: usize, h: usize) -> Vec<f64> {
        let d = &self.dims;
        let kv_width = d.n_kv_heads * (d.head_dim + d.v_head_dim);
        let g = h / (d.n_heads / d.n_kv_heads);
        let pos = self.positions[r] as usize;
        let lo = d.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let q = &self.q[(r * d.n_heads + h) * d.head_dim..][..d.head_dim];
        let row = |p: usize| &self.cache[self.slot(r, p) * kv_width..][..kv_width];
        let scores: Vec<f64> = (lo..=pos)
            .map(|p| {
                let k = &row(p)[g * d.head_dim..][..d.head_dim];
                q.iter()
                    .zip(k)
                    .map(|(&a, &b)| f64::from(a) * half_to_f64(b))
                    .sum()
            })
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = w.iter().sum();
        let v_off = d.n_kv_heads * d.head_dim + g * d.v_head_dim;
        (0..d.v_head_dim)
            .map(|j| {
                (lo..=pos)
                    .zip(&w)
                    .map(|(p, wt)| wt * half_to_f64(row(p)[v_off + j]))
                    .sum::<f64>()
                    / total
            })
            .collect()
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn attention_segments_split_or_walked_give_the_same_bits() {
    // SYS-0003: a row's segments (1-16 of them: 1 to 4 001 positions, windows) give the
    // same bits whether each has its own block or one block walks them, and the result
    // is the float64 attention.
    let gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    let positions = [
        0u32, 5, 31, 32, 33, 100, 127, 128, 129, 300, 511, 512, 513, 700, 1099, 2100, 4000,
    ];
    for (head, window) in [
        (64, None),
        (128, None),
        (256, None),
        (128, Some(40)),
        (256, Some(300)),
    ] {
        let case = Case::new(head, window, &positions);
        let mut split = AttnSplit::new(&gpu, head).unwrap();
        let mut walk = AttnSplit::with_pairs(&gpu, head, 0).unwrap();
        let a = case.run(&gpu, &mut split);
        let b = case.run(&gpu, &mut walk);
        // Twice split: the counters were left at zero.
        let c = case.run(&gpu, &mut split);
        assert!(
            bits(&a) == bits(&b),
            "heads of {head}, window {window:?}: split != walked"
        );
        assert!(
            bits(&a) == bits(&c),
            "heads of {head}, window {window:?}: split runs differ"
        );
        let d = &case.dims;
        let mut worst = 0.0f64;
        for r in 0..positions.len() {
            for h in 0..d.n_heads {
                let want = case.reference(r, h);
                let got = &a[(r * d.n_heads + h) * d.v_head_dim..][..d.v_head_dim];
                for (g, w) in got.iter().zip(&want) {
                    worst = worst.max((f64::from(*g) - w).abs() / (1.0 + w.abs()));
                }
            }
        }
        eprintln!("heads of {head}, window {window:?}: worst relative |Δ| {worst:.2e}");
        assert!(
            worst < 1e-4,
            "heads of {head}, window {window:?}: {worst:.2e} from f64"
        );
    }
}

/// Half-precision bits of a value in ±[2^-5, 2): a random cache entry.
fn half_bits(v: f32) -> u16 {
    let u = (v * 0.5 + 0.5).clamp(0.0, 0.999_999);
    let m = (u * 65_536.0) as u32;
    let sign = (m & 1) << 15;
    let exp = 10 + (m >> 1) % 6;
    (sign | (exp << 10) | ((m >> 4) & 0x3ff)) as u16
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn attention_quantizes_its_output_as_quantize_acts_does() {
    // SYS-0003: the attention's quantized output (by the kernel itself per 32, and per
    // 256 over 256-wide heads; narrower heads per 256 by a second launch) is the input
    // `quantize_acts` makes of its output, on every launch.
    let gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    let (page_size, rows) = (16, [5u32, 40, 130]);
    for head in [64usize, 128, 256] {
        let (n_heads, n_kv) = (8, 2);
        let dims = AttnDims {
            n_heads,
            n_kv_heads: n_kv,
            head_dim: head,
            v_head_dim: head,
            window: None,
        };
        let kv_width = n_kv * 2 * head;
        let pages_per_row = 9;
        let num_pages = rows.len() * pages_per_row;
        let cache: Vec<u16> = noise(head as u64, num_pages * page_size * kv_width)
            .into_iter()
            .map(half_bits)
            .collect();
        let cache = gpu.upload(&cache).unwrap();
        // Row i's pages in reverse order, so positions are scattered.
        let table: Vec<u32> = (0..num_pages as u32).rev().collect();
        let plan_rows: Vec<(u32, u32)> = rows
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, (i * pages_per_row) as u32))
            .collect();
        let mut split = AttnSplit::new(&gpu, head).unwrap();
        let mut plan = AttnPlan::default();
        plan.set(&gpu, &plan_rows, &table, page_size, num_pages)
            .unwrap();
        let n = rows.len();
        let width = n_heads * head;
        let q = gpu
            .upload(&noise(head as u64 + 1, n * n_heads * head))
            .unwrap();
        for (group, ty, fmt) in [
            // Formats with mins: their products read the inputs' sums too.
            (QGroup::Per32, GgmlType::Q4_1, QFormat::Q4_1),
            (QGroup::Per256, GgmlType::Q4_K, QFormat::Q4K),
        ] {
            let w = gpu.upload(&quantized_matrix(ty, 6, 32, width)).unwrap();
            let product = |xq: &QActs| {
                let mut y = gpu.alloc::<f32>(n * 32).unwrap();
                gpu.qmm_q(fmt, &w.as_view(), 32, width, xq, n, &mut y.as_view_mut())
                    .unwrap();
                let mut h = vec![0.0f32; n * 32];
                gpu.read(&y.as_view(), &mut h).unwrap();
                h
            };
            let mut out = gpu.alloc::<f32>(n * width).unwrap();
            let mut fq = QActs::new(&gpu, n * width).unwrap();
            fq.set_group(group);
            let mut runs = Vec::new();
            for _ in 0..2 {
                gpu.attention(
                    &q.as_view(),
                    &cache.as_view(),
                    &mut out.as_view_mut(),
                    &plan,
                    &dims,
                    &mut split,
                    Some(&mut fq),
                )
                .unwrap();
                runs.push(product(&fq));
            }
            let mut sq = QActs::new(&gpu, n * width).unwrap();
            sq.set_group(group);
            gpu.quantize_acts(&out.as_view(), n, width, &mut sq)
                .unwrap();
            let want = product(&sq);
            assert!(want.iter().all(|v| v.is_finite() && *v != 0.0));
            for (i, got) in runs.iter().enumerate() {
                assert!(
                    bits(got) == bits(&want),
                    "heads of {head}, {group:?}, launch {i}: bits differ"
                );
            }
        }
    }
}

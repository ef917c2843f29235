//! Single matrix products on the GPU (issue 8): every format against f64, and the same
//! bits from every kernel path and block shape (SYS-0003).
//!
//! These need a CUDA GPU, so they are `#[ignore]`d: CI (no GPU) compiles them; on the
//! GPU machine `cargo test -- --ignored` runs them.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use common::gpu::{INTEGER_FORMATS, bits, grouped_outputs, noise, product, quantized_matrix};
use llorch_cuda::CudaSlice;
use llorch_cuda::{DecodeProducts, Gpu, QActs, QFormat, QGroup, QS_TILES, WideProducts};
use llorch_worker::quant::{GgmlType, dequantize_row};

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn qmm_matches_an_f64_reference_for_every_format_and_is_batch_invariant() {
    let mut gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    for tc in [true, false] {
        gpu.set_tensor_cores(tc);
        qmm_cases(&gpu, false, if tc { 2e-3 } else { 1e-5 });
    }
    // Integer formats with 16-bit quantized inputs (`Gpu::qmm_q`).
    gpu.set_tensor_cores(true);
    qmm_cases(&gpu, true, 1e-4);
}

/// Every format (integer ones only when `quantized`), short and long rows, against
/// f64; `tol` relative to Σ|w·x|.
fn qmm_cases(gpu: &Gpu, quantized: bool, tol: f64) {
    let formats = [
        (GgmlType::F32, QFormat::F32),
        (GgmlType::F16, QFormat::F16),
        (GgmlType::BF16, QFormat::Bf16),
        (GgmlType::Q8_0, QFormat::Q8_0),
        (GgmlType::Q4_0, QFormat::Q4_0),
        (GgmlType::Q4_1, QFormat::Q4_1),
        (GgmlType::Q5_0, QFormat::Q5_0),
        (GgmlType::Q5_1, QFormat::Q5_1),
        (GgmlType::Q4_K, QFormat::Q4K),
        (GgmlType::Q5_K, QFormat::Q5K),
        (GgmlType::Q6_K, QFormat::Q6K),
    ];
    // Short rows (one warp each) and long rows (four warps share one).
    for (seed, (ty, fmt), (rows, cols)) in formats
        .into_iter()
        .enumerate()
        .flat_map(|(i, f)| [(37, 512), (21, 2048)].map(move |rc| (i + rc.1, f, rc)))
        .filter(|(_, (_, fmt), _)| !quantized || fmt.is_integer())
    {
        let ntok = 19;
        let bytes = quantized_matrix(ty, seed as u64 + 1, rows, cols);
        // The reference multiplies the dequantized weights in f64.
        let rb = bytes.len() / rows;
        let mut deq = vec![0.0f32; rows * cols];
        for (j, out) in deq.chunks_mut(cols).enumerate() {
            dequantize_row(ty, &bytes[j * rb..(j + 1) * rb], out).unwrap();
        }
        // Inputs of uneven magnitude (the quantized path scales each 32 separately).
        let x: Vec<f32> = noise(seed as u64 + 100, ntok * cols)
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + (i / 32 % 7) as f32))
            .collect();
        let w_d = gpu.upload(&bytes).unwrap();
        let y = product(gpu, quantized, fmt, &w_d, rows, cols, &x, ntok);
        let mut worst = 0.0f64;
        for t in 0..ntok {
            for j in 0..rows {
                let r: f64 = (0..cols)
                    .map(|k| f64::from(deq[j * cols + k]) * f64::from(x[t * cols + k]))
                    .sum();
                let scale: f64 = (0..cols)
                    .map(|k| (f64::from(deq[j * cols + k]) * f64::from(x[t * cols + k])).abs())
                    .sum();
                worst = worst.max((f64::from(y[t * rows + j]) - r).abs() / scale.max(1e-30));
            }
        }
        assert!(
            worst < tol,
            "{ty:?} ({rows}×{cols}): relative error {worst:e}"
        );
        // One token alone gives the same bits as inside the batch of 19.
        for t in [0, 7, 18] {
            let x1 = &x[t * cols..(t + 1) * cols];
            let one = product(gpu, quantized, fmt, &w_d, rows, cols, x1, 1);
            assert_eq!(
                bits(&one),
                bits(&y[t * rows..(t + 1) * rows]),
                "{ty:?} token {t}"
            );
        }
        eprintln!(
            "{ty:?} {rows}×{cols} (tensor cores: {}, quantized inputs: {quantized}): \
             worst relative error {worst:.2e}",
            gpu.tensor_cores()
        );
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn integer_products_give_the_same_bits_in_every_block_shape() {
    let mut gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    let cols = 512;
    let x = noise(91, 64 * cols);
    // On 132 SMs these rows × tokens pick every block shape of `QQ_TILES` (the
    // k-quants: `QK_TILES`): 2048 rows take 16/32/64 tokens × 1 row tile, 4096 rows × 2,
    // 8192 rows × 4 (× 2 at 64); the decode kernels (`qmv.cu`, `kquant_decode.cu`: steps of
    // 1-2 tokens) run with 1, 2 and 4 rows per warp.
    for (ty, fmt) in INTEGER_FORMATS {
        for rows in [2048, 4096, 8192] {
            let w = gpu
                .upload(&quantized_matrix(ty, rows as u64, rows, cols))
                .unwrap();
            if rows == 2048 {
                // Weights off the 16-byte boundary the kernels load from: a typed error.
                let mut q = QActs::new(&gpu, cols).unwrap();
                q.set_group(QGroup::for_formats([fmt]));
                let x1 = gpu.upload(&x[..cols]).unwrap();
                gpu.quantize_acts(&x1.as_view(), 1, cols, &mut q).unwrap();
                let mut y = gpu.alloc::<f32>(rows).unwrap();
                let off = w.slice(4..);
                let r = gpu.qmm_q(fmt, &off, rows - 1, cols, &q, 1, &mut y.as_view_mut());
                assert!(r.is_err(), "{ty:?}: misaligned weights accepted");
                // Inputs in the wrong group for the format: a typed error too.
                if fmt.is_kquant() {
                    q.set_group(QGroup::Per32);
                    gpu.quantize_acts(&x1.as_view(), 1, cols, &mut q).unwrap();
                    let r = gpu.qmm_q(fmt, &w.as_view(), rows, cols, &q, 1, &mut y.as_view_mut());
                    assert!(
                        matches!(r, Err(llorch_cuda::CudaError::Shape { .. })),
                        "{ty:?}: inputs per 32 accepted"
                    );
                }
            }
            let alone: Vec<Vec<f32>> = [0, 5, 15, 31, 63]
                .iter()
                .map(|&t| {
                    product(
                        &gpu,
                        true,
                        fmt,
                        &w,
                        rows,
                        cols,
                        &x[t * cols..(t + 1) * cols],
                        1,
                    )
                })
                .collect();
            let mut tiled = Vec::new();
            // The register tiles (the staged ones are checked against them below).
            gpu.set_wide_products(WideProducts::Registers);
            for ntok in [16, 32, 64] {
                let y = product(&gpu, true, fmt, &w, rows, cols, &x[..ntok * cols], ntok);
                for (&t, one) in [0, 5, 15, 31, 63].iter().zip(&alone) {
                    if t < ntok {
                        let got = &y[t * rows..(t + 1) * rows];
                        assert!(
                            bits(got) == bits(one),
                            "{ty:?} {rows} rows, token {t} of {ntok}: bits differ"
                        );
                    }
                }
                tiled = y;
            }
            gpu.set_wide_products(WideProducts::Auto);
            // Steps of 1-2 tokens on the decode kernels (1, 2 or 4 rows per warp; 4 at
            // one token), 3-4 back on the tensor cores: the tensor cores' bits.
            // The k-quants both with their blocks staged in shared memory and read
            // straight from global memory.
            for (per_warp, staged) in [1, 2, 4].into_iter().flat_map(|p| [(p, true), (p, false)]) {
                gpu.set_decode_products(DecodeProducts {
                    max_tokens: 2,
                    rows_per_warp: Some(per_warp),
                    staged,
                });
                for ntok in 1..=4 {
                    let y = product(&gpu, true, fmt, &w, rows, cols, &x[..ntok * cols], ntok);
                    assert!(
                        bits(&y) == bits(&tiled[..ntok * rows]),
                        "{ty:?} {rows} rows, {ntok} tokens, {per_warp} rows per warp, staged {staged}: bits differ"
                    );
                }
            }
            gpu.set_decode_products(DecodeProducts::default());
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn grouped_products_give_each_matrix_its_own_bits() {
    let mut gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    // The k-quants: Q4_K over 3 blocks a row (a partial round of the staged decode);
    // Q6_K over 8 (staged: every matrix whole 16-byte units) and over 3 (257 rows of 630
    // bytes are not: the decode reads each block from global memory).
    for (ty, fmt, cols) in [
        (GgmlType::Q5_0, QFormat::Q5_0, 640),
        (GgmlType::Q8_0, QFormat::Q8_0, 640),
        (GgmlType::Q4_K, QFormat::Q4K, 768),
        (GgmlType::Q6_K, QFormat::Q6K, 2048),
        (GgmlType::Q6_K, QFormat::Q6K, 768),
    ] {
        let x = noise(17, 4 * cols);
        // q/k/v-like heights, one of them odd (a warp's second row absent).
        let heights = [1024, 256, 257];
        let mats: Vec<_> = heights
            .iter()
            .enumerate()
            .map(|(i, &rows)| {
                gpu.upload(&quantized_matrix(ty, i as u64 + 3, rows, cols))
                    .unwrap()
            })
            .collect();
        for ntok in 1..=4 {
            let x_d = gpu.upload(&x[..ntok * cols]).unwrap();
            let mut q = QActs::new(&gpu, ntok * cols).unwrap();
            q.set_group(QGroup::for_formats([fmt]));
            gpu.quantize_acts(&x_d.as_view(), ntok, cols, &mut q)
                .unwrap();
            // One by one on the tensor cores.
            gpu.set_decode_products(DecodeProducts::TENSOR_CORES);
            let single: Vec<Vec<f32>> = mats
                .iter()
                .zip(heights)
                .map(|(w, rows)| {
                    let mut y = gpu.alloc::<f32>(ntok * rows).unwrap();
                    gpu.qmm_q(
                        fmt,
                        &w.as_view(),
                        rows,
                        cols,
                        &q,
                        ntok,
                        &mut y.as_view_mut(),
                    )
                    .unwrap();
                    let mut h = vec![0.0f32; ntok * rows];
                    gpu.read(&y.as_view(), &mut h).unwrap();
                    h
                })
                .collect();
            for per_warp in [1, 2, 4] {
                gpu.set_decode_products(DecodeProducts {
                    max_tokens: 2,
                    rows_per_warp: Some(per_warp),
                    staged: true,
                });
                let got = grouped_outputs(&gpu, &mats, &heights, ntok, |parts| {
                    gpu.qmm_q_group(fmt, cols, &q, ntok, parts).unwrap()
                });
                for ((h, want), rows) in got.iter().zip(&single).zip(heights) {
                    assert!(
                        bits(h) == bits(want),
                        "{ty:?} {rows} rows, {ntok} tokens, {per_warp} rows per warp"
                    );
                }
            }
            gpu.set_decode_products(DecodeProducts::default());
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn grouped_float_products_give_each_matrix_its_own_bits() {
    // SYS-0003: q/k/v and gate/up of float weights in one tensor-core launch give each
    // matrix the bits of its own launch, whatever the tile the group's height picks.
    let gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    let cols = 640;
    let x = noise(29, 70 * cols);
    for (ty, fmt) in [
        (GgmlType::F16, QFormat::F16),
        (GgmlType::BF16, QFormat::Bf16),
        (GgmlType::F32, QFormat::F32),
    ] {
        for heights in [&[1024usize, 256, 257][..], &[2048, 2048][..], &[40][..]] {
            let mats: Vec<_> = heights
                .iter()
                .enumerate()
                .map(|(i, &rows)| {
                    gpu.upload(&quantized_matrix(ty, i as u64 + 5, rows, cols))
                        .unwrap()
                })
                .collect();
            for ntok in [1, 3, 9, 17, 33, 70] {
                let x_d = gpu.upload(&x[..ntok * cols]).unwrap();
                let single: Vec<Vec<f32>> = mats
                    .iter()
                    .zip(heights)
                    .map(|(w, &rows)| {
                        product(&gpu, false, fmt, w, rows, cols, &x[..ntok * cols], ntok)
                    })
                    .collect();
                let got = grouped_outputs(&gpu, &mats, heights, ntok, |parts| {
                    gpu.qmm_group(fmt, cols, &x_d.as_view(), ntok, parts)
                        .unwrap()
                });
                for ((h, want), rows) in got.iter().zip(&single).zip(heights) {
                    assert!(
                        bits(h) == bits(want),
                        "{ty:?} {heights:?}: {rows} rows, {ntok} tokens"
                    );
                }
            }
        }
    }
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn staged_products_give_the_register_tiles_bits() {
    let mut gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    // Heights that leave a block's last rows empty; widths whose steps are not a
    // multiple of the 8 partitions (32-value formats: 24, 16 and 72 steps; k-quants,
    // one step per 256 values: 3, 2 and 9).
    for (rows, cols) in [(300, 768), (4096, 512), (1000, 2304)] {
        let mut x = noise(rows as u64, 130 * cols);
        // A block holding an infinity (token 3) and one of zeros (token 4).
        x[3 * cols + 5] = f32::INFINITY;
        x[4 * cols..4 * cols + 32].fill(0.0);
        for (ty, fmt) in INTEGER_FORMATS {
            let w = gpu
                .upload(&quantized_matrix(ty, cols as u64, rows, cols))
                .unwrap();
            for ntok in [8, 16, 37, 64, 130] {
                let xs = &x[..ntok * cols];
                gpu.set_wide_products(WideProducts::Registers);
                let want = product(&gpu, true, fmt, &w, rows, cols, xs, ntok);
                assert!(want[3 * rows].is_nan() && want[5 * rows].is_finite());
                for (m, n) in QS_TILES {
                    gpu.set_wide_products(WideProducts::Staged(m, n));
                    let got = product(&gpu, true, fmt, &w, rows, cols, xs, ntok);
                    assert!(
                        bits(&got) == bits(&want),
                        "{ty:?} {rows} × {cols}, {ntok} tokens, staged {m}×{n}: bits differ"
                    );
                }
            }
        }
    }
    gpu.set_wide_products(WideProducts::Auto);
}

#[test]
#[ignore = "needs a CUDA GPU: run with --ignored on the GPU machine"]
fn fused_quantization_gives_quantize_acts_bits() {
    // SYS-0003: the norms and gates that quantize what they write give the inputs
    // `quantize_acts` makes of it, per 32 columns and per 256 (the k-quants' groups),
    // at every norm width class; compared through a product of each group's format.
    let gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    let n = 5;
    // Formats with mins, whose products read the inputs' sums too.
    for (group, ty, fmt) in [
        (QGroup::Per32, GgmlType::Q4_1, QFormat::Q4_1),
        (QGroup::Per256, GgmlType::Q4_K, QFormat::Q4K),
    ] {
        for width in [512, 2048, 4096, 8192, 14_336] {
            let rows = 48;
            let w = gpu
                .upload(&quantized_matrix(ty, width as u64, rows, width))
                .unwrap();
            // Inputs of uneven magnitude per 32 columns, with one row holding a NaN.
            let mut xs: Vec<f32> = noise(width as u64 + 1, n * width)
                .iter()
                .enumerate()
                .map(|(i, v)| v * (1.0 + (i / 32 % 5) as f32))
                .collect();
            xs[2 * width + 77] = f32::NAN;
            let ws = noise(width as u64 + 2, width);
            let (x, nw) = (gpu.upload(&xs).unwrap(), gpu.upload(&ws).unwrap());
            // The product of what a kernel wrote in `out`, quantized by it (`fused`) and
            // by quantize_acts.
            let check = |what: &str, out: &CudaSlice<f32>, fused: &QActs| {
                let mut q = QActs::new(&gpu, n * width).unwrap();
                q.set_group(group);
                gpu.quantize_acts(&out.as_view(), n, width, &mut q).unwrap();
                let mut ya = gpu.alloc::<f32>(n * rows).unwrap();
                let mut yb = gpu.alloc::<f32>(n * rows).unwrap();
                let wv = w.as_view();
                gpu.qmm_q(fmt, &wv, rows, width, fused, n, &mut ya.as_view_mut())
                    .unwrap();
                gpu.qmm_q(fmt, &wv, rows, width, &q, n, &mut yb.as_view_mut())
                    .unwrap();
                let (mut a, mut b) = (vec![0.0f32; n * rows], vec![0.0f32; n * rows]);
                gpu.read(&ya.as_view(), &mut a).unwrap();
                gpu.read(&yb.as_view(), &mut b).unwrap();
                assert!(
                    a[2 * rows].is_nan() && a[rows].is_finite(),
                    "{what} {width}"
                );
                assert!(
                    bits(&a) == bits(&b),
                    "{what} {group:?} {width}: bits differ"
                );
            };
            let mut fq = QActs::new(&gpu, n * width).unwrap();
            fq.set_group(group);
            let mut h = gpu.alloc::<f32>(n * width).unwrap();
            gpu.rms_norm(
                &x.as_view(),
                &nw.as_view(),
                &mut h.as_view_mut(),
                n,
                width,
                1e-6,
                Some(&mut fq),
            )
            .unwrap();
            check("rms_norm", &h, &fq);
            let mut x2 = gpu.upload(&xs).unwrap();
            let o = gpu.upload(&noise(width as u64 + 3, n * width)).unwrap();
            gpu.add_norm_rms(
                &mut x2.as_view_mut(),
                &o.as_view(),
                Some(&nw.as_view()),
                &nw.as_view(),
                &mut h.as_view_mut(),
                n,
                width,
                1e-6,
                Some(&mut fq),
            )
            .unwrap();
            check("add_norm_rms", &h, &fq);
            for gelu in [false, true] {
                let mut gate = gpu.upload(&xs).unwrap();
                gpu.act_mul(
                    gelu,
                    &mut gate.as_view_mut(),
                    &o.as_view(),
                    n,
                    width,
                    Some(&mut fq),
                )
                .unwrap();
                check(if gelu { "gelu" } else { "silu" }, &gate, &fq);
            }
        }
    }
}

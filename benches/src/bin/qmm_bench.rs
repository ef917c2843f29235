//! Device time of single matrix products on a GPU, per kernel path, with the weight
//! bandwidth each reaches: what the engine's decode and prefill steps are made of.
//!
//! `qmm_bench [--filter NAME] [--tokens 1,2,4,8,64] [--reps 20]` prints one markdown
//! row per (matrix, tokens, path): microseconds per product (CUDA graph replays over
//! enough weight copies that L2 holds none of them) and GB/s of weights read, and
//! whether the path's bits equal the tensor-core product's; TOPS: 2 · rows · cols ·
//! tokens per second.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use llorch_benches::engine_load::arg;
use llorch_benches::gpu_time::graph_us;
use llorch_cuda::{CudaSlice, DecodeProducts, Gpu, QActs, QFormat, QGroup, QS_TILES, WideProducts};
use llorch_worker::quant::{GgmlType, quantize_row};
use llorch_worker::synth::SynthRng;

/// (name, GGUF type, device format, rows, columns): gemma-3-270m's and Llama-3-8B's
/// matrices.
const CASES: &[(&str, GgmlType, QFormat, usize, usize)] = &[
    ("gemma q", GgmlType::Q5_0, QFormat::Q5_0, 1024, 640),
    ("gemma k/v", GgmlType::Q5_0, QFormat::Q5_0, 256, 640),
    ("gemma o", GgmlType::Q4_K, QFormat::Q4K, 640, 1024),
    ("gemma gate/up", GgmlType::Q5_0, QFormat::Q5_0, 2048, 640),
    ("gemma v q8", GgmlType::Q8_0, QFormat::Q8_0, 256, 640),
    ("gemma down q4k", GgmlType::Q4_K, QFormat::Q4K, 640, 2048),
    ("gemma down q6k", GgmlType::Q6_K, QFormat::Q6K, 640, 2048),
    ("gemma output", GgmlType::Q8_0, QFormat::Q8_0, 262_144, 640),
    ("8b q/o", GgmlType::Q4_K, QFormat::Q4K, 4096, 4096),
    ("8b k/v", GgmlType::Q4_K, QFormat::Q4K, 1024, 4096),
    ("8b gate/up", GgmlType::Q4_K, QFormat::Q4K, 14_336, 4096),
    ("8b down", GgmlType::Q4_K, QFormat::Q4K, 4096, 14_336),
    ("8b down q6k", GgmlType::Q6_K, QFormat::Q6K, 4096, 14_336),
    ("8b output", GgmlType::Q6_K, QFormat::Q6K, 128_256, 4096),
    ("8b f16 q/o", GgmlType::F16, QFormat::F16, 4096, 4096),
    ("8b f16 k/v", GgmlType::F16, QFormat::F16, 1024, 4096),
    ("8b f16 q+k+v", GgmlType::F16, QFormat::F16, 6144, 4096),
    ("8b f16 gate/up", GgmlType::F16, QFormat::F16, 14_336, 4096),
    ("8b f16 down", GgmlType::F16, QFormat::F16, 4096, 14_336),
];

/// A pseudo-random stream in [-1, 1).
fn noise(seed: u64, n: usize) -> Vec<f32> {
    let mut r = SynthRng::new(seed);
    (0..n).map(|_| r.uniform()).collect()
}

/// `rows` rows of valid blocks: 64 distinct random rows, repeated.
fn weights(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let distinct: Vec<Vec<u8>> = (0..64.min(rows))
        .map(|i| {
            let v: Vec<f32> = noise(i as u64 + 7, cols).iter().map(|x| x * 0.05).collect();
            quantize_row(ty, &v).unwrap()
        })
        .collect();
    (0..rows)
        .flat_map(|r| distinct[r % distinct.len()].iter().copied())
        .collect()
}

/// One kernel path: label, decode setting, wide-product setting.
type Path = (String, DecodeProducts, WideProducts);

/// The paths of a product of `fmt` at `ntok` tokens: the tensor cores' register tiles
/// first (the reference), the decode kernels where they apply, the staged tiles for
/// wider steps, then the default choice.
fn paths(fmt: QFormat, ntok: usize) -> Vec<Path> {
    let tc = DecodeProducts::TENSOR_CORES;
    let mut v = vec![("tensor cores".to_owned(), tc, WideProducts::Registers)];
    if fmt.is_integer() && ntok <= 2 {
        let staged = if fmt.is_kquant() {
            &[false, true][..]
        } else {
            &[false][..]
        };
        for &st in staged {
            for per_warp in [1, 2, 4] {
                let d = DecodeProducts {
                    max_tokens: 2,
                    rows_per_warp: Some(per_warp),
                    staged: st,
                };
                let how = if st { "staged " } else { "" };
                v.push((
                    format!("decode {how}{per_warp} rows/warp"),
                    d,
                    WideProducts::Auto,
                ));
            }
        }
    }
    if fmt.is_integer() && ntok >= 8 {
        for &(t, r) in fmt.qq_tiles() {
            if usize::from(t) <= ntok.next_power_of_two().max(8) {
                v.push((format!("tile {t}×{r}"), tc, WideProducts::Tile(t, r)));
            }
        }
        for (m, n) in QS_TILES {
            v.push((format!("staged {m}×{n}"), tc, WideProducts::Staged(m, n)));
        }
    }
    v.push((
        "default".to_owned(),
        DecodeProducts::default(),
        WideProducts::Auto,
    ));
    v
}

struct Case {
    copies: Vec<CudaSlice<u8>>,
    x: CudaSlice<f32>,
    q: QActs,
    y: CudaSlice<f32>,
}

fn product(gpu: &Gpu, c: &mut Case, w: usize, fmt: QFormat, rows: usize, cols: usize, ntok: usize) {
    let wv = c.copies[w].slice(..);
    let mut y = c.y.slice_mut(..ntok * rows);
    if gpu.takes_quantized(fmt) {
        gpu.qmm_q(fmt, &wv, rows, cols, &c.q, ntok, &mut y).unwrap();
    } else {
        gpu.qmm(
            fmt,
            &wv,
            rows,
            cols,
            &c.x.slice(..ntok * cols),
            ntok,
            &mut y,
        )
        .unwrap();
    }
}

fn main() {
    // `--precompile ARCH DIR`: only fill the kernel cache DIR for ARCH (no GPU needed),
    // so a fresh GPU machine skips the compile.
    if let Some(arch) = arg("--precompile") {
        let args: Vec<String> = std::env::args().collect();
        let dir = args.last().unwrap();
        let src = llorch_cuda::kernels::source();
        llorch_cuda::compile::compile_cached(&src, &arch, Some(std::path::Path::new(dir))).unwrap();
        println!(
            "{}",
            llorch_cuda::compile::cache_path(std::path::Path::new(dir), &src, &arch).display()
        );
        return;
    }
    let filter = arg("--filter");
    let tokens: Vec<usize> = arg("--tokens")
        .unwrap_or_else(|| "1,2,4,8,64".into())
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let reps: usize = arg("--reps").and_then(|r| r.parse().ok()).unwrap_or(20);
    let mut gpu = Gpu::open(0, Some(&llorch_worker::demo::kernel_cache_dir())).unwrap();
    println!("{}", gpu.describe());
    println!("| matrix | fmt | rows × cols | tokens | path | µs | GB/s | TOPS | bits |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let max_tok = tokens.iter().copied().max().unwrap_or(1);
    for &(name, ty, fmt, rows, cols) in CASES {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let host = weights(ty, rows, cols);
        // Enough copies that the L2 (50-60 MB) holds none between two reads of one.
        let n_copies = (256usize << 20).div_ceil(host.len()).clamp(1, 64);
        let copies: Vec<CudaSlice<u8>> =
            (0..n_copies).map(|_| gpu.upload(&host).unwrap()).collect();
        let xs = noise(99, max_tok * cols);
        let mut c = Case {
            copies,
            x: gpu.upload(&xs).unwrap(),
            q: {
                let mut q = QActs::new(&gpu, max_tok * cols).unwrap();
                q.set_group(QGroup::for_formats([fmt]));
                q
            },
            y: gpu.alloc::<f32>(max_tok * rows).unwrap(),
        };
        for &ntok in &tokens {
            if fmt.is_integer() {
                gpu.quantize_acts(&c.x.slice(..ntok * cols), ntok, cols, &mut c.q)
                    .unwrap();
            }
            let mut reference: Option<Vec<u32>> = None;
            for (label, setting, wide) in paths(fmt, ntok) {
                gpu.set_decode_products(setting);
                gpu.set_wide_products(wide);
                product(&gpu, &mut c, 0, fmt, rows, cols, ntok);
                let mut out = vec![0f32; ntok * rows];
                gpu.read(&c.y.slice(..ntok * rows), &mut out).unwrap();
                let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                let same = match &reference {
                    None => {
                        reference = Some(bits);
                        "ref"
                    }
                    Some(r) if *r == bits => "same",
                    Some(_) => "DIFFER",
                };
                let cref = &mut c;
                let us = graph_us(&gpu, reps, n_copies, |g| {
                    for w in 0..n_copies {
                        product(g, cref, w, fmt, rows, cols, ntok);
                    }
                    Ok(())
                });
                let gbs = host.len() as f64 / us / 1e3;
                let tops = 2.0 * (rows * cols * ntok) as f64 / us / 1e6;
                println!(
                    "| {name} | {fmt:?} | {rows} × {cols} | {ntok} | {label} | {us:.2} | {gbs:.0} | {tops:.1} | {same} |"
                );
            }
        }
    }
    gpu.set_decode_products(DecodeProducts::default());
    gpu.set_wide_products(WideProducts::Auto);
}

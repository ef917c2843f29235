//! Writes synthetic GGUF models (issue 4): real shapes for benchmarks, or the
//! fuzz seed corpus.
//!
//! ```text
//! cargo run --release -p llorch-worker --example synth_model -- PRESET PATH [TYPE]
//!     PRESET: tiny-gemma3 | tiny-llama | tiny-qwen2 | tiny-mistral | gemma3-270m | qwen2.5-0.5b | llama3-8b
//!     TYPE:   weight type of the matrices (F16, Q8_0, Q4_K, ...), default per preset
//! cargo run -p llorch-worker --example synth_model -- corpus llorch-worker/fuzz/corpus/gguf_parse
//! ```
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use llorch_worker::gguf::{GgufError, GgufWriter, MetaValue};
use llorch_worker::quant::GgmlType;
use llorch_worker::synth::{self, Arch, SynthConfig};

fn preset(name: &str) -> Option<SynthConfig> {
    Some(match name {
        "tiny-gemma3" => SynthConfig::tiny(Arch::Gemma3),
        "tiny-llama" => SynthConfig::tiny(Arch::Llama),
        "tiny-qwen2" => SynthConfig::tiny(Arch::Qwen2),
        "tiny-mistral" => SynthConfig::tiny(Arch::Mistral),
        "gemma3-270m" => SynthConfig::gemma3_270m(),
        "qwen2.5-0.5b" => SynthConfig::qwen2_5_0_5b(),
        "llama3-8b" => SynthConfig::llama3_8b(),
        _ => return None,
    })
}

/// A micro model (1 layer, hidden 32) of `arch` for the fuzz corpus.
fn micro(arch: Arch) -> SynthConfig {
    let mut c = SynthConfig::tiny(arch);
    (
        c.n_layer,
        c.n_embd,
        c.n_ff,
        c.n_head,
        c.n_head_kv,
        c.head_dim,
    ) = (1, 32, 32, 2, 1, 16);
    (c.embed_type, c.output_type) = (GgmlType::Q8_0, GgmlType::Q4_0);
    c
}

/// Every metadata value type and a few tensor types in a file of about 1 KB.
fn small() -> Result<Vec<u8>, GgufError> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetaValue::String("llama".into()));
    w.set("llama.block_count", MetaValue::U32(1));
    w.set("k.u8", MetaValue::U8(1));
    w.set("k.i16", MetaValue::I16(-2));
    w.set("k.i64", MetaValue::I64(-3));
    w.set("k.f64", MetaValue::F64(0.5));
    w.set("k.bool", MetaValue::Bool(true));
    w.set(
        "k.arr",
        MetaValue::Array(vec![MetaValue::I32(1), MetaValue::I32(2)]),
    );
    w.set(
        "k.strs",
        MetaValue::Array(vec![
            MetaValue::String("<s>".into()),
            MetaValue::String("▁a".into()),
        ]),
    );
    let v: Vec<f32> = (0..256).map(|i| (i as f32 - 128.0) / 64.0).collect();
    w.add_tensor_f32("f32", &[4, 2], GgmlType::F32, &v[..8])?;
    w.add_tensor_f32("f16", &[8], GgmlType::F16, &v[..8])?;
    w.add_tensor_f32("q8_0", &[32, 2], GgmlType::Q8_0, &v[..64])?;
    w.add_tensor_f32("q4_k", &[256], GgmlType::Q4_K, &v)?;
    w.add_tensor_f32("q6_k", &[256], GgmlType::Q6_K, &v)?;
    w.to_bytes()
}

fn corpus(dir: &Path) -> Result<(), GgufError> {
    let io = |source| GgufError::Io {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty-v3.gguf", GgufWriter::new().to_bytes()?),
        ("small.gguf", small()?),
        ("micro-gemma3.gguf", synth::to_bytes(&micro(Arch::Gemma3))?),
        ("micro-qwen2.gguf", synth::to_bytes(&micro(Arch::Qwen2))?),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), &bytes).map_err(io)?;
        println!("{name}: {} bytes", bytes.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [c, dir] if c == "corpus" => corpus(Path::new(dir)),
        [p, path, rest @ ..] if rest.len() <= 1 => {
            let Some(mut cfg) = preset(p) else {
                eprintln!("synth_model: unknown preset `{p}`");
                return ExitCode::from(2);
            };
            if let Some(t) = rest.first() {
                match t.parse::<GgmlType>() {
                    Ok(ty) => cfg = cfg.with_weight_type(ty),
                    Err(e) => {
                        eprintln!("synth_model: {e}");
                        return ExitCode::from(2);
                    }
                }
            }
            let t0 = Instant::now();
            synth::write_file(&cfg, path).map(|n| {
                let s = t0.elapsed().as_secs_f64();
                println!(
                    "{path}: {n} bytes in {s:.1} s ({:.0} MB/s)",
                    n as f64 / s / 1e6
                );
            })
        }
        _ => {
            eprintln!("usage: synth_model PRESET PATH [TYPE] | synth_model corpus DIR");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth_model: {e}");
            ExitCode::from(2)
        }
    }
}

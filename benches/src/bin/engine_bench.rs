//! CPU engine throughput on a GGUF model, beside llama.cpp's `llama-bench` when given.
//!
//! `cargo run --release -p llorch-benches --bin engine_bench -- [--model PATH|demo]
//! [--llama-bench PATH] [--threads N]` prints a table: prefill of 128 tokens, decode at
//! batch 1, aggregate decode of 8 concurrent sequences, and resident memory.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use llorch_benches::engine_load::{arg, drain, prompt, request};
use llorch_worker::engine::{Engine, EngineConfig, VecSink};
use llorch_worker::model::load::load;

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    if let Some(t) = arg("--threads").and_then(|t| t.parse().ok()) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build_global()
            .unwrap();
    }
    let model = match arg("--model").as_deref() {
        None | Some("demo") => llorch_worker::demo::require_demo_model(),
        Some(p) => PathBuf::from(p),
    };
    let file_mib = std::fs::metadata(&model).unwrap().len() as f64 / (1 << 20) as f64;
    let cfg = EngineConfig {
        max_seqs: 8,
        max_ctx: 256,
        prefill_chunk: 128,
        max_step_tokens: 1024,
        ..EngineConfig::default()
    };
    let mut e = load(&model).unwrap().into_cpu_engine(cfg);
    let vocab = e.backend().vocab_size();
    let kv_mib = (e.backend().memory_bytes() as f64 / (1 << 20) as f64) - file_mib;

    // Warm-up.
    e.submit(
        request(0, prompt(32, 0, vocab), 4),
        Box::new(VecSink::default()),
    )
    .unwrap();
    drain(&mut e);

    // Prefill 128 tokens (the one step that processes the prompt), best of 3.
    let mut prefill = f64::MAX;
    for i in 0..3 {
        e.submit(
            request(i, prompt(128, i + 1, vocab), 1),
            Box::new(VecSink::default()),
        )
        .unwrap();
        let (_, s) = drain(&mut e);
        prefill = prefill.min(s);
    }
    let prefill_tps = 128.0 / prefill;

    // Decode: after the prompt's step, time the remaining steps.
    let decode = |e: &mut Engine, n: usize, steps: u32| -> f64 {
        for i in 0..n {
            e.submit(
                request(100 + i, prompt(16, 50 + i, vocab), steps + 1),
                Box::new(VecSink::default()),
            )
            .unwrap();
        }
        e.step().unwrap(); // prefill + first token of every sequence
        let (_, s) = drain(e);
        (n as f64 * f64::from(steps)) / s
    };
    let d1 = decode(&mut e, 1, 64);
    let d8 = decode(&mut e, 8, 64);
    let rss = rss_mib();

    println!(
        "model: {} ({file_mib:.0} MiB), device: {}",
        model.display(),
        e.backend().device_name()
    );
    println!(
        "| engine | prefill 128 tok/s | decode batch 1 tok/s | decode 8 seqs aggregate tok/s | RSS MiB (file + KV) |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| llorch (CPU) | {prefill_tps:.0} | {d1:.1} | {d8:.1} | {rss:.0} ({file_mib:.0} + {kv_mib:.0}) |"
    );

    if let Some(lb) = arg("--llama-bench") {
        let threads = rayon::current_num_threads().to_string();
        let out = Command::new(&lb)
            .args([
                "-m",
                model.to_str().unwrap(),
                "-t",
                &threads,
                "-p",
                "128",
                "-n",
                "64",
                "-r",
                "3",
                "-o",
                "csv",
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8_lossy(&o.stdout).to_string();
                let mut lines = text.lines();
                let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
                let col = header.iter().position(|h| h.trim_matches('"') == "avg_ts");
                let tps: Vec<String> = lines
                    .filter_map(|l| {
                        let v = l
                            .split(',')
                            .nth(col?)?
                            .trim_matches('"')
                            .parse::<f64>()
                            .ok()?;
                        Some(format!("{v:.1}"))
                    })
                    .collect();
                println!(
                    "| llama.cpp ({threads} threads) | {} | {} | — | — |",
                    tps.first().map_or("?", |s| s),
                    tps.get(1).map_or("?", |s| s)
                );
            }
            other => println!("llama-bench failed: {other:?}"),
        }
    }
}

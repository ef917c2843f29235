//! Runs the llorch-sched simulator and prints its report.
//!
//! `cargo run --release -p llorch-benches --bin sched_sim -- [--seed N] [--hours H] [--scenario demo|pressure]`
//!
//! `demo`: 2 nodes × 2 GPUs of 24 GiB, six models, bursty traffic (see `SimConfig::demo`).
//! `pressure`: the same traffic on one node, so models must be evicted and reloaded.

use std::time::Instant;

use llorch_sched::sim::{SimConfig, simulate};

fn main() {
    let mut seed = 42u64;
    let mut hours = 1.0f64;
    let mut scenario = String::from("demo");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--seed" => seed = v.parse().unwrap_or(seed),
            "--hours" => hours = v.parse().unwrap_or(hours),
            "--scenario" => scenario = v,
            _ => {
                eprintln!("usage: sched_sim [--seed N] [--hours H] [--scenario demo|pressure]");
                std::process::exit(2);
            }
        }
    }
    let mut cfg = SimConfig::demo(seed);
    cfg.duration_ms = (hours * 3_600_000.0) as u64;
    if scenario == "pressure" {
        cfg.nodes = 1;
    }
    let start = Instant::now();
    match simulate(&cfg) {
        Ok(report) => {
            println!("scenario {scenario}");
            println!("{report}");
            println!("wall time {:.2} s", start.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("simulation failed: {e}");
            std::process::exit(1);
        }
    }
}

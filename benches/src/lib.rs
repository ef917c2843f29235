//! Benchmarks of llama-orch. Run `cargo bench -p llorch-benches`; reports live in `benches/reports/`.

pub mod engine_load;
pub mod gpu_time;

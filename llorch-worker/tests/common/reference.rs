//! Teacher-forced comparison with llama.cpp's reference fixture for gemma-3-270m.
#![allow(dead_code, clippy::unwrap_used, clippy::print_stderr)]

use llorch_worker::backend::ComputeBackend;
use llorch_worker::forcing::teacher_force;

/// The fixture file: `$LLORCH_FIXTURE_DIR/reference_generation.json` when set (a GPU
/// machine without ../shared), else the repository's neighbour `shared/fixtures`.
pub fn fixture_text() -> String {
    let path = std::env::var_os("LLORCH_FIXTURE_DIR").map_or_else(
        || {
            std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures/gemma3-270m"
            ))
        },
        std::path::PathBuf::from,
    );
    std::fs::read_to_string(path.join("reference_generation.json")).unwrap()
}

/// Steps whose reference top-1/top-2 gap exceeds 0.1, how many of them our top-1
/// matches, and the mean |Δ logprob| of the chosen tokens.
pub struct Agreement {
    pub clear: usize,
    pub agree: usize,
    pub mean: f64,
}

/// Teacher-forces every fixture case through `backend` and compares.
pub fn compare(backend: &mut dyn ComputeBackend) -> Agreement {
    let cases: serde_json::Value = serde_json::from_str(&fixture_text()).unwrap();
    let (mut diffs, mut n, mut clear, mut agree) = (0.0f64, 0usize, 0usize, 0usize);
    for case in cases.as_array().unwrap() {
        let mut tokens: Vec<u32> = case["prompt_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let n_prompt = tokens.len();
        let steps = case["steps"].as_array().unwrap();
        for s in steps {
            tokens.push(s["id"].as_u64().unwrap() as u32);
        }
        let ours = teacher_force(backend, &tokens[..tokens.len() - 1], 5, 64).unwrap();
        for (k, s) in steps.iter().enumerate() {
            let row = &ours[n_prompt - 1 + k];
            let chosen = s["id"].as_u64().unwrap() as u32;
            let top = s["top"].as_array().unwrap();
            let gap = top[0]["logprob"].as_f64().unwrap() - top[1]["logprob"].as_f64().unwrap();
            if gap > 0.1 {
                clear += 1;
                if row[0].0 == top[0]["id"].as_u64().unwrap() as u32 {
                    agree += 1;
                } else {
                    // Which steps flip, and by how much (reported with the result).
                    eprintln!(
                        "flip at step {k}: reference gap {gap:.3}, ours picks {} over {}",
                        row[0].0, top[0]["id"]
                    );
                }
            }
            // Our logprob of the reference's chosen token (from our top-5 when present).
            if let Some(&(_, lp)) = row.iter().find(|(id, _)| *id == chosen) {
                diffs += (f64::from(lp) - s["logprob"].as_f64().unwrap()).abs();
                n += 1;
            }
        }
    }
    let mean = diffs / n as f64;
    eprintln!("clear steps {clear}, top-1 agreement {agree}; mean |Δ logprob| {mean:.4} over {n}");
    Agreement { clear, agree, mean }
}

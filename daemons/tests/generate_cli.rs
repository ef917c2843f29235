//! `llorch generate` and `llorch logprobs` on the real demo model (issue 5).
#![allow(clippy::unwrap_used)]

mod support;

use support::llorch;

#[test]
fn generate_json_is_deterministic_per_seed() {
    let model = llorch_worker::demo::require_demo_model();
    let m = model.to_str().unwrap();
    let run = |seed: &str| {
        let out = llorch(&[
            "generate",
            "--model",
            m,
            "--prompt",
            "The capital of France is",
            "--max-tokens",
            "8",
            "--seed",
            seed,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let a = run("7");
    assert_eq!(a["tokens"].as_array().unwrap().len(), 8);
    assert!(!a["text"].as_str().unwrap().is_empty());
    assert_eq!(run("7"), a, "same seed, same tokens");
    // Greedy continues the prompt as llama.cpp does (reference completion).
    let out = llorch(&[
        "generate",
        "--model",
        m,
        "--prompt",
        "The capital of France is",
        "--max-tokens",
        "6",
        "--temperature",
        "0",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with(" the capital of the country"));
}

#[test]
fn logprobs_gives_one_row_per_token() {
    let model = llorch_worker::demo::require_demo_model();
    let out = llorch(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--tokens",
        "2,818,5279,529,7001,563",
        "--top",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5].as_array().unwrap().len(), 3);
    assert_eq!(
        rows[5][0]["id"], 506,
        "after 'The capital of France is' comes ' the'"
    );
    assert!(rows[5][0]["logprob"].as_f64().unwrap() < 0.0);
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let model = llorch_worker::demo::require_demo_model();
    let m = model.to_str().unwrap();
    for args in [
        vec!["generate", "--model", "/nonexistent.gguf", "--prompt", "x"],
        vec![
            "generate",
            "--model",
            m,
            "--prompt",
            "x",
            "--temperature",
            "5",
        ],
        vec![
            "generate",
            "--model",
            m,
            "--prompt",
            "x",
            "--max-tokens",
            "abc",
        ],
        vec!["logprobs", "--model", m, "--tokens", "1,x"],
        vec!["logprobs", "--model", m, "--tokens", "4000000"],
    ] {
        let out = llorch(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

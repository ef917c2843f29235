//! `llorch tokenize` / `llorch detokenize` on the demo model (gemma-3-270m) against
//! llama.cpp's reference cases. Needs the demo model (`scripts/fetch-demo-model.sh`);
//! panics when it is absent, never skips.
#![allow(clippy::unwrap_used)]

mod support;

use support::llorch;

use std::process::Output;

use llorch_worker::demo::require_demo_model;

fn model() -> String {
    require_demo_model().display().to_string()
}

/// One-line message naming the problem, exit code 2, nothing on stdout.
fn assert_usage_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
}

/// (text, ids with BOS) from shared/fixtures/gemma3-270m/reference_tokenizer.json.
const CASES: &[(&str, &[u32])] = &[
    ("Hello world", &[2, 9259, 1902]),
    (" leading space", &[2, 5830, 2557]),
    (
        "tabs\tand\nnewlines\n\n",
        &[2, 39218, 255968, 624, 107, 208697, 108],
    ),
    ("émigré café naïve", &[2, 5854, 554, 11460, 33443, 120362]),
    ("emoji 🎉🚀 test", &[2, 67906, 204906, 242015, 1594]),
    (
        "<start_of_turn>user\nHi<end_of_turn>\n",
        &[2, 105, 2364, 107, 10979, 106, 107],
    ),
    ("a\u{a0}nbsp", &[2, 236746, 432, 398, 11539]),
    ("", &[2]),
];

#[test]
fn tokenize_prints_one_json_array() {
    let m = model();
    for (text, ids) in CASES {
        let out = llorch(&["tokenize", "--model", &m, text]);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let got: Vec<u32> = serde_json::from_str(&stdout).unwrap();
        assert_eq!(got, *ids, "{text:?}");
    }
}

#[test]
fn detokenize_prints_the_text() {
    let m = model();
    for (text, ids) in CASES {
        let list: Vec<String> = ids.iter().map(u32::to_string).collect();
        let out = llorch(&["detokenize", "--model", &m, &list.join(",")]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), *text);
    }
}

#[test]
fn text_may_start_with_a_dash() {
    let out = llorch(&["tokenize", "--model", &model(), "-5 apples"]);
    assert!(out.status.success(), "{out:?}");
    let ids: Vec<u32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids[0], 2);
}

#[test]
fn bad_id_lists_exit_2() {
    let m = model();
    assert_usage_error(
        &llorch(&["detokenize", "--model", &m, "2,x,3"]),
        "bad token id \"x\"",
    );
    assert_usage_error(
        &llorch(&["detokenize", "--model", &m, "1,,2"]),
        "bad token id",
    );
    assert_usage_error(
        &llorch(&["detokenize", "--model", &m, "-1"]),
        "bad token id",
    );
    assert_usage_error(
        &llorch(&["detokenize", "--model", &m, "2,262144"]),
        "token id 262144 is out of range",
    );
}

#[test]
fn missing_or_bad_model_exits_2() {
    let missing = "/nonexistent/dir/model.gguf";
    assert_usage_error(&llorch(&["tokenize", "--model", missing, "hi"]), missing);
    assert_usage_error(&llorch(&["detokenize", "--model", missing, "1,2"]), missing);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.gguf");
    std::fs::write(&bad, b"not a model at all").unwrap();
    let bad = bad.display().to_string();
    assert_usage_error(
        &llorch(&["tokenize", "--model", &bad, "hi"]),
        "not a GGUF file",
    );
}

//! The `llorch` binary as a user runs it: exit codes and output.
#![allow(clippy::unwrap_used)]

mod support;

use support::llorch;

#[test]
fn ref_prints_canonical_json_with_cache_path() {
    let out = llorch(&["ref", "hf:org/repo::file=m.gguf", "--cache-dir", "/c"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "hf");
    assert_eq!(v["canonical"], "hf:org/repo::file=m.gguf");
    assert_eq!(v["cache_path"], "/c/hf/org--repo/main/m.gguf");
}

#[test]
fn bad_ref_is_one_line_and_exit_2() {
    let out = llorch(&["ref", "hf:org/repo::file=../../etc/passwd"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`..`"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn help_lists_only_working_commands() {
    let out = llorch(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("ref") && help.contains("error-codes"));
    assert!(help.contains("tokenize") && help.contains("detokenize"));
    let codes = llorch(&["error-codes"]);
    let text = String::from_utf8(codes.stdout).unwrap();
    assert!(text.contains("QUEUE_FULL") && text.contains("429"));
}

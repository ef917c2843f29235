//! `llorch inspect` on the real model, and on truncated and corrupted copies
//! of it: exit 2 with one line on stderr naming the problem (issue 4, WORK-3030).
#![allow(clippy::unwrap_used)]

mod support;

use support::llorch;

use std::path::Path;

use llorch_worker::gguf::GgufFile;

fn inspect_fails(path: &Path, expect: &str) {
    let out = llorch(&["inspect", path.to_str().unwrap()]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{expect}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("llorch inspect: "), "{err}");
    assert!(err.contains(expect), "expected `{expect}` in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn inspect_real_model_text_and_json() {
    let model = llorch_worker::demo::require_demo_model();
    let out = llorch(&["inspect", model.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["architecture"], "gemma3");
    assert_eq!(v["block_count"], 18);
    assert_eq!(v["context_length"], 32768);
    assert_eq!(v["parameters"], 268_098_176u64);
    assert_eq!(v["n_tensors"], 236);
    let types = &v["tensor_types"];
    for (t, n) in [
        ("F32", 109),
        ("Q5_0", 81),
        ("Q4_K", 27),
        ("Q8_0", 10),
        ("Q6_K", 9),
    ] {
        assert_eq!(types[t], n, "{t}");
    }
    assert_eq!(types.as_object().unwrap().len(), 5);
    let tensors = v["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), 236);
    let emb = tensors
        .iter()
        .find(|t| t["name"] == "token_embd.weight")
        .unwrap();
    assert_eq!(emb["dims"], serde_json::json!([640, 262144]));
    assert_eq!(emb["type"], "Q8_0");
    assert_eq!(v["metadata"]["tokenizer.ggml.tokens"]["len"], 262_144);

    let out = llorch(&["inspect", model.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("architecture:    gemma3"), "{text}");
    assert!(
        text.contains("tensor types:    F32 109, Q5_0 81, Q4_K 27, Q8_0 10, Q6_K 9"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("blk.17.ffn_down.weight"))
        .unwrap();
    assert!(row.contains("2048 x 640"), "{row}");
}

/// A copy of the model's header and tables with `edit` applied, extended to
/// `len` bytes (sparse: the tensor data reads as zeros, still a valid file).
fn copy(
    dir: &Path,
    name: &str,
    head: &[u8],
    len: u64,
    edit: impl FnOnce(&mut Vec<u8>),
) -> std::path::PathBuf {
    let mut b = head[..head.len().min(len as usize)].to_vec();
    edit(&mut b);
    let p = dir.join(name);
    std::fs::write(&p, &b).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len)
        .unwrap();
    p
}

#[test]
fn inspect_truncated_and_corrupted_copies_exit_2_with_one_line() {
    let model = llorch_worker::demo::require_demo_model();
    let f = GgufFile::open(&model).unwrap();
    let (len, data) = (f.len(), f.data_offset());
    let head = f.bytes()[..data as usize].to_vec();
    let dir = tempfile::tempdir().unwrap();

    // The sparse full-length copy itself is valid.
    let ok = copy(dir.path(), "ok.gguf", &head, len, |_| {});
    assert!(llorch(&["inspect", ok.to_str().unwrap()]).status.success());

    // Truncations: header, KV table (early and inside the token list), tensor
    // table, start of data, inside the data, one byte short.
    for (cut, expect) in [
        (0, "truncated"),
        (3, "truncated"),
        (10, "tensor count"),
        (30, "truncated"),
        (1000, "tokenizer.ggml.tokens"),
        (3_000_000, "truncated"),
        (data - 2000, "truncated"),
        (data - 1, "data section"),
        (data, "past its end"),
        (data + 1_000_000, "past its end"),
        (len - 1, "past its end"),
    ] {
        let p = copy(dir.path(), &format!("cut{cut}.gguf"), &head, cut, |_| {});
        inspect_fails(&p, expect);
    }

    // Corruptions of the header, the KV table and one tensor entry.
    let name = b"token_embd.weight";
    let mut pat = (name.len() as u64).to_le_bytes().to_vec();
    pat.extend_from_slice(name);
    let entry = head.windows(pat.len()).rposition(|w| w == pat).unwrap();
    let n_dims_at = entry + pat.len();
    let dim1_at = n_dims_at + 4 + 8;
    let type_at = n_dims_at + 4 + 16;
    let off_at = type_at + 4;
    let le32 = |v: u32| v.to_le_bytes().to_vec();
    let le64 = |v: u64| v.to_le_bytes().to_vec();
    let cases: Vec<(&str, usize, Vec<u8>)> = vec![
        ("not a GGUF file", 0, b"GGUX".to_vec()),
        ("version 7", 4, le32(7)),
        ("tensor count", 8, le64(u64::MAX)),
        ("key/value count", 16, le64(1 << 40)),
        ("unknown value type 99", 52, le32(99)),
        ("not valid UTF-8", 33, vec![0xff]),
        ("9 dimensions", n_dims_at, le32(9)),
        ("unknown ggml type id 4", type_at, le32(4)),
        ("overflows", dim1_at, le64(1 << 62)),
        ("past its end", dim1_at, le64(1 << 30)),
        ("alignment 32", off_at, le64(1)),
        ("overlaps", off_at, le64(0)),
    ];
    for (i, (expect, at, bytes)) in cases.into_iter().enumerate() {
        let edit = |b: &mut Vec<u8>| b[at..at + bytes.len()].copy_from_slice(&bytes);
        let p = copy(dir.path(), &format!("bad{i}.gguf"), &head, len, edit);
        inspect_fails(&p, expect);
    }
}

#[test]
fn inspect_bad_arguments_exit_2_with_one_line() {
    for args in [
        &["inspect"][..],
        &["inspect", "a", "b"],
        &["inspect", "--bogus", "x"],
    ] {
        let out = llorch(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    inspect_fails(dir.path(), "not a regular file");
    inspect_fails(&dir.path().join("missing.gguf"), "missing.gguf");
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    inspect_fails(&empty, "truncated");
}

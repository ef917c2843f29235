//! GGUF reader: round trips through the writer, the real model, and one test
//! per kind of defect, each a typed error naming what and where (WORK-3030).
#![allow(clippy::unwrap_used)]

mod common;

use common::Raw;
use llorch_worker::gguf::{GgufError, GgufFile, GgufWriter, MetaValue};
use llorch_worker::quant::GgmlType;

fn err(bytes: Vec<u8>) -> GgufError {
    GgufFile::parse(bytes).unwrap_err()
}

#[test]
fn empty_file_with_no_tensors_and_no_keys_is_valid() {
    let f = GgufFile::parse(Raw::header(3, 0, 0).done()).unwrap();
    assert_eq!(f.version(), 3);
    assert!(f.tensors().is_empty() && f.metadata().is_empty());
    let f = GgufFile::parse(Raw::header(2, 0, 0).done()).unwrap();
    assert_eq!(f.version(), 2);
}

#[test]
fn minimal_hand_written_file_parses() {
    let mut r = Raw::header(3, 2, 2);
    r.str("general.architecture").u32(8).str("llama");
    r.kv_u32("llama.block_count", 1);
    r.tensor("a", &[4, 2], 0, 0).tensor("b", &[32], 8, 32);
    r.data(32 + 34);
    let f = GgufFile::parse(r.done()).unwrap();
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.metadata().get_u64("llama.block_count"), Some(1));
    let a = f.tensor("a").unwrap();
    assert_eq!(
        (a.n_elements(), a.n_bytes, a.ggml_type),
        (8, 32, GgmlType::F32)
    );
    assert_eq!(a.offset % 32, 0);
    let b = f.tensor("b").unwrap();
    assert_eq!((b.n_bytes, b.offset), (34, a.offset + 32));
    assert_eq!(f.tensor_data(b).len(), 34);
    assert!(f.tensor_data(b).iter().all(|&x| x == 0x11));
}

#[test]
fn writer_round_trip_keeps_metadata_and_bytes() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", MetaValue::String("test".into()));
    w.set("a.u8", MetaValue::U8(7));
    w.set("a.i8", MetaValue::I8(-7));
    w.set("a.u16", MetaValue::U16(700));
    w.set("a.i16", MetaValue::I16(-700));
    w.set("a.i32", MetaValue::I32(-70000));
    w.set("a.f32", MetaValue::F32(1.5));
    w.set("a.bool", MetaValue::Bool(true));
    w.set("a.u64", MetaValue::U64(u64::MAX));
    w.set("a.i64", MetaValue::I64(i64::MIN));
    w.set("a.f64", MetaValue::F64(-2.25));
    w.set(
        "a.strs",
        MetaValue::Array(vec![
            MetaValue::String("x".into()),
            MetaValue::String("ÿ▁".into()),
        ]),
    );
    w.set("a.empty", MetaValue::Array(vec![]));
    w.set_alignment(64).unwrap();
    let t1: Vec<u8> = (0..=255u8).cycle().take(6 * 4).collect();
    w.add_tensor_bytes("t1", &[3, 2], GgmlType::F32, t1.clone())
        .unwrap();
    let vals: Vec<f32> = (0..64).map(|i| i as f32 / 7.0).collect();
    w.add_tensor_f32("t2", &[32, 2], GgmlType::Q8_0, &vals)
        .unwrap();
    w.add_tensor_with("t3", &[256], GgmlType::Q4_K, |out| {
        out.write_all(&[9u8; 144])
    })
    .unwrap();
    let expected_size = w.file_size().unwrap();
    let bytes = w.to_bytes().unwrap();
    assert_eq!(bytes.len() as u64, expected_size);
    let f = GgufFile::parse(bytes).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.metadata().get("a.i64"), Some(&MetaValue::I64(i64::MIN)));
    assert_eq!(f.metadata().get("a.f32"), Some(&MetaValue::F32(1.5)));
    assert_eq!(
        f.metadata().get_array("a.strs").unwrap()[1].as_str(),
        Some("ÿ▁")
    );
    assert_eq!(f.metadata().get_array("a.empty").unwrap().len(), 0);
    assert_eq!(f.metadata().len(), 14);
    assert_eq!(f.tensor_data(f.tensor("t1").unwrap()), &t1[..]);
    let t2 = f.tensor("t2").unwrap();
    assert_eq!(t2.dims, vec![32, 2]);
    assert_eq!(t2.n_bytes, 68);
    assert_eq!(t2.offset % 64, 0);
    assert_eq!(f.tensor_data(f.tensor("t3").unwrap()), &[9u8; 144][..]);
    assert_eq!(
        f.tensors()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["t1", "t2", "t3"]
    );
}

#[test]
fn writer_rejects_wrong_data_length() {
    let mut w = GgufWriter::new();
    w.add_tensor_with("t", &[4], GgmlType::F32, |out| out.write_all(&[0u8; 15]))
        .unwrap();
    assert!(matches!(w.to_bytes(), Err(GgufError::Writer(m)) if m.contains("15 bytes written")));
    let mut w = GgufWriter::new();
    w.add_tensor_with("t", &[4], GgmlType::F32, |out| out.write_all(&[0u8; 17]))
        .unwrap();
    assert!(matches!(w.to_bytes(), Err(GgufError::Write(_))));
    let mut w = GgufWriter::new();
    assert!(
        w.add_tensor_bytes("t", &[4], GgmlType::Q4_0, vec![])
            .is_err(),
        "4 is not a block multiple"
    );
    assert!(
        w.add_tensor_bytes("n".repeat(65), &[1], GgmlType::F32, vec![0; 4])
            .is_err()
    );
}

#[test]
fn file_open_maps_and_writer_writes_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    let mut w = GgufWriter::new();
    w.add_tensor_f32("x", &[8], GgmlType::F16, &[1.0; 8])
        .unwrap();
    w.write_file(&p).unwrap();
    let f = GgufFile::open(&p).unwrap();
    assert!(f.is_mapped());
    assert_eq!(f.tensor_data(&f.tensors()[0]), &[0x00, 0x3c].repeat(8)[..]);
    // Errors name the path; an empty file and a directory are typed errors.
    std::fs::write(dir.path().join("empty"), b"").unwrap();
    assert!(matches!(
        GgufFile::open(dir.path().join("empty")),
        Err(GgufError::Truncated { .. })
    ));
    assert!(matches!(
        GgufFile::open(dir.path()),
        Err(GgufError::Io { .. })
    ));
    let e = GgufFile::open(dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn real_model_opens_and_validates() {
    let path = llorch_worker::demo::require_demo_model();
    let t0 = std::time::Instant::now();
    let f = GgufFile::open(&path).unwrap();
    eprintln!("opened and validated the demo model in {:?}", t0.elapsed());
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture(), Some("gemma3"));
    assert_eq!(f.metadata().get_u64("gemma3.block_count"), Some(18));
    assert_eq!(
        f.metadata()
            .get_array("tokenizer.ggml.tokens")
            .unwrap()
            .len(),
        262_144
    );
    assert_eq!(f.tensors().len(), 236);
    let count = |ty| f.tensors().iter().filter(|t| t.ggml_type == ty).count();
    assert_eq!(count(GgmlType::F32), 109);
    assert_eq!(count(GgmlType::Q5_0), 81);
    assert_eq!(count(GgmlType::Q4_K), 27);
    assert_eq!(count(GgmlType::Q8_0), 10);
    assert_eq!(count(GgmlType::Q6_K), 9);
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, vec![640, 262_144]);
    assert!(
        f.tensor("output.weight").is_none(),
        "gemma3 ties the output to the embedding"
    );
    let last = f
        .tensors()
        .iter()
        .map(|t| t.offset + t.n_bytes)
        .max()
        .unwrap();
    assert!(last <= f.len());
    assert_eq!(f.n_params(), 268_098_176);
    // Every tensor of the real model dequantizes to finite values.
    let t0 = std::time::Instant::now();
    for t in f.tensors() {
        let v = f.tensor_f32(t).unwrap();
        assert_eq!(v.len() as u64, t.n_elements());
        assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
    }
    eprintln!("dequantized all 268 M weights in {:?}", t0.elapsed());
    let norm = f
        .tensor_f32(f.tensor("output_norm.weight").unwrap())
        .unwrap();
    assert!(norm.iter().any(|&x| x != 0.0));
}

// ---- one test per defect ----

#[test]
fn bad_magic_and_versions() {
    let mut b = Raw::header(3, 0, 0).done();
    b[0] = b'X';
    assert!(matches!(err(b), GgufError::BadMagic { .. }));
    assert!(matches!(
        err(Raw::header(1, 0, 0).done()),
        GgufError::UnsupportedVersion { version: 1 }
    ));
    assert!(matches!(
        err(Raw::header(3 << 24, 0, 0).done()),
        GgufError::UnsupportedVersion { .. }
    ));
}

#[test]
fn truncated_header_names_the_field_and_offset() {
    let b = Raw::header(3, 0, 0).done();
    for cut in 0..b.len() {
        let e = err(b[..cut].to_vec());
        assert!(matches!(e, GgufError::Truncated { .. }), "cut {cut}: {e}");
    }
    let e = err(b[..10].to_vec()).to_string();
    assert!(e.contains("tensor count") && e.contains("byte 8"), "{e}");
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    let e = err(Raw::header(3, 0, u64::MAX).done());
    assert!(
        matches!(e, GgufError::TooLarge { ref what, .. } if what == "key/value count"),
        "{e}"
    );
    let e = err(Raw::header(3, u64::MAX, 0).done());
    assert!(
        matches!(e, GgufError::TooLarge { ref what, .. } if what == "tensor count"),
        "{e}"
    );
    // A plausible count that the file cannot back.
    let e = err(Raw::header(3, 1000, 0).done());
    assert!(
        matches!(
            e,
            GgufError::Truncated {
                needed: 33000,
                available: 0,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn huge_string_and_array_lengths_are_refused() {
    let mut r = Raw::header(3, 0, 1);
    r.u64(u64::MAX);
    assert!(matches!(
        err(r.done()),
        GgufError::TooLarge { .. } | GgufError::Truncated { .. }
    ));
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(8).u64(1 << 40);
    let e = err(r.done()).to_string();
    assert!(e.contains("key \"k\""), "{e}");
    for elem in [0u32, 8] {
        let mut r = Raw::header(3, 0, 1);
        r.str("arr").u32(9).u32(elem).u64(u64::MAX / 2);
        let e = err(r.done());
        assert!(
            matches!(e, GgufError::TooLarge { ref what, .. } if what.contains("arr")),
            "{e}"
        );
    }
}

#[test]
fn bad_values_are_typed_errors() {
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(13).u32(0);
    assert!(matches!(
        err(r.done()),
        GgufError::UnknownValueType { type_id: 13, .. }
    ));
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(9).u64(1);
    assert!(matches!(err(r.done()), GgufError::NestedArray { .. }));
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(9).u32(77).u64(1);
    assert!(matches!(
        err(r.done()),
        GgufError::UnknownValueType { type_id: 77, .. }
    ));
    let mut r = Raw::header(3, 0, 2);
    r.kv_u32("k", 1).kv_u32("k", 2);
    let e = err(r.done());
    assert!(
        matches!(e, GgufError::DuplicateKey { ref key, offset: 41 } if key == "k"),
        "{e}"
    );
    let mut r = Raw::header(3, 0, 1);
    r.bytes_str(&[0xff, 0xfe]).u32(4).u32(0);
    assert!(matches!(
        err(r.done()),
        GgufError::InvalidUtf8 { offset: 32, .. }
    ));
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(8).bytes_str(&[b'a', 0xc3]);
    assert!(matches!(err(r.done()), GgufError::InvalidUtf8 { .. }));
    let mut r = Raw::header(3, 0, 1);
    r.str("k").u32(7).u8(2);
    assert!(matches!(err(r.done()), GgufError::InvalidValue { .. }));
}

#[test]
fn alignment_must_be_a_u32_power_of_two() {
    for a in [0u32, 3, 48] {
        let mut r = Raw::header(3, 0, 1);
        r.kv_u32("general.alignment", a);
        let e = err(r.done()).to_string();
        assert!(
            e.contains("general.alignment") && e.contains("power of two"),
            "{e}"
        );
    }
    let mut r = Raw::header(3, 0, 1);
    r.str("general.alignment").u32(10).u64(32);
    assert!(err(r.done()).to_string().contains("instead of u32"));
    let mut r = Raw::header(3, 1, 1);
    r.kv_u32("general.alignment", 8).tensor("t", &[2], 0, 8);
    r.data(16);
    let f = GgufFile::parse(r.done()).unwrap();
    assert_eq!(f.alignment(), 8);
}

fn one_tensor(name: &str, dims: &[u64], ty: u32, offset: u64, data: usize) -> GgufError {
    let mut r = Raw::header(3, 1, 0);
    r.tensor(name, dims, ty, offset).data(data);
    err(r.done())
}

fn tensor_reason(e: GgufError) -> String {
    match e {
        GgufError::InvalidTensor {
            name,
            reason,
            offset,
        } => {
            assert_eq!(offset, 24, "entry offset");
            format!("{name}: {reason}")
        }
        other => panic!("expected InvalidTensor, got {other}"),
    }
}

#[test]
fn tensor_table_defects_are_named() {
    assert!(tensor_reason(one_tensor("t", &[], 0, 0, 64)).contains("0 dimensions"));
    assert!(tensor_reason(one_tensor("t", &[1, 1, 1, 1, 1], 0, 0, 64)).contains("5 dimensions"));
    assert!(tensor_reason(one_tensor("t", &[4, 0], 0, 0, 64)).contains("dimension 1 is 0"));
    assert!(tensor_reason(one_tensor("t", &[1 << 32, 1 << 32], 0, 0, 64)).contains("overflows"));
    assert!(tensor_reason(one_tensor("t", &[u64::MAX], 0, 0, 64)).contains("overflows"));
    assert!(tensor_reason(one_tensor("t", &[1 << 61], 0, 0, 64)).contains("byte size"));
    assert!(tensor_reason(one_tensor("t", &[4], 4, 0, 64)).contains("unknown ggml type id 4"));
    assert!(
        tensor_reason(one_tensor("t", &[16], 2, 0, 64))
            .contains("not a multiple of the Q4_0 block size 32")
    );
    assert!(tensor_reason(one_tensor("t", &[4], 0, 16, 64)).contains("alignment 32"));
    assert!(tensor_reason(one_tensor("t", &[4], 0, 64, 64)).contains("past its end"));
    assert!(tensor_reason(one_tensor("t", &[4], 0, u64::MAX - 31, 64)).contains("past its end"));
    assert!(tensor_reason(one_tensor("", &[4], 0, 0, 64)).contains("empty name"));
    let e = one_tensor(&"n".repeat(65), &[4], 0, 0, 64);
    assert!(matches!(e, GgufError::TooLarge { limit: 64, .. }), "{e}");
    // 64 bytes is allowed.
    let mut r = Raw::header(3, 1, 0);
    r.tensor(&"n".repeat(64), &[4], 0, 0).data(16);
    GgufFile::parse(r.done()).unwrap();
}

#[test]
fn duplicates_overlaps_and_missing_data() {
    let mut r = Raw::header(3, 2, 0);
    r.tensor("a", &[4], 0, 0).tensor("a", &[4], 0, 32).data(64);
    assert!(err(r.done()).to_string().contains("duplicate name"));
    let mut r = Raw::header(3, 2, 0);
    r.tensor("a", &[16], 0, 0).tensor("b", &[4], 0, 32).data(64);
    let e = err(r.done());
    assert!(
        matches!(e, GgufError::TensorOverlap { ref name, ref other, .. } if name == "b" && other == "a"),
        "{e}"
    );
    let mut r = Raw::header(3, 1, 0);
    r.tensor("a", &[4], 0, 0);
    assert!(matches!(err(r.done()), GgufError::DataOutOfBounds { .. }));
}

#[test]
fn files_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GgufFile>();
    send_sync::<llorch_worker::gguf::TensorInfo>();
}

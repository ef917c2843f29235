//! Robustness of the GGUF reader (issue 4, WORK-3030): a valid tiny GGUF is
//! truncated at every offset and mutated by proptest (huge counts and
//! lengths, overflowing dims, offsets out of range or overlapping, unknown
//! types, misalignment, random byte flips, inserted and deleted bytes).
//! Every case must return `Ok` or a typed error, quickly, and this test
//! binary runs under an allocator capped at 256 MiB: an attempt to allocate
//! from an untrusted count aborts the run.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use cap::Cap;
use llorch_worker::gguf::GgufFile;
use llorch_worker::quant::dequantize_row;
use llorch_worker::synth::{self, Arch, SynthConfig};
use proptest::prelude::*;

#[global_allocator]
static ALLOC: Cap<std::alloc::System> = Cap::new(std::alloc::System, 256 << 20);

/// What a field of the base file is, for targeted mutations.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Count,
    Len,
    ValueType,
    NDims,
    Dim,
    TensorType,
    TensorOffset,
}

/// The base file and the offsets of its fields.
struct Base {
    bytes: Vec<u8>,
    fields: Vec<(Field, usize)>,
}

fn base() -> Base {
    let mut b: Vec<u8> = Vec::new();
    let mut fields = Vec::new();
    let u32f = |b: &mut Vec<u8>, f: &mut Vec<(Field, usize)>, k: Field, v: u32| {
        f.push((k, b.len()));
        b.extend_from_slice(&v.to_le_bytes());
    };
    let u64f = |b: &mut Vec<u8>, f: &mut Vec<(Field, usize)>, k: Field, v: u64| {
        f.push((k, b.len()));
        b.extend_from_slice(&v.to_le_bytes());
    };
    let strf = |b: &mut Vec<u8>, f: &mut Vec<(Field, usize)>, s: &str| {
        u64f(b, f, Field::Len, s.len() as u64);
        b.extend_from_slice(s.as_bytes());
    };
    b.extend_from_slice(b"GGUF");
    b.extend_from_slice(&3u32.to_le_bytes());
    u64f(&mut b, &mut fields, Field::Count, 4);
    u64f(&mut b, &mut fields, Field::Count, 6);
    strf(&mut b, &mut fields, "general.architecture");
    u32f(&mut b, &mut fields, Field::ValueType, 8);
    strf(&mut b, &mut fields, "llama");
    strf(&mut b, &mut fields, "general.alignment");
    u32f(&mut b, &mut fields, Field::ValueType, 4);
    b.extend_from_slice(&32u32.to_le_bytes());
    strf(&mut b, &mut fields, "llama.block_count");
    u32f(&mut b, &mut fields, Field::ValueType, 4);
    b.extend_from_slice(&1u32.to_le_bytes());
    strf(&mut b, &mut fields, "tokenizer.ggml.tokens");
    u32f(&mut b, &mut fields, Field::ValueType, 9);
    u32f(&mut b, &mut fields, Field::ValueType, 8);
    u64f(&mut b, &mut fields, Field::Len, 3);
    for t in ["a", "b", "<s>"] {
        strf(&mut b, &mut fields, t);
    }
    strf(&mut b, &mut fields, "tokenizer.ggml.scores");
    u32f(&mut b, &mut fields, Field::ValueType, 9);
    u32f(&mut b, &mut fields, Field::ValueType, 6);
    u64f(&mut b, &mut fields, Field::Len, 3);
    for s in [0f32, -1.0, -2.0] {
        b.extend_from_slice(&s.to_le_bytes());
    }
    strf(&mut b, &mut fields, "test.bool");
    u32f(&mut b, &mut fields, Field::ValueType, 7);
    b.push(1);
    // name, dims, type, offset: F32 [4,2] @0, Q8_0 [32,2] @32, Q4_K [256] @128, F16 [8] @288.
    let tensors: [(&str, &[u64], u32, u64); 4] = [
        ("a", &[4, 2], 0, 0),
        ("b", &[32, 2], 8, 32),
        ("c", &[256], 12, 128),
        ("d", &[8], 1, 288),
    ];
    for (name, dims, ty, off) in tensors {
        strf(&mut b, &mut fields, name);
        u32f(&mut b, &mut fields, Field::NDims, dims.len() as u32);
        for d in dims {
            u64f(&mut b, &mut fields, Field::Dim, *d);
        }
        u32f(&mut b, &mut fields, Field::TensorType, ty);
        u64f(&mut b, &mut fields, Field::TensorOffset, off);
    }
    while b.len() % 32 != 0 {
        b.push(0);
    }
    // Data: small finite values (0x3c00 = 1.0 in f16 where it matters).
    b.extend((0..304).map(|i| if i % 2 == 1 { 0x3c } else { 0 }));
    Base { bytes: b, fields }
}

/// Parses `bytes`, and if valid reads and dequantizes every tensor; returns the time taken.
fn exercise(bytes: Vec<u8>) -> Duration {
    let t0 = Instant::now();
    match GgufFile::parse(bytes) {
        Ok(f) => {
            for t in f.tensors() {
                let data = f.tensor_data(t);
                assert_eq!(data.len() as u64, t.n_bytes, "{}", t.name);
                if t.ggml_type.can_dequantize() && t.n_elements() <= 1 << 16 {
                    let mut out = vec![0f32; t.n_elements() as usize];
                    dequantize_row(t.ggml_type, data, &mut out).unwrap();
                }
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                !msg.is_empty() && !msg.contains('\n'),
                "one-line message: {msg:?}"
            );
        }
    }
    t0.elapsed()
}

#[test]
fn base_file_is_valid() {
    let b = base();
    let f = GgufFile::parse(b.bytes.clone()).unwrap();
    assert_eq!(f.tensors().len(), 4);
    assert_eq!(f.metadata().len(), 6);
    assert_eq!(
        b.fields
            .iter()
            .filter(|f| f.0 == Field::TensorOffset)
            .count(),
        4
    );
}

#[test]
fn truncation_at_every_offset_is_a_typed_error() {
    let file = base().bytes;
    let mut worst = Duration::ZERO;
    for cut in 0..file.len() {
        // Every proper prefix of a file with tensors is invalid.
        assert!(GgufFile::validate(&file[..cut]).is_err(), "prefix {cut}");
        worst = worst.max(exercise(file[..cut].to_vec()));
    }
    assert!(worst < Duration::from_secs(1), "slowest case {worst:?}");
}

#[test]
fn truncation_of_a_synthetic_model_is_a_typed_error() {
    // Every offset through the metadata and tensor table, then every 61st
    // byte of the tensor data (those all fail the same bounds check).
    let file = synth::to_bytes(&SynthConfig::tiny(Arch::Gemma3)).unwrap();
    let data = GgufFile::parse(file.clone()).unwrap().data_offset() as usize;
    let t0 = Instant::now();
    let mut worst = Duration::ZERO;
    let cuts = (0..data + 64).chain((data + 64..file.len()).step_by(61));
    let mut n = 0;
    for cut in cuts {
        let t = Instant::now();
        let e = GgufFile::validate(&file[..cut]).unwrap_err();
        worst = worst.max(t.elapsed());
        assert!(!e.to_string().contains('\n'));
        n += 1;
    }
    assert!(worst < Duration::from_secs(1), "slowest case {worst:?}");
    eprintln!(
        "{n} truncations of a {} byte model in {:?}, slowest {worst:?}",
        file.len(),
        t0.elapsed()
    );
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Overwrite the u64 field #i (counts, lengths, dims, offsets) with a value.
    SetU64(usize, u64),
    /// Overwrite the u32 field #i (types, n_dims) with a value.
    SetU32(usize, u32),
    /// Copy tensor offset field #i onto field #j (overlaps), or add a misalignment.
    Offset(usize, usize, u64),
    /// Set byte `pos` to `val`.
    Flip(usize, u8),
    /// Insert bytes at `pos`.
    Insert(usize, Vec<u8>),
    /// Delete `len` bytes at `pos`.
    Delete(usize, usize),
    /// Truncate to `len`.
    Truncate(usize),
}

fn interesting_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX / 2),
        Just(1 << 32),
        Just(1 << 40),
        Just(1 << 62),
        Just(1 << 63),
        Just(i64::MAX as u64 + 1),
        0u64..5000,
        any::<u64>(),
    ]
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(4),
        Just(5),
        Just(9),
        Just(13),
        Just(u32::MAX),
        0u32..64,
        any::<u32>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_u64()).prop_map(|(i, v)| Mutation::SetU64(i, v)),
        (any::<usize>(), interesting_u32()).prop_map(|(i, v)| Mutation::SetU32(i, v)),
        (any::<usize>(), any::<usize>(), 0u64..64).prop_map(|(i, j, d)| Mutation::Offset(i, j, d)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Mutation::Flip(p, v)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(base: &Base, muts: &[Mutation]) -> Vec<u8> {
    let mut b = base.bytes.clone();
    let of = |pred: &dyn Fn(Field) -> bool| -> Vec<usize> {
        base.fields
            .iter()
            .filter(|f| pred(f.0))
            .map(|f| f.1)
            .collect()
    };
    let u64s = of(&|f| {
        matches!(
            f,
            Field::Count | Field::Len | Field::Dim | Field::TensorOffset
        )
    });
    let u32s = of(&|f| matches!(f, Field::ValueType | Field::NDims | Field::TensorType));
    let offs = of(&|f| f == Field::TensorOffset);
    let put = |b: &mut Vec<u8>, at: usize, v: &[u8]| {
        if at + v.len() <= b.len() {
            b[at..at + v.len()].copy_from_slice(v);
        }
    };
    for m in muts {
        match m {
            Mutation::SetU64(i, v) => put(&mut b, u64s[i % u64s.len()], &v.to_le_bytes()),
            Mutation::SetU32(i, v) => put(&mut b, u32s[i % u32s.len()], &v.to_le_bytes()),
            Mutation::Offset(i, j, d) => {
                let src = offs[i % offs.len()];
                let Some(v) = b
                    .get(src..src + 8)
                    .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
                else {
                    continue;
                };
                put(
                    &mut b,
                    offs[j % offs.len()],
                    &(v.wrapping_add(*d)).to_le_bytes(),
                );
            }
            Mutation::Flip(p, v) if !b.is_empty() => {
                let n = b.len();
                b[p % n] = *v;
            }
            Mutation::Insert(p, v) => {
                let at = p % (b.len() + 1);
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Delete(p, n) if !b.is_empty() => {
                let at = p % b.len();
                b.drain(at..(at + n).min(b.len()));
            }
            Mutation::Truncate(n) => b.truncate(n % (b.len() + 1)),
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_give_ok_or_typed_errors(muts in proptest::collection::vec(mutation(), 1..5)) {
        let b = base();
        let took = exercise(apply(&b, &muts));
        prop_assert!(took < Duration::from_secs(1), "case took {took:?}");
        // Well under the cap: nothing large was ever allocated.
        prop_assert!(ALLOC.max_allocated() < 64 << 20, "peak {} bytes", ALLOC.max_allocated());
    }
}

#[test]
fn targeted_mutations_hit_their_checks() {
    let b = base();
    let find = |k: Field, n: usize| b.fields.iter().filter(|f| f.0 == k).nth(n).unwrap().1;
    let cases: Vec<(Mutation, &str)> = vec![
        (Mutation::SetU64(0, u64::MAX), "tensor count"),
        (Mutation::SetU64(1, u64::MAX), "key/value count"),
        (Mutation::SetU64(2, 1 << 40), "length of key #0 at byte 24"),
        (Mutation::SetU32(0, 13), "unknown value type 13"),
        (Mutation::SetU32(6, 9), "nested array"),
    ];
    for (m, expect) in cases {
        let e = GgufFile::parse(apply(&b, std::slice::from_ref(&m)))
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect), "{m:?}: {e}");
    }
    // Array length beyond the file, and past the fixed cap.
    let mut bytes = b.bytes.clone();
    let len_at = b
        .fields
        .iter()
        .filter(|f| f.0 == Field::Len)
        .map(|f| f.1)
        .nth(5)
        .unwrap();
    bytes[len_at..len_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = GgufFile::parse(bytes).unwrap_err().to_string();
    assert!(
        e.contains("array length of key \"tokenizer.ggml.tokens\""),
        "{e}"
    );
    // Overlapping and misaligned tensors.
    let o = |n| find(Field::TensorOffset, n);
    let mut bytes = b.bytes.clone();
    bytes[o(1)..o(1) + 8].copy_from_slice(&0u64.to_le_bytes());
    assert!(
        GgufFile::parse(bytes)
            .unwrap_err()
            .to_string()
            .contains("overlaps")
    );
    let mut bytes = b.bytes.clone();
    bytes[o(3)..o(3) + 8].copy_from_slice(&290u64.to_le_bytes());
    assert!(
        GgufFile::parse(bytes)
            .unwrap_err()
            .to_string()
            .contains("alignment")
    );
    let mut bytes = b.bytes.clone();
    let d = find(Field::Dim, 0);
    bytes[d..d + 8].copy_from_slice(&(1u64 << 63).to_le_bytes());
    assert!(
        GgufFile::parse(bytes)
            .unwrap_err()
            .to_string()
            .contains("overflows")
    );
}

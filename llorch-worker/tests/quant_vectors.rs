//! Dequantization is bit-exact with llama.cpp's reference: every case of
//! `tests/data/quant_vectors.json` (made by `scripts/gen_quant_vectors.py`
//! with the `gguf` package) compared as f32 bit patterns. Issue 4.
#![allow(clippy::unwrap_used)]

use llorch_worker::quant::{GgmlType, dequantize_row, quantize_row};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cases() -> Vec<serde_json::Value> {
    let text = include_str!("data/quant_vectors.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn every_vector_dequantizes_bit_exactly() {
    let cases = cases();
    assert_eq!(
        cases.len(),
        12,
        "F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q8_K"
    );
    for c in &cases {
        let name = c["type"].as_str().unwrap();
        let ty: GgmlType = name.parse().unwrap();
        assert_eq!(
            u64::from(ty.id()),
            c["ggml_type_id"].as_u64().unwrap(),
            "{name} id"
        );
        assert_eq!(
            ty.block_size(),
            c["block_elems"].as_u64().unwrap(),
            "{name} block size"
        );
        assert_eq!(
            ty.type_size(),
            c["block_bytes"].as_u64().unwrap(),
            "{name} block bytes"
        );
        let raw = hex(c["raw_hex"].as_str().unwrap());
        let want: Vec<u32> = c["dequant_f32_bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let mut got = vec![0f32; want.len()];
        dequantize_row(ty, &raw, &mut got).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g.to_bits(),
                *w,
                "{name} element {i}: got {g:e}, want {:e}",
                f32::from_bits(*w)
            );
        }
        // Unaligned input takes the copying path and gives the same bits.
        let mut shifted = vec![0u8; raw.len() + 1];
        shifted[1..].copy_from_slice(&raw);
        let mut got2 = vec![0f32; want.len()];
        dequantize_row(ty, &shifted[1..], &mut got2).unwrap();
        assert!(
            got.iter()
                .zip(&got2)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name} unaligned"
        );
    }
}

#[test]
fn quantizers_reproduce_the_reference_blocks() {
    // For types the gguf package quantized, re-quantizing the dequantized
    // values must give back the same blocks for the exact float types, and
    // values that dequantize identically for the block quants.
    for c in cases() {
        let name = c["type"].as_str().unwrap();
        let ty: GgmlType = name.parse().unwrap();
        if c["source"] != "quantize" {
            continue;
        }
        let raw = hex(c["raw_hex"].as_str().unwrap());
        let n = c["n_elems"].as_u64().unwrap() as usize;
        let mut y = vec![0f32; n];
        dequantize_row(ty, &raw, &mut y).unwrap();
        let again = quantize_row(ty, &y).unwrap();
        let mut y2 = vec![0f32; n];
        dequantize_row(ty, &again, &mut y2).unwrap();
        let max_err = y
            .iter()
            .zip(&y2)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let max_abs = y
            .iter()
            .map(|v| v.abs())
            .filter(|v| v.is_finite())
            .fold(0f32, f32::max);
        if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
            assert_eq!(raw, again, "{name}: float formats round-trip exactly");
        } else {
            assert!(
                max_err <= max_abs * 1e-3,
                "{name}: requantized values moved by {max_err}"
            );
        }
    }
}

#[test]
fn unsupported_and_bad_lengths_are_errors() {
    let mut out = [0f32; 32];
    assert!(dequantize_row(GgmlType::IQ2_XXS, &[0; 66], &mut [0f32; 256]).is_err());
    assert!(dequantize_row(GgmlType::Q4_0, &[0; 17], &mut out).is_err());
    assert!(dequantize_row(GgmlType::Q4_0, &[0; 18], &mut out[..16]).is_err());
    assert!(quantize_row(GgmlType::Q8_K, &[0.0; 256]).is_err());
    assert!(quantize_row(GgmlType::Q4_0, &[0.0; 31]).is_err());
}

#[test]
fn quantizers_are_bit_exact_with_the_reference() {
    let text = include_str!("data/quantize_vectors.json");
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for c in cases {
        let name = c["type"].as_str().unwrap();
        let ty: GgmlType = name.parse().unwrap();
        let x: Vec<f32> = c["input_f32_bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| f32::from_bits(v.as_u64().unwrap() as u32))
            .collect();
        let want = hex(c["raw_hex"].as_str().unwrap());
        let got = quantize_row(ty, &x).unwrap();
        assert_eq!(got.len(), want.len(), "{name} length");
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(first_diff, None, "{name}: first differing byte");
    }
}

#[test]
fn k_quantizers_stay_close_to_the_input() {
    // A simple (not llama.cpp-identical) quantizer: bounded error per block.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    for (ty, levels, rms_bound) in [
        (GgmlType::Q4_K, 15.0, 0.12),
        (GgmlType::Q5_K, 31.0, 0.06),
        (GgmlType::Q6_K, 63.0, 0.03),
    ] {
        // (Much smaller scales make the f16 super-block scale subnormal, as in llama.cpp.)
        for scale in [0.05f32, 1.0, 300.0] {
            let mut x: Vec<f32> = (0..1024).map(|_| rnd() * scale).collect();
            x[5] = 3.0 * scale; // an outlier
            x[600..700].iter_mut().for_each(|v| *v = 0.0);
            let q = quantize_row(ty, &x).unwrap();
            assert_eq!(q.len() as u64, ty.row_bytes(1024).unwrap());
            let mut y = vec![0f32; 1024];
            dequantize_row(ty, &q, &mut y).unwrap();
            for (b, (xb, yb)) in x.chunks(256).zip(y.chunks(256)).enumerate() {
                let range = xb.iter().fold(0f32, |m, v| m.max(v.abs())) * 2.0;
                let max_err = xb
                    .iter()
                    .zip(yb)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    max_err <= range / levels * 1.5,
                    "{ty} scale {scale} block {b}: max err {max_err}, range {range}"
                );
                let rms = (xb
                    .iter()
                    .zip(yb)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
                    / 256.0)
                    .sqrt();
                let rms_x = (xb.iter().map(|a| a * a).sum::<f32>() / 256.0).sqrt();
                assert!(
                    rms <= rms_x * rms_bound,
                    "{ty} scale {scale} block {b}: rms err {rms} vs rms {rms_x}"
                );
            }
        }
        // All zeros stay zeros.
        let q = quantize_row(ty, &[0.0; 256]).unwrap();
        let mut y = vec![1f32; 256];
        dequantize_row(ty, &q, &mut y).unwrap();
        assert!(y.iter().all(|v| *v == 0.0), "{ty} zeros");
    }
}

/// FNV-1a over the f32 bit patterns.
fn fnv(v: &[f32]) -> u64 {
    v.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
        (h ^ u64::from(x.to_bits())).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn real_model_tensors_dequantize_bit_exactly() {
    // Hashes of gguf.quants.dequantize() of these tensors of the demo model
    // (FNV-1a over the u32 bit patterns), one per quantized type it uses.
    let f = llorch_worker::gguf::GgufFile::open(llorch_worker::demo::require_demo_model()).unwrap();
    for (name, ty, want) in [
        (
            "blk.0.attn_output.weight",
            GgmlType::Q4_K,
            0x397e_3240_ee8a_34d5u64,
        ),
        ("blk.0.attn_q.weight", GgmlType::Q5_0, 0x805b_56b5_161e_a325),
        ("blk.0.attn_v.weight", GgmlType::Q8_0, 0x4f68_37a5_53a0_d2a5),
        (
            "blk.0.ffn_down.weight",
            GgmlType::Q6_K,
            0xfeac_16be_5789_bca7,
        ),
    ] {
        let t = f.tensor(name).unwrap();
        assert_eq!(t.ggml_type, ty);
        assert_eq!(fnv(&f.tensor_f32(t).unwrap()), want, "{name}");
    }
}

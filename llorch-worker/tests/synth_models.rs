//! Synthetic models: llama.cpp names and keys, a consistent real vocabulary,
//! deterministic weights, and the big shapes' sizes (without writing them).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use llorch_worker::gguf::{GgufFile, MetaValue};
use llorch_worker::quant::{GgmlType, dequantize};
use llorch_worker::synth::{self, Arch, SynthConfig, VocabKind, WeightFill, token_type};

const ARCHES: [Arch; 4] = [Arch::Gemma3, Arch::Llama, Arch::Qwen2, Arch::Mistral];

fn tiny(arch: Arch) -> GgufFile {
    GgufFile::parse(synth::to_bytes(&SynthConfig::tiny(arch)).unwrap()).unwrap()
}

fn strs(f: &GgufFile, key: &str) -> Vec<String> {
    f.metadata()
        .get_array(key)
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tiny_models_have_llama_cpp_names_and_keys() {
    for arch in ARCHES {
        let t0 = std::time::Instant::now();
        let f = tiny(arch);
        assert!(
            t0.elapsed().as_millis() < 2000,
            "{arch:?} took {:?}",
            t0.elapsed()
        );
        let a = arch.gguf_name();
        let md = f.metadata();
        assert_eq!(f.architecture(), Some(a));
        for k in [
            "block_count",
            "embedding_length",
            "feed_forward_length",
            "attention.head_count",
            "attention.head_count_kv",
            "context_length",
        ] {
            assert!(
                md.get_u64(&format!("{a}.{k}")).is_some(),
                "{arch:?}: {a}.{k}"
            );
        }
        assert!(
            md.get_f64(&format!("{a}.attention.layer_norm_rms_epsilon"))
                .is_some()
        );
        assert!(md.get_f64(&format!("{a}.rope.freq_base")).is_some());
        let n_layer = md.get_u64(&format!("{a}.block_count")).unwrap();
        let names: HashSet<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
        for n in ["token_embd.weight", "output_norm.weight"] {
            assert!(names.contains(n), "{arch:?} {n}");
        }
        for i in 0..n_layer {
            for s in [
                "attn_norm",
                "attn_q",
                "attn_k",
                "attn_v",
                "attn_output",
                "ffn_norm",
                "ffn_gate",
                "ffn_up",
                "ffn_down",
            ] {
                assert!(
                    names.contains(format!("blk.{i}.{s}.weight").as_str()),
                    "{arch:?} blk.{i}.{s}"
                );
            }
            let gemma = [
                "attn_q_norm",
                "attn_k_norm",
                "post_attention_norm",
                "post_ffw_norm",
            ];
            for s in gemma {
                assert_eq!(
                    names.contains(format!("blk.{i}.{s}.weight").as_str()),
                    arch == Arch::Gemma3,
                    "{s}"
                );
            }
            for s in ["attn_q", "attn_k", "attn_v"] {
                assert_eq!(
                    names.contains(format!("blk.{i}.{s}.bias").as_str()),
                    arch == Arch::Qwen2,
                    "{s}.bias"
                );
            }
        }
        let tied = matches!(arch, Arch::Gemma3 | Arch::Qwen2);
        assert_eq!(
            !names.contains("output.weight"),
            tied,
            "{arch:?} tied output"
        );
        // Shapes in GGUF order: ne0 is the input (row) dimension.
        let hd = md
            .get_u64(&format!("{a}.attention.key_length"))
            .unwrap_or(16);
        let n_head = md.get_u64(&format!("{a}.attention.head_count")).unwrap();
        let n_kv = md.get_u64(&format!("{a}.attention.head_count_kv")).unwrap();
        assert!(n_kv < n_head, "GQA");
        assert_eq!(
            f.tensor("blk.0.attn_q.weight").unwrap().dims,
            vec![64, n_head * hd]
        );
        assert_eq!(
            f.tensor("blk.0.attn_k.weight").unwrap().dims,
            vec![64, n_kv * hd]
        );
        assert_eq!(
            f.tensor("blk.0.attn_output.weight").unwrap().dims,
            vec![n_head * hd, 64]
        );
        assert_eq!(
            f.tensor("blk.1.ffn_down.weight").unwrap().dims,
            vec![128, 64]
        );
        let n_vocab = md.get_array("tokenizer.ggml.tokens").unwrap().len() as u64;
        assert_eq!(
            f.tensor("token_embd.weight").unwrap().dims,
            vec![64, n_vocab]
        );
    }
}

#[test]
fn arch_specific_keys() {
    let g = tiny(Arch::Gemma3);
    assert_eq!(
        g.metadata().get_u64("gemma3.attention.sliding_window"),
        Some(32)
    );
    assert_eq!(
        g.metadata().get_u64("gemma3.attention.key_length"),
        Some(32)
    );
    assert_eq!(
        g.metadata().get_u64("gemma3.attention.value_length"),
        Some(32)
    );
    assert_eq!(g.tensor("blk.0.attn_q_norm.weight").unwrap().dims, vec![32]);
    let m = tiny(Arch::Mistral);
    assert_eq!(m.architecture(), Some("llama"));
    assert_eq!(
        m.metadata().get_u64("llama.attention.sliding_window"),
        Some(64)
    );
    let l = tiny(Arch::Llama);
    assert_eq!(
        l.metadata().get_str("llama.rope.scaling.type"),
        Some("linear")
    );
    assert_eq!(l.metadata().get_f64("llama.rope.scaling.factor"), Some(2.0));
    assert_eq!(
        l.metadata()
            .get_u64("llama.rope.scaling.original_context_length"),
        Some(128)
    );
    assert_eq!(l.metadata().get_u64("llama.rope.dimension_count"), Some(16));
    let q = tiny(Arch::Qwen2);
    assert_eq!(q.tensor("blk.1.attn_k.bias").unwrap().dims, vec![32]);
    // Llama 3.1 style scaling: rope_freqs.weight, as llama.cpp's converter writes it.
    let mut cfg = SynthConfig::tiny(Arch::Llama);
    cfg.rope_scaling.as_mut().unwrap().kind = "llama3".into();
    let f = GgufFile::parse(synth::to_bytes(&cfg).unwrap()).unwrap();
    let rf = f.tensor("rope_freqs.weight").unwrap();
    assert_eq!((rf.dims.clone(), rf.ggml_type), (vec![8], GgmlType::F32));
    assert!(f.metadata().get("llama.rope.scaling.type").is_none());
    let v = dequantize(GgmlType::F32, f.tensor_data(rf), 8).unwrap();
    assert_eq!(v[0], 1.0, "high frequencies unscaled");
    assert_eq!(v[7], 2.0, "low frequencies scaled by the factor");
}

#[test]
fn spm_vocabularies_are_real_and_consistent() {
    for (arch, bos, eos) in [
        (Arch::Gemma3, "<bos>", "<eos>"),
        (Arch::Mistral, "<s>", "</s>"),
    ] {
        let f = tiny(arch);
        let md = f.metadata();
        assert_eq!(md.get_str("tokenizer.ggml.model"), Some("llama"));
        let tokens = strs(&f, "tokenizer.ggml.tokens");
        let scores = md.get_array("tokenizer.ggml.scores").unwrap();
        let types = md.get_array("tokenizer.ggml.token_type").unwrap();
        assert_eq!(tokens.len(), scores.len());
        assert_eq!(tokens.len(), types.len());
        assert!(tokens.len() > 600, "{} tokens", tokens.len());
        assert_eq!(
            tokens.iter().collect::<HashSet<_>>().len(),
            tokens.len(),
            "unique pieces"
        );
        for b in 0..=255u8 {
            let id = tokens
                .iter()
                .position(|t| *t == format!("<0x{b:02X}>"))
                .unwrap();
            assert_eq!(types[id].as_i64(), Some(i64::from(token_type::BYTE)));
        }
        for piece in ["▁the", "▁and", "▁of"] {
            assert!(tokens.iter().any(|t| t == piece), "{arch:?}: {piece}");
        }
        let bos_id = md.get_u64("tokenizer.ggml.bos_token_id").unwrap() as usize;
        let eos_id = md.get_u64("tokenizer.ggml.eos_token_id").unwrap() as usize;
        assert_eq!(
            (tokens[bos_id].as_str(), tokens[eos_id].as_str()),
            (bos, eos)
        );
        assert_eq!(types[bos_id].as_i64(), Some(i64::from(token_type::CONTROL)));
        let unk = md.get_u64("tokenizer.ggml.unknown_token_id").unwrap() as usize;
        assert_eq!(tokens[unk], "<unk>");
        assert_eq!(md.get_bool("tokenizer.ggml.add_bos_token"), Some(true));
        assert_eq!(
            md.get_bool("tokenizer.ggml.add_space_prefix"),
            Some(arch != Arch::Gemma3)
        );
        if arch == Arch::Gemma3 {
            assert!(
                tokens.iter().any(|t| t == "<start_of_turn>")
                    && tokens.iter().any(|t| t == "<end_of_turn>")
            );
        }
        // Normal pieces score higher the earlier they were learned.
        let normal: Vec<f64> = (0..tokens.len())
            .filter(|&i| types[i].as_i64() == Some(i64::from(token_type::NORMAL)))
            .map(|i| scores[i].as_f64().unwrap())
            .collect();
        assert!(
            normal.windows(2).all(|w| w[0] > w[1]),
            "scores fall with learning order"
        );
    }
}

#[test]
fn gpt2_vocabularies_are_real_and_consistent() {
    for (arch, pre, add_bos, bos, eos) in [
        (
            Arch::Llama,
            "llama-bpe",
            true,
            "<|begin_of_text|>",
            "<|end_of_text|>",
        ),
        (Arch::Qwen2, "qwen2", false, "<|endoftext|>", "<|im_end|>"),
    ] {
        let f = tiny(arch);
        let md = f.metadata();
        assert_eq!(md.get_str("tokenizer.ggml.model"), Some("gpt2"));
        assert_eq!(md.get_str("tokenizer.ggml.pre"), Some(pre));
        let tokens = strs(&f, "tokenizer.ggml.tokens");
        let merges = strs(&f, "tokenizer.ggml.merges");
        assert!(merges.len() >= 300, "{} merges", merges.len());
        let set: HashSet<&str> = tokens.iter().map(String::as_str).collect();
        for (_, ch) in synth::gpt2_byte_chars() {
            assert!(set.contains(ch.to_string().as_str()), "byte char {ch}");
        }
        for m in &merges {
            let (a, b) = m.split_once(' ').unwrap();
            assert!(set.contains(a) && set.contains(b), "merge parts {m}");
            assert!(set.contains(format!("{a}{b}").as_str()), "merge result {m}");
        }
        assert!(set.contains("Ġthe") && set.contains("Ġand"));
        assert_eq!(md.get_bool("tokenizer.ggml.add_bos_token"), Some(add_bos));
        let id = |k: &str| md.get_u64(k).unwrap() as usize;
        assert_eq!(tokens[id("tokenizer.ggml.bos_token_id")], bos);
        assert_eq!(tokens[id("tokenizer.ggml.eos_token_id")], eos);
        assert!(md.get("tokenizer.ggml.scores").is_none());
    }
}

#[test]
fn weights_are_deterministic_typed_and_sane() {
    let cfg = SynthConfig::tiny(Arch::Llama);
    let a = synth::to_bytes(&cfg).unwrap();
    assert_eq!(a, synth::to_bytes(&cfg).unwrap(), "same seed, same bytes");
    let mut other = cfg.clone();
    other.fill = WeightFill::Random {
        seed: 43,
        std: 0.05,
    };
    assert_ne!(a, synth::to_bytes(&other).unwrap());
    let f = GgufFile::parse(a).unwrap();
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!(q.ggml_type, GgmlType::Q8_0);
    assert_eq!(
        f.tensor("token_embd.weight").unwrap().ggml_type,
        GgmlType::F16
    );
    assert_eq!(
        f.tensor("blk.0.attn_norm.weight").unwrap().ggml_type,
        GgmlType::F32
    );
    let w = dequantize(q.ggml_type, f.tensor_data(q), q.n_elements() as usize).unwrap();
    let std = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
    assert!((0.04..0.06).contains(&std), "std {std}");
    let n = f.tensor("blk.1.ffn_norm.weight").unwrap();
    let nv = dequantize(GgmlType::F32, f.tensor_data(n), 64).unwrap();
    assert!(nv.iter().all(|v| (0.8..1.2).contains(v)));
    // Pattern fill and every supported weight type round-trip through the reader.
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q5_1,
        GgmlType::Q4_K,
        GgmlType::Q6_K,
    ] {
        let mut cfg = SynthConfig::tiny(Arch::Qwen2).with_weight_type(ty);
        cfg.n_embd = 256;
        cfg.fill = WeightFill::Pattern { scale: 0.5 };
        let f = GgufFile::parse(synth::to_bytes(&cfg).unwrap()).unwrap();
        let t = f.tensor("blk.0.attn_v.weight").unwrap();
        assert_eq!(t.ggml_type, ty);
        let v = dequantize(ty, f.tensor_data(t), t.n_elements() as usize).unwrap();
        assert!(v.iter().all(|x| x.is_finite() && x.abs() <= 0.6), "{ty}");
        // Rows of 128 are not a multiple of 256: K-quants fall back to Q8_0, as llama.cpp does.
        let down = f.tensor("blk.0.ffn_down.weight").unwrap();
        let want = if ty.block_size() == 256 {
            GgmlType::Q8_0
        } else {
            ty
        };
        assert_eq!(down.ggml_type, want, "{ty}");
    }
}

#[test]
fn big_shapes_have_the_real_sizes_without_being_written() {
    let cfg = SynthConfig::llama3_8b();
    let w = synth::build(&cfg).unwrap();
    assert_eq!(w.n_tensors(), 32 * 9 + 3);
    let size = w.file_size().unwrap();
    // 8.03 B parameters in F16.
    assert!((16_000_000_000..16_200_000_000).contains(&size), "{size}");
    let q = SynthConfig::qwen2_5_0_5b();
    assert_eq!(q.build_vocab().len(), 151_936);
    let specs = q.tensor_specs(151_936);
    let params: u64 = specs.iter().map(|s| s.dims.iter().product::<u64>()).sum();
    assert!((490_000_000..500_000_000).contains(&params), "{params}");
    let v = SynthConfig::llama3_8b().build_vocab();
    assert_eq!(v.len(), 128_256);
    assert_eq!(v.tokens[v.bos as usize], "<|begin_of_text|>");
    assert_eq!(v.bos, 128_256 - 5, "specials stay last");
    assert_eq!(VocabKind::Gpt2Llama3, cfg.vocab);
    let g = SynthConfig::gemma3_270m();
    let specs = g.tensor_specs(262_144);
    assert_eq!(specs.len(), 236, "as many tensors as the real gemma-3-270m");
    let params: u64 = specs.iter().map(|s| s.dims.iter().product::<u64>()).sum();
    assert_eq!(
        params, 268_098_176,
        "as many parameters as the real gemma-3-270m"
    );
    let _ = MetaValue::U8(0);
}

#[test]
fn tiled_weights_repeat_the_first_rows_bytes() {
    let mut cfg = SynthConfig::tiny(Arch::Llama);
    cfg.fill = WeightFill::Tiled { seed: 9, std: 0.05 };
    let f = GgufFile::parse(synth::to_bytes(&cfg).unwrap()).unwrap();
    let t = f.tensor("token_embd.weight").unwrap();
    let rows = t.dims[1] as usize;
    assert!(rows > 2 * synth::TILE_ROWS as usize, "{rows} rows");
    let data = f.tensor_data(t);
    let rb = data.len() / rows;
    let row = |i: usize| &data[i * rb..(i + 1) * rb];
    let tile = synth::TILE_ROWS as usize;
    assert_ne!(row(0), row(1), "the first rows are random");
    for i in [tile, tile + 1, 2 * tile + 3, rows - 1] {
        assert_eq!(row(i), row(i % tile), "row {i}");
    }
    // Random and tiled agree on the first rows.
    cfg.fill = WeightFill::Random { seed: 9, std: 0.05 };
    let g = GgufFile::parse(synth::to_bytes(&cfg).unwrap()).unwrap();
    let u = g.tensor_data(g.tensor("token_embd.weight").unwrap());
    assert_eq!(&u[..tile * rb], &data[..tile * rb]);
}

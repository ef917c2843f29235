//! SentencePiece rules on a tiny vocabulary built here: the space prefix, score-driven
//! merges, byte fallback, the unknown token, special tokens and llama.cpp's detokenize
//! rules for a model that adds a space prefix (as Llama 2 does; gemma does not).
#![allow(clippy::unwrap_used)]

use llorch_worker::gguf::{MetaValue, Metadata};
use llorch_worker::tokenizer::{Tokenizer, VocabKind};

/// (text, score, type) of the normal tokens.
const PIECES: &[(&str, f32)] = &[
    ("▁", -3.0),
    ("a", -4.0),
    ("b", -4.0),
    ("▁a", -1.0),
    ("▁b", -1.5),
    ("ab", -2.0),
    ("▁ab", -0.5),
    ("xy", -1.0),
];

fn vocab(name: &str, bytes: bool, extra: &[(&str, f32)]) -> Tokenizer {
    let mut toks: Vec<(String, f32, i32)> = vec![
        ("<unk>".into(), 0.0, 2),
        ("<s>".into(), 0.0, 3),
        ("</s>".into(), 0.0, 3),
        ("<|end|>".into(), 0.0, 3),
    ];
    if bytes {
        toks.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
    }
    toks.extend(
        PIECES
            .iter()
            .chain(extra)
            .map(|&(t, s)| (t.to_string(), s, 1)),
    );
    let mut md = Metadata::new();
    let s = |x: &str| MetaValue::String(x.into());
    md.insert("general.name", s(name));
    md.insert("tokenizer.ggml.model", s("llama"));
    md.insert(
        "tokenizer.ggml.tokens",
        MetaValue::Array(toks.iter().map(|t| s(&t.0)).collect()),
    );
    md.insert(
        "tokenizer.ggml.scores",
        MetaValue::Array(toks.iter().map(|t| MetaValue::F32(t.1)).collect()),
    );
    md.insert(
        "tokenizer.ggml.token_type",
        MetaValue::Array(toks.iter().map(|t| MetaValue::I32(t.2)).collect()),
    );
    md.insert("tokenizer.ggml.unknown_token_id", MetaValue::U32(0));
    md.insert("tokenizer.ggml.bos_token_id", MetaValue::U32(1));
    md.insert("tokenizer.ggml.eos_token_id", MetaValue::U32(2));
    Tokenizer::from_metadata(&md).unwrap()
}

fn ids(tok: &Tokenizer, texts: &[&str]) -> Vec<u32> {
    texts.iter().map(|t| tok.token_id(t).unwrap()).collect()
}

#[test]
fn space_prefix_and_merges() {
    let tok = vocab("llama", true, &[]);
    assert_eq!(tok.kind(), VocabKind::Spm);
    // llama.cpp's default for SentencePiece: add BOS and a space prefix.
    assert!(tok.add_bos() && tok.add_space_prefix() && !tok.add_eos());
    assert_eq!(
        tok.encode("ab", true, false).unwrap(),
        ids(&tok, &["<s>", "▁ab"])
    );
    assert_eq!(
        tok.encode("ab b", false, false).unwrap(),
        ids(&tok, &["▁ab", "▁b"])
    );
    assert!(tok.encode("", false, false).unwrap().is_empty());
    assert_eq!(tok.encode("", true, false).unwrap(), ids(&tok, &["<s>"]));
    // A space prefix after every special token too.
    assert_eq!(
        tok.encode("a<|end|>b", false, true).unwrap(),
        ids(&tok, &["▁a", "<|end|>", "▁b"])
    );
}

#[test]
fn highest_score_merges_first() {
    // Without "▁ab": "▁a" (-1) beats "ab" (-2) ...
    let without = |extra: &[(&str, f32)]| {
        let tok = vocab("llama", true, extra);
        let got = tok.encode("xyab", false, false).unwrap();
        got.iter()
            .map(|&i| tok.token_text(i).unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(without(&[]), ["▁", "xy", "ab"]);
    // ... and a better-scored longer piece wins once reachable.
    assert_eq!(without(&[("▁xy", -0.1), ("▁xyab", -5.0)]), ["▁xyab"]);
}

#[test]
fn byte_fallback_and_unknown() {
    let tok = vocab("llama", true, &[]);
    let e = tok.encode("é", false, false).unwrap();
    assert_eq!(e, ids(&tok, &["▁", "<0xC3>", "<0xA9>"]));
    assert_eq!(tok.decode(&e).unwrap(), "é");
    let no_bytes = vocab("llama", false, &[]);
    assert_eq!(
        no_bytes.encode("é", false, false).unwrap(),
        ids(&no_bytes, &["▁", "<unk>", "<unk>"])
    );
}

#[test]
fn detokenize_rules() {
    let tok = vocab("llama", true, &[]);
    // Without BOS, the space prefix of the first piece is removed ...
    assert_eq!(tok.decode(&ids(&tok, &["▁ab", "▁b"])).unwrap(), "ab b");
    // ... with a leading BOS (dropped), llama.cpp keeps it.
    assert_eq!(tok.decode(&ids(&tok, &["<s>", "▁ab"])).unwrap(), " ab");
    // Round trip without BOS.
    for s in ["ab", "a b ab", " b", "é a"] {
        let e = tok.encode(s, false, false).unwrap();
        assert_eq!(tok.decode(&e).unwrap(), s);
    }
    // Control tokens are written out; only a leading BOS is dropped.
    assert_eq!(
        tok.decode(&ids(&tok, &["<s>", "<s>", "</s>"])).unwrap(),
        "<s></s>"
    );
}

#[test]
fn phi3_special_tokens_eat_following_whitespace() {
    // llama.cpp marks Phi-3's special tokens `rstrip` (by model name).
    let tok = vocab("Phi-3 mini", true, &[]);
    assert_eq!(
        tok.encode("a<|end|> \n b", false, true).unwrap(),
        ids(&tok, &["▁a", "<|end|>", "▁b"])
    );
    let plain = vocab("llama", true, &[]);
    assert_ne!(
        plain.encode("a<|end|> \n b", false, true).unwrap(),
        ids(&plain, &["▁a", "<|end|>", "▁b"])
    );
}

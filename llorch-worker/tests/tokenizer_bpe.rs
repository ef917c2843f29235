//! GPT-2 style byte-level BPE on a small vocabulary built here: the 256 byte tokens,
//! a handful of merges, and a few special tokens, with the llama3, qwen2 and gpt-2
//! pre-tokenizers.
#![allow(clippy::unwrap_used)]

use llorch_worker::gguf::{MetaValue, Metadata};
use llorch_worker::tokenizer::{PreTokenizer, TokenType, Tokenizer, TokenizerError, VocabKind};
use proptest::prelude::*;

/// GPT-2's bytes_to_unicode, written out independently of the crate.
fn byte_char(b: u8) -> char {
    let printable = |x: u32| (0x21..=0x7E).contains(&x) || (0xA1..=0xAC).contains(&x) || x >= 0xAE;
    if printable(b as u32) {
        return char::from(b);
    }
    let n = (0..b as u32).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

const MERGES: &[&str] = &[
    "Ġ t",
    "h e",
    "Ġt he",
    "i n",
    "in g",
    "Ġ w",
    "o r",
    "Ġw or",
    "l d",
    "Ġwor ld",
    "1 2",
    "12 3",
    "' s",
    "Ġ Ġ",
    "ĠĠ ĠĠ",
    "Ċ Ċ",
    "e r",
];
const BOT: &str = "<|begin_of_text|>";
const EOT: &str = "<|eot_id|>";
const USER: &str = "<tool>";

fn vocab(pre: &str) -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    for m in MERGES {
        tokens.push(m.replace(' ', ""));
    }
    tokens.push("Ġxyz".into()); // a token no merge reaches (only `ignore_merges` finds it)
    let n_normal = tokens.len();
    tokens.extend([BOT.to_string(), EOT.to_string(), USER.to_string()]);
    let mut types = vec![1i32; n_normal];
    types.extend([3, 3, 4]);
    let mut md = Metadata::new();
    let s = |x: &str| MetaValue::String(x.into());
    md.insert("tokenizer.ggml.model", s("gpt2"));
    md.insert("tokenizer.ggml.pre", s(pre));
    md.insert(
        "tokenizer.ggml.tokens",
        MetaValue::Array(tokens.iter().map(|t| s(t)).collect()),
    );
    md.insert(
        "tokenizer.ggml.token_type",
        MetaValue::Array(types.into_iter().map(MetaValue::I32).collect()),
    );
    md.insert(
        "tokenizer.ggml.merges",
        MetaValue::Array(MERGES.iter().map(|m| s(m)).collect()),
    );
    md.insert(
        "tokenizer.ggml.bos_token_id",
        MetaValue::U32(n_normal as u32),
    );
    md.insert(
        "tokenizer.ggml.eos_token_id",
        MetaValue::U32(n_normal as u32 + 1),
    );
    Tokenizer::from_metadata(&md).unwrap()
}

/// Ids of token texts (byte-level spelling).
fn ids(tok: &Tokenizer, texts: &[&str]) -> Vec<u32> {
    texts
        .iter()
        .map(|t| tok.token_id(t).unwrap_or_else(|| panic!("no token {t:?}")))
        .collect()
}

fn words(pre: PreTokenizer, text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    pre.split(text, &mut out);
    out.iter().map(|&(s, e)| &text[s..e]).collect()
}

#[test]
fn llama3_merges_and_ignore_merges() {
    let tok = vocab("llama-bpe");
    assert_eq!(tok.kind(), VocabKind::Bpe);
    assert_eq!(tok.pre_tokenizer(), Some(PreTokenizer::Llama3));
    assert!(tok.add_bos() && tok.clean_spaces());
    let got = tok.encode("the world's 12345 xyz", true, true).unwrap();
    let want = ids(
        &tok,
        &[BOT, "t", "he", "Ġworld", "'s", "Ġ", "123", "4", "5", "Ġxyz"],
    );
    assert_eq!(got, want);
    assert_eq!(tok.decode(&got).unwrap(), "the world's 12345 xyz");
}

#[test]
fn qwen2_has_no_ignore_merges_and_single_digits() {
    let tok = vocab("qwen2");
    assert!(!tok.add_bos() && !tok.clean_spaces());
    let got = tok.encode(" xyz 123", true, true).unwrap();
    assert_eq!(got, ids(&tok, &["Ġ", "x", "y", "z", "Ġ", "1", "2", "3"]));
}

#[test]
fn merges_follow_rank_order() {
    let tok = vocab("gpt-2");
    assert_eq!(
        tok.encode(" the", false, false).unwrap(),
        ids(&tok, &["Ġthe"])
    );
    // "Ġ t" (rank 0) beats "h e" (rank 1); then "Ġt he" joins them.
    assert_eq!(
        tok.encode(" thing", false, false).unwrap(),
        ids(&tok, &["Ġt", "h", "ing"])
    );
    assert_eq!(
        tok.encode("        ", false, false).unwrap(),
        ids(&tok, &["ĠĠĠĠ", "ĠĠĠĠ"])
    );
    assert_eq!(
        tok.encode("\n\n\n", false, false).unwrap(),
        ids(&tok, &["ĊĊ", "Ċ"])
    );
    // Non-ASCII text falls back to its bytes' tokens.
    let e = tok.encode("é", false, false).unwrap();
    assert_eq!(e, ids(&tok, &["Ã", "©"]));
    assert_eq!(tok.decode(&e).unwrap(), "é");
}

#[test]
fn special_tokens_in_text() {
    let tok = vocab("llama3");
    let text = format!("{BOT}hi{EOT}\n{USER}");
    let got = tok.encode(&text, false, true).unwrap();
    assert_eq!(got, ids(&tok, &[BOT, "h", "i", EOT, "Ċ", USER]));
    // A leading BOS is dropped by decode (the model adds BOS), later specials are text.
    assert_eq!(tok.decode(&got).unwrap(), &text[BOT.len()..]);
    assert_eq!(tok.decode(&got[1..]).unwrap(), &text[BOT.len()..]);
    // Without special parsing, control tokens are plain text; user-defined ones still match.
    let plain = tok.encode(&text, false, false).unwrap();
    assert!(!plain.contains(&tok.token_id(EOT).unwrap()));
    assert!(plain.contains(&tok.token_id(USER).unwrap()));
    let eot = tok.token_id(EOT).unwrap();
    assert!(tok.is_eog(eot) && tok.eot() == Some(eot));
    assert_eq!(tok.token_type(eot).unwrap(), TokenType::Control);
    assert_eq!(
        tok.decode(&tok.encode(BOT, true, true).unwrap()).unwrap(),
        BOT
    );
}

#[test]
fn decode_cleans_spaces_like_llama_cpp_for_llama3_only() {
    let l3 = vocab("llama3");
    let ids = l3.encode("a , b ? it 's", false, false).unwrap();
    assert_eq!(l3.decode(&ids).unwrap(), "a, b? it's");
    let q = vocab("qwen2");
    let ids = q.encode("a , b ? it 's", false, false).unwrap();
    assert_eq!(q.decode(&ids).unwrap(), "a , b ? it 's");
}

#[test]
fn llama3_pre_tokenizer_splits() {
    let p = PreTokenizer::Llama3;
    assert_eq!(
        words(p, "don't I'LL we've"),
        ["don", "'t", " I", "'LL", " we", "'ve"]
    );
    assert_eq!(words(p, "1234567 8"), ["123", "456", "7", " ", "8"]);
    assert_eq!(
        words(p, "a   b\n\n  c  "),
        ["a", "  ", " b", "\n\n", " ", " c", "  "]
    );
    assert_eq!(words(p, "x \r\n\ty"), ["x", " \r\n", "\ty"]);
    assert_eq!(
        words(p, "hello...!!\n\nworld"),
        ["hello", "...!!\n\n", "world"]
    );
    assert_eq!(words(p, " ((x))"), [" ((", "x", "))"]);
    // Letters of any script; combining marks are not letters.
    assert_eq!(
        words(p, "naïve Ελλάδα e\u{301}"),
        ["naïve", " Ελλάδα", " e", "\u{301}"]
    );
    assert_eq!(words(p, "日本語123"), ["日本語", "123"]);
    assert_eq!(words(p, "🎉🚀 ok"), ["🎉🚀", " ok"]);
    assert_eq!(words(p, "$100"), ["$", "100"]);
}

#[test]
fn qwen2_and_gpt2_pre_tokenizer_splits() {
    let q = PreTokenizer::Qwen2;
    assert_eq!(words(q, "v2024 'S"), ["v", "2", "0", "2", "4", " '", "S"]);
    assert_eq!(words(q, "x\u{a0}\u{a0}y"), ["x", "\u{a0}", "\u{a0}y"]);
    let g = PreTokenizer::Gpt2;
    // GPT-2's contractions are case-sensitive and numbers are not grouped.
    assert_eq!(
        words(g, "it's IT'S 12345"),
        ["it", "'s", " IT", "'", "S", " 12345"]
    );
    assert_eq!(words(g, "a\n\nb  "), ["a", "\n", "\n", "b", "  "]);
}

#[test]
fn bad_metadata_is_a_typed_error() {
    let mut md = Metadata::new();
    md.insert("tokenizer.ggml.model", MetaValue::String("gpt2".into()));
    assert_eq!(
        Tokenizer::from_metadata(&md).unwrap_err(),
        TokenizerError::MissingKey("tokenizer.ggml.tokens")
    );
    md.insert("tokenizer.ggml.pre", MetaValue::String("klingon".into()));
    md.insert(
        "tokenizer.ggml.tokens",
        MetaValue::Array(vec![MetaValue::String("a".into())]),
    );
    assert!(matches!(
        Tokenizer::from_metadata(&md),
        Err(TokenizerError::UnsupportedPreTokenizer(_))
    ));
    md.insert("tokenizer.ggml.model", MetaValue::String("bert".into()));
    assert!(matches!(
        Tokenizer::from_metadata(&md),
        Err(TokenizerError::UnsupportedModel(_))
    ));
    md.insert("tokenizer.ggml.model", MetaValue::U32(1));
    assert!(matches!(
        Tokenizer::from_metadata(&md),
        Err(TokenizerError::WrongType { .. })
    ));
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = tok.stream_decoder();
    let mut s: String = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
    s.push_str(&d.finish());
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn qwen2_round_trip(s in any::<String>(), special in any::<bool>()) {
        let tok = vocab("qwen2");
        let ids = tok.encode(&s, true, special).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
        prop_assert_eq!(stream(&tok, &ids), s);
    }

    #[test]
    fn llama3_round_trip_without_cleanup_characters(s in "[^'?!.,]{0,64}") {
        let tok = vocab("llama3");
        let ids = tok.encode(&s, false, true).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s);
    }

    #[test]
    fn stream_equals_decode_with_cleanup(
        ids in proptest::collection::vec(0u32..277, 0..40),
        pre in prop_oneof![Just("llama3"), Just("gpt-2"), Just("default"), Just("qwen2")],
    ) {
        let tok = vocab(pre);
        prop_assert_eq!(stream(&tok, &ids), tok.decode(&ids).unwrap());
    }

    #[test]
    fn words_always_cover_the_text(s in any::<String>()) {
        for p in [PreTokenizer::Default, PreTokenizer::Gpt2, PreTokenizer::Llama3, PreTokenizer::Qwen2] {
            prop_assert_eq!(words(p, &s).concat(), s.clone());
        }
    }
}

//! The tokenizer on the real demo model (gemma-3-270m, SentencePiece vocabulary of
//! 262 144 tokens) against llama.cpp's reference outputs. Needs the demo model
//! (`scripts/fetch-demo-model.sh`); panics when it is absent, never skips.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use llorch_worker::demo::require_demo_model;
use llorch_worker::gguf::GgufFile;
use llorch_worker::tokenizer::{TokenType, Tokenizer, TokenizerError, VocabKind};
use proptest::prelude::*;

/// llama.cpp's outputs for 15 texts (copied from shared/fixtures/gemma3-270m/).
const FIXTURE: &str = include_str!("data/gemma3_reference_tokenizer.json");

fn tok() -> &'static Tokenizer {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    TOK.get_or_init(|| {
        let file = GgufFile::open(require_demo_model()).unwrap();
        Tokenizer::from_metadata(file.metadata()).unwrap()
    })
}

struct Case {
    text: String,
    ids: Vec<u32>,
    detok: String,
}

fn cases() -> Vec<Case> {
    let v: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            text: c["text"].as_str().unwrap().to_string(),
            ids: c["tokens_with_bos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect(),
            detok: c["detok"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn stream(tok: &Tokenizer, ids: &[u32]) -> (Vec<String>, String) {
    let mut d = tok.stream_decoder();
    let mut parts: Vec<String> = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
    parts.push(d.finish());
    let all = parts.concat();
    (parts, all)
}

#[test]
fn all_fixture_cases_match_llama_cpp() {
    let tok = tok();
    let cases = cases();
    assert_eq!(cases.len(), 15);
    for c in &cases {
        let ids = tok.encode(&c.text, true, true).unwrap();
        assert_eq!(ids, c.ids, "ids of {:?}", c.text);
        assert_eq!(tok.decode(&c.ids).unwrap(), c.detok, "text of {:?}", c.text);
        assert_eq!(
            stream(tok, &c.ids).1,
            c.detok,
            "streamed text of {:?}",
            c.text
        );
    }
}

#[test]
fn vocabulary_facts() {
    let tok = tok();
    assert_eq!(tok.kind(), VocabKind::Spm);
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!(tok.bos(), Some(2));
    assert_eq!(tok.eos(), Some(1));
    assert_eq!(tok.eot(), Some(106));
    assert!(tok.add_bos() && !tok.add_eos() && !tok.add_space_prefix());
    assert!(tok.is_eog(1) && tok.is_eog(106));
    assert!(!tok.is_eog(2) && !tok.is_eog(105) && !tok.is_eog(u32::MAX));
    assert_eq!(tok.token_id("<start_of_turn>"), Some(105));
    assert_eq!(tok.token_type(105).unwrap(), TokenType::Control);
    assert_eq!(tok.token_type(107).unwrap(), TokenType::UserDefined);
    assert_eq!(tok.token_text(1902).unwrap(), "▁world");
    assert_eq!(tok.token_to_piece(1902).unwrap(), b" world");
    assert_eq!(tok.token_to_piece(432).unwrap(), &[0xC2]);
}

#[test]
fn special_text_only_when_asked() {
    let tok = tok();
    let text = "<start_of_turn>user\nHi<end_of_turn>\n";
    let plain = tok.encode(text, false, false).unwrap();
    assert!(!plain.contains(&105) && !plain.contains(&106));
    // User-defined tokens ("\n") are still matched verbatim.
    assert!(plain.contains(&107));
    assert_eq!(tok.decode(&plain).unwrap(), text);
    assert_eq!(tok.encode(text, false, true).unwrap()[0], 105);
    assert_eq!(tok.encode("", true, true).unwrap(), [2]);
    assert!(tok.encode("", false, true).unwrap().is_empty());
}

#[test]
fn out_of_range_ids_are_errors() {
    let tok = tok();
    let bad = 262_144;
    let err = TokenizerError::IdOutOfRange {
        id: bad,
        vocab_size: 262_144,
    };
    assert_eq!(tok.decode(&[2, bad]), Err(err.clone()));
    assert_eq!(tok.token_to_piece(bad), Err(err.clone()));
    assert!(tok.token_text(u32::MAX).is_err());
    let mut d = tok.stream_decoder();
    assert_eq!(d.push(tok, bad), Err(err));
}

#[test]
fn stream_never_splits_a_character() {
    let tok = tok();
    // U+00A0 has no token: it is two byte tokens <0xC2><0xA0>.
    let ids = tok.encode("a\u{a0}b", false, false).unwrap();
    let (parts, all) = stream(tok, &ids);
    assert_eq!(all, "a\u{a0}b");
    assert!(parts.contains(&String::new()), "{parts:?}");
    assert!(parts.contains(&"\u{a0}".to_string()), "{parts:?}");
    // A dangling lead byte at the end becomes U+FFFD, as in decode.
    let (_, all) = stream(tok, &[432]);
    assert_eq!(all, "\u{fffd}");
    assert_eq!(tok.decode(&[432]).unwrap(), "\u{fffd}");
}

#[test]
fn long_runs_of_special_text() {
    let tok = tok();
    for text in [
        "\n".repeat(100),
        " ".repeat(77),
        "<eos>".repeat(9),
        "<<eos>>".into(),
    ] {
        let ids = tok.encode(&text, false, true).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any text without U+2581 (which stands for a space in this vocabulary) comes back
    /// unchanged, with or without special parsing.
    #[test]
    fn decode_encode_round_trip(s in "[^\u{2581}]{0,64}", special in any::<bool>()) {
        let tok = tok();
        let ids = tok.encode(&s, true, special).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
        prop_assert_eq!(stream(tok, &ids).1, s);
    }

    /// Any text at all (U+2581 included) tokenizes, and its ids decode, without error.
    #[test]
    fn never_fails_on_any_text(s in any::<String>(), special in any::<bool>(), add in any::<bool>()) {
        let tok = tok();
        let ids = tok.encode(&s, add, special).unwrap();
        let text = tok.decode(&ids).unwrap();
        // (Without BOS, a text starting with "<bos>" loses it: decode drops a leading BOS.)
        if add {
            prop_assert_eq!(text, s.replace('\u{2581}', " "));
        }
    }

    /// Text full of the characters that matter to special tokens and byte fallback.
    #[test]
    fn round_trip_on_tricky_alphabet(s in "[<>a-z_ \n\t\u{a0}é日🎉]{0,48}") {
        let tok = tok();
        let ids = tok.encode(&s, true, true).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s);
    }

    /// Arbitrary ids: decode and stream agree, and never panic.
    #[test]
    fn stream_equals_decode(ids in proptest::collection::vec(0u32..262_144, 0..48)) {
        let tok = tok();
        prop_assert_eq!(stream(tok, &ids).1, tok.decode(&ids).unwrap());
    }

    /// Byte tokens in any order (the hard case for UTF-8 assembly).
    #[test]
    fn stream_equals_decode_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..24)) {
        let tok = tok();
        let ids: Vec<u32> = bytes
            .iter()
            .map(|b| tok.token_id(&format!("<0x{b:02X}>")).unwrap())
            .collect();
        prop_assert_eq!(stream(tok, &ids).1, String::from_utf8_lossy(&bytes).into_owned());
        prop_assert_eq!(tok.decode(&ids).unwrap(), String::from_utf8_lossy(&bytes).into_owned());
    }
}

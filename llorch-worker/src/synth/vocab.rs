//! Real small vocabularies for synthetic models, in llama.cpp's GGUF
//! tokenizer keys: SentencePiece style (`tokenizer.ggml.model = llama`:
//! tokens, scores, token types with the 256 `<0xNN>` byte-fallback tokens)
//! and GPT-2 byte-level BPE (`gpt2`: the 256 byte-level characters, merges,
//! `tokenizer.ggml.pre`). Pieces and merges come from a small BPE training
//! run over a fixed English word list, so they are consistent: every merge's
//! parts and result are tokens.

use std::collections::{BTreeMap, HashMap};

use crate::gguf::{GgufWriter, MetaValue};

/// llama.cpp token types (`tokenizer.ggml.token_type`).
pub mod token_type {
    /// A normal piece.
    pub const NORMAL: i32 = 1;
    /// The unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A control token (BOS, EOS, chat markers).
    pub const CONTROL: i32 = 3;
    /// A user-defined token.
    pub const USER_DEFINED: i32 = 4;
    /// An unused (reserved) token.
    pub const UNUSED: i32 = 5;
    /// A byte-fallback token `<0xNN>`.
    pub const BYTE: i32 = 6;
}

/// Which tokenizer a synthetic model carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabKind {
    /// SentencePiece, llama style: `<unk>`=0, `<s>`=1 (BOS), `</s>`=2 (EOS), space prefix on.
    SpmLlama,
    /// SentencePiece, Gemma style: `<pad>`=0, `<eos>`=1, `<bos>`=2, `<unk>`=3,
    /// `<start_of_turn>`/`<end_of_turn>`, no space prefix.
    SpmGemma,
    /// GPT-2 byte-level BPE with `tokenizer.ggml.pre` = `llama-bpe` (Llama 3 specials, add BOS).
    Gpt2Llama3,
    /// GPT-2 byte-level BPE with `tokenizer.ggml.pre` = `qwen2` (Qwen2 specials, no BOS).
    Gpt2Qwen2,
}

/// A built vocabulary: what goes into the `tokenizer.ggml.*` keys.
#[derive(Debug, Clone)]
pub struct Vocab {
    /// `tokenizer.ggml.model`: `llama` or `gpt2`.
    pub model: &'static str,
    /// `tokenizer.ggml.pre`.
    pub pre: &'static str,
    /// Token texts, by id.
    pub tokens: Vec<String>,
    /// Scores (SentencePiece only).
    pub scores: Option<Vec<f32>>,
    /// Token types, by id.
    pub types: Vec<i32>,
    /// Merges `"a b"` (BPE only).
    pub merges: Option<Vec<String>>,
    /// BOS id.
    pub bos: u32,
    /// EOS id.
    pub eos: u32,
    /// Unknown id (SentencePiece).
    pub unk: Option<u32>,
    /// Padding id.
    pub pad: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos: bool,
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece).
    pub add_space_prefix: Option<bool>,
}

/// The word list the pieces and merges are trained on (most frequent first).
const WORDS: &str = "the of and to a in is that it for was on are as with his they at be this \
from have or by one had not but what all were when we there can an your which their said if do \
will each about how up out them then she many some so these would other into has more her two \
like him see time could no make than first been its who now people my made over did down only \
way find use may water long little very after words called just where most know get through back \
much before go good new write our used me man too any day same right look think also around \
another came come work three word must because does part even place well such here take why \
things help put years different away again off went old number great tell men say small every \
found still between name should home big give air line set own under read last never us left end \
along while might next sound below saw something thought both few those always looked show large \
often together asked house world going want school important until form food keep children feet \
land side without boy once animals life enough took sometimes four head above kind began almost \
live page got earth need far hand high year mother light parts country father let night following \
picture being study second eyes soon times story boys since white days ever paper hard near \
sentence better best across during today others however sure means knew its try told young \
model token llama orchestra worker pool queue hello world";

/// How many merges to train.
const N_MERGES: usize = 400;

/// Trains byte-pair merges over `words` (symbol sequences with weights).
/// Ties break on the lexicographically smallest pair, so the result is deterministic.
fn train_bpe(mut words: Vec<(Vec<String>, u64)>, n_merges: usize) -> Vec<(String, String)> {
    let mut merges = Vec::new();
    for _ in 0..n_merges {
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (syms, w) in &words {
            for p in syms.windows(2) {
                *counts.entry((p[0].as_str(), p[1].as_str())).or_default() += w;
            }
        }
        let Some(((a, b), _)) = counts.iter().fold(
            None,
            |best: Option<(&(&str, &str), u64)>, (k, &c)| match best {
                Some((_, bc)) if bc >= c => best,
                _ => Some((k, c)),
            },
        ) else {
            break;
        };
        let (a, b) = (a.to_string(), b.to_string());
        let ab = format!("{a}{b}");
        for (syms, _) in &mut words {
            let mut i = 0;
            while i + 1 < syms.len() {
                if syms[i] == a && syms[i + 1] == b {
                    syms[i] = ab.clone();
                    syms.remove(i + 1);
                }
                i += 1;
            }
        }
        merges.push((a, b));
    }
    merges
}

/// The merges trained over [`WORDS`] with `space` as the space marker, cached.
fn trained_merges(space: &'static str) -> &'static [(String, String)] {
    use std::sync::OnceLock;
    static SPM: OnceLock<Vec<(String, String)>> = OnceLock::new();
    static GPT2: OnceLock<Vec<(String, String)>> = OnceLock::new();
    if space == "▁" {
        SPM.get_or_init(|| {
            train_bpe(
                training_words("▁", |w| w.chars().map(String::from).collect()),
                N_MERGES,
            )
        })
    } else {
        GPT2.get_or_init(|| {
            let chars: HashMap<u8, char> = gpt2_byte_chars().into_iter().collect();
            let to_syms = |w: &str| {
                w.bytes()
                    .map(|b| chars.get(&b).copied().unwrap_or('?').to_string())
                    .collect()
            };
            train_bpe(training_words(" ", to_syms), N_MERGES)
        })
    }
}

/// Training words: each word with and without a leading space marker, Zipf-weighted.
fn training_words(space: &str, split: impl Fn(&str) -> Vec<String>) -> Vec<(Vec<String>, u64)> {
    let mut out = Vec::new();
    for (rank, w) in WORDS.split_whitespace().enumerate() {
        let weight = 10_000 / (rank as u64 + 10);
        out.push((split(&format!("{space}{w}")), weight * 4));
        out.push((split(w), weight));
    }
    out
}

/// GPT-2's `bytes_to_unicode`: byte → printable char, in GPT-2's token order.
pub fn gpt2_byte_chars() -> Vec<(u8, char)> {
    let printable = |b: u32| {
        (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b)
    };
    let mut out: Vec<(u8, char)> = (0u32..256)
        .filter(|&b| printable(b))
        .filter_map(|b| Some((b as u8, char::from_u32(b)?)))
        .collect();
    let mut n = 0;
    for b in 0u32..256 {
        if !printable(b) {
            out.push((b as u8, char::from_u32(256 + n).unwrap_or('?')));
            n += 1;
        }
    }
    out
}

impl Vocab {
    /// Builds the vocabulary of `kind`, padded with unused/reserved tokens to
    /// `pad_to` entries if that is larger than its natural size.
    pub fn build(kind: &VocabKind, pad_to: Option<u32>) -> Vocab {
        let mut v = match kind {
            VocabKind::SpmLlama | VocabKind::SpmGemma => spm(kind),
            VocabKind::Gpt2Llama3 | VocabKind::Gpt2Qwen2 => gpt2(kind),
        };
        if let Some(n) = pad_to {
            v.pad_to(n as usize, kind);
        }
        v
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of a token text.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.tokens.iter().position(|t| t == text).map(|i| i as u32)
    }

    fn push(&mut self, text: String, ty: i32, score: f32) -> u32 {
        let id = self.tokens.len() as u32;
        self.tokens.push(text);
        self.types.push(ty);
        if let Some(s) = &mut self.scores {
            s.push(score);
        }
        id
    }

    fn pad_to(&mut self, n: usize, kind: &VocabKind) {
        // SentencePiece models put unused tokens at the end; GPT-2 models keep
        // their specials last, so reserved tokens go in before them.
        let spm = matches!(kind, VocabKind::SpmLlama | VocabKind::SpmGemma);
        let mut i = 0;
        if spm {
            while self.tokens.len() < n {
                self.push(format!("<unused{i}>"), token_type::UNUSED, 0.0);
                i += 1;
            }
            return;
        }
        let first_special = self
            .types
            .iter()
            .position(|&t| t == token_type::CONTROL)
            .unwrap_or(self.tokens.len());
        let specials: Vec<(String, i32)> = self
            .tokens
            .drain(first_special..)
            .zip(self.types.drain(first_special..))
            .collect();
        let n_before = n.saturating_sub(specials.len());
        while self.tokens.len() < n_before {
            self.push(
                format!("<|reserved_special_token_{i}|>"),
                token_type::CONTROL,
                0.0,
            );
            i += 1;
        }
        let shift = self.tokens.len() as u32 - first_special as u32;
        for (t, ty) in specials {
            self.push(t, ty, 0.0);
        }
        for id in [&mut self.bos, &mut self.eos] {
            if *id as usize >= first_special {
                *id += shift;
            }
        }
        if let Some(p) = &mut self.pad {
            if *p as usize >= first_special {
                *p += shift;
            }
        }
    }

    /// Writes the `tokenizer.ggml.*` keys.
    pub fn write_metadata(&self, w: &mut GgufWriter<'_>) {
        let strs =
            |v: &[String]| MetaValue::Array(v.iter().cloned().map(MetaValue::String).collect());
        w.set("tokenizer.ggml.model", MetaValue::String(self.model.into()));
        w.set("tokenizer.ggml.pre", MetaValue::String(self.pre.into()));
        w.set("tokenizer.ggml.tokens", strs(&self.tokens));
        if let Some(s) = &self.scores {
            w.set(
                "tokenizer.ggml.scores",
                MetaValue::Array(s.iter().map(|&x| MetaValue::F32(x)).collect()),
            );
        }
        w.set(
            "tokenizer.ggml.token_type",
            MetaValue::Array(self.types.iter().map(|&t| MetaValue::I32(t)).collect()),
        );
        if let Some(m) = &self.merges {
            w.set("tokenizer.ggml.merges", strs(m));
        }
        w.set("tokenizer.ggml.bos_token_id", MetaValue::U32(self.bos));
        w.set("tokenizer.ggml.eos_token_id", MetaValue::U32(self.eos));
        if let Some(u) = self.unk {
            w.set("tokenizer.ggml.unknown_token_id", MetaValue::U32(u));
        }
        if let Some(p) = self.pad {
            w.set("tokenizer.ggml.padding_token_id", MetaValue::U32(p));
        }
        w.set(
            "tokenizer.ggml.add_bos_token",
            MetaValue::Bool(self.add_bos),
        );
        w.set(
            "tokenizer.ggml.add_eos_token",
            MetaValue::Bool(self.add_eos),
        );
        if let Some(s) = self.add_space_prefix {
            w.set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(s));
        }
    }
}

fn spm(kind: &VocabKind) -> Vocab {
    let gemma = *kind == VocabKind::SpmGemma;
    let mut v = Vocab {
        model: "llama",
        pre: "default",
        tokens: Vec::new(),
        scores: Some(Vec::new()),
        types: Vec::new(),
        merges: None,
        bos: 0,
        eos: 0,
        unk: None,
        pad: None,
        add_bos: true,
        add_eos: false,
        add_space_prefix: Some(!gemma),
    };
    let (c, ctl) = (token_type::CONTROL, -1000.0);
    if gemma {
        v.pad = Some(v.push("<pad>".into(), c, ctl));
        v.eos = v.push("<eos>".into(), c, ctl);
        v.bos = v.push("<bos>".into(), c, ctl);
        v.unk = Some(v.push("<unk>".into(), token_type::UNKNOWN, ctl));
        v.push("<mask>".into(), token_type::USER_DEFINED, ctl);
        v.push("<start_of_turn>".into(), c, ctl);
        v.push("<end_of_turn>".into(), c, ctl);
    } else {
        v.unk = Some(v.push("<unk>".into(), token_type::UNKNOWN, 0.0));
        v.bos = v.push("<s>".into(), c, 0.0);
        v.eos = v.push("</s>".into(), c, 0.0);
        v.push("[INST]".into(), c, 0.0);
        v.push("[/INST]".into(), c, 0.0);
    }
    for b in 0..=255u8 {
        v.push(format!("<0x{b:02X}>"), token_type::BYTE, 0.0);
    }
    // Single characters: the space marker and printable ASCII.
    let mut score = 0.0f32;
    let mut add = |v: &mut Vocab, t: String| {
        if v.id(&t).is_none() {
            score -= 1.0;
            v.push(t, token_type::NORMAL, score);
        }
    };
    add(&mut v, "▁".into());
    for ch in (0x21u8..0x7f).map(char::from) {
        add(&mut v, ch.to_string());
    }
    for (a, b) in trained_merges("▁") {
        add(&mut v, format!("{a}{b}"));
    }
    v
}

fn gpt2(kind: &VocabKind) -> Vocab {
    let qwen = *kind == VocabKind::Gpt2Qwen2;
    let mut v = Vocab {
        model: "gpt2",
        pre: if qwen { "qwen2" } else { "llama-bpe" },
        tokens: Vec::new(),
        scores: None,
        types: Vec::new(),
        merges: Some(Vec::new()),
        bos: 0,
        eos: 0,
        unk: None,
        pad: None,
        add_bos: !qwen,
        add_eos: false,
        add_space_prefix: None,
    };
    let chars: HashMap<u8, char> = gpt2_byte_chars().into_iter().collect();
    for (_, ch) in gpt2_byte_chars() {
        v.push(ch.to_string(), token_type::NORMAL, 0.0);
    }
    let to_syms = |w: &str| {
        w.bytes()
            .map(|b| chars.get(&b).copied().unwrap_or('?').to_string())
            .collect()
    };
    let words = training_words(" ", to_syms);
    let mut merges = Vec::new();
    for (a, b) in train_bpe(words, N_MERGES) {
        let ab = format!("{a}{b}");
        if v.id(&ab).is_none() {
            v.push(ab, token_type::NORMAL, 0.0);
        }
        merges.push(format!("{a} {b}"));
    }
    v.merges = Some(merges);
    let c = token_type::CONTROL;
    if qwen {
        let eot = v.push("<|endoftext|>".into(), c, 0.0);
        v.push("<|im_start|>".into(), c, 0.0);
        let im_end = v.push("<|im_end|>".into(), c, 0.0);
        (v.bos, v.eos, v.pad) = (eot, im_end, Some(eot));
    } else {
        v.bos = v.push("<|begin_of_text|>".into(), c, 0.0);
        v.eos = v.push("<|end_of_text|>".into(), c, 0.0);
        v.push("<|start_header_id|>".into(), c, 0.0);
        v.push("<|end_header_id|>".into(), c, 0.0);
        v.push("<|eot_id|>".into(), c, 0.0);
    }
    v
}

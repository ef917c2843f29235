//! The vocabulary as llama.cpp loads it from GGUF metadata: token texts, scores and
//! types, special token ids, the add-BOS/EOS and space-prefix flags, and the set of
//! end-of-generation tokens.

use rustc_hash::FxHashMap;

use super::error::TokenizerError;
use super::pretok::PreTokenizer;
use crate::gguf::{MetaValue, Metadata};

/// Which tokenizer algorithm a vocabulary uses (`tokenizer.ggml.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabKind {
    /// SentencePiece style (`llama`): scores drive bigram merges; byte fallback.
    Spm,
    /// GPT-2 style byte-level BPE (`gpt2`): merge ranks and a pre-tokenizer.
    Bpe,
}

/// The type of a token (`tokenizer.ggml.token_type`), after llama.cpp's fix-ups
/// (end-of-turn-looking tokens become control tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// 0, or any value outside 1..=6.
    Undefined,
    /// 1: ordinary text.
    Normal,
    /// 2: the unknown token.
    Unknown,
    /// 3: control tokens such as BOS, EOS, `<start_of_turn>`.
    Control,
    /// 4: user-defined tokens, always matched verbatim in text.
    UserDefined,
    /// 5: unused slots.
    Unused,
    /// 6: a byte-fallback token `<0xNN>`.
    Byte,
}

impl TokenType {
    fn from_gguf(v: i64) -> Self {
        match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Whether text spelling this token is parsed as the token itself: control and
    /// unknown tokens only when special parsing is on, user-defined tokens always.
    pub fn is_special(self) -> bool {
        matches!(
            self,
            TokenType::Control | TokenType::UserDefined | TokenType::Unknown
        )
    }
}

/// Texts that llama.cpp treats as end of generation whatever the metadata says.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Texts llama.cpp takes as the end-of-turn token when the metadata names none.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// The loaded vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Vocab {
    pub kind: VocabKind,
    pub pre: PreTokenizer,
    pub texts: Vec<Box<str>>,
    pub scores: Vec<f32>,
    pub types: Vec<TokenType>,
    pub map: FxHashMap<Box<str>, u32>,
    /// BPE merges keyed by `"left right"`, valued by rank.
    pub merges: FxHashMap<Box<str>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub unk: Option<u32>,
    pub eog: Vec<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    /// SPM byte fallback: the token of each byte (`<0xNN>`, else the byte itself).
    pub byte_tokens: [Option<u32>; 256],
    /// Special tokens that eat whitespace on their left (`lstrip`) or right (`rstrip`)
    /// when found in text: (id, lstrip, rstrip), sorted by id.
    pub strip: Vec<(u32, bool, bool)>,
}

fn wrong(key: &'static str, expected: &'static str, v: &MetaValue) -> TokenizerError {
    TokenizerError::WrongType {
        key,
        expected,
        found: v.type_name().to_string(),
    }
}

fn get_str<'a>(md: &'a Metadata, key: &'static str) -> Result<Option<&'a str>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| wrong(key, "a string", v)),
    }
}

fn get_bool(md: &Metadata, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v.as_bool().map(Some).ok_or_else(|| wrong(key, "a bool", v)),
    }
}

fn get_id(md: &Metadata, key: &'static str) -> Result<Option<u64>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong(key, "a non-negative integer", v)),
    }
}

fn get_array<'a>(
    md: &'a Metadata,
    key: &'static str,
) -> Result<Option<&'a [MetaValue]>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| wrong(key, "an array", v)),
    }
}

/// A special id: the metadata's when in range, else the default when in range.
fn special_id(
    md: &Metadata,
    key: &'static str,
    default: Option<u32>,
    n: usize,
) -> Result<Option<u32>, TokenizerError> {
    let default = default.filter(|&d| (d as usize) < n);
    Ok(match get_id(md, key)? {
        Some(id) if id < n as u64 => u32::try_from(id).ok(),
        _ => default,
    })
}

impl Vocab {
    /// Loads the vocabulary from the `tokenizer.*` keys, the way llama.cpp does.
    pub fn from_metadata(md: &Metadata) -> Result<Self, TokenizerError> {
        const K_MODEL: &str = "tokenizer.ggml.model";
        const K_TOKENS: &str = "tokenizer.ggml.tokens";
        const K_SCORES: &str = "tokenizer.ggml.scores";
        const K_TYPES: &str = "tokenizer.ggml.token_type";
        const K_MERGES: &str = "tokenizer.ggml.merges";
        let model = get_str(md, K_MODEL)?.ok_or(TokenizerError::MissingKey(K_MODEL))?;
        let pre_name = get_str(md, "tokenizer.ggml.pre")?.unwrap_or("");
        let kind = match model {
            "llama" => VocabKind::Spm,
            "gpt2" => VocabKind::Bpe,
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };

        let tokens = get_array(md, K_TOKENS)?.ok_or(TokenizerError::MissingKey(K_TOKENS))?;
        let n = tokens.len();
        if n == 0 || u32::try_from(n).is_err() {
            return Err(TokenizerError::BadVocabSize(n));
        }
        let mut texts = Vec::with_capacity(n);
        let mut map = FxHashMap::with_capacity_and_hasher(n, Default::default());
        for (i, v) in tokens.iter().enumerate() {
            let s = v
                .as_str()
                .ok_or_else(|| wrong(K_TOKENS, "an array of strings", v))?;
            let text: Box<str> = if s.is_empty() {
                format!("[EMPTY_{i}]").into()
            } else {
                s.into()
            };
            let id = i as u32;
            if let Some(&first) = map.get(&text) {
                return Err(TokenizerError::DuplicateToken {
                    text: text.into(),
                    first,
                    second: id,
                });
            }
            map.insert(text.clone(), id);
            texts.push(text);
        }

        let scores = match get_array(md, K_SCORES)? {
            None => vec![0.0; n],
            Some(a) => {
                if a.len() < n {
                    return Err(TokenizerError::ShortArray {
                        key: K_SCORES,
                        len: a.len(),
                        n_tokens: n,
                    });
                }
                a[..n]
                    .iter()
                    .map(|v| match v {
                        MetaValue::F32(f) => Ok(*f),
                        MetaValue::I32(i) => Ok(*i as f32),
                        other => Err(wrong(K_SCORES, "an array of f32 or i32", other)),
                    })
                    .collect::<Result<Vec<f32>, _>>()?
            }
        };
        let mut types = match get_array(md, K_TYPES)? {
            None => vec![TokenType::Normal; n],
            Some(a) => {
                if a.len() < n {
                    return Err(TokenizerError::ShortArray {
                        key: K_TYPES,
                        len: a.len(),
                        n_tokens: n,
                    });
                }
                a[..n]
                    .iter()
                    .map(|v| {
                        v.as_i64()
                            .map(TokenType::from_gguf)
                            .ok_or_else(|| wrong(K_TYPES, "an array of integers", v))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };

        // Per-kind defaults (llama.cpp `llama_vocab::impl::load`).
        let (mut bos, mut eos, mut unk) = match kind {
            VocabKind::Spm => (Some(1), Some(2), Some(0)),
            VocabKind::Bpe => (Some(11), Some(11), None),
        };
        let mut add_bos = true;
        let mut add_space_prefix = true;
        let mut clean_spaces = false;
        let mut ignore_merges = false;
        let mut pre = PreTokenizer::Default;
        let mut merges = FxHashMap::default();
        match kind {
            VocabKind::Spm => {}
            VocabKind::Bpe => {
                add_space_prefix = false;
                let choice = PreTokenizer::from_name(pre_name)
                    .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer(pre_name.into()))?;
                pre = choice.pre;
                clean_spaces = choice.clean_spaces;
                ignore_merges = choice.ignore_merges;
                add_bos = choice.add_bos;
                if choice.no_bos {
                    bos = None;
                }
                let list = get_array(md, K_MERGES)?.ok_or(TokenizerError::MissingKey(K_MERGES))?;
                merges.reserve(list.len());
                for (rank, v) in list.iter().enumerate() {
                    let s = v
                        .as_str()
                        .ok_or_else(|| wrong(K_MERGES, "an array of strings", v))?;
                    // llama.cpp splits at the first space after the first byte; a line
                    // without one becomes the pair ("", "").
                    let key: Box<str> = if s.bytes().skip(1).any(|b| b == b' ') {
                        s.into()
                    } else {
                        " ".into()
                    };
                    merges
                        .entry(key)
                        .or_insert(u32::try_from(rank).unwrap_or(u32::MAX));
                }
            }
        }
        let mut add_eos = false;
        if let Some(v) = get_bool(md, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }

        bos = special_id(md, "tokenizer.ggml.bos_token_id", bos, n)?;
        eos = special_id(md, "tokenizer.ggml.eos_token_id", eos, n)?;
        unk = special_id(md, "tokenizer.ggml.unknown_token_id", unk, n)?;
        let mut eot = special_id(md, "tokenizer.ggml.eot_token_id", None, n)?;
        let mut eom = special_id(md, "tokenizer.ggml.eom_token_id", None, n)?;
        let mut fim_pad = special_id(md, "tokenizer.ggml.fim_pad_token_id", None, n)?;
        let mut fim_rep = special_id(md, "tokenizer.ggml.fim_rep_token_id", None, n)?;
        let mut fim_sep = special_id(md, "tokenizer.ggml.fim_sep_token_id", None, n)?;
        if let Some(v) = get_bool(md, "tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = get_bool(md, "tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        if add_bos && bos.is_none() {
            return Err(TokenizerError::MissingSpecial {
                flag: "tokenizer.ggml.add_bos_token",
                token: "BOS",
            });
        }
        if add_eos && eos.is_none() {
            return Err(TokenizerError::MissingSpecial {
                flag: "tokenizer.ggml.add_eos_token",
                token: "EOS",
            });
        }

        // Auto-detection by text, in id order; detected tokens become control tokens.
        let find = |list: &[&str]| -> Option<u32> {
            texts
                .iter()
                .position(|t| list.contains(&&**t))
                .map(|i| i as u32)
        };
        let mut force_control = Vec::new();
        for (slot, list) in [
            (&mut eot, EOT_TEXTS),
            (&mut eom, &["<|eom_id|>"][..]),
            (&mut fim_pad, FIM_PAD_TEXTS),
            (&mut fim_rep, FIM_REP_TEXTS),
            (&mut fim_sep, FIM_SEP_TEXTS),
        ] {
            if slot.is_none() {
                *slot = find(list);
                force_control.extend(*slot);
            }
        }
        let mut eog: Vec<u32> = [fim_pad, fim_rep, fim_sep].into_iter().flatten().collect();
        for (i, t) in texts.iter().enumerate() {
            if EOG_TEXTS.contains(&&**t) {
                eog.push(i as u32);
                force_control.push(i as u32);
            }
        }
        for id in force_control {
            let ty = &mut types[id as usize];
            if !matches!(ty, TokenType::Control) {
                *ty = TokenType::Control;
            }
        }
        // gpt-oss: these are always rendered as user-defined tokens.
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(&id) = map.get(name) {
                types[id as usize] = TokenType::UserDefined;
            }
        }
        eog.extend([eos, eot, eom].into_iter().flatten());
        eog.sort_unstable();
        eog.dedup();
        let has = |s: &str| eog.iter().any(|&id| &*texts[id as usize] == s);
        let harmony =
            (has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>"));
        let gemma4 = has("<|tool_response>");
        // o200k_harmony / solar-open: `<|end|>` is not end of generation there.
        if harmony && let Some(&end) = map.get("<|end|>") {
            eog.retain(|&id| id != end);
            types[end as usize] = TokenType::UserDefined;
        }
        // gemma4 / paddleocr: `</s>` is not end of generation there.
        if gemma4 && let Some(&s) = map.get("</s>") {
            eog.retain(|&id| id != s);
            types[s as usize] = TokenType::Normal;
        }

        // Per-model token attributes llama.cpp sets by name: Phi-3's special tokens
        // eat the whitespace after them (except <unk>, <s>, <|endoftext|>).
        let name = get_str(md, "general.name")?.unwrap_or("").to_lowercase();
        let mut strip = Vec::new();
        if name.contains("phi-3") || name.contains("phi3") {
            for (i, t) in texts.iter().enumerate() {
                let keep = matches!(&**t, "<unk>" | "<s>" | "<|endoftext|>");
                if (types[i].is_special() || &**t == "</s>") && !keep {
                    strip.push((i as u32, false, true));
                }
            }
        }

        let mut byte_tokens = [None; 256];
        if kind == VocabKind::Spm {
            for (b, slot) in byte_tokens.iter_mut().enumerate() {
                let hex = format!("<0x{b:02X}>");
                *slot = map.get(hex.as_str()).copied().or_else(|| {
                    let c = char::from_u32(b as u32).filter(|c| c.is_ascii())?;
                    map.get(c.encode_utf8(&mut [0; 4]) as &str).copied()
                });
            }
        }

        Ok(Vocab {
            kind,
            pre,
            texts,
            scores,
            types,
            map,
            merges,
            bos,
            eos,
            eot,
            unk,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
            ignore_merges,
            byte_tokens,
            strip,
        })
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// The id of a token text, if any.
    #[inline]
    pub fn id(&self, text: &str) -> Option<u32> {
        self.map.get(text).copied()
    }

    /// Whether a token strips whitespace on its (left, right) when found in text.
    pub fn strips(&self, id: u32) -> (bool, bool) {
        match self.strip.binary_search_by_key(&id, |s| s.0) {
            Ok(i) => (self.strip[i].1, self.strip[i].2),
            Err(_) => (false, false),
        }
    }

    /// Special tokens to match in text, longest text first (ties by id).
    pub fn special_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = (0..self.len() as u32)
            .filter(|&i| self.types[i as usize].is_special())
            .collect();
        ids.sort_by(|&a, &b| {
            self.texts[b as usize]
                .len()
                .cmp(&self.texts[a as usize].len())
                .then(a.cmp(&b))
        });
        ids
    }
}

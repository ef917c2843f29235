//! Tokenizers built from GGUF metadata, matching llama.cpp token for token.
//!
//! - SentencePiece style (`tokenizer.ggml.model = llama`): score-driven bigram merges,
//!   byte fallback `<0xNN>`, `▁` for spaces, `tokenizer.ggml.add_space_prefix`.
//! - GPT-2 style byte-level BPE (`gpt2`): merge ranks, with the pre-tokenizer named by
//!   `tokenizer.ggml.pre` (`llama3`/`llama-bpe`, `qwen2`, `gpt-2`, `default`, …).
//!
//! Special tokens written in the text (control and user-defined tokens) are parsed as
//! those tokens, longest first, as llama.cpp's server does; user-defined tokens are
//! matched even when special parsing is off (and, as llama.cpp does by model name,
//! Phi-3's special tokens eat the whitespace after them). Decoding follows llama.cpp's
//! `llama_detokenize` (see [`StreamDecoder`] for the rules), and a streaming decoder
//! gives the same text delta by delta.
//!
//! ```no_run
//! # fn demo(md: &llorch_worker::gguf::Metadata) -> Result<(), llorch_worker::tokenizer::TokenizerError> {
//! use llorch_worker::tokenizer::Tokenizer;
//! let tok = Tokenizer::from_metadata(md)?;
//! let ids = tok.encode("<start_of_turn>user\nHi<end_of_turn>\n", true, true)?;
//! assert_eq!(tok.decode(&ids)?, "<start_of_turn>user\nHi<end_of_turn>\n");
//! # Ok(()) }
//! ```

mod bpe;
mod decode;
mod error;
mod pretok;
mod special;
mod spm;
mod unicode_table;
mod vocab;

use std::cell::RefCell;

pub use decode::StreamDecoder;
pub use error::TokenizerError;
pub use pretok::PreTokenizer;
pub use vocab::{TokenType, VocabKind};

use crate::gguf::Metadata;
use special::{Fragment, SpecialMatcher};
use vocab::Vocab;

/// A tokenizer: text ↔ token ids for one model's vocabulary.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Vocab,
    special: SpecialMatcher,
    /// Decoded pieces of all tokens (specials as their text), back to back.
    pieces: Vec<u8>,
    /// Start of each token's piece in `pieces`, plus the end.
    piece_offs: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<(spm::SpmScratch, bpe::BpeScratch)> = RefCell::default();
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF metadata table (`tokenizer.ggml.*` keys).
    pub fn from_metadata(md: &Metadata) -> Result<Self, TokenizerError> {
        let vocab = Vocab::from_metadata(md)?;
        let special = SpecialMatcher::new(&vocab);
        let mut pieces = Vec::new();
        let mut piece_offs = Vec::with_capacity(vocab.len() + 1);
        for id in 0..vocab.len() {
            piece_offs.push(pieces.len());
            render_piece(&vocab, id, &mut pieces);
        }
        piece_offs.push(pieces.len());
        Ok(Tokenizer {
            vocab,
            special,
            pieces,
            piece_offs,
        })
    }

    /// Text to token ids.
    ///
    /// `add_special` adds BOS (and EOS) when the model's metadata asks for them;
    /// `parse_special` makes control tokens written in the text (`<start_of_turn>`)
    /// count as those tokens. User-defined tokens are always matched.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        if text.len() > (i32::MAX as usize) / 3 {
            return Err(TokenizerError::TextTooLong(text.len()));
        }
        let v = &self.vocab;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && v.add_bos {
            out.extend(v.bos);
        }
        let fragments = if text.is_empty() {
            Vec::new()
        } else {
            self.special.partition(v, text, parse_special)
        };
        SCRATCH.with(|scratch| -> Result<(), TokenizerError> {
            let mut guard = scratch.borrow_mut();
            let (spm_scratch, bpe_scratch) = &mut *guard;
            let mut prev_special = true;
            let mut escaped = String::new();
            for frag in fragments {
                match frag {
                    Fragment::Token(id) => {
                        out.push(id);
                        prev_special = true;
                    }
                    Fragment::Text(s, e) => {
                        let piece = &text[s..e];
                        match v.kind {
                            VocabKind::Spm => {
                                escaped.clear();
                                if v.add_space_prefix && prev_special {
                                    escaped.push('▁');
                                }
                                for c in piece.chars() {
                                    escaped.push(if c == ' ' { '▁' } else { c });
                                }
                                spm::tokenize(v, &escaped, &mut out, spm_scratch)?;
                            }
                            VocabKind::Bpe => bpe::tokenize(v, piece, &mut out, bpe_scratch),
                        }
                        prev_special = false;
                    }
                }
            }
            Ok(())
        })?;
        if add_special && v.add_eos {
            out.extend(v.eos);
        }
        Ok(out)
    }

    /// Token ids to text, by llama.cpp's detokenize rules: a leading BOS (and a
    /// trailing EOS) that the model adds is dropped, other special tokens are written
    /// as their text, byte tokens are assembled into UTF-8 (invalid bytes become
    /// U+FFFD).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        decode::decode_all(self, ids)
    }

    /// A streaming decoder for this tokenizer (see [`StreamDecoder`]).
    pub fn stream_decoder(&self) -> StreamDecoder {
        StreamDecoder::new(self)
    }

    /// The bytes a token contributes to decoded text (special tokens as their text;
    /// a byte token is one byte, possibly part of a UTF-8 character).
    pub fn token_to_piece(&self, id: u32) -> Result<&[u8], TokenizerError> {
        self.check_id(id)?;
        Ok(self.piece(id))
    }

    /// The token's text as stored in the vocabulary (`▁Hello`, `<0x0A>`, `ĠHello`).
    pub fn token_text(&self, id: u32) -> Result<&str, TokenizerError> {
        self.check_id(id)?;
        Ok(&self.vocab.texts[id as usize])
    }

    /// The token's type.
    pub fn token_type(&self, id: u32) -> Result<TokenType, TokenizerError> {
        self.check_id(id)?;
        Ok(self.vocab.types[id as usize])
    }

    /// The token's score (SentencePiece log-probability; 0 when absent).
    pub fn token_score(&self, id: u32) -> Result<f32, TokenizerError> {
        self.check_id(id)?;
        Ok(self.vocab.scores[id as usize])
    }

    /// The id of a token text, if the vocabulary has it.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The tokenizer algorithm.
    pub fn kind(&self) -> VocabKind {
        self.vocab.kind
    }

    /// The pre-tokenizer (BPE vocabularies only).
    pub fn pre_tokenizer(&self) -> Option<PreTokenizer> {
        (self.vocab.kind == VocabKind::Bpe).then_some(self.vocab.pre)
    }

    /// The beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    /// The end-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    /// The end-of-turn token (from metadata, or found by its text, e.g. `<end_of_turn>`).
    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }

    /// The unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }

    /// Whether `encode(.., add_special = true, ..)` starts with BOS.
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` ends with EOS.
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// Whether a space is put before text that starts the input or follows a special
    /// token (SentencePiece `add_dummy_prefix`).
    pub fn add_space_prefix(&self) -> bool {
        self.vocab.add_space_prefix
    }

    /// Whether decoding removes spaces before punctuation (HF
    /// `clean_up_tokenization_spaces`).
    pub fn clean_spaces(&self) -> bool {
        self.vocab.clean_spaces
    }

    /// Whether a token ends generation (EOS, EOT and the like; false when out of range).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.binary_search(&id).is_ok()
    }

    /// All end-of-generation tokens, sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.vocab.eog
    }

    fn check_id(&self, id: u32) -> Result<(), TokenizerError> {
        if (id as usize) < self.vocab.len() {
            Ok(())
        } else {
            Err(TokenizerError::IdOutOfRange {
                id,
                vocab_size: self.vocab.len(),
            })
        }
    }

    /// The piece of an id known to be in range.
    fn piece(&self, id: u32) -> &[u8] {
        let i = id as usize;
        &self.pieces[self.piece_offs[i]..self.piece_offs[i + 1]]
    }
}

/// Appends a token's piece (llama.cpp `token_to_piece` with `special = true`).
fn render_piece(v: &Vocab, id: usize, out: &mut Vec<u8>) {
    let text = &*v.texts[id];
    match v.types[id] {
        TokenType::Control | TokenType::Unknown | TokenType::UserDefined => {
            out.extend_from_slice(text.as_bytes());
        }
        TokenType::Normal => match v.kind {
            VocabKind::Spm => {
                for c in text.chars() {
                    let c = if c == '▁' { ' ' } else { c };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
            }
            VocabKind::Bpe => bpe::decode_text(text, out),
        },
        TokenType::Byte => out.push(byte_of(text)),
        TokenType::Unused | TokenType::Undefined => {}
    }
}

/// The byte of a `<0xNN>` token (like `strtol` on the two digits: a bad digit ends it).
fn byte_of(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..5).unwrap_or_default();
    let mut v = 0u8;
    for &d in digits {
        match (d as char).to_digit(16) {
            Some(x) => v = v.wrapping_mul(16).wrapping_add(x as u8),
            None => break,
        }
    }
    v
}

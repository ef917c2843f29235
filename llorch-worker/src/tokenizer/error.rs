//! Errors of building a tokenizer from GGUF metadata and of using it.

/// What went wrong while building or using a [`Tokenizer`](super::Tokenizer).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenizerError {
    /// A required metadata key is absent.
    #[error("tokenizer metadata: missing key `{0}`")]
    MissingKey(&'static str),
    /// A metadata key has the wrong type (or an array element does).
    #[error("tokenizer metadata: `{key}` should be {expected}, found {found}")]
    WrongType {
        /// The key.
        key: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A per-token array is shorter than the token list.
    #[error("tokenizer metadata: `{key}` has {len} entries for {n_tokens} tokens")]
    ShortArray {
        /// The key.
        key: &'static str,
        /// Its length.
        len: usize,
        /// The number of tokens.
        n_tokens: usize,
    },
    /// The vocabulary has no tokens, or more than `u32` can index.
    #[error("tokenizer metadata: vocabulary size {0} is not usable")]
    BadVocabSize(usize),
    /// Two tokens have the same text.
    #[error("tokenizer metadata: duplicate token {text:?} with ids {first} and {second}")]
    DuplicateToken {
        /// The token text.
        text: String,
        /// The first id.
        first: u32,
        /// The second id.
        second: u32,
    },
    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error("unsupported tokenizer model {0:?} (supported: llama, gpt2)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not implement.
    #[error("unsupported pre-tokenizer {0:?} for a gpt2 vocabulary")]
    UnsupportedPreTokenizer(String),
    /// The model asks for BOS/EOS to be added but has no such token.
    #[error("tokenizer metadata: {flag} is true but the model has no {token} token")]
    MissingSpecial {
        /// The flag key.
        flag: &'static str,
        /// Which special token.
        token: &'static str,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    IdOutOfRange {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// A piece of text has no token and the vocabulary has neither a byte token nor an
    /// unknown token to fall back on.
    #[error("no token for byte 0x{0:02X} and no unknown token")]
    NoFallback(u8),
    /// The input text is too long to tokenize in one call.
    #[error("text of {0} bytes is too long to tokenize in one call")]
    TextTooLong(usize),
}

//! `llorch tokenize` and `llorch detokenize`: a model's tokenizer from the command line.
//!
//! - `llorch tokenize --model PATH TEXT` prints the token ids as one JSON array (BOS
//!   included when the model adds it; special-token text such as `<start_of_turn>` is
//!   parsed as the special token, as llama.cpp's server does).
//! - `llorch detokenize --model PATH ID,ID,...` prints the text, exactly (no newline is
//!   added).

use std::fmt;
use std::path::Path;

use llorch_worker::gguf::{GgufError, GgufFile};
use llorch_worker::tokenizer::Tokenizer;

/// Why a tokenize/detokenize command failed; `Display` is one line naming the problem.
#[derive(Debug)]
pub enum TokenizeError {
    /// The model file could not be opened or is not a valid GGUF file.
    Model(String),
    /// The ID list is malformed.
    BadIds(String),
    /// Tokenizing or detokenizing failed (e.g. an id out of range).
    Tokenizer(String),
}

impl fmt::Display for TokenizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizeError::Model(m) | TokenizeError::BadIds(m) | TokenizeError::Tokenizer(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for TokenizeError {}

/// Opens a GGUF model and builds its tokenizer.
pub fn load_tokenizer(path: &Path) -> Result<Tokenizer, TokenizeError> {
    let file = GgufFile::open(path).map_err(|e| {
        TokenizeError::Model(match e {
            // The I/O error already names the file.
            GgufError::Io { .. } => format!("cannot load model {e}"),
            _ => format!("cannot load model {}: {e}", path.display()),
        })
    })?;
    Tokenizer::from_metadata(file.metadata()).map_err(|e| {
        TokenizeError::Model(format!(
            "model {} has no usable tokenizer: {e}",
            path.display()
        ))
    })
}

/// The ids of `text` as a JSON array (the output of `llorch tokenize`).
pub fn tokenize(tok: &Tokenizer, text: &str) -> Result<String, TokenizeError> {
    let ids = tok
        .encode(text, true, true)
        .map_err(|e| TokenizeError::Tokenizer(e.to_string()))?;
    let items: Vec<String> = ids.iter().map(u32::to_string).collect();
    Ok(format!("[{}]", items.join(",")))
}

/// Parses `ID,ID,...` (spaces around ids allowed; an empty list is empty).
pub fn parse_ids(list: &str) -> Result<Vec<u32>, TokenizeError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|item| {
            let t = item.trim();
            t.parse::<u32>().map_err(|_| {
                TokenizeError::BadIds(format!(
                    "bad token id {t:?} in {list:?}: expected comma-separated integers 0..{}",
                    u32::MAX
                ))
            })
        })
        .collect()
}

/// The text of an `ID,ID,...` list (the output of `llorch detokenize`).
pub fn detokenize(tok: &Tokenizer, list: &str) -> Result<String, TokenizeError> {
    let ids = parse_ids(list)?;
    tok.decode(&ids)
        .map_err(|e| TokenizeError::Tokenizer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists() {
        assert_eq!(parse_ids("2, 9259,1902").unwrap(), [2, 9259, 1902]);
        assert!(parse_ids("").unwrap().is_empty());
        for bad in ["1,,2", "1,x", "-1", "1,", "4294967296"] {
            let e = parse_ids(bad).unwrap_err().to_string();
            assert!(e.contains("bad token id"), "{e}");
            assert_eq!(e.lines().count(), 1);
        }
    }
}

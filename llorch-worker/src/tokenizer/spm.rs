//! SentencePiece-style tokenization (`tokenizer.ggml.model = llama`), as llama.cpp's
//! `llm_tokenizer_spm` does it.
//!
//! The text (spaces already escaped to `▁`) starts as one symbol per code point. Every
//! adjacent pair whose concatenation is a token goes into a priority queue keyed by
//! that token's score (highest first; ties to the leftmost pair). The best pair is
//! merged, its new neighbours are queued, and this repeats until no pair is left.
//! Each final symbol is its token, or, when it is not in the vocabulary, the byte
//! tokens `<0xNN>` of its UTF-8 bytes (the unknown token when those are missing too).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::error::TokenizerError;
use super::vocab::Vocab;

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: u32,
    len: u32,
    prev: i32,
    next: i32,
}

#[derive(Debug, Clone, Copy)]
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Greater = merged first: higher score, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Reusable buffers of the SPM merge loop.
#[derive(Debug, Default)]
pub(crate) struct SpmScratch {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// Tokenizes one escaped text fragment, appending ids to `out`.
pub(crate) fn tokenize(
    vocab: &Vocab,
    text: &str,
    out: &mut Vec<u32>,
    scratch: &mut SpmScratch,
) -> Result<(), TokenizerError> {
    if text.is_empty() {
        return Ok(());
    }
    let SpmScratch { symbols, queue } = scratch;
    symbols.clear();
    queue.clear();
    let mut it = text.char_indices().peekable();
    let mut index = 0i32;
    while let Some((off, c)) = it.next() {
        let last = it.peek().is_none();
        symbols.push(Symbol {
            start: off as u32,
            len: c.len_utf8() as u32,
            prev: index - 1,
            next: if last { -1 } else { index + 1 },
        });
        index += 1;
    }

    let try_add = |symbols: &[Symbol], queue: &mut BinaryHeap<Bigram>, left: i32, right: i32| {
        if left < 0 || right < 0 {
            return;
        }
        let (l, r) = (symbols[left as usize], symbols[right as usize]);
        let size = l.len + r.len;
        let piece = &text[l.start as usize..(l.start + size) as usize];
        if let Some(id) = vocab.id(piece) {
            queue.push(Bigram {
                score: vocab.scores[id as usize],
                left: left as u32,
                right: right as u32,
                size,
            });
        }
    };

    for i in 1..symbols.len() as i32 {
        try_add(symbols, queue, i - 1, i);
    }
    while let Some(b) = queue.pop() {
        let (l, r) = (symbols[b.left as usize], symbols[b.right as usize]);
        // Skip pairs made stale by an earlier merge.
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        symbols[b.left as usize].len = b.size;
        symbols[b.left as usize].next = r.next;
        symbols[b.right as usize].len = 0;
        if r.next >= 0 {
            symbols[r.next as usize].prev = b.left as i32;
        }
        try_add(symbols, queue, l.prev, b.left as i32);
        try_add(symbols, queue, b.left as i32, r.next);
    }

    let mut i = 0i32;
    while i >= 0 {
        let s = symbols[i as usize];
        let piece = &text[s.start as usize..(s.start + s.len) as usize];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    out.push(byte_token(vocab, b)?);
                }
            }
        }
        i = s.next;
    }
    Ok(())
}

/// The byte-fallback token of a byte, else the unknown token.
fn byte_token(vocab: &Vocab, b: u8) -> Result<u32, TokenizerError> {
    vocab.byte_tokens[b as usize]
        .or(vocab.unk)
        .ok_or(TokenizerError::NoFallback(b))
}

//! GPT-2 style byte-level BPE (`tokenizer.ggml.model = gpt2`), as llama.cpp's
//! `llm_tokenizer_bpe` does it.
//!
//! The pre-tokenizer cuts text into words; each word's UTF-8 bytes are mapped to
//! printable characters (GPT-2's `bytes_to_unicode`), then adjacent symbols are merged
//! by merge rank (lowest first; ties to the leftmost pair) until no merge applies.
//! Vocabularies that ignore merges (llama3) take a whole word directly when it is a
//! token.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// GPT-2's byte → character map: printable Latin-1 bytes map to themselves, the
/// others to U+0100 onwards in byte order.
pub(crate) const BYTE_TO_CHAR: [char; 256] = byte_to_char();

const fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    let mut b = 0usize;
    while b < 256 {
        let printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        table[b] = if printable {
            match char::from_u32(b as u32) {
                Some(c) => c,
                None => '\0',
            }
        } else {
            let c = match char::from_u32(256 + n) {
                Some(c) => c,
                None => '\0',
            };
            n += 1;
            c
        };
        b += 1;
    }
    table
}

/// The inverse of [`BYTE_TO_CHAR`] for characters below U+0144 (`u16::MAX`: none).
const CHAR_TO_BYTE: [u16; 0x144] = char_to_byte_table();

const fn char_to_byte_table() -> [u16; 0x144] {
    let mut table = [u16::MAX; 0x144];
    let mut b = 0usize;
    while b < 256 {
        table[BYTE_TO_CHAR[b] as usize] = b as u16;
        b += 1;
    }
    table
}

/// The byte a GPT-2 character stands for, if it is one of the 256.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    CHAR_TO_BYTE
        .get(c as usize)
        .and_then(|&b| u8::try_from(b).ok())
}

/// Appends the bytes a byte-level token text stands for (llama.cpp's
/// `llama_decode_text`, with its `[UNK_BYTE_…]` marker for foreign characters).
pub(crate) fn decode_text(text: &str, out: &mut Vec<u8>) {
    for c in text.chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: isize,
    next: isize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Greater = merged first: lower rank, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .rank
            .cmp(&self.rank)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.size.cmp(&self.size))
    }
}

/// Reusable buffers of the BPE merge loop.
#[derive(Debug, Default)]
pub(crate) struct BpeScratch {
    words: Vec<(usize, usize)>,
    word: String,
    key: String,
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// Tokenizes one text fragment (no special tokens in it), appending ids to `out`.
pub(crate) fn tokenize(vocab: &Vocab, text: &str, out: &mut Vec<u32>, scratch: &mut BpeScratch) {
    let BpeScratch {
        words,
        word,
        key,
        symbols,
        queue,
    } = scratch;
    words.clear();
    vocab.pre.split(text, words);
    for &(ws, we) in words.iter() {
        word.clear();
        word.extend(text[ws..we].bytes().map(|b| BYTE_TO_CHAR[b as usize]));
        if vocab.ignore_merges
            && let Some(id) = vocab.id(word)
        {
            out.push(id);
            continue;
        }
        symbols.clear();
        queue.clear();
        let n = word.chars().count() as isize;
        for (i, (off, c)) in word.char_indices().enumerate() {
            let i = i as isize;
            symbols.push(Symbol {
                start: off,
                len: c.len_utf8(),
                prev: i - 1,
                next: if i + 1 == n { -1 } else { i + 1 },
            });
        }
        let add = |symbols: &[Symbol],
                   queue: &mut BinaryHeap<Bigram>,
                   key: &mut String,
                   l: isize,
                   r: isize| {
            if l < 0 || r < 0 {
                return;
            }
            let (ls, rs) = (symbols[l as usize], symbols[r as usize]);
            key.clear();
            key.push_str(&word[ls.start..ls.start + ls.len]);
            key.push(' ');
            key.push_str(&word[rs.start..rs.start + rs.len]);
            if let Some(&rank) = vocab.merges.get(key.as_str()) {
                queue.push(Bigram {
                    rank,
                    left: l as usize,
                    right: r as usize,
                    size: ls.len + rs.len,
                });
            }
        };
        for i in 1..n {
            add(symbols, queue, key, i - 1, i);
        }
        while let Some(b) = queue.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            symbols[b.left].len = b.size;
            symbols[b.left].next = r.next;
            symbols[b.right].len = 0;
            if r.next >= 0 {
                symbols[r.next as usize].prev = b.left as isize;
            }
            add(symbols, queue, key, l.prev, b.left as isize);
            add(symbols, queue, key, b.left as isize, r.next);
        }
        let mut i = if symbols.is_empty() { -1 } else { 0 };
        while i >= 0 {
            let s = symbols[i as usize];
            let piece = &word[s.start..s.start + s.len];
            match vocab.id(piece) {
                Some(id) => out.push(id),
                // llama.cpp looks each UTF-8 byte of the piece up as a one-byte
                // string; only ASCII bytes can be found.
                None => out.extend(
                    piece
                        .bytes()
                        .filter(u8::is_ascii)
                        .filter_map(|b| vocab.id(char::from(b).encode_utf8(&mut [0; 4]))),
                ),
            }
            i = s.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_map_is_a_bijection() {
        let mut seen = std::collections::HashSet::new();
        for b in 0..=255u8 {
            let c = BYTE_TO_CHAR[b as usize];
            assert!(seen.insert(c));
            assert_eq!(char_to_byte(c), Some(b));
        }
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(char_to_byte('€'), None);
    }
}

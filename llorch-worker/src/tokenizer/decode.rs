//! Token ids back to text: pieces, llama.cpp's detokenize rules, and a streaming
//! detokenizer whose output, concatenated, equals [`Tokenizer::decode`].
//!
//! The rules (llama.cpp `llama_detokenize` with `remove_special` and
//! `unparse_special` on):
//! - a leading BOS is dropped when the model adds BOS, a trailing EOS when it adds EOS;
//! - control and user-defined tokens are written as their text (`<start_of_turn>`);
//! - when the vocabulary adds a space prefix and the first token was not a dropped
//!   BOS, one leading space of the first piece is removed;
//! - byte tokens `<0xNN>` contribute their byte; the bytes are assembled into UTF-8,
//!   and invalid sequences become U+FFFD exactly as `String::from_utf8_lossy` does;
//! - vocabularies with `clean_spaces` (GPT-2, Llama 3) get llama.cpp's three clean-up
//!   passes (` ?`→`?` etc., ` ' `→`'`, ` 's`→`'s`).

use super::Tokenizer;
use super::error::TokenizerError;

/// Decodes ids one at a time into text deltas.
///
/// It never returns half a UTF-8 character: bytes of an incomplete character (from
/// byte-fallback tokens) wait for the next ids. `finish` returns what is left. The
/// deltas concatenated equal [`Tokenizer::decode`] of all the ids.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    started: bool,
    remove_space: bool,
    held_eos: bool,
    cleaner: Option<SpaceCleaner>,
    utf8: Vec<u8>,
    scratch: Vec<u8>,
}

impl StreamDecoder {
    /// A decoder for sequences of `tok`'s ids.
    pub fn new(tok: &Tokenizer) -> Self {
        StreamDecoder {
            started: false,
            remove_space: false,
            held_eos: false,
            cleaner: tok.clean_spaces().then(SpaceCleaner::default),
            utf8: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Feeds one id; returns the text that became final (possibly empty).
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String, TokenizerError> {
        tok.check_id(id)?;
        let mut text = String::new();
        if !self.started {
            self.started = true;
            self.remove_space = tok.add_space_prefix();
            if tok.add_bos() && Some(id) == tok.bos() {
                self.remove_space = false;
                return Ok(text);
            }
        }
        if self.held_eos {
            self.held_eos = false;
            if let Some(eos) = tok.eos() {
                self.emit(tok, eos, &mut text);
            }
        }
        if tok.add_eos() && Some(id) == tok.eos() {
            self.held_eos = true;
        } else {
            self.emit(tok, id, &mut text);
        }
        Ok(text)
    }

    /// Ends the sequence: returns the remaining text (an incomplete UTF-8 tail becomes
    /// U+FFFD; a held trailing EOS is dropped).
    pub fn finish(&mut self) -> String {
        let mut bytes = Vec::new();
        if let Some(c) = &mut self.cleaner {
            c.finish(&mut bytes);
        }
        self.utf8.extend_from_slice(&bytes);
        let text = String::from_utf8_lossy(&self.utf8).into_owned();
        self.utf8.clear();
        self.started = false;
        self.remove_space = false;
        self.held_eos = false;
        text
    }

    fn emit(&mut self, tok: &Tokenizer, id: u32, text: &mut String) {
        let mut piece = tok.piece(id);
        if self.remove_space {
            self.remove_space = false;
            piece = piece.strip_prefix(b" ").unwrap_or(piece);
        }
        match &mut self.cleaner {
            Some(c) => {
                self.scratch.clear();
                c.feed(piece, &mut self.scratch, false);
                self.utf8.extend_from_slice(&self.scratch);
            }
            None => self.utf8.extend_from_slice(piece),
        }
        take_valid_utf8(&mut self.utf8, text);
    }
}

/// Moves the complete UTF-8 prefix of `buf` into `out` (invalid sequences as U+FFFD,
/// the way `from_utf8_lossy` replaces them), leaving an incomplete tail in `buf`.
fn take_valid_utf8(buf: &mut Vec<u8>, out: &mut String) {
    let mut at = 0;
    loop {
        match std::str::from_utf8(&buf[at..]) {
            Ok(s) => {
                out.push_str(s);
                at = buf.len();
                break;
            }
            Err(e) => {
                let valid = e.valid_up_to();
                out.push_str(std::str::from_utf8(&buf[at..at + valid]).unwrap_or_default());
                at += valid;
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        at += n;
                    }
                    None => break,
                }
            }
        }
    }
    buf.drain(..at);
}

/// Decodes a whole sequence (the reference the stream decoder must match).
pub(crate) fn decode_all(tok: &Tokenizer, ids: &[u32]) -> Result<String, TokenizerError> {
    for &id in ids {
        tok.check_id(id)?;
    }
    let mut ids = ids;
    let mut remove_space = tok.add_space_prefix();
    if tok.add_bos() && !ids.is_empty() && Some(ids[0]) == tok.bos() {
        remove_space = false;
        ids = &ids[1..];
    }
    if tok.add_eos() && !ids.is_empty() && Some(ids[ids.len() - 1]) == tok.eos() {
        ids = &ids[..ids.len() - 1];
    }
    let mut bytes = Vec::new();
    for &id in ids {
        let mut piece = tok.piece(id);
        if remove_space {
            piece = piece.strip_prefix(b" ").unwrap_or(piece);
        }
        remove_space = false;
        bytes.extend_from_slice(piece);
    }
    if tok.clean_spaces() {
        bytes = clean_spaces(&bytes);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// llama.cpp's three clean-up passes over a whole text (reference implementation).
pub(crate) fn clean_spaces(t: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut c = SpaceCleaner::default();
    c.feed(t, &mut out, true);
    out
}

/// The clean-up passes as a chain of streaming transducers.
#[derive(Debug, Clone, Default)]
struct SpaceCleaner {
    passes: [Pass; 3],
}

impl SpaceCleaner {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, fin: bool) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        self.passes[0].feed(1, input, &mut a, fin);
        self.passes[1].feed(2, &a, &mut b, fin);
        self.passes[2].feed(3, &b, out, fin);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.feed(&[], out, true);
        *self = SpaceCleaner::default();
    }
}

/// One pass: `pending` is input not yet decided, `held` the last byte written (which a
/// later decision may take back), `prev` the input byte before `pending[0]` as the
/// pass sees it (llama.cpp's second pass overwrites a skipped byte with NUL).
#[derive(Debug, Clone, Default)]
struct Pass {
    started: bool,
    prev: u8,
    held: Option<u8>,
    pending: Vec<u8>,
}

impl Pass {
    fn write(&mut self, x: u8, out: &mut Vec<u8>) {
        if let Some(h) = self.held.replace(x) {
            out.push(h);
        }
    }

    fn feed(&mut self, which: u8, input: &[u8], out: &mut Vec<u8>, fin: bool) {
        self.pending.extend_from_slice(input);
        let p = std::mem::take(&mut self.pending);
        let mut i = 0;
        while i < p.len() {
            let x = p[i];
            if !self.started {
                self.started = true;
                self.write(x, out);
                self.prev = x;
                i += 1;
                continue;
            }
            let at = |k: usize| p.get(i + k).copied();
            let candidate = self.prev == b' ';
            match which {
                1 => {
                    if candidate && matches!(x, b'?' | b'!' | b'.' | b',') {
                        self.held = None;
                    }
                    self.write(x, out);
                    self.prev = x;
                    i += 1;
                }
                2 => {
                    if candidate && x == b'\'' {
                        if at(1).is_none() && !fin {
                            break;
                        }
                        if at(1) == Some(b' ') {
                            self.held = None;
                            self.write(x, out);
                            self.prev = 0;
                            i += 2;
                            continue;
                        }
                    }
                    self.write(x, out);
                    self.prev = x;
                    i += 1;
                }
                _ => {
                    if candidate && x == b'\'' {
                        let x1 = at(1);
                        let needs_x2 = !matches!(x1, Some(b't' | b'd' | b's' | b'm'));
                        if (x1.is_none() || (needs_x2 && at(2).is_none())) && !fin {
                            break;
                        }
                        let drop = matches!(
                            (x1, at(2)),
                            (Some(b's' | b'm'), _) | (Some(b'r' | b'v'), Some(b'e'))
                        );
                        if drop {
                            self.held = None;
                        }
                    }
                    self.write(x, out);
                    self.prev = x;
                    i += 1;
                }
            }
        }
        self.pending = p[i..].to_vec();
        if fin {
            out.extend(self.held.take());
            *self = Pass::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct transcription of llama.cpp's in-place passes, to check the transducers.
    fn reference(text: &[u8]) -> Vec<u8> {
        let mut t = text.to_vec();
        let n = t.len();
        let mut out = Vec::new();
        if n > 0 {
            out.push(t[0]);
        }
        for i in 1..n {
            let x = t[i];
            if t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
                out.pop();
            }
            out.push(x);
        }
        t = std::mem::take(&mut out);
        let n = t.len();
        if n > 0 {
            out.push(t[0]);
        }
        let mut i = 1;
        while i < n {
            let x = t[i];
            if x == b'\'' && i + 1 < n && t[i - 1] == b' ' && t[i + 1] == b' ' {
                out.pop();
                i += 1;
                t[i] = 0;
            }
            out.push(x);
            i += 1;
        }
        t = std::mem::take(&mut out);
        let n = t.len();
        if n > 0 {
            out.push(t[0]);
        }
        for i in 1..n {
            let x = t[i];
            if t[i - 1] == b' ' && x == b'\'' && i + 1 < n {
                let x1 = t[i + 1];
                if x1 == b's' || x1 == b'm' {
                    out.pop();
                } else if x1 != b't' && x1 != b'd' && i + 2 < n {
                    let x2 = t[i + 2];
                    if (x1 == b'r' || x1 == b'v') && x2 == b'e' {
                        out.pop();
                    }
                }
            }
            out.push(x);
        }
        out
    }

    #[test]
    fn cleaner_matches_llama_cpp_passes() {
        let alphabet = b" '?.,smrevtdlx";
        let mut state = 12345u64;
        for len in 0..40 {
            for _ in 0..300 {
                let text: Vec<u8> = (0..len)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(state >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                let want = reference(&text);
                assert_eq!(
                    clean_spaces(&text),
                    want,
                    "{:?}",
                    String::from_utf8_lossy(&text)
                );
                // Byte by byte through the stream gives the same.
                let mut c = SpaceCleaner::default();
                let mut got = Vec::new();
                for &b in &text {
                    c.feed(&[b], &mut got, false);
                }
                c.finish(&mut got);
                assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&text));
            }
        }
        assert_eq!(clean_spaces(b"a ? b ' c 's"), b"a? b'c's");
    }
}

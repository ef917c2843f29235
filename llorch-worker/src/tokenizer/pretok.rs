//! Pre-tokenizers of GPT-2 style vocabularies: they cut text into words before BPE.
//!
//! Hand-written scanners with the semantics of the regexes llama.cpp uses for each
//! `tokenizer.ggml.pre` (lookahead included), over Unicode general categories:
//!
//! - `llama3`: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//!   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
//! - `qwen2`: the same with `\p{N}` (one digit per word).
//! - `gpt2`: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! - `qwen35`: `qwen2` with combining marks (`\p{M}`) counted with letters.
//! - `starcoder` (also `refact`, `command-r`, `smollm`, …): `\p{N}`, then `gpt2`.
//! - `falcon`: ``[\p{P}\$\+<=>\^~\|`]+``, then `gpt2`, then `[0-9][0-9][0-9]`.
//! - `default`: `[\p{P}\$\+<=>\^~\|]+`, then `gpt2`, then `\p{N}+`, then `[0-9][0-9][0-9]`.
//!
//! Where there are several regexes, each cuts the pieces of the previous one, and the
//! text between its matches is a piece too (llama.cpp `unicode_regex_split`).

use super::unicode_table::RANGES;

/// The pre-tokenizer of a BPE vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// llama.cpp's `default`: punctuation runs, GPT-2 words, number runs, digit triples.
    Default,
    /// The GPT-2 regex.
    Gpt2,
    /// The Llama 3 regex (numbers in groups of up to three digits).
    Llama3,
    /// The Qwen2 regex (one digit per word).
    Qwen2,
    /// The Qwen3.5 regex: Qwen2 with combining marks joined to letters.
    Qwen35,
    /// StarCoder: every digit alone, then the GPT-2 regex.
    StarCoder,
    /// Falcon: punctuation runs, the GPT-2 regex, then digit triples.
    Falcon,
}

/// What a `tokenizer.ggml.pre` name selects, with the flags llama.cpp ties to it.
pub(crate) struct PreChoice {
    pub pre: PreTokenizer,
    pub clean_spaces: bool,
    pub ignore_merges: bool,
    pub add_bos: bool,
    pub no_bos: bool,
}

impl PreTokenizer {
    /// The pre-tokenizer and flags for a `tokenizer.ggml.pre` name, as llama.cpp maps it.
    pub(crate) fn from_name(name: &str) -> Option<PreChoice> {
        let c = |pre, clean_spaces, ignore_merges, add_bos| PreChoice {
            pre,
            clean_spaces,
            ignore_merges,
            add_bos,
            no_bos: false,
        };
        use PreTokenizer::*;
        Some(match name {
            "" | "default" => c(Default, true, false, false),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => c(Llama3, true, true, true),
            "dbrx" | "smaug-bpe" => c(Llama3, true, false, false),
            "glm4" | "chatglm-bpe" => PreChoice {
                no_bos: true,
                ..c(Llama3, true, false, false)
            },
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
                c(Qwen2, false, false, false)
            }
            "stablelm2" | "megrez" => c(Qwen2, true, false, false),
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais"
            | "exaone4" => c(Gpt2, true, false, false),
            "trillion" | "granite-docling" => c(Gpt2, false, false, false),
            "qwen35" => c(Qwen35, false, false, false),
            "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
                c(StarCoder, true, false, false)
            }
            "command-r" | "smollm" => c(StarCoder, false, false, false),
            "falcon" => c(Falcon, true, false, false),
            _ => return None,
        })
    }

    /// Cuts `text` into words; each word is a byte range of `text`, in order, and the
    /// words cover the text exactly.
    pub fn split(self, text: &str, out: &mut Vec<(usize, usize)>) {
        let cps = Cps::new(text);
        let mut cuts = Vec::new();
        let whole = [(0, cps.len())];
        match self {
            PreTokenizer::Llama3 => split_llama3(&cps, &whole, 3, LETTER, &mut cuts),
            PreTokenizer::Qwen2 => split_llama3(&cps, &whole, 1, LETTER, &mut cuts),
            PreTokenizer::Qwen35 => split_llama3(&cps, &whole, 1, LETTER | MARK, &mut cuts),
            PreTokenizer::Gpt2 => split_gpt2(&cps, &whole, &mut cuts),
            PreTokenizer::StarCoder => {
                let mut a = Vec::new();
                split_singles(&cps, &whole, NUMBER, &mut a);
                split_gpt2(&cps, &a, &mut cuts);
            }
            PreTokenizer::Falcon => {
                let mut a = Vec::new();
                let punct = |c: char, f: u8| f & PUNCT != 0 || "$+<=>^~|`".contains(c);
                split_runs(&cps, &whole, punct, &mut a);
                let mut b = Vec::new();
                split_gpt2(&cps, &a, &mut b);
                split_digit_triples(&cps, &b, &mut cuts);
            }
            PreTokenizer::Default => {
                let mut a = Vec::new();
                split_runs(
                    &cps,
                    &whole,
                    |c, f| f & PUNCT != 0 || "$+<=>^~|".contains(c),
                    &mut a,
                );
                let mut b = Vec::new();
                split_gpt2(&cps, &a, &mut b);
                a.clear();
                split_runs(&cps, &b, |_, f| f & NUMBER != 0, &mut a);
                split_digit_triples(&cps, &a, &mut cuts);
            }
        }
        out.extend(cuts.iter().map(|&(s, e)| (cps.off[s], cps.off[e])));
    }
}

const LETTER: u8 = 1;
const NUMBER: u8 = 2;
const WS: u8 = 4;
const PUNCT: u8 = 8;
const MARK: u8 = 16;

/// The class flags of a code point: `\p{L}`, `\p{N}`, `\p{P}`, `\p{M}` by Unicode 15.1
/// general category (llama.cpp's tables), and `\s` (White_Space).
fn flags_of(c: char) -> u8 {
    let ws = if c.is_whitespace() { WS } else { 0 };
    let cp = c as u32;
    let i = RANGES.partition_point(|&(start, _)| start <= cp);
    ws | RANGES.get(i.wrapping_sub(1)).map_or(0, |r| r.1)
}

/// The code points of a text with their category flags and byte offsets.
struct Cps {
    ch: Vec<char>,
    fl: Vec<u8>,
    /// Byte offset of each code point, plus the text length at the end.
    off: Vec<usize>,
}

impl Cps {
    fn new(text: &str) -> Self {
        let mut ch = Vec::with_capacity(text.len());
        let mut fl = Vec::with_capacity(text.len());
        let mut off = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            ch.push(c);
            fl.push(flags_of(c));
            off.push(i);
        }
        off.push(text.len());
        Cps { ch, fl, off }
    }

    fn len(&self) -> usize {
        self.ch.len()
    }
}

/// A view of one piece `[ini, end)`: out-of-piece positions read as "nothing".
struct Piece<'a> {
    cps: &'a Cps,
    ini: usize,
    end: usize,
}

impl Piece<'_> {
    #[inline]
    fn cpt(&self, pos: usize) -> Option<char> {
        (self.ini <= pos && pos < self.end).then(|| self.cps.ch[pos])
    }
    #[inline]
    fn flags(&self, pos: usize) -> u8 {
        if self.ini <= pos && pos < self.end {
            self.cps.fl[pos]
        } else {
            0
        }
    }
    #[inline]
    fn exists(&self, pos: usize) -> bool {
        self.ini <= pos && pos < self.end
    }
    #[inline]
    fn is_crlf(&self, pos: usize) -> bool {
        matches!(self.cpt(pos), Some('\r' | '\n'))
    }
}

/// Emits `[prev, end)` when non-empty.
#[inline]
fn add(out: &mut Vec<(usize, usize)>, prev: &mut usize, end: usize) -> usize {
    let len = end - *prev;
    if len > 0 {
        out.push((*prev, end));
    }
    *prev = end;
    len
}

/// Length of the English contraction at `pos` (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`).
fn contraction(p: &Piece<'_>, pos: usize, fold_case: bool) -> usize {
    if p.cpt(pos) != Some('\'') || !p.exists(pos + 1) {
        return 0;
    }
    let low = |c: Option<char>| c.map(|c| if fold_case { c.to_ascii_lowercase() } else { c });
    let n1 = low(p.cpt(pos + 1));
    if matches!(n1, Some('s' | 't' | 'm' | 'd')) {
        return 2;
    }
    if p.exists(pos + 2) {
        let n2 = low(p.cpt(pos + 2));
        if matches!(
            (n1, n2),
            (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))
        ) {
            return 3;
        }
    }
    0
}

/// Whitespace handling shared by the scanners: `\s+(?!\S)` then `\s+`, and with
/// `newlines`, first `\s*[\r\n]+`. Returns the new position, or `None` if no whitespace.
fn whitespace(p: &Piece<'_>, pos: usize, newlines: bool) -> Option<usize> {
    let mut n = 0;
    let mut last_nl = None;
    while p.flags(pos + n) & WS != 0 {
        if p.is_crlf(pos + n) {
            last_nl = Some(pos + n + 1);
        }
        n += 1;
    }
    if newlines && last_nl.is_some() {
        return last_nl;
    }
    if n > 1 && p.exists(pos + n) {
        return Some(pos + n - 1);
    }
    (n > 0).then_some(pos + n)
}

/// The llama3 family: `group` digits per number word; `letters` is the letter class
/// (`\p{L}`, or `[\p{L}\p{M}]` for qwen35, which then leaves marks out of the
/// punctuation class too).
fn split_llama3(
    cps: &Cps,
    pieces: &[(usize, usize)],
    group: usize,
    letters: u8,
    out: &mut Vec<(usize, usize)>,
) {
    for &(ini, end) in pieces {
        let p = Piece { cps, ini, end };
        let mut prev = ini;
        let mut pos = ini;
        while pos < end {
            let cpt = cps.ch[pos];
            let flags = cps.fl[pos];
            let n = contraction(&p, pos, true);
            if n > 0 {
                pos += add(out, &mut prev, pos + n);
                continue;
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(cpt == '\r' || cpt == '\n' || flags & NUMBER != 0)
                && (flags & letters != 0 || p.flags(pos + 1) & letters != 0)
            {
                pos += 1;
                while p.flags(pos) & letters != 0 {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            // \p{N}{1,group}
            if flags & NUMBER != 0 {
                let mut start = pos;
                while p.flags(pos) & NUMBER != 0 {
                    pos += 1;
                    if pos - start >= group {
                        add(out, &mut prev, pos);
                        start = pos;
                    }
                }
                add(out, &mut prev, pos);
                continue;
            }
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            let mut f2 = if cpt == ' ' { p.flags(pos + 1) } else { flags };
            let other = |f: u8, here: bool| f & (WS | letters | NUMBER) == 0 && here;
            if other(f2, true) {
                pos += usize::from(cpt == ' ');
                while other(f2, p.exists(pos)) {
                    pos += 1;
                    f2 = p.flags(pos);
                }
                while p.is_crlf(pos) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            pos = whitespace(&p, pos, true).unwrap_or(pos + 1);
            add(out, &mut prev, pos);
        }
    }
}

fn split_gpt2(cps: &Cps, pieces: &[(usize, usize)], out: &mut Vec<(usize, usize)>) {
    for &(ini, end) in pieces {
        let p = Piece { cps, ini, end };
        let mut prev = ini;
        let mut pos = ini;
        while pos < end {
            let cpt = cps.ch[pos];
            let n = contraction(&p, pos, false);
            if n > 0 {
                pos += add(out, &mut prev, pos + n);
                continue;
            }
            let space = cpt == ' ';
            let f2 = if space { p.flags(pos + 1) } else { cps.fl[pos] };
            let here = |q: usize| p.exists(q);
            // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
            let class: Option<fn(u8) -> bool> = if f2 & LETTER != 0 {
                Some(|f| f & LETTER != 0)
            } else if f2 & NUMBER != 0 {
                Some(|f| f & NUMBER != 0)
            } else if f2 & (WS | LETTER | NUMBER) == 0 && here(pos + usize::from(space)) {
                Some(|f| f & (WS | LETTER | NUMBER) == 0)
            } else {
                None
            };
            if let Some(class) = class {
                pos += usize::from(space);
                while here(pos) && class(p.flags(pos)) {
                    pos += 1;
                }
                add(out, &mut prev, pos);
                continue;
            }
            pos = whitespace(&p, pos, false).unwrap_or(pos + 1);
            add(out, &mut prev, pos);
        }
    }
}

/// Cuts each piece into maximal runs of code points in and out of a class.
fn split_runs(
    cps: &Cps,
    pieces: &[(usize, usize)],
    class: impl Fn(char, u8) -> bool,
    out: &mut Vec<(usize, usize)>,
) {
    for &(ini, end) in pieces {
        let mut start = ini;
        for pos in ini + 1..end {
            let a = class(cps.ch[pos - 1], cps.fl[pos - 1]);
            let b = class(cps.ch[pos], cps.fl[pos]);
            if a != b {
                out.push((start, pos));
                start = pos;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
}

/// Each code point of a class alone (`\p{N}`), and the runs between them.
fn split_singles(cps: &Cps, pieces: &[(usize, usize)], class: u8, out: &mut Vec<(usize, usize)>) {
    for &(ini, end) in pieces {
        let mut start = ini;
        for pos in ini..end {
            if cps.fl[pos] & class != 0 {
                if start < pos {
                    out.push((start, pos));
                }
                out.push((pos, pos + 1));
                start = pos + 1;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
}

/// `[0-9][0-9][0-9]`: leftmost non-overlapping ASCII digit triples, and the gaps.
fn split_digit_triples(cps: &Cps, pieces: &[(usize, usize)], out: &mut Vec<(usize, usize)>) {
    for &(ini, end) in pieces {
        let mut start = ini;
        let mut pos = ini;
        while pos + 3 <= end {
            if cps.ch[pos..pos + 3].iter().all(char::is_ascii_digit) {
                if start < pos {
                    out.push((start, pos));
                }
                out.push((pos, pos + 3));
                pos += 3;
                start = pos;
            } else {
                pos += 1;
            }
        }
        if start < end {
            out.push((start, end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        pre.split(text, &mut out);
        out.iter().map(|&(s, e)| &text[s..e]).collect()
    }

    #[test]
    fn llama3_splits() {
        let w = words(
            PreTokenizer::Llama3,
            "I'm here, they'RE 12345 ok\n\n  x   \t",
        );
        assert_eq!(
            w,
            [
                "I", "'m", " here", ",", " they", "'RE", " ", "123", "45", " ok", "\n\n", " ",
                " x", "   \t"
            ]
        );
    }

    #[test]
    fn qwen2_digits_one_by_one() {
        let w = words(PreTokenizer::Qwen2, "a 2024!");
        assert_eq!(w, ["a", " ", "2", "0", "2", "4", "!"]);
    }

    #[test]
    fn gpt2_splits() {
        let w = words(PreTokenizer::Gpt2, "Hello world's 42  end  ");
        assert_eq!(w, ["Hello", " world", "'s", " 42", " ", " end", "  "]);
    }

    #[test]
    fn default_splits_punctuation_and_digits() {
        let w = words(PreTokenizer::Default, "a,b 1234567");
        assert_eq!(w, ["a", ",", "b", " ", "123", "456", "7"]);
    }

    #[test]
    fn other_families() {
        assert_eq!(
            words(PreTokenizer::Qwen35, "e\u{301}x 12"),
            ["e\u{301}x", " ", "1", "2"]
        );
        assert_eq!(
            words(PreTokenizer::StarCoder, "ab 123"),
            ["ab", " ", "1", "2", "3"]
        );
        assert_eq!(
            words(PreTokenizer::Falcon, "a`b 1234"),
            ["a", "`", "b", " ", "123", "4"]
        );
    }

    #[test]
    fn words_cover_text() {
        for pre in [
            PreTokenizer::Default,
            PreTokenizer::Gpt2,
            PreTokenizer::Llama3,
            PreTokenizer::Qwen2,
            PreTokenizer::Qwen35,
            PreTokenizer::StarCoder,
            PreTokenizer::Falcon,
        ] {
            let text = "é\u{301}日本 \u{a0} x\r\n\t'' 'LL 1٣4 🎉";
            assert_eq!(words(pre, text).concat(), text);
        }
    }
}

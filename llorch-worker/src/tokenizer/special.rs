//! Finding special tokens written in text (llama.cpp's `tokenizer_st_partition`).
//!
//! llama.cpp takes the special tokens one at a time, longest text first, and cuts
//! every remaining text fragment at the leftmost non-overlapping occurrences of that
//! token. Scanning the whole text once per special token is slow with thousands of
//! them (gemma has 6 414), so this module gets the same result another way: one pass
//! with a trie finds every occurrence; occurrences that overlap no other are taken as
//! they are, and only clusters of overlapping occurrences are resolved in llama.cpp's
//! order. The outcome for one occurrence depends only on the occurrences it overlaps,
//! so the two are the same.

use super::vocab::{TokenType, Vocab};

/// A piece of the input after special tokens are cut out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment {
    /// Text to tokenize: a byte range of the input.
    Text(usize, usize),
    /// A special token found in the text.
    Token(u32),
}

#[derive(Debug, Clone, Default)]
struct Node {
    /// Children sorted by byte.
    children: Vec<(u8, u32)>,
    /// The special token ending here.
    token: Option<u32>,
}

/// A trie of the special token texts, with each token's priority.
#[derive(Debug, Clone)]
pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
    /// Whether a byte can start a special token.
    first: [bool; 256],
}

impl SpecialMatcher {
    /// Builds the matcher over the vocabulary's control, user-defined and unknown tokens.
    pub fn new(vocab: &Vocab) -> Self {
        let ids = vocab.special_ids();
        let mut nodes = vec![Node::default()];
        let mut first = [false; 256];
        for &id in &ids {
            let text = vocab.texts[id as usize].as_bytes();
            if let Some(&b) = text.first() {
                first[b as usize] = true;
            }
            let mut cur = 0usize;
            for &b in text {
                cur = match nodes[cur].children.binary_search_by_key(&b, |c| c.0) {
                    Ok(i) => nodes[cur].children[i].1 as usize,
                    Err(i) => {
                        let next = nodes.len();
                        nodes[cur].children.insert(i, (b, next as u32));
                        nodes.push(Node::default());
                        next
                    }
                };
            }
            nodes[cur].token.get_or_insert(id);
        }
        SpecialMatcher { nodes, first }
    }

    /// Cuts `text` into text fragments and special tokens. With `parse_special` off,
    /// only user-defined tokens are matched (as llama.cpp does).
    pub fn partition(&self, vocab: &Vocab, text: &str, parse_special: bool) -> Vec<Fragment> {
        let bytes = text.as_bytes();
        let allowed = |id: u32| parse_special || vocab.types[id as usize] == TokenType::UserDefined;
        let mut claims: Vec<(usize, usize, u32)> = Vec::new();
        let mut cluster = Cluster::default();
        for i in 0..bytes.len() {
            if !self.first[bytes[i] as usize] {
                continue;
            }
            let mut cur = 0usize;
            for &b in &bytes[i..] {
                let node = &self.nodes[cur];
                match node.children.binary_search_by_key(&b, |c| c.0) {
                    Ok(k) => cur = node.children[k].1 as usize,
                    Err(_) => break,
                }
                if let Some(id) = self.nodes[cur].token.filter(|&id| allowed(id)) {
                    let end = i + vocab.texts[id as usize].len();
                    if cluster.count > 0 && i >= cluster.end {
                        cluster.resolve(self, vocab, text, &mut claims);
                    }
                    cluster.add(i, end, id);
                }
            }
        }
        cluster.resolve(self, vocab, text, &mut claims);

        let mut out = Vec::with_capacity(2 * claims.len() + 1);
        let mut at = 0;
        for (s, e, id) in claims {
            if s > at {
                out.push(Fragment::Text(at, s));
            }
            out.push(Fragment::Token(id));
            at = e;
        }
        if at < text.len() {
            out.push(Fragment::Text(at, text.len()));
        }
        if !vocab.strip.is_empty() {
            strip_around(vocab, bytes, &mut out);
        }
        out
    }

    fn priority(&self, id: u32, vocab: &Vocab) -> (std::cmp::Reverse<usize>, u32) {
        (std::cmp::Reverse(vocab.texts[id as usize].len()), id)
    }
}

/// Drops the whitespace (C `isspace`) that `lstrip`/`rstrip` special tokens eat from
/// the text next to them, and the text fragments left empty.
fn strip_around(vocab: &Vocab, bytes: &[u8], frags: &mut Vec<Fragment>) {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
    for i in 0..frags.len() {
        let Fragment::Token(id) = frags[i] else {
            continue;
        };
        let (lstrip, rstrip) = vocab.strips(id);
        if lstrip
            && i > 0
            && let Fragment::Text(s, e) = &mut frags[i - 1]
        {
            while *e > *s && space(bytes[*e - 1]) {
                *e -= 1;
            }
        }
        if rstrip
            && i + 1 < frags.len()
            && let Fragment::Text(s, e) = &mut frags[i + 1]
        {
            while *s < *e && space(bytes[*s]) {
                *s += 1;
            }
        }
    }
    frags.retain(|f| !matches!(f, Fragment::Text(s, e) if s == e));
}

/// Occurrences that overlap one another (transitively).
#[derive(Debug, Default)]
struct Cluster {
    start: usize,
    end: usize,
    count: usize,
    /// The distinct tokens occurring in the cluster.
    ids: Vec<u32>,
}

impl Cluster {
    fn add(&mut self, s: usize, e: usize, id: u32) {
        if self.count == 0 {
            self.start = s;
            self.end = e;
        } else {
            self.end = self.end.max(e);
        }
        self.count += 1;
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// Appends the accepted occurrences of this cluster to `claims` (in text order).
    fn resolve(
        &mut self,
        m: &SpecialMatcher,
        vocab: &Vocab,
        text: &str,
        claims: &mut Vec<(usize, usize, u32)>,
    ) {
        if self.count == 0 {
            return;
        }
        if self.count == 1 {
            claims.push((self.start, self.end, self.ids[0]));
        } else {
            self.ids.sort_by_key(|&id| m.priority(id, vocab));
            let mut taken: Vec<(usize, usize, u32)> = Vec::new();
            for &id in &self.ids {
                let tok = &*vocab.texts[id as usize];
                let mut new = Vec::new();
                // Free gaps of the cluster, left to right; in each, llama.cpp's
                // leftmost non-overlapping `find` loop.
                let mut gap_start = self.start;
                for k in 0..=taken.len() {
                    let gap_end = taken.get(k).map_or(self.end, |t| t.0);
                    if gap_start < gap_end {
                        for (at, _) in text[gap_start..gap_end].match_indices(tok) {
                            let s = gap_start + at;
                            new.push((s, s + tok.len(), id));
                        }
                    }
                    if let Some(t) = taken.get(k) {
                        gap_start = t.1;
                    }
                }
                if !new.is_empty() {
                    taken.extend(new);
                    taken.sort_unstable();
                }
            }
            claims.extend(taken);
        }
        self.count = 0;
        self.ids.clear();
    }
}

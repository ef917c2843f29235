//! Session and prefix affinity: which worker a session (or a shared prompt prefix) was
//! last placed on, so that its KV-cache-friendly follow-ups go there again.
//!
//! [`AffinityKey`] is a stable 64-bit hash (FNV-1a, the same in every process and
//! release) of a session id or of a prompt prefix. [`AffinityTable`] maps keys to workers
//! with a bounded size; it is explicit state the caller owns and passes to placement.

use std::collections::HashMap;

use llorch_core::{SessionId, WorkerId};

use crate::tick::Tick;

/// A session or prompt-prefix identity for affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AffinityKey(pub u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(seed: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

impl AffinityKey {
    /// The key of a session: its jobs prefer one worker.
    pub fn session(id: &SessionId) -> Self {
        Self(fnv1a(
            FNV_OFFSET,
            b"s:".iter().chain(id.as_str().as_bytes()).copied(),
        ))
    }

    /// The key of a prompt's first `len` tokens: jobs sharing a prefix prefer one worker.
    pub fn token_prefix(tokens: &[u32], len: usize) -> Self {
        let bytes = tokens.iter().take(len).flat_map(|t| t.to_le_bytes());
        Self(fnv1a(fnv1a(FNV_OFFSET, *b"t:"), bytes))
    }

    /// The key of a prompt text's first `len` bytes (rounded down to a char boundary).
    pub fn text_prefix(text: &str, len: usize) -> Self {
        let mut end = len.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(fnv1a(
            FNV_OFFSET,
            b"p:".iter().chain(&text.as_bytes()[..end]).copied(),
        ))
    }
}

/// Bounded map from affinity keys to the worker last chosen for them.
///
/// When full, inserting drops the least recently used half, which keeps inserts
/// amortised O(log n) and deterministic.
#[derive(Debug, Clone)]
pub struct AffinityTable {
    capacity: usize,
    map: HashMap<AffinityKey, (WorkerId, Tick)>,
}

impl AffinityTable {
    /// A table holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: HashMap::new(),
        }
    }

    /// The worker a key is bound to.
    pub fn get(&self, key: AffinityKey) -> Option<&WorkerId> {
        self.map.get(&key).map(|(w, _)| w)
    }

    /// Binds a key to a worker at `now`.
    pub fn bind(&mut self, key: AffinityKey, worker: WorkerId, now: Tick) {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            let mut ages: Vec<(Tick, AffinityKey)> =
                self.map.iter().map(|(k, (_, t))| (*t, *k)).collect();
            ages.sort_unstable();
            let drop = (self.map.len() / 2).max(1);
            for (_, k) in ages.into_iter().take(drop) {
                self.map.remove(&k);
            }
        }
        self.map.insert(key, (worker, now));
    }

    /// Forgets a key (session deleted, ORCH-1100 `DELETE /v2/sessions/{id}`).
    pub fn forget(&mut self, key: AffinityKey) {
        self.map.remove(&key);
    }

    /// Forgets every key bound to a worker (it stopped).
    pub fn forget_worker(&mut self, worker: &WorkerId) {
        self.map.retain(|_, (w, _)| w != worker);
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl Default for AffinityTable {
    fn default() -> Self {
        Self::new(65_536)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        let s = SessionId::new("s1").unwrap();
        assert_eq!(AffinityKey::session(&s), AffinityKey::session(&s));
        assert_ne!(
            AffinityKey::session(&s),
            AffinityKey::session(&SessionId::new("s2").unwrap())
        );
        assert_eq!(
            AffinityKey::token_prefix(&[1, 2, 3, 4], 3),
            AffinityKey::token_prefix(&[1, 2, 3, 9], 3)
        );
        assert_eq!(
            AffinityKey::text_prefix("héllo", 2),
            AffinityKey::text_prefix("h", 9)
        );
    }

    #[test]
    fn table_is_bounded() {
        let mut t = AffinityTable::new(4);
        let w = WorkerId::new("w").unwrap();
        for i in 0..10 {
            t.bind(AffinityKey(i), w.clone(), Tick(i));
            assert!(t.len() <= 4);
        }
        assert!(t.get(AffinityKey(9)).is_some());
        t.forget_worker(&w);
        assert!(t.is_empty());
    }
}

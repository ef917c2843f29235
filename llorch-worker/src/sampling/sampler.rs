//! Choosing the next token from a row of logits.
//!
//! Order: penalties → temperature → top-k → top-p → min-p → draw. Log-probabilities
//! reported to clients are those of the model's raw distribution (log-softmax of the
//! unmodified logits). Every step has a fixed order (ties go to the lower id), so the
//! result depends only on the logits, the parameters, the recent tokens and the
//! draw index (SYS-0003).

use std::cmp::Ordering;

use super::params::{PENALTY_WINDOW, SamplingParams};
use super::rng::uniform;

/// The chosen token and the log-probabilities asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampled {
    /// The token.
    pub id: u32,
    /// Its log-probability under the raw distribution.
    pub logprob: f32,
    /// The most likely tokens under the raw distribution, best first.
    pub top: Vec<(u32, f32)>,
}

/// Orders (logit, id) pairs best first: higher logit, then lower id.
fn best_first(a: &(f32, u32), b: &(f32, u32)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// `log Σ exp(logits)`, summed in index order.
pub fn log_sum_exp(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    max + sum.ln() as f32
}

/// The `n` best `(id, logprob)` of a row, best first.
pub fn top_logprobs(logits: &[f32], lse: f32, n: usize) -> Vec<(u32, f32)> {
    let mut best = top_candidates(logits, n);
    best.truncate(n);
    best.into_iter().map(|(l, id)| (id, l - lse)).collect()
}

/// The `k` best (logit, id) pairs, sorted best first (all of them when `k >= len`).
fn top_candidates(logits: &[f32], k: usize) -> Vec<(f32, u32)> {
    if k == 0 {
        return Vec::new();
    }
    if k <= 256 && k < logits.len() {
        // One pass keeping the best `k`, sorted. Once `k` are held, a run of logits
        // all below the worst held one (a vectorized test) is skipped whole; a run
        // with any logit not below it (at or above, or NaN on either side) goes
        // through the exact comparison.
        const RUN: usize = 64;
        let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
        for (run, ls) in logits.chunks(RUN).enumerate() {
            if best.len() == k {
                let worst = best[k - 1].0;
                let mut any = false;
                for &l in ls {
                    // NaN on either side counts as "not below": deliberate.
                    #[allow(clippy::neg_cmp_op_on_partial_ord)]
                    let not_below = !(l < worst);
                    any |= not_below;
                }
                if !any {
                    continue;
                }
            }
            for (&l, i) in ls.iter().zip((run * RUN) as u32..) {
                if best.len() == k && best_first(&(l, i), &best[k - 1]) != Ordering::Less {
                    continue;
                }
                let at = best.partition_point(|b| best_first(b, &(l, i)) == Ordering::Less);
                best.insert(at, (l, i));
                best.truncate(k);
            }
        }
        return best;
    }
    let mut all: Vec<(f32, u32)> = logits.iter().zip(0u32..).map(|(&l, i)| (l, i)).collect();
    if k < all.len() {
        all.select_nth_unstable_by(k - 1, best_first);
        all.truncate(k);
    }
    all.sort_unstable_by(best_first);
    all
}

/// Applies repetition, presence and frequency penalties to the recent tokens.
fn apply_penalties(logits: &mut [f32], p: &SamplingParams, recent: &[u32]) {
    let window = &recent[recent.len().saturating_sub(PENALTY_WINDOW)..];
    let mut ids: Vec<u32> = window.to_vec();
    ids.sort_unstable();
    let mut i = 0;
    while i < ids.len() {
        let id = ids[i];
        let mut count = 0u32;
        while i < ids.len() && ids[i] == id {
            count += 1;
            i += 1;
        }
        let Some(l) = logits.get_mut(id as usize) else {
            continue;
        };
        if p.repetition_penalty != 1.0 {
            *l = if *l > 0.0 {
                *l / p.repetition_penalty
            } else {
                *l * p.repetition_penalty
            };
        }
        *l -= p.presence_penalty + p.frequency_penalty * count as f32;
    }
}

/// Reusable buffers so sampling allocates nothing per token in steady state.
#[derive(Debug, Default)]
pub struct SamplerScratch {
    work: Vec<f32>,
}

/// Picks a token from `logits` (one row, vocabulary-sized).
///
/// `recent` is the sequence so far (prompt and output; only the last
/// [`PENALTY_WINDOW`] count), `draw` the index of this draw in the sequence's
/// random stream. `logits` must not be empty.
pub fn sample(
    logits: &[f32],
    p: &SamplingParams,
    recent: &[u32],
    draw: u64,
    scratch: &mut SamplerScratch,
) -> Sampled {
    // The raw distribution's normaliser is only needed for reported logprobs.
    let lse = if p.want_logprobs {
        log_sum_exp(logits)
    } else {
        0.0
    };
    let top = if p.want_logprobs {
        top_logprobs(logits, lse, p.top_logprobs as usize)
    } else {
        Vec::new()
    };
    let work: &[f32] = if p.has_penalties() {
        scratch.work.clear();
        scratch.work.extend_from_slice(logits);
        apply_penalties(&mut scratch.work, p, recent);
        &scratch.work
    } else {
        logits
    };
    let id = if p.temperature <= 0.0 {
        argmax(work)
    } else {
        draw_token(work, p, uniform(p.seed, draw))
    };
    let logprob = logits
        .get(id as usize)
        .map_or(f32::NEG_INFINITY, |l| l - lse);
    Sampled { id, logprob, top }
}

/// Index of the largest logit; ties go to the lower id.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws a token with temperature, top-k, top-p and min-p, using the uniform `u`.
fn draw_token(logits: &[f32], p: &SamplingParams, u: f64) -> u32 {
    let inv_t = 1.0 / f64::from(p.temperature);
    let vocab = logits.len();
    let k = if p.top_k > 0 {
        (p.top_k as usize).min(vocab)
    } else {
        vocab
    };
    let truncating = k < vocab || p.top_p < 1.0 || p.min_p > 0.0;
    if !truncating {
        // Plain sampling: walk the vocabulary in id order, no sort needed.
        let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let weights = logits.iter().map(|&l| ((f64::from(l) - max) * inv_t).exp());
        return pick(weights, u, |i| i as u32);
    }
    if k < vocab {
        // Everything below depends on the `k` best only.
        return draw_top_k(top_candidates(logits, k), p, u);
    }
    // Candidates best first. With only top-p/min-p, try a short list before sorting all.
    let mut cand = top_candidates(logits, k.min(1024));
    let max = f64::from(cand.first().map_or(0.0, |c| c.0));
    let w = |l: f32| ((f64::from(l) - max) * inv_t).exp();
    let total: f64 = if k < vocab {
        cand.iter().map(|c| w(c.0)).sum()
    } else {
        logits.iter().map(|&l| w(l)).sum()
    };
    if p.top_p < 1.0 {
        let target = f64::from(p.top_p) * total;
        let mut acc = 0.0;
        let cut = cand.iter().position(|c| {
            acc += w(c.0);
            acc >= target
        });
        match cut {
            Some(i) => cand.truncate(i + 1),
            None if cand.len() < k => {
                // The short list did not reach the mass: sort everything and cut again.
                cand = top_candidates(logits, k);
                let mut acc = 0.0;
                if let Some(i) = cand.iter().position(|c| {
                    acc += w(c.0);
                    acc >= target
                }) {
                    cand.truncate(i + 1);
                }
            }
            None => {}
        }
    } else if cand.len() < k {
        cand = top_candidates(logits, k);
    }
    if p.min_p > 0.0 {
        let floor = f64::from(p.min_p);
        cand.retain(|c| w(c.0) >= floor);
    }
    if cand.is_empty() {
        return argmax(logits);
    }
    pick(cand.iter().map(|c| w(c.0)), u, |i| cand[i].1)
}

/// The draw of [`draw_token`] when top-k truncates: `cand` is the `k` best
/// (logit, id), best first with ties to the lower id.
fn draw_top_k(mut cand: Vec<(f32, u32)>, p: &SamplingParams, u: f64) -> u32 {
    let Some(&(best, best_id)) = cand.first() else {
        return 0;
    };
    let inv_t = 1.0 / f64::from(p.temperature);
    let max = f64::from(best);
    let w = |l: f32| ((f64::from(l) - max) * inv_t).exp();
    if p.top_p < 1.0 {
        let total: f64 = cand.iter().map(|c| w(c.0)).sum();
        let target = f64::from(p.top_p) * total;
        let mut acc = 0.0;
        if let Some(i) = cand.iter().position(|c| {
            acc += w(c.0);
            acc >= target
        }) {
            cand.truncate(i + 1);
        }
    }
    if p.min_p > 0.0 {
        let floor = f64::from(p.min_p);
        cand.retain(|c| w(c.0) >= floor);
    }
    if cand.is_empty() {
        return best_id;
    }
    pick(cand.iter().map(|c| w(c.0)), u, |i| cand[i].1)
}

/// The best logits of one row, computed elsewhere (on a GPU): what a draw needs
/// when [`top_suffices`] says so.
#[derive(Debug, Clone, Copy)]
pub struct TopRow<'a> {
    /// The `n` best (logit, id), best first, ties to the lower id.
    pub best: &'a [(f32, u32)],
    /// `log Σ exp(logits)` of the whole row.
    pub lse: f32,
    /// The row's length (the vocabulary).
    pub vocab: usize,
}

/// Whether a draw with `p` can be made from the `n` best logits of a row of `vocab`
/// alone, with the same result as [`sample`] on the whole row: no penalties (they
/// move logits in and out of the best), and top-k (or greedy) within the `n`.
pub fn top_suffices(p: &SamplingParams, n: usize, vocab: usize) -> bool {
    let k = p.top_k as usize;
    !p.has_penalties()
        && (p.top_logprobs as usize) <= n
        && (p.temperature <= 0.0 || (k > 0 && k <= n && k < vocab))
}

/// [`sample`] from the best logits of a row; the caller checked [`top_suffices`].
pub fn sample_top(row: TopRow<'_>, p: &SamplingParams, draw: u64) -> Sampled {
    let id = if p.temperature <= 0.0 {
        row.best.first().map_or(0, |c| c.1)
    } else {
        let k = (p.top_k as usize).min(row.best.len());
        draw_top_k(row.best[..k].to_vec(), p, uniform(p.seed, draw))
    };
    sampled_from_top(row, p, id)
}

/// The output of a draw of `id` from the best logits of a row (drawn here by
/// [`sample_top`] or on a GPU with the same stream and arithmetic).
pub fn sampled_from_top(row: TopRow<'_>, p: &SamplingParams, id: u32) -> Sampled {
    let lse = if p.want_logprobs { row.lse } else { 0.0 };
    let top = if p.want_logprobs {
        row.best
            .iter()
            .take(p.top_logprobs as usize)
            .map(|&(l, id)| (id, l - lse))
            .collect()
    } else {
        Vec::new()
    };
    let logprob = row
        .best
        .iter()
        .find(|c| c.1 == id)
        .map_or(f32::NEG_INFINITY, |c| c.0 - lse);
    Sampled { id, logprob, top }
}

/// Inverse-CDF draw over unnormalised weights in the given order.
fn pick(weights: impl Iterator<Item = f64> + Clone, u: f64, id_of: impl Fn(usize) -> u32) -> u32 {
    let total: f64 = weights.clone().sum();
    let target = u * total;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, wt) in weights.enumerate() {
        if wt > 0.0 {
            last = i;
        }
        acc += wt;
        if acc > target {
            return id_of(i);
        }
    }
    id_of(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> SamplingParams {
        SamplingParams {
            seed: 1,
            ..SamplingParams::default()
        }
    }

    #[test]
    fn drawing_from_the_best_logits_equals_drawing_from_the_row() {
        let vocab = 3000;
        let logits: Vec<f32> = (0..vocab)
            .map(|i| {
                ((i * 7919 % 1013) as f32 / 97.0).sin() * 4.0 + if i % 17 == 0 { 3.0 } else { 0.0 }
            })
            .collect();
        let lse = log_sum_exp(&logits);
        let best = top_candidates(&logits, 64);
        let mut s = SamplerScratch::default();
        let mut checked = 0;
        for (i, (t, k, tp, mp)) in [
            (0.0, 0, 1.0, 0.0),
            (0.8, 40, 0.95, 0.0),
            (1.0, 64, 1.0, 0.05),
            (1.3, 5, 0.5, 0.0),
            (0.7, 1, 1.0, 0.0),
        ]
        .into_iter()
        .enumerate()
        {
            let p = SamplingParams {
                temperature: t,
                top_k: k,
                top_p: tp,
                min_p: mp,
                seed: 42 + i as u64,
                top_logprobs: 3,
                want_logprobs: i % 2 == 0,
                ..SamplingParams::default()
            };
            assert!(top_suffices(&p, best.len(), vocab));
            for draw in 0..200 {
                let a = sample(&logits, &p, &[], draw, &mut s);
                let b = sample_top(
                    TopRow {
                        best: &best,
                        lse,
                        vocab,
                    },
                    &p,
                    draw,
                );
                assert_eq!(a, b, "params {i} draw {draw}");
                checked += 1;
            }
        }
        assert_eq!(checked, 1000);
        let pen = SamplingParams {
            repetition_penalty: 1.1,
            ..SamplingParams::default()
        };
        assert!(
            !top_suffices(&pen, 64, vocab),
            "penalties need the whole row"
        );
        let all = SamplingParams {
            top_k: 0,
            temperature: 1.0,
            ..SamplingParams::default()
        };
        assert!(
            !top_suffices(&all, 64, vocab),
            "untruncated draws need the whole row"
        );
    }

    #[test]
    fn top_candidates_equal_a_full_sort() {
        // Many ties (a few distinct values), both zeros, runs of every length.
        for (n, k) in [
            (1000, 40),
            (64, 64),
            (65, 3),
            (3000, 256),
            (130, 1),
            (5000, 100),
        ] {
            let logits: Vec<f32> = (0..n)
                .map(|i| match (i * 7919) % 13 {
                    0 => -0.0,
                    1 => 0.0,
                    v => ((i * 31) % 17) as f32 - v as f32,
                })
                .collect();
            let mut all: Vec<(f32, u32)> =
                logits.iter().zip(0u32..).map(|(&l, i)| (l, i)).collect();
            all.sort_by(best_first);
            all.truncate(k);
            assert_eq!(top_candidates(&logits, k), all, "n {n} k {k}");
        }
        // A negative NaN held as the worst candidate (it sorts below every number):
        // the finite logits of later runs still enter.
        let neg_nan = f32::from_bits(0xffc0_0000);
        let mut logits = vec![-1.0; 200];
        logits[..64].fill(neg_nan);
        logits[0] = 5.0;
        logits[130] = 3.0;
        assert_eq!(top_candidates(&logits, 2), vec![(5.0, 0), (3.0, 130)]);
    }

    #[test]
    fn greedy_picks_argmax_lowest_id_on_ties() {
        let mut s = SamplerScratch::default();
        let r = sample(
            &[0.0, 3.0, 3.0, 1.0],
            &SamplingParams {
                want_logprobs: true,
                ..SamplingParams::greedy()
            },
            &[],
            0,
            &mut s,
        );
        assert_eq!(r.id, 1);
        let lse = log_sum_exp(&[0.0, 3.0, 3.0, 1.0]);
        assert!((r.logprob - (3.0 - lse)).abs() < 1e-6);
    }

    #[test]
    fn top_k_one_is_greedy_and_logprobs_are_raw() {
        let logits = [1.0, 5.0, 2.0, 4.0];
        let params = SamplingParams {
            top_k: 1,
            top_logprobs: 2,
            want_logprobs: true,
            ..p()
        };
        let mut s = SamplerScratch::default();
        for draw in 0..50 {
            let r = sample(&logits, &params, &[], draw, &mut s);
            assert_eq!(r.id, 1);
            assert_eq!(r.top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 3]);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let mut s = SamplerScratch::default();
        let n = 20_000;
        let ones = (0..n)
            .filter(|&d| sample(&logits, &p(), &[], d, &mut s).id == 1)
            .count();
        let frac = ones as f64 / n as f64;
        assert!((frac - 0.75).abs() < 0.02, "{frac}");
    }

    #[test]
    fn top_p_and_min_p_cut_the_tail() {
        // p ≈ [0.665, 0.245, 0.090]
        let logits = [2.0f32, 1.0, 0.0];
        let mut s = SamplerScratch::default();
        let tp = SamplingParams { top_p: 0.6, ..p() };
        assert!((0..500).all(|d| sample(&logits, &tp, &[], d, &mut s).id == 0));
        let mp = SamplingParams { min_p: 0.3, ..p() };
        let ids: Vec<u32> = (0..2000)
            .map(|d| sample(&logits, &mp, &[], d, &mut s).id)
            .collect();
        assert!(ids.contains(&0) && ids.contains(&1) && !ids.contains(&2));
    }

    #[test]
    fn penalties_change_the_choice() {
        let logits = [2.0f32, 1.9];
        let mut s = SamplerScratch::default();
        let g = SamplingParams {
            presence_penalty: 0.5,
            want_logprobs: true,
            ..SamplingParams::greedy()
        };
        assert_eq!(sample(&logits, &g, &[0], 0, &mut s).id, 1);
        let r = SamplingParams {
            repetition_penalty: 1.2,
            ..SamplingParams::greedy()
        };
        assert_eq!(sample(&logits, &r, &[0], 0, &mut s).id, 1);
        assert_eq!(sample(&logits, &r, &[], 0, &mut s).id, 0);
        // Logprobs stay those of the raw row.
        assert!(
            (sample(&logits, &g, &[0], 0, &mut s).logprob - (1.9 - log_sum_exp(&logits))).abs()
                < 1e-6
        );
    }

    #[test]
    fn same_seed_same_draws() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let params = SamplingParams {
            top_k: 50,
            top_p: 0.9,
            temperature: 0.7,
            seed: 99,
            ..p()
        };
        let mut s = SamplerScratch::default();
        let a: Vec<u32> = (0..100)
            .map(|d| sample(&logits, &params, &[], d, &mut s).id)
            .collect();
        let b: Vec<u32> = (0..100)
            .map(|d| sample(&logits, &params, &[], d, &mut s).id)
            .collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|&x| x != a[0]));
    }
}

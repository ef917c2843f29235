//! Placement: which worker runs a job (ORCH-1030..1033).
//!
//! Only workers that are serving (`ready`/`busy`), hold the job's model and have a
//! free slot are candidates. Among them:
//! - [`Algorithm::LeastLoaded`]: the smallest busy-slot fraction, then the most free
//!   slots, then snapshot order.
//! - [`Algorithm::MostVramFree`]: the worker whose GPU has the most free memory, then
//!   least loaded.
//! - [`Algorithm::RoundRobin`]: the `cursor mod n`-th candidate; the cursor is explicit
//!   state in [`PlacementState`] and advances by one per decision.
//!
//! With [`AffinityConfig`] on, a job with an [`AffinityKey`] goes to the worker its key
//! is bound to, unless that worker is gone, full, or *overloaded*: its load is at least
//! `overload_permille` and the base algorithm's pick is lighter by at least
//! `min_gain_permille`. Giving up rebinds the key to the new worker. The two-part rule
//! keeps a session where it is when every worker is equally busy.

use llorch_core::ModelRef;

use crate::affinity::{AffinityKey, AffinityTable};
use crate::snapshot::{ClusterSnapshot, WorkerView};
use crate::tick::Tick;

/// The base placement algorithm (ORCH-1032).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Fewest busy slots relative to the worker's size.
    LeastLoaded,
    /// Most free memory on the worker's GPU.
    MostVramFree,
    /// Rotate over the candidates.
    RoundRobin,
}

impl Algorithm {
    /// The config and metrics label: `least-loaded`, `most-vram-free`, `round-robin`.
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::LeastLoaded => "least-loaded",
            Algorithm::MostVramFree => "most-vram-free",
            Algorithm::RoundRobin => "round-robin",
        }
    }
}

/// When session/prefix affinity yields to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffinityConfig {
    /// Load (busy slots per thousand) from which the preferred worker counts as overloaded.
    pub overload_permille: u32,
    /// How much lighter (per thousand) the alternative must be to move the key.
    pub min_gain_permille: u32,
}

impl Default for AffinityConfig {
    fn default() -> Self {
        Self {
            overload_permille: 750,
            min_gain_permille: 250,
        }
    }
}

/// Placement settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementConfig {
    /// The base algorithm.
    pub algorithm: Algorithm,
    /// Session/prefix affinity on top of it, if any.
    pub affinity: Option<AffinityConfig>,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::LeastLoaded,
            affinity: Some(AffinityConfig::default()),
        }
    }
}

/// The explicit state placement reads and advances.
#[derive(Debug, Clone, Default)]
pub struct PlacementState {
    /// Round-robin cursor.
    pub rr_cursor: u64,
    /// Affinity bindings.
    pub affinity: AffinityTable,
}

/// One job to place.
#[derive(Debug, Clone, Copy)]
pub struct PlacementRequest<'a> {
    /// The canonical model it needs.
    pub model: &'a ModelRef,
    /// Its affinity key, if any.
    pub affinity: Option<AffinityKey>,
}

/// Why no worker was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFit {
    /// Workers serving the model (all full).
    pub serving: usize,
    /// Workers of the model still starting.
    pub starting: usize,
}

/// The outcome of one placement decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Run the job on this worker (index into [`ClusterSnapshot::workers`]).
    Worker {
        /// The worker's index.
        index: usize,
        /// Whether affinity chose it.
        affine: bool,
    },
    /// No worker can take the job now.
    NoFit(NoFit),
}

/// Busy slots of `a` relative to its size is lower than `b`'s (exact, no division).
fn lighter(a: &WorkerView, b: &WorkerView) -> std::cmp::Ordering {
    let busy = |w: &WorkerView| u64::from(w.slots_total.saturating_sub(w.free_slots));
    let total = |w: &WorkerView| u64::from(w.slots_total.max(1));
    (busy(a) * total(b))
        .cmp(&(busy(b) * total(a)))
        .then(b.free_slots.cmp(&a.free_slots))
}

/// The base algorithm's pick among `candidates` (indices of workers that can take a job).
pub fn choose(
    snapshot: &ClusterSnapshot,
    candidates: impl Iterator<Item = usize> + Clone,
    algorithm: Algorithm,
    rr_cursor: &mut u64,
) -> Option<usize> {
    let w = |i: usize| &snapshot.workers[i];
    match algorithm {
        Algorithm::LeastLoaded => candidates.min_by(|&a, &b| lighter(w(a), w(b)).then(a.cmp(&b))),
        Algorithm::MostVramFree => candidates.min_by(|&a, &b| {
            snapshot
                .gpu_free_of(b)
                .cmp(&snapshot.gpu_free_of(a))
                .then(lighter(w(a), w(b)))
                .then(a.cmp(&b))
        }),
        Algorithm::RoundRobin => {
            let n = candidates.clone().count() as u64;
            if n == 0 {
                return None;
            }
            let k = usize::try_from(*rr_cursor % n).ok()?;
            *rr_cursor = rr_cursor.wrapping_add(1);
            candidates.clone().nth(k)
        }
    }
}

/// Places one job (ORCH-1030..1033). Binds its affinity key to the chosen worker.
pub fn place(
    snapshot: &ClusterSnapshot,
    req: PlacementRequest<'_>,
    cfg: &PlacementConfig,
    state: &mut PlacementState,
    now: Tick,
) -> Placement {
    let all = snapshot.workers_for(req.model);
    let candidates = all
        .iter()
        .copied()
        .filter(|&i| snapshot.workers[i].can_take_job());
    let base = choose(snapshot, candidates, cfg.algorithm, &mut state.rr_cursor);
    let (Some(aff), Some(key)) = (cfg.affinity, req.affinity) else {
        return base.map_or_else(
            || no_fit(snapshot, all),
            |index| Placement::Worker {
                index,
                affine: false,
            },
        );
    };
    let preferred = state
        .affinity
        .get(key)
        .and_then(|id| snapshot.worker_index(id))
        .filter(|&i| {
            let w = &snapshot.workers[i];
            w.can_take_job() && &w.model == req.model
        });
    let pick = match (preferred, base) {
        (Some(p), Some(b)) => {
            let lp = snapshot.workers[p].load_permille();
            let lb = snapshot.workers[b].load_permille();
            let give_up =
                lp >= aff.overload_permille && lb.saturating_add(aff.min_gain_permille) <= lp;
            if give_up { (b, false) } else { (p, true) }
        }
        (None, Some(b)) => (b, false),
        (Some(p), None) => (p, true),
        (None, None) => return no_fit(snapshot, all),
    };
    state
        .affinity
        .bind(key, snapshot.workers[pick.0].id.clone(), now);
    Placement::Worker {
        index: pick.0,
        affine: pick.1,
    }
}

fn no_fit(snapshot: &ClusterSnapshot, all: &[usize]) -> Placement {
    use llorch_core::wire::pool::WorkerStatus;
    let count =
        |f: &dyn Fn(&WorkerView) -> bool| all.iter().filter(|&&i| f(&snapshot.workers[i])).count();
    Placement::NoFit(NoFit {
        serving: count(&|w| w.is_serving()),
        starting: count(&|w| w.status == WorkerStatus::Starting),
    })
}

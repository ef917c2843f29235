#![allow(clippy::unwrap_used)]
//! Property tests of the queue (ORCH-1010..1012, ORCH-1020..1022).

use std::collections::{BTreeMap, HashSet};

use llorch_core::wire::task::Priority;
use llorch_core::{ErrorCode, JobId, ModelRef};
use llorch_sched::Tick;
use llorch_sched::queue::{
    FairShare, FullPolicy, JobMeta, JobQueue, PushError, QueueConfig, TenantId,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Push { batch: bool, tenant: u8, dt: u16 },
    Dequeue { dt: u16 },
    Cancel { k: u8 },
    PushDuplicate { k: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (any::<bool>(), 0u8..3, 0u16..40).prop_map(|(batch, tenant, dt)| Op::Push { batch, tenant, dt }),
        4 => (0u16..40).prop_map(|dt| Op::Dequeue { dt }),
        1 => any::<u8>().prop_map(|k| Op::Cancel { k }),
        1 => any::<u8>().prop_map(|k| Op::PushDuplicate { k }),
    ]
}

fn meta(n: u64, batch: bool, tenant: u8) -> JobMeta {
    JobMeta {
        id: JobId::new(format!("job-{n}")).unwrap(),
        priority: if batch {
            Priority::Batch
        } else {
            Priority::Interactive
        },
        model: ModelRef::Alias("m".into()),
        tenant: Some(TenantId(format!("t{tenant}"))),
        cost_tokens: 10 + u32::from(tenant) * 50,
        affinity: None,
    }
}

#[derive(Debug)]
struct Shadow {
    batch: bool,
    tenant: u8,
    at: u64,
    key: u64,
    late: usize,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The queue never exceeds its capacity (ORCH-1010); every admitted job leaves exactly
    /// once (dequeue, shed or cancel); each priority is FIFO (per tenant with fair share);
    /// interactive goes first unless the oldest batch job's aged key is smaller
    /// (ORCH-1021/1022); and once a job is `A + S` past its enqueue time, at most
    /// `capacity − 1` other jobs are dequeued before it (the batch wait bound).
    #[test]
    fn queue_invariants(
        ops in prop::collection::vec(op(), 0..300),
        capacity in 1usize..20,
        aging in 0u64..200,
        fair in prop::option::of(0u64..100),
        drop_lru in any::<bool>(),
    ) {
        let cfg = QueueConfig {
            capacity,
            full_policy: if drop_lru { FullPolicy::DropLru } else { FullPolicy::Reject },
            batch_aging_ms: aging,
            fair_share: fair.map(|slack_ms| FairShare { slack_ms }),
            ..QueueConfig::default()
        };
        let slack = fair.unwrap_or(0);
        let mut q: JobQueue<u64> = JobQueue::new(cfg);
        let mut shadow: BTreeMap<u64, Shadow> = BTreeMap::new();
        let mut exited: HashSet<u64> = HashSet::new();
        let mut admitted = 0u64;
        let mut now = 0u64;
        let mut n = 0u64;
        let exit = |exited: &mut HashSet<u64>, shadow: &mut BTreeMap<u64, Shadow>, id: u64| -> Result<(), TestCaseError> {
            prop_assert!(shadow.remove(&id).is_some(), "job {} left but was not queued", id);
            prop_assert!(exited.insert(id), "job {} left twice", id);
            Ok(())
        };
        let dequeue = |q: &mut JobQueue<u64>, shadow: &mut BTreeMap<u64, Shadow>, exited: &mut HashSet<u64>, now: u64| -> Result<bool, TestCaseError> {
            let Some(j) = q.dequeue(Tick(now)) else {
                prop_assert!(shadow.is_empty());
                return Ok(false);
            };
            let id = j.payload;
            let s = &shadow[&id];
            let (s_batch, s_tenant, s_key, s_at) = (s.batch, s.tenant, s.key, s.at);
            let oldest = |batch: bool| shadow.iter().find(|(_, x)| x.batch == batch).map(|(_, x)| x.key);
            // FIFO within the priority (and tenant, with fair share).
            let first_of_group = shadow.iter().find(|(_, x)| x.batch == s_batch && (fair.is_none() || x.tenant == s_tenant)).map(|(k, _)| *k);
            prop_assert_eq!(first_of_group, Some(id));
            // Interactive first, except where aging says otherwise.
            if s_batch {
                if let Some(i) = oldest(false) { prop_assert!(s_key < i, "batch {} went before older interactive", id); }
            } else if let Some(b) = oldest(true) {
                prop_assert!(s_key <= b, "interactive {} went before an aged batch job", id);
            }
            for (k, x) in shadow.iter_mut() {
                if *k != id && now > x.key + slack {
                    x.late += 1;
                    prop_assert!(x.late < capacity, "job {} passed by {} jobs after its bound", k, x.late);
                }
            }
            prop_assert_eq!(j.enqueued_at, Tick(s_at));
            exit(exited, shadow, id)?;
            Ok(true)
        };
        for op in ops {
            match op {
                Op::Push { batch, tenant, dt } => {
                    now += u64::from(dt);
                    n += 1;
                    match q.push(meta(n, batch, tenant), n, Tick(now)) {
                        Ok(p) => {
                            admitted += 1;
                            if let Some(s) = p.shed {
                                prop_assert!(drop_lru);
                                prop_assert!(s.meta.priority == Priority::Batch || !batch);
                                exit(&mut exited, &mut shadow, s.payload)?;
                            }
                            prop_assert!(p.position <= shadow.len());
                            let key = now + if batch { aging } else { 0 };
                            shadow.insert(n, Shadow { batch, tenant, at: now, key, late: 0 });
                        }
                        Err(r) => {
                            let PushError::Full(f) = &r.error else { panic!("{:?}", r.error) };
                            prop_assert_eq!(shadow.len(), capacity);
                            prop_assert!(!drop_lru || (batch && shadow.values().all(|s| !s.batch)));
                            prop_assert!(f.retry_after_ms >= 100 && f.retry_after_ms <= 60_000);
                            let e = f.to_error();
                            prop_assert_eq!(e.code, ErrorCode::QueueFull);
                            let d = e.details.unwrap();
                            prop_assert_eq!(&d["policy_label"], if drop_lru { "drop-lru" } else { "reject" });
                            prop_assert_eq!(&d["retriable"], true);
                            prop_assert_eq!(r.job.payload, n);
                        }
                    }
                }
                Op::Dequeue { dt } => {
                    now += u64::from(dt);
                    dequeue(&mut q, &mut shadow, &mut exited, now)?;
                    q.record_completion(Tick(now));
                }
                Op::Cancel { k } => {
                    if let Some(&id) = shadow.keys().nth(usize::from(k) % shadow.len().max(1)) {
                        let j = q.remove(&JobId::new(format!("job-{id}")).unwrap()).unwrap();
                        prop_assert_eq!(j.payload, id);
                        exit(&mut exited, &mut shadow, id)?;
                    }
                }
                Op::PushDuplicate { k } => {
                    if let Some((&id, s)) = shadow.iter().nth(usize::from(k) % shadow.len().max(1)) {
                        let r = q.push(meta(id, s.batch, s.tenant), id, Tick(now));
                        prop_assert!(matches!(r, Err(ref r) if matches!(r.error, PushError::Duplicate(_))));
                    }
                }
            }
            prop_assert!(q.len() <= capacity);
            prop_assert_eq!(q.len(), shadow.len());
        }
        while dequeue(&mut q, &mut shadow, &mut exited, now)? {
            now += 1;
        }
        prop_assert!(q.is_empty());
        prop_assert_eq!(exited.len() as u64, admitted);
    }
}

/// ORCH-1022 in time: with an interactive flood keeping the queue full and one dequeue
/// every `D` ms, every batch job waits at most `A + (capacity − 1)·D`.
#[test]
fn batch_wait_bound_under_interactive_flood() {
    let (cap, aging, d) = (50usize, 1_000u64, 10u64);
    let mut q: JobQueue<u64> = JobQueue::new(QueueConfig {
        capacity: cap,
        batch_aging_ms: aging,
        ..QueueConfig::default()
    });
    let mut n = 0;
    let mut worst = 0;
    let mut batch_served = 0;
    for t in 0..60_000u64 {
        n += 1;
        let batch = t % 100 == 0;
        // Interactive work keeps the queue full but leaves room for the batch arrivals.
        if batch || q.len() < cap - 1 {
            q.push(meta(n, batch, 0), t, Tick(t)).unwrap();
        }
        if t % d == 0 {
            let j = q.dequeue(Tick(t)).unwrap();
            if j.meta.priority == Priority::Batch {
                batch_served += 1;
                worst = worst.max(t - j.payload);
            }
        }
    }
    assert!(batch_served > 500, "{batch_served}");
    assert!(
        worst <= aging + (cap as u64 - 1) * d,
        "worst batch wait {worst}"
    );
}

/// Fair share: a light tenant is not stuck behind a heavy one's backlog.
#[test]
fn fair_share_interleaves_tenants() {
    let cfg = QueueConfig {
        capacity: 100,
        fair_share: Some(FairShare { slack_ms: 60_000 }),
        ..QueueConfig::default()
    };
    let mut q: JobQueue<u8> = JobQueue::new(cfg);
    for n in 0..40 {
        q.push(meta(n, false, 0), 0, Tick(0)).unwrap();
    }
    for n in 40..44 {
        q.push(meta(n, false, 1), 1, Tick(1)).unwrap();
    }
    let first: Vec<u8> = (0..12)
        .map(|_| q.dequeue(Tick(2)).unwrap().payload)
        .collect();
    // Tenant 1's jobs cost 60 tokens, tenant 0's 10: by tokens served, tenant 1 gets
    // one job for every six of tenant 0's.
    assert_eq!(first.iter().filter(|&&t| t == 1).count(), 2, "{first:?}");
    // Without fair share the light tenant waits for all 40.
    let mut q: JobQueue<u8> = JobQueue::new(QueueConfig::default());
    for n in 0..40 {
        q.push(meta(n, false, 0), 0, Tick(0)).unwrap();
    }
    q.push(meta(40, false, 1), 1, Tick(1)).unwrap();
    assert!((0..40).all(|_| q.dequeue(Tick(2)).unwrap().payload == 0));
}

/// ORCH-1012: the retry delay grows with depth and shrinks with the measured rate.
#[test]
fn retry_after_follows_depth_and_rate() {
    let mut q: JobQueue<u64> = JobQueue::new(QueueConfig {
        capacity: 10,
        ..QueueConfig::default()
    });
    for n in 0..10 {
        q.push(meta(n, true, 0), n, Tick(0)).unwrap();
    }
    for t in 0..=20 {
        q.record_completion(Tick(t * 20));
    }
    let r = q.push(meta(99, true, 0), 99, Tick(400)).unwrap_err();
    let PushError::Full(f) = r.error else {
        panic!()
    };
    assert_eq!(f.retry_after_ms, 11 * 20);
    assert_eq!(f.retry_after_secs(), 1);
    for t in 21..=40 {
        q.record_completion(Tick(t * 200));
    }
    assert!(q.retry_after_ms(Priority::Batch, Tick(8_000)) > 1_000);
}

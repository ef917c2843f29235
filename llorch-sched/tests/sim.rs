#![allow(clippy::unwrap_used)]
//! The simulator drives the scheduler through synthetic traffic (ORCH-1010..1052).

use llorch_sched::sim::{SimConfig, simulate};

#[test]
fn demo_hour_has_no_violations() {
    let cfg = SimConfig::demo(42);
    let r = simulate(&cfg).unwrap();
    println!("{r}");
    assert_eq!(r.violations.total(), 0);
}

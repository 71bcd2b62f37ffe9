//! Capacity planning: search the system model's knobs for the cheapest setting that meets
//! every SLO over the whole profile, by simulation.
//!
//! A knob is any key of the system model (`orchestrator.min_tasks=10..60`,
//! `cache.prewarm=on|off`), set the same way a profile overrides it, so the planner can
//! vary everything a profile can state and nothing else. Numeric ranges are taken as
//! monotone — more capacity never hurts latency and never lowers cost — and bisected one
//! at a time from the top (coordinate descent); choice knobs are enumerated. Each candidate
//! runs several replications and passes only when the 95 % confidence bound of every SLO
//! does, so a winner is not a lucky seed.
//!
//! Where the time goes: a passing candidate runs every replication to the end, a failing
//! one usually stops minutes into the spike. So the descent takes passes on credit and
//! simulates up from the bottom of a range (module `credit`), settings implied by a
//! simulated one on the monotone ranges are not simulated ([`Plan::pruned`]), a failure
//! settled by one replication spares the others, and the combinations share the threads.

pub mod batch;
mod credit;
mod descent;
pub mod knob;
mod pool;
mod search;
mod verdict;

pub use knob::{Knob, KnobError, Setting, Value, apply};
pub use search::{Candidate, Plan, PlanError, PlanOptions, Pruned, Slo, SloResult, plan};

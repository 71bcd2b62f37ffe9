//! Scenario files for surge: traffic shape, system model, target, protocol and thresholds.
//!
//! A profile is TOML written the way a person would write it (`90s`, `4167/s`,
//! `lognormal(p50=1.5s, p99=4s)`); this crate turns it into typed, validated values and
//! says precisely where a file is wrong. Every other crate reads scenarios through it.

pub mod burst;
pub mod diag;
pub mod dist;
pub mod embedded;
pub mod goodput;
pub mod metric;
pub mod overview;
pub mod prewarm;
pub mod profile;
pub mod protocol;
pub mod system;
pub mod target;
pub mod trace;
pub mod traffic;
pub mod units;
mod validate;

pub use diag::{Diagnostic, KeyPath};
pub use dist::Dist;
pub use metric::{LatencyMetric, MetricRef, Stat, Threshold};
pub use prewarm::{Prewarm, PrewarmCall};
pub use profile::{CostSpec, Profile, ProfileError};
pub use protocol::{Keepalive, KeepaliveAction, Protocol, Unsolicited};
pub use system::SystemModel;
pub use traffic::{Schedule, Traffic};
pub use units::{ByteSize, Duration, Money, Percent, Rate};

//! `surge-model`: the rules of the reference chat architecture, written once.
//!
//! The simulator and the mock are two drivers of one model. The simulator runs it in
//! virtual time from an event queue; the mock runs it in wall time from an async server.
//! Neither restates a rule: every limit, capacity, quota, latency draw and routing
//! decision of a chat turn lives here. Each rule is plain state and functions over an
//! explicit time argument ([`time::Nanos`] since the driver's own start). The crate does no
//! I/O, has no async code and keeps no clock of its own. Each driver supplies its own
//! randomness: the simulator seeded streams, the mock the thread's generator.
//!
//! | module | rule |
//! |---|---|
//! | [`gateway`] | API Gateway: connection admission and lifetime, per-user and account limits |
//! | [`orchestrator`], [`autoscaling`] | ECS workers in front of one FIFO queue; target tracking |
//! | [`burst`] | Lambda burst workers for orchestrator overflow |
//! | [`dynamodb`] | on-demand capacity of a table, request units, per-partition limits |
//! | [`bedrock`] | per-model quotas (provisioned, TPM, RPM), reserve and settle, token timing |
//! | [`preflight`] | the profile's peak against every quota, before anything runs |
//! | [`turn`] | a turn's route: what is skipped, what runs in parallel, what retries, what falls back |
//! | [`bucket`], [`retry`], [`draw`] | the token bucket every limit is, the SDKs' backoff, random draws |
//! | [`time`] | integer nanoseconds, the one unit of time of every rule |
//!
//! Dependencies point one way: `sim → model → profile` and `mock → model → profile`.

pub mod autoscaling;
pub mod bedrock;
pub mod bucket;
pub mod burst;
pub mod draw;
pub mod dynamodb;
pub mod gateway;
pub mod orchestrator;
pub mod preflight;
pub mod retry;
pub mod time;
pub mod turn;

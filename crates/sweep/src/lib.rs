//! `surge sweep`: where does the target stop keeping up? Stepped live load, each step held
//! and judged against the profile's thresholds, stopping at the first step that fails (or
//! at which the load generator, not the target, saturates), naming the maximum
//! sustainable rate.
//!
//! Why a crate of its own: a sweep is a loop of measured runs (`surge-loadgen`) over step
//! profiles (`surge-profile`), predicted first (`surge-sim`), judged and written up (`surge-record`, `surge-analyze`) and
//! priced beforehand (`surge-cost`); the command line only parses flags and asks for
//! confirmation.
//!
//! | module | job |
//! |---|---|
//! | [`steps`] | `--rates LO..HI[:STEP]`, sessions per step, the ceiling |
//! | [`profile`] | each step's profile file: one stage held at its rate |
//! | [`predict`] | the simulator's verdict on the same steps |
//! | [`sweep`] | the loop: run, judge, stop |
//! | [`record`] | `sweep.json`, the step table, `sweep.html` with its curves |
//! | [`spend`] | the Bedrock spend of a sweep, estimated before it starts |

pub mod predict;
pub mod profile;
pub mod record;
pub mod spend;
pub mod steps;
pub mod sweep;

pub use spend::{Spend, estimate};
pub use steps::{Ceiling, Rates, Sessions};
pub use sweep::{Ending, Figures, Progress, Step, Sweep, SweepError, SweepOptions, Verdict, run};

//! One module per `surge` subcommand.

pub mod bench;
pub mod calibrate;
pub mod check;
pub mod compare;
pub mod cost;
pub mod mock;
pub mod plan;
pub mod prewarm;
pub mod report;
pub mod run;
pub mod simulate;
pub mod sweep;

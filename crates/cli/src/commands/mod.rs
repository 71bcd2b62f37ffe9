//! One module per `surge` subcommand.

pub mod check;

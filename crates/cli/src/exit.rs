//! Exit codes, in one place: 0 success, 1 thresholds or regression limits failed,
//! 2 bad usage or invalid profile, 3 the run could not be carried out.

use std::process::ExitCode;

use surge_profile::ProfileError;

/// How a command that ran to the end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything passed.
    Success,
    /// The command ran, but thresholds or regression limits failed.
    Failed,
    /// Stopped by Ctrl-C after writing what it had (exit 130, as shells report SIGINT).
    Interrupted,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::from(1),
            Outcome::Interrupted => ExitCode::from(130),
        }
    }
}

/// Why a command could not do its job.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or invalid input (exit 2).
    Usage(String),
    /// The run could not be carried out (exit 3).
    CouldNotRun(String),
}

impl Failure {
    pub fn could_not_run(msg: impl Into<String>) -> Self {
        Self::CouldNotRun(msg.into())
    }

    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::CouldNotRun(_) => 3,
        }
    }

    /// What went wrong, to print.
    pub fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::CouldNotRun(m) => m,
        }
    }

    /// Prints the message to stderr and returns the exit code.
    pub fn report(&self) -> ExitCode {
        eprintln!("error: {}", self.message());
        ExitCode::from(self.code())
    }
}

impl From<ProfileError> for Failure {
    fn from(e: ProfileError) -> Self {
        // An unreadable or invalid profile is bad input either way.
        Self::Usage(e.to_string())
    }
}

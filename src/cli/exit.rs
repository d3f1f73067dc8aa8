//! The exit codes, one table for every command (README, "Commands"):
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | done (also when the reader of the output went away: `nhacviec log \| head -1`) |
//! | 1 | the config has errors, the ledger cannot be read, or a delivery failed |
//! | 2 | usage: an unknown option, a date or moment that cannot be read, an unknown office or task |

use std::fmt;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Done = 0,
    /// 1: a config or delivery failure (the config has errors, the ledger cannot be read,
    /// a reminder was not delivered).
    Failure = 1,
    /// 2: the command line itself is wrong.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error in what was typed: exits 2 ([`Exit::Usage`]) where any other error exits 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// The exit code for an error a command returned.
pub fn code_of(e: &anyhow::Error) -> Exit {
    if e.chain().any(|c| c.downcast_ref::<UsageError>().is_some()) {
        Exit::Usage
    } else {
        Exit::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_and_others_1() {
        let e = Err::<(), _>(usage("bad date"))
            .context("reading --since")
            .unwrap_err();
        assert_eq!(code_of(&e), Exit::Usage);
        assert_eq!(
            code_of(&anyhow::anyhow!("the config has 2 errors")),
            Exit::Failure
        );
        assert_eq!(ExitCode::from(Exit::Usage), ExitCode::from(2));
    }
}

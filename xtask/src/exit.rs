//! Exit statuses of the contract, and the errors that carry them.
//!
//! 0 every check passed · 1 a check failed or an error finding · 2 usage or configuration
//! error · 3 the agent or a required tool failed to run · 130 interrupted.

use std::{fmt, process::ExitCode};

use crate::{config::ConfigError, repo::RepoError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed.
    Clean = 0,
    /// A check failed, could not be decided, or an error finding.
    Failed = 1,
}

/// An error that ends the command with a given status.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// Usage or configuration error (exit 2).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: 2,
        message: message.into(),
    }
    .into()
}

/// A required tool or the agent failed to run (exit 3).
pub fn tool(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: 3,
        message: message.into(),
    }
    .into()
}

/// Ctrl-C or SIGTERM ended the command (exit 130).
pub fn interrupted(message: impl Into<String>) -> anyhow::Error {
    Exit {
        code: 130,
        message: message.into(),
    }
    .into()
}

/// The status for an error: 2 for usage, configuration and repository problems, the carried
/// code for [`Exit`], 3 for anything else (something failed to run).
pub fn code_of(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<Exit>() {
        e.code
    } else if err.downcast_ref::<ConfigError>().is_some()
        || err.downcast_ref::<RepoError>().is_some()
    {
        2
    } else {
        3
    }
}

pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    match result {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(err) => {
            let code = code_of(&err);
            let kind = if code == 2 { "error" } else { "failed" };
            let message = format!("xtask: {kind}: {err:#}");
            if crate::actions::protecting() && message.contains('\n') {
                // It may quote a child's output (codex's stderr): no line of it is a command.
                let _ = crate::actions::write_untrusted(
                    &mut std::io::stderr(),
                    &message,
                    &crate::actions::random_token(),
                );
            } else {
                eprintln!("{message}");
            }
            ExitCode::from(code)
        }
    }
}

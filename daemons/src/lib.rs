//! Shared plumbing of the llama-orch binaries: exit codes and error reporting.

use std::process::ExitCode;

pub mod tokenize;

/// Exit code for bad input (a bad argument or file): the message names the problem.
pub const EXIT_USAGE: u8 = 2;

/// Prints `prog: message` on one line of stderr and returns [`EXIT_USAGE`].
pub fn fail(prog: &str, message: impl std::fmt::Display) -> ExitCode {
    let text = message.to_string().replace('\n', " ");
    eprintln!("{prog}: {text}");
    ExitCode::from(EXIT_USAGE)
}

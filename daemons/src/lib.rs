//! Shared plumbing of the llama-orch binaries: exit codes and error reporting.

use std::process::ExitCode;

pub mod inspect;
pub mod tokenize;

/// Exit code for bad input (a bad argument or file): the message names the problem.
pub const EXIT_USAGE: u8 = 2;

/// Prints `prog: message` on one line of stderr and returns [`EXIT_USAGE`].
pub fn fail(prog: &str, message: impl std::fmt::Display) -> ExitCode {
    let text = message.to_string().replace('\n', " ");
    eprintln!("{prog}: {text}");
    ExitCode::from(EXIT_USAGE)
}

/// Parses the command line; on a bad argument prints `prog: message` on one
/// line of stderr and returns [`EXIT_USAGE`] (help and version print as usual, exit 0).
pub fn parse_args<T: clap::Parser>(prog: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
            || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        {
            let _ = e.print();
            return if e.exit_code() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_USAGE)
            };
        }
        // The message is the text before clap's usage block, on one line.
        let text = e.render().to_string();
        let msg: Vec<&str> = text
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        fail(prog, msg.join(" ").trim_start_matches("error: "))
    })
}

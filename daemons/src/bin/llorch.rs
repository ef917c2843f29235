//! `llorch`: the all-in-one command line of llama-orch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use llorch_core::{ErrorCode, ModelRef};
use llorch_daemons::tokenize::{self, load_tokenizer};
use llorch_daemons::{fail, inspect, parse_args};

/// llama-orch: serve GGUF models on NVIDIA GPUs, from one box to a fleet.
#[derive(Parser)]
#[command(name = "llorch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Checks a model reference (`hf:org/repo[@rev][::file=path]`, `file:/abs.gguf`
    /// or an alias) and prints it as JSON, with its place in the model cache.
    Ref {
        /// The reference to check.
        reference: String,
        /// Model cache directory (default: ~/.cache/llama-orch/models).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Lists the stable error codes with their HTTP status and retriable flag.
    ErrorCodes,
    /// Shows what a GGUF file holds: architecture, parameters, context length,
    /// tensor types and counts, metadata and the tensor table.
    Inspect {
        /// The GGUF file.
        path: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Prints the token ids of TEXT as one JSON array (BOS included when the model
    /// adds it; special-token text such as `<start_of_turn>` is parsed as the token).
    Tokenize {
        /// The GGUF model whose tokenizer to use.
        #[arg(long)]
        model: PathBuf,
        /// The text to tokenize.
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Prints the text of a comma-separated list of token ids.
    Detokenize {
        /// The GGUF model whose tokenizer to use.
        #[arg(long)]
        model: PathBuf,
        /// Token ids: `ID,ID,...`.
        #[arg(allow_hyphen_values = true)]
        ids: String,
    },
}

fn main() -> ExitCode {
    let cli: Cli = match parse_args("llorch") {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Inspect { path, json } => match inspect::inspect(&path, json) {
            Ok(mut out) => {
                if json {
                    out.push('\n');
                }
                // A closed pipe (`| head`) is not an error of ours: no panic, exit 0.
                use std::io::Write as _;
                let _ = std::io::stdout().lock().write_all(out.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => match e {
                llorch_worker::gguf::GgufError::Io { .. } => fail("llorch inspect", e),
                _ => fail("llorch inspect", format!("{}: {e}", path.display())),
            },
        },
        Command::Tokenize { model, text } => {
            match load_tokenizer(&model).and_then(|t| tokenize::tokenize(&t, &text)) {
                Ok(json) => write_stdout(&format!("{json}\n")),
                Err(e) => fail("llorch tokenize", e),
            }
        }
        Command::Detokenize { model, ids } => {
            // Check the id list before loading the model.
            if let Err(e) = tokenize::parse_ids(&ids) {
                return fail("llorch detokenize", e);
            }
            match load_tokenizer(&model).and_then(|t| tokenize::detokenize(&t, &ids)) {
                Ok(text) => write_stdout(&text),
                Err(e) => fail("llorch detokenize", e),
            }
        }
        Command::Ref {
            reference,
            cache_dir,
        } => {
            let r: ModelRef = match reference.parse() {
                Ok(r) => r,
                Err(e) => return fail("llorch ref", e),
            };
            let root = cache_dir.unwrap_or_else(default_cache_dir);
            let kind = match &r {
                ModelRef::Hf(_) => "hf",
                ModelRef::File(_) => "file",
                ModelRef::Alias(_) => "alias",
            };
            let out = serde_json::json!({
                "kind": kind,
                "canonical": r.to_string(),
                "cache_path": r.cache_path(&root).map(|p| p.display().to_string()),
            });
            println!("{out}");
            ExitCode::SUCCESS
        }
        Command::ErrorCodes => {
            println!("{:<22} {:>4}  retriable", "code", "http");
            for c in ErrorCode::ALL {
                println!(
                    "{:<22} {:>4}  {}",
                    c.as_str(),
                    c.http_status(),
                    c.retriable()
                );
            }
            ExitCode::SUCCESS
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error of ours: no panic, exit 0.
fn write_stdout(text: &str) -> ExitCode {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

/// `~/.cache/llama-orch/models` (POOL-2031).
fn default_cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/llama-orch/models")
}

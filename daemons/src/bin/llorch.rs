//! `llorch`: the all-in-one command line of llama-orch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use llorch_core::wire::task::GenerationParams;
use llorch_core::{Device, ErrorCode, ModelRef};
use llorch_daemons::tokenize::{self, load_tokenizer};
use llorch_daemons::{fail, generate, inspect, parse_args};
use llorch_worker::cuda::MatmulPath;

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
    /// Generates text, streaming it to stdout.
    Generate {
        /// GGUF model file, or `demo` for gemma-3-270m from the model cache.
        #[arg(long)]
        model: PathBuf,
        /// Device: `cpu` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: Device,
        /// GPU matrix kernels: `tensor-cores` or `f32` (lower latency for one stream).
        #[arg(long, default_value = "tensor-cores")]
        matmul: MatmulPath,
        /// The prompt (special-token text such as `<start_of_turn>` is parsed).
        #[arg(long, allow_hyphen_values = true)]
        prompt: String,
        /// Most tokens to generate.
        #[arg(long, default_value_t = 128)]
        max_tokens: u32,
        /// Temperature (0 = greedy).
        #[arg(long, default_value_t = 0.8)]
        temperature: f32,
        /// RNG seed (default: chosen per run).
        #[arg(long)]
        seed: Option<u64>,
        /// Keep the K most likely tokens (0 = all).
        #[arg(long, default_value_t = 40)]
        top_k: u32,
        /// Nucleus sampling mass.
        #[arg(long, default_value_t = 0.95)]
        top_p: f32,
        /// Print `{"tokens": [...], "text": "..."}` instead of streaming text.
        #[arg(long)]
        json: bool,
    },
    /// Teacher forcing: for each input token, the top-N next tokens given the tokens so far (JSON).
    Logprobs {
        /// GGUF model file, or `demo`.
        #[arg(long)]
        model: PathBuf,
        /// Device: `cpu` or `cuda:N`.
        #[arg(long, default_value = "cpu")]
        device: Device,
        /// Token ids: `ID,ID,...`.
        #[arg(long)]
        tokens: String,
        /// Alternatives per position.
        #[arg(long, default_value_t = 5)]
        top: usize,
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
            let root = cache_dir.unwrap_or_else(llorch_worker::demo::model_cache_dir);
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
        Command::Generate {
            model,
            device,
            matmul,
            prompt,
            max_tokens,
            temperature,
            seed,
            top_k,
            top_p,
            json,
        } => {
            let params = GenerationParams {
                max_tokens: Some(max_tokens),
                temperature: Some(temperature),
                seed,
                top_k: Some(top_k),
                top_p: Some(top_p),
                ..GenerationParams::default()
            };
            let run = generate::resolve_model(&model).and_then(|model| {
                generate::generate(&generate::GenerateArgs {
                    model,
                    device,
                    matmul,
                    prompt,
                    params,
                    json,
                })
            });
            match run {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail("llorch generate", e.message),
            }
        }
        Command::Logprobs {
            model,
            device,
            tokens,
            top,
        } => {
            let ids = match tokenize::parse_ids(&tokens) {
                Ok(ids) => ids,
                Err(e) => return fail("llorch logprobs", e),
            };
            match generate::resolve_model(&model)
                .and_then(|m| generate::logprobs(&m, device, &ids, top))
            {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail("llorch logprobs", e.message),
            }
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

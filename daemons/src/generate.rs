//! `llorch generate` and `llorch logprobs`: the engine (CPU or CUDA) from the command line.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use llorch_core::wire::events::TaskEvent;
use llorch_core::wire::task::GenerationParams;
use llorch_core::{Device, Error, ErrorCode, JobId};
use llorch_worker::backend::ComputeBackend;
use llorch_worker::engine::{EngineConfig, EventSink, SeqRequest, SinkError};
use llorch_worker::forcing::teacher_force;
use llorch_worker::model::load::load;
use llorch_worker::sampling::{SamplingParams, mix64};

/// Resolves `--model`: a path, or `demo` for the demo model in the model cache,
/// fetched and checked on first use with progress lines on stderr.
pub fn resolve_model(arg: &Path) -> Result<PathBuf, Error> {
    if arg == Path::new("demo") {
        return llorch_worker::demo_fetch::ensure_demo_model(&mut |line| eprintln!("{line}"));
    }
    Ok(arg.to_path_buf())
}

/// What `llorch generate` was asked.
#[derive(Debug, Clone)]
pub struct GenerateArgs {
    /// Model file (resolved).
    pub model: PathBuf,
    /// Where to run it.
    pub device: Device,
    /// GPU matrix kernels.
    pub matmul: llorch_worker::cuda::MatmulPath,
    /// Prompt text.
    pub prompt: String,
    /// Sampling and length.
    pub params: GenerationParams,
    /// Print one JSON object instead of streaming text.
    pub json: bool,
}

/// Streams text to stdout as tokens arrive, and keeps the ids.
#[derive(Clone)]
struct PrintSink(Arc<parking_lot::Mutex<Printed>>);

struct Printed {
    json: bool,
    ids: Vec<u32>,
    text: String,
    end: Option<Result<(), Error>>,
}

impl EventSink for PrintSink {
    fn try_send(&mut self, ev: TaskEvent) -> Result<(), SinkError> {
        let mut s = self.0.lock();
        match ev {
            TaskEvent::Token(t) => {
                s.ids.push(t.t);
                s.text.push_str(&t.text);
                if !s.json {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(t.text.as_bytes());
                    let _ = out.flush();
                }
            }
            TaskEvent::End(_) => s.end = Some(Ok(())),
            TaskEvent::Error(e) => s.end = Some(Err(Error::from(e))),
            _ => {}
        }
        Ok(())
    }
}

/// Runs one generation; prints as `llorch generate` does.
pub fn generate(args: &GenerateArgs) -> Result<(), Error> {
    args.params.validate()?;
    let model = load(&args.model)?;
    let tok = Arc::clone(&model.tokenizer);
    let prompt = tok
        .encode(&args.prompt, true, true)
        .map_err(|e| Error::new(ErrorCode::InvalidParams, e.to_string()))?;
    let max_tokens = args.params.max_tokens.unwrap_or(128);
    let max_ctx = (prompt.len() + max_tokens as usize).min(model.cfg.ctx_len);
    let engine_cfg = EngineConfig {
        max_seqs: 1,
        max_ctx,
        ..EngineConfig::default()
    };
    let mut engine = model.into_engine_on(args.device, args.matmul, engine_cfg)?;
    let seed_fallback = mix64(std::process::id() as u64 ^ prompt.len() as u64);
    let req = SeqRequest {
        job_id: JobId::mint(),
        prompt,
        max_tokens,
        params: SamplingParams::from_wire(&args.params, seed_fallback),
        stop: args.params.stop.clone(),
        ignore_eos: false,
    };
    let sink = PrintSink(Arc::new(parking_lot::Mutex::new(Printed {
        json: args.json,
        ids: Vec::new(),
        text: String::new(),
        end: None,
    })));
    engine.submit(req, Box::new(sink.clone()))?;
    while engine.has_work() {
        engine.step()?;
    }
    let s = sink.0.lock();
    match &s.end {
        Some(Err(e)) => return Err(e.clone()),
        None => {
            return Err(Error::new(
                ErrorCode::Internal,
                "the job ended without a terminal event",
            ));
        }
        Some(Ok(())) => {}
    }
    if args.json {
        println!("{}", serde_json::json!({ "tokens": s.ids, "text": s.text }));
    } else {
        println!();
    }
    Ok(())
}

/// `llorch logprobs`: per input token, the top-N next tokens as JSON.
pub fn logprobs(model: &Path, device: Device, tokens: &[u32], top: usize) -> Result<String, Error> {
    if tokens.is_empty() {
        return Err(Error::new(ErrorCode::InvalidParams, "no tokens given"));
    }
    let model = load(model)?;
    let ctx = model.cfg.ctx_len;
    if tokens.len() > ctx {
        return Err(Error::new(
            ErrorCode::InvalidParams,
            format!(
                "{} tokens exceed the model's context of {ctx}",
                tokens.len()
            ),
        ));
    }
    let vocab = model.weights.vocab;
    if let Some(t) = tokens.iter().find(|&&t| t as usize >= vocab) {
        return Err(Error::new(
            ErrorCode::InvalidParams,
            format!("token id {t} is outside the vocabulary ({vocab})"),
        ));
    }
    let mut backend: Box<dyn ComputeBackend> = match device {
        Device::Cpu => Box::new(model.into_cpu_backend(tokens.len()).0),
        Device::Cuda(g) => Box::new(model.into_cuda_backend(g.0 as usize, tokens.len(), 256)?.0),
    };
    let rows = teacher_force(backend.as_mut(), tokens, top, 256)
        .map_err(|e| Error::new(ErrorCode::Internal, e.to_string()))?;
    let out: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::Value::Array(
                r.iter()
                    .map(|&(id, lp)| serde_json::json!({"id": id, "logprob": lp}))
                    .collect(),
            )
        })
        .collect();
    Ok(serde_json::Value::Array(out).to_string())
}

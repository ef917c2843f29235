//! The engine: continuous batching over a compute backend.
//!
//! Each call to [`Engine::step`] admits waiting sequences (while slots and KV pages
//! allow), builds one batch of decode tokens and prefill chunks under a token
//! budget, runs it, samples, streams events and retires finished sequences,
//! returning their pages at once. Sequences whose reader is slow pause instead of
//! blocking the others; one stalled too long is cancelled (issue 6).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llorch_core::wire::events::{End, StopReason, TaskEvent, Token, TokenLogprob};
use llorch_core::{CancelOutcome, Error, ErrorCode, JobId};

use super::sequence::{Phase, SeqRequest, Sequence};
use super::sink::EventSink;
use crate::backend::{ComputeBackend, LogitsWant, SampleRequest, SeqOutput, SeqStep};
use crate::kv::PageAllocator;
use crate::sampling::Sampled;
use crate::tokenizer::Tokenizer;

/// Limits and knobs of an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sequences running at once.
    pub max_seqs: usize,
    /// Longest sequence (prompt + output), tokens.
    pub max_ctx: usize,
    /// Largest prefill chunk of one sequence in one step.
    pub prefill_chunk: usize,
    /// Most tokens in one step (decode tokens and prefill chunks together).
    pub max_step_tokens: usize,
    /// Jobs waiting for a slot, at most.
    pub max_waiting: usize,
    /// A job running longer than this ends with `INFERENCE_TIMEOUT` (WORK-3071).
    pub inference_timeout: Duration,
    /// A reader that accepts nothing for this long has its job cancelled.
    pub stall_timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_seqs: 16,
            max_ctx: 4096,
            prefill_chunk: 256,
            max_step_tokens: 512,
            max_waiting: 256,
            inference_timeout: Duration::from_secs(300),
            stall_timeout: Duration::from_secs(30),
        }
    }
}

/// The continuous-batching engine over one backend.
pub struct Engine {
    backend: Box<dyn ComputeBackend>,
    tok: Arc<Tokenizer>,
    cfg: EngineConfig,
    alloc: PageAllocator,
    running: Vec<Sequence>,
    waiting: VecDeque<Sequence>,
    outputs: Vec<SeqOutput>,
}

impl Engine {
    /// An engine over `backend`; its KV pages are managed here.
    pub fn new(backend: Box<dyn ComputeBackend>, tok: Arc<Tokenizer>, cfg: EngineConfig) -> Self {
        let alloc = PageAllocator::new(backend.num_pages(), backend.page_size());
        Self {
            backend,
            tok,
            cfg,
            alloc,
            running: Vec::new(),
            waiting: VecDeque::new(),
            outputs: Vec::new(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tok
    }

    /// The backend.
    pub fn backend(&self) -> &dyn ComputeBackend {
        self.backend.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Slots not taken by running or waiting sequences.
    pub fn free_slots(&self) -> usize {
        self.cfg
            .max_seqs
            .saturating_sub(self.running.len() + self.waiting.len())
    }

    /// Whether any sequence is running or waiting.
    pub fn has_work(&self) -> bool {
        !self.running.is_empty() || !self.waiting.is_empty()
    }

    /// Free KV pages.
    pub fn free_pages(&self) -> usize {
        self.alloc.free_pages()
    }

    /// Whether a step now would compute something: a sequence in prefill, one decoding
    /// whose reader keeps up, or a waiting job that can be admitted. When it is false
    /// (every sequence paused on a slow reader or finished and delivering), a driver
    /// waits for a command or a short timer instead of stepping in a busy loop.
    pub fn can_progress(&self) -> bool {
        let runnable = self.running.iter().any(|s| match s.phase {
            Phase::Prefill => true,
            Phase::Decode => !s.is_paused(),
            Phase::Done => false,
        });
        runnable
            || (self.running.len() < self.cfg.max_seqs
                && self.waiting.front().is_some_and(|f| {
                    self.alloc
                        .pages_for(self.reservation(f.n_prompt(), f.req.max_tokens))
                        <= self.alloc.free_pages()
                }))
    }

    /// Positions a sequence reserves: prompt plus output, capped by the context.
    fn reservation(&self, n_prompt: usize, max_tokens: u32) -> usize {
        (n_prompt + max_tokens as usize).min(self.cfg.max_ctx)
    }

    /// Takes a job. Fails when it can never fit or too many jobs wait.
    pub fn submit(&mut self, req: SeqRequest, sink: Box<dyn EventSink>) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::new(ErrorCode::InvalidRequest, m));
        if req.prompt.is_empty() {
            return invalid("the prompt has no tokens".into());
        }
        if req.max_tokens == 0 {
            return invalid("max_tokens must be at least 1".into());
        }
        if let Some(&t) = req
            .prompt
            .iter()
            .find(|&&t| t as usize >= self.backend.vocab_size())
        {
            return invalid(format!(
                "token id {t} is outside the vocabulary ({})",
                self.backend.vocab_size()
            ));
        }
        if req.prompt.len() >= self.cfg.max_ctx {
            return invalid(format!(
                "the prompt has {} tokens; this worker's context is {} (prompt + at least one output token)",
                req.prompt.len(),
                self.cfg.max_ctx
            ));
        }
        let pages = self
            .alloc
            .pages_for(self.reservation(req.prompt.len(), req.max_tokens));
        if pages > self.alloc.total_pages() {
            return invalid(format!(
                "needs {pages} KV pages; the worker has {}",
                self.alloc.total_pages()
            ));
        }
        if self
            .running
            .iter()
            .chain(&self.waiting)
            .any(|s| s.job_id() == &req.job_id)
        {
            return invalid(format!("job {} is already running", req.job_id));
        }
        if self.waiting.len() >= self.cfg.max_waiting {
            return Err(Error::new(
                ErrorCode::WorkerUnavailable,
                "the worker's waiting list is full",
            ));
        }
        let seq = Sequence::new(req, self.tok.stream_decoder(), sink);
        self.waiting.push_back(seq);
        Ok(())
    }

    /// Cancels a job by id: its stream ends with `CANCELLED` and its pages are freed.
    pub fn cancel(&mut self, job: &JobId) -> Option<CancelOutcome> {
        if let Some(i) = self.waiting.iter().position(|s| s.job_id() == job) {
            if let Some(mut s) = self.waiting.remove(i) {
                s.emit(error_event(ErrorCode::Cancelled, "the job was cancelled"));
            }
            return Some(CancelOutcome::Cancelled);
        }
        let seq = self.running.iter_mut().find(|s| s.job_id() == job)?;
        if seq.phase == Phase::Done {
            return Some(CancelOutcome::AlreadyFinished);
        }
        let mut pages = std::mem::take(&mut seq.pages);
        self.alloc.release(&mut pages);
        seq.phase = Phase::Done;
        seq.emit(error_event(ErrorCode::Cancelled, "the job was cancelled"));
        Some(CancelOutcome::Cancelled)
    }

    /// Runs one iteration: admit, batch, compute, sample, stream, retire.
    pub fn step(&mut self) -> Result<(), Error> {
        self.admit();
        self.police();
        let plan = self.plan();
        if !plan.is_empty() {
            let run = self.run(&plan);
            if let Err(e) = run {
                // A device failure ends every sequence of the batch.
                for &(i, _) in &plan {
                    self.finish_with_error(i, ErrorCode::CudaError, &e.to_string());
                }
                self.retire();
                return Err(Error::new(ErrorCode::CudaError, e.to_string()));
            }
        }
        for s in &mut self.running {
            s.flush();
        }
        self.retire();
        Ok(())
    }

    fn admit(&mut self) {
        while self.running.len() < self.cfg.max_seqs {
            let Some(front) = self.waiting.front() else {
                break;
            };
            let need = self
                .alloc
                .pages_for(self.reservation(front.n_prompt(), front.req.max_tokens));
            let Some(pages) = self.alloc.alloc(need) else {
                break;
            };
            let Some(mut s) = self.waiting.pop_front() else {
                break;
            };
            s.pages = pages;
            s.emit(TaskEvent::Started(llorch_core::wire::events::Started {
                job_id: s.req.job_id.clone(),
                worker_id: None,
                tokens_in: Some(s.n_prompt() as u32),
                queue_position: None,
                predicted_start_ms: None,
            }));
            self.running.push(s);
        }
    }

    /// Cancels sequences whose reader left or stalled, and those past the time limit.
    fn police(&mut self) {
        let now = Instant::now();
        for i in 0..self.running.len() {
            let s = &self.running[i];
            if s.phase == Phase::Done {
                continue;
            }
            if s.closed {
                self.finish_with_error(i, ErrorCode::Cancelled, "the client went away");
            } else if s
                .stalled_since
                .is_some_and(|t| now - t > self.cfg.stall_timeout)
            {
                self.finish_with_error(i, ErrorCode::Cancelled, "the client stopped reading");
            } else if now - s.submitted > self.cfg.inference_timeout {
                self.finish_with_error(
                    i,
                    ErrorCode::InferenceTimeout,
                    "the job ran past its time limit",
                );
            }
        }
    }

    /// Chooses this step's work: (sequence index, tokens to process).
    fn plan(&self) -> Vec<(usize, usize)> {
        let mut budget = self.cfg.max_step_tokens;
        let mut plan = Vec::new();
        for (i, s) in self.running.iter().enumerate() {
            if s.phase == Phase::Decode && !s.is_paused() && budget > 0 {
                plan.push((i, 1));
                budget -= 1;
            }
        }
        for (i, s) in self.running.iter().enumerate() {
            if s.phase == Phase::Prefill && budget > 0 {
                let n = (s.n_prompt() - s.computed)
                    .min(self.cfg.prefill_chunk)
                    .min(budget);
                plan.push((i, n));
                budget -= n;
            }
        }
        plan
    }

    fn run(&mut self, plan: &[(usize, usize)]) -> Result<(), crate::backend::BackendError> {
        let mut steps = Vec::with_capacity(plan.len());
        for &(i, n) in plan {
            let s = &self.running[i];
            let end = s.computed + n;
            let completes = end == s.tokens.len();
            steps.push(SeqStep {
                tokens: &s.tokens[s.computed..end],
                start_pos: s.computed,
                pages: &s.pages,
                logits: if completes {
                    LogitsWant::Last
                } else {
                    LogitsWant::None
                },
                sample: completes.then_some(SampleRequest {
                    params: &s.req.params,
                    recent: &s.tokens,
                    draw: u64::from(s.generated),
                }),
            });
        }
        self.backend.step(&steps, &mut self.outputs)?;
        let outputs = std::mem::take(&mut self.outputs);
        for (&(i, n), out) in plan.iter().zip(&outputs) {
            let s = &mut self.running[i];
            s.computed += n;
            if let Some(sampled) = &out.sampled {
                if s.phase == Phase::Prefill {
                    s.phase = Phase::Decode;
                    s.decode_started = Some(Instant::now());
                }
                self.on_token(i, sampled);
            }
        }
        self.outputs = outputs;
        Ok(())
    }

    /// Appends a sampled token, streams it and ends the sequence when a limit is hit.
    fn on_token(&mut self, i: usize, sampled: &Sampled) {
        let tok = &self.tok;
        let max_ctx = self.cfg.max_ctx;
        let s = &mut self.running[i];
        let eog = tok.is_eog(sampled.id) && !s.req.ignore_eos;
        s.tokens.push(sampled.id);
        let index = s.generated;
        s.generated += 1;
        let (mut text, stopped) = if eog {
            (String::new(), false)
        } else {
            let piece = s.decoder.push(tok, sampled.id).unwrap_or_default();
            s.stop.push(&piece)
        };
        let mut reason = if eog {
            Some(StopReason::Eos)
        } else if stopped {
            Some(StopReason::Stop)
        } else if s.generated >= s.req.max_tokens {
            Some(StopReason::MaxTokens)
        } else if s.tokens.len() >= max_ctx {
            Some(StopReason::ContextFull)
        } else {
            None
        };
        if reason.is_some_and(|r| r != StopReason::Stop) {
            // The sequence ends here: release text held back for UTF-8 or stop strings.
            let rest = s.decoder.finish();
            let (more, hit) = s.stop.push(&rest);
            text.push_str(&more);
            if hit {
                reason = Some(StopReason::Stop);
            } else {
                text.push_str(&s.stop.flush());
            }
        }
        let top = sampled
            .top
            .iter()
            .map(|&(id, logprob)| TokenLogprob { id, logprob })
            .collect();
        s.emit(TaskEvent::Token(Token {
            t: sampled.id,
            i: index,
            text,
            logprob: s.req.params.want_logprobs.then_some(sampled.logprob),
            top_logprobs: top,
        }));
        if let Some(reason) = reason {
            self.finish(i, reason);
        }
    }

    fn finish(&mut self, i: usize, reason: StopReason) {
        let s = &mut self.running[i];
        let decode_ms = s
            .decode_started
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        s.emit(TaskEvent::End(End {
            tokens_in: s.n_prompt() as u32,
            tokens_out: s.generated,
            decode_time_ms: decode_ms,
            stop_reason: reason,
        }));
        s.phase = Phase::Done;
        let mut pages = std::mem::take(&mut s.pages);
        self.alloc.release(&mut pages);
    }

    fn finish_with_error(&mut self, i: usize, code: ErrorCode, msg: &str) {
        let s = &mut self.running[i];
        if s.phase == Phase::Done {
            return;
        }
        s.phase = Phase::Done;
        s.emit(error_event(code, msg));
        let mut pages = std::mem::take(&mut s.pages);
        self.alloc.release(&mut pages);
    }

    /// Drops finished sequences whose events are all delivered (or whose reader left).
    fn retire(&mut self) {
        let stall = self.cfg.stall_timeout;
        self.running.retain(|s| {
            !(s.phase == Phase::Done
                && (s.drained() || s.stalled_since.is_some_and(|t| t.elapsed() > stall)))
        });
    }
}

fn error_event(code: ErrorCode, msg: &str) -> TaskEvent {
    TaskEvent::Error(Error::new(code, msg).to_body())
}

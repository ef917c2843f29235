//! One running job inside the engine.

use std::collections::VecDeque;
use std::time::Instant;

use llorch_core::JobId;
use llorch_core::wire::events::TaskEvent;

use super::sink::{EventSink, SinkError};
use crate::sampling::{SamplingParams, StopMatcher};
use crate::tokenizer::StreamDecoder;

/// A job as the engine takes it: tokens in, limits and sampling resolved.
#[derive(Debug, Clone)]
pub struct SeqRequest {
    /// The job.
    pub job_id: JobId,
    /// Prompt token ids (BOS included when the model wants it).
    pub prompt: Vec<u32>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Sampling.
    pub params: SamplingParams,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Keep generating past end-of-generation tokens (benchmarks).
    pub ignore_eos: bool,
}

/// Where a sequence is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Processing its prompt.
    Prefill,
    /// Generating.
    Decode,
    /// Ended; waiting for its last events to be delivered.
    Done,
}

/// A sequence and its state.
pub struct Sequence {
    /// The request (its `prompt` moved into `tokens`).
    pub(crate) req: SeqRequest,
    n_prompt: usize,
    /// Prompt and generated tokens.
    pub(crate) tokens: Vec<u32>,
    /// Positions already in the KV cache.
    pub(crate) computed: usize,
    pub(crate) pages: Vec<u32>,
    pub(crate) generated: u32,
    pub(crate) phase: Phase,
    pub(crate) stop: StopMatcher,
    pub(crate) decoder: StreamDecoder,
    outbox: VecDeque<TaskEvent>,
    sink: Box<dyn EventSink>,
    pub(crate) closed: bool,
    pub(crate) submitted: Instant,
    pub(crate) decode_started: Option<Instant>,
    pub(crate) stalled_since: Option<Instant>,
}

/// Events a sequence may hold back while its reader is slow; beyond this it pauses.
pub const OUTBOX_LIMIT: usize = 4;

impl Sequence {
    pub(crate) fn new(
        mut req: SeqRequest,
        decoder: StreamDecoder,
        sink: Box<dyn EventSink>,
    ) -> Self {
        // The prompt moves into `tokens`, which then grows with the output.
        let tokens = std::mem::take(&mut req.prompt);
        Self {
            n_prompt: tokens.len(),
            tokens,
            stop: StopMatcher::new(&req.stop),
            req,
            computed: 0,
            pages: Vec::new(),
            generated: 0,
            phase: Phase::Prefill,
            decoder,
            outbox: VecDeque::new(),
            sink,
            closed: false,
            submitted: Instant::now(),
            decode_started: None,
            stalled_since: None,
        }
    }

    /// The job id.
    pub fn job_id(&self) -> &JobId {
        &self.req.job_id
    }

    /// Prompt length.
    pub fn n_prompt(&self) -> usize {
        self.n_prompt
    }

    /// Queues an event and tries to deliver everything queued.
    pub(crate) fn emit(&mut self, ev: TaskEvent) {
        self.outbox.push_back(ev);
        self.flush();
    }

    /// Delivers queued events until the sink is full; notes a closed reader.
    pub(crate) fn flush(&mut self) {
        while let Some(ev) = self.outbox.pop_front() {
            match self.sink.try_send(ev) {
                Ok(()) => {}
                Err(SinkError::Full(ev)) => {
                    self.outbox.push_front(ev);
                    self.stalled_since.get_or_insert_with(Instant::now);
                    return;
                }
                Err(SinkError::Closed) => {
                    self.closed = true;
                    self.outbox.clear();
                    return;
                }
            }
        }
        self.stalled_since = None;
    }

    /// Whether the reader keeps up (a paused sequence is not scheduled).
    pub(crate) fn is_paused(&self) -> bool {
        self.outbox.len() >= OUTBOX_LIMIT
    }

    /// Whether every event has been delivered (or the reader is gone).
    pub(crate) fn drained(&self) -> bool {
        self.outbox.is_empty() || self.closed
    }
}

//! The SSE events of a job (ORCH-1070, WORK-3050).
//!
//! A worker's stream is `started` → `token`* → (`metrics`)* → `end` | `error`; the
//! orchestrator adds `queued` before it and `queue_position`/`predicted_start_ms`
//! to `started`. Exactly one terminal event (`end` or `error`) ends every stream.
//! On the wire an event is an SSE `event:` name and a JSON `data:` line; in JSON
//! contexts it is `{"event": name, "data": {...}}`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::ids::{JobId, WorkerId};

/// One event of a job's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum TaskEvent {
    /// The job waits in the orchestrator's queue.
    Queued(Queued),
    /// The job runs on a worker.
    Started(Started),
    /// One generated token.
    Token(Token),
    /// Progress figures.
    Metrics(Metrics),
    /// The job finished (terminal).
    End(End),
    /// The job failed or was cancelled (terminal).
    Error(ErrorBody),
}

impl TaskEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            TaskEvent::Queued(_) => "queued",
            TaskEvent::Started(_) => "started",
            TaskEvent::Token(_) => "token",
            TaskEvent::Metrics(_) => "metrics",
            TaskEvent::End(_) => "end",
            TaskEvent::Error(_) => "error",
        }
    }

    /// Whether this event ends the stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, TaskEvent::End(_) | TaskEvent::Error(_))
    }

    /// The SSE `data:` payload (one line of JSON).
    pub fn data_json(&self) -> String {
        let line = match self {
            TaskEvent::Queued(e) => serde_json::to_string(e),
            TaskEvent::Started(e) => serde_json::to_string(e),
            TaskEvent::Token(e) => serde_json::to_string(e),
            TaskEvent::Metrics(e) => serde_json::to_string(e),
            TaskEvent::End(e) => serde_json::to_string(e),
            TaskEvent::Error(e) => serde_json::to_string(e),
        };
        // Serializing these plain structs cannot fail; keep a valid line regardless.
        line.unwrap_or_else(|_| "{}".to_owned())
    }

    /// Rebuilds an event from an SSE `event:` name and `data:` payload.
    pub fn from_sse(name: &str, data: &str) -> Result<Self, serde_json::Error> {
        let data: serde_json::Value = serde_json::from_str(data)?;
        serde_json::from_value(serde_json::json!({ "event": name, "data": data }))
    }
}

/// `queued`: the job's place in the orchestrator's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The job.
    pub job_id: JobId,
    /// Jobs ahead of this one (0 = next).
    pub queue_position: u32,
    /// Expected milliseconds until it starts, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_start_ms: Option<u64>,
}

/// `started`: a worker began the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// The job.
    pub job_id: JobId,
    /// The worker running it (added by the orchestrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    /// Prompt length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u32>,
    /// Queue position when dispatched (added by the orchestrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Milliseconds the job waited before starting (added by the orchestrator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_start_ms: Option<u64>,
}

/// A token and its alternatives' log-probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// Token id.
    pub id: u32,
    /// Natural-log probability.
    pub logprob: f32,
}

/// `token`: one generated token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The token id.
    pub t: u32,
    /// Its index among the generated tokens (0-based).
    pub i: u32,
    /// The text this token completes (may be empty while a UTF-8 character is split).
    pub text: String,
    /// The token's log-probability, when the request asked for logprobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob: Option<f32>,
    /// The top alternatives, when the request asked for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_logprobs: Vec<TokenLogprob>,
}

/// `metrics`: progress figures, sent now and then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Tokens generated so far.
    pub tokens_out: u32,
    /// Decode rate so far, tokens per second.
    pub tokens_per_sec: f32,
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_tokens` reached.
    MaxTokens,
    /// The model produced an end-of-generation token.
    Eos,
    /// A stop string or stop token matched.
    Stop,
    /// The context window is full.
    ContextFull,
}

/// `end`: the job finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    /// Prompt tokens.
    pub tokens_in: u32,
    /// Generated tokens.
    pub tokens_out: u32,
    /// Milliseconds spent generating (prefill excluded).
    pub decode_time_ms: u64,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, ErrorCode};

    fn job() -> JobId {
        JobId::new("job-1").unwrap()
    }

    #[test]
    fn sse_round_trip_for_every_kind() {
        let events = [
            TaskEvent::Queued(Queued {
                job_id: job(),
                queue_position: 3,
                predicted_start_ms: Some(40),
            }),
            TaskEvent::Started(Started {
                job_id: job(),
                worker_id: None,
                tokens_in: Some(5),
                queue_position: None,
                predicted_start_ms: None,
            }),
            TaskEvent::Token(Token {
                t: 42,
                i: 0,
                text: " hi".into(),
                logprob: Some(-0.5),
                top_logprobs: vec![TokenLogprob {
                    id: 42,
                    logprob: -0.5,
                }],
            }),
            TaskEvent::Metrics(Metrics {
                tokens_out: 3,
                tokens_per_sec: 10.5,
            }),
            TaskEvent::End(End {
                tokens_in: 5,
                tokens_out: 3,
                decode_time_ms: 12,
                stop_reason: StopReason::Eos,
            }),
            TaskEvent::Error(Error::new(ErrorCode::Cancelled, "cancelled").to_body()),
        ];
        for e in events {
            let back = TaskEvent::from_sse(e.name(), &e.data_json()).unwrap();
            assert_eq!(back, e);
            assert_eq!(e.is_terminal(), matches!(e.name(), "end" | "error"));
            assert!(!e.data_json().contains('\n'));
        }
        assert!(TaskEvent::from_sse("nope", "{}").is_err());
        assert!(TaskEvent::from_sse("token", "{").is_err());
    }

    #[test]
    fn token_wire_shape() {
        let e = TaskEvent::Token(Token {
            t: 7,
            i: 2,
            text: "a".into(),
            logprob: None,
            top_logprobs: vec![],
        });
        assert_eq!(e.data_json(), r#"{"t":7,"i":2,"text":"a"}"#);
    }
}

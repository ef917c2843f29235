//! Task submission: the client's `POST /v2/tasks` and the worker's `POST /execute`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode};
use crate::ids::{JobId, SessionId};

/// Most stop strings one request may carry.
pub const MAX_STOP_STRINGS: usize = 16;
/// Longest stop string, in bytes.
pub const MAX_STOP_LEN: usize = 256;
/// Most top-N alternatives per token a request may ask for.
pub const MAX_LOGPROBS: u32 = 20;

/// Queue priority (ORCH-1010).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Latency-sensitive work, served first.
    #[default]
    Interactive,
    /// Throughput work; never starved (ORCH-1022).
    Batch,
}

/// Sampling and length parameters shared by the task API and `/execute`.
///
/// `None` means the server's default. [`GenerationParams::validate`] checks ranges
/// (WORK-3120); the serving edges call it before a request goes any further.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GenerationParams {
    /// Most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Softmax temperature, 0 (greedy) to 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, in (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Keep only the K most likely tokens; 0 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Drop tokens below `min_p` × the top token's probability, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// Multiplicative penalty on tokens already seen, in (0, 10]; 1 disables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
    /// Additive penalty on tokens already seen, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Penalty proportional to a token's count so far, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// RNG seed: same seed, same tokens (SYS-0003).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Strings that end generation (not included in the output).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Report the chosen token's logprob and this many alternatives (0 to 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
}

impl GenerationParams {
    /// Checks every range; the error names the field (`INVALID_PARAMS`).
    pub fn validate(&self) -> Result<(), Error> {
        fn bad(field: &str, why: &str) -> Error {
            Error::new(ErrorCode::InvalidParams, format!("{field}: {why}"))
                .with_details(serde_json::json!({ "field": field }))
        }
        fn range(
            field: &str,
            v: Option<f32>,
            lo: f32,
            hi: f32,
            lo_open: bool,
        ) -> Result<(), Error> {
            match v {
                Some(x) if !x.is_finite() || x > hi || x < lo || (lo_open && x == lo) => {
                    let open = if lo_open { "(" } else { "[" };
                    Err(bad(
                        field,
                        &format!("must be in {open}{lo}, {hi}], got {x}"),
                    ))
                }
                _ => Ok(()),
            }
        }
        if self.max_tokens == Some(0) {
            return Err(bad("max_tokens", "must be at least 1"));
        }
        range("temperature", self.temperature, 0.0, 2.0, false)?;
        range("top_p", self.top_p, 0.0, 1.0, true)?;
        range("min_p", self.min_p, 0.0, 1.0, false)?;
        range(
            "repetition_penalty",
            self.repetition_penalty,
            0.0,
            10.0,
            true,
        )?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0, false)?;
        range(
            "frequency_penalty",
            self.frequency_penalty,
            -2.0,
            2.0,
            false,
        )?;
        if self.stop.len() > MAX_STOP_STRINGS {
            return Err(bad(
                "stop",
                &format!("at most {MAX_STOP_STRINGS} stop strings"),
            ));
        }
        if let Some(s) = self
            .stop
            .iter()
            .find(|s| s.is_empty() || s.len() > MAX_STOP_LEN)
        {
            return Err(bad(
                "stop",
                &format!(
                    "each stop string needs 1 to {MAX_STOP_LEN} bytes, got {}",
                    s.len()
                ),
            ));
        }
        if self.logprobs.is_some_and(|n| n > MAX_LOGPROBS) {
            return Err(bad("logprobs", &format!("at most {MAX_LOGPROBS}")));
        }
        Ok(())
    }
}

/// The input of a job: text, or token ids already tokenized by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// Text to tokenize with the model's tokenizer.
    Text {
        /// The prompt text.
        prompt: String,
    },
    /// Token ids.
    Tokens {
        /// The prompt's token ids.
        prompt_tokens: Vec<u32>,
    },
}

/// Fields a request carried that the API does not know. Edges reject a non-empty map
/// with `INVALID_PARAMS` naming the fields (known fields only, WORK-3120).
pub type UnknownFields = BTreeMap<String, serde_json::Value>;

/// Names the unknown fields of a request, if any.
pub fn reject_unknown(unknown: &UnknownFields) -> Result<(), Error> {
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = unknown.keys().map(String::as_str).collect();
    Err(Error::new(
        ErrorCode::InvalidParams,
        format!("unknown field(s): {}", names.join(", ")),
    )
    .with_details(serde_json::json!({ "unknown_fields": names })))
}

/// `POST /v2/tasks`: a client's job (ORCH-1100).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRequest {
    /// The model: a catalog alias, `hf:` or `file:` reference (validated at the edge).
    pub model: String,
    /// The prompt text (exactly one of `prompt` and `prompt_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The prompt as token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<Vec<u32>>,
    /// Queue priority.
    #[serde(default)]
    pub priority: Priority,
    /// Session for affinity and budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Sampling and length.
    #[serde(flatten)]
    pub params: GenerationParams,
    /// Anything else the client sent (rejected at the edge).
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `202 Accepted` answer to `POST /v2/tasks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskAccepted {
    /// The minted job id.
    pub job_id: JobId,
    /// Position in the queue at admission (0 = next).
    pub queue_position: u32,
    /// Where to read the job's SSE events.
    pub events_url: String,
    /// Expected milliseconds until the job starts, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_start_ms: Option<u64>,
}

/// `POST /execute` on a worker (WORK-3040).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecuteRequest {
    /// The job, minted by the orchestrator.
    pub job_id: JobId,
    /// The prompt text (exactly one of `prompt` and `prompt_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The prompt as token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<Vec<u32>>,
    /// Sampling and length.
    #[serde(flatten)]
    pub params: GenerationParams,
    /// Anything else the caller sent (rejected at the edge).
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `POST /cancel` on a worker, or the body of a task cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// The job to cancel.
    pub job_id: JobId,
}

/// Longest prompt text accepted at an edge, in bytes (the context limit is checked later).
pub const MAX_PROMPT_BYTES: usize = 4 << 20;

/// A job that passed edge validation: known fields only, a non-empty bounded prompt,
/// parameters in range. The worker seam takes only this type.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJob {
    job_id: JobId,
    input: PromptInput,
    params: GenerationParams,
}

impl ValidJob {
    /// Validates the parts of a job.
    pub fn new(job_id: JobId, input: PromptInput, params: GenerationParams) -> Result<Self, Error> {
        let bad = |field: &str, why: String| {
            Error::new(ErrorCode::InvalidParams, format!("{field}: {why}"))
                .with_details(serde_json::json!({ "field": field }))
        };
        match &input {
            PromptInput::Text { prompt } if prompt.is_empty() => {
                return Err(bad("prompt", "must not be empty".into()));
            }
            PromptInput::Text { prompt } if prompt.len() > MAX_PROMPT_BYTES => {
                return Err(bad(
                    "prompt",
                    format!("longer than {MAX_PROMPT_BYTES} bytes"),
                ));
            }
            PromptInput::Tokens { prompt_tokens } if prompt_tokens.is_empty() => {
                return Err(bad("prompt_tokens", "must not be empty".into()));
            }
            _ => {}
        }
        params.validate()?;
        Ok(Self {
            job_id,
            input,
            params,
        })
    }

    /// The job id.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The prompt.
    pub fn input(&self) -> &PromptInput {
        &self.input
    }

    /// Sampling and length.
    pub fn params(&self) -> &GenerationParams {
        &self.params
    }
}

impl PromptInput {
    /// Takes exactly one of the two wire fields.
    pub fn from_wire(
        prompt: Option<String>,
        prompt_tokens: Option<Vec<u32>>,
    ) -> Result<Self, Error> {
        match (prompt, prompt_tokens) {
            (Some(prompt), None) => Ok(Self::Text { prompt }),
            (None, Some(prompt_tokens)) => Ok(Self::Tokens { prompt_tokens }),
            (p, _) => Err(Error::new(
                ErrorCode::InvalidParams,
                if p.is_some() {
                    "give either `prompt` or `prompt_tokens`, not both"
                } else {
                    "`prompt` or `prompt_tokens` is required"
                },
            )
            .with_details(serde_json::json!({ "field": "prompt" }))),
        }
    }
}

impl ExecuteRequest {
    /// Edge validation of a worker request (WORK-3120).
    pub fn validate(self) -> Result<ValidJob, Error> {
        reject_unknown(&self.unknown)?;
        let input = PromptInput::from_wire(self.prompt, self.prompt_tokens)?;
        ValidJob::new(self.job_id, input, self.params)
    }
}

impl From<&ValidJob> for ExecuteRequest {
    fn from(j: &ValidJob) -> Self {
        let (prompt, prompt_tokens) = match &j.input {
            PromptInput::Text { prompt } => (Some(prompt.clone()), None),
            PromptInput::Tokens { prompt_tokens } => (None, Some(prompt_tokens.clone())),
        };
        Self {
            job_id: j.job_id.clone(),
            prompt,
            prompt_tokens,
            params: j.params.clone(),
            unknown: UnknownFields::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_request_parses_flat_and_collects_unknown_fields() {
        let r: ExecuteRequest = serde_json::from_str(
            r#"{"job_id":"job-1","prompt":"hi","max_tokens":8,"temperature":0.5,"seed":7,"bogus":1}"#,
        )
        .unwrap();
        assert_eq!(r.prompt.as_deref(), Some("hi"));
        assert_eq!(r.params.max_tokens, Some(8));
        assert_eq!(r.params.seed, Some(7));
        let err = reject_unknown(&r.unknown).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidParams);
        assert!(err.message.contains("bogus"));

        let t: ExecuteRequest =
            serde_json::from_str(r#"{"job_id":"job-2","prompt_tokens":[2,3]}"#).unwrap();
        assert_eq!(t.prompt_tokens, Some(vec![2, 3]));
        assert!(reject_unknown(&t.unknown).is_ok());
        let v = t.clone().validate().unwrap();
        assert_eq!(ExecuteRequest::from(&v), t);
        let empty: ExecuteRequest =
            serde_json::from_str(r#"{"job_id":"job-2","prompt":""}"#).unwrap();
        assert_eq!(empty.validate().unwrap_err().code, ErrorCode::InvalidParams);
        let none: ExecuteRequest = serde_json::from_str(r#"{"job_id":"job-3"}"#).unwrap();
        assert_eq!(none.validate().unwrap_err().code, ErrorCode::InvalidParams);
        let both: ExecuteRequest =
            serde_json::from_str(r#"{"job_id":"job-3","prompt":"a","prompt_tokens":[1]}"#).unwrap();
        assert!(both.validate().is_err());
        assert!(
            serde_json::from_str::<ExecuteRequest>(
                r#"{"job_id":"j","prompt":"x","max_tokens":-1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn task_request_round_trips() {
        let r: TaskRequest = serde_json::from_str(
            r#"{"model":"demo","prompt":"x","priority":"batch","session_id":"s1","stop":["\n"]}"#,
        )
        .unwrap();
        assert_eq!(r.priority, Priority::Batch);
        let back: TaskRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn params_validation_names_the_field() {
        let ok = GenerationParams {
            temperature: Some(0.0),
            top_p: Some(1.0),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let cases = [
            GenerationParams {
                temperature: Some(2.5),
                ..Default::default()
            },
            GenerationParams {
                temperature: Some(f32::NAN),
                ..Default::default()
            },
            GenerationParams {
                top_p: Some(0.0),
                ..Default::default()
            },
            GenerationParams {
                max_tokens: Some(0),
                ..Default::default()
            },
            GenerationParams {
                logprobs: Some(21),
                ..Default::default()
            },
            GenerationParams {
                stop: vec![String::new()],
                ..Default::default()
            },
            GenerationParams {
                stop: vec!["x".into(); 17],
                ..Default::default()
            },
        ];
        for p in cases {
            let e = p.validate().unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidParams);
            assert!(e.details.is_some());
        }
    }
}

//! Admission: may this job enter the queue at all? (ORCH-1011)
//!
//! Three checks, in order: the model exists in the catalog and is Active (ORCH-1083);
//! prompt + max_tokens fit its context; the tenant's token budget covers prompt +
//! max_tokens in the current budget window (ORCH-1132). Every refusal is
//! `ADMISSION_REJECT` with a `reason` in its details.

use std::collections::HashMap;

use llorch_core::wire::task::PromptInput;
use llorch_core::{Error, ErrorCode, ModelRef};

use crate::catalog::{Catalog, Lifecycle};
use crate::queue::TenantId;
use crate::tick::Tick;

/// Admission settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// `max_tokens` of a job that sets none (capped by the room left in the context).
    pub default_max_tokens: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            default_max_tokens: 512,
        }
    }
}

/// Per-tenant token budgets over fixed windows (`now / window_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Window length, milliseconds (at least 1).
    pub window_ms: u64,
    /// Tokens per window for tenants without an override; `None` = unlimited.
    pub default_limit: Option<u64>,
    /// Per-tenant limits.
    pub limits: HashMap<TenantId, u64>,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            default_limit: None,
            limits: HashMap::new(),
        }
    }
}

/// A tenant spent its budget for this window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetExceeded {
    /// Tokens per window.
    pub limit: u64,
    /// Tokens left in this window.
    pub remaining: u64,
    /// Milliseconds until the window resets.
    pub retry_after_ms: u64,
}

/// Token use per tenant per window. Jobs without a tenant are not budgeted.
#[derive(Debug, Clone, Default)]
pub struct TokenBudgets {
    cfg: BudgetConfig,
    used: HashMap<TenantId, (u64, u64)>,
}

impl TokenBudgets {
    /// Budgets with these settings and nothing spent.
    pub fn new(cfg: BudgetConfig) -> Self {
        Self {
            cfg,
            used: HashMap::new(),
        }
    }

    fn window(&self, now: Tick) -> u64 {
        now.0 / self.cfg.window_ms.max(1)
    }

    /// Tokens a tenant has spent in the window of `now`.
    pub fn used(&self, tenant: &TenantId, now: Tick) -> u64 {
        match self.used.get(tenant) {
            Some(&(w, n)) if w == self.window(now) => n,
            _ => 0,
        }
    }

    /// Whether `tokens` more fit the tenant's budget at `now`.
    pub fn check(&self, tenant: &TenantId, tokens: u64, now: Tick) -> Result<(), BudgetExceeded> {
        let Some(limit) = self
            .cfg
            .limits
            .get(tenant)
            .copied()
            .or(self.cfg.default_limit)
        else {
            return Ok(());
        };
        let remaining = limit.saturating_sub(self.used(tenant, now));
        if tokens <= remaining {
            return Ok(());
        }
        let w = self.cfg.window_ms.max(1);
        Err(BudgetExceeded {
            limit,
            remaining,
            retry_after_ms: w - now.0 % w,
        })
    }

    /// Spends `tokens` of the tenant's budget at `now`.
    pub fn charge(&mut self, tenant: &TenantId, tokens: u64, now: Tick) {
        let w = self.window(now);
        let e = self.used.entry(tenant.clone()).or_insert((w, 0));
        if e.0 != w {
            *e = (w, 0);
        }
        e.1 = e.1.saturating_add(tokens);
    }

    /// Gives back tokens charged in the window of `now` but not used (a job ended early
    /// or was refused after admission).
    pub fn refund(&mut self, tenant: &TenantId, tokens: u64, now: Tick) {
        let w = self.window(now);
        if let Some(e) = self.used.get_mut(tenant).filter(|e| e.0 == w) {
            e.1 = e.1.saturating_sub(tokens);
        }
    }
}

/// A job as admission sees it.
#[derive(Debug, Clone, Copy)]
pub struct AdmissionRequest<'a> {
    /// The requested model: catalog id or canonical reference text.
    pub model: &'a str,
    /// Prompt length in tokens (exact, or [`estimate_prompt_tokens`]).
    pub prompt_tokens: u32,
    /// Requested `max_tokens`, if any.
    pub max_tokens: Option<u32>,
    /// The tenant, if any.
    pub tenant: Option<&'a TenantId>,
}

/// An admitted job: the resolved model and its token figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Catalog id of the model.
    pub model_id: String,
    /// Canonical reference (what workers hold).
    pub model: ModelRef,
    /// Tokens it may generate.
    pub max_tokens: u32,
    /// prompt + max_tokens: what it costs the budget and fair share.
    pub cost_tokens: u32,
}

/// Why admission refused a job (all map to `ADMISSION_REJECT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// No catalog entry has that name.
    #[error("model {0:?} is not in the catalog")]
    UnknownModel(String),
    /// The model is Retired (ORCH-1083).
    #[error("model {0:?} is retired")]
    Retired(String),
    /// Prompt + max_tokens exceed the context.
    #[error(
        "prompt ({prompt_tokens} tokens) + max_tokens ({max_tokens}) exceed the context of {context_length}"
    )]
    ContextTooLong {
        /// Prompt tokens.
        prompt_tokens: u32,
        /// Requested or defaulted max_tokens.
        max_tokens: u32,
        /// The model's context length.
        context_length: u32,
    },
    /// The tenant's budget for this window is spent.
    #[error("token budget of tenant {tenant} is spent ({needed} needed, {} left); retry after {} ms", .exceeded.remaining, .exceeded.retry_after_ms)]
    BudgetExceeded {
        /// The tenant.
        tenant: TenantId,
        /// Tokens the job needs.
        needed: u64,
        /// The budget state.
        exceeded: BudgetExceeded,
    },
}

impl AdmissionError {
    /// The stable code: `ADMISSION_REJECT`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::AdmissionReject
    }

    /// A short machine-readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AdmissionError::UnknownModel(_) => "model_unknown",
            AdmissionError::Retired(_) => "model_retired",
            AdmissionError::ContextTooLong { .. } => "context_too_long",
            AdmissionError::BudgetExceeded { .. } => "token_budget",
        }
    }

    /// The error for the client, with `{reason}` (and `retry_after_ms` for budgets).
    pub fn to_error(&self) -> Error {
        let details = match self {
            AdmissionError::BudgetExceeded { exceeded, .. } => {
                serde_json::json!({"reason": self.reason(), "retry_after_ms": exceeded.retry_after_ms})
            }
            AdmissionError::ContextTooLong { context_length, .. } => {
                serde_json::json!({"reason": self.reason(), "context_length": context_length})
            }
            _ => serde_json::json!({"reason": self.reason()}),
        };
        Error::new(self.code(), self.to_string()).with_details(details)
    }
}

/// A prompt's token count: exact for token input; for text, `ceil(bytes / 4)`, a
/// typical BPE ratio. The worker enforces the exact limit (WORK-3070).
pub fn estimate_prompt_tokens(input: &PromptInput) -> u32 {
    let n = match input {
        PromptInput::Tokens { prompt_tokens } => prompt_tokens.len(),
        PromptInput::Text { prompt } => prompt.len().div_ceil(4),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Runs the admission checks (ORCH-1011). Charges nothing: the caller charges the
/// budget once the job is queued ([`TokenBudgets::charge`]).
pub fn admit(
    catalog: &Catalog,
    cfg: &AdmissionConfig,
    budgets: &TokenBudgets,
    req: &AdmissionRequest<'_>,
    now: Tick,
) -> Result<Admitted, AdmissionError> {
    let entry = catalog
        .get(req.model)
        .ok_or_else(|| AdmissionError::UnknownModel(req.model.to_owned()))?;
    if entry.lifecycle == Lifecycle::Retired {
        return Err(AdmissionError::Retired(entry.model_id.clone()));
    }
    let room = entry.context_length.saturating_sub(req.prompt_tokens);
    let max_tokens = req.max_tokens.unwrap_or(cfg.default_max_tokens.min(room));
    let total = u64::from(req.prompt_tokens) + u64::from(max_tokens);
    if max_tokens == 0 || total > u64::from(entry.context_length) {
        return Err(AdmissionError::ContextTooLong {
            prompt_tokens: req.prompt_tokens,
            max_tokens,
            context_length: entry.context_length,
        });
    }
    if let Some(t) = req.tenant {
        budgets
            .check(t, total, now)
            .map_err(|exceeded| AdmissionError::BudgetExceeded {
                tenant: t.clone(),
                needed: total,
                exceeded,
            })?;
    }
    Ok(Admitted {
        model_id: entry.model_id.clone(),
        model: entry.model.clone(),
        max_tokens,
        cost_tokens: u32::try_from(total).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogEntry;

    fn setup() -> (Catalog, TokenBudgets) {
        let mut c = Catalog::new();
        c.insert(CatalogEntry::new(
            "m",
            "file:/m.gguf".parse().unwrap(),
            100,
            1,
        ))
        .unwrap();
        let t = TenantId("t".into());
        let b = TokenBudgets::new(BudgetConfig {
            window_ms: 1000,
            default_limit: None,
            limits: HashMap::from([(t, 150)]),
        });
        (c, b)
    }

    fn req<'a>(
        model: &'a str,
        p: u32,
        m: Option<u32>,
        t: Option<&'a TenantId>,
    ) -> AdmissionRequest<'a> {
        AdmissionRequest {
            model,
            prompt_tokens: p,
            max_tokens: m,
            tenant: t,
        }
    }

    #[test]
    fn orch_1011_checks() {
        let (mut c, mut b) = setup();
        let cfg = AdmissionConfig::default();
        let now = Tick(10);
        let a = admit(&c, &cfg, &b, &req("m", 10, None, None), now).unwrap();
        assert_eq!((a.max_tokens, a.cost_tokens), (90, 100));
        let e = admit(&c, &cfg, &b, &req("x", 10, None, None), now).unwrap_err();
        assert_eq!(e.to_error().code, ErrorCode::AdmissionReject);
        assert_eq!(e.reason(), "model_unknown");
        let e = admit(&c, &cfg, &b, &req("m", 50, Some(51), None), now).unwrap_err();
        assert!(matches!(e, AdmissionError::ContextTooLong { .. }));
        assert!(admit(&c, &cfg, &b, &req("m", 100, None, None), now).is_err());
        let t = TenantId("t".into());
        admit(&c, &cfg, &b, &req("m", 50, Some(50), Some(&t)), now).unwrap();
        b.charge(&t, 100, now);
        let e = admit(&c, &cfg, &b, &req("m", 50, Some(50), Some(&t)), now).unwrap_err();
        let AdmissionError::BudgetExceeded { exceeded, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!((exceeded.remaining, exceeded.retry_after_ms), (50, 990));
        assert_eq!(e.to_error().details.unwrap()["retry_after_ms"], 990);
        b.refund(&t, 60, now);
        assert_eq!(b.used(&t, now), 40);
        assert!(admit(&c, &cfg, &b, &req("m", 50, Some(50), Some(&t)), Tick(1000)).is_ok());
        c.set_lifecycle("m", Lifecycle::Retired);
        let e = admit(&c, &cfg, &b, &req("m", 1, None, None), now).unwrap_err();
        assert_eq!(e.reason(), "model_retired");
        assert_eq!(
            estimate_prompt_tokens(&PromptInput::Text {
                prompt: "abcde".into()
            }),
            2
        );
    }
}

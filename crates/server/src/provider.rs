//! A payment provider over HTTP, speaking seed 001's contract:
//!
//! - `POST {base}/api/v1/payments` `{order_id, reference, amount, currency}`
//!   → `{id, status}` (`pending`, `succeeded` or `failed`);
//! - `GET {base}/api/v1/payments/order/{order_id}` → the same, or 404;
//! - `POST {base}/api/v1/payments/refund` `{payment_id, order_id,
//!   reference, amount, currency}` → `{id, status}`.
//!
//! Every call carries `Authorization: Bearer <secret>` and, for the two that
//! move money, an `Idempotency-Key` that stays the same through the retries
//! of one attempt chain, so a retry after a lost answer never charges
//! twice. Calls have a connect and a total time limit; transport errors and
//! 5xx answers are retried with exponential backoff and full jitter, other
//! answers are not. A circuit breaker per provider (its base URL) opens
//! after consecutive failures: while open, calls fail at once without
//! reaching the provider; after the open period one probe is let through
//! (half-open), whose outcome closes or reopens it. Nothing here runs
//! inside an order's request: charging and refunding are background jobs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ordo_domain::EntryState;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How calls to providers behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub connect_timeout: Duration,
    /// The most one attempt may take, answer included.
    pub timeout: Duration,
    /// Attempts in one chain (the first and its retries).
    pub attempts: u32,
    /// The longest wait before the second attempt; doubled for each next one.
    pub backoff: Duration,
    /// Consecutive failures that open the circuit.
    pub failures_to_open: u32,
    /// How long an open circuit refuses calls before letting a probe through.
    pub open_for: Duration,
}

impl Policy {
    pub fn from_config(c: &crate::config::PaymentsConfig) -> Policy {
        Policy {
            connect_timeout: Duration::from_millis(c.provider_connect_timeout_ms.max(1)),
            timeout: Duration::from_millis(c.provider_timeout_ms.max(1)),
            attempts: c.provider_attempts.max(1),
            backoff: Duration::from_millis(c.provider_backoff_ms),
            failures_to_open: c.breaker_failures.max(1),
            open_for: Duration::from_millis(c.breaker_open_ms),
        }
    }
}

/// A tenant's provider: where it is and the secret it shares with ordo.
#[derive(Clone, PartialEq, Eq)]
pub struct Provider {
    pub base_url: String,
    pub secret: String,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl From<&ordo_domain::ProviderSettings> for Provider {
    fn from(p: &ordo_domain::ProviderSettings) -> Self {
        Provider {
            base_url: p.base_url.as_str().to_string(),
            secret: p.secret.clone(),
        }
    }
}

/// What a provider says about a payment or a refund.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    /// The provider's id of the payment or refund.
    pub id: String,
    pub status: EntryState,
}

/// A payment asked of the provider.
#[derive(Debug, Clone, Serialize)]
pub struct Charge<'a> {
    pub order_id: &'a str,
    /// ordo's id of the payment, which the provider's webhooks name.
    pub reference: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
}

/// A refund asked of the provider.
#[derive(Debug, Clone, Serialize)]
pub struct RefundCall<'a> {
    /// The provider's id of the payment given back.
    pub payment_id: &'a str,
    pub order_id: &'a str,
    /// ordo's id of the refund, which the provider's webhooks name.
    pub reference: &'a str,
    pub amount: &'a str,
    pub currency: &'a str,
}

/// The least time worth an attempt within a caller's deadline.
const MIN_ATTEMPT: Duration = Duration::from_millis(5);

/// Why a call did not get an answer to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The circuit is open: the provider was not called.
    #[error("{}", self.said_by("payment"))]
    Open,
    /// No answer (connect, time limit, connection lost), after every
    /// attempt (none when a caller's deadline had passed).
    #[error("{}", self.said_by("payment"))]
    Transport { attempts: u32, error: String },
    /// A 5xx answer, after every attempt.
    #[error("{}", self.said_by("payment"))]
    Unavailable { attempts: u32, status: u16 },
    /// A 4xx answer: the provider refused the call (not retried).
    #[error("{}", self.said_by("payment"))]
    Refused { status: u16, body: String },
    /// An answer that is not the contract's.
    #[error("{}", self.said_by("payment"))]
    Invalid(String),
    /// ordo cannot ask the provider for this, for the reason given.
    #[error("{0}")]
    Cannot(String),
    /// The provider does not show what ordo may have asked of it; asked
    /// again later.
    #[error("{0}")]
    NotYet(String),
}

impl ProviderError {
    /// The error in words, naming the provider by its `role` (`payment`,
    /// `tax`, …).
    pub fn said_by(&self, role: &str) -> String {
        match self {
            ProviderError::Open => {
                format!("the {role} provider's circuit is open after repeated failures; not called")
            }
            ProviderError::Transport { attempts: 0, .. } => {
                format!("the {role} provider was not called: the deadline had passed")
            }
            ProviderError::Transport { attempts, error } => {
                format!("the {role} provider did not answer after {attempts} attempts: {error}")
            }
            ProviderError::Unavailable { attempts, status } => {
                format!("the {role} provider failed after {attempts} attempts: HTTP {status}")
            }
            ProviderError::Refused { status, body } => {
                format!("the {role} provider refused the call: HTTP {status}: {body}")
            }
            ProviderError::Invalid(why) => {
                format!("the {role} provider's answer is not understood: {why}")
            }
            ProviderError::Cannot(why) | ProviderError::NotYet(why) => why.clone(),
        }
    }

    /// Whether trying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Open
                | ProviderError::Transport { .. }
                | ProviderError::Unavailable { .. }
                | ProviderError::NotYet(_)
                // Timed out, busy with the same key, locked, too early,
                // too many: the provider may still do it.
                | ProviderError::Refused {
                    status: 408 | 409 | 423 | 425 | 429,
                    ..
                }
        )
    }
}

/// Where a provider's circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    /// Refusing calls until the open period ends.
    Open,
    /// One probe is under way or allowed.
    HalfOpen,
}

impl CircuitState {
    fn gauge(self) -> f64 {
        match self {
            CircuitState::Closed => 0.0,
            CircuitState::HalfOpen => 1.0,
            CircuitState::Open => 2.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Circuit {
    failures: u32,
    opened_at: Option<Instant>,
    probing: bool,
}

/// What a circuit lets a call do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admit {
    Refused,
    Call,
    /// The one call a half-open circuit lets through.
    Probe,
}

/// Gives a probe back if its call ends without an outcome for the
/// breaker (dropped mid-call, or timed out by the caller's deadline), so
/// the circuit is not left waiting for it for good.
struct ProbeGuard<'a> {
    breakers: &'a Breakers,
    key: &'a str,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.breakers.probe_abandoned(self.key);
        }
    }
}

/// The circuit breakers of this node, one per provider.
#[derive(Debug, Default)]
struct Breakers(Mutex<HashMap<String, Circuit>>);

impl Breakers {
    fn with<T>(&self, provider: &str, f: impl FnOnce(&mut Circuit) -> T) -> T {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let circuit = map.entry(provider.to_string()).or_insert(Circuit {
            failures: 0,
            opened_at: None,
            probing: false,
        });
        f(circuit)
    }

    fn state_of(c: &Circuit, policy: &Policy) -> CircuitState {
        match c.opened_at {
            None => CircuitState::Closed,
            Some(at) if at.elapsed() < policy.open_for => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    /// Whether a call may go out now (a half-open circuit lets one probe).
    fn admit(&self, provider: &str, policy: &Policy) -> Admit {
        self.with(provider, |c| match Self::state_of(c, policy) {
            CircuitState::Closed => Admit::Call,
            CircuitState::Open => Admit::Refused,
            CircuitState::HalfOpen if c.probing => Admit::Refused,
            CircuitState::HalfOpen => {
                c.probing = true;
                Admit::Probe
            }
        })
    }

    /// A probe that ended without an outcome (its call was dropped, or
    /// cut short by the caller's deadline): the next call may probe.
    fn probe_abandoned(&self, provider: &str) {
        self.with(provider, |c| c.probing = false);
    }

    fn succeeded(&self, provider: &str) {
        self.with(provider, |c| {
            *c = Circuit {
                failures: 0,
                opened_at: None,
                probing: false,
            }
        });
        report(provider, CircuitState::Closed);
    }

    fn failed(&self, provider: &str, policy: &Policy) {
        let opened = self.with(provider, |c| {
            c.failures = c.failures.saturating_add(1);
            let reopen =
                c.probing || (c.opened_at.is_none() && c.failures >= policy.failures_to_open);
            c.probing = false;
            if reopen {
                c.opened_at = Some(Instant::now());
            }
            reopen
        });
        if opened {
            tracing::warn!(provider, "provider circuit opened after repeated failures");
            report(provider, CircuitState::Open);
        }
    }

    fn snapshot(&self, policy: &Policy) -> Vec<(String, CircuitState, u32)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map
            .iter()
            .map(|(p, c)| (p.clone(), Self::state_of(c, policy), c.failures))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

fn report(provider: &str, state: CircuitState) {
    metrics::gauge!("ordo_provider_circuit_state", "provider" => provider.to_string())
        .set(state.gauge());
}

/// What `/readyz` says about one provider.
#[derive(Debug, Clone, Serialize)]
pub struct CircuitReport {
    pub provider: String,
    pub state: CircuitState,
    pub consecutive_failures: u32,
}

/// Calls payment providers. One per node, shared by every job.
#[derive(Clone)]
pub struct Providers {
    http: reqwest::Client,
    policy: Policy,
    breakers: Arc<Breakers>,
}

/// One attempt's outcome, before the breaker and the retries judge it.
enum Attempt {
    Answered(u16, String),
    Lost(String),
}

impl Providers {
    /// Unless `allow_private`, host names are resolved to public addresses
    /// only (as for webhooks): a provider's name rebound to this machine or
    /// a private network after its URL was checked is not called.
    pub fn new(policy: Policy, allow_private: bool) -> Providers {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ordo-payments/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(crate::webhooks::PublicOnly));
        }
        let http = builder.build().unwrap_or_else(|_| reqwest::Client::new());
        Providers {
            http,
            policy,
            breakers: Arc::new(Breakers::default()),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Every provider this node has called, and its circuit.
    pub fn circuits(&self) -> Vec<CircuitReport> {
        self.breakers
            .snapshot(&self.policy)
            .into_iter()
            .map(|(provider, state, consecutive_failures)| CircuitReport {
                provider,
                state,
                consecutive_failures,
            })
            .collect()
    }

    /// Asks for a payment; `key` names the attempt chain (the same key is
    /// the same payment to the provider).
    pub async fn create_payment(
        &self,
        provider: &Provider,
        charge: &Charge<'_>,
        key: &str,
    ) -> Result<Answer, ProviderError> {
        self.move_money(provider, "/api/v1/payments", charge, key)
            .await
    }

    /// The payment the provider holds for an order, if any.
    pub async fn payment_for_order(
        &self,
        provider: &Provider,
        order_id: &str,
    ) -> Result<Option<Answer>, ProviderError> {
        let path = format!("/api/v1/payments/order/{order_id}");
        self.call(provider, reqwest::Method::GET, &path, None).await
    }

    /// Asks for a refund of a payment; `key` names the attempt chain.
    pub async fn refund(
        &self,
        provider: &Provider,
        refund: &RefundCall<'_>,
        key: &str,
    ) -> Result<Answer, ProviderError> {
        self.move_money(provider, "/api/v1/payments/refund", refund, key)
            .await
    }

    /// A POST that moves money, under the idempotency key `key`.
    async fn move_money(
        &self,
        provider: &Provider,
        path: &str,
        body: &impl Serialize,
        key: &str,
    ) -> Result<Answer, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|e| ProviderError::Invalid(e.to_string()))?;
        self.call(provider, reqwest::Method::POST, path, Some((body, key)))
            .await?
            .ok_or_else(|| ProviderError::Invalid(format!("{path} answered 404")))
    }

    /// One call, retried on transport errors and 5xx; `Ok(None)` for a 404.
    async fn call(
        &self,
        provider: &Provider,
        method: reqwest::Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Option<Answer>, ProviderError> {
        let body = body.map(|(bytes, key)| (bytes, Some(key)));
        let Some(text) = self
            .exchange(provider, (method, path), body, None, None)
            .await?
        else {
            return Ok(None);
        };
        serde_json::from_str::<Answer>(&text)
            .map(Some)
            .map_err(|e| ProviderError::Invalid(format!("{e}: {}", excerpt(&text))))
    }

    /// One call to `{base_url}{path}`, retried on transport errors and 5xx
    /// (with backoff, through the circuit breaker named `circuit`, by
    /// default the base URL), each attempt and the waits between them
    /// within `deadline` when one is given: the body of a 2xx answer,
    /// `Ok(None)` for a 404. An attempt the deadline cut short that timed
    /// out is not held against the provider.
    pub(crate) async fn exchange(
        &self,
        provider: &Provider,
        (method, path): (reqwest::Method, &str),
        body: Option<(Vec<u8>, Option<&str>)>,
        deadline: Option<Instant>,
        circuit: Option<&str>,
    ) -> Result<Option<String>, ProviderError> {
        let base = provider.base_url.trim_end_matches('/');
        let url = format!("{base}{path}");
        let name = circuit.unwrap_or(base);
        let left = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut last = ProviderError::Transport {
            attempts: 0,
            error: "no time was left to call it".into(),
        };
        for attempt in 1..=self.policy.attempts {
            if attempt > 1 {
                let wait = self.backoff(attempt - 1);
                match left() {
                    Some(left) if left <= wait => return Err(last),
                    _ => tokio::time::sleep(wait).await,
                }
            }
            let limit = match left() {
                Some(left) if left < MIN_ATTEMPT => return Err(last),
                Some(left) => left.min(self.policy.timeout),
                None => self.policy.timeout,
            };
            let admitted = self.breakers.admit(name, &self.policy);
            if admitted == Admit::Refused {
                return Err(if attempt == 1 {
                    ProviderError::Open
                } else {
                    last
                });
            }
            let mut guard = ProbeGuard {
                breakers: &self.breakers,
                key: name,
                armed: admitted == Admit::Probe,
            };
            let started = Instant::now();
            let outcome = self
                .attempt(provider, method.clone(), &url, body.as_ref(), limit)
                .await;
            let cut_short = limit < self.policy.timeout && started.elapsed() >= limit;
            metrics::histogram!("ordo_provider_call_seconds", "provider" => name.to_string())
                .record(started.elapsed().as_secs_f64());
            match outcome {
                Attempt::Answered(status, text) if status < 500 => {
                    guard.armed = false;
                    self.breakers.succeeded(name);
                    return match status {
                        200..=299 => Ok(Some(text)),
                        404 => Ok(None),
                        _ => Err(ProviderError::Refused {
                            status,
                            body: excerpt(&text),
                        }),
                    };
                }
                Attempt::Answered(status, _) => {
                    guard.armed = false;
                    self.breakers.failed(name, &self.policy);
                    last = ProviderError::Unavailable {
                        attempts: attempt,
                        status,
                    };
                }
                // Timed out within what the caller's deadline left it: not
                // the provider's failure (the guard gives a probe back).
                Attempt::Lost(error) if cut_short => {
                    last = ProviderError::Transport {
                        attempts: attempt,
                        error,
                    };
                }
                Attempt::Lost(error) => {
                    guard.armed = false;
                    self.breakers.failed(name, &self.policy);
                    last = ProviderError::Transport {
                        attempts: attempt,
                        error,
                    };
                }
            }
            tracing::debug!(provider = name, attempt, error = %last, "provider call failed");
        }
        Err(last)
    }

    async fn attempt(
        &self,
        provider: &Provider,
        method: reqwest::Method,
        url: &str,
        body: Option<&(Vec<u8>, Option<&str>)>,
        limit: Duration,
    ) -> Attempt {
        let mut request = self
            .http
            .request(method, url)
            .timeout(limit)
            .bearer_auth(&provider.secret)
            .header("accept", "application/json");
        if let Some((bytes, key)) = body {
            request = request
                .header("content-type", "application/json")
                .body(bytes.clone());
            if let Some(key) = key {
                request = request.header("idempotency-key", *key);
            }
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.text().await {
                    Ok(text) => Attempt::Answered(status, text),
                    Err(e) => Attempt::Lost(describe(&e)),
                }
            }
            Err(e) => Attempt::Lost(describe(&e)),
        }
    }

    /// A random wait up to backoff × 2^(retry − 1) (full jitter).
    fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .policy
            .backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(16));
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.to_string()
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(300).collect()
}

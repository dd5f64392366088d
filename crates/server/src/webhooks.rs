//! Sending a webhook delivery: the event as the feed shows it, signed with
//! every secret the endpoint signs with, posted with a time limit; the
//! attempt is recorded whatever happens, and the job says when to try
//! again.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use ordo_domain::{Timestamp, WebhookEndpoint};
use ordo_store::{DeliveryAttempt, DeliveryStatus, FinishedDelivery, JobOutcome, Outgoing};
use sha2::Sha256;

use crate::api::events::FeedEventResponse;
use crate::app::AppState;
use crate::jobs::RetryPolicy;

/// The most of a receiver's answer kept with an attempt.
const EXCERPT_CHARS: usize = 500;

/// The HTTP client deliveries are sent with: no redirects (a receiver
/// must answer at its own URL), a time limit.
/// Unless `allow_private`, host names are resolved by [`PublicOnly`], so a
/// name that points at this machine or a private network (set up after
/// the URL was checked, or rebound since) is refused when it is called.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ordo-webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
    }
    builder.build().unwrap_or_else(|_| reqwest::Client::new())
}

/// Resolves a delivery's host name to its public addresses only.
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let public = public_only(name.as_str(), found)?;
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The public addresses among those a name resolved to; an error naming
/// the host when there are none.
fn public_only(
    host: &str,
    found: Vec<std::net::SocketAddr>,
) -> Result<Vec<std::net::SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let public: Vec<_> = found
        .into_iter()
        .filter(|a| !ordo_domain::webhook::is_private(a.ip()))
        .collect();
    if public.is_empty() {
        return Err(format!(
            "{host} resolves only to this machine or a private network, which webhooks may not reach"
        )
        .into());
    }
    Ok(public)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one `v1` per
/// secret the endpoint signs with (two while a rotated secret overlaps).
pub fn signature(endpoint: &WebhookEndpoint, now: Timestamp, body: &[u8]) -> String {
    let t = now.unix_millis().div_euclid(1000);
    let mut header = format!("t={t}");
    for secret in endpoint.signing_secrets(now) {
        header.push_str(",v1=");
        header.push_str(&hex::encode(
            mac(secret.expose(), t, body).finalize().into_bytes(),
        ));
    }
    header
}

/// HMAC-SHA256 of `"<t>.<body>"` under `secret`, not yet finalised.
fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Why a signed request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadSignature {
    Missing,
    Malformed,
    /// Its time is further from now than the tolerance (a replay).
    Expired,
    Mismatch,
}

impl BadSignature {
    pub fn describe(self) -> &'static str {
        match self {
            BadSignature::Missing => "the request is not signed",
            BadSignature::Malformed => "the signature header is not t=<unix seconds>,v1=<hex>",
            BadSignature::Expired => "the signature's time is more than 5 minutes from now",
            BadSignature::Mismatch => "the signature does not match the body",
        }
    }
}

/// The most `v1` signatures one header may carry (a sender rotating its
/// secret sends two).
const MAX_SIGNATURES: usize = 5;

/// How far a signature's time may be from now, in seconds.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Checks a `t=<unix seconds>,v1=<hex>` header (the scheme ordo signs its
/// own webhooks with) against `body` under `secret`: any `v1` may match,
/// compared in constant time, and `t` must be within
/// [`SIGNATURE_TOLERANCE_SECS`] of `now`.
pub fn verify(
    header: Option<&str>,
    secret: &str,
    body: &[u8],
    now: Timestamp,
) -> Result<(), BadSignature> {
    let header = header.ok_or(BadSignature::Missing)?;
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) if candidates.len() < MAX_SIGNATURES => {
                candidates.push(hex::decode(v).map_err(|_| BadSignature::Malformed)?)
            }
            Some(("v1", _)) => return Err(BadSignature::Malformed),
            _ => {}
        }
    }
    let t = t.ok_or(BadSignature::Malformed)?;
    if candidates.is_empty() {
        return Err(BadSignature::Malformed);
    }
    let now = now.unix_millis().div_euclid(1000);
    if now.abs_diff(t) > SIGNATURE_TOLERANCE_SECS.unsigned_abs() {
        return Err(BadSignature::Expired);
    }
    // The body is hashed once; each candidate is compared in constant time.
    let expected = mac(secret, t, body);
    let matches = candidates
        .iter()
        .any(|c| expected.clone().verify_slice(c).is_ok());
    if matches {
        Ok(())
    } else {
        Err(BadSignature::Mismatch)
    }
}

/// Endpoints as read in the last second, so a batch of deliveries reads
/// each endpoint once (a change to an endpoint shows within a second).
#[derive(Default)]
pub struct Endpoints {
    seen: std::sync::Mutex<
        std::collections::HashMap<EndpointKey, (Instant, Option<WebhookEndpoint>)>,
    >,
}

type EndpointKey = (ordo_domain::TenantId, ordo_domain::WebhookEndpointId);

impl Endpoints {
    async fn get(
        &self,
        state: &AppState,
        tenant: ordo_domain::TenantId,
        id: ordo_domain::WebhookEndpointId,
    ) -> Result<Option<WebhookEndpoint>, ordo_store::StoreError> {
        let fresh = self.seen.lock().ok().and_then(|seen| {
            seen.get(&(tenant, id))
                .filter(|(at, _)| at.elapsed() < Duration::from_secs(1))
                .map(|(_, e)| e.clone())
        });
        if let Some(endpoint) = fresh {
            return Ok(endpoint);
        }
        let endpoint = state.store().webhook_endpoint(tenant, id).await?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert((tenant, id), (Instant::now(), endpoint.clone()));
        }
        Ok(endpoint)
    }

    fn forget(&self, tenant: ordo_domain::TenantId, id: ordo_domain::WebhookEndpointId) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&(tenant, id));
        }
    }
}

/// Sends a batch of claimed deliveries side by side (a slow receiver holds
/// up no other) and records every attempt, with when each is tried next,
/// in one write.
pub async fn deliver_all(
    state: &AppState,
    client: &reqwest::Client,
    endpoints: &Endpoints,
    batch: Vec<Outgoing>,
    policy: &RetryPolicy,
) {
    if batch.is_empty() {
        return;
    }
    let store = state.store();
    let sends = batch.into_iter().map(|outgoing| async move {
        let job = outgoing.job.clone();
        let (outcome, attempt, status) = match send(state, client, endpoints, outgoing, policy).await
        {
            Ok(sent) => sent,
            Err(e) => {
                // Not sent (the store could not be asked about the
                // endpoint): tried again after a wait, like a failure.
                tracing::warn!(delivery = %job.key, error = %e, "a delivery could not be made; it will be retried");
                let error = format!("not sent: {e}");
                let (outcome, status) = failed(policy, &job, error.clone());
                let attempt = unsent(Timestamp::now(), error);
                (outcome, attempt, status)
            }
        };
        FinishedDelivery {
            job,
            outcome,
            attempt,
            status,
        }
    });
    let finished: Vec<FinishedDelivery> = futures_util::future::join_all(sends).await;
    let keys: Vec<String> = finished.iter().map(|f| f.job.key.clone()).collect();
    match store.finish_deliveries(finished).await {
        Ok(ended) => {
            for (key, ended) in keys.iter().zip(ended) {
                if !ended {
                    tracing::warn!(job = %key, "a delivery's claim ran out before it finished; another node has it");
                }
            }
        }
        Err(e) => {
            tracing::warn!(deliveries = keys.len(), error = %e, "could not record how deliveries went; they will be sent again")
        }
    }
}

/// Sends one delivery: how its job ends, and the attempt to record with the
/// delivery's new status.
async fn send(
    state: &AppState,
    client: &reqwest::Client,
    endpoints: &Endpoints,
    outgoing: Outgoing,
    policy: &RetryPolicy,
) -> Result<(JobOutcome, DeliveryAttempt, DeliveryStatus), ordo_store::StoreError> {
    let Outgoing {
        job,
        delivery,
        event,
    } = outgoing;
    let tenant = delivery.tenant_id;
    let now = Timestamp::now();
    let give_up = |error: &str| {
        let outcome = JobOutcome::Dead {
            error: error.into(),
        };
        (outcome, unsent(now, error.into()), DeliveryStatus::Dead)
    };
    let endpoint = match endpoints.get(state, tenant, delivery.endpoint_id).await? {
        Some(e) if e.active => Some(e),
        // Given up only on what the store says now, not on the cache (the
        // endpoint may have been turned back on within the second).
        _ => {
            endpoints.forget(tenant, delivery.endpoint_id);
            endpoints.get(state, tenant, delivery.endpoint_id).await?
        }
    };
    let endpoint = match endpoint {
        Some(e) if e.active => e,
        Some(_) => return Ok(give_up("the endpoint is inactive")),
        None => return Ok(give_up("the endpoint was removed")),
    };
    let Some(event) = event else {
        return Ok(give_up("the event is no longer in the feed"));
    };
    let body = FeedEventResponse::from_feed(&tenant.to_string(), event)
        .ok()
        .and_then(|r| serde_json::to_vec(&r).ok())
        .unwrap_or_default();
    let started = Instant::now();
    let sent = client
        .post(endpoint.url.as_str())
        .header("Content-Type", "application/json")
        .header("Ordo-Event-Id", delivery.event_id.to_string())
        .header("Ordo-Delivery-Id", delivery.id.to_string())
        .header("Ordo-Signature", signature(&endpoint, now, &body))
        .body(body)
        .send()
        .await;
    let (status_code, error, excerpt) = match sent {
        Ok(response) => {
            let code = response.status();
            let text = response.text().await.unwrap_or_default();
            let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
            let error = (!code.is_success()).then(|| format!("the receiver answered {code}"));
            (
                Some(code.as_u16()),
                error,
                Some(excerpt).filter(|e| !e.is_empty()),
            )
        }
        Err(e) if e.is_timeout() => (
            None,
            Some(format!(
                "no answer within {} s",
                state.config().webhooks.timeout_secs
            )),
            None,
        ),
        Err(e) => (None, Some(format!("could not deliver: {e}")), None),
    };
    let attempt = DeliveryAttempt {
        at: now,
        status_code,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        error: error.clone(),
        response_excerpt: excerpt,
    };
    let (outcome, status) = match error {
        None => (JobOutcome::Done, DeliveryStatus::Succeeded),
        Some(error) => failed(policy, &job, error),
    };
    metrics::counter!("ordo_webhook_deliveries_total", "outcome" => status.as_str()).increment(1);
    let mut attempt = attempt;
    let endpoint_id = endpoint.id;
    if status == DeliveryStatus::Dead
        && disable_if_failing(state, endpoint, policy.max_age_ms).await?
    {
        endpoints.forget(tenant, endpoint_id);
        attempt.error = attempt
            .error
            .map(|e| format!("{e}; the endpoint kept failing and was disabled"));
    }
    Ok((outcome, attempt, status))
}

/// How a delivery goes on after a failed attempt: retried later (failed),
/// or dead past its maximum age.
fn failed(
    policy: &RetryPolicy,
    job: &ordo_store::Job,
    error: String,
) -> (JobOutcome, DeliveryStatus) {
    match policy.after_failure(job, Timestamp::now(), error) {
        dead @ JobOutcome::Dead { .. } => (dead, DeliveryStatus::Dead),
        retry => (retry, DeliveryStatus::Failed),
    }
}

/// An attempt that never reached the receiver.
fn unsent(at: Timestamp, error: String) -> DeliveryAttempt {
    DeliveryAttempt {
        at,
        status_code: None,
        latency_ms: 0,
        error: Some(error),
        response_excerpt: None,
    }
}

/// Turns an endpoint off when nothing sent to it has succeeded for the
/// maximum age (its deliveries keep dying); says whether it did. It stays
/// listed, with when and why, until someone sets it active again.
async fn disable_if_failing(
    state: &AppState,
    mut endpoint: WebhookEndpoint,
    max_age_ms: i64,
) -> Result<bool, ordo_store::StoreError> {
    // The delivery that just died was made after the endpoint and failed
    // for the maximum age, so the endpoint is at least that old.
    let now = Timestamp::now();
    let since = now.plus_millis(-max_age_ms);
    let store = state.store();
    if store
        .endpoint_succeeded_since(endpoint.tenant_id, endpoint.id, since)
        .await?
    {
        return Ok(false);
    }
    let hours = max_age_ms / 3_600_000;
    let reason = if hours >= 1 {
        format!("every delivery failed for {hours} hours")
    } else {
        format!("every delivery failed for {} seconds", max_age_ms / 1000)
    };
    tracing::warn!(endpoint = %endpoint.id, url = endpoint.url.as_str(), %reason, "disabling a webhook endpoint");
    endpoint.active = false;
    endpoint.disabled = Some((now, reason));
    endpoint.updated_at = now;
    store.save_webhook_endpoint(endpoint, false).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_domain::{TenantId, WebhookEndpointId, WebhookSecret, WebhookUrl};

    #[test]
    fn signatures_are_checked_in_bounded_time_whatever_the_header() {
        let now = Timestamp::now();
        let t = now.unix_millis().div_euclid(1000);
        let body = b"{}";
        let good = hex::encode(mac("s3cret", t, body).finalize().into_bytes());
        let header = |v: String| verify(Some(&v), "s3cret", body, now);
        assert_eq!(header(format!("t={t},v1=00,v1={good}")), Ok(()));
        assert_eq!(
            header(format!(
                "t={t},v1={}{}",
                if good.starts_with('0') { '1' } else { '0' },
                &good[1..]
            )),
            Err(BadSignature::Mismatch)
        );
        // A header of many signatures is refused before any is computed.
        let many = format!("t={t}{}", ",v1=".repeat(6));
        assert_eq!(header(many), Err(BadSignature::Malformed));
        // Times at the edge of i64 neither overflow nor pass.
        for far in [i64::MIN, i64::MAX, t - 301] {
            assert_eq!(
                header(format!("t={far},v1={good}")),
                Err(BadSignature::Expired)
            );
        }
        assert_eq!(
            verify(None, "s3cret", body, now),
            Err(BadSignature::Missing)
        );
        assert_eq!(header(format!("v1={good}")), Err(BadSignature::Malformed));
    }

    #[test]
    fn names_resolving_to_private_addresses_are_refused() {
        let addr = |s: &str| s.parse::<std::net::SocketAddr>().expect("addr");
        let err = public_only(
            "evil.example",
            vec![addr("127.0.0.1:0"), addr("10.0.0.5:0")],
        )
        .expect_err("private only");
        assert!(
            err.to_string().contains("evil.example resolves only"),
            "{err}"
        );
        assert_eq!(
            public_only(
                "mixed.example",
                vec![addr("192.168.1.2:0"), addr("93.184.216.34:0")]
            )
            .expect("a public one"),
            [addr("93.184.216.34:0")]
        );
    }

    #[tokio::test]
    async fn the_client_refuses_a_name_that_points_here() {
        // `localhost` resolves to this machine on every system.
        let client = client(Duration::from_secs(2), false);
        let err = client
            .post("http://localhost:9/")
            .send()
            .await
            .expect_err("refused");
        let text = format!("{err:?}");
        assert!(text.contains("resolves only to this machine"), "{text}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_the_time_and_the_body() {
        let now = Timestamp::from_unix_millis(1_732_406_400_123);
        let mut endpoint = WebhookEndpoint {
            tenant_id: TenantId::new(),
            id: WebhookEndpointId::new(),
            url: WebhookUrl::parse("https://example.com/", false).expect("url"),
            description: None,
            event_types: vec![],
            active: true,
            secret: WebhookSecret::from_stored("whsec_test".into()),
            previous_secret: None,
            created_at: now,
            updated_at: now,
            disabled: None,
        };
        // Worked out independently: printf '1732406400.{"id":"evt_1"}' |
        // openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            signature(&endpoint, now, br#"{"id":"evt_1"}"#),
            "t=1732406400,v1=8fb2ba1ee3592df51723f4ca39ec35af532159d06ba0ab1479d0e010e6855924"
        );
        endpoint.rotate_secret(now, 60_000);
        assert_eq!(signature(&endpoint, now, b"x").matches("v1=").count(), 2);
    }
}

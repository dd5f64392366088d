//! Charging and refunding through a tenant's payment provider, as jobs.
//!
//! A charge (`POST /v1/orders/{id}/charges`) or a refund the provider pays
//! back (a cancelled order's) is a pending entry on the order's ledger and
//! a job the store scheduled in the same transaction. The job calls the
//! provider under an idempotency key that is the entry's id (so a retry,
//! on this node or another, never moves money twice) and records what the
//! provider answered. A call that fails for a while (no answer, 5xx, an
//! open circuit) is noted on the order's timeline and retried with the job
//! queue's backoff; given up, the entry stays pending with the failure in
//! view. A refusal (4xx) fails the entry.

use ordo_domain::{
    Actor, Entry, EntryState, Order, OrderId, PaymentId, RefundId, Refusal, Settlement, TenantId,
    Timestamp,
};
use ordo_store::{Job, JobOutcome, OrderChange, OrderLookup, Scope, StoreError};

use crate::app::AppState;
use crate::jobs::RetryPolicy;
use crate::provider::{Answer, Charge, Provider, ProviderError, RefundCall};

/// What a charge or refund job is about.
struct Target {
    tenant: TenantId,
    order: OrderId,
    entry: Entry,
}

/// Runs a charge or refund job.
pub async fn run(
    state: &AppState,
    job: &Job,
    policy: &RetryPolicy,
) -> Result<JobOutcome, StoreError> {
    let now = Timestamp::now();
    let Some((tenant, order, entry)) = ordo_store::provider_work_of(job) else {
        return Ok(JobOutcome::Dead {
            error: format!("a {} job without its order and entry", job.kind),
        });
    };
    let target = Target {
        tenant,
        order,
        entry,
    };
    let scope = Scope::tenant(target.tenant);
    let Some(order) = state
        .store()
        .order(&scope, &OrderLookup::Id(target.order))
        .await?
    else {
        return Ok(JobOutcome::Done);
    };
    if order.entry_state(target.entry) != Some(EntryState::Pending) {
        // Settled meanwhile (a webhook came first): nothing to do.
        return Ok(JobOutcome::Done);
    }
    let settings = state
        .settings()
        .get(state.store(), target.tenant)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let called = match settings.payment_provider.as_ref().map(Provider::from) {
        Some(provider) => call(state, &provider, &order, target.entry, job.attempts).await,
        None => Err(ProviderError::Cannot(
            "no payment provider is set for this shop (settings.payment_provider)".into(),
        )),
    };
    match called {
        Ok(answer) => {
            let pending = answer.status == EntryState::Pending;
            let report = Settlement {
                state: answer.status,
                provider_id: Some(answer.id),
                error: None,
            };
            record(state, &target, move |o, now| {
                o.settle(target.entry, report, true, now)
            })
            .await?;
            if !pending {
                return Ok(JobOutcome::Done);
            }
            // Pending at the provider: its webhook will say how it ends;
            // meanwhile the job asks again now and then, and says so on
            // the timeline when it stops asking.
            let waiting = "the provider has not settled it yet";
            let outcome = policy.after_failure(job, now, waiting.into());
            if matches!(outcome, JobOutcome::Dead { .. }) {
                record(state, &target, move |o, now| {
                    o.provider_call_failed(target.entry, waiting.into(), None, now)
                })
                .await?;
            }
            Ok(outcome)
        }
        Err(e) if e.is_transient() || matches!(e, ProviderError::Invalid(_)) => {
            let error = e.to_string();
            let outcome = policy.after_failure(job, now, error.clone());
            let retry_at = match &outcome {
                JobOutcome::Retry { at, .. } => Some(*at),
                _ => None,
            };
            record(state, &target, move |o, now| {
                o.provider_call_failed(target.entry, error, retry_at, now)
            })
            .await?;
            Ok(outcome)
        }
        Err(e) => {
            let report = Settlement {
                state: EntryState::Failed,
                provider_id: None,
                error: Some(e.to_string()),
            };
            record(state, &target, move |o, now| {
                o.settle(target.entry, report, true, now)
            })
            .await?;
            Ok(JobOutcome::Done)
        }
    }
}

/// The provider call an entry needs.
async fn call(
    state: &AppState,
    provider: &Provider,
    order: &Order,
    entry: Entry,
    attempts: u32,
) -> Result<Answer, ProviderError> {
    let providers = state.providers();
    let order_id = order.id.to_string();
    let currency = order.currency.code();
    match entry {
        Entry::Payment(id) => {
            let Some(payment) = order.payment(id) else {
                return Err(ProviderError::Cannot("the payment is gone".into()));
            };
            let known = payment.provider.as_ref().and_then(|p| p.id.clone());
            if known.is_some() || order.status == ordo_domain::OrderStatus::Cancelled {
                // Charged before (its answer said pending), or the order was
                // cancelled before the charge went out: ask, never charge.
                let asked =
                    attempts > 0 || payment.provider.as_ref().is_some_and(|p| p.error.is_some());
                return lookup(state, provider, order, id, known, asked).await;
            }
            let amount = order.currency.format_amount(payment.amount);
            let reference = id.to_string();
            let charge = Charge {
                order_id: &order_id,
                reference: &reference,
                amount: &amount,
                currency,
            };
            providers
                .create_payment(provider, &charge, &reference)
                .await
        }
        Entry::Refund(id) => {
            let refund = order.refund(id);
            let paid = refund
                .and_then(|r| r.payment_id)
                .and_then(|p| order.payment(p))
                .and_then(|p| p.provider.as_ref())
                .and_then(|p| p.id.clone());
            let (Some(refund), Some(paid)) = (refund, paid) else {
                return Err(ProviderError::Cannot(
                    "the payment it gives back has no provider id".into(),
                ));
            };
            let amount = order.currency.format_amount(refund.amount);
            let reference = id.to_string();
            let call = RefundCall {
                payment_id: &paid,
                order_id: &order_id,
                reference: &reference,
                amount: &amount,
                currency,
            };
            providers.refund(provider, &call, &reference).await
        }
    }
}

/// What the provider holds for a payment ordo may have asked for: found,
/// it is settled as the provider says; not found on a cancelled order, it
/// ends failed if it was never `asked` for, and is asked about again later
/// if it may have been.
async fn lookup(
    state: &AppState,
    provider: &Provider,
    order: &Order,
    id: PaymentId,
    known: Option<String>,
    asked: bool,
) -> Result<Answer, ProviderError> {
    let order_id = order.id.to_string();
    let found = state
        .providers()
        .payment_for_order(provider, &order_id)
        .await?;
    // The order's other payments through the provider are not this one.
    let others: Vec<&str> = order
        .ledger
        .payments
        .iter()
        .filter(|p| p.id != id)
        .filter_map(|p| p.provider.as_ref()?.id.as_deref())
        .collect();
    let ours = |a: &Answer, known: &Option<String>| {
        known.as_ref().is_none_or(|k| *k == a.id) && !others.contains(&a.id.as_str())
    };
    match (found, known) {
        (Some(a), known) if ours(&a, &known) => Ok(a),
        // The provider has it under its id, and has not settled it.
        (_, Some(id)) => Ok(Answer {
            id,
            status: EntryState::Pending,
        }),
        // Never asked: the charge is called off.
        (_, None) if !asked => Err(ProviderError::Cannot(
            "the order was cancelled before it was charged".into(),
        )),
        // An earlier call may have reached it: ordo does not guess.
        (_, None) => Err(ProviderError::NotYet(
            "the provider does not show the charge of this cancelled order yet".into(),
        )),
    }
}

/// Records on the order what the provider said or what a call came to.
async fn record(
    state: &AppState,
    target: &Target,
    change: impl FnOnce(&mut Order, Timestamp) -> Result<Option<ordo_domain::EventDraft>, Refusal>
        + Send
        + 'static,
) -> Result<(), StoreError> {
    // Settings that cannot be read now: the order is not completed by
    // this change (a later one, or the staff, will), nor its buyer told.
    let settings = state
        .settings()
        .get(state.store(), target.tenant)
        .await
        .ok();
    let auto_complete = settings.as_ref().is_some_and(|s| s.auto_complete);
    let notify = settings.is_some_and(|s| s.messaging.reaches_buyers());
    let change = OrderChange::new(move |o, _book| change(o, Timestamp::now()))
        .completing(auto_complete)
        .notifying(notify);
    let done = state
        .store()
        .change_order(
            Scope::tenant(target.tenant),
            OrderLookup::Id(target.order),
            None,
            Actor::payment_provider(),
            change,
        )
        .await;
    match done {
        Ok(_) => Ok(()),
        // The entry ended otherwise meanwhile (a webhook said so first).
        Err(StoreError::Refused(refusal)) => {
            tracing::warn!(order = %target.order, error = %refusal, "a provider report was not recorded");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The refund and payment ids a provider's webhook may name.
pub fn entry_of(reference: &str) -> Option<Entry> {
    if let Ok(id) = reference.parse::<PaymentId>() {
        return Some(Entry::Payment(id));
    }
    reference.parse::<RefundId>().ok().map(Entry::Refund)
}

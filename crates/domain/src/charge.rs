//! Money a payment provider moves: card charges ordo asks for, what the
//! provider says of them, and the refunds that give money back, including
//! those cancelling a paid order puts under way (compensation).
//!
//! An entry the provider moves starts `pending`; the provider's answers
//! and webhooks settle it (`succeeded` or `failed`, for good: a late or
//! repeated report never moves it back), and failed calls are noted on the
//! timeline while they are retried. Refunds of money taken by hand are
//! pending until the shop says it paid them back.

use serde_json::{json, Value};

use crate::event::{Actor, EventDraft, EventType};
use crate::field::FieldError;
use crate::ids::{PaymentId, RefundId};
use crate::ledger::{EntryState, LedgerError, Payment, PaymentMethod, Refund, ThroughProvider};
use crate::order::{Order, Refusal};
use crate::status::OrderStatus;
use crate::timestamp::Timestamp;

/// The reason refunds of a cancellation carry.
pub const CANCELLED: &str = "order cancelled";

/// What the refunds [`Order::give_back`] makes say, and how the part paid
/// back by hand stands.
#[derive(Debug, Clone)]
pub(crate) struct GiveBack {
    pub reason: String,
    pub lines: Vec<crate::ledger::RefundLine>,
    /// The state of the refund the shop pays back by hand.
    pub by_hand: EntryState,
    pub actor: Actor,
}

impl GiveBack {
    /// The refunds of a cancelled order: by the system, pending until the
    /// provider or the shop says they were paid back.
    fn cancelled() -> GiveBack {
        GiveBack {
            reason: CANCELLED.into(),
            lines: Vec::new(),
            by_hand: EntryState::Pending,
            actor: Actor::system(),
        }
    }
}

/// A payment or a refund on an order's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    Payment(PaymentId),
    Refund(RefundId),
}

impl Entry {
    fn what(self) -> &'static str {
        match self {
            Entry::Payment(_) => "payment",
            Entry::Refund(_) => "refund",
        }
    }
}

/// How an entry stands after a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub state: EntryState,
    /// The provider's id of the entry, when it says it.
    pub provider_id: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

impl Order {
    /// Asks the tenant's payment provider to charge `amount` (by default
    /// what is due and not already being charged): a pending card payment
    /// with id `id`, which the store pairs with a charge job
    /// (`payment.recorded`).
    pub fn request_charge(
        &mut self,
        id: PaymentId,
        amount: Option<i64>,
        actor: Actor,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        if self.status == OrderStatus::Cancelled {
            return Err(self.ledger_refusal(LedgerError::Conflict(
                "the order is cancelled; nothing can be charged",
            )));
        }
        let t = self.ledger.totals(self.total);
        let chargeable = (t.due - t.pending).max(0);
        let amount = amount.unwrap_or(chargeable);
        if amount <= 0 || amount > chargeable {
            let error = if chargeable == 0 {
                FieldError::new("amount", "nothing is left to charge on this order")
                    .accepted("an order with an amount due not already being charged")
            } else {
                FieldError::new("amount", "not an amount this order can be charged")
                    .value(self.currency.format_amount(amount))
                    .accepted(format!(
                        "more than zero and at most {}",
                        self.currency.format_amount(chargeable)
                    ))
            };
            return Err(Refusal::Invalid(error.into()));
        }
        let payment = Payment {
            id,
            method: PaymentMethod::Card,
            amount,
            transaction_id: None,
            state: EntryState::Pending,
            paid_at: now,
            recorded_at: now,
            recorded_by: actor,
            provider: Some(ThroughProvider::default()),
        };
        let data = json!({ "payment": payment.to_json(self.currency) });
        if let Err(e) = self.ledger.pay(payment) {
            return Err(self.ledger_refusal(e));
        }
        Ok(self.ledger_event(EventType::PaymentRecorded, data, now))
    }

    /// What whoever moves an entry's money says of it: the provider (by an
    /// answer or a webhook, `by_provider`) or the shop, by hand, of a
    /// refund it pays back itself. A report that changes nothing (a
    /// repeat, or `pending` again) is `Ok(None)`; one that would move an
    /// ended entry is refused. A payment that succeeds on a cancelled
    /// order is given back at once through the provider.
    pub fn settle(
        &mut self,
        entry: Entry,
        report: Settlement,
        by_provider: bool,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let (state, through) = match self.entry_mut(entry) {
            Some(found) => found,
            None => return Err(self.ledger_refusal(LedgerError::Unknown(entry.what()))),
        };
        // The shop speaks for an entry the provider moves only once ordo
        // gave up calling the provider about it.
        let refused = match (through.as_ref(), by_provider) {
            (None, true) => Some("the entry was not made through the payment provider"),
            (Some(t), false) if !t.given_up => {
                Some("the payment provider moves this money and says when it has")
            }
            _ => None,
        };
        if let Some(why) = refused {
            return Err(self.ledger_refusal(LedgerError::Conflict(why)));
        }
        let current = *state;
        if !current.can_become(report.state) {
            return Err(self.ledger_refusal(LedgerError::Ended {
                what: entry.what(),
                current,
                next: report.state,
            }));
        }
        // The provider's id is learnt once; a report under another id
        // names nothing new.
        let new_id = match (through.as_ref(), &report.provider_id) {
            (Some(t), Some(_)) => t.id.is_none(),
            _ => false,
        };
        if current == report.state && !new_id {
            return Ok(None);
        }
        *state = report.state;
        if let Some(through) = through {
            if through.id.is_none() {
                through.id.clone_from(&report.provider_id);
            }
            through.error = match report.state {
                EntryState::Failed => report.error.clone(),
                _ => None,
            };
        }
        let mut data = json!({});
        if let Some(error) = &report.error {
            data["error"] = json!(error);
        }
        let event_type = match (entry, report.state) {
            (Entry::Payment(_), EntryState::Pending) => EventType::PaymentProcessing,
            (Entry::Payment(_), EntryState::Succeeded) => EventType::PaymentSucceeded,
            (Entry::Payment(_), EntryState::Failed) => EventType::PaymentFailed,
            (Entry::Refund(_), EntryState::Pending) => EventType::RefundProcessing,
            (Entry::Refund(_), EntryState::Succeeded) => EventType::RefundSucceeded,
            (Entry::Refund(_), EntryState::Failed) => EventType::RefundFailed,
        };
        if let Entry::Payment(id) = entry {
            if report.state == EntryState::Succeeded && self.status == OrderStatus::Cancelled {
                let refunds = self.give_back(Some(id), i64::MAX, GiveBack::cancelled(), now);
                data["refunds"] = json!(refunds);
            }
        }
        self.describe_entry(entry, &mut data);
        Ok(Some(self.ledger_event(event_type, data, now)))
    }

    /// A call to the provider about an entry failed; it is tried again at
    /// `retry_at`, or, when that is `None`, given up: the entry stays
    /// pending, with the failure on the timeline for the shop to act on.
    /// Nothing happens to an entry that is no longer pending.
    pub fn provider_call_failed(
        &mut self,
        entry: Entry,
        error: String,
        retry_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let Some((state, Some(through))) = self.entry_mut(entry) else {
            return Err(self.ledger_refusal(LedgerError::Unknown(entry.what())));
        };
        if *state != EntryState::Pending {
            return Ok(None);
        }
        through.error = Some(error.clone());
        through.given_up = retry_at.is_none();
        let mut data = json!({ "error": error });
        match retry_at {
            Some(at) => data["next_attempt_at"] = json!(at),
            None => data["given_up"] = json!(true),
        }
        self.describe_entry(entry, &mut data);
        let event_type = match entry {
            Entry::Payment(_) => EventType::PaymentAttemptFailed,
            Entry::Refund(_) => EventType::RefundAttemptFailed,
        };
        Ok(Some(self.ledger_event(event_type, data, now)))
    }

    /// Puts under way the refunds of what this (cancelled) order holds:
    /// through the provider for what it charged, by hand for the rest.
    /// Returns them as the event shows them.
    pub(crate) fn compensate(&mut self, now: Timestamp) -> Vec<Value> {
        let all = self.ledger.refundable();
        self.give_back(None, all, GiveBack::cancelled(), now)
    }

    /// Refunds `amount` (at most what is refundable) of the money held: of
    /// payment `only`'s, or of any, the provider's charges first; what
    /// they do not cover is paid back by hand, unless `only` is given.
    pub(crate) fn give_back(
        &mut self,
        only: Option<PaymentId>,
        amount: i64,
        mut terms: GiveBack,
        now: Timestamp,
    ) -> Vec<Value> {
        let mut left = self.ledger.refundable().min(amount);
        let mut refunds = Vec::new();
        let charged: Vec<(PaymentId, i64)> = self
            .ledger
            .payments
            .iter()
            .filter(|p| p.state == EntryState::Succeeded && p.provider.is_some())
            .filter(|p| only.is_none_or(|id| id == p.id))
            .map(|p| (p.id, p.amount))
            .collect();
        for (payment, paid) in charged {
            let out: i64 = self
                .ledger
                .refunds
                .iter()
                .filter(|r| r.payment_id == Some(payment) && r.state != EntryState::Failed)
                .map(|r| r.amount)
                .sum();
            let amount = (paid - out).min(left);
            if amount > 0 {
                left -= amount;
                refunds.push(self.refund_under_way(Some(payment), amount, &mut terms, now));
            }
        }
        if only.is_none() && left > 0 {
            refunds.push(self.refund_under_way(None, left, &mut terms, now));
        }
        refunds
    }

    fn refund_under_way(
        &mut self,
        payment: Option<PaymentId>,
        amount: i64,
        terms: &mut GiveBack,
        now: Timestamp,
    ) -> Value {
        let refund = Refund {
            id: RefundId::new_at(now),
            amount,
            // The units go with the first of the refunds.
            lines: std::mem::take(&mut terms.lines),
            reason: terms.reason.clone(),
            state: match payment {
                Some(_) => EntryState::Pending,
                None => terms.by_hand,
            },
            recorded_at: now,
            recorded_by: terms.actor.clone(),
            payment_id: payment,
            provider: payment.map(|_| ThroughProvider::default()),
        };
        let shown = refund.to_json(self.currency);
        // Never more than is refundable: the amounts above are capped by it.
        self.ledger.refunds.push(refund);
        shown
    }

    fn entry_mut(
        &mut self,
        entry: Entry,
    ) -> Option<(&mut EntryState, &mut Option<ThroughProvider>)> {
        match entry {
            Entry::Payment(id) => self
                .ledger
                .payments
                .iter_mut()
                .find(|p| p.id == id)
                .map(|p| (&mut p.state, &mut p.provider)),
            Entry::Refund(id) => self
                .ledger
                .refunds
                .iter_mut()
                .find(|r| r.id == id)
                .map(|r| (&mut r.state, &mut r.provider)),
        }
    }

    fn describe_entry(&self, entry: Entry, data: &mut Value) {
        let c = self.currency;
        match entry {
            Entry::Payment(id) => {
                if let Some(p) = self.ledger.payments.iter().find(|p| p.id == id) {
                    data["payment"] = p.to_json(c);
                }
            }
            Entry::Refund(id) => {
                if let Some(r) = self.ledger.refunds.iter().find(|r| r.id == id) {
                    data["refund"] = r.to_json(c);
                }
            }
        }
    }

    /// Where an entry of this order stands, if the order has it.
    pub fn entry_state(&self, entry: Entry) -> Option<EntryState> {
        match entry {
            Entry::Payment(id) => self.payment(id).map(|p| p.state),
            Entry::Refund(id) => self.refund(id).map(|r| r.state),
        }
    }

    /// The payment `id`, if this order has it.
    pub fn payment(&self, id: PaymentId) -> Option<&Payment> {
        self.ledger.payments.iter().find(|p| p.id == id)
    }

    /// The refund `id`, if this order has it.
    pub fn refund(&self, id: RefundId) -> Option<&Refund> {
        self.ledger.refunds.iter().find(|r| r.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::order_of;
    use crate::payment::PaymentDraft;
    use crate::status::PaymentStatus;

    fn report(state: EntryState, id: &str) -> Settlement {
        Settlement {
            state,
            provider_id: Some(id.into()),
            error: None,
        }
    }

    #[test]
    fn a_charge_settles_forward_only() {
        let mut o = order_of(&[(2, 500_000)]);
        let now = Timestamp::now();
        let id = PaymentId::new();
        let e = o.request_charge(id, None, Actor::system(), now).unwrap();
        assert_eq!(e.data["payment"]["amount"], "10000.00");
        assert_eq!(e.data["payment"]["state"], "pending");
        assert_eq!(o.payment_status, PaymentStatus::Pending);
        // Nothing is left to charge while that one is under way.
        assert!(o
            .request_charge(PaymentId::new(), None, Actor::system(), now)
            .is_err());

        let processing = o
            .settle(
                Entry::Payment(id),
                report(EntryState::Pending, "pp_1"),
                true,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(processing.event_type, EventType::PaymentProcessing);
        assert_eq!(
            o.settle(
                Entry::Payment(id),
                report(EntryState::Pending, "pp_1"),
                true,
                now
            ),
            Ok(None),
            "a repeat changes nothing"
        );
        let done = o
            .settle(
                Entry::Payment(id),
                report(EntryState::Succeeded, "pp_1"),
                true,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(done.event_type, EventType::PaymentSucceeded);
        assert_eq!(o.payment_status, PaymentStatus::Paid);
        assert!(matches!(
            o.settle(
                Entry::Payment(id),
                report(EntryState::Pending, "pp_1"),
                true,
                now
            ),
            Err(Refusal::Ledger(_))
        ));
        assert_eq!(o.payment(id).unwrap().state, EntryState::Succeeded);
        assert!(
            o.settle(
                Entry::Payment(id),
                report(EntryState::Succeeded, "pp_1"),
                false,
                now
            )
            .is_err(),
            "the shop does not settle the provider's payments"
        );
    }

    #[test]
    fn cancelling_a_paid_order_gives_the_money_back_through_whoever_took_it() {
        let mut o = order_of(&[(2, 500_000)]);
        let now = Timestamp::now();
        let card = PaymentId::new();
        o.request_charge(card, Some(600_000), Actor::system(), now)
            .unwrap();
        o.settle(
            Entry::Payment(card),
            report(EntryState::Succeeded, "pp_1"),
            true,
            now,
        )
        .unwrap();
        o.record_payment(
            PaymentDraft {
                method: PaymentMethod::BankTransfer,
                amount: 400_000,
                transaction_id: None,
                paid_at: None,
                state: EntryState::Succeeded,
            },
            Actor::system(),
            now,
        )
        .unwrap();
        assert_eq!(o.payment_status, PaymentStatus::Paid);
        let e = o.cancel("out of stock".into(), now).unwrap();
        let refunds = e.data["refunds"].as_array().unwrap();
        assert_eq!(refunds.len(), 2);
        assert_eq!(refunds[0]["amount"], "6000.00");
        assert_eq!(refunds[0]["payment_id"], card.to_string());
        assert_eq!(refunds[1]["amount"], "4000.00");
        assert!(refunds[1].get("provider").is_none(), "paid back by hand");
        assert_eq!(e.data["payment_status"]["to"], "pending");
        assert_eq!(o.ledger.refundable(), 0);

        // The provider fails for a while; then it refunds.
        let by_provider = o.ledger.refunds[0].id;
        let failed = o
            .provider_call_failed(Entry::Refund(by_provider), "HTTP 503".into(), None, now)
            .unwrap()
            .unwrap();
        assert_eq!(failed.event_type, EventType::RefundAttemptFailed);
        assert_eq!(failed.data["given_up"], true);
        assert_eq!(o.payment_status, PaymentStatus::Pending);
        o.settle(
            Entry::Refund(by_provider),
            report(EntryState::Succeeded, "rf_1"),
            true,
            now,
        )
        .unwrap();
        let by_hand = o.ledger.refunds[1].id;
        let e = o
            .settle(
                Entry::Refund(by_hand),
                Settlement {
                    state: EntryState::Succeeded,
                    provider_id: None,
                    error: None,
                },
                false,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(e.event_type, EventType::RefundSucceeded);
        assert_eq!(o.payment_status, PaymentStatus::Refunded);
    }

    #[test]
    fn a_charge_that_succeeds_after_the_cancel_is_given_back() {
        let mut o = order_of(&[(1, 500_000)]);
        let now = Timestamp::now();
        let id = PaymentId::new();
        o.request_charge(id, None, Actor::system(), now).unwrap();
        let e = o.cancel("buyer changed their mind".into(), now).unwrap();
        assert!(e.data.get("refunds").is_none(), "nothing was taken yet");
        let e = o
            .settle(
                Entry::Payment(id),
                report(EntryState::Succeeded, "pp_9"),
                true,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(e.data["refunds"][0]["amount"], "5000.00");
        assert_eq!(o.payment_status, PaymentStatus::Pending);
        assert!(o
            .request_charge(PaymentId::new(), None, Actor::system(), now)
            .is_err());
    }
}

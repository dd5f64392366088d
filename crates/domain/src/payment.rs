//! Payments and refunds on an order: the order's side of its [`Ledger`].
//! Each entry is one change with one event, and `payment_status` is derived
//! again from the ledger after it.

use serde_json::{json, Value};

use crate::event::{Actor, EventDraft, EventType};
use crate::field::{FieldError, FieldErrors};
use crate::ids::{LineId, PaymentId, ReceiptId, RefundId};
use crate::ledger::{
    EntryState, LedgerError, Payment, PaymentMethod, Receipt, ReceiptState, Refund, RefundLine,
};
use crate::money::Currency;
use crate::order::{Order, Refusal};
use crate::status::OrderStatus;
use crate::timestamp::Timestamp;

/// A payment as it is reported: by the staff, by a receipt's approval, or
/// by a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDraft {
    pub method: PaymentMethod,
    pub amount: i64,
    pub transaction_id: Option<String>,
    /// When the money moved; now when not said.
    pub paid_at: Option<Timestamp>,
    pub state: EntryState,
}

/// A refund as it is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDraft {
    /// The amount; when not given, what the `lines` cost.
    pub amount: Option<i64>,
    pub lines: Vec<RefundLine>,
    pub reason: String,
    pub state: EntryState,
}

impl Payment {
    /// Whether `draft` reports this payment again: the same method and
    /// amount, and the same time if it names one.
    pub fn is_repeat_of(&self, draft: &PaymentDraft) -> bool {
        self.method == draft.method
            && self.amount == draft.amount
            && draft.paid_at.is_none_or(|at| at == self.paid_at)
    }

    pub(crate) fn to_json(&self, currency: Currency) -> Value {
        let mut v = json!({
            "id": self.id,
            "method": self.method,
            "amount": currency.format_amount(self.amount),
            "transaction_id": self.transaction_id,
            "state": self.state,
            "paid_at": self.paid_at,
        });
        if let Some(p) = &self.provider {
            v["provider"] = json!(p);
        }
        v
    }
}

impl Refund {
    pub(crate) fn to_json(&self, currency: Currency) -> Value {
        let mut v = json!({
            "id": self.id,
            "amount": currency.format_amount(self.amount),
            "lines": self.lines.iter().map(|l| json!({"line_id": l.line_id, "quantity": l.quantity})).collect::<Vec<_>>(),
            "reason": self.reason,
            "state": self.state,
        });
        if let Some(id) = self.payment_id {
            v["payment_id"] = json!(id);
        }
        if let Some(p) = &self.provider {
            v["provider"] = json!(p);
        }
        v
    }
}

/// The most receipts one order keeps (each is a file of up to the limit).
pub const MAX_RECEIPTS: usize = 20;

/// What staff decided about a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptDecision {
    /// The money arrived: record it as a payment (of `amount`, or of what
    /// is due when not given).
    Approve {
        amount: Option<i64>,
        method: PaymentMethod,
        transaction_id: Option<String>,
        paid_at: Option<Timestamp>,
    },
    Reject {
        reason: String,
    },
}

impl Receipt {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "kind": self.kind,
            "size": self.size,
            "filename": self.filename,
            "state": self.state,
        })
    }
}

/// A ledger refusal, with the currency its amounts are in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct LedgerRefusal {
    pub error: LedgerError,
    pub currency: Currency,
}

impl Order {
    pub(crate) fn ledger_refusal(&self, error: LedgerError) -> Refusal {
        match error {
            LedgerError::Invalid(e) => Refusal::Invalid(e.into()),
            error => Refusal::Ledger(LedgerRefusal {
                error,
                currency: self.currency,
            }),
        }
    }

    /// After a ledger change: `payment_status` derived again, the version
    /// and time moved on, and the event saying so.
    pub(crate) fn ledger_event(
        &mut self,
        event_type: EventType,
        mut data: Value,
        now: Timestamp,
    ) -> EventDraft {
        let from = self.payment_status;
        self.payment_status = self.ledger.status(self.total);
        self.touch(now);
        data["payment_status"] = json!({ "from": from, "to": self.payment_status });
        self.money_figures(&mut data);
        EventDraft { event_type, data }
    }

    /// What was paid and refunded and what is due, as events show it.
    pub(crate) fn money_figures(&self, data: &mut Value) {
        let t = self.ledger.totals(self.total);
        let c = self.currency;
        data["amount_paid"] = json!(c.format_amount(t.paid));
        data["amount_refunded"] = json!(c.format_amount(t.refunded));
        data["amount_due"] = json!(c.format_amount(t.due));
        if t.overpaid > 0 {
            data["amount_overpaid"] = json!(c.format_amount(t.overpaid));
        }
    }

    /// Records a payment (`payment.recorded`). A repeat of a payment
    /// already recorded under the same transaction id changes nothing
    /// (`Ok(None)`); the same id with a different payment is refused.
    pub fn record_payment(
        &mut self,
        draft: PaymentDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        if let Some(id) = &draft.transaction_id {
            if let Some(existing) = self.payment_with_transaction(id) {
                return if existing.is_repeat_of(&draft) {
                    Ok(None)
                } else {
                    Err(self.ledger_refusal(LedgerError::TransactionIdReused(id.clone())))
                };
            }
        }
        let payment = self.push_payment(draft, actor, now)?;
        let mut data = json!({ "payment": payment.to_json(self.currency) });
        self.give_back_if_cancelled(&mut data, now);
        Ok(Some(self.ledger_event(
            EventType::PaymentRecorded,
            data,
            now,
        )))
    }

    /// Money received on a cancelled order is given back at once (a
    /// refund under way, listed in the event's `refunds`), as cancelling
    /// gives back what was received before.
    fn give_back_if_cancelled(&mut self, data: &mut Value, now: Timestamp) {
        if self.status == OrderStatus::Cancelled {
            let refunds = self.compensate(now);
            if !refunds.is_empty() {
                data["refunds"] = Value::Array(refunds);
            }
        }
    }

    /// Appends a payment to the ledger; a copy of it.
    fn push_payment(
        &mut self,
        draft: PaymentDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Payment, Refusal> {
        let payment = Payment {
            id: PaymentId::new_at(now),
            method: draft.method,
            amount: draft.amount,
            transaction_id: draft.transaction_id,
            state: draft.state,
            paid_at: draft.paid_at.unwrap_or(now),
            recorded_at: now,
            recorded_by: actor,
            provider: None,
        };
        match self.ledger.pay(payment.clone()) {
            Ok(()) => Ok(payment),
            Err(e) => Err(self.ledger_refusal(e)),
        }
    }

    /// Keeps a receipt the buyer sent, in review (`receipt.uploaded`):
    /// `payment_status` is `pending` until staff decide.
    pub fn add_receipt(&mut self, receipt: Receipt, now: Timestamp) -> Result<EventDraft, Refusal> {
        if self.ledger.receipts.len() >= MAX_RECEIPTS {
            return Err(Refusal::Invalid(
                FieldError::new("file", "this order has as many receipts as it may keep")
                    .value(self.ledger.receipts.len())
                    .accepted(format!("at most {MAX_RECEIPTS} receipts an order"))
                    .into(),
            ));
        }
        let data = json!({ "receipt": receipt.to_json() });
        self.ledger.receipts.push(receipt);
        Ok(self.ledger_event(EventType::ReceiptUploaded, data, now))
    }

    /// Approves (`receipt.approved`, recording the payment) or rejects
    /// (`receipt.rejected`) a receipt in review.
    pub fn decide_receipt(
        &mut self,
        id: ReceiptId,
        decision: ReceiptDecision,
        actor: Actor,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        let Some(index) = self.ledger.receipts.iter().position(|r| r.id == id) else {
            return Err(self.ledger_refusal(LedgerError::Unknown("receipt")));
        };
        let state = self.ledger.receipts[index].state;
        if state != ReceiptState::InReview {
            return Err(self.ledger_refusal(LedgerError::Decided(state)));
        }
        let (event_type, next, mut data, payment_id, reason) = match decision {
            ReceiptDecision::Approve {
                amount,
                method,
                transaction_id,
                paid_at,
            } => {
                let due = self.ledger.totals(self.total).due;
                let amount = match amount {
                    Some(a) => a,
                    None if due > 0 => due,
                    None => {
                        return Err(Refusal::Invalid(
                            FieldError::new("amount", "nothing is due on this order")
                                .accepted("the amount the receipt shows")
                                .into(),
                        ))
                    }
                };
                let draft = PaymentDraft {
                    method,
                    amount,
                    transaction_id,
                    paid_at,
                    state: EntryState::Succeeded,
                };
                let payment = self.push_payment(draft, actor.clone(), now)?;
                let mut data = json!({ "payment": payment.to_json(self.currency) });
                self.give_back_if_cancelled(&mut data, now);
                (
                    EventType::ReceiptApproved,
                    ReceiptState::Approved,
                    data,
                    Some(payment.id),
                    None,
                )
            }
            ReceiptDecision::Reject { reason } => (
                EventType::ReceiptRejected,
                ReceiptState::Rejected,
                json!({ "reason": reason }),
                None,
                Some(reason),
            ),
        };
        let receipt = &mut self.ledger.receipts[index];
        receipt.state = next;
        receipt.decided_at = Some(now);
        receipt.decided_by = Some(actor);
        receipt.payment_id = payment_id;
        receipt.reject_reason = reason;
        data["receipt"] = receipt.to_json();
        Ok(self.ledger_event(event_type, data, now))
    }

    /// The payment recorded under `transaction_id`, if any.
    pub fn payment_with_transaction(&self, transaction_id: &str) -> Option<&Payment> {
        self.ledger
            .payments
            .iter()
            .find(|p| p.transaction_id.as_deref() == Some(transaction_id))
    }

    /// Units of `line` given back by refunds that have not failed.
    pub(crate) fn refunded_units(&self, line: LineId) -> u32 {
        self.ledger
            .refunds
            .iter()
            .filter(|r| r.state != EntryState::Failed)
            .flat_map(|r| &r.lines)
            .filter(|l| l.line_id == line)
            .map(|l| l.quantity)
            .fold(0, u32::saturating_add)
    }

    /// What the refunded `lines` cost, each checked against the order: a
    /// line of it, and no more units than it has and were not yet refunded.
    pub(crate) fn refund_lines_value(&self, lines: &[RefundLine]) -> Result<i64, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut value = Some(0i64);
        for (i, asked) in lines.iter().enumerate() {
            let Some(line) = self.lines.iter().find(|l| l.id == asked.line_id) else {
                errors.push(
                    FieldError::new(format!("lines[{i}].line_id"), "no such line on this order")
                        .value(asked.line_id)
                        .accepted("the id of one of the order's items"),
                );
                continue;
            };
            let earlier: u32 = lines[..i]
                .iter()
                .filter(|l| l.line_id == asked.line_id)
                .map(|l| l.quantity)
                .sum();
            // Units called off count: their refunds carry them.
            let left = (line.quantity + line.cancelled)
                .saturating_sub(self.refunded_units(line.id))
                .saturating_sub(earlier);
            if asked.quantity == 0 || asked.quantity > left {
                errors.push(
                    FieldError::new(
                        format!("lines[{i}].quantity"),
                        "more units than the line has left to refund",
                    )
                    .value(asked.quantity)
                    .accepted(format!("1 to {left}")),
                );
                continue;
            }
            let given = self.refunded_units(line.id) + earlier;
            let units = line.value_of(asked.quantity, given, self.pricing.taxes_included);
            value = value.and_then(|v| v.checked_add(units));
        }
        errors.finish(|| value.unwrap_or(i64::MAX))
    }

    /// Records a refund (`refund.recorded`): at most what was paid and not
    /// yet refunded; its amount, when not given, is what its lines cost.
    pub fn record_refund(
        &mut self,
        draft: RefundDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        let lines_value = self
            .refund_lines_value(&draft.lines)
            .map_err(Refusal::Invalid)?;
        let amount = match draft.amount {
            Some(a) => a,
            None if !draft.lines.is_empty() => lines_value,
            None => {
                return Err(Refusal::Invalid(
                    FieldError::new("amount", "a refund needs an amount or lines")
                        .accepted("an amount, or lines whose prices make it up")
                        .into(),
                ))
            }
        };
        let refund = Refund {
            id: RefundId::new_at(now),
            amount,
            lines: draft.lines,
            reason: draft.reason,
            state: draft.state,
            recorded_at: now,
            recorded_by: actor,
            payment_id: None,
            provider: None,
        };
        let data = json!({ "refund": refund.to_json(self.currency) });
        if let Err(e) = self.ledger.refund(refund) {
            return Err(self.ledger_refusal(e));
        }
        Ok(self.ledger_event(EventType::RefundRecorded, data, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::tests::order_of;
    use crate::status::PaymentStatus;

    fn pay(amount: i64, transaction_id: Option<&str>) -> PaymentDraft {
        PaymentDraft {
            method: PaymentMethod::BankTransfer,
            amount,
            transaction_id: transaction_id.map(str::to_string),
            paid_at: None,
            state: EntryState::Succeeded,
        }
    }

    fn refund(amount: Option<i64>, lines: Vec<RefundLine>) -> RefundDraft {
        RefundDraft {
            amount,
            lines,
            reason: "returned".into(),
            state: EntryState::Succeeded,
        }
    }

    #[test]
    fn payments_derive_the_status_and_say_so() {
        // Two lines: 2 × 5,000.00 and 1 × 3,000.00 NGN.
        let mut o = order_of(&[(2, 500_000), (1, 300_000)]);
        let now = Timestamp::now();
        let e = o
            .record_payment(pay(600_000, Some("FT-1")), Actor::system(), now)
            .unwrap()
            .unwrap();
        assert_eq!(e.event_type, EventType::PaymentRecorded);
        assert_eq!(o.payment_status, PaymentStatus::PartiallyPaid);
        assert_eq!(e.data["payment_status"]["to"], "partially_paid");
        assert_eq!(e.data["amount_due"], "7000.00");
        assert_eq!(e.data["payment"]["amount"], "6000.00");
        assert_eq!(o.version, 2);
        assert_eq!(
            o.record_payment(pay(600_000, Some("FT-1")), Actor::system(), now),
            Ok(None),
            "the same payment again changes nothing"
        );
        assert_eq!(o.version, 2);
        assert!(matches!(
            o.record_payment(pay(1, Some("FT-1")), Actor::system(), now),
            Err(Refusal::Ledger(LedgerRefusal {
                error: LedgerError::TransactionIdReused(_),
                ..
            }))
        ));
        o.record_payment(pay(800_000, None), Actor::system(), now)
            .unwrap();
        assert_eq!(o.payment_status, PaymentStatus::Paid);
        assert_eq!(o.ledger.totals(o.total).overpaid, 100_000);
    }

    #[test]
    fn refunds_by_line_cost_what_the_lines_cost_and_never_repeat_a_unit() {
        let mut o = order_of(&[(2, 500_000), (1, 300_000)]);
        let now = Timestamp::now();
        let (a, b) = (o.lines[0].id, o.lines[1].id);
        o.record_payment(pay(1_300_000, None), Actor::system(), now)
            .unwrap();
        let line = |line_id, quantity| RefundLine { line_id, quantity };
        let e = o
            .record_refund(refund(None, vec![line(a, 1)]), Actor::system(), now)
            .unwrap();
        assert_eq!(e.data["refund"]["amount"], "5000.00");
        assert_eq!(o.payment_status, PaymentStatus::PartiallyRefunded);
        let Err(Refusal::Invalid(errors)) = o.record_refund(
            refund(None, vec![line(a, 1), line(a, 1), line(LineId::new(), 1)]),
            Actor::system(),
            now,
        ) else {
            panic!("refused");
        };
        let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["lines[1].quantity", "lines[2].line_id"]);
        assert!(matches!(
            o.record_refund(refund(Some(800_001), vec![]), Actor::system(), now),
            Err(Refusal::Ledger(LedgerRefusal {
                error: LedgerError::RefundTooLarge {
                    asked: 800_001,
                    refundable: 800_000
                },
                ..
            }))
        ));
        o.record_refund(
            refund(None, vec![line(a, 1), line(b, 1)]),
            Actor::system(),
            now,
        )
        .unwrap();
        assert_eq!(o.payment_status, PaymentStatus::Refunded);
        assert!(matches!(
            o.record_refund(refund(None, vec![]), Actor::system(), now),
            Err(Refusal::Invalid(e)) if e.0[0].field == "amount"
        ));
    }

    fn receipt() -> Receipt {
        Receipt {
            id: ReceiptId::new(),
            kind: crate::ledger::FileKind::Jpeg,
            size: 1_000,
            sha256: "00".into(),
            filename: Some("transfer.jpg".into()),
            state: ReceiptState::InReview,
            uploaded_at: Timestamp::now(),
            uploaded_by: Actor::buyer("+2348012345678"),
            decided_at: None,
            decided_by: None,
            payment_id: None,
            reject_reason: None,
        }
    }

    fn approve(amount: Option<i64>) -> ReceiptDecision {
        ReceiptDecision::Approve {
            amount,
            method: PaymentMethod::BankTransfer,
            transaction_id: None,
            paid_at: None,
        }
    }

    #[test]
    fn a_receipt_is_pending_until_approved_for_what_is_due_or_rejected() {
        let mut o = order_of(&[(2, 500_000)]);
        let now = Timestamp::now();
        o.record_payment(pay(400_000, None), Actor::system(), now)
            .unwrap();
        let (first, second) = (receipt(), receipt());
        let (a, b) = (first.id, second.id);
        let e = o.add_receipt(first, now).unwrap();
        assert_eq!(e.event_type, EventType::ReceiptUploaded);
        assert_eq!(o.payment_status, PaymentStatus::Pending);
        o.add_receipt(second, now).unwrap();
        let e = o
            .decide_receipt(
                b,
                ReceiptDecision::Reject {
                    reason: "blurry".into(),
                },
                Actor::system(),
                now,
            )
            .unwrap();
        assert_eq!(e.event_type, EventType::ReceiptRejected);
        assert_eq!(
            o.payment_status,
            PaymentStatus::Pending,
            "one still in review"
        );
        let e = o
            .decide_receipt(a, approve(None), Actor::system(), now)
            .unwrap();
        assert_eq!(e.event_type, EventType::ReceiptApproved);
        assert_eq!(e.data["payment"]["amount"], "6000.00", "what was due");
        assert_eq!(o.payment_status, PaymentStatus::Paid);
        assert_eq!(
            o.ledger.receipts[0].payment_id,
            Some(o.ledger.payments[1].id)
        );
        assert!(matches!(
            o.decide_receipt(a, approve(Some(1)), Actor::system(), now),
            Err(Refusal::Ledger(LedgerRefusal {
                error: LedgerError::Decided(ReceiptState::Approved),
                ..
            }))
        ));
        o.add_receipt(receipt(), now).unwrap();
        let c = o.ledger.receipts[2].id;
        assert!(
            matches!(
                o.decide_receipt(c, approve(None), Actor::system(), now),
                Err(Refusal::Invalid(e)) if e.0[0].field == "amount"
            ),
            "nothing is due"
        );
        assert!(matches!(
            o.decide_receipt(ReceiptId::new(), approve(None), Actor::system(), now),
            Err(Refusal::Ledger(LedgerRefusal {
                error: LedgerError::Unknown("receipt"),
                ..
            }))
        ));
        for _ in o.ledger.receipts.len()..MAX_RECEIPTS {
            o.add_receipt(receipt(), now).unwrap();
        }
        assert!(
            o.add_receipt(receipt(), now).is_err(),
            "no more than the limit"
        );
    }
}

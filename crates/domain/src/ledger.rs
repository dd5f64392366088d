//! An order's payment ledger: the payments recorded against it (split
//! payments are several), the refunds paid out of them, and the receipts
//! under review. `payment_status` is derived from it, never set by hand.
//!
//! Amounts are minor units of the order's currency. A payment or refund is
//! `pending` until whoever moves the money says it `succeeded` or `failed`;
//! that is final (a late or repeated report never moves it back). Only
//! succeeded entries count as paid or refunded; a refund can never take
//! back more than was paid and not yet refunded (pending refunds included).

use serde::{Deserialize, Serialize};

use crate::event::Actor;
use crate::field::FieldError;
use crate::ids::{LineId, OrderId, PaymentId, ReceiptId, RefundId, TenantId};
use crate::money::MAX_MINOR;
use crate::status::PaymentStatus;
use crate::timestamp::Timestamp;

str_enum!(
    /// How the buyer paid.
    PaymentMethod {
        BankTransfer = "bank_transfer",
        Cash = "cash",
        Card = "card",
        MobileMoney = "mobile_money",
        StoreCredit = "store_credit",
        Other = "other",
    }
);

str_enum!(
    /// Where a payment or a refund stands.
    EntryState {
        /// Taken in, not yet confirmed by whoever moves the money.
        Pending = "pending",
        Succeeded = "succeeded",
        Failed = "failed",
    }
);

impl EntryState {
    /// Whether a report of `next` may replace this state: pending may end
    /// either way; an ended entry stays as it ended (a repeat is a no-op).
    pub fn can_become(self, next: EntryState) -> bool {
        self == next || self == EntryState::Pending
    }
}

/// What ordo knows of a payment or refund a payment provider moves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ThroughProvider {
    /// The provider's id of it, once the provider has answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The last call that failed (while it is retried), or why the
    /// provider refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// ordo stopped calling the provider about it while it was pending:
    /// the shop may then say how it ended (after looking at the
    /// provider's own records).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub given_up: bool,
}

/// Money received for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub method: PaymentMethod,
    pub amount: i64,
    /// The payer's or the provider's reference; unique in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    pub state: EntryState,
    /// When the money moved, as the payer or the provider says.
    pub paid_at: Timestamp,
    pub recorded_at: Timestamp,
    pub recorded_by: Actor,
    /// Set when the tenant's payment provider charges it (a card payment
    /// ordo asked for); otherwise the money moved outside ordo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ThroughProvider>,
}

/// A line given back, and how many of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line_id: LineId,
    pub quantity: u32,
}

/// Money paid back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<RefundLine>,
    pub reason: String,
    pub state: EntryState,
    pub recorded_at: Timestamp,
    pub recorded_by: Actor,
    /// The payment whose money it gives back, when it is one payment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    /// Set when the payment provider pays it back; otherwise the shop
    /// does, by hand, and says when it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ThroughProvider>,
}

str_enum!(
    /// What a file is, as its content says (never its name).
    FileKind {
        Jpeg = "jpeg",
        Png = "png",
        Webp = "webp",
        Pdf = "pdf",
    }
);

impl FileKind {
    /// The kinds a receipt may be, for error messages.
    pub const ACCEPTED: &'static str = "a JPEG, PNG or WebP image, or a PDF";

    /// What `head` (a file's first bytes, at least 12) says the file is.
    pub fn sniff(head: &[u8]) -> Option<FileKind> {
        if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileKind::Jpeg)
        } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileKind::Png)
        } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            Some(FileKind::Webp)
        } else if head.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
            FileKind::Webp => "image/webp",
            FileKind::Pdf => "application/pdf",
        }
    }

    /// The kind a declared media type names, if it is one of these.
    pub fn from_mime(mime: &str) -> Option<FileKind> {
        let mime = mime.split(';').next().unwrap_or("").trim();
        FileKind::ALL
            .iter()
            .copied()
            .find(|k| k.mime().eq_ignore_ascii_case(mime))
            .or_else(|| {
                mime.eq_ignore_ascii_case("image/jpg")
                    .then_some(FileKind::Jpeg)
            })
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Jpeg => "jpg",
            other => other.as_str(),
        }
    }
}

str_enum!(
    /// Where a receipt the buyer sent stands.
    ReceiptState {
        InReview = "in_review",
        Approved = "approved",
        Rejected = "rejected",
    }
);

/// A file the buyer sent as proof of payment (seed 000), kept in the file
/// store under [`Receipt::key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub id: ReceiptId,
    pub kind: FileKind,
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub state: ReceiptState,
    pub uploaded_at: Timestamp,
    pub uploaded_by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<Actor>,
    /// The payment its approval recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
}

impl Receipt {
    /// Where the file lives in the file store.
    pub fn key(tenant: TenantId, order: OrderId, id: ReceiptId) -> String {
        format!("receipts/{tenant}/{order}/{id}")
    }
}

/// What the ledger adds up to against an order's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Succeeded payments.
    pub paid: i64,
    /// Succeeded refunds.
    pub refunded: i64,
    /// Payments still pending.
    pub pending: i64,
    /// Paid less refunded: what the shop holds.
    pub net: i64,
    /// What the buyer still owes (never negative).
    pub due: i64,
    /// What the shop holds beyond the total: shown, never hidden.
    pub overpaid: i64,
}

/// Why the ledger refused an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("{0}")]
    Invalid(FieldError),
    #[error("a refund of {asked} is more than the {refundable} paid and not yet refunded")]
    RefundTooLarge { asked: i64, refundable: i64 },
    #[error("no {0} with that id on this order")]
    Unknown(&'static str),
    #[error("transaction id {0:?} is already recorded on this order with a different payment")]
    TransactionIdReused(String),
    #[error("the receipt is already {0}")]
    Decided(ReceiptState),
    /// The entry cannot be made or moved as asked, for this reason.
    #[error("{0}")]
    Conflict(&'static str),
    #[error("the {what} already {current}; it cannot become {next}")]
    Ended {
        what: &'static str,
        current: EntryState,
        next: EntryState,
    },
}

/// The ledger of one order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ledger {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<Payment>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<Refund>,
    /// Receipts the buyer sent, approved, rejected or still in review.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<Receipt>,
}

fn check_amount(field: &str, amount: i64) -> Result<(), LedgerError> {
    if (1..=MAX_MINOR).contains(&amount) {
        Ok(())
    } else {
        Err(LedgerError::Invalid(
            FieldError::new(field, "not an amount that can be paid")
                .value(amount)
                .accepted("more than zero"),
        ))
    }
}

impl Ledger {
    pub fn is_empty(&self) -> bool {
        self.payments.is_empty() && self.refunds.is_empty() && self.receipts.is_empty()
    }

    /// Receipts staff have not yet approved or rejected.
    pub fn receipts_in_review(&self) -> usize {
        self.receipts
            .iter()
            .filter(|r| r.state == ReceiptState::InReview)
            .count()
    }

    fn sum<'a>(amounts: impl Iterator<Item = (&'a EntryState, i64)>, state: EntryState) -> i64 {
        amounts
            .filter(|(s, _)| **s == state)
            .map(|(_, a)| a)
            .fold(0i64, i64::saturating_add)
    }

    /// The ledger's sums against `total`.
    pub fn totals(&self, total: i64) -> Totals {
        let payments = || self.payments.iter().map(|p| (&p.state, p.amount));
        let paid = Self::sum(payments(), EntryState::Succeeded);
        let pending = Self::sum(payments(), EntryState::Pending);
        let refunded = Self::sum(
            self.refunds.iter().map(|r| (&r.state, r.amount)),
            EntryState::Succeeded,
        );
        let net = paid - refunded;
        Totals {
            paid,
            refunded,
            pending,
            net,
            due: (total - net).max(0),
            overpaid: (net - total).max(0),
        }
    }

    /// What a new refund may take back at most: paid, less what is
    /// refunded or being refunded.
    pub fn refundable(&self) -> i64 {
        let paid = self.totals(0).paid;
        let out: i64 = self
            .refunds
            .iter()
            .filter(|r| r.state != EntryState::Failed)
            .map(|r| r.amount)
            .fold(0, i64::saturating_add);
        (paid - out).max(0)
    }

    /// `payment_status` as the ledger says it is for an order of `total`:
    /// a refund under way makes it pending; otherwise any refund makes it
    /// (partially) refunded; otherwise nothing paid is
    /// unpaid, or pending while a payment or receipt awaits a decision;
    /// less than the total is partially paid (pending, again, while
    /// something awaits a decision); the total or more is paid.
    pub fn status(&self, total: i64) -> PaymentStatus {
        let t = self.totals(total);
        let awaiting = t.pending > 0 || self.receipts_in_review() > 0;
        if self.refunds.iter().any(|r| r.state == EntryState::Pending) {
            PaymentStatus::Pending
        } else if t.refunded > 0 {
            if t.refunded >= t.paid {
                PaymentStatus::Refunded
            } else {
                PaymentStatus::PartiallyRefunded
            }
        } else if t.paid == 0 {
            if awaiting {
                PaymentStatus::Pending
            } else {
                PaymentStatus::Unpaid
            }
        } else if t.paid < total {
            if awaiting {
                PaymentStatus::Pending
            } else {
                PaymentStatus::PartiallyPaid
            }
        } else {
            PaymentStatus::Paid
        }
    }

    /// Records a payment. Its transaction id, if any, must be new on this
    /// order (the store checks the tenant).
    pub fn pay(&mut self, payment: Payment) -> Result<(), LedgerError> {
        check_amount("amount", payment.amount)?;
        if let Some(id) = &payment.transaction_id {
            if self
                .payments
                .iter()
                .any(|p| p.transaction_id.as_ref() == Some(id))
            {
                return Err(LedgerError::TransactionIdReused(id.clone()));
            }
        }
        self.payments.push(payment);
        Ok(())
    }

    /// Records a refund, if it does not take back more than is refundable.
    pub fn refund(&mut self, refund: Refund) -> Result<(), LedgerError> {
        check_amount("amount", refund.amount)?;
        let refundable = self.refundable();
        if refund.amount > refundable {
            return Err(LedgerError::RefundTooLarge {
                asked: refund.amount,
                refundable,
            });
        }
        self.refunds.push(refund);
        Ok(())
    }

    /// A report on a pending payment; `Ok(false)` when it changes nothing
    /// (a repeat).
    pub fn settle_payment(&mut self, id: PaymentId, next: EntryState) -> Result<bool, LedgerError> {
        let payment = self
            .payments
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or(LedgerError::Unknown("payment"))?;
        settle("payment", &mut payment.state, next)
    }

    /// A report on a pending refund; `Ok(false)` when it changes nothing.
    pub fn settle_refund(&mut self, id: RefundId, next: EntryState) -> Result<bool, LedgerError> {
        let refund = self
            .refunds
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or(LedgerError::Unknown("refund"))?;
        settle("refund", &mut refund.state, next)
    }
}

fn settle(
    what: &'static str,
    state: &mut EntryState,
    next: EntryState,
) -> Result<bool, LedgerError> {
    if !state.can_become(next) {
        return Err(LedgerError::Ended {
            what,
            current: *state,
            next,
        });
    }
    let changed = *state != next;
    *state = next;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn payment(amount: i64, state: EntryState) -> Payment {
        let now = Timestamp::now();
        Payment {
            id: PaymentId::new(),
            method: PaymentMethod::BankTransfer,
            amount,
            transaction_id: None,
            state,
            paid_at: now,
            recorded_at: now,
            recorded_by: Actor::system(),
            provider: None,
        }
    }

    fn receipt() -> Receipt {
        Receipt {
            id: ReceiptId::new(),
            kind: FileKind::Png,
            size: 10,
            sha256: String::new(),
            filename: None,
            state: ReceiptState::InReview,
            uploaded_at: Timestamp::now(),
            uploaded_by: Actor::system(),
            decided_at: None,
            decided_by: None,
            payment_id: None,
            reject_reason: None,
        }
    }

    #[test]
    fn files_are_known_by_their_content() {
        assert_eq!(
            FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(FileKind::Jpeg)
        );
        assert_eq!(
            FileKind::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(FileKind::Png)
        );
        assert_eq!(
            FileKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 "),
            Some(FileKind::Webp)
        );
        assert_eq!(FileKind::sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n"), Some(FileKind::Pdf));
        assert_eq!(FileKind::sniff(b"<html><body>"), None);
        assert_eq!(FileKind::sniff(b""), None);
        assert_eq!(FileKind::from_mime("image/PNG; q=1"), Some(FileKind::Png));
        assert_eq!(FileKind::from_mime("image/jpg"), Some(FileKind::Jpeg));
        assert_eq!(FileKind::from_mime("text/html"), None);
    }

    fn refund(amount: i64, state: EntryState) -> Refund {
        Refund {
            id: RefundId::new(),
            amount,
            lines: Vec::new(),
            reason: "returned".into(),
            state,
            recorded_at: Timestamp::now(),
            recorded_by: Actor::system(),
            payment_id: None,
            provider: None,
        }
    }

    #[test]
    fn split_payments_add_up_and_overpayment_shows() {
        let mut l = Ledger::default();
        assert_eq!(l.status(10_000), PaymentStatus::Unpaid);
        l.pay(payment(4_000, EntryState::Succeeded)).unwrap();
        assert_eq!(l.status(10_000), PaymentStatus::PartiallyPaid);
        l.receipts.push(receipt());
        assert_eq!(
            l.status(10_000),
            PaymentStatus::Pending,
            "a receipt awaits review"
        );
        l.receipts[0].state = ReceiptState::Approved;
        l.pay(payment(7_000, EntryState::Succeeded)).unwrap();
        assert_eq!(l.status(10_000), PaymentStatus::Paid);
        let t = l.totals(10_000);
        assert_eq!((t.paid, t.due, t.overpaid), (11_000, 0, 1_000));
    }

    #[test]
    fn refunds_never_exceed_what_was_paid() {
        let mut l = Ledger::default();
        assert!(matches!(
            l.refund(refund(1, EntryState::Succeeded)),
            Err(LedgerError::RefundTooLarge {
                asked: 1,
                refundable: 0
            })
        ));
        l.pay(payment(5_000, EntryState::Succeeded)).unwrap();
        l.pay(payment(5_000, EntryState::Pending)).unwrap();
        assert_eq!(l.refundable(), 5_000, "pending money cannot be refunded");
        l.refund(refund(2_000, EntryState::Succeeded)).unwrap();
        assert_eq!(l.status(10_000), PaymentStatus::PartiallyRefunded);
        assert!(l.refund(refund(3_001, EntryState::Succeeded)).is_err());
        l.refund(refund(3_000, EntryState::Succeeded)).unwrap();
        assert_eq!(l.status(10_000), PaymentStatus::Refunded);
        assert!(
            l.refund(refund(0, EntryState::Succeeded)).is_err(),
            "nothing is not a refund"
        );
    }

    #[test]
    fn a_refund_under_way_keeps_the_order_pending_until_it_ends() {
        let mut l = Ledger::default();
        l.pay(payment(5_000, EntryState::Succeeded)).unwrap();
        let r = refund(5_000, EntryState::Pending);
        let id = r.id;
        l.refund(r).unwrap();
        assert_eq!(l.status(5_000), PaymentStatus::Pending);
        assert_eq!(l.refundable(), 0, "a pending refund is spoken for");
        assert!(l.refund(refund(1, EntryState::Pending)).is_err());
        assert_eq!(l.settle_refund(id, EntryState::Failed), Ok(true));
        assert_eq!(
            l.status(5_000),
            PaymentStatus::Paid,
            "the money is still held"
        );
        assert_eq!(l.refundable(), 5_000);
    }

    #[test]
    fn an_ended_entry_never_moves_back() {
        let mut l = Ledger::default();
        let p = payment(5_000, EntryState::Pending);
        let id = p.id;
        l.pay(p).unwrap();
        assert_eq!(l.status(5_000), PaymentStatus::Pending);
        assert_eq!(l.settle_payment(id, EntryState::Succeeded), Ok(true));
        assert_eq!(
            l.settle_payment(id, EntryState::Succeeded),
            Ok(false),
            "a repeat"
        );
        assert!(matches!(
            l.settle_payment(id, EntryState::Pending),
            Err(LedgerError::Ended { .. })
        ));
        assert!(l.settle_payment(id, EntryState::Failed).is_err());
        assert_eq!(l.status(5_000), PaymentStatus::Paid);
        assert_eq!(
            l.settle_payment(PaymentId::new(), EntryState::Failed),
            Err(LedgerError::Unknown("payment"))
        );
    }

    #[test]
    fn a_transaction_id_is_recorded_once_per_order() {
        let mut l = Ledger::default();
        let mut p = payment(1_000, EntryState::Succeeded);
        p.transaction_id = Some("TRX-1".into());
        l.pay(p.clone()).unwrap();
        p.id = PaymentId::new();
        assert_eq!(
            l.pay(p),
            Err(LedgerError::TransactionIdReused("TRX-1".into()))
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Pay(i64, bool),
        Refund(i64, bool),
        Settle(usize, bool),
        SettleRefund(usize, bool),
        Receipt(bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1..20_000i64, any::<bool>()).prop_map(|(a, p)| Op::Pay(a, p)),
            (-10..20_000i64, any::<bool>()).prop_map(|(a, p)| Op::Refund(a, p)),
            (any::<usize>(), any::<bool>()).prop_map(|(i, ok)| Op::Settle(i, ok)),
            (any::<usize>(), any::<bool>()).prop_map(|(i, ok)| Op::SettleRefund(i, ok)),
            any::<bool>().prop_map(Op::Receipt),
        ]
    }

    proptest! {
        #[test]
        fn sums_and_status_agree_after_any_sequence(total in 0..30_000i64, ops in prop::collection::vec(op(), 0..40)) {
            let mut l = Ledger::default();
            let mut status = l.status(total);
            for op in ops {
                let before = l.clone();
                let result = match op {
                    Op::Pay(a, pending) => l.pay(payment(a, if pending { EntryState::Pending } else { EntryState::Succeeded })).map(|_| ()),
                    Op::Refund(a, pending) => l.refund(refund(a, if pending { EntryState::Pending } else { EntryState::Succeeded })).map(|_| ()),
                    Op::SettleRefund(i, ok) => match l.refunds.get(i % l.refunds.len().max(1)).map(|r| r.id) {
                        Some(id) => l.settle_refund(id, if ok { EntryState::Succeeded } else { EntryState::Failed }).map(|_| ()),
                        None => Ok(()),
                    },
                    Op::Settle(i, ok) => match l.payments.get(i % l.payments.len().max(1)).map(|p| p.id) {
                        Some(id) => l.settle_payment(id, if ok { EntryState::Succeeded } else { EntryState::Failed }).map(|_| ()),
                        None => Ok(()),
                    },
                    Op::Receipt(add) => {
                        match l.receipts.iter_mut().find(|r| r.state == ReceiptState::InReview) {
                            Some(r) if !add => r.state = ReceiptState::Rejected,
                            _ => l.receipts.push(receipt()),
                        }
                        Ok(())
                    }
                };
                if result.is_err() {
                    prop_assert_eq!(&l, &before, "a refused entry changes nothing");
                }
                let t = l.totals(total);
                let succeeded = |s: &EntryState| *s == EntryState::Succeeded;
                prop_assert_eq!(t.paid, l.payments.iter().filter(|p| succeeded(&p.state)).map(|p| p.amount).sum::<i64>());
                prop_assert_eq!(t.refunded, l.refunds.iter().filter(|r| succeeded(&r.state)).map(|r| r.amount).sum::<i64>());
                prop_assert!(t.refunded <= t.paid, "refunded {} of {} paid", t.refunded, t.paid);
                let outgoing: i64 = l.refunds.iter().filter(|r| r.state != EntryState::Failed).map(|r| r.amount).sum();
                prop_assert!(outgoing <= t.paid, "refunds under way or done {} of {} paid", outgoing, t.paid);
                let refunding = l.refunds.iter().any(|r| r.state == EntryState::Pending);
                prop_assert_eq!(t.net, t.paid - t.refunded);
                prop_assert_eq!(t.due - t.overpaid, total - t.net);
                prop_assert!(t.due >= 0 && t.overpaid >= 0 && (t.due == 0 || t.overpaid == 0));
                let next = l.status(total);
                match next {
                    PaymentStatus::Unpaid => prop_assert!(t.paid == 0 && t.pending == 0 && l.receipts_in_review() == 0),
                    PaymentStatus::Pending => prop_assert!(refunding || (t.refunded == 0 && t.paid < total.max(1))),
                    _ if refunding => prop_assert!(false, "a refund under way is pending, not {}", next),
                    PaymentStatus::Paid => prop_assert!(t.paid > 0 && t.paid >= total && t.refunded == 0),
                    PaymentStatus::PartiallyPaid => prop_assert!(t.paid > 0 && t.paid < total),
                    PaymentStatus::PartiallyRefunded => prop_assert!(t.refunded > 0 && t.refunded < t.paid),
                    PaymentStatus::Refunded => prop_assert!(t.refunded > 0 && t.refunded == t.paid),
                }
                prop_assert!(status.can_become(next), "{} cannot become {}", status, next);
                status = next;
            }
        }
    }
}

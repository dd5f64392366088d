//! Calling off units not yet in a shipment: the buyer no longer wants
//! them, or the shop cannot send them. It is how an order that shipped
//! part of its goods (and so can no longer be cancelled or edited) stops
//! waiting for the rest, and how a paid order loses units without an
//! edit. Each line keeps the units that shipped or are being packed; the
//! totals follow, the stock they held is let go, and money paid for them
//! goes back.

use serde_json::{json, Value};

use crate::charge::GiveBack;
use crate::event::{Actor, EventDraft, EventType};
use crate::field::{FieldError, FieldErrors};
use crate::fulfilment::ShipmentState;
use crate::fulfilment::{Asking, LineProgress};
use crate::ids::LineId;
use crate::ledger::{EntryState, RefundLine};
use crate::money;
use crate::order::{Line, Order, Refusal};
use crate::status::Action;
use crate::stock::StockBook;
use crate::timestamp::Timestamp;

const CALLING_OFF: Asking = Asking {
    what: "cancellation",
    too_many: "more units than the item has outside shipments",
    none_left: "none: every unit of this item is shipped or in a shipment",
};

/// Units to call off, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelItems {
    /// `(line, units)`; units default to all of the line's not in a
    /// shipment. `None`: every unit of the order not in a shipment.
    pub lines: Option<Vec<(LineId, Option<u32>)>>,
    pub reason: String,
}

impl Order {
    /// Calls off units not yet in a shipment (`order.updated`, with
    /// `cancelled_items`): each line's `quantity` drops by them and its
    /// `cancelled` grows, serialised lines lose their last units not yet
    /// shipped, the totals follow and the stock they held is let go. Money
    /// paid beyond the new total (up to what the units cost) goes back:
    /// through the provider for what it charged, by hand (pending until
    /// the shop settles it) for the rest. An order that shipped nothing
    /// cannot lose every unit this way: cancel it instead.
    pub fn cancel_items(
        &mut self,
        draft: CancelItems,
        actor: Actor,
        book: &mut StockBook,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        self.check(Action::CancelItems)?;
        let left: Vec<u32> = self
            .progress()
            .iter()
            .map(LineProgress::unallocated)
            .collect();
        let mut errors = FieldErrors::new();
        let asked: Vec<(usize, u32)> = match draft.lines {
            None => (0..left.len())
                .filter(|i| left[*i] > 0)
                .map(|i| (i, left[i]))
                .collect(),
            Some(asked) if asked.is_empty() => {
                errors.push(
                    FieldError::new("lines", "a cancellation needs at least one item")
                        .accepted("leave lines out to cancel every unit not in a shipment"),
                );
                Vec::new()
            }
            Some(asked) => self
                .units_asked(&asked, &left, &CALLING_OFF, &mut errors)
                .into_iter()
                .map(|(_, i, units)| (i, units))
                .collect(),
        };
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let remaining: u64 = self
            .lines
            .iter()
            .map(|l| u64::from(l.quantity))
            .sum::<u64>()
            - asked.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
        if remaining == 0 {
            return Err(self
                .refusal(
                    Action::CancelItems,
                    Some("that is every unit of the order; cancel the order instead"),
                )
                .into());
        }
        let mut lines = self.lines.clone();
        let mut dropped = Vec::new();
        // What the units cost (what the total drops by), less those a
        // refund by line already gave back (more units refunded than are
        // left ordered), and the units whose money may still go back.
        let included = self.pricing.taxes_included;
        let mut refunded_value = 0i64;
        let mut unrefunded = Vec::new();
        for &(i, units) in &asked {
            let unshipped = self.unshipped_instances(i);
            let line = &mut lines[i];
            // A serialised line loses its last units not yet shipped.
            for unit in unshipped.iter().rev().take(units as usize) {
                if let Some(at) = line.instances.iter().rposition(|u| u == unit) {
                    dropped.extend(line.instances.remove(at).serial);
                }
            }
            let refunded = self
                .refunded_units(line.id)
                .saturating_sub(line.quantity - units)
                .min(units);
            let given = self.refunded_units(line.id);
            refunded_value =
                refunded_value.saturating_add(line.value_of(refunded, given - refunded, included));
            line.quantity -= units;
            line.cancelled += units;
            // Fewer units of a total that fitted: it still fits.
            line.line_total = money::line_total(line.quantity, line.unit_price).unwrap_or(0);
            let owed = units - refunded;
            if owed > 0 {
                unrefunded.push(RefundLine {
                    line_id: line.id,
                    quantity: owed,
                });
            }
        }
        if let Some(serial) = self.referring_to(&lines, &dropped) {
            return Err(Refusal::Invalid(
                FieldError::new("lines", "another unit refers to a unit this would cancel")
                    .value(serial)
                    .accepted("cancel the units that refer to it too, or keep it")
                    .into(),
            ));
        }
        let from = (self.line_summary(), self.total);
        self.lines = lines;
        // Priced again on the order's basis: its promotions and rates.
        self.price_lines().map_err(Refusal::Invalid)?;
        let value = (from.1 - self.total - refunded_value).max(0);
        let cancelled: Vec<Value> = asked
            .iter()
            .map(|&(i, units)| json!({ "line_id": self.lines[i].id, "quantity": units }))
            .collect();
        let c = self.currency;
        let mut data = json!({
            "changes": {
                "items": { "from": from.0, "to": self.line_summary() },
                "total": { "from": c.format_amount(from.1), "to": c.format_amount(self.total) },
            },
            "cancelled_items": cancelled,
            "reason": draft.reason,
        });
        // What was paid beyond the new total, up to what the units cost
        // (refunds for units that stay, such as returns, do not lessen it).
        let paid = self.ledger.totals(0).paid;
        let back = (paid - self.total).clamp(0, value);
        if back > 0 {
            let terms = GiveBack {
                reason: format!("items cancelled: {}", draft.reason),
                lines: unrefunded,
                by_hand: EntryState::Pending,
                actor,
            };
            data["refunds"] = Value::Array(self.give_back(None, back, terms, now));
        }
        let was = self.payment_status;
        self.payment_status = self.ledger.status(self.total);
        if was != self.payment_status {
            data["payment_status"] = json!({ "from": was, "to": self.payment_status });
        }
        if let Some(moved) = self.refresh_fulfilment() {
            data["fulfillment_status"] = moved;
        }
        self.sync_stock(book)?;
        self.touch(now);
        Ok(EventDraft {
            event_type: EventType::OrderUpdated,
            data,
        })
    }

    /// The first of `serials` that a unit of `lines` (or of a shipment not
    /// cancelled) refers to.
    fn referring_to(&self, lines: &[Line], serials: &[String]) -> Option<String> {
        let shipped = self
            .shipments
            .iter()
            .filter(|s| s.state != ShipmentState::Cancelled)
            .flat_map(|s| &s.lines)
            .flat_map(|sl| &sl.instances);
        lines
            .iter()
            .flat_map(|l| &l.instances)
            .chain(shipped)
            .filter_map(|u| u.refers_to.as_ref())
            .find(|target| serials.contains(target))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfilment::tests::{
        act, fields, line_of, new_shipment, order_of, pay, ship_lines, t, unit, Shop,
    };
    use crate::fulfilment::{ShipmentAction, ShipmentDraft};
    use crate::ids::TenantId;
    use crate::status::{FulfillmentStatus, PaymentStatus};

    fn all(reason: &str) -> CancelItems {
        CancelItems {
            lines: None,
            reason: reason.into(),
        }
    }

    fn some(o: &Order, lines: &[(usize, u32)]) -> CancelItems {
        CancelItems {
            lines: Some(
                lines
                    .iter()
                    .map(|(i, n)| (o.lines[*i].id, Some(*n)))
                    .collect(),
            ),
            reason: "out of stock".into(),
        }
    }

    #[test]
    fn a_partly_shipped_order_calls_off_the_rest_and_may_complete() {
        let mut shop = Shop::with(&[("A", 10), ("B", 10)]);
        let mut o = shop.order(&[("A", 2), ("B", 1)]);
        pay(&mut o, 300_000);
        let one_a = ship_lines(&o, &[(0, 1)]);
        let parcel = new_shipment(&mut o, one_a).expect("one A");
        for a in [ShipmentAction::Ship, ShipmentAction::Deliver] {
            shop.run(|b| act(&mut o, parcel, a, b)).expect("moves");
        }
        assert!(o.check(Action::Cancel).is_err(), "goods have shipped");
        assert!(o.check(Action::Complete).is_err(), "not all delivered");

        let e = shop
            .run(|b| o.cancel_items(all("no more in stock"), Actor::system(), b, t()))
            .expect("called off");
        assert_eq!(e.event_type, EventType::OrderUpdated);
        assert_eq!(
            e.data["cancelled_items"],
            json!([{"line_id": o.lines[0].id, "quantity": 1}, {"line_id": o.lines[1].id, "quantity": 1}])
        );
        assert_eq!(
            e.data["changes"]["total"],
            json!({"from": "3000.00", "to": "1000.00"})
        );
        assert_eq!(
            o.lines
                .iter()
                .map(|l| (l.quantity, l.cancelled))
                .collect::<Vec<_>>(),
            [(1, 1), (0, 1)]
        );
        assert_eq!((o.subtotal, o.total), (100_000, 100_000));
        assert_eq!(shop.stock("A"), (9, 0), "the unshipped unit is let go");
        assert_eq!(shop.stock("B"), (10, 0));
        assert_eq!(o.fulfillment_status, FulfillmentStatus::Delivered);
        // Two thousand paid for goods that will not come go back, by hand.
        assert_eq!(o.ledger.refunds.len(), 1);
        assert_eq!(o.ledger.refunds[0].amount, 200_000);
        assert_eq!(o.ledger.refunds[0].state, EntryState::Pending);
        assert_eq!(o.payment_status, PaymentStatus::Pending);
        assert!(
            o.check(Action::Complete).is_ok(),
            "everything left was delivered"
        );
        let again = shop.run(|b| o.cancel_items(all("again"), Actor::system(), b, t()));
        assert!(matches!(again, Err(Refusal::Transition(_))));
    }

    #[test]
    fn units_asked_are_checked_and_an_order_keeps_at_least_one() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 3)]);
        let before = o.clone();
        let refused = shop
            .run(|b| o.cancel_items(some(&o, &[(0, 4)]), Actor::system(), b, t()))
            .expect_err("four of three");
        assert_eq!(fields(refused), ["lines[0].quantity"]);
        let everything = shop
            .run(|b| o.cancel_items(some(&o, &[(0, 3)]), Actor::system(), b, t()))
            .expect_err("every unit");
        match everything {
            Refusal::Transition(e) => {
                assert!(
                    e.reason.is_some_and(|r| r.contains("cancel the order")),
                    "{e}"
                )
            }
            other => panic!("expected a transition error, got {other:?}"),
        }
        assert_eq!(o, before, "a refusal changes nothing");

        let e = shop
            .run(|b| o.cancel_items(some(&o, &[(0, 1)]), Actor::system(), b, t()))
            .expect("one");
        assert_eq!(shop.stock("A"), (10, 2));
        assert_eq!((o.lines[0].quantity, o.total), (2, 200_000));
        assert_eq!(o.payment_status, PaymentStatus::Unpaid);
        assert!(e.data.get("refunds").is_none(), "nothing was paid");
        assert_eq!(o.version, before.version + 1);
    }

    #[test]
    fn a_part_paid_order_gets_back_only_what_it_paid_beyond_the_new_total() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 3)]);
        pay(&mut o, 250_000);
        shop.run(|b| o.cancel_items(some(&o, &[(0, 1)]), Actor::system(), b, t()))
            .expect("one");
        assert_eq!(o.ledger.refunds[0].amount, 50_000);
        shop.run(|b| o.cancel_items(some(&o, &[(0, 1)]), Actor::system(), b, t()))
            .expect("another");
        assert_eq!(
            o.ledger
                .refunds
                .iter()
                .map(|r| r.amount)
                .collect::<Vec<_>>(),
            [50_000, 100_000]
        );
    }

    #[test]
    fn units_a_refund_by_line_gave_back_are_not_refunded_again() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 2)]);
        pay(&mut o, 200_000);
        let line_id = o.lines[0].id;
        o.record_refund(
            crate::payment::RefundDraft {
                amount: None,
                lines: vec![RefundLine {
                    line_id,
                    quantity: 2,
                }],
                reason: "will not ship".into(),
                state: EntryState::Succeeded,
            },
            Actor::system(),
            t(),
        )
        .expect("refunded");
        let e = shop
            .run(|b| o.cancel_items(some(&o, &[(0, 1)]), Actor::system(), b, t()))
            .expect("called off");
        assert!(e.data.get("refunds").is_none(), "{e:?}");
        assert_eq!(o.ledger.refunds.len(), 1);
    }

    #[test]
    fn a_payment_awaiting_a_decision_is_settled_first() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 2)]);
        o.request_charge(crate::ids::PaymentId::new(), None, Actor::system(), t())
            .expect("charge");
        let refused = shop.run(|b| o.cancel_items(all("x"), Actor::system(), b, t()));
        match refused {
            Err(Refusal::Transition(e)) => {
                assert!(
                    e.reason.is_some_and(|r| r.contains("awaits a decision")),
                    "{e}"
                )
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_order_sent_again_as_first_ordered_is_unchanged() {
        let phone = line_of(
            None,
            "Phone",
            2,
            vec![unit(Some("IMEI-1"), None), unit(Some("IMEI-2"), None)],
        );
        let sim = line_of(None, "SIM", 1, Vec::new());
        let draft = crate::fulfilment::tests::draft_of(vec![phone, sim]);
        let mut o = order_of(TenantId::new(), draft.lines.clone());
        o.confirm(t()).expect("confirm");
        let mut book = StockBook::new([], Actor::system(), t());
        o.cancel_items(some(&o, &[(0, 1), (1, 1)]), Actor::system(), &mut book, t())
            .expect("called off");
        assert_eq!(
            o.reconcile(draft.clone()),
            Ok(crate::order::Reconcile::Unchanged)
        );
        let before = o.clone();
        let patch = crate::order::OrderPatch {
            lines: Some(draft.lines),
            ..Default::default()
        };
        assert_eq!(o.edit(patch, t()), Ok(None));
        assert_eq!(o, before);
    }

    #[test]
    fn serialised_units_go_from_the_end_unless_another_unit_refers_to_them() {
        let phone = line_of(
            None,
            "Phone",
            2,
            vec![unit(Some("IMEI-1"), None), unit(Some("IMEI-2"), None)],
        );
        let plan = line_of(
            None,
            "Plan",
            2,
            vec![unit(None, Some("IMEI-1")), unit(None, Some("IMEI-2"))],
        );
        let mut o = order_of(TenantId::new(), vec![phone, plan]);
        o.confirm(t()).expect("confirm");
        let mut book = StockBook::new([], Actor::system(), t());
        let refused = o
            .cancel_items(some(&o, &[(0, 1)]), Actor::system(), &mut book, t())
            .expect_err("the plan refers to IMEI-2");
        assert_eq!(fields(refused), ["lines"]);
        o.cancel_items(some(&o, &[(0, 1), (1, 1)]), Actor::system(), &mut book, t())
            .expect("both");
        assert_eq!(o.lines[0].instances, [unit(Some("IMEI-1"), None)]);
        assert_eq!(o.lines[1].instances, [unit(None, Some("IMEI-1"))]);
        // What is left ships as before.
        new_shipment(&mut o, ShipmentDraft::default()).expect("the rest");
        assert_eq!(o.shipments[0].lines[0].instances, o.lines[0].instances);
    }
}

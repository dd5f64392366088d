//! What else a change moved. A change's own event tells what it was asked
//! to do; the parts of the order it moved besides get events of their
//! own, so that a receiver following only shipments, refunds or returns
//! misses nothing: the shipments an order's cancel calls off, the refunds
//! a cancel or a return's refund puts under way, and the returns whose
//! refunds settle.

use serde_json::{json, Value};

use crate::event::{EventDraft, EventType};
use crate::fulfilment::ShipmentState;
use crate::order::Order;
use crate::returns::ReturnState;
use crate::timestamp::Timestamp;

/// How an order's parts stood before a change.
#[derive(Debug, Clone)]
pub struct Before {
    shipments: Vec<ShipmentState>,
    returns: Vec<ReturnState>,
    refunds: usize,
}

/// Whether `told` is about the part of kind `what` with id `id`.
fn tells_of(told: &EventDraft, what: &str, id: &Value) -> bool {
    told.data.get(what).and_then(|part| part.get("id")) == Some(id)
}

fn shipment_event(state: ShipmentState) -> EventType {
    match state {
        ShipmentState::Pending => EventType::ShipmentCreated,
        ShipmentState::Shipped => EventType::ShipmentShipped,
        ShipmentState::InTransit => EventType::ShipmentInTransit,
        ShipmentState::Delivered => EventType::ShipmentDelivered,
        ShipmentState::Cancelled => EventType::ShipmentCancelled,
    }
}

fn return_event(from: ReturnState, to: ReturnState) -> EventType {
    match to {
        ReturnState::Requested => EventType::ReturnRequested,
        ReturnState::Received if from == ReturnState::RefundPending => {
            EventType::ReturnRefundFailed
        }
        ReturnState::Received => EventType::ReturnReceived,
        ReturnState::RefundPending => EventType::ReturnRefundPending,
        ReturnState::Refunded => EventType::ReturnRefunded,
        ReturnState::Closed => EventType::ReturnClosed,
    }
}

impl Order {
    /// How its parts stand, to tell afterwards what a change moved.
    pub fn before_change(&self) -> Before {
        Before {
            shipments: self.shipments.iter().map(|s| s.state).collect(),
            returns: self.returns.iter().map(|r| r.state).collect(),
            refunds: self.ledger.refunds.len(),
        }
    }

    /// After a change whose own event is `told`: moves the returns whose
    /// refunds settled, and returns an event for each refund the change
    /// recorded (`refund.recorded`), each shipment and each return it
    /// moved, that `told` is not itself about.
    pub fn aftermath(
        &mut self,
        before: &Before,
        told: &EventDraft,
        now: Timestamp,
    ) -> Vec<EventDraft> {
        self.follow_refunds(now);
        let mut events = Vec::new();
        for refund in self.ledger.refunds.iter().skip(before.refunds) {
            let id = json!(refund.id);
            if told.event_type == EventType::RefundRecorded && tells_of(told, "refund", &id) {
                continue;
            }
            let mut data = json!({ "refund": refund.to_json(self.currency) });
            self.money_figures(&mut data);
            events.push(EventDraft {
                event_type: EventType::RefundRecorded,
                data,
            });
        }
        for (shipment, from) in self.shipments.iter().zip(&before.shipments) {
            if shipment.state == *from || tells_of(told, "shipment", &json!(shipment.id)) {
                continue;
            }
            events.push(EventDraft {
                event_type: shipment_event(shipment.state),
                data: json!({
                    "shipment": shipment.to_json(),
                    "state": { "from": from, "to": shipment.state },
                }),
            });
        }
        for (ret, from) in self.returns.iter().zip(&before.returns) {
            if ret.state == *from || tells_of(told, "return", &json!(ret.id)) {
                continue;
            }
            events.push(EventDraft {
                event_type: return_event(*from, ret.state),
                data: json!({
                    "return": ret.to_json(),
                    "state": { "from": from, "to": ret.state },
                }),
            });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charge::{Entry, Settlement};
    use crate::event::Actor;
    use crate::fulfilment::tests::{deliver_everything, pay};
    use crate::fulfilment::{ShipmentAction, ShipmentDraft, Tracking};
    use crate::ids::PaymentId;
    use crate::ledger::{EntryState, LedgerError, RefundLine};
    use crate::order::tests::order_of;
    use crate::order::Refusal;
    use crate::payment::{LedgerRefusal, RefundDraft};
    use crate::returns::{Restock, ReturnDraft, ReturnRefund};
    use crate::stock::StockBook;

    /// Runs `f` on the order as the store does (its own event, then those
    /// of the aftermath) and returns the events' types.
    fn change<E: std::fmt::Debug>(
        o: &mut Order,
        f: impl FnOnce(&mut Order) -> Result<Option<EventDraft>, E>,
    ) -> Vec<&'static str> {
        let before = o.before_change();
        let told = f(o).expect("allowed").expect("a change");
        let after = o.aftermath(&before, &told, Timestamp::now());
        std::iter::once(&told)
            .chain(&after)
            .map(|e| e.event_type.as_str())
            .collect()
    }

    fn says(state: EntryState, id: &str) -> Settlement {
        Settlement {
            state,
            provider_id: Some(id.into()),
            error: (state == EntryState::Failed).then(|| "insufficient balance".into()),
        }
    }

    /// Paid in full by a card the provider charged.
    fn charged(o: &mut Order) {
        let card = PaymentId::new();
        let now = Timestamp::now();
        o.request_charge(card, None, Actor::system(), now)
            .expect("charge");
        o.settle(
            Entry::Payment(card),
            says(EntryState::Succeeded, "ch_1"),
            true,
            now,
        )
        .expect("paid");
    }

    fn paid_by_hand(o: &mut Order) {
        let total = o.total;
        pay(o, total);
    }

    /// A confirmed order of two units, delivered, with a received return
    /// of both.
    fn returned(pay: impl FnOnce(&mut Order)) -> Order {
        let mut o = order_of(&[(2, 100_000)]);
        o.confirm(Timestamp::now()).expect("confirm");
        pay(&mut o);
        deliver_everything(&mut o);
        let now = Timestamp::now();
        o.request_return(
            ReturnDraft {
                lines: None,
                reason: "too small".into(),
            },
            Actor::system(),
            now,
        )
        .expect("return");
        let mut book = StockBook::new([], Actor::system(), now);
        let r = o.returns[0].id;
        o.receive_return(r, Restock::default(), &mut book, now)
            .expect("received");
        o
    }

    fn refund(o: &mut Order) -> Result<Option<EventDraft>, Refusal> {
        let r = o.returns[0].id;
        let how = ReturnRefund {
            amount: None,
            by_hand: EntryState::Succeeded,
        };
        o.refund_return(r, how, Actor::system(), Timestamp::now())
    }

    #[test]
    fn a_return_refunded_through_the_provider_waits_for_it() {
        let mut o = returned(charged);
        assert_eq!(
            change(&mut o, refund),
            ["return.refund_pending", "refund.recorded"]
        );
        assert_eq!(o.returns[0].state, ReturnState::RefundPending);
        assert_eq!(o.returns[0].refund_amount, 200_000);
        assert_eq!(refund(&mut o), Ok(None), "asking again changes nothing");
        assert!(matches!(
            o.close_return(o.returns[0].id, Timestamp::now()),
            Err(Refusal::State(_))
        ));

        // The provider refuses: the money is still the shop's to give back.
        let first = o.ledger.refunds[0].id;
        let now = Timestamp::now();
        assert_eq!(
            change(&mut o, |o| o.settle(
                Entry::Refund(first),
                says(EntryState::Failed, "rf_1"),
                true,
                now
            )),
            ["refund.failed", "return.refund_failed"]
        );
        assert_eq!(o.returns[0].state, ReturnState::Received);

        // Again, with the units (the failed refund gave none back).
        assert_eq!(
            change(&mut o, refund),
            ["return.refund_pending", "refund.recorded"]
        );
        let second = o.ledger.refunds[1].clone();
        assert_eq!((second.amount, second.lines.len()), (200_000, 1));
        assert_eq!(o.returns[0].refund_ids, [first, second.id]);
        assert_eq!(
            change(&mut o, |o| o.settle(
                Entry::Refund(second.id),
                says(EntryState::Succeeded, "rf_2"),
                true,
                now
            )),
            ["refund.succeeded", "return.refunded"]
        );
        assert_eq!(o.returns[0].state, ReturnState::Refunded);
        assert!(o.returns[0].refunded_at.is_some());
    }

    #[test]
    fn a_part_refund_that_failed_is_tried_again_for_what_was_asked() {
        let mut o = returned(charged);
        let r = o.returns[0].id;
        let half = ReturnRefund {
            amount: Some(50_000),
            by_hand: EntryState::Succeeded,
        };
        o.refund_return(r, half, Actor::system(), Timestamp::now())
            .expect("half");
        let first = o.ledger.refunds[0].id;
        o.settle(
            Entry::Refund(first),
            says(EntryState::Failed, "rf_1"),
            true,
            Timestamp::now(),
        )
        .expect("failed");
        o.follow_refunds(Timestamp::now());
        assert_eq!(o.returns[0].state, ReturnState::Received);
        refund(&mut o).expect("again");
        assert_eq!(
            o.ledger.refunds[1].amount, 50_000,
            "what was asked, not all"
        );
    }

    #[test]
    fn a_return_paid_back_by_hand_is_refunded_at_once() {
        let mut o = returned(paid_by_hand);
        assert_eq!(
            change(&mut o, refund),
            ["return.refunded", "refund.recorded"]
        );
        assert_eq!(o.returns[0].state, ReturnState::Refunded);
    }

    #[test]
    fn units_refunded_before_their_return_are_not_refunded_twice() {
        let mut o = returned(paid_by_hand);
        let line_id = o.lines[0].id;
        o.record_refund(
            RefundDraft {
                amount: None,
                lines: vec![RefundLine {
                    line_id,
                    quantity: 1,
                }],
                reason: "goodwill".into(),
                state: EntryState::Succeeded,
            },
            Actor::system(),
            Timestamp::now(),
        )
        .expect("refunded");
        match refund(&mut o) {
            Err(Refusal::Ledger(LedgerRefusal {
                error: LedgerError::Conflict(why),
                ..
            })) => assert!(why.contains("already refunded"), "{why}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(o.returns[0].state, ReturnState::Received);
    }

    #[test]
    fn cancelling_an_order_tells_of_each_shipment_and_refund_it_moved() {
        let mut o = order_of(&[(2, 100_000), (1, 50_000)]);
        o.confirm(Timestamp::now()).expect("confirm");
        paid_by_hand(&mut o);
        o.create_shipment(ShipmentDraft::default(), Actor::system(), Timestamp::now())
            .expect("packing");
        assert_eq!(
            change(&mut o, |o| o
                .cancel("out of stock".into(), Timestamp::now())
                .map(Some)),
            ["order.cancelled", "refund.recorded", "shipment.cancelled"]
        );
    }

    #[test]
    fn a_shipment_told_only_new_tracking_is_updated() {
        let mut o = order_of(&[(1, 100_000)]);
        o.confirm(Timestamp::now()).expect("confirm");
        o.create_shipment(ShipmentDraft::default(), Actor::system(), Timestamp::now())
            .expect("packing");
        let id = o.shipments[0].id;
        let mut book = StockBook::new([], Actor::system(), Timestamp::now());
        let mut ship = |o: &mut Order, number: Option<&str>| {
            let tracking = Tracking {
                tracking_number: number.map(str::to_string),
                ..Tracking::default()
            };
            o.act_on_shipment(
                id,
                ShipmentAction::Ship,
                tracking,
                &mut book,
                Timestamp::now(),
            )
        };
        assert_eq!(change(&mut o, |o| ship(o, None)), ["shipment.shipped"]);
        assert_eq!(
            change(&mut o, |o| ship(o, Some("GIG-1"))),
            ["shipment.updated"]
        );
        assert_eq!(ship(&mut o, Some("GIG-1")), Ok(None));
    }
}

//! The three statuses of an order, their transition tables, and the one-word
//! stage derived from them.
//!
//! As in Shopify and Medusa, an order's lifecycle, its money and its goods
//! move separately:
//!
//! - [`OrderStatus`]: `pending → confirmed → completed`, or `cancelled`.
//! - [`PaymentStatus`]: what the payment ledger says.
//! - [`FulfillmentStatus`]: what the shipments say.
//!
//! [`Stage`] folds the three into the single word people and chat use.
//! Every move is checked against a table here; an illegal one is a
//! [`TransitionError`] naming the current status and what is allowed from it.

str_enum!(
    /// The order's lifecycle.
    OrderStatus {
        /// Created, waiting for the shop or the buyer to confirm.
        Pending = "pending",
        /// Accepted: the shop will deliver once paid.
        Confirmed = "confirmed",
        /// Done: every unit delivered; only a return may still come back.
        Completed = "completed",
        /// Called off, with a reason. Terminal.
        Cancelled = "cancelled",
    }
);

str_enum!(
    /// Where the money stands, derived from the payment ledger.
    PaymentStatus {
        Unpaid = "unpaid",
        /// A payment is processing or a receipt is under review.
        Pending = "pending",
        PartiallyPaid = "partially_paid",
        Paid = "paid",
        PartiallyRefunded = "partially_refunded",
        Refunded = "refunded",
    }
);

str_enum!(
    /// Where the goods stand, derived from the shipments and returns.
    FulfillmentStatus {
        Unfulfilled = "unfulfilled",
        PartiallyShipped = "partially_shipped",
        Shipped = "shipped",
        PartiallyDelivered = "partially_delivered",
        Delivered = "delivered",
        PartiallyReturned = "partially_returned",
        Returned = "returned",
    }
);

str_enum!(
    /// One word for people and chat, derived from the three statuses.
    Stage {
        Pending = "pending",
        Confirmed = "confirmed",
        Paid = "paid",
        Shipped = "shipped",
        Delivered = "delivered",
        Completed = "completed",
        Cancelled = "cancelled",
    }
);

str_enum!(
    /// What staff, integrations or buyers can do to an order.
    Action {
        Confirm = "confirm",
        Cancel = "cancel",
        Complete = "complete",
        Edit = "edit",
        /// Put units in a shipment.
        Ship = "ship",
        /// Take delivered units back.
        Return = "return",
        /// Call off units not yet in a shipment.
        CancelItems = "cancel_items",
    }
);

impl OrderStatus {
    /// The transition table of `status`: where each action leads from here.
    pub fn after(self, action: Action) -> Option<OrderStatus> {
        use Action as A;
        use OrderStatus as S;
        match (self, action) {
            (S::Pending, A::Confirm) => Some(S::Confirmed),
            (S::Pending | S::Confirmed, A::Cancel) => Some(S::Cancelled),
            (S::Confirmed, A::Complete) => Some(S::Completed),
            (S::Pending | S::Confirmed, A::Edit) => Some(self),
            (S::Confirmed, A::Ship) => Some(self),
            (S::Pending | S::Confirmed, A::CancelItems) => Some(self),
            // A completed order's goods can still come back.
            (S::Confirmed | S::Completed, A::Return) => Some(self),
            _ => None,
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Cancelled)
    }
}

impl PaymentStatus {
    /// The transition table of `payment_status`: the moves the payment
    /// ledger can make (it derives the status; a property test of the
    /// ledger checks it never makes another). A refund makes an order
    /// (partially) refunded for good, except that money received after a
    /// full refund makes it partially refunded again, not hidden, and that
    /// a refund under way (by a provider, or by hand) is pending until it
    /// ends.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        use PaymentStatus as P;
        if self == next {
            return true;
        }
        match self {
            P::Unpaid => matches!(next, P::Pending | P::PartiallyPaid | P::Paid),
            P::Pending => matches!(
                next,
                P::Unpaid | P::PartiallyPaid | P::Paid | P::PartiallyRefunded | P::Refunded
            ),
            P::PartiallyPaid => matches!(
                next,
                P::Pending | P::Paid | P::PartiallyRefunded | P::Refunded
            ),
            P::Paid => matches!(next, P::Pending | P::PartiallyRefunded | P::Refunded),
            P::PartiallyRefunded => matches!(next, P::Pending | P::Refunded),
            P::Refunded => matches!(next, P::Pending | P::PartiallyRefunded),
        }
    }
}

impl FulfillmentStatus {
    /// The transition table of `fulfillment_status`.
    pub fn can_become(self, next: FulfillmentStatus) -> bool {
        use FulfillmentStatus as F;
        if self == next {
            return true;
        }
        match self {
            F::Unfulfilled => matches!(next, F::PartiallyShipped | F::Shipped),
            F::PartiallyShipped => {
                matches!(next, F::Unfulfilled | F::Shipped | F::PartiallyDelivered)
            }
            F::Shipped => matches!(
                next,
                F::PartiallyShipped | F::PartiallyDelivered | F::Delivered
            ),
            F::PartiallyDelivered => matches!(next, F::Delivered | F::PartiallyReturned),
            F::Delivered => matches!(next, F::PartiallyReturned | F::Returned),
            F::PartiallyReturned => matches!(next, F::Returned),
            F::Returned => false,
        }
    }

    /// True once any goods have left the shop.
    pub fn has_shipped(self) -> bool {
        !matches!(self, FulfillmentStatus::Unfulfilled)
    }
}

impl Stage {
    /// Folds the three statuses into one word: the lifecycle's end states
    /// first, then the goods, then the money, then the lifecycle.
    pub fn of(
        status: OrderStatus,
        payment: PaymentStatus,
        fulfillment: FulfillmentStatus,
    ) -> Stage {
        use FulfillmentStatus as F;
        use PaymentStatus as P;
        match status {
            OrderStatus::Cancelled => return Stage::Cancelled,
            OrderStatus::Completed => return Stage::Completed,
            _ => {}
        }
        match fulfillment {
            F::Delivered | F::PartiallyReturned | F::Returned => return Stage::Delivered,
            F::PartiallyShipped | F::Shipped | F::PartiallyDelivered => return Stage::Shipped,
            F::Unfulfilled => {}
        }
        if matches!(payment, P::Paid | P::PartiallyRefunded) {
            return Stage::Paid;
        }
        match status {
            OrderStatus::Confirmed => Stage::Confirmed,
            _ => Stage::Pending,
        }
    }
}

/// An action that is not allowed in the order's current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an order whose status is {status}{}", explain(.reason))]
pub struct TransitionError {
    pub action: Action,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub fulfillment_status: FulfillmentStatus,
    /// Why, when the status alone does not say it.
    pub reason: Option<&'static str>,
    /// What can be done instead, from the current state.
    pub allowed: Vec<Action>,
}

fn explain(reason: &Option<&'static str>) -> String {
    reason.map(|r| format!(" ({r})")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_lifecycle_table() {
        use Action as A;
        use OrderStatus as S;
        assert_eq!(S::Pending.after(A::Confirm), Some(S::Confirmed));
        assert_eq!(S::Confirmed.after(A::Confirm), None);
        assert_eq!(S::Confirmed.after(A::Complete), Some(S::Completed));
        assert_eq!(S::Pending.after(A::Complete), None);
        assert_eq!(S::Pending.after(A::Cancel), Some(S::Cancelled));
        assert_eq!(S::Confirmed.after(A::Cancel), Some(S::Cancelled));
        assert_eq!(S::Confirmed.after(A::Ship), Some(S::Confirmed));
        assert_eq!(S::Pending.after(A::Ship), None);
        for terminal in [S::Completed, S::Cancelled] {
            for a in Action::ALL {
                let stays = terminal == S::Completed && *a == A::Return;
                let expected = stays.then_some(terminal);
                assert_eq!(terminal.after(*a), expected, "{terminal} must be terminal");
            }
        }
    }

    #[test]
    fn stage_folds_the_statuses() {
        use FulfillmentStatus as F;
        use OrderStatus as S;
        use PaymentStatus as P;
        assert_eq!(
            Stage::of(S::Pending, P::Unpaid, F::Unfulfilled),
            Stage::Pending
        );
        assert_eq!(
            Stage::of(S::Confirmed, P::Unpaid, F::Unfulfilled),
            Stage::Confirmed
        );
        assert_eq!(
            Stage::of(S::Confirmed, P::Pending, F::Unfulfilled),
            Stage::Confirmed
        );
        assert_eq!(
            Stage::of(S::Confirmed, P::Paid, F::Unfulfilled),
            Stage::Paid
        );
        assert_eq!(Stage::of(S::Confirmed, P::Paid, F::Shipped), Stage::Shipped);
        assert_eq!(
            Stage::of(S::Confirmed, P::Paid, F::Delivered),
            Stage::Delivered
        );
        assert_eq!(
            Stage::of(S::Completed, P::Paid, F::Delivered),
            Stage::Completed
        );
        assert_eq!(
            Stage::of(S::Cancelled, P::Refunded, F::Unfulfilled),
            Stage::Cancelled
        );
    }

    #[test]
    fn names_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
        }
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(*s));
        }
        for s in FulfillmentStatus::ALL {
            assert_eq!(FulfillmentStatus::parse(s.as_str()), Some(*s));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(*s));
        }
        assert_eq!(OrderStatus::parse("paid"), None);
        assert_eq!(
            OrderStatus::accepted(),
            "pending, confirmed, completed, cancelled"
        );
    }

    fn any_status() -> impl Strategy<Value = OrderStatus> {
        prop::sample::select(OrderStatus::ALL.to_vec())
    }
    fn any_action() -> impl Strategy<Value = Action> {
        prop::sample::select(Action::ALL.to_vec())
    }

    proptest! {
        /// Whatever sequence of actions is tried, the status only ever
        /// moves forward, and nothing leaves a terminal status.
        #[test]
        fn statuses_only_move_forward(actions in prop::collection::vec(any_action(), 0..20)) {
            let rank = |s: OrderStatus| match s {
                OrderStatus::Pending => 0,
                OrderStatus::Confirmed => 1,
                OrderStatus::Completed | OrderStatus::Cancelled => 2,
            };
            let mut s = OrderStatus::Pending;
            for a in actions {
                if let Some(next) = s.after(a) {
                    prop_assert!(rank(next) >= rank(s));
                    prop_assert!(!s.is_terminal() || next == s, "nothing leaves {}", s);
                    s = next;
                }
            }
        }

        #[test]
        fn refunds_are_for_good_and_returned_is_terminal(p in prop::sample::select(PaymentStatus::ALL.to_vec()), f in prop::sample::select(FulfillmentStatus::ALL.to_vec())) {
            // Refunded stays refunded, but for another refund under way.
            let refunded = [PaymentStatus::PartiallyRefunded, PaymentStatus::Refunded];
            for from in refunded {
                prop_assert_eq!(from.can_become(p), refunded.contains(&p) || p == PaymentStatus::Pending);
            }
            prop_assert_eq!(FulfillmentStatus::Returned.can_become(f), f == FulfillmentStatus::Returned);
        }

        #[test]
        fn stage_is_cancelled_exactly_when_status_is(s in any_status(), p in prop::sample::select(PaymentStatus::ALL.to_vec()), f in prop::sample::select(FulfillmentStatus::ALL.to_vec())) {
            prop_assert_eq!(Stage::of(s, p, f) == Stage::Cancelled, s == OrderStatus::Cancelled);
        }
    }
}

//! What the chatbot does with a message it understood: which of the
//! buyer's own orders it is about, or which question to ask. A bare
//! "confirm" means the buyer's only order awaiting confirmation; with
//! several, the bot lists them by number and the next reply ("2", "the
//! second one", or a reference) picks one. Only the sender's orders are
//! ever considered: an order reference of someone else's order is an
//! order the bot does not know.

use serde::{Deserialize, Serialize};

use crate::ids::OrderId;
use crate::intent::{Intent, Understood};
use crate::order::Order;
use crate::reference::OrderReference;
use crate::status::{Action, OrderStatus, PaymentStatus};
use crate::timestamp::Timestamp;

/// How long a question the bot asked waits for its answer.
pub const QUESTION_MINUTES: u64 = 30;

/// The most orders a question lists, and "my orders" shows.
pub const MAX_CHOICES: usize = 9;

/// What can be done to one order from a chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "act", rename_all = "snake_case")]
pub enum Act {
    Confirm,
    Cancel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Status,
    /// The buyer says they paid: how to send the receipt.
    Receipt,
    /// A receipt (an image or a document) to attach to the order.
    AttachReceipt {
        media_id: String,
    },
}

impl Act {
    /// Whether `order` is one this act may be about when the buyer names
    /// none: confirm an order awaiting confirmation, cancel one that can
    /// be cancelled, attach a receipt to (or ask after paying) one still
    /// owed money, ask after one not yet finished.
    fn fits(&self, order: &Order) -> bool {
        match self {
            Act::Confirm => order.status == OrderStatus::Pending,
            // A buyer calls off what they have not paid for; the shop
            // cancels a paid order (and sees to the refund).
            Act::Cancel { .. } => {
                order.check(Action::Cancel).is_ok() && order.payment_status == PaymentStatus::Unpaid
            }
            Act::Status => !order.status.is_terminal(),
            // Pending: a receipt is in review (another may follow it).
            Act::Receipt | Act::AttachReceipt { .. } => {
                !order.status.is_terminal()
                    && matches!(
                        order.payment_status,
                        PaymentStatus::Unpaid
                            | PaymentStatus::PartiallyPaid
                            | PaymentStatus::Pending
                    )
            }
        }
    }
}

/// A question the bot asked and waits on: which of `choices` the act is
/// for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    #[serde(flatten)]
    pub act: Act,
    pub choices: Vec<OrderId>,
    pub asked_at: Timestamp,
}

impl Question {
    /// Whether it still waits for an answer at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        now < self.asked_at.plus_millis(QUESTION_MINUTES as i64 * 60_000)
    }
}

/// What the bot does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Do `act` to `order` (and answer with how it went).
    Act { act: Act, order: OrderId },
    /// Ask which of `choices` (newest first) the act is for.
    Ask(Question),
    /// Answer, touching no order.
    Say(Answer),
}

/// An answer that touches no order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// What the bot can do.
    Help,
    /// The buyer's latest orders, newest first.
    Orders(Vec<OrderId>),
    /// The message was not understood.
    NotUnderstood,
    /// A numbered reply with no question open, or a number not offered.
    NoSuchChoice { offered: usize },
    /// The sender has no orders with the shop.
    NoOrders,
    /// The reference is not one of the sender's orders.
    UnknownOrder(OrderReference),
    /// None of the sender's orders is one the act may be about.
    NothingFor(Act),
}

/// Decides what to do with `message` from a buyer whose orders are
/// `orders` (theirs only, newest first), with the question the bot last
/// asked them (`open` only while it is open), at `now`.
pub fn decide(
    message: Understood,
    orders: &[Order],
    open: Option<&Question>,
    now: Timestamp,
) -> Step {
    let open = open.filter(|q| q.is_open(now));
    let act = match message.intent {
        Intent::Confirm => Act::Confirm,
        Intent::Cancel { reason } => Act::Cancel { reason },
        Intent::Status => Act::Status,
        Intent::Receipt => Act::Receipt,
        Intent::Help => return Step::Say(Answer::Help),
        Intent::MyOrders => {
            return Step::Say(match orders.is_empty() {
                true => Answer::NoOrders,
                false => Answer::Orders(orders.iter().take(MAX_CHOICES).map(|o| o.id).collect()),
            })
        }
        Intent::Choice(n) => return answer(open, n),
        Intent::Reference => {
            // A reference that answers the open question takes its act.
            let answered = open.and_then(|q| {
                let o = orders
                    .iter()
                    .find(|o| Some(&o.reference) == message.reference.as_ref())?;
                q.choices.contains(&o.id).then(|| Step::Act {
                    act: q.act.clone(),
                    order: o.id,
                })
            });
            if let Some(step) = answered {
                return step;
            }
            Act::Status
        }
        Intent::Unknown => return Step::Say(Answer::NotUnderstood),
    };
    about(act, message.reference.as_ref(), orders, now)
}

/// A receipt arrived (an image or a document): it goes to the order named
/// in its caption, or the sender's only order owed money, or the bot asks
/// which.
pub fn receipt(
    media_id: String,
    caption: Option<&OrderReference>,
    orders: &[Order],
    now: Timestamp,
) -> Step {
    about(Act::AttachReceipt { media_id }, caption, orders, now)
}

/// The order `act` is about: the one `reference` names, or the only
/// order it fits; several make a question, asked at `now`.
fn about(act: Act, reference: Option<&OrderReference>, orders: &[Order], now: Timestamp) -> Step {
    if orders.is_empty() {
        return Step::Say(Answer::NoOrders);
    }
    if let Some(reference) = reference {
        return match orders.iter().find(|o| o.reference == *reference) {
            Some(o) => Step::Act { act, order: o.id },
            None => Step::Say(Answer::UnknownOrder(reference.clone())),
        };
    }
    let fitting: Vec<OrderId> = orders
        .iter()
        .filter(|o| act.fits(o))
        .map(|o| o.id)
        .take(MAX_CHOICES)
        .collect();
    match fitting.as_slice() {
        [] if act == Act::Status => Step::Act {
            // Nothing under way: the latest order says where things stand.
            act,
            order: orders[0].id,
        },
        [] => Step::Say(Answer::NothingFor(act)),
        [only] => Step::Act { act, order: *only },
        _ => Step::Ask(Question {
            act,
            choices: fitting,
            asked_at: now,
        }),
    }
}

/// The answer `n` to the open question.
fn answer(open: Option<&Question>, n: u32) -> Step {
    let Some(q) = open else {
        return Step::Say(Answer::NoSuchChoice { offered: 0 });
    };
    match usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|at| q.choices.get(at))
    {
        Some(order) => Step::Act {
            act: q.act.clone(),
            order: *order,
        },
        None => Step::Say(Answer::NoSuchChoice {
            offered: q.choices.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fulfilment::tests::{deliver_everything, pay};
    use crate::intent::understand;
    use crate::order::tests::order_of;

    fn t() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    /// An order with reference `r`, pending or confirmed.
    fn order(r: &str, confirmed: bool) -> Order {
        let mut o = order_of(&[(1, 100_000)]);
        o.reference = OrderReference::parse(r).expect("reference");
        if confirmed {
            o.confirm(t()).expect("confirm");
        }
        o
    }

    fn say(text: &str, orders: &[Order], open: Option<&Question>) -> Step {
        decide(understand(text), orders, open, t())
    }

    #[test]
    fn a_bare_confirm_is_for_the_only_order_awaiting_it() {
        let orders = [order("ORD-7K3Q-X2MB", true), order("ORD-4HV9-R2ZT", false)];
        assert_eq!(
            say("yes please", &orders, None),
            Step::Act {
                act: Act::Confirm,
                order: orders[1].id
            }
        );
        assert_eq!(
            say("abeg cancel am because e too cost", &orders, None),
            Step::Ask(Question {
                act: Act::Cancel {
                    reason: Some("e too cost".into())
                },
                choices: vec![orders[0].id, orders[1].id],
                asked_at: t(),
            }),
            "both can still be cancelled"
        );
    }

    #[test]
    fn with_several_the_bot_asks_and_understands_the_answer() {
        let orders = [order("ORD-7K3Q-X2MB", false), order("ORD-4HV9-R2ZT", false)];
        let Step::Ask(q) = say("confirm", &orders, None) else {
            panic!("a question");
        };
        assert_eq!(q.choices, [orders[0].id, orders[1].id]);
        let confirm = |i: usize| Step::Act {
            act: Act::Confirm,
            order: orders[i].id,
        };
        assert_eq!(say("2", &orders, Some(&q)), confirm(1));
        assert_eq!(say("the first one", &orders, Some(&q)), confirm(0));
        assert_eq!(
            say("ord 4hv9 r2zt", &orders, Some(&q)),
            confirm(1),
            "a reference answers too"
        );
        assert_eq!(
            say("3", &orders, Some(&q)),
            Step::Say(Answer::NoSuchChoice { offered: 2 })
        );
        // A new request is not an answer.
        assert_eq!(
            say("where is ORD-4HV9-R2ZT", &orders, Some(&q)),
            Step::Act {
                act: Act::Status,
                order: orders[1].id
            }
        );
        // Half an hour later the question is closed.
        let late = t().plus_millis(QUESTION_MINUTES as i64 * 60_000);
        assert_eq!(
            decide(understand("2"), &orders, Some(&q), late),
            Step::Say(Answer::NoSuchChoice { offered: 0 })
        );
    }

    #[test]
    fn only_the_senders_orders_are_known() {
        let mine = [order("ORD-7K3Q-X2MB", false)];
        let theirs = OrderReference::parse("ORD-M5ND-8QW3").expect("reference");
        assert_eq!(
            say("cancel ORD-M5ND-8QW3", &mine, None),
            Step::Say(Answer::UnknownOrder(theirs))
        );
        assert_eq!(say("confirm", &[], None), Step::Say(Answer::NoOrders));
        assert_eq!(say("my orders", &[], None), Step::Say(Answer::NoOrders));
        assert_eq!(
            say("my orders", &mine, None),
            Step::Say(Answer::Orders(vec![mine[0].id]))
        );
        assert_eq!(say("hello", &mine, None), Step::Say(Answer::Help));
        assert_eq!(say("lol", &mine, None), Step::Say(Answer::NotUnderstood));
    }

    #[test]
    fn acts_are_offered_only_orders_they_fit() {
        let mut shipped = order("ORD-7K3Q-X2MB", true);
        deliver_everything(&mut shipped);
        pay(&mut shipped, 100_000);
        let orders = [shipped];
        assert_eq!(
            say("cancel", &orders, None),
            Step::Say(Answer::NothingFor(Act::Cancel { reason: None }))
        );
        assert_eq!(
            say("confirm", &orders, None),
            Step::Say(Answer::NothingFor(Act::Confirm))
        );
        // Nothing under way: the latest order says where things stand.
        assert_eq!(
            say("where is my order", &orders, None),
            Step::Act {
                act: Act::Status,
                order: orders[0].id
            }
        );
        let receipt_for = |orders: &[Order]| receipt("media-1".into(), None, orders, t());
        let attach = Act::AttachReceipt {
            media_id: "media-1".into(),
        };
        assert_eq!(
            receipt_for(&orders),
            Step::Say(Answer::NothingFor(attach.clone()))
        );
        let owed = [order("ORD-4HV9-R2ZT", true)];
        assert_eq!(
            receipt_for(&owed),
            Step::Act {
                act: attach,
                order: owed[0].id
            }
        );
    }
}

//! Goods coming back: a return of delivered units is `requested`, then
//! `received` (each line put back in stock or not), then `refunded`
//! through the payment ledger's refunds (`refund_pending` until they all
//! succeed; `received` again when one fails), or `closed` without a
//! refund. No line ever has more units in returns than were delivered.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::charge::GiveBack;
use crate::event::{Actor, EventDraft, EventType};
use crate::field::{FieldError, FieldErrors};
use crate::fulfilment::{Asking, StateError};
use crate::ids::{LineId, RefundId, ReturnId};
use crate::ledger::{EntryState, LedgerError, Refund, RefundLine};
use crate::order::{Order, Refusal};
use crate::status::Action;
use crate::stock::StockBook;
use crate::timestamp::Timestamp;

const RETURNING: Asking = Asking {
    what: "return",
    too_many: "more units than were delivered and are not already in a return",
    none_left: "none: no delivered unit of this item is left to return",
};

/// The most returns one order may have.
pub const MAX_RETURNS: usize = 100;
pub(crate) const TOO_MANY_RETURNS: &str = "the order has 100 returns, as many as it may";
const _: () = assert!(MAX_RETURNS == 100, "TOO_MANY_RETURNS names the limit");

str_enum!(
    /// Where a return is.
    ReturnState {
        /// The buyer asked to send units back.
        Requested = "requested",
        /// The units are back at the shop (and, after a failed refund,
        /// their money may be given back again).
        Received = "received",
        /// Refunds of their money are under way.
        RefundPending = "refund_pending",
        /// Their money went back: every refund of the return succeeded.
        Refunded = "refunded",
        /// Ended without a refund (never sent, or kept without one).
        Closed = "closed",
    }
);

str_enum!(
    /// What can be done to a return.
    ReturnAction {
        Receive = "receive",
        Refund = "refund",
        Close = "close",
    }
);

impl ReturnState {
    /// The transition table of a return. `refund` leads to `refunded` once
    /// its refunds succeed, to `refund_pending` until then; the refunds
    /// settling move it on (to `refunded`, or back to `received`).
    pub fn after(self, action: ReturnAction) -> Option<ReturnState> {
        use ReturnAction as A;
        use ReturnState as S;
        match (self, action) {
            (S::Requested, A::Receive) => Some(S::Received),
            (S::Received, A::Refund) => Some(S::Refunded),
            (S::Requested | S::Received, A::Close) => Some(S::Closed),
            _ => None,
        }
    }

    /// The actions this state allows.
    pub fn allowed(self) -> Vec<ReturnAction> {
        ReturnAction::ALL
            .iter()
            .copied()
            .filter(|a| self.after(*a).is_some())
            .collect()
    }
}

/// Units of one line in a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub line_id: LineId,
    pub quantity: u32,
    /// Whether the units were to go back in stock, once received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    /// Units that went back on hand (at most what shipping took off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restocked: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Units a buyer sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Return {
    pub id: ReturnId,
    pub state: ReturnState,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    pub requested_at: Timestamp,
    pub requested_by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<Timestamp>,
    /// The refunds that gave (or tried to give) the money back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refund_ids: Vec<RefundId>,
    /// What its refunds are to give back in all: it is `refunded` once
    /// those that succeeded make it up.
    #[serde(default, skip_serializing_if = "is_zero_amount")]
    pub refund_amount: i64,
}

fn is_zero_amount(n: &i64) -> bool {
    *n == 0
}

impl Return {
    /// Whether its units count against what may still be returned: while
    /// requested, and for good once received.
    pub(crate) fn holds_units(&self) -> bool {
        self.state == ReturnState::Requested || self.received_at.is_some()
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut shown = json!({ "id": self.id, "state": self.state, "lines": self.lines, "reason": self.reason });
        if !self.refund_ids.is_empty() {
            shown["refund_ids"] = json!(self.refund_ids);
        }
        shown
    }
}

/// A return as it is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnDraft {
    /// `(line, units)`; units default to all those returnable. `None`:
    /// every delivered unit not already in a return.
    pub lines: Option<Vec<(LineId, Option<u32>)>>,
    pub reason: String,
}

/// Which received lines go back in stock: `all`, except those named (in
/// the order the request named them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restock {
    pub all: bool,
    pub lines: Vec<(LineId, bool)>,
}

/// How a return's money goes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRefund {
    /// By default what the returned units cost (at most what is refundable).
    pub amount: Option<i64>,
    /// How the part paid back by hand stands (the provider's charges are
    /// refunded through it, pending until it says).
    pub by_hand: EntryState,
}

impl Order {
    /// Records a return of delivered units (`return.requested`).
    pub fn request_return(
        &mut self,
        draft: ReturnDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        self.check(Action::Return)?;
        let progress = self.progress();
        let mut errors = FieldErrors::new();
        let lines: Vec<ReturnLine> = match draft.lines {
            None => self
                .lines
                .iter()
                .zip(&progress)
                .filter(|(_, p)| p.returnable() > 0)
                .map(|(l, p)| ReturnLine {
                    line_id: l.id,
                    quantity: p.returnable(),
                    restock: None,
                    restocked: 0,
                })
                .collect(),
            Some(asked) if asked.is_empty() => {
                errors.push(
                    FieldError::new("lines", "a return needs at least one item")
                        .accepted("leave lines out to return every delivered unit"),
                );
                Vec::new()
            }
            Some(asked) => {
                let left: Vec<u32> = progress.iter().map(|p| p.returnable()).collect();
                self.units_asked(&asked, &left, &RETURNING, &mut errors)
                    .into_iter()
                    .map(|(_, i, quantity)| ReturnLine {
                        line_id: self.lines[i].id,
                        quantity,
                        restock: None,
                        restocked: 0,
                    })
                    .collect()
            }
        };
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let ret = Return {
            id: ReturnId::new_at(now),
            state: ReturnState::Requested,
            lines,
            reason: draft.reason,
            requested_at: now,
            requested_by: actor,
            received_at: None,
            refunded_at: None,
            closed_at: None,
            refund_ids: Vec::new(),
            refund_amount: 0,
        };
        let data = json!({ "return": ret.to_json() });
        self.returns.push(ret);
        self.touch(now);
        Ok(EventDraft {
            event_type: EventType::ReturnRequested,
            data,
        })
    }

    /// Where return `id` is, if `action` may move it: `Ok(None)` when the
    /// action already happened (asking again changes nothing).
    fn return_for(&self, id: ReturnId, action: ReturnAction) -> Result<Option<usize>, Refusal> {
        let at = self
            .returns
            .iter()
            .position(|r| r.id == id)
            .ok_or(Refusal::Missing("return"))?;
        let state = self.returns[at].state;
        let done = match action {
            ReturnAction::Receive => {
                self.returns[at].received_at.is_some() && state != ReturnState::Closed
            }
            ReturnAction::Refund => {
                matches!(state, ReturnState::RefundPending | ReturnState::Refunded)
            }
            ReturnAction::Close => state == ReturnState::Closed,
        };
        if done {
            return Ok(None);
        }
        if state.after(action).is_none() {
            return Err(StateError {
                what: "return",
                action: action.as_str(),
                state: state.as_str(),
                allowed: state.allowed().iter().map(|a| a.as_str()).collect(),
            }
            .into());
        }
        Ok(Some(at))
    }

    /// The units of return `id` are back (`return.received`): each line
    /// goes back in stock or not, as `restock` says.
    pub fn receive_return(
        &mut self,
        id: ReturnId,
        restock: Restock,
        book: &mut StockBook,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let Some(at) = self.return_for(id, ReturnAction::Receive)? else {
            return Ok(None);
        };
        let mut errors = FieldErrors::new();
        for (k, (line, _)) in restock.lines.iter().enumerate() {
            if restock.lines[..k].iter().any(|(other, _)| other == line) {
                errors.push(
                    FieldError::new(format!("lines[{k}].line_id"), "this item is already named")
                        .value(line)
                        .accepted("each item once"),
                );
            } else if !self.returns[at].lines.iter().any(|l| l.line_id == *line) {
                errors.push(
                    FieldError::new(
                        format!("lines[{k}].line_id"),
                        "this item is not in the return",
                    )
                    .value(line)
                    .accepted("the id of an item of the return"),
                );
            }
        }
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let mut lines = self.returns[at].lines.clone();
        for rl in &mut lines {
            let back = restock
                .lines
                .iter()
                .find(|(line, _)| *line == rl.line_id)
                .map_or(restock.all, |(_, back)| *back);
            rl.restock = Some(back);
            if back {
                if let Some(i) = self.lines.iter().position(|l| l.id == rl.line_id) {
                    rl.restocked = self.restock(i, rl.quantity, book);
                }
            }
        }
        let ret = &mut self.returns[at];
        ret.lines = lines;
        ret.state = ReturnState::Received;
        ret.received_at = Some(now);
        let mut data = json!({ "return": ret.to_json() });
        if let Some(moved) = self.refresh_fulfilment() {
            data["fulfillment_status"] = moved;
        }
        self.touch(now);
        Ok(Some(EventDraft {
            event_type: EventType::ReturnReceived,
            data,
        }))
    }

    /// Gives the money of received return `id` back (`return.refunded`):
    /// refunds through the provider for what it charged, by hand for the
    /// rest, with the return's units.
    pub fn refund_return(
        &mut self,
        id: ReturnId,
        how: ReturnRefund,
        actor: Actor,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let Some(at) = self.return_for(id, ReturnAction::Refund)? else {
            return Ok(None);
        };
        let ret = &self.returns[at];
        // What earlier attempts gave back (one that failed gave nothing);
        // the units go with the first refund that did not fail.
        let earlier: Vec<&Refund> = ret
            .refund_ids
            .iter()
            .filter_map(|id| self.refund(*id))
            .filter(|r| r.state != EntryState::Failed)
            .collect();
        let given: i64 = earlier.iter().map(|r| r.amount).sum();
        let units: Vec<RefundLine> = match earlier.iter().any(|r| !r.lines.is_empty()) {
            true => Vec::new(),
            false => ret
                .lines
                .iter()
                .map(|l| RefundLine {
                    line_id: l.line_id,
                    quantity: l.quantity,
                })
                .collect(),
        };
        let cost = self.return_cost(ret);
        if !units.is_empty() && self.refund_lines_value(&units).is_err() {
            return Err(self.ledger_refusal(LedgerError::Conflict(
                "units of this return were already refunded; close the return instead",
            )));
        }
        let left = cost.saturating_sub(given);
        let refundable = self.ledger.refundable();
        // Once asked for, what is still to give back is what was asked.
        let owed = match ret.refund_amount {
            0 => left,
            asked => asked.saturating_sub(given).min(left),
        };
        if let Some(asked) = how.amount.filter(|a| *a > left) {
            return Err(Refusal::Invalid(
                FieldError::new(
                    "amount",
                    "more than the returned units cost, less what was already given back",
                )
                .value(self.currency.format_amount(asked))
                .accepted(format!("at most {}", self.currency.format_amount(left)))
                .into(),
            ));
        }
        let amount = how.amount.unwrap_or(owed.min(refundable));
        if amount <= 0 || amount > refundable {
            return Err(self.ledger_refusal(if refundable == 0 {
                LedgerError::Conflict("nothing paid is left to refund; close the return instead")
            } else {
                LedgerError::RefundTooLarge {
                    asked: amount,
                    refundable,
                }
            }));
        }
        let terms = GiveBack {
            reason: format!("return {id}: {}", self.returns[at].reason),
            lines: units,
            by_hand: how.by_hand,
            actor,
        };
        let before = self.ledger.refunds.len();
        let refunds = self.give_back(None, amount, terms, now);
        let ids: Vec<RefundId> = self.ledger.refunds[before..].iter().map(|r| r.id).collect();
        let state = {
            let ret = &mut self.returns[at];
            ret.refund_ids.extend(ids);
            ret.refund_amount = given + amount;
            ret.state = ReturnState::RefundPending;
            self.follow_refunds(now);
            self.returns[at].state
        };
        let event_type = match state {
            ReturnState::Refunded => EventType::ReturnRefunded,
            _ => EventType::ReturnRefundPending,
        };
        let data = json!({ "return": self.returns[at].to_json(), "refunds": refunds });
        Ok(Some(self.ledger_event(event_type, data, now)))
    }

    /// What the units of `ret` cost.
    fn return_cost(&self, ret: &Return) -> i64 {
        let index = self.line_index();
        ret.lines
            .iter()
            .filter_map(|l| {
                let line = &self.lines[*index.get(&l.line_id)?];
                let given = self.refunded_units(line.id);
                Some(line.value_of(l.quantity, given, self.pricing.taxes_included))
            })
            .fold(0i64, i64::saturating_add)
    }

    /// Moves each return whose refunds are under way on by how they stand:
    /// `refunded` once those that succeeded make up its `refund_amount`,
    /// `received` again when one failed and none is pending (its money may
    /// then be given back again). Runs after every change.
    pub(crate) fn follow_refunds(&mut self, now: Timestamp) {
        for at in 0..self.returns.len() {
            let ret = &self.returns[at];
            if ret.state != ReturnState::RefundPending {
                continue;
            }
            let mut given = 0i64;
            let mut pending = false;
            for refund in ret.refund_ids.iter().filter_map(|id| self.refund(*id)) {
                match refund.state {
                    EntryState::Pending => pending = true,
                    EntryState::Succeeded => given += refund.amount,
                    EntryState::Failed => {}
                }
            }
            let next = if pending {
                ReturnState::RefundPending
            } else if given >= ret.refund_amount {
                ReturnState::Refunded
            } else {
                ReturnState::Received
            };
            let ret = &mut self.returns[at];
            ret.state = next;
            if next == ReturnState::Refunded {
                ret.refunded_at = Some(now);
            }
        }
    }

    /// Ends return `id` without a refund (`return.closed`): units never
    /// received may be returned again.
    pub fn close_return(
        &mut self,
        id: ReturnId,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let Some(at) = self.return_for(id, ReturnAction::Close)? else {
            return Ok(None);
        };
        let ret = &mut self.returns[at];
        let from = ret.state;
        ret.state = ReturnState::Closed;
        ret.closed_at = Some(now);
        let data = json!({ "return": ret.to_json(), "state": { "from": from, "to": ReturnState::Closed } });
        self.touch(now);
        Ok(Some(EventDraft {
            event_type: EventType::ReturnClosed,
            data,
        }))
    }

    /// What the refunds of `ret` are to give back in all (for a return
    /// refunded before it kept the figure: what they were for).
    pub fn return_refund_amount(&self, ret: &Return) -> i64 {
        match ret.refund_amount {
            0 => ret
                .refund_ids
                .iter()
                .filter_map(|id| self.refund(*id))
                .map(|r| r.amount)
                .fold(0, i64::saturating_add),
            amount => amount,
        }
    }

    /// The return `id`, if this order has it.
    pub fn return_of(&self, id: ReturnId) -> Option<&Return> {
        self.returns.iter().find(|r| r.id == id)
    }
}

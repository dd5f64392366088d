//! Getting the goods to the buyer: shipments of some or all of an order's
//! units, their way from the shop to the door, and the serialised units
//! (an IMEI per phone) they carry.
//!
//! A shipment is `pending` while it is packed, `shipped` once it leaves
//! (seed 003's release: its units come off the order's reservation and the
//! shop's stock), `in_transit`, then `delivered`; only a pending one can be
//! cancelled. Each line's shipped, delivered and returned units and the
//! order's `fulfillment_status` are derived from the shipments and returns,
//! in the change that moves them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::event::{Actor, EventDraft, EventType};
use crate::field::{FieldError, FieldErrors};
use crate::ids::{LineId, ShipmentId};
use crate::order::{Order, Refusal};
use crate::returns::{MAX_RETURNS, TOO_MANY_RETURNS};
use crate::status::{Action, FulfillmentStatus, OrderStatus, PaymentStatus};
use crate::stock::StockBook;
use crate::timestamp::Timestamp;

/// The most shipments one order may have, cancelled ones included.
pub const MAX_SHIPMENTS: usize = 200;
const TOO_MANY_SHIPMENTS: &str =
    "the order has 200 shipments (cancelled ones count), as many as it may";
const _: () = assert!(MAX_SHIPMENTS == 200, "TOO_MANY_SHIPMENTS names the limit");
const MAX_SERIAL_CHARS: usize = 100;
const MAX_TRACKING_CHARS: usize = 200;
const MAX_CARRIER_CHARS: usize = 100;

/// One unit of a serialised line (seed 003's `instances`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The unit's own number: an IMEI, a serial number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(example = "359876543210123"))]
    pub serial: Option<String>,
    /// The serial of the unit of an earlier item this one belongs to (a
    /// mobile plan's phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<String>,
}

fn check_text(field: &str, text: &str, max: usize) -> Result<String, FieldError> {
    let t = text.trim();
    if (1..=max).contains(&t.chars().count()) && !t.chars().any(char::is_control) {
        Ok(t.to_string())
    } else {
        Err(FieldError::new(field, format!("not a usable {field}"))
            .value(text)
            .accepted(format!("1 to {max} printable characters")))
    }
}

impl Instance {
    /// The unit as it is kept: each text trimmed and checked; field names
    /// in errors are relative to the unit.
    pub fn check(&self) -> Result<Instance, FieldErrors> {
        let mut errors = FieldErrors::new();
        let mut text = |field: &str, t: &Option<String>| {
            t.as_deref()
                .and_then(|t| errors.take(check_text(field, t, MAX_SERIAL_CHARS)))
        };
        let serial = text("serial", &self.serial);
        let refers_to = text("refers_to", &self.refers_to);
        if self.serial.is_none() && self.refers_to.is_none() {
            errors.push(
                FieldError::new(
                    "serial",
                    "a unit needs its serial, or the serial of the unit it belongs to",
                )
                .accepted("serial, refers_to, or both"),
            );
        }
        errors.finish(|| Instance { serial, refers_to })
    }

    /// How a shipment names the unit: its serial, else what it refers to.
    fn key(&self) -> Option<&str> {
        self.serial.as_deref().or(self.refers_to.as_deref())
    }
}

/// Checks a line's units as given: each one, and one per unit ordered
/// (or none). Field names in errors are relative to the line.
pub fn check_line_instances(
    units: &[Instance],
    quantity: u32,
    errors: &mut FieldErrors,
) -> Vec<Instance> {
    if !units.is_empty() && units.len() != quantity as usize {
        errors.push(
            FieldError::new("instances", "one instance per unit of the item")
                .value(units.len())
                .accepted(format!("none, or exactly {quantity} (the quantity)")),
        );
    }
    units
        .iter()
        .enumerate()
        .filter_map(|(j, u)| {
            errors.take_all(u.check().map_err(|e| e.under(&format!("instances[{j}]"))))
        })
        .collect()
}

/// The serials an order's units carry, each with the index of its line,
/// for checking new ones against.
#[derive(Debug, Default)]
pub(crate) struct Serials(BTreeMap<String, usize>);

impl Serials {
    /// Takes the units `units` of line `line` in: each serial must be new,
    /// and each `refers_to` the serial of a unit of an earlier line.
    /// `field` names the units in errors (`items[2].instances`).
    pub(crate) fn admit(
        &mut self,
        line: usize,
        units: &[Instance],
        field: &str,
        errors: &mut FieldErrors,
    ) {
        for (j, unit) in units.iter().enumerate() {
            if let Some(target) = &unit.refers_to {
                match self.0.get(target) {
                    Some(l) if *l < line => {}
                    found => errors.push(
                        FieldError::new(
                            format!("{field}[{j}].refers_to"),
                            if found.is_some() {
                                "a unit may only refer to a unit of an earlier item"
                            } else {
                                "no earlier item has a unit with this serial"
                            },
                        )
                        .value(target)
                        .accepted("the serial of a unit of an item listed before this one"),
                    ),
                }
            }
            if let Some(serial) = &unit.serial {
                if self.0.contains_key(serial) {
                    errors.push(
                        FieldError::new(
                            format!("{field}[{j}].serial"),
                            "another unit of this order already has this serial",
                        )
                        .value(serial)
                        .accepted("a serial no other unit of the order has"),
                    );
                } else {
                    self.0.insert(serial.clone(), line);
                }
            }
        }
    }
}

str_enum!(
    /// Where a shipment is (seed 003's New → Released → Transiting → Acquired).
    ShipmentState {
        /// Being packed; its units are set aside, still in the shop.
        Pending = "pending",
        /// Left the shop (seed 003's release): its units are deducted from stock.
        Shipped = "shipped",
        /// With the carrier.
        InTransit = "in_transit",
        /// At the buyer's.
        Delivered = "delivered",
        /// Called off before it left; its units may ship again.
        Cancelled = "cancelled",
    }
);

str_enum!(
    /// What can be done to a shipment.
    ShipmentAction {
        Ship = "ship",
        InTransit = "in_transit",
        Deliver = "deliver",
        Cancel = "cancel",
    }
);

impl ShipmentState {
    /// The transition table of a shipment.
    pub fn after(self, action: ShipmentAction) -> Option<ShipmentState> {
        use ShipmentAction as A;
        use ShipmentState as S;
        match (self, action) {
            (S::Pending, A::Ship) => Some(S::Shipped),
            (S::Shipped, A::InTransit) => Some(S::InTransit),
            (S::Shipped | S::InTransit, A::Deliver) => Some(S::Delivered),
            (S::Pending, A::Cancel) => Some(S::Cancelled),
            _ => None,
        }
    }

    /// Whether `action` is the one that led here (asking it again
    /// changes nothing but the tracking).
    fn after_repeat(self, action: ShipmentAction) -> bool {
        matches!(
            (self, action),
            (ShipmentState::Shipped, ShipmentAction::Ship)
                | (ShipmentState::InTransit, ShipmentAction::InTransit)
                | (ShipmentState::Delivered, ShipmentAction::Deliver)
                | (ShipmentState::Cancelled, ShipmentAction::Cancel)
        )
    }

    /// The actions this state allows.
    pub fn allowed(self) -> Vec<ShipmentAction> {
        ShipmentAction::ALL
            .iter()
            .copied()
            .filter(|a| self.after(*a).is_some())
            .collect()
    }

    /// Whether its units have left the shop.
    pub fn has_shipped(self) -> bool {
        matches!(
            self,
            ShipmentState::Shipped | ShipmentState::InTransit | ShipmentState::Delivered
        )
    }
}

/// An action a shipment's or a return's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a {what} whose state is {state}")]
pub struct StateError {
    pub what: &'static str,
    pub action: &'static str,
    pub state: &'static str,
    /// What can be done instead, from the current state.
    pub allowed: Vec<&'static str>,
}

/// Units of one line in a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentLine {
    pub line_id: LineId,
    pub quantity: u32,
    /// The serialised units it carries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Instance>,
    /// Units its shipping took off stock (none for an order that held
    /// none): at most these may go back on hand with a return.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deducted: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Who carries a shipment, and where to follow it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tracking {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

impl Tracking {
    /// Checks what is given; field names are the request's.
    pub fn parse(
        carrier: Option<&str>,
        number: Option<&str>,
        url: Option<&str>,
    ) -> Result<Tracking, FieldErrors> {
        let mut errors = FieldErrors::new();
        let carrier =
            carrier.and_then(|c| errors.take(check_text("carrier", c, MAX_CARRIER_CHARS)));
        let tracking_number =
            number.and_then(|n| errors.take(check_text("tracking_number", n, MAX_TRACKING_CHARS)));
        let tracking_url = url.and_then(|u| {
            let ok = url::Url::parse(u.trim())
                .ok()
                .filter(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some())
                .filter(|_| u.len() <= 2_000);
            errors.take(ok.map(|_| u.trim().to_string()).ok_or_else(|| {
                FieldError::new("tracking_url", "not a web address")
                    .value(u)
                    .accepted("an http or https URL of at most 2000 characters")
            }))
        });
        errors.finish(|| Tracking {
            carrier,
            tracking_number,
            tracking_url,
        })
    }

    /// Takes what `newer` says, keeping what it leaves out.
    fn update(&mut self, newer: Tracking) {
        if newer.carrier.is_some() {
            self.carrier = newer.carrier;
        }
        if newer.tracking_number.is_some() {
            self.tracking_number = newer.tracking_number;
        }
        if newer.tracking_url.is_some() {
            self.tracking_url = newer.tracking_url;
        }
    }
}

/// A parcel of some or all of an order's units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub state: ShipmentState,
    pub lines: Vec<ShipmentLine>,
    #[serde(flatten)]
    pub tracking: Tracking,
    pub created_at: Timestamp,
    pub created_by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_transit_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<Timestamp>,
}

impl Shipment {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "state": self.state,
            "lines": self.lines,
            "carrier": self.tracking.carrier,
            "tracking_number": self.tracking.tracking_number,
            "tracking_url": self.tracking.tracking_url,
        })
    }
}

/// Units of one line to put in a shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShipmentLineDraft {
    pub line_id: LineId,
    /// By default every unit of the line not yet in a shipment.
    pub quantity: Option<u32>,
    /// The serialised units it carries: those given at creation (by their
    /// serial) or, for a line that had none, new ones.
    pub instances: Vec<Instance>,
}

/// A shipment as it is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentDraft {
    /// `None`: every unit not yet in a shipment.
    pub lines: Option<Vec<ShipmentLineDraft>>,
    pub tracking: Tracking,
}

/// How far the units of one line have got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LineProgress {
    pub ordered: u32,
    /// In a shipment being packed.
    pub packing: u32,
    /// Left the shop (delivered units included).
    pub shipped: u32,
    pub delivered: u32,
    /// Came back (in a return that was received).
    pub returned: u32,
    /// In a return, requested or received (what may not be returned again).
    pub in_returns: u32,
    /// Called off before they shipped (not among those `ordered`).
    pub cancelled: u32,
}

impl LineProgress {
    /// Units not yet in any shipment.
    pub fn unallocated(&self) -> u32 {
        self.ordered.saturating_sub(self.packing + self.shipped)
    }

    /// Delivered units not already in a return.
    pub fn returnable(&self) -> u32 {
        self.delivered.saturating_sub(self.in_returns)
    }
}

/// The order's `fulfillment_status` for its lines' progress.
pub fn fulfilment_of(progress: &[LineProgress]) -> FulfillmentStatus {
    use FulfillmentStatus as F;
    let sum = |f: fn(&LineProgress) -> u32| progress.iter().map(|p| u64::from(f(p))).sum::<u64>();
    let (ordered, shipped, delivered, returned) = (
        sum(|p| p.ordered),
        sum(|p| p.shipped),
        sum(|p| p.delivered),
        sum(|p| p.returned),
    );
    if shipped == 0 {
        F::Unfulfilled
    } else if returned > 0 {
        if returned == ordered {
            F::Returned
        } else {
            F::PartiallyReturned
        }
    } else if delivered == ordered {
        F::Delivered
    } else if delivered > 0 {
        F::PartiallyDelivered
    } else if shipped == ordered {
        F::Shipped
    } else {
        F::PartiallyShipped
    }
}

/// How a shipment or a return words its checks of the units it asks for.
pub(crate) struct Asking {
    /// "shipment", "return".
    pub what: &'static str,
    /// Why a quantity is refused.
    pub too_many: &'static str,
    /// What is accepted when an item has no unit left.
    pub none_left: &'static str,
}

const SHIPPING: Asking = Asking {
    what: "shipment",
    too_many: "more units than the item has left to ship",
    none_left: "none: every unit of this item is already in a shipment",
};

impl Order {
    /// Checks units asked of the order's lines: `asked[k]` is `(line,
    /// units)`, units by default all of what is `left` of the line. Each
    /// must be a line of the order, named once, for 1 to what is left.
    /// Returns `(k, line index, units)` of those that pass; errors name
    /// `lines[k].…`.
    pub(crate) fn units_asked(
        &self,
        asked: &[(LineId, Option<u32>)],
        left: &[u32],
        asking: &Asking,
        errors: &mut FieldErrors,
    ) -> Vec<(usize, usize, u32)> {
        let index = self.line_index();
        let mut passed = Vec::new();
        for (k, (line_id, quantity)) in asked.iter().enumerate() {
            let Some(&i) = index.get(line_id) else {
                errors.push(
                    FieldError::new(format!("lines[{k}].line_id"), "no such item on this order")
                        .value(line_id)
                        .accepted("the id of one of the order's items"),
                );
                continue;
            };
            if asked[..k].iter().any(|(other, _)| other == line_id) {
                errors.push(
                    FieldError::new(
                        format!("lines[{k}].line_id"),
                        format!("this item is already in the {}", asking.what),
                    )
                    .value(line_id)
                    .accepted("each item once"),
                );
                continue;
            }
            let left = left[i];
            let quantity = quantity.unwrap_or(left);
            if quantity == 0 || quantity > left {
                errors.push(
                    FieldError::new(format!("lines[{k}].quantity"), asking.too_many)
                        .value(quantity)
                        .accepted(if left == 0 {
                            asking.none_left.to_string()
                        } else {
                            format!("1 to {left}")
                        }),
                );
                continue;
            }
            passed.push((k, i, quantity));
        }
        passed
    }

    /// Each line's position, by id.
    pub(crate) fn line_index(&self) -> BTreeMap<LineId, usize> {
        self.lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id, i))
            .collect()
    }

    /// The lines of shipments not cancelled that carry units of `line`.
    fn live_shipment_lines(&self, line: LineId) -> impl Iterator<Item = &ShipmentLine> {
        self.shipments
            .iter()
            .filter(|s| s.state != ShipmentState::Cancelled)
            .flat_map(|s| &s.lines)
            .filter(move |sl| sl.line_id == line)
    }

    /// How far each line's units have got, in line order.
    pub fn progress(&self) -> Vec<LineProgress> {
        let mut progress: Vec<LineProgress> = self
            .lines
            .iter()
            .map(|l| LineProgress {
                ordered: l.quantity,
                cancelled: l.cancelled,
                ..LineProgress::default()
            })
            .collect();
        let index = self.line_index();
        for s in &self.shipments {
            for sl in &s.lines {
                let Some(p) = index.get(&sl.line_id).map(|i| &mut progress[*i]) else {
                    continue;
                };
                match s.state {
                    ShipmentState::Pending => p.packing += sl.quantity,
                    ShipmentState::Shipped | ShipmentState::InTransit => p.shipped += sl.quantity,
                    ShipmentState::Delivered => {
                        p.shipped += sl.quantity;
                        p.delivered += sl.quantity;
                    }
                    ShipmentState::Cancelled => {}
                }
            }
        }
        for r in &self.returns {
            for rl in &r.lines {
                let Some(p) = index.get(&rl.line_id).map(|i| &mut progress[*i]) else {
                    continue;
                };
                if r.received_at.is_some() {
                    p.returned += rl.quantity;
                }
                if r.holds_units() {
                    p.in_returns += rl.quantity;
                }
            }
        }
        progress
    }

    /// Sets `fulfillment_status` from the shipments and returns; returns
    /// its move as an event shows it, when it moved.
    pub(crate) fn refresh_fulfilment(&mut self) -> Option<Value> {
        let from = self.fulfillment_status;
        let to = fulfilment_of(&self.progress());
        debug_assert!(from.can_become(to), "{from} cannot become {to}");
        self.fulfillment_status = to;
        (from != to).then(|| json!({ "from": from, "to": to }))
    }

    /// Why `action` is refused by the order's goods, if it is: `ship` needs
    /// units not yet in a shipment, `complete` every unit delivered,
    /// `return` delivered units not yet in a return, and an edit no
    /// shipment being packed; an order has at most [`MAX_SHIPMENTS`]
    /// shipments and [`MAX_RETURNS`] returns.
    pub(crate) fn goods_refuse(&self, action: Action) -> Option<&'static str> {
        let progress = || self.progress();
        match action {
            Action::Ship if self.shipments.len() >= MAX_SHIPMENTS => Some(TOO_MANY_SHIPMENTS),
            Action::Return if self.returns.len() >= MAX_RETURNS => Some(TOO_MANY_RETURNS),
            Action::Ship if progress().iter().all(|p| p.unallocated() == 0) => {
                Some("every unit is already in a shipment")
            }
            Action::Complete if progress().iter().any(|p| p.delivered < p.ordered) => {
                Some("not every unit has been delivered; ship and deliver them first")
            }
            Action::Return if progress().iter().all(|p| p.returnable() == 0) => {
                Some("no delivered units are left to return")
            }
            Action::CancelItems if progress().iter().all(|p| p.unallocated() == 0) => {
                Some("every unit is shipped or in a shipment; cancel a pending shipment first")
            }
            Action::Edit
                if self
                    .shipments
                    .iter()
                    .any(|s| s.state == ShipmentState::Pending) =>
            {
                Some("a shipment is being packed; cancel it first")
            }
            _ => None,
        }
    }

    /// The shipment `id`, if this order has it.
    pub fn shipment(&self, id: ShipmentId) -> Option<&Shipment> {
        self.shipments.iter().find(|s| s.id == id)
    }

    /// The serials of the units the order knows: given with its lines and
    /// carried by shipments not cancelled.
    fn serials(&self) -> Serials {
        let index = self.line_index();
        let mut known = BTreeMap::new();
        for (i, line) in self.lines.iter().enumerate() {
            for s in line.instances.iter().filter_map(|u| u.serial.clone()) {
                known.insert(s, i);
            }
        }
        for s in self
            .shipments
            .iter()
            .filter(|s| s.state != ShipmentState::Cancelled)
        {
            for sl in &s.lines {
                let Some(i) = index.get(&sl.line_id) else {
                    continue;
                };
                for serial in sl.instances.iter().filter_map(|u| u.serial.clone()) {
                    known.insert(serial, *i);
                }
            }
        }
        Serials(known)
    }

    /// The units of line `i` given with it that no shipment (not
    /// cancelled) carries yet, in line order.
    pub(crate) fn unshipped_instances(&self, i: usize) -> Vec<Instance> {
        let line = &self.lines[i];
        let mut taken: BTreeMap<&Instance, usize> = BTreeMap::new();
        for u in self
            .live_shipment_lines(line.id)
            .flat_map(|sl| &sl.instances)
        {
            *taken.entry(u).or_insert(0) += 1;
        }
        line.instances
            .iter()
            .filter(|u| match taken.get_mut(u) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .cloned()
            .collect()
    }

    /// Whether line `i` is serialised by its shipments: a shipment not
    /// cancelled named units of it that were not given with it.
    fn serialised_by_shipments(&self, i: usize) -> bool {
        let line = &self.lines[i];
        line.instances.is_empty()
            && self
                .live_shipment_lines(line.id)
                .any(|sl| !sl.instances.is_empty())
    }

    /// The units of line `i` a shipment of `quantity` of them carries:
    /// those given with the line (named by serial, or the next ones), new
    /// ones for a line that had none, or none. `field` names the shipment
    /// line in errors.
    fn shipment_instances(
        &self,
        i: usize,
        quantity: u32,
        given: &[Instance],
        serials: &mut Serials,
        field: &str,
        errors: &mut FieldErrors,
    ) -> Vec<Instance> {
        let mut free = self.unshipped_instances(i);
        if !self.lines[i].instances.is_empty() {
            if given.is_empty() {
                return free.into_iter().take(quantity as usize).collect();
            }
            let accepted = units_list(&free);
            let mut chosen = Vec::new();
            for (j, g) in given.iter().enumerate() {
                match free
                    .iter()
                    .position(|u| u.key().is_some() && u.key() == g.key())
                {
                    Some(at) => chosen.push(free.remove(at)),
                    None => errors.push(
                        FieldError::new(
                            format!("{field}.instances[{j}]"),
                            "not a unit of this item that is still to ship",
                        )
                        .value(g.key().unwrap_or_default())
                        .accepted(accepted.clone()),
                    ),
                }
            }
            if given.len() != quantity as usize {
                errors.push(count_error(field, given.len(), quantity));
            }
            return chosen;
        }
        if given.is_empty() {
            if self.serialised_by_shipments(i) {
                errors.push(
                    FieldError::new(
                        format!("{field}.instances"),
                        "earlier shipments named this item's units; name these too",
                    )
                    .accepted(format!("{quantity} instances, one per unit shipped")),
                );
            }
            return Vec::new();
        }
        if given.len() != quantity as usize {
            errors.push(count_error(field, given.len(), quantity));
        }
        let units: Vec<Instance> = given
            .iter()
            .enumerate()
            .filter_map(|(j, u)| {
                errors.take_all(
                    u.check()
                        .map_err(|e| e.under(&format!("{field}.instances[{j}]"))),
                )
            })
            .collect();
        serials.admit(i, &units, &format!("{field}.instances"), errors);
        units
    }

    /// Puts units in a new, pending shipment (`shipment.created`): those
    /// of `draft.lines`, or every unit not yet in one.
    pub fn create_shipment(
        &mut self,
        draft: ShipmentDraft,
        actor: Actor,
        now: Timestamp,
    ) -> Result<EventDraft, Refusal> {
        self.check(Action::Ship)?;
        let progress = self.progress();
        let mut errors = FieldErrors::new();
        let mut serials = self.serials();
        // (field, line, units, the units it names) of each line shipped.
        let chosen: Vec<(String, usize, u32, &[Instance])> = match &draft.lines {
            None => progress
                .iter()
                .enumerate()
                .filter(|(_, p)| p.unallocated() > 0)
                .filter_map(|(i, p)| {
                    if self.serialised_by_shipments(i) {
                        errors.push(
                            FieldError::new(
                                "lines",
                                "earlier shipments named this item's units; list it with the units this one ships",
                            )
                            .value(self.lines[i].id)
                            .accepted("lines, each with the instances it ships"),
                        );
                        return None;
                    }
                    // The units given with the line: the next ones.
                    Some(("lines".to_string(), i, p.unallocated(), &[][..]))
                })
                .collect(),
            Some(asked) if asked.is_empty() => {
                errors.push(
                    FieldError::new("lines", "a shipment needs at least one item")
                        .accepted("leave lines out to ship every unit not yet in a shipment"),
                );
                Vec::new()
            }
            Some(asked) => {
                let units: Vec<(LineId, Option<u32>)> =
                    asked.iter().map(|a| (a.line_id, a.quantity)).collect();
                let left: Vec<u32> = progress.iter().map(LineProgress::unallocated).collect();
                self.units_asked(&units, &left, &SHIPPING, &mut errors)
                    .into_iter()
                    .map(|(k, i, quantity)| {
                        (format!("lines[{k}]"), i, quantity, &asked[k].instances[..])
                    })
                    .collect()
            }
        };
        let mut lines = Vec::with_capacity(chosen.len());
        for (field, i, quantity, given) in chosen {
            let instances =
                self.shipment_instances(i, quantity, given, &mut serials, &field, &mut errors);
            lines.push(ShipmentLine {
                line_id: self.lines[i].id,
                quantity,
                instances,
                deducted: 0,
            });
        }
        if !errors.is_empty() {
            return Err(Refusal::Invalid(errors));
        }
        let shipment = Shipment {
            id: ShipmentId::new_at(now),
            state: ShipmentState::Pending,
            lines,
            tracking: draft.tracking,
            created_at: now,
            created_by: actor,
            shipped_at: None,
            in_transit_at: None,
            delivered_at: None,
            cancelled_at: None,
        };
        let data = json!({ "shipment": shipment.to_json() });
        self.shipments.push(shipment);
        self.touch(now);
        Ok(EventDraft {
            event_type: EventType::ShipmentCreated,
            data,
        })
    }

    /// Moves shipment `id` on by `action` (`shipment.shipped`,
    /// `shipment.in_transit`, `shipment.delivered`, `shipment.cancelled`),
    /// taking what `tracking` says. Shipping deducts its units from the
    /// order's reservation and the shop's stock. The same action again is
    /// no change (`Ok(None)`).
    pub fn act_on_shipment(
        &mut self,
        id: ShipmentId,
        action: ShipmentAction,
        tracking: Tracking,
        book: &mut StockBook,
        now: Timestamp,
    ) -> Result<Option<EventDraft>, Refusal> {
        let Some(at) = self.shipments.iter().position(|s| s.id == id) else {
            return Err(Refusal::Missing("shipment"));
        };
        let state = self.shipments[at].state;
        if action == ShipmentAction::Cancel && tracking != Tracking::default() {
            // Name the field that was sent.
            let field = match &tracking {
                Tracking {
                    carrier: Some(_), ..
                } => "carrier",
                Tracking {
                    tracking_number: Some(_),
                    ..
                } => "tracking_number",
                _ => "tracking_url",
            };
            return Err(Refusal::Invalid(
                FieldError::new(field, "a cancelled shipment is not tracked")
                    .accepted("no carrier, tracking_number or tracking_url")
                    .into(),
            ));
        }
        // The same action again only updates the tracking, if it says more.
        let repeat = state.after_repeat(action);
        let next = match repeat {
            true => state,
            false => state.after(action).ok_or_else(|| StateError {
                what: "shipment",
                action: action.as_str(),
                state: state.as_str(),
                allowed: state.allowed().iter().map(|a| a.as_str()).collect(),
            })?,
        };
        let mut shipment = self.shipments[at].clone();
        shipment.tracking.update(tracking);
        if repeat && shipment.tracking == self.shipments[at].tracking {
            return Ok(None);
        }
        if next == ShipmentState::Shipped && !repeat {
            for sl in &mut shipment.lines {
                if let Some(i) = self.lines.iter().position(|l| l.id == sl.line_id) {
                    sl.deducted = self.deduct_shipped(i, sl.quantity, book);
                }
            }
        }
        shipment.state = next;
        let stamp = match next {
            ShipmentState::Pending => None,
            ShipmentState::Shipped => Some(&mut shipment.shipped_at),
            ShipmentState::InTransit => Some(&mut shipment.in_transit_at),
            ShipmentState::Delivered => Some(&mut shipment.delivered_at),
            ShipmentState::Cancelled => Some(&mut shipment.cancelled_at),
        };
        if let Some(stamp) = stamp {
            stamp.get_or_insert(now);
        }
        let mut data = json!({ "shipment": shipment.to_json() });
        if !repeat {
            data["state"] = json!({ "from": state, "to": next });
        }
        self.shipments[at] = shipment;
        if let Some(moved) = self.refresh_fulfilment() {
            data["fulfillment_status"] = moved;
        }
        self.touch(now);
        Ok(Some(EventDraft {
            event_type: match action {
                // Only the tracking changed.
                _ if repeat => EventType::ShipmentUpdated,
                ShipmentAction::Ship => EventType::ShipmentShipped,
                ShipmentAction::InTransit => EventType::ShipmentInTransit,
                ShipmentAction::Deliver => EventType::ShipmentDelivered,
                ShipmentAction::Cancel => EventType::ShipmentCancelled,
            },
            data,
        }))
    }

    /// Calls off the shipments still being packed (the order is cancelled);
    /// returns their ids.
    pub(crate) fn cancel_pending_shipments(&mut self, now: Timestamp) -> Vec<ShipmentId> {
        let mut ids = Vec::new();
        for s in self
            .shipments
            .iter_mut()
            .filter(|s| s.state == ShipmentState::Pending)
        {
            s.state = ShipmentState::Cancelled;
            s.cancelled_at = Some(now);
            ids.push(s.id);
        }
        ids
    }

    /// Completes a confirmed order once it is paid in full and every unit
    /// has been delivered (the tenant's `auto_complete` setting), with its
    /// `order.completed` event; `None` while it is not done.
    pub fn complete_if_done(&mut self, now: Timestamp) -> Option<EventDraft> {
        let done = self.status == OrderStatus::Confirmed
            && self.payment_status == PaymentStatus::Paid
            && self.goods_refuse(Action::Complete).is_none();
        if !done {
            return None;
        }
        let mut event = self.complete(now).ok()?;
        event.data["automatic"] = json!(true);
        Some(event)
    }
}

fn count_error(field: &str, given: usize, quantity: u32) -> FieldError {
    FieldError::new(
        format!("{field}.instances"),
        "one instance per unit shipped",
    )
    .value(given)
    .accepted(format!("{quantity} (the quantity shipped)"))
}

fn units_list(units: &[Instance]) -> String {
    if units.is_empty() {
        return "none: every unit of this item is already in a shipment".into();
    }
    let shown: Vec<&str> = units.iter().filter_map(Instance::key).take(20).collect();
    format!("one of: {}", shown.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::contact::Buyer;
    use crate::ledger::{EntryState, PaymentMethod};
    use crate::money::Currency;
    use crate::order::{Channel, ExternalIds, LineDraft, NewOrder, OrderDraft, Sku};
    use crate::payment::PaymentDraft;
    use crate::product::{Product, ProductDraft};
    use crate::reference::OrderReference;
    use crate::returns::{Restock, ReturnDraft, ReturnRefund, ReturnState};
    use crate::status::{FulfillmentStatus as F, PaymentStatus, TransitionError};
    use crate::CancelItems;
    use crate::TenantId;

    pub(crate) fn t() -> Timestamp {
        Timestamp::from_unix_millis(1_700_000_000_000)
    }

    fn ngn() -> Currency {
        Currency::parse("NGN").expect("NGN")
    }

    /// The shop's products, as a store keeps them between changes.
    pub(crate) struct Shop {
        tenant: TenantId,
        products: BTreeMap<Sku, Product>,
    }

    impl Shop {
        pub(crate) fn with(stock: &[(&str, i64)]) -> Shop {
            let tenant = TenantId::new();
            let products = stock
                .iter()
                .map(|(sku, on_hand)| {
                    let p = ProductDraft {
                        sku: Sku::parse(sku).expect("sku"),
                        name: sku.to_string(),
                        description: None,
                        currency: ngn(),
                        price: 100_000,
                        attributes: BTreeMap::new(),
                        variant_of: None,
                        image_url: None,
                        active: true,
                        track_stock: true,
                        tax_class: Default::default(),
                        weight_grams: 0,
                        on_hand: *on_hand,
                    }
                    .into_product(tenant, Actor::system(), t())
                    .0;
                    (p.sku.clone(), p)
                })
                .collect();
            Shop { tenant, products }
        }

        /// Runs `change` with a book of every product, keeping what it moved.
        pub(crate) fn run<T>(&mut self, change: impl FnOnce(&mut StockBook) -> T) -> T {
            let mut book = StockBook::new(self.products.values().cloned(), Actor::system(), t());
            let out = change(&mut book);
            for p in book.into_changes().0 {
                self.products.insert(p.sku.clone(), p);
            }
            out
        }

        pub(crate) fn stock(&self, sku: &str) -> (i64, i64) {
            let p = &self.products[&Sku::parse(sku).expect("sku")];
            (p.on_hand, p.reserved)
        }

        /// A confirmed order of catalog lines `(sku, units)`, holding its stock.
        pub(crate) fn order(&mut self, lines: &[(&str, u32)]) -> Order {
            let lines = lines
                .iter()
                .map(|(sku, q)| {
                    let p = &self.products[&Sku::parse(sku).expect("sku")];
                    line_of(Some(p), sku, *q, Vec::new())
                })
                .collect();
            let mut o = order_of(self.tenant, lines);
            o.confirm(t()).expect("confirm");
            self.run(|book| o.hold_stock(None, book)).expect("in stock");
            o
        }
    }

    pub(crate) fn line_of(
        product: Option<&Product>,
        name: &str,
        quantity: u32,
        instances: Vec<Instance>,
    ) -> LineDraft {
        LineDraft {
            sku: product.map(|p| p.sku.clone()),
            name: name.into(),
            description: None,
            quantity,
            unit_price: 100_000,
            attributes: BTreeMap::new(),
            product_id: product.map(|p| p.id),
            catalog_price: product.map(|p| p.price),
            instances,
            tax_class: None,
            weight_grams: 0,
            tax_rate: Default::default(),
        }
    }

    pub(crate) fn draft_of(lines: Vec<LineDraft>) -> OrderDraft {
        OrderDraft {
            currency: ngn(),
            buyer: Buyer::parse(Some("Ada"), None, None, Some("wa_2348012345678")).expect("buyer"),
            lines,
            shipping_address: None,
            billing_address: None,
            notes: None,
            external_ids: ExternalIds::new(),
            channel: Channel::Api,
            pricing: Default::default(),
        }
    }

    pub(crate) fn order_of(tenant: TenantId, lines: Vec<LineDraft>) -> Order {
        Order::create(
            draft_of(lines),
            NewOrder {
                tenant_id: tenant,
                reference: OrderReference::from_sequence(tenant, 1).expect("first"),
                created_by: Actor::system(),
                now: t(),
            },
        )
        .expect("valid")
        .0
    }

    pub(crate) fn ship_lines(o: &Order, lines: &[(usize, u32)]) -> ShipmentDraft {
        ShipmentDraft {
            lines: Some(
                lines
                    .iter()
                    .map(|(i, q)| ShipmentLineDraft {
                        line_id: o.lines[*i].id,
                        quantity: Some(*q),
                        instances: Vec::new(),
                    })
                    .collect(),
            ),
            tracking: Tracking::default(),
        }
    }

    pub(crate) fn new_shipment(o: &mut Order, draft: ShipmentDraft) -> Result<ShipmentId, Refusal> {
        o.create_shipment(draft, Actor::system(), t())?;
        Ok(o.shipments.last().expect("made").id)
    }

    pub(crate) fn act(
        o: &mut Order,
        id: ShipmentId,
        action: ShipmentAction,
        book: &mut StockBook,
    ) -> Result<Option<EventDraft>, Refusal> {
        o.act_on_shipment(id, action, Tracking::default(), book, t())
    }

    /// Ships and delivers every unit of a confirmed order without stock.
    pub(crate) fn deliver_everything(o: &mut Order) {
        let id = new_shipment(o, ShipmentDraft::default()).expect("shipment");
        let mut book = StockBook::new([], Actor::system(), t());
        for a in [ShipmentAction::Ship, ShipmentAction::Deliver] {
            act(o, id, a, &mut book).expect("moves");
        }
    }

    pub(crate) fn unit(serial: Option<&str>, refers_to: Option<&str>) -> Instance {
        Instance {
            serial: serial.map(str::to_string),
            refers_to: refers_to.map(str::to_string),
        }
    }

    pub(crate) fn fields(r: Refusal) -> Vec<String> {
        match r {
            Refusal::Invalid(e) => e.0.into_iter().map(|e| e.field).collect(),
            other => panic!("not a field error: {other:?}"),
        }
    }

    #[test]
    fn a_multi_line_order_ships_in_two_parcels() {
        let mut shop = Shop::with(&[("A", 10), ("B", 10)]);
        let mut o = shop.order(&[("A", 3), ("B", 2)]);
        assert_eq!((shop.stock("A"), shop.stock("B")), ((10, 3), (10, 2)));

        let first = {
            let d = ship_lines(&o, &[(0, 2)]);
            new_shipment(&mut o, d)
        }
        .expect("parcel 1");
        assert_eq!(o.progress()[0].packing, 2);
        assert_eq!(
            o.fulfillment_status,
            F::Unfulfilled,
            "packing is not shipping"
        );
        assert_eq!(shop.stock("A"), (10, 3), "nothing moves until it ships");

        let e = shop
            .run(|b| act(&mut o, first, ShipmentAction::Ship, b))
            .expect("ship")
            .expect("a change");
        assert_eq!(e.event_type, EventType::ShipmentShipped);
        assert_eq!(e.data["fulfillment_status"]["to"], "partially_shipped");
        assert_eq!(
            shop.stock("A"),
            (8, 1),
            "two left the shop and the reservation"
        );
        assert_eq!(o.reserved.get(&Sku::parse("A").expect("sku")), Some(&1));

        // The second parcel takes the rest, whatever the lines.
        let second = new_shipment(&mut o, ShipmentDraft::default()).expect("parcel 2");
        let s = o.shipment(second).expect("kept");
        let units: Vec<(LineId, u32)> = s.lines.iter().map(|l| (l.line_id, l.quantity)).collect();
        assert_eq!(units, [(o.lines[0].id, 1), (o.lines[1].id, 2)]);
        assert!(
            o.check(Action::Ship).is_err(),
            "every unit is in a shipment"
        );
        shop.run(|b| act(&mut o, second, ShipmentAction::Ship, b))
            .expect("ship");
        assert_eq!((shop.stock("A"), shop.stock("B")), ((7, 0), (8, 0)));
        assert!(o.reserved.is_empty());
        assert_eq!(o.fulfillment_status, F::Shipped);

        shop.run(|b| act(&mut o, first, ShipmentAction::Deliver, b))
            .expect("deliver");
        assert_eq!(o.fulfillment_status, F::PartiallyDelivered);
        assert!(o.check(Action::Complete).is_err());
        shop.run(|b| act(&mut o, second, ShipmentAction::InTransit, b))
            .expect("in transit");
        shop.run(|b| act(&mut o, second, ShipmentAction::Deliver, b))
            .expect("deliver");
        assert_eq!(o.fulfillment_status, F::Delivered);
        let p = o.progress();
        assert_eq!((p[0].shipped, p[0].delivered, p[1].delivered), (3, 3, 2));
        o.complete(t()).expect("every unit delivered");
        assert!(!o.holds_stock);
    }

    #[test]
    fn shipments_follow_their_transition_table() {
        let mut shop = Shop::with(&[("A", 5)]);
        let mut o = shop.order(&[("A", 2)]);
        let id = new_shipment(&mut o, ShipmentDraft::default()).expect("shipment");
        let refused = shop
            .run(|b| act(&mut o, id, ShipmentAction::Deliver, b))
            .expect_err("not shipped");
        assert_eq!(
            refused,
            Refusal::State(StateError {
                what: "shipment",
                action: "deliver",
                state: "pending",
                allowed: vec!["ship", "cancel"],
            })
        );
        // Cancelled before it left: nothing moved, the units may ship again.
        let before = o.version;
        shop.run(|b| act(&mut o, id, ShipmentAction::Cancel, b))
            .expect("cancel");
        assert_eq!(o.version, before + 1);
        assert_eq!(shop.stock("A"), (5, 2));
        assert_eq!(o.progress()[0].unallocated(), 2);
        assert_eq!(
            shop.run(|b| act(&mut o, id, ShipmentAction::Cancel, b)),
            Ok(None),
            "again: no change"
        );
        assert!(matches!(
            shop.run(|b| act(&mut o, id, ShipmentAction::Ship, b)),
            Err(Refusal::State(_))
        ));

        let id = new_shipment(&mut o, ShipmentDraft::default()).expect("again");
        shop.run(|b| act(&mut o, id, ShipmentAction::Ship, b))
            .expect("ship");
        assert_eq!(
            shop.run(|b| act(&mut o, id, ShipmentAction::Ship, b)),
            Ok(None),
            "shipping twice deducts once"
        );
        assert_eq!(shop.stock("A"), (3, 0));
        let refused = shop
            .run(|b| act(&mut o, id, ShipmentAction::Cancel, b))
            .expect_err("gone");
        assert!(
            matches!(refused, Refusal::State(StateError { allowed, .. }) if allowed == ["in_transit", "deliver"])
        );
        let pending = new_shipment(&mut o, ShipmentDraft::default()).err();
        assert!(
            matches!(pending, Some(Refusal::Transition(_))),
            "all units shipped"
        );
        // Tracking given later, on the same step, is a change.
        let later = Tracking::parse(
            Some("GIG"),
            Some("GIG-1"),
            Some("https://gig.example/t/GIG-1"),
        )
        .expect("tracking");
        let e = shop
            .run(|b| o.act_on_shipment(id, ShipmentAction::Ship, later, b, t()))
            .expect("tracking")
            .expect("a change");
        assert_eq!(e.data["shipment"]["tracking_number"], "GIG-1");
        assert_eq!(shop.stock("A"), (3, 0));
        assert!(matches!(
            o.cancel("late".into(), t()),
            Err(TransitionError {
                reason: Some(_),
                ..
            })
        ));
        assert_eq!(
            shop.run(|b| act(&mut o, ShipmentId::new(), ShipmentAction::Ship, b)),
            Err(Refusal::Missing("shipment"))
        );
    }

    #[test]
    fn shipping_needs_a_confirmed_order_and_cancelling_calls_off_packing() {
        let mut o = order_of(TenantId::new(), vec![line_of(None, "Tee", 2, Vec::new())]);
        let refused = o
            .create_shipment(ShipmentDraft::default(), Actor::system(), t())
            .expect_err("pending");
        assert!(matches!(
            refused,
            Refusal::Transition(TransitionError {
                status: OrderStatus::Pending,
                ..
            })
        ));
        o.confirm(t()).expect("confirm");
        let id = new_shipment(&mut o, ShipmentDraft::default()).expect("shipment");
        assert!(
            o.check(Action::Edit).is_err(),
            "no edit under a packed shipment"
        );
        let e = o
            .cancel("changed my mind".into(), t())
            .expect("not shipped yet");
        assert_eq!(e.data["shipments_cancelled"], json!([id]));
        assert_eq!(
            o.shipment(id).expect("kept").state,
            ShipmentState::Cancelled
        );
    }

    #[test]
    fn an_order_has_at_most_200_shipments() {
        let mut o = order_of(TenantId::new(), vec![line_of(None, "Tee", 1, Vec::new())]);
        o.confirm(t()).expect("confirm");
        let mut book = StockBook::new([], Actor::system(), t());
        for _ in 0..MAX_SHIPMENTS {
            let id = new_shipment(&mut o, ShipmentDraft::default()).expect("room");
            act(&mut o, id, ShipmentAction::Cancel, &mut book).expect("called off");
        }
        match new_shipment(&mut o, ShipmentDraft::default()) {
            Err(Refusal::Transition(e)) => assert_eq!(e.reason, Some(TOO_MANY_SHIPMENTS)),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!o.allowed_actions().contains(&Action::Ship));
    }

    #[test]
    fn shipment_lines_are_checked() {
        let mut o = order_of(
            TenantId::new(),
            vec![
                line_of(None, "Tee", 2, Vec::new()),
                line_of(None, "Cap", 1, Vec::new()),
            ],
        );
        o.confirm(t()).expect("confirm");
        let mut draft = ship_lines(&o, &[(0, 3), (1, 1), (1, 1)]);
        if let Some(lines) = draft.lines.as_mut() {
            lines.push(ShipmentLineDraft {
                line_id: LineId::new(),
                quantity: None,
                instances: Vec::new(),
            });
        }
        let refused = o
            .create_shipment(draft, Actor::system(), t())
            .expect_err("bad lines");
        assert_eq!(
            fields(refused),
            ["lines[0].quantity", "lines[2].line_id", "lines[3].line_id"]
        );
        assert_eq!(o.version, 2, "a refused shipment changes nothing");
        let refused = o
            .create_shipment(
                ShipmentDraft {
                    lines: Some(Vec::new()),
                    ..Default::default()
                },
                Actor::system(),
                t(),
            )
            .expect_err("empty");
        assert_eq!(fields(refused), ["lines"]);
    }

    #[test]
    fn serialised_units_are_checked_at_creation() {
        let tenant = TenantId::new();
        let phone = |units| line_of(None, "Phone", 2, units);
        let plan = |units| line_of(None, "Plan", 1, units);
        let ok = order_of(
            tenant,
            vec![
                phone(vec![unit(Some("IMEI-1"), None), unit(Some("IMEI-2"), None)]),
                plan(vec![unit(None, Some("IMEI-2"))]),
            ],
        );
        assert_eq!(
            ok.lines[1].instances[0].refers_to.as_deref(),
            Some("IMEI-2")
        );

        let create = |lines| {
            Order::create(
                draft_of(lines),
                NewOrder {
                    tenant_id: tenant,
                    reference: OrderReference::from_sequence(tenant, 1).expect("first"),
                    created_by: Actor::system(),
                    now: t(),
                },
            )
        };
        let errors = |lines| {
            create(lines)
                .expect_err("refused")
                .0
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            errors(vec![phone(vec![unit(Some("IMEI-1"), None)])]),
            ["items[0].instances"],
            "one per unit"
        );
        assert_eq!(
            errors(vec![phone(vec![
                unit(Some("IMEI-1"), None),
                unit(Some("IMEI-1"), None)
            ])]),
            ["items[0].instances[1].serial"],
            "serials are unique in the order"
        );
        assert_eq!(
            errors(vec![
                plan(vec![unit(None, Some("IMEI-1"))]),
                phone(vec![unit(Some("IMEI-1"), None), unit(Some("IMEI-2"), None)])
            ]),
            ["items[0].instances[0].refers_to"],
            "a plan must come after its phone"
        );
        assert_eq!(
            errors(vec![phone(vec![
                unit(Some("IMEI-1"), None),
                unit(Some("IMEI-2"), Some("IMEI-1"))
            ])]),
            ["items[0].instances[1].refers_to"],
            "not to a unit of the same item"
        );
        assert_eq!(
            errors(vec![plan(vec![unit(None, None)])]),
            ["items[0].instances[0].serial"]
        );
        assert_eq!(
            errors(vec![plan(vec![unit(Some(" "), None)])]),
            ["items[0].instances[0].serial"]
        );
    }

    #[test]
    fn serialised_units_are_checked_at_shipment() {
        let tenant = TenantId::new();
        let given = vec![unit(Some("IMEI-1"), None), unit(Some("IMEI-2"), None)];
        let mut o = order_of(
            tenant,
            vec![
                line_of(None, "Phone", 2, given),
                line_of(None, "Plan", 2, Vec::new()),
                line_of(None, "Case", 1, Vec::new()),
            ],
        );
        o.confirm(t()).expect("confirm");
        let with_units = |o: &Order, i: usize, q: u32, units: Vec<Instance>| ShipmentDraft {
            lines: Some(vec![ShipmentLineDraft {
                line_id: o.lines[i].id,
                quantity: Some(q),
                instances: units,
            }]),
            tracking: Tracking::default(),
        };
        // A phone given with its units ships them: by serial, or the next one.
        let id = {
            let d = with_units(&o, 0, 1, vec![unit(Some("IMEI-2"), None)]);
            new_shipment(&mut o, d)
        }
        .expect("named");
        assert_eq!(
            o.shipment(id).expect("kept").lines[0].instances,
            [unit(Some("IMEI-2"), None)]
        );
        let refused = {
            let d = with_units(&o, 0, 1, vec![unit(Some("IMEI-2"), None)]);
            o.create_shipment(d, Actor::system(), t())
        }
        .expect_err("already shipped");
        assert_eq!(fields(refused), ["lines[0].instances[0]"]);
        let id = {
            let d = with_units(&o, 0, 1, Vec::new());
            new_shipment(&mut o, d)
        }
        .expect("next");
        assert_eq!(
            o.shipment(id).expect("kept").lines[0].instances,
            [unit(Some("IMEI-1"), None)]
        );

        // A plan given no units names new ones, one per unit, each for a phone.
        let refused = o
            .create_shipment(
                with_units(&o, 1, 2, vec![unit(Some("SIM-1"), Some("IMEI-1"))]),
                Actor::system(),
                t(),
            )
            .expect_err("count");
        assert_eq!(fields(refused), ["lines[0].instances"]);
        let refused = o
            .create_shipment(
                with_units(&o, 1, 1, vec![unit(Some("IMEI-1"), Some("IMEI-9"))]),
                Actor::system(),
                t(),
            )
            .expect_err("serial taken, phone unknown");
        assert_eq!(
            fields(refused),
            [
                "lines[0].instances[0].refers_to",
                "lines[0].instances[0].serial"
            ]
        );
        {
            let d = with_units(&o, 1, 1, vec![unit(Some("SIM-1"), Some("IMEI-1"))]);
            new_shipment(&mut o, d)
        }
        .expect("a plan for phone 1");
        let refused = {
            let d = with_units(&o, 1, 1, Vec::new());
            o.create_shipment(d, Actor::system(), t())
        }
        .expect_err("serialised now");
        assert_eq!(fields(refused), ["lines[0].instances"]);
        let refused = o
            .create_shipment(ShipmentDraft::default(), Actor::system(), t())
            .expect_err("everything left, but the plan's units are not named");
        assert_eq!(fields(refused), ["lines"]);
        // A unit may belong to a unit of any earlier item: a case to the plan's SIM.
        o.create_shipment(
            with_units(&o, 2, 1, vec![unit(None, Some("SIM-1"))]),
            Actor::system(),
            t(),
        )
        .expect("the plan is an earlier item");
        assert_eq!(o.shipments.len(), 4);
    }

    pub(crate) fn pay(o: &mut Order, amount: i64) {
        o.record_payment(
            PaymentDraft {
                method: PaymentMethod::Cash,
                amount,
                transaction_id: None,
                paid_at: None,
                state: EntryState::Succeeded,
            },
            Actor::system(),
            t(),
        )
        .expect("paid");
    }

    #[test]
    fn an_order_completes_by_itself_once_paid_and_delivered() {
        let mut o = order_of(TenantId::new(), vec![line_of(None, "Tee", 2, Vec::new())]);
        o.confirm(t()).expect("confirm");
        deliver_everything(&mut o);
        assert_eq!(o.complete_if_done(t()), None, "not paid");
        pay(&mut o, 100_000);
        assert_eq!(o.complete_if_done(t()), None, "partly paid");
        pay(&mut o, 100_000);
        let e = o.complete_if_done(t()).expect("done");
        assert_eq!(
            (e.event_type, &e.data["automatic"]),
            (EventType::OrderCompleted, &json!(true))
        );
        assert_eq!(o.status, OrderStatus::Completed);
        assert_eq!(o.complete_if_done(t()), None);
    }

    #[test]
    fn returns_are_bounded_by_what_was_delivered() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 3)]);
        let reason = || "wrong size".to_string();
        let all = |reason: String| ReturnDraft {
            lines: None,
            reason,
        };
        assert!(
            matches!(
                o.request_return(all(reason()), Actor::system(), t()),
                Err(Refusal::Transition(_))
            ),
            "nothing delivered"
        );
        let id = {
            let d = ship_lines(&o, &[(0, 2)]);
            new_shipment(&mut o, d)
        }
        .expect("two");
        shop.run(|b| act(&mut o, id, ShipmentAction::Ship, b))
            .expect("ship");
        shop.run(|b| act(&mut o, id, ShipmentAction::Deliver, b))
            .expect("deliver");
        let a = o.lines[0].id;
        let asked = |q| ReturnDraft {
            lines: Some(vec![(a, Some(q))]),
            reason: reason(),
        };
        let refused = o
            .request_return(asked(3), Actor::system(), t())
            .expect_err("only two delivered");
        assert_eq!(fields(refused), ["lines[0].quantity"]);
        o.request_return(asked(1), Actor::system(), t())
            .expect("one");
        let first = o.returns[0].id;
        let refused = o
            .request_return(asked(2), Actor::system(), t())
            .expect_err("one is already in a return");
        assert_eq!(fields(refused), ["lines[0].quantity"]);
        // Closed before it came back: the unit may be returned again.
        o.close_return(first, t()).expect("close");
        assert_eq!(o.progress()[0].returnable(), 2);
        o.request_return(all(reason()), Actor::system(), t())
            .expect("both");
        let second = o.returns[1].id;
        assert!(
            matches!(
                o.refund_return(
                    second,
                    ReturnRefund {
                        amount: None,
                        by_hand: EntryState::Succeeded
                    },
                    Actor::system(),
                    t()
                ),
                Err(Refusal::State(_))
            ),
            "not received"
        );
        let restock = Restock {
            all: true,
            lines: vec![(a, true)],
        };
        let e = shop
            .run(|b| o.receive_return(second, restock, b, t()))
            .expect("received")
            .expect("a change");
        assert_eq!(
            e.data["fulfillment_status"],
            json!({ "from": "partially_delivered", "to": "partially_returned" })
        );
        assert_eq!(
            shop.stock("A"),
            (10, 1),
            "two back on hand; one still reserved for the unshipped unit"
        );
        assert_eq!(o.progress()[0].returned, 2);
        assert!(o.check(Action::Return).is_err());
    }

    #[test]
    fn a_received_return_is_refunded_or_closed() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 2)]);
        pay(&mut o, 200_000);
        let id = new_shipment(&mut o, ShipmentDraft::default()).expect("all");
        shop.run(|b| act(&mut o, id, ShipmentAction::Ship, b))
            .expect("ship");
        shop.run(|b| act(&mut o, id, ShipmentAction::Deliver, b))
            .expect("deliver");
        o.request_return(
            ReturnDraft {
                lines: None,
                reason: "damaged".into(),
            },
            Actor::system(),
            t(),
        )
        .expect("return");
        let r = o.returns[0].id;
        let keep = Restock {
            all: false,
            lines: Vec::new(),
        };
        shop.run(|b| o.receive_return(r, keep, b, t()))
            .expect("received");
        assert_eq!(shop.stock("A"), (8, 0), "damaged goods are not restocked");
        assert_eq!(o.fulfillment_status, F::Returned);
        let e = o
            .refund_return(
                r,
                ReturnRefund {
                    amount: None,
                    by_hand: EntryState::Succeeded,
                },
                Actor::system(),
                t(),
            )
            .expect("refund")
            .expect("a change");
        assert_eq!(e.event_type, EventType::ReturnRefunded);
        assert_eq!(o.payment_status, PaymentStatus::Refunded);
        assert_eq!(o.ledger.refunds[0].lines[0].quantity, 2);
        assert_eq!(o.returns[0].refund_ids, [o.ledger.refunds[0].id]);
        assert_eq!(o.returns[0].state, ReturnState::Refunded);
        assert_eq!(
            o.refund_return(
                r,
                ReturnRefund {
                    amount: None,
                    by_hand: EntryState::Succeeded
                },
                Actor::system(),
                t()
            ),
            Ok(None)
        );
        assert!(matches!(o.close_return(r, t()), Err(Refusal::State(_))));
    }

    #[test]
    fn a_return_puts_back_only_what_shipping_took() {
        let mut shop = Shop::with(&[("A", 10)]);
        let mut o = shop.order(&[("A", 2)]);
        // Stock that stops being held (as under the `none` policy) is not deducted…
        shop.run(|b| o.release_stock(b)).expect("released");
        let id = new_shipment(&mut o, ShipmentDraft::default()).expect("all");
        for a in [ShipmentAction::Ship, ShipmentAction::Deliver] {
            shop.run(|b| act(&mut o, id, a, b)).expect("moves");
        }
        assert_eq!(shop.stock("A"), (10, 0));
        assert_eq!(o.shipment(id).expect("kept").lines[0].deducted, 0);
        // …and so its return puts nothing back.
        o.request_return(
            ReturnDraft {
                lines: None,
                reason: "unwanted".into(),
            },
            Actor::system(),
            t(),
        )
        .expect("return");
        let r = o.returns[0].id;
        shop.run(|b| {
            o.receive_return(
                r,
                Restock {
                    all: true,
                    lines: Vec::new(),
                },
                b,
                t(),
            )
        })
        .expect("received");
        assert_eq!(shop.stock("A"), (10, 0));
        assert_eq!(
            (
                o.returns[0].lines[0].restock,
                o.returns[0].lines[0].restocked
            ),
            (Some(true), 0)
        );
        assert_eq!(o.fulfillment_status, F::Returned);
    }

    #[test]
    fn a_return_refund_is_at_most_what_its_units_cost() {
        let mut o = order_of(TenantId::new(), vec![line_of(None, "Tee", 2, Vec::new())]);
        o.confirm(t()).expect("confirm");
        pay(&mut o, 200_000);
        deliver_everything(&mut o);
        o.request_return(
            ReturnDraft {
                lines: Some(vec![(o.lines[0].id, Some(1))]),
                reason: "small".into(),
            },
            Actor::system(),
            t(),
        )
        .expect("return");
        let r = o.returns[0].id;
        let mut book = StockBook::new([], Actor::system(), t());
        o.receive_return(r, Restock::default(), &mut book, t())
            .expect("received");
        let refused = o
            .refund_return(
                r,
                ReturnRefund {
                    amount: Some(100_001),
                    by_hand: EntryState::Succeeded,
                },
                Actor::system(),
                t(),
            )
            .expect_err("one unit costs 1000.00");
        assert_eq!(fields(refused), ["amount"]);
        o.refund_return(
            r,
            ReturnRefund {
                amount: Some(50_000),
                by_hand: EntryState::Succeeded,
            },
            Actor::system(),
            t(),
        )
        .expect("a partial refund");
        assert_eq!(o.ledger.refunds[0].amount, 50_000);
        assert_eq!(o.payment_status, PaymentStatus::PartiallyRefunded);
    }

    /// One step of a random fulfilment history.
    #[derive(Debug, Clone)]
    enum Step {
        Ship {
            line: usize,
            units: u32,
        },
        ShipAll,
        Move {
            shipment: usize,
            action: ShipmentAction,
        },
        Return {
            line: usize,
            units: u32,
        },
        Receive {
            ret: usize,
            restock: bool,
        },
        Close {
            ret: usize,
        },
        CancelItems {
            line: usize,
            units: u32,
        },
    }

    fn any_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..3, 1u32..4).prop_map(|(line, units)| Step::Ship { line, units }),
            Just(Step::ShipAll),
            (
                0usize..6,
                prop::sample::select(ShipmentAction::ALL.to_vec())
            )
                .prop_map(|(shipment, action)| Step::Move { shipment, action }),
            (0usize..3, 1u32..4).prop_map(|(line, units)| Step::Return { line, units }),
            (0usize..4, any::<bool>()).prop_map(|(ret, restock)| Step::Receive { ret, restock }),
            (0usize..4).prop_map(|ret| Step::Close { ret }),
            (0usize..3, 1u32..3).prop_map(|(line, units)| Step::CancelItems { line, units }),
        ]
    }

    proptest! {
        /// Whatever is shipped, moved, returned, received, closed or called
        /// off, in any order: each line's units add up, the fulfillment status is the
        /// one its lines say and only moves as its table allows, stock is
        /// exact, and a refused step changes nothing.
        #[test]
        fn fulfilment_stays_consistent(steps in prop::collection::vec(any_step(), 1..40)) {
            let mut shop = Shop::with(&[("A", 20), ("B", 20), ("C", 20)]);
            // Two lines of one product: stock is followed by SKU.
            let mut o = shop.order(&[("A", 3), ("B", 2), ("A", 1)]);
            let mut restocked: BTreeMap<Sku, i64> = BTreeMap::new();
            for step in steps {
                let before = o.clone();
                let status = o.fulfillment_status;
                let result = match step.clone() {
                    Step::Ship { line, units } => { let d = ship_lines(&o, &[(line, units)]); o.create_shipment(d, Actor::system(), t()) }.map(Some),
                    Step::ShipAll => o.create_shipment(ShipmentDraft::default(), Actor::system(), t()).map(Some),
                    Step::Move { shipment, action } => match o.shipments.get(shipment).map(|s| s.id) {
                        Some(id) => shop.run(|b| act(&mut o, id, action, b)),
                        None => Ok(None),
                    },
                    Step::Return { line, units } => {
                        let draft = ReturnDraft { lines: Some(vec![(o.lines[line].id, Some(units))]), reason: "r".into() };
                        o.request_return(draft, Actor::system(), t()).map(Some)
                    }
                    Step::Receive { ret, restock } => match o.returns.get(ret).map(|r| (r.id, r.lines.clone())) {
                        Some((id, lines)) => {
                            let got = shop.run(|b| o.receive_return(id, Restock { all: restock, lines: Vec::new() }, b, t()));
                            if matches!(got, Ok(Some(_))) && restock {
                                for l in lines {
                                    let line = o.lines.iter().find(|x| x.id == l.line_id).expect("line");
                                    *restocked.entry(line.sku.clone().expect("catalog")).or_insert(0) += i64::from(l.quantity);
                                }
                            }
                            got
                        }
                        None => Ok(None),
                    },
                    Step::Close { ret } => match o.returns.get(ret).map(|r| r.id) {
                        Some(id) => o.close_return(id, t()),
                        None => Ok(None),
                    },
                    Step::CancelItems { line, units } => {
                        let draft = CancelItems { lines: Some(vec![(o.lines[line].id, Some(units))]), reason: "r".into() };
                        shop.run(|b| o.cancel_items(draft, Actor::system(), b, t())).map(Some)
                    }
                };
                match result {
                    Ok(Some(_)) => prop_assert_eq!(o.version, before.version + 1),
                    Ok(None) | Err(_) => prop_assert_eq!(&o, &before, "{:?} changed nothing", step),
                }
                let progress = o.progress();
                prop_assert_eq!(o.fulfillment_status, fulfilment_of(&progress));
                prop_assert!(status.can_become(o.fulfillment_status), "{} → {}", status, o.fulfillment_status);
                prop_assert_eq!(o.total, o.lines.iter().map(|l| l.line_total).sum::<i64>());
                // (units not shipped, units shipped) of each SKU.
                let mut by_sku: BTreeMap<Sku, (u32, u32)> = BTreeMap::new();
                for (i, (line, p)) in o.lines.iter().zip(&progress).enumerate() {
                    prop_assert_eq!(line.quantity + line.cancelled, [3, 2, 1][i]);
                    prop_assert!(p.packing + p.shipped <= p.ordered);
                    prop_assert!(p.delivered <= p.shipped);
                    prop_assert!(p.returned <= p.in_returns && p.in_returns <= p.delivered);
                    let units = by_sku.entry(line.sku.clone().expect("catalog")).or_default();
                    units.0 += p.ordered - p.shipped;
                    units.1 += p.shipped;
                }
                for (sku, (unshipped, shipped)) in by_sku {
                    let held = o.reserved.get(&sku).copied().unwrap_or(0);
                    prop_assert_eq!(held, unshipped, "the unshipped units of {} stay reserved", sku);
                    let (on_hand, reserved) = shop.stock(sku.as_str());
                    prop_assert_eq!(reserved, i64::from(held));
                    let back = restocked.get(&sku).copied().unwrap_or(0);
                    prop_assert_eq!(on_hand, 20 - i64::from(shipped) + back);
                }
                prop_assert_eq!(shop.stock("C"), (20, 0));
            }
        }
    }
}

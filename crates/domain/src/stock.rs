//! How orders move stock: reservations, releases and deductions.
//!
//! An order that holds stock ([`Order::holds_stock`]) has reserved, for
//! every SKU of its catalog lines whose product tracks stock, the units
//! those lines need ([`Order::reserved`]). Every change to an order ends by
//! bringing what it holds in line with what it should hold
//! ([`Order::sync_stock`]), through a [`StockBook`]: the order's products,
//! read (and locked) by the store in the transaction of the change. The
//! book changes all of them or none, and says every SKU that is short.
//!
//! Shipping units deducts them from both the reservation and the on-hand
//! stock; a return received in sellable state puts them back on hand.
//!
//! So each product's `reserved` is always the sum of what open orders hold
//! of it, which `GET /v1/stock/reconcile` checks.

use std::collections::{BTreeMap, BTreeSet};

use crate::event::Actor;
use crate::ids::OrderId;
use crate::order::{Order, Refusal, Sku};
use crate::product::{MovementKind, Product, StockMovement};
use crate::timestamp::Timestamp;

/// The reason of an order cancelled because its reservation lapsed.
pub const RESERVATION_EXPIRED: &str = "reservation_expired";

/// A SKU an order could not reserve enough of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub sku: Sku,
    /// The first line of the order with this SKU.
    pub line: usize,
    /// Units the order needed to reserve now.
    pub requested: i64,
    /// Units available.
    pub available: i64,
}

/// The products a change may move, as the store read them inside the
/// change's transaction, and the movements made so far.
#[derive(Debug, Clone)]
pub struct StockBook {
    products: BTreeMap<Sku, Product>,
    changed: BTreeSet<Sku>,
    movements: Vec<StockMovement>,
    actor: Actor,
    now: Timestamp,
}

impl StockBook {
    pub fn new(products: impl IntoIterator<Item = Product>, actor: Actor, now: Timestamp) -> Self {
        StockBook {
            products: products.into_iter().map(|p| (p.sku.clone(), p)).collect(),
            changed: BTreeSet::new(),
            movements: Vec::new(),
            actor,
            now,
        }
    }

    pub fn product(&self, sku: &Sku) -> Option<&Product> {
        self.products.get(sku)
    }

    /// Whether nothing has moved.
    pub fn is_empty(&self) -> bool {
        self.movements.is_empty()
    }

    /// The products that changed, and the movements that changed them.
    pub fn into_changes(mut self) -> (Vec<Product>, Vec<StockMovement>) {
        let products = self
            .changed
            .iter()
            .filter_map(|sku| self.products.remove(sku))
            .collect();
        (products, self.movements)
    }

    fn record(
        &mut self,
        sku: &Sku,
        kind: MovementKind,
        on_hand: i64,
        reserved: i64,
        order: OrderId,
    ) {
        let Some(p) = self.products.get_mut(sku) else {
            return;
        };
        p.on_hand += on_hand;
        p.reserved += reserved;
        p.version += 1;
        p.updated_at = self.now.max(p.updated_at);
        self.changed.insert(sku.clone());
        self.movements.push(StockMovement {
            order_id: Some(order),
            ..p.movement(kind, on_hand, reserved, self.actor.clone(), self.now)
        });
    }

    /// Reserves (a positive change) or releases (a negative one) units of
    /// each SKU for `order`: all of them, or, if any SKU has fewer units
    /// available than asked, none, with every SKU that is short.
    fn hold(&mut self, order: &Order, changes: &BTreeMap<Sku, i64>) -> Result<(), Vec<Shortage>> {
        let short: Vec<Shortage> = changes
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(sku, n)| {
                let available = self.products.get(sku).map_or(0, Product::available);
                (available < *n).then(|| Shortage {
                    sku: sku.clone(),
                    line: order
                        .lines
                        .iter()
                        .position(|l| l.sku.as_ref() == Some(sku))
                        .unwrap_or(0),
                    requested: *n,
                    available,
                })
            })
            .collect();
        if !short.is_empty() {
            return Err(short);
        }
        for (sku, n) in changes.iter().filter(|(_, n)| **n != 0) {
            let kind = if *n > 0 {
                MovementKind::Reservation
            } else {
                MovementKind::Release
            };
            self.record(sku, kind, 0, *n, order.id);
        }
        Ok(())
    }
}

impl StockBook {
    /// Reserves what a new order holds (planned on the products as read
    /// before its transaction), on the products as they are now: all of it,
    /// or nothing and every SKU that is short.
    pub fn reserve_new(&mut self, order: &Order) -> Result<(), Refusal> {
        let changes: BTreeMap<Sku, i64> = order
            .reserved
            .iter()
            .map(|(sku, n)| (sku.clone(), i64::from(*n)))
            .collect();
        self.hold(order, &changes).map_err(Refusal::Short)
    }
}

impl Order {
    /// The SKUs whose products a change to this order may move: those of
    /// its catalog lines and those it holds.
    pub fn stock_skus(&self) -> BTreeSet<Sku> {
        self.lines
            .iter()
            .filter(|l| l.product_id.is_some())
            .filter_map(|l| l.sku.clone())
            .chain(self.reserved.keys().cloned())
            .collect()
    }

    /// What the order should hold now: nothing unless it holds stock; then
    /// the units of its catalog lines whose products track stock that have
    /// not shipped.
    fn wanted(&self, book: &StockBook) -> BTreeMap<Sku, u32> {
        let mut wanted = BTreeMap::new();
        if !self.holds_stock {
            return wanted;
        }
        let progress = self.progress();
        for (line, p) in self.lines.iter().zip(&progress) {
            let Some(sku) = line.sku.as_ref().filter(|_| line.product_id.is_some()) else {
                continue;
            };
            match book.product(sku) {
                Some(product) if product.track_stock && Some(product.id) == line.product_id => {
                    // Shipped units are no longer held: they left.
                    *wanted.entry(sku.clone()).or_insert(0) +=
                        line.quantity.saturating_sub(p.shipped);
                }
                // A product the store did not read: what is held of it stays.
                None => {
                    if let Some(held) = self.reserved.get(sku) {
                        wanted.insert(sku.clone(), *held);
                    }
                }
                Some(_) => {}
            }
        }
        wanted
    }

    /// Brings what the order holds in line with what it should hold:
    /// reserves what its lines need beyond what it holds and releases what
    /// they no longer need. All or nothing: a shortage of any SKU changes
    /// nothing and names every SKU that is short.
    pub fn sync_stock(&mut self, book: &mut StockBook) -> Result<(), Refusal> {
        let wanted = self.wanted(book);
        let mut changes: BTreeMap<Sku, i64> = BTreeMap::new();
        for (sku, n) in &wanted {
            *changes.entry(sku.clone()).or_insert(0) += i64::from(*n);
        }
        for (sku, n) in &self.reserved {
            *changes.entry(sku.clone()).or_insert(0) -= i64::from(*n);
        }
        changes.retain(|_, n| *n != 0);
        if changes.is_empty() {
            return Ok(());
        }
        book.hold(self, &changes).map_err(Refusal::Short)?;
        self.reserved = wanted;
        Ok(())
    }

    /// Starts holding stock (until `until`, if given) and reserves it.
    pub fn hold_stock(
        &mut self,
        until: Option<Timestamp>,
        book: &mut StockBook,
    ) -> Result<(), Refusal> {
        self.holds_stock = true;
        self.reserved_until = until;
        self.sync_stock(book)
    }

    /// Lets go of everything the order holds.
    pub fn release_stock(&mut self, book: &mut StockBook) -> Result<(), Refusal> {
        self.holds_stock = false;
        self.reserved_until = None;
        self.sync_stock(book)
    }

    /// Lets an unconfirmed order's reservation lapse once `reserved_until`
    /// has passed: the stock is released and the order cancelled with
    /// reason `reservation_expired`. `None` if it was confirmed, cancelled
    /// or given more time meanwhile.
    pub fn expire_reservation(
        &mut self,
        now: Timestamp,
        book: &mut StockBook,
    ) -> Result<Option<crate::EventDraft>, Refusal> {
        let due = self.holds_stock && self.reserved_until.is_some_and(|t| t <= now);
        if !due || self.status != crate::OrderStatus::Pending {
            return Ok(None);
        }
        let event = self.cancel(RESERVATION_EXPIRED.to_string(), now)?;
        self.release_stock(book)?;
        Ok(Some(event))
    }

    /// Units of line `i` left the shop: what the order holds of its SKU
    /// comes off both the reserved and the on-hand units of the product
    /// (an order that holds none of it, as under the `none` policy, moves
    /// nothing). Returns the units deducted.
    pub(crate) fn deduct_shipped(&mut self, i: usize, units: u32, book: &mut StockBook) -> u32 {
        let Some(sku) = self.catalog_sku(i) else {
            return 0;
        };
        let Some(held) = self.reserved.get_mut(&sku) else {
            return 0;
        };
        let n = units.min(*held);
        *held -= n;
        if *held == 0 {
            self.reserved.remove(&sku);
        }
        if n > 0 {
            let d = i64::from(n);
            book.record(&sku, MovementKind::Deduction, -d, -d, self.id);
        }
        n
    }

    /// Units of line `i` came back in a sellable state: they go back on
    /// hand, as many as shipping took off and returns did not already put
    /// back (an order that held no stock moved none, and puts none back).
    /// Returns the units restocked.
    pub(crate) fn restock(&mut self, i: usize, units: u32, book: &mut StockBook) -> u32 {
        let Some(sku) = self.catalog_sku(i) else {
            return 0;
        };
        let line = self.lines[i].id;
        let deducted: u32 = self
            .shipments
            .iter()
            .flat_map(|s| &s.lines)
            .filter(|sl| sl.line_id == line)
            .map(|sl| sl.deducted)
            .sum();
        let restocked: u32 = self
            .returns
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|rl| rl.line_id == line)
            .map(|rl| rl.restocked)
            .sum();
        let n = units.min(deducted.saturating_sub(restocked));
        if n > 0 {
            book.record(&sku, MovementKind::Restock, i64::from(n), 0, self.id);
        }
        n
    }

    /// The SKU of line `i` if it was taken from the catalog.
    fn catalog_sku(&self, i: usize) -> Option<Sku> {
        let line = &self.lines[i];
        line.sku.clone().filter(|_| line.product_id.is_some())
    }
}

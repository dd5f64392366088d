//! Promotions as both databases keep them: the definition as JSON, the
//! code and `active` beside it for lookups, and `uses` counted apart, so
//! an edit of the definition never loses a use an order just claimed.

use ordo_domain::order::PromotionRefusal;
use ordo_domain::pricing::{self, AppliedPromotion, Promotion};
use ordo_domain::{Order, PromotionId, Refusal};

use crate::{Result, StoreError};

pub(crate) const COLUMNS: &str = "id, body, uses";

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A promotion from its row.
pub(crate) fn from_row(id: &str, body: &str, uses: i64) -> Result<Promotion> {
    let mut p: Promotion = serde_json::from_str(body).map_err(corrupt)?;
    if p.id.to_string() != id {
        return Err(corrupt(format!("promotion row {id} holds {}", p.id)));
    }
    p.uses = u32::try_from(uses).map_err(corrupt)?;
    Ok(p)
}

/// The definition as kept (its uses are the row's own).
pub(crate) fn body(p: &Promotion) -> Result<String> {
    serde_json::to_string(&Promotion {
        uses: 0,
        ..p.clone()
    })
    .map_err(corrupt)
}

/// The promotions of an order that count towards usage limits.
pub(crate) fn limited(order: &Order) -> impl Iterator<Item = &AppliedPromotion> {
    order.pricing.promotions.iter().filter(|p| p.limited)
}

/// The limited promotions an order holds a use of, by id.
pub(crate) fn held(order: &Order) -> Vec<PromotionId> {
    limited(order).map(|p| p.id).collect()
}

/// Limited promotions the order applies now and did not hold before (a
/// new order's all): each needs a use claimed.
pub(crate) fn to_claim<'a>(
    order: &'a Order,
    before: &'a [PromotionId],
) -> impl Iterator<Item = &'a AppliedPromotion> {
    limited(order).filter(move |p| !before.contains(&p.id))
}

/// Promotions the order held a use of and no longer applies (re-priced
/// without them): their uses go back.
pub(crate) fn to_release(order: &Order, before: &[PromotionId]) -> Vec<PromotionId> {
    let now = held(order);
    before
        .iter()
        .filter(|id| !now.contains(id))
        .copied()
        .collect()
}

/// Whether the order may use `current` (the promotion as read, locked, in
/// the order's transaction; `None` when it was deleted) by a buyer who
/// used it `buyer_uses` times.
pub(crate) fn check(
    applied: &AppliedPromotion,
    current: Option<&Promotion>,
    buyer_uses: Option<u32>,
) -> Result<()> {
    let verdict = match current {
        None => Err(pricing::NotApplicable::Unknown),
        Some(p) => pricing::may_use(p, buyer_uses),
    };
    verdict.map_err(|reason| {
        StoreError::Refused(Refusal::Promotion(Box::new(PromotionRefusal {
            id: applied.id,
            name: applied.name.clone(),
            code: applied.code.clone(),
            reason,
        })))
    })
}

/// The counts of `rows` (promotion id, uses) for `ids`.
pub(crate) fn uses_of(
    rows: impl IntoIterator<Item = (String, i64)>,
    ids: &[PromotionId],
) -> std::collections::BTreeMap<PromotionId, u32> {
    rows.into_iter()
        .filter_map(|(id, n)| {
            let id = PromotionId::parse(&id)?;
            ids.contains(&id)
                .then(|| (id, u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .collect()
}

//! Shipments and returns: getting an order's units to the buyer, and
//! taking them back. Both live in their order; every change to them is a
//! change to the order (its version, its timeline, its webhooks).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ordo_domain::order::MAX_QUANTITY;
use ordo_domain::{
    CancelItems, EntryState, EventDraft, FieldError, FieldErrors, Instance, LineId, LineProgress,
    Order, Permission, Refusal, Restock, Return, ReturnAction, ReturnDraft, ReturnId, ReturnRefund,
    ReturnState, Shipment, ShipmentAction, ShipmentDraft, ShipmentId, ShipmentLineDraft,
    ShipmentState, StockBook, Timestamp, Tracking,
};
use ordo_store::OrderLookup;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams};
use super::orders::{
    if_match, json_response, lookup, order_response, read_order, time, ActorResponse, OrderResponse,
};
use super::payments::{line_id, positive_amount, reason};
use crate::app::AppState;
use crate::orders;

// ---------------------------------------------------------------- shapes

/// How far the units of an item have got.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineProgressResponse {
    /// Units still ordered: the item's `quantity`.
    pub ordered: u32,
    /// In a shipment being packed.
    pub packing: u32,
    /// Left the shop (delivered units included).
    pub shipped: u32,
    pub delivered: u32,
    /// Came back in a return that was received.
    pub returned: u32,
    /// Called off before they shipped (`POST /v1/orders/{id}/cancel-items`);
    /// the buyer first asked for `ordered + cancelled`.
    pub cancelled: u32,
}

impl From<LineProgress> for LineProgressResponse {
    fn from(p: LineProgress) -> Self {
        LineProgressResponse {
            ordered: p.ordered,
            packing: p.packing,
            shipped: p.shipped,
            delivered: p.delivered,
            returned: p.returned,
            cancelled: p.cancelled,
        }
    }
}

/// Units of one item in a shipment.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentLineResponse {
    #[schema(example = "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub line_id: String,
    pub quantity: u32,
    /// The serialised units it carries.
    pub instances: Vec<Instance>,
}

/// A parcel of some or all of an order's units.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentResponse {
    #[schema(example = "shp_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub order_id: String,
    /// `pending` (being packed) → `shipped` (left the shop; its units were
    /// deducted from stock) → `in_transit` → `delivered`; or `cancelled`
    /// before it shipped.
    pub state: ShipmentState,
    pub lines: Vec<ShipmentLineResponse>,
    #[schema(example = "GIG Logistics")]
    pub carrier: Option<String>,
    #[schema(example = "GIG-123456789")]
    pub tracking_number: Option<String>,
    #[schema(example = "https://track.example.com/GIG-123456789")]
    pub tracking_url: Option<String>,
    /// What can be done to it now: among ship, in_transit, deliver, cancel.
    pub allowed_actions: Vec<ShipmentAction>,
    pub created_at: String,
    pub created_by: ActorResponse,
    pub shipped_at: Option<String>,
    pub in_transit_at: Option<String>,
    pub delivered_at: Option<String>,
    pub cancelled_at: Option<String>,
}

impl ShipmentResponse {
    pub(crate) fn from_domain(o: &Order, s: &Shipment) -> Self {
        ShipmentResponse {
            id: s.id.to_string(),
            order_id: o.id.to_string(),
            state: s.state,
            lines: s
                .lines
                .iter()
                .map(|l| ShipmentLineResponse {
                    line_id: l.line_id.to_string(),
                    quantity: l.quantity,
                    instances: l.instances.clone(),
                })
                .collect(),
            carrier: s.tracking.carrier.clone(),
            tracking_number: s.tracking.tracking_number.clone(),
            tracking_url: s.tracking.tracking_url.clone(),
            allowed_actions: s.state.allowed(),
            created_at: time(s.created_at),
            created_by: ActorResponse::from_domain(&s.created_by),
            shipped_at: s.shipped_at.map(time),
            in_transit_at: s.in_transit_at.map(time),
            delivered_at: s.delivered_at.map(time),
            cancelled_at: s.cancelled_at.map(time),
        }
    }
}

/// Units of one item in a return.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnLineResponse {
    pub line_id: String,
    pub quantity: u32,
    /// Once received: whether the units were to go back in stock.
    pub restock: Option<bool>,
    /// Units that went back on hand: at most what shipping took off stock
    /// (an order that held no stock moved none, and puts none back).
    pub restocked: u32,
}

/// Units a buyer sends back.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnResponse {
    #[schema(example = "ret_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub order_id: String,
    /// `requested` → `received` → `refund_pending` (while its refunds are
    /// under way) → `refunded` (once they all succeeded), or `closed`
    /// without a refund. A refund that fails puts it back to `received`,
    /// to be refunded again.
    pub state: ReturnState,
    pub lines: Vec<ReturnLineResponse>,
    #[schema(example = "wrong size")]
    pub reason: String,
    /// What can be done to it now: among receive, refund, close.
    pub allowed_actions: Vec<ReturnAction>,
    pub requested_at: String,
    pub requested_by: ActorResponse,
    pub received_at: Option<String>,
    pub refunded_at: Option<String>,
    pub closed_at: Option<String>,
    /// The refunds that gave (or tried to give) its money back (see the
    /// order's `refunds`).
    pub refund_ids: Vec<String>,
    /// What its refunds are to give back in all, once it was refunded.
    #[schema(example = "15000.00")]
    pub refund_amount: Option<String>,
}

impl ReturnResponse {
    pub(crate) fn from_domain(o: &Order, r: &Return) -> Self {
        ReturnResponse {
            id: r.id.to_string(),
            order_id: o.id.to_string(),
            state: r.state,
            lines: r
                .lines
                .iter()
                .map(|l| ReturnLineResponse {
                    line_id: l.line_id.to_string(),
                    quantity: l.quantity,
                    restock: l.restock,
                    restocked: l.restocked,
                })
                .collect(),
            reason: r.reason.clone(),
            allowed_actions: r.state.allowed(),
            requested_at: time(r.requested_at),
            requested_by: ActorResponse::from_domain(&r.requested_by),
            received_at: r.received_at.map(time),
            refunded_at: r.refunded_at.map(time),
            closed_at: r.closed_at.map(time),
            refund_ids: r.refund_ids.iter().map(ToString::to_string).collect(),
            refund_amount: (!r.refund_ids.is_empty())
                .then(|| o.currency.format_amount(o.return_refund_amount(r))),
        }
    }
}

/// An order's shipments.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShipmentList {
    pub data: Vec<ShipmentResponse>,
}

/// An order's returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnList {
    pub data: Vec<ReturnResponse>,
}

/// Units of one item to put in a shipment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShipmentLineInput {
    #[schema(example = "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub line_id: String,
    /// By default every unit of the item not yet in a shipment.
    #[schema(example = 1, minimum = 1)]
    pub quantity: Option<i64>,
    /// The serialised units shipped: for an item given its units, their
    /// serials (by default the next ones); for one that was not, one new
    /// unit per unit shipped (or none, if it is not serialised).
    #[serde(default)]
    pub instances: Vec<Instance>,
}

/// Who carries a shipment, and where to follow it; each may be given
/// when the shipment is made or at any later step.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingRequest {
    #[schema(example = "GIG Logistics")]
    pub carrier: Option<String>,
    #[schema(example = "GIG-123456789")]
    pub tracking_number: Option<String>,
    #[schema(example = "https://track.example.com/GIG-123456789")]
    pub tracking_url: Option<String>,
}

impl TrackingRequest {
    fn parse(&self) -> Result<Tracking, FieldErrors> {
        Tracking::parse(
            self.carrier.as_deref(),
            self.tracking_number.as_deref(),
            self.tracking_url.as_deref(),
        )
    }
}

/// A new shipment.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"line_id": "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV", "quantity": 1}], "carrier": "GIG Logistics", "tracking_number": "GIG-123456789"}))]
pub struct CreateShipmentRequest {
    /// The items and units to ship; leave out to ship every unit not yet
    /// in a shipment.
    pub lines: Option<Vec<ShipmentLineInput>>,
    #[serde(flatten)]
    pub tracking: TrackingRequest,
}

/// Units of one item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemUnitsInput {
    #[schema(example = "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub line_id: String,
    /// By default every unit of the item the action may take: delivered
    /// and not already in a return, for a return; not shipped and not in
    /// a shipment, to cancel.
    #[schema(example = 1, minimum = 1)]
    pub quantity: Option<i64>,
}

/// Items and units, with the reason: of a return of delivered units, or
/// of units called off before they shipped.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"line_id": "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV", "quantity": 1}], "reason": "wrong size"}))]
pub struct ItemUnitsRequest {
    /// Leave out for every unit the action may take.
    pub lines: Option<Vec<ItemUnitsInput>>,
    #[schema(example = "wrong size")]
    pub reason: String,
}

/// Whether one item of a return goes back in stock.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockLineInput {
    pub line_id: String,
    pub restock: bool,
}

/// The units of a return are back.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveReturnRequest {
    /// Whether the units go back in stock (for catalog items whose
    /// product tracks stock); `true` when not given.
    pub restock: Option<bool>,
    /// Items that differ from `restock`.
    #[serde(default)]
    pub lines: Vec<RestockLineInput>,
}

/// A return's money going back.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundReturnRequest {
    /// In major units; by default what the returned units cost (at most
    /// what was paid and not yet refunded).
    #[schema(example = "5000.00")]
    pub amount: Option<String>,
    /// How the part the shop pays back by hand stands: `succeeded` (the
    /// default: it was paid back) or `pending` (settled later). What the
    /// payment provider charged is refunded through it.
    #[schema(example = "succeeded")]
    pub state: Option<String>,
}

// ---------------------------------------------------------------- parsing

/// A unit count from a request: 1 to [`MAX_QUANTITY`].
fn units(field: String, n: i64) -> Result<u32, FieldError> {
    u32::try_from(n)
        .ok()
        .filter(|n| (1..=MAX_QUANTITY).contains(&i64::from(*n)))
        .ok_or_else(|| {
            FieldError::new(field, "the quantity must be a positive whole number")
                .value(n)
                .accepted(format!("a whole number from 1 to {MAX_QUANTITY}"))
        })
}

/// The item and units `lines[k]` of a request asks for, each checked.
fn asked(
    k: usize,
    line: &str,
    quantity: Option<i64>,
    errors: &mut FieldErrors,
) -> Option<(LineId, Option<u32>)> {
    let id = errors.take(line_id(format!("lines[{k}].line_id"), line));
    // A refused quantity is named in `errors`; the request goes no further.
    let quantity = quantity.map(|q| {
        errors
            .take(units(format!("lines[{k}].quantity"), q))
            .unwrap_or(0)
    });
    Some((id?, quantity))
}

impl CreateShipmentRequest {
    fn into_draft(self) -> Result<ShipmentDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let tracking = errors.take_all(self.tracking.parse());
        let lines = self.lines.map(|lines| {
            lines
                .into_iter()
                .enumerate()
                .filter_map(|(k, l)| {
                    let (line_id, quantity) = asked(k, &l.line_id, l.quantity, &mut errors)?;
                    Some(ShipmentLineDraft {
                        line_id,
                        quantity,
                        instances: l.instances,
                    })
                })
                .collect()
        });
        match tracking {
            Some(tracking) if errors.is_empty() => Ok(ShipmentDraft { lines, tracking }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Items and units asked for: `None` for all there may be.
type AskedUnits = Option<Vec<(LineId, Option<u32>)>>;

impl ItemUnitsRequest {
    /// The items and units asked for, and the reason, each checked.
    fn parse(self) -> Result<(AskedUnits, String), ApiError> {
        let mut errors = FieldErrors::new();
        let reason = errors.take(reason(&self.reason));
        let lines = self.lines.map(|lines| {
            lines
                .into_iter()
                .enumerate()
                .filter_map(|(k, l)| asked(k, &l.line_id, l.quantity, &mut errors))
                .collect()
        });
        match reason {
            Some(reason) if errors.is_empty() => Ok((lines, reason)),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl ReceiveReturnRequest {
    fn into_restock(self) -> Result<Restock, ApiError> {
        let mut errors = FieldErrors::new();
        let mut restock = Restock {
            all: self.restock.unwrap_or(true),
            ..Restock::default()
        };
        for (k, l) in self.lines.iter().enumerate() {
            if let Some(id) = errors.take(line_id(format!("lines[{k}].line_id"), &l.line_id)) {
                restock.lines.push((id, l.restock));
            }
        }
        errors.finish(|| restock).map_err(ApiError::Validation)
    }
}

fn shipment_id(text: &str) -> Result<ShipmentId, ApiError> {
    // A path id that cannot be one is no such shipment, as for receipts.
    ShipmentId::parse(text).ok_or(ApiError::NotFound("shipment"))
}

fn return_id(text: &str) -> Result<ReturnId, ApiError> {
    ReturnId::parse(text).ok_or(ApiError::NotFound("return"))
}

// ---------------------------------------------------------------- answers

fn shipment_answer(
    status: StatusCode,
    order: &Order,
    id: ShipmentId,
) -> Result<Response, ApiError> {
    let s = order.shipment(id).ok_or(ApiError::NotFound("shipment"))?;
    let mut response = answer(status, order, &ShipmentResponse::from_domain(order, s))?;
    if status == StatusCode::CREATED {
        if let Ok(at) = HeaderValue::from_str(&format!("/v1/shipments/{id}")) {
            response.headers_mut().insert(header::LOCATION, at);
        }
    }
    Ok(response)
}

fn return_answer(status: StatusCode, order: &Order, id: ReturnId) -> Result<Response, ApiError> {
    let r = order.return_of(id).ok_or(ApiError::NotFound("return"))?;
    answer(status, order, &ReturnResponse::from_domain(order, r))
}

/// `body` as JSON, with its order's version as ETag.
fn answer(status: StatusCode, order: &Order, body: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(status, body, Some(order.version)))
}

// ---------------------------------------------------------------- shipments

/// Ship some or all of an order's units.
///
/// Makes a `pending` shipment (`shipment.created`) of the items and units
/// named, or of every unit not yet in a shipment. The order must be
/// confirmed. Serialised items carry their units: those given with the
/// item (by serial; by default the next ones), or new ones, one per unit
/// shipped, whose serials are new to the order and whose `refers_to` names
/// a unit of an earlier item. Stock moves when the shipment ships.
#[utoipa::path(
    post, path = "/v1/orders/{id}/shipments", tag = "fulfilment",
    request_body(content = CreateShipmentRequest, description = "Optional: with no body, every unit not yet in a shipment"),
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412 (a retried request does not ship twice)")),
    responses(
        (status = 201, description = "The shipment", body = ShipmentResponse, headers(("ETag" = String, description = "The order's new version"), ("Location" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is not confirmed, every unit is already in a shipment, or it has 200 shipments (cancelled ones count)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown item, more units than are left to ship, or units (instances) that do not match", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_shipment(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<CreateShipmentRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "ship orders")?;
    let lookup = lookup(&id)?;
    let expected = if_match(&headers)?;
    let draft = req.into_draft()?;
    let actor = principal.actor();
    let changed = orders::change(
        &state,
        &principal,
        lookup,
        expected,
        "ship",
        Vec::new(),
        move |o, _book, now| o.create_shipment(draft, actor, now).map(Some),
    )
    .await?;
    let created = changed
        .order
        .shipments
        .last()
        .map(|s| s.id)
        .ok_or_else(|| ApiError::Internal("a shipment was made but is not on the order".into()))?;
    shipment_answer(StatusCode::CREATED, &changed.order, created)
}

/// An order's shipments, oldest first (cancelled ones included).
#[utoipa::path(
    get, path = "/v1/orders/{id}/shipments", tag = "fulfilment",
    params(("id" = String, Path, description = "Order id or reference")),
    responses(
        (status = 200, description = "The shipments", body = ShipmentList),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_shipments(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<ShipmentList>, ApiError> {
    let order = read_order(&state, &principal, &lookup(&id)?).await?;
    Ok(axum::Json(ShipmentList {
        data: order
            .shipments
            .iter()
            .map(|s| ShipmentResponse::from_domain(&order, s))
            .collect(),
    }))
}

/// A shipment.
#[utoipa::path(
    get, path = "/v1/shipments/{id}", tag = "fulfilment",
    params(("id" = String, Path, description = "shp_…")),
    responses(
        (status = 200, description = "The shipment", body = ShipmentResponse, headers(("ETag" = String, description = "Its order's version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_shipment(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let id = shipment_id(&id)?;
    let order = state
        .store()
        .order(&principal.scope(), &OrderLookup::Shipment(id))
        .await?
        .ok_or(ApiError::NotFound("shipment"))?;
    shipment_answer(StatusCode::OK, &order, id)
}

/// Move a shipment on: `ship`, `in_transit`, `deliver` or `cancel`.
///
/// | state | ship | in_transit | deliver | cancel |
/// |---|---|---|---|---|
/// | pending | shipped | – | – | cancelled |
/// | shipped | (again) | in_transit | delivered | – |
/// | in_transit | – | (again) | delivered | – |
/// | delivered | – | – | (again) | – |
///
/// Shipping (seed 003's release) deducts its units from the order's
/// reservation and from stock on hand (`deduction` movements). The order's
/// `fulfillment_status` and `stage` follow; with the tenant's
/// `auto_complete`, delivering the last units of a paid order completes
/// it. The same action again changes nothing but the tracking it gives; any
/// other is a 409 naming the state and what it allows.
#[utoipa::path(
    post, path = "/v1/shipments/{id}/{action}", tag = "fulfilment",
    request_body(content = TrackingRequest, description = "Optional: the carrier and tracking, when they are known (not for cancel)"),
    params(("id" = String, Path, description = "shp_…"), ("action" = ShipmentAction, Path, description = "ship, in_transit, deliver or cancel"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The shipment after the action", body = ShipmentResponse, headers(("ETag" = String, description = "Its order's version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment or action", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the shipment's state (`current_state`, `allowed_actions`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid tracking", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn act_on_shipment(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((id, action)): PathParams<(String, String)>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<TrackingRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "ship orders")?;
    let id = shipment_id(&id)?;
    let action = ShipmentAction::parse(&action)
        .ok_or_else(|| ApiError::NoRoute(format!("POST /v1/shipments/{id}/{action}")))?;
    let expected = if_match(&headers)?;
    let tracking = req.parse()?;
    let changed = orders::change(
        &state,
        &principal,
        OrderLookup::Shipment(id),
        expected,
        action.as_str(),
        Vec::new(),
        move |o, book, now| o.act_on_shipment(id, action, tracking, book, now),
    )
    .await
    .map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::NotFound("shipment"),
        other => other,
    })?;
    shipment_answer(StatusCode::OK, &changed.order, id)
}

// ---------------------------------------------------------------- cancelling units

/// Call off units not yet in a shipment.
///
/// Each item named (or every item) loses the units asked, by default all
/// those not shipped and not in a shipment: its `quantity` drops and its
/// `fulfillment.cancelled` grows, a serialised item loses its last units
/// not yet shipped, the totals follow and the stock they held is let go.
/// Money paid beyond the new total, up to what the units cost, goes back:
/// refunds through the payment provider for what it charged, by hand
/// (pending until settled) for the rest. Allowed on pending and confirmed
/// orders, also once goods have shipped (when the order can no longer be
/// cancelled or edited: what is left may then be delivered and the order
/// completed), never for every unit of an order that shipped nothing
/// (cancel it instead). `order.updated`, with `cancelled_items` and the
/// `reason`.
#[utoipa::path(
    post, path = "/v1/orders/{id}/cancel-items", tag = "fulfilment",
    request_body = ItemUnitsRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The order", body = OrderResponse, headers(("ETag" = String, description = "The order's new version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Every unit is shipped or in a shipment, the order's status does not allow it, or it would cancel every unit of an order that shipped nothing", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown item, more units than it has outside shipments, a unit another refers to, or no reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn cancel_items(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<ItemUnitsRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "change orders")?;
    let lookup = lookup(&id)?;
    let expected = if_match(&headers)?;
    let (lines, reason) = body.value.parse()?;
    let draft = CancelItems { lines, reason };
    let actor = principal.actor();
    let changed = orders::change(
        &state,
        &principal,
        lookup,
        expected,
        "cancel_items",
        Vec::new(),
        move |o, book, now| o.cancel_items(draft, actor, book, now).map(Some),
    )
    .await?;
    Ok(order_response(StatusCode::OK, &changed.order))
}

// ---------------------------------------------------------------- returns

/// Record a return of delivered units.
///
/// A `requested` return (`return.requested`) of the items and units named,
/// or of every delivered unit not already in a return; never more than
/// was delivered. Allowed on confirmed and completed orders.
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns", tag = "fulfilment",
    request_body = ItemUnitsRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 201, description = "The return", body = ReturnResponse, headers(("ETag" = String, description = "The order's new version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing delivered is left to return, the order has 100 returns, or its status does not allow it", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An unknown item, more units than were delivered and not yet returned, or no reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_return(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<ItemUnitsRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "record returns")?;
    let lookup = lookup(&id)?;
    let expected = if_match(&headers)?;
    let (lines, reason) = body.value.parse()?;
    let draft = ReturnDraft { lines, reason };
    let actor = principal.actor();
    let changed = orders::change(
        &state,
        &principal,
        lookup,
        expected,
        "return",
        Vec::new(),
        move |o, _book, now| o.request_return(draft, actor, now).map(Some),
    )
    .await?;
    let created =
        changed.order.returns.last().map(|r| r.id).ok_or_else(|| {
            ApiError::Internal("a return was made but is not on the order".into())
        })?;
    return_answer(StatusCode::CREATED, &changed.order, created)
}

/// An order's returns, oldest first.
#[utoipa::path(
    get, path = "/v1/orders/{id}/returns", tag = "fulfilment",
    params(("id" = String, Path, description = "Order id or reference")),
    responses(
        (status = 200, description = "The returns", body = ReturnList),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_returns(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<axum::Json<ReturnList>, ApiError> {
    let order = read_order(&state, &principal, &lookup(&id)?).await?;
    Ok(axum::Json(ReturnList {
        data: order
            .returns
            .iter()
            .map(|r| ReturnResponse::from_domain(&order, r))
            .collect(),
    }))
}

/// Moves return `return_id` of order `id` by `apply`, and answers with it.
async fn act_on_return(
    state: &AppState,
    principal: &Principal,
    (id, ret): (String, String),
    headers: &HeaderMap,
    action: ReturnAction,
    apply: impl FnOnce(
            &mut Order,
            ReturnId,
            &mut StockBook,
            Timestamp,
        ) -> Result<Option<EventDraft>, Refusal>
        + Send
        + 'static,
) -> Result<Response, ApiError> {
    let lookup = lookup(&id)?;
    let rid = return_id(&ret)?;
    let expected = if_match(headers)?;
    let changed = orders::change(
        state,
        principal,
        lookup,
        expected,
        action.as_str(),
        Vec::new(),
        move |o, book, now| apply(o, rid, book, now),
    )
    .await?;
    return_answer(StatusCode::OK, &changed.order, rid)
}

/// The units of a return are back.
///
/// `requested` → `received` (`return.received`): each item goes back in
/// stock (a `restock` movement, for catalog items whose product tracks
/// stock) unless said otherwise. The returned units count in the item's
/// `fulfillment.returned` and the order's `fulfillment_status`
/// (`partially_returned`, `returned`).
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns/{return_id}/receive", tag = "fulfilment",
    request_body(content = ReceiveReturnRequest, description = "Optional: everything goes back in stock by default"),
    params(("id" = String, Path, description = "Order id or reference"), ("return_id" = String, Path, description = "ret_…"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The return", body = ReturnResponse, headers(("ETag" = String, description = "The order's version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the return's state", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An item not in the return", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn receive_return(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(ids): PathParams<(String, String)>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<ReceiveReturnRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "receive returns")?;
    let restock = req.into_restock()?;
    act_on_return(
        &state,
        &principal,
        ids,
        &headers,
        ReturnAction::Receive,
        move |o, id, book, now| o.receive_return(id, restock, book, now),
    )
    .await
}

/// Give a received return's money back.
///
/// `received` → `refunded` (`return.refunded`) when its refunds succeed
/// at once, `refund_pending` (`return.refund_pending`) while one is under
/// way: refunds of what the returned units cost (or `amount`), at most
/// what was paid and not yet refunded: through the payment provider for
/// what it charged (pending until it says), by hand for the rest. They are
/// the order's refunds (each with its `refund.recorded`), with the
/// return's items; `payment_status` follows. Once they all succeed the
/// return is `refunded` (`return.refunded`); when one fails it is
/// `received` again (`return.refund_failed`) and may be refunded again,
/// for what was not given back.
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns/{return_id}/refund", tag = "fulfilment",
    request_body(content = RefundReturnRequest, description = "Optional"),
    params(("id" = String, Path, description = "Order id or reference"), ("return_id" = String, Path, description = "ret_…"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The return", body = ReturnResponse, headers(("ETag" = String, description = "The order's version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not refund", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not received yet, nothing paid is left to refund, more than that, or its units were already refunded", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad amount or state", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn refund_return(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(ids): PathParams<(String, String)>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<RefundReturnRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::Refund, "refund returns")?;
    let order = read_order(&state, &principal, &lookup(&ids.0)?).await?;
    let mut errors = FieldErrors::new();
    let amount = req
        .amount
        .as_deref()
        .and_then(|a| errors.take(positive_amount(order.currency, "amount", a)));
    let by_hand = match req.state.as_deref() {
        None | Some("succeeded") => EntryState::Succeeded,
        Some("pending") => EntryState::Pending,
        Some(other) => {
            errors.push(
                FieldError::new("state", "not how a refund paid by hand stands")
                    .value(other)
                    .accepted("succeeded, pending"),
            );
            EntryState::Pending
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let how = ReturnRefund { amount, by_hand };
    let actor = principal.actor();
    act_on_return(
        &state,
        &principal,
        ids,
        &headers,
        ReturnAction::Refund,
        move |o, id, _book, now| o.refund_return(id, how, actor, now),
    )
    .await
}

/// Close a return without a refund.
///
/// `requested` or `received` → `closed` (`return.closed`): units never
/// received may be returned again; units received stay returned.
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns/{return_id}/close", tag = "fulfilment",
    params(("id" = String, Path, description = "Order id or reference"), ("return_id" = String, Path, description = "ret_…"), ("If-Match" = Option<String>, Header, description = "The order's ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The return", body = ReturnResponse, headers(("ETag" = String, description = "The order's version"))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the return's state", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn close_return(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(ids): PathParams<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "close returns")?;
    act_on_return(
        &state,
        &principal,
        ids,
        &headers,
        ReturnAction::Close,
        move |o, id, _book, now| o.close_return(id, now),
    )
    .await
}

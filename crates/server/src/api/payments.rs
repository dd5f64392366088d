//! `/v1/orders/{id}/payments` and `/refunds`: money in and out of an
//! order's ledger. Each is one change to the order (one transaction, one
//! event), and the answer is the order as it then is.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use ordo_domain::{
    Currency, Entry, EntryState, FieldError, FieldErrors, LineId, Order, PaymentDraft, PaymentId,
    PaymentMethod, Permission, RefundDraft, RefundId, RefundLine, Settlement, Timestamp,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams};
use super::orders::{
    if_match, json_response, lookup, read_order, render, time, ActorResponse, OrderResponse,
};
use crate::app::AppState;
use crate::orders;

/// How far ahead of this server's clock a `paid_at` may be (clocks differ).
const PAID_AT_SKEW_MS: i64 = 5 * 60 * 1000;

/// A payment received.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// `bank_transfer`, `cash`, `card`, `mobile_money`, `store_credit` or `other`.
    #[schema(example = "bank_transfer")]
    pub method: String,
    /// In major units with the currency's decimals; more than zero.
    #[schema(example = "5000.00")]
    pub amount: String,
    /// Must be the order's currency.
    #[schema(example = "NGN")]
    pub currency: String,
    /// The payer's or the provider's reference, recorded once per shop:
    /// the same payment sent again under it is answered with the order as
    /// recorded (200, `Idempotent-Replayed: true`); another payment under
    /// it is a 409.
    #[schema(example = "FT24336XK91")]
    pub transaction_id: Option<String>,
    /// When the money moved (RFC 3339); now when not given.
    pub paid_at: Option<String>,
}

/// Units of a line given back.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineBody {
    #[schema(example = "li_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub line_id: String,
    pub quantity: u32,
}

/// Money paid back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// In major units; when not given, what the `lines` cost.
    #[schema(example = "5000.00")]
    pub amount: Option<String>,
    /// The items given back, if the refund is for items.
    #[serde(default)]
    pub lines: Vec<RefundLineBody>,
    #[schema(example = "returned: wrong size")]
    pub reason: String,
}

/// A payment on an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentResponse {
    #[schema(example = "pay_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    pub method: PaymentMethod,
    #[schema(example = "5000.00")]
    pub amount: String,
    pub transaction_id: Option<String>,
    /// `pending` until whoever moves the money says `succeeded` or `failed`.
    pub state: EntryState,
    pub paid_at: String,
    pub recorded_at: String,
    pub recorded_by: ActorResponse,
    /// Set for a payment the shop's payment provider charges.
    pub provider: Option<ThroughProviderResponse>,
}

/// What ordo knows of an entry the payment provider moves.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThroughProviderResponse {
    /// The provider's id, once it has answered.
    #[schema(example = "pp_8JX2Q")]
    pub id: Option<String>,
    /// The last failed call while it is retried (or given up), or why the
    /// provider refused it.
    #[schema(example = "the payment provider failed after 3 attempts: HTTP 503")]
    pub error: Option<String>,
    /// ordo stopped calling the provider about it while it was pending;
    /// for a refund, the shop may then say how it ended (`…/settle`).
    pub given_up: bool,
}

impl ThroughProviderResponse {
    fn of(p: Option<&ordo_domain::ThroughProvider>) -> Option<Self> {
        p.map(|p| ThroughProviderResponse {
            id: p.id.clone(),
            error: p.error.clone(),
            given_up: p.given_up,
        })
    }
}

/// A refund on an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundResponse {
    #[schema(example = "ref_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    #[schema(example = "5000.00")]
    pub amount: String,
    pub lines: Vec<RefundLineBody>,
    pub reason: String,
    /// `pending` while under way: paid back by the provider (`provider`
    /// set) or by the shop, which says so with `…/refunds/{rid}/settle`.
    pub state: EntryState,
    pub recorded_at: String,
    pub recorded_by: ActorResponse,
    /// The payment whose money it gives back, when it is one payment's.
    pub payment_id: Option<String>,
    /// Set for a refund the payment provider pays back.
    pub provider: Option<ThroughProviderResponse>,
}

impl PaymentResponse {
    pub(crate) fn from_domain(p: &ordo_domain::Payment, c: Currency) -> Self {
        PaymentResponse {
            id: p.id.to_string(),
            method: p.method,
            amount: c.format_amount(p.amount),
            transaction_id: p.transaction_id.clone(),
            state: p.state,
            paid_at: time(p.paid_at),
            recorded_at: time(p.recorded_at),
            recorded_by: ActorResponse::from_domain(&p.recorded_by),
            provider: ThroughProviderResponse::of(p.provider.as_ref()),
        }
    }
}

impl RefundResponse {
    pub(crate) fn from_domain(r: &ordo_domain::Refund, c: Currency) -> Self {
        RefundResponse {
            id: r.id.to_string(),
            amount: c.format_amount(r.amount),
            lines: r
                .lines
                .iter()
                .map(|l| RefundLineBody {
                    line_id: l.line_id.to_string(),
                    quantity: l.quantity,
                })
                .collect(),
            reason: r.reason.clone(),
            state: r.state,
            recorded_at: time(r.recorded_at),
            recorded_by: ActorResponse::from_domain(&r.recorded_by),
            payment_id: r.payment_id.map(|p| p.to_string()),
            provider: ThroughProviderResponse::of(r.provider.as_ref()),
        }
    }
}

pub(crate) fn positive_amount(
    currency: Currency,
    field: &str,
    text: &str,
) -> Result<i64, FieldError> {
    match currency.parse_price(field, text) {
        Ok(0) => Err(FieldError::new(field, "an amount must be more than zero")
            .value(text)
            .accepted(format!(
                "a decimal string above 0 with up to {} decimals for {currency}",
                currency.exponent()
            ))),
        other => other,
    }
}

pub(crate) fn payment_method(text: &str) -> Result<PaymentMethod, FieldError> {
    PaymentMethod::parse(text).ok_or_else(|| {
        FieldError::new("method", "not a payment method")
            .value(text)
            .accepted(PaymentMethod::accepted())
    })
}

/// A transaction id: 1 to 200 visible characters, trimmed.
pub(crate) fn transaction_id(text: &str) -> Result<String, FieldError> {
    let id = text.trim();
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(FieldError::new("transaction_id", "not a transaction id")
            .value(text)
            .accepted("1 to 200 characters, no control characters"));
    }
    Ok(id.to_string())
}

pub(crate) fn paid_at(text: &str) -> Result<Timestamp, FieldError> {
    let at = Timestamp::parse_rfc3339(text).ok_or_else(|| {
        FieldError::new("paid_at", "not a time")
            .value(text)
            .accepted("an RFC 3339 time such as 2026-11-24T10:00:00Z")
    })?;
    if at > Timestamp::now().plus_millis(PAID_AT_SKEW_MS) {
        return Err(FieldError::new("paid_at", "in the future")
            .value(text)
            .accepted("a time up to now"));
    }
    Ok(at)
}

/// The id of one of an order's items, named `field` in errors.
pub(crate) fn line_id(field: String, text: &str) -> Result<LineId, FieldError> {
    LineId::parse(text).ok_or_else(|| {
        FieldError::new(field, "not a line id")
            .value(text)
            .accepted("the id of one of the order's items (li_…)")
    })
}

/// A reason (for a refund, a rejection): 1 to 500 characters.
pub(crate) fn reason(text: &str) -> Result<String, FieldError> {
    let reason = text.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(FieldError::new("reason", "a reason is needed")
            .value(text)
            .accepted("1 to 500 characters"));
    }
    Ok(reason.to_string())
}

impl PaymentRequest {
    /// The payment, in `currency` (the order's, which it must name).
    fn into_draft(self, currency: Currency) -> Result<PaymentDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let method = errors.take(payment_method(&self.method));
        if !self.currency.eq_ignore_ascii_case(currency.code()) {
            errors.push(
                FieldError::new("currency", "not the order's currency")
                    .value(&self.currency)
                    .accepted(currency.code()),
            );
        }
        let amount = errors.take(positive_amount(currency, "amount", &self.amount));
        let transaction_id = self
            .transaction_id
            .as_deref()
            .and_then(|t| errors.take(transaction_id(t)));
        let paid_at = self
            .paid_at
            .as_deref()
            .and_then(|t| errors.take(paid_at(t)));
        match (method, amount) {
            (Some(method), Some(amount)) if errors.is_empty() => Ok(PaymentDraft {
                method,
                amount,
                transaction_id,
                paid_at,
                state: EntryState::Succeeded,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl RefundRequest {
    fn into_draft(self, currency: Currency) -> Result<RefundDraft, ApiError> {
        let mut errors = FieldErrors::new();
        let amount = self
            .amount
            .as_deref()
            .and_then(|t| errors.take(positive_amount(currency, "amount", t)));
        let lines: Vec<RefundLine> = self
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let line_id = errors.take(line_id(format!("lines[{i}].line_id"), &l.line_id))?;
                Some(RefundLine {
                    line_id,
                    quantity: l.quantity,
                })
            })
            .collect();
        let reason = errors.take(reason(&self.reason));
        match reason {
            Some(reason) if errors.is_empty() => Ok(RefundDraft {
                amount,
                lines,
                reason,
                state: EntryState::Succeeded,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Reads the order (for its currency), turns the body into an entry, and
/// records it through `record`, answering `status`. An entry that changed
/// nothing (the same payment again) is answered 200 with
/// `Idempotent-Replayed: true`.
pub(crate) async fn record<D: Send + 'static>(
    state: &AppState,
    principal: &Principal,
    id: &str,
    headers: &HeaderMap,
    status: StatusCode,
    parse: impl FnOnce(Currency) -> Result<D, ApiError>,
    record: impl FnOnce(
            &mut Order,
            D,
            ordo_domain::Actor,
            Timestamp,
        ) -> Result<Option<ordo_domain::EventDraft>, ordo_domain::Refusal>
        + Send
        + 'static,
) -> Result<Response, ApiError> {
    let lookup = lookup(id)?;
    let expected = if_match(headers)?;
    let current = read_order(state, principal, &lookup).await?;
    let draft = parse(current.currency)?;
    let actor = principal.actor();
    let changed = orders::change(
        state,
        principal,
        lookup,
        expected,
        "record",
        Vec::new(),
        move |o, _book, now| record(o, draft, actor, now),
    )
    .await?;
    let replayed = changed.event.is_none();
    let status = if replayed { StatusCode::OK } else { status };
    let mut response = json_response(status, render(&changed.order), Some(changed.order.version));
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// Record a payment.
///
/// Split payments are several. `payment_status` follows from the ledger:
/// `partially_paid` below the total, `paid` at or above it (what is paid
/// beyond the total shows as `amount_overpaid`). A transaction id is
/// recorded once per shop.
#[utoipa::path(
    post, path = "/v1/orders/{id}/payments", tag = "payments",
    request_body = PaymentRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 201, description = "The order with the payment recorded", body = OrderResponse, headers(("ETag" = String))),
        (status = 200, description = "The same payment again under its transaction id: the order as it is, with `Idempotent-Replayed: true`", body = OrderResponse),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The transaction id is recorded for a different payment (`/problems/transaction-id-reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a currency other than the order's", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn record_payment(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<PaymentRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "record payments")?;
    record(
        &state,
        &principal,
        &id,
        &headers,
        StatusCode::CREATED,
        |c| body.value.into_draft(c),
        |o, draft, actor, now| o.record_payment(draft, actor, now),
    )
    .await
}

/// Record a refund.
///
/// At most what was paid and not yet refunded. With `lines`, the refund is
/// for those items (no unit refunded twice) and, without an `amount`, costs
/// what they cost. `payment_status` becomes `partially_refunded` or
/// `refunded`.
#[utoipa::path(
    post, path = "/v1/orders/{id}/refunds", tag = "payments",
    request_body = RefundRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 201, description = "The order with the refund recorded", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only owner, admin and integration keys refund", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than was paid and not yet refunded (`/problems/refund-exceeds-paid`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: no amount or lines, a line not on the order, more units than it has left", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn record_refund(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: JsonBody<RefundRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::Refund, "refund payments")?;
    record(
        &state,
        &principal,
        &id,
        &headers,
        StatusCode::CREATED,
        |c| body.value.into_draft(c),
        |o, draft, actor, now| o.record_refund(draft, actor, now).map(Some),
    )
    .await
}

/// A card payment to ask of the shop's payment provider.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    /// In major units; by default what is due and not already being
    /// charged, which is also the most it may be.
    #[schema(example = "10000.00")]
    pub amount: Option<String>,
}

/// Charge the order through the shop's payment provider.
///
/// Records a pending `card` payment and answers at once: the provider is
/// called by a background job (never inside this request), under the
/// payment's id as idempotency key, with retries, backoff and a circuit
/// breaker. Its answer and its webhooks settle the payment
/// (`payment.succeeded` or `payment.failed`); failed calls are on the
/// timeline (`payment.attempt_failed`) while they are retried.
#[utoipa::path(
    post, path = "/v1/orders/{id}/charges", tag = "payments",
    request_body = Option<ChargeRequest>,
    params(("id" = String, Path, description = "Order id or reference"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 202, description = "The order with the pending card payment; the charge is under way", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No payment provider is set, or the order is cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing is left to charge, or more than that", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn charge_order(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<Option<ChargeRequest>>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "charge payments")?;
    let settings = state
        .settings()
        .get(state.store(), principal.tenant_id)
        .await?;
    if settings.payment_provider.is_none() {
        return Err(ApiError::Conflict {
            detail: "no payment provider is set for this shop: set settings.payment_provider (PATCH /v1/settings) first".into(),
            errors: Vec::new(),
            existing_order_id: None,
        });
    }
    let amount = req.unwrap_or_default().amount;
    record(
        &state,
        &principal,
        &id,
        &headers,
        StatusCode::ACCEPTED,
        |c| match amount {
            Some(text) => Ok(Some(
                positive_amount(c, "amount", &text).map_err(ApiError::field)?,
            )),
            None => Ok(None),
        },
        |o, amount, actor, now| {
            o.request_charge(PaymentId::new_at(now), amount, actor, now)
                .map(Some)
        },
    )
    .await
}

/// How a refund the shop pays back by hand ended.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettleRefundRequest {
    /// `succeeded` (the money went back) or `failed` (it will not).
    #[schema(example = "succeeded")]
    pub state: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
}

/// Say how a refund paid back by hand ended.
///
/// A cancelled order's money that no provider took (a bank transfer, cash)
/// is put under way as a pending refund for the shop to pay back; this
/// records that it did (`refund.succeeded`) or will not
/// (`refund.failed`). Refunds through the payment provider are settled by
/// the provider, unless ordo gave up calling it (`provider.given_up`):
/// the shop then says how it ended, from the provider's own records.
#[utoipa::path(
    post, path = "/v1/orders/{id}/refunds/{refund_id}/settle", tag = "payments",
    request_body = SettleRefundRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("refund_id" = String, Path, description = "The refund's id (ref_…)"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The order with the refund settled", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Only owner, admin and integration keys refund", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or refund", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The refund already ended otherwise, or the provider pays it back (and ordo has not given up calling it)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a state", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn settle_refund(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((id, refund_id)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: JsonBody<SettleRefundRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::Refund, "settle refunds")?;
    // A path id that cannot be one is no such refund, as for receipts.
    let refund = RefundId::parse(&refund_id).ok_or(ApiError::NotFound("refund"))?;
    let req = body.value;
    let mut errors = FieldErrors::new();
    let next = errors.take(match EntryState::parse(&req.state) {
        Some(s @ (EntryState::Succeeded | EntryState::Failed)) => Ok(s),
        _ => Err(FieldError::new("state", "not how a refund ends")
            .value(&req.state)
            .accepted("succeeded, failed")),
    });
    let error = req.reason.as_deref().and_then(|r| errors.take(reason(r)));
    let Some(next) = next.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let report = Settlement {
        state: next,
        provider_id: None,
        error,
    };
    record(
        &state,
        &principal,
        &id,
        &headers,
        StatusCode::OK,
        |_| Ok(report),
        move |o, report, _actor, now| o.settle(Entry::Refund(refund), report, false, now),
    )
    .await
}

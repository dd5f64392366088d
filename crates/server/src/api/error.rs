//! One error type for the API, written as RFC 9457 problem+json.
//!
//! Every problem has a stable `type` (`/problems/<slug>`, described at that
//! path), a human `title` and `detail`, and where it helps, the fields at
//! fault with the value given and what is accepted. 5xx are logged with
//! their cause and never show internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ordo_domain::{FieldError, FieldErrors, OrderStatus, StateError, TransitionError};
use ordo_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `/problems/validation-failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The fields at fault, each with the value given and what is accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldProblem>)]
    pub errors: Vec<FieldError>,
    /// For a refused action: the order's current status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_status: Option<OrderStatus>,
    /// For a refused action on a shipment or a return: its current state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "delivered")]
    pub current_state: Option<String>,
    /// For a refused action: what can be done from the current state (for
    /// an order, among confirm, cancel, complete, edit, ship, return).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["cancel", "edit", "ship"]))]
    pub allowed_actions: Option<Vec<String>>,
    /// For a stale `If-Match`: the order's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    /// For a conflict with an existing order: its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_order_id: Option<String>,
    /// For insufficient stock: every SKU that is short.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortages: Option<Vec<ShortageBody>>,
}

/// A SKU an order could not reserve enough of.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShortageBody {
    pub sku: String,
    /// Units the order needed to reserve.
    pub requested: i64,
    /// Units available now.
    pub available: i64,
}

/// One field at fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldProblem {
    /// Path of the field, e.g. `items[0].unit_price`, or a header or query parameter name.
    pub field: String,
    /// The value that was given.
    pub value: Option<String>,
    pub reason: String,
    /// What would have been accepted.
    pub accepted: Option<String>,
}

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(FieldErrors),
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("expected Content-Type: {0}")]
    UnsupportedMediaType(&'static str),
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("the {role} role may not {what}")]
    Forbidden { role: String, what: &'static str },
    /// A caller without a key who did not prove what it must (a wrong
    /// verify token): 403, saying why.
    #[error("{0}")]
    Refused(&'static str),
    #[error("no {0} with that id exists")]
    NotFound(&'static str),
    #[error("no route matches {0}")]
    NoRoute(String),
    #[error("{method} is not allowed on this path")]
    MethodNotAllowed { method: String },
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the {what} is at version {current}, not {expected}: fetch it again and retry")]
    Stale {
        what: &'static str,
        expected: u64,
        current: u64,
    },
    #[error("{detail}")]
    Conflict {
        detail: String,
        errors: Vec<FieldError>,
        existing_order_id: Option<String>,
    },
    #[error("not enough stock: {}", .0.iter().map(|s| format!("{} (requested {}, available {})", s.sku, s.requested, s.available)).collect::<Vec<_>>().join(", "))]
    Short(Vec<ordo_domain::Shortage>),
    #[error("transaction id {transaction_id:?} is already recorded {}", if *.on_this_order { "on this order for a different payment" } else { "on another order" })]
    TransactionIdReused {
        transaction_id: String,
        on_this_order: bool,
    },
    #[error("a refund of {asked} is more than the {refundable} paid and not yet refunded")]
    RefundTooLarge { asked: String, refundable: String },
    #[error("the Idempotency-Key {0:?} was already used with a different request")]
    IdempotencyKeyReused(String),
    #[error("too many requests from this address: retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the service is temporarily unavailable; retry shortly")]
    Unavailable(String),
    /// A pricing provider the shop prices only with could not be asked.
    #[error("{0}")]
    PricingProvider(String),
    /// An automatic promotion the order was priced with was used up by
    /// other orders while it was placed (priced again without it).
    #[error("{detail}")]
    PromotionGone {
        id: ordo_domain::PromotionId,
        detail: String,
    },
    #[error("the request took too long")]
    Timeout,
    #[error("an unexpected error occurred")]
    Internal(String),
}

impl ApiError {
    pub fn field(error: FieldError) -> Self {
        ApiError::Validation(error.into())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError as E;
        match self {
            E::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "The request is not valid",
            ),
            E::MalformedJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
            ),
            E::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            E::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "The body is too large",
            ),
            E::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication is required",
            ),
            E::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not allowed for this role",
            ),
            E::Refused(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            E::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            E::NoRoute(_) => (StatusCode::NOT_FOUND, "no-such-route", "No such route"),
            E::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            E::Transition(_) | E::State(_) => (
                StatusCode::CONFLICT,
                "invalid-transition",
                "The action is not allowed in the current state",
            ),
            E::Stale { .. } => (
                StatusCode::PRECONDITION_FAILED,
                "stale-version",
                "It has changed since you read it",
            ),
            E::Conflict { .. } => (
                StatusCode::CONFLICT,
                "conflict",
                "The request conflicts with existing data",
            ),
            E::Short(_) => (
                StatusCode::CONFLICT,
                "insufficient-stock",
                "Not enough stock",
            ),
            E::TransactionIdReused { .. } => (
                StatusCode::CONFLICT,
                "transaction-id-reused",
                "The transaction id is already recorded for a different payment",
            ),
            E::RefundTooLarge { .. } => (
                StatusCode::CONFLICT,
                "refund-exceeds-paid",
                "The refund is more than was paid and not yet refunded",
            ),
            E::IdempotencyKeyReused(_) => (
                StatusCode::CONFLICT,
                "idempotency-key-reused",
                "The Idempotency-Key was used for a different request",
            ),
            E::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
            ),
            E::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Temporarily unavailable",
            ),
            E::PromotionGone { .. } => (
                StatusCode::CONFLICT,
                "promotion-used-up",
                "A promotion ran out while the order was placed",
            ),
            E::PricingProvider(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "pricing-provider-failed",
                "A pricing provider could not be asked",
            ),
            E::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "The request took too long",
            ),
            E::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    /// [`ApiError::to_problem`], logging the errors that are the
    /// server's own (an internal one, a dependency unavailable).
    pub fn logged_problem(&self) -> Problem {
        match self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "unavailable"),
            _ => {}
        }
        self.to_problem()
    }

    pub fn to_problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let mut p = Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: Vec::new(),
            current_status: None,
            current_state: None,
            allowed_actions: None,
            current_version: None,
            existing_order_id: None,
            shortages: None,
        };
        match self {
            ApiError::Validation(errors) => {
                p.errors = errors.0.clone();
                p.detail = match errors.0.as_slice() {
                    [one] => one.to_string(),
                    many => format!("{} fields are not valid: {}", many.len(), errors),
                };
            }
            ApiError::Transition(t) => {
                p.current_status = Some(t.status);
                let allowed: Vec<&str> = t.allowed.iter().map(|a| a.as_str()).collect();
                p.detail = refused(t, &allowed);
                p.allowed_actions = Some(allowed.iter().map(|a| a.to_string()).collect());
            }
            ApiError::State(e) => {
                p.current_state = Some(e.state.to_string());
                p.detail = refused(e, &e.allowed);
                p.allowed_actions = Some(e.allowed.iter().map(|a| a.to_string()).collect());
            }
            ApiError::Stale { current, .. } => p.current_version = Some(*current),
            ApiError::Short(short) => {
                p.errors = short
                    .iter()
                    .map(|s| {
                        FieldError::new(
                            format!("items[{}].quantity", s.line),
                            format!("not enough {} in stock", s.sku),
                        )
                        .value(s.requested)
                        .accepted(format!("at most {} (available now)", s.available))
                    })
                    .collect();
                p.shortages = Some(
                    short
                        .iter()
                        .map(|s| ShortageBody {
                            sku: s.sku.as_str().to_string(),
                            requested: s.requested,
                            available: s.available,
                        })
                        .collect(),
                );
            }
            ApiError::TransactionIdReused { transaction_id, .. } => {
                p.errors = vec![FieldError::new(
                    "transaction_id",
                    "already recorded for a different payment",
                )
                .value(transaction_id)
                .accepted(
                    "a transaction id not yet recorded in this shop, or the same payment again",
                )];
            }
            ApiError::RefundTooLarge { asked, refundable } => {
                p.errors =
                    vec![
                        FieldError::new("amount", "more than was paid and not yet refunded")
                            .value(asked)
                            .accepted(format!("at most {refundable}")),
                    ];
            }
            ApiError::Conflict {
                errors,
                existing_order_id,
                ..
            } => {
                p.errors = errors.clone();
                p.existing_order_id = existing_order_id.clone();
            }
            _ => {}
        }
        p
    }
}

/// A refused action's detail: what was refused, and what is allowed now.
fn refused(what: &dyn std::fmt::Display, allowed: &[&str]) -> String {
    if allowed.is_empty() {
        format!("{what}; nothing more can be done to it")
    } else {
        format!("{what}; allowed now: {}", allowed.join(", "))
    }
}

/// The page behind each problem type, for people who follow the link.
pub fn describe(slug: &str) -> Option<&'static str> {
    Some(match slug {
        "validation-failed" => "A field of the body, a query parameter or a header is not valid. `errors` lists each one with the value given and what is accepted. Fix them and send the request again.",
        "malformed-json" => "The body is not JSON (or not the JSON shape expected). The detail says where parsing stopped.",
        "unsupported-media-type" => "Send JSON bodies with `Content-Type: application/json`, and files (receipts) as `multipart/form-data` with a part named `file`.",
        "payload-too-large" => "The body is over the size limit: http.body_limit_bytes, or storefront.body_limit_bytes for a storefront checkout.",
        "unauthenticated" => "Send `Authorization: Bearer <api key>`. Keys are made with `ordo keys create`.",
        "forbidden" => "The key's role does not allow this. Viewers only read; vendors see only their own orders.",
        "not-found" => "Nothing with that id exists for your tenant (or your role may not see it).",
        "no-such-route" => "No endpoint has this path. See /docs for the API.",
        "method-not-allowed" => "The path exists but not with this method. See /docs.",
        "invalid-transition" => "The current state does not allow this action: an order's status (`current_status`), or a shipment's or return's state (`current_state`). `allowed_actions` says what can be done from there.",
        "stale-version" => "`If-Match` named an older version. Fetch the order (or product) again, re-apply your change, and send it with the new ETag.",
        "conflict" => "The request conflicts with existing data, such as an external identifier already used by another order.",
        "insufficient-stock" => "Some SKUs have fewer units available than the order needs to reserve. `shortages` lists every one with the units requested and available; nothing was reserved. Adjust the quantities, restock, or try again later.",
        "transaction-id-reused" => "A payment's transaction id is recorded once per shop. Sending the same payment again (same order, method and amount) returns it as recorded; a different payment under the same id is refused. Check the id, or leave it out.",
        "refund-exceeds-paid" => "A refund can take back at most what was paid (succeeded payments) less what is refunded or being refunded. The error's `accepted` says how much that is now.",
        "idempotency-key-reused" => "An Idempotency-Key was reused with a different request. Use a new key for a new request.",
        "rate-limited" => "This client address made more requests than the storefront allows (storefront.requests_per_minute, with storefront.burst at once). Wait the seconds `Retry-After` says, then retry.",
        "unavailable" => "The database is unavailable or busy. Retry with backoff. A write may or may not have been applied: send creates with an Idempotency-Key and changes with If-Match, and a retry is always safe.",
        "promotion-used-up" => "An automatic promotion the order was priced with was used up by other orders at the same moment. ordo prices such an order again without it by itself; this is seen only if that kept happening. Send the order again.",
        "pricing-provider-failed" => "One of the shop's pricing providers (price, promotion, tax, customer) gave no usable answer in time, and the shop chose to fail rather than fall back to its own rules (settings pricing_providers.on_failure). The detail names the provider and what happened. Nothing was created; retry later.",
        "timeout" => "The request did not finish in time. If it was a write, retry it with the same Idempotency-Key.",
        "internal" => "An unexpected error. It has been logged with the request id.",
        _ => return None,
    })
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from_store(e, "order")
    }
}

impl ApiError {
    /// A store error about a `what` (an order, a product): the store does
    /// not say which kind of record it did not find or found changed.
    pub fn from_store(e: StoreError, what: &'static str) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound(what),
            StoreError::VersionMismatch { expected, current } => ApiError::Stale {
                what,
                expected,
                current,
            },
            StoreError::Conflict { field, value } if field == "transaction_id" => {
                ApiError::TransactionIdReused {
                    transaction_id: value,
                    on_this_order: false,
                }
            }
            StoreError::Conflict { field, value } => ApiError::Conflict {
                detail: format!("{field} {value:?} is already used"),
                errors: vec![FieldError::new(field, "already used by another record").value(value)],
                existing_order_id: None,
            },
            StoreError::Refused(r) => r.into(),
            StoreError::Stock(e) => {
                use ordo_domain::StockError;
                let (change, accepted) = match &e {
                    StockError::OutOfRange { change, .. } => (
                        *change,
                        format!(
                            "a change leaving 0 to {} units on hand",
                            ordo_domain::product::MAX_STOCK
                        ),
                    ),
                    StockError::BelowReserved {
                        change, reserved, ..
                    } => (
                        *change,
                        format!("a change leaving at least the {reserved} reserved units on hand"),
                    ),
                };
                ApiError::Conflict {
                    detail: e.to_string(),
                    errors: vec![FieldError::new(change.field(), e.to_string())
                        .value(change.amount())
                        .accepted(accepted)],
                    existing_order_id: None,
                }
            }
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            StoreError::Corrupt(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<ordo_domain::LedgerRefusal> for ApiError {
    fn from(r: ordo_domain::LedgerRefusal) -> Self {
        use ordo_domain::LedgerError as E;
        let c = r.currency;
        match r.error {
            E::Invalid(f) => ApiError::field(f),
            E::TransactionIdReused(transaction_id) => ApiError::TransactionIdReused {
                transaction_id,
                on_this_order: true,
            },
            E::RefundTooLarge { asked, refundable } => ApiError::RefundTooLarge {
                asked: c.format_amount(asked),
                refundable: c.format_amount(refundable),
            },
            E::Unknown(what) => ApiError::NotFound(what),
            e @ E::Decided(_) => ApiError::Conflict {
                detail: format!("{e}: only a receipt in review can be approved or rejected"),
                errors: Vec::new(),
                existing_order_id: None,
            },
            e @ (E::Ended { .. } | E::Conflict(_)) => ApiError::Conflict {
                detail: e.to_string(),
                errors: Vec::new(),
                existing_order_id: None,
            },
        }
    }
}

impl From<ordo_domain::Refusal> for ApiError {
    fn from(r: ordo_domain::Refusal) -> Self {
        use ordo_domain::{ReconcileError, Refusal};
        match r {
            Refusal::Transition(t) => ApiError::Transition(t),
            Refusal::Invalid(f) => ApiError::Validation(f),
            Refusal::Reconcile(ReconcileError::Immutable {
                field,
                current,
                given,
            }) => ApiError::Conflict {
                detail: format!("the order's {field} is {current} and cannot change to {given}"),
                errors: vec![
                    FieldError::new(field, "cannot change once the order exists")
                        .value(given)
                        .accepted(current),
                ],
                existing_order_id: None,
            },
            Refusal::Reconcile(ReconcileError::NotEditable(t)) => ApiError::Transition(t),
            Refusal::Short(short) => ApiError::Short(short),
            Refusal::Ledger(r) => r.into(),
            Refusal::State(e) => ApiError::State(e),
            Refusal::Missing(what) => ApiError::NotFound(what),
            Refusal::Promotion(p) => match &p.code {
                Some(code) => ApiError::Validation(
                    crate::pricing::code_refused("promotion_codes".into(), code, &p.reason).into(),
                ),
                None => ApiError::PromotionGone {
                    id: p.id,
                    detail: format!(
                        "the promotion {:?} the order was priced with can no longer be used ({}); send the order again to price it without",
                        p.name, p.reason
                    ),
                },
            },
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.logged_problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthenticated(_)) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        match self {
            ApiError::Unavailable(_) | ApiError::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

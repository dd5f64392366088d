//! `/v1/orders/{id}/receipts`: proof of payment a buyer sent (seed 000), an
//! image or a PDF known by its content. It puts `payment_status` to
//! `pending` until staff approve it (recording a payment) or reject it.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use ordo_domain::{
    FieldError, FileKind, Order, PaymentMethod, Permission, Receipt, ReceiptDecision, ReceiptId,
    ReceiptState, Timestamp,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::{JsonBody, OptionalJsonBody, PathParams};
use super::orders::{
    json_response, lookup, read_order, render, time, ActorResponse, OrderResponse,
};
use super::payments::{paid_at, payment_method, positive_amount, record, transaction_id};
use crate::app::AppState;
use crate::files::FilesError;
use crate::orders;

impl From<FilesError> for ApiError {
    fn from(e: FilesError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

/// A receipt upload: `multipart/form-data` with one part named `file`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReceiptUpload {
    /// A JPEG, PNG or WebP image, or a PDF (known by its content).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A receipt on an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptResponse {
    #[schema(example = "rcpt_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    /// What the content is (never what its name says).
    #[schema(example = "image/jpeg")]
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// The name it was sent with.
    pub filename: Option<String>,
    pub state: ReceiptState,
    pub uploaded_at: String,
    pub uploaded_by: ActorResponse,
    pub decided_at: Option<String>,
    pub decided_by: Option<ActorResponse>,
    /// The payment its approval recorded.
    pub payment_id: Option<String>,
    pub reject_reason: Option<String>,
    /// Where to download it (with a key that may read the order).
    #[schema(
        example = "/v1/orders/ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV/receipts/rcpt_01JD5Q4ZB8Y7K6M3N2P1R0S9TV"
    )]
    pub url: String,
}

impl ReceiptResponse {
    pub(crate) fn from_domain(order: &Order, r: &Receipt) -> Self {
        ReceiptResponse {
            id: r.id.to_string(),
            content_type: r.kind.mime().to_string(),
            size: r.size,
            sha256: r.sha256.clone(),
            filename: r.filename.clone(),
            state: r.state,
            uploaded_at: time(r.uploaded_at),
            uploaded_by: ActorResponse::from_domain(&r.uploaded_by),
            decided_at: r.decided_at.map(time),
            decided_by: r.decided_by.as_ref().map(ActorResponse::from_domain),
            payment_id: r.payment_id.map(|p| p.to_string()),
            reject_reason: r.reject_reason.clone(),
            url: format!("/v1/orders/{}/receipts/{}", order.id, r.id),
        }
    }
}

/// Approving a receipt: the payment it stands for.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// What the receipt shows was paid; by default what is due.
    #[schema(example = "10000.00")]
    pub amount: Option<String>,
    /// By default `bank_transfer`.
    pub method: Option<String>,
    /// The transfer's reference, recorded once per shop.
    pub transaction_id: Option<String>,
    /// When the money moved (RFC 3339); by default now.
    pub paid_at: Option<String>,
}

/// Rejecting a receipt.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectRequest {
    #[schema(example = "the amount on the receipt does not match")]
    pub reason: String,
}

/// A file's name as sent, without any path, at most 200 characters.
pub(crate) fn filename(name: Option<&str>) -> Option<String> {
    let name = name?.rsplit(['/', '\\']).next()?.trim();
    let clean: String = name.chars().filter(|c| !c.is_control()).take(200).collect();
    (!clean.is_empty()).then_some(clean)
}

/// The uploaded file: its content (at most `max` bytes), name and the
/// media type it claimed.
pub(crate) struct Upload {
    pub content: Bytes,
    pub filename: Option<String>,
    declared: Option<String>,
}

pub(crate) async fn read_upload(mut multipart: Multipart, max: usize) -> Result<Upload, ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(max)
        } else {
            ApiError::field(
                FieldError::new(
                    "file",
                    format!("the multipart body is not valid: {}", e.body_text()),
                )
                .accepted("multipart/form-data with one part named file"),
            )
        }
    };
    let mut upload = None;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" || upload.is_some() {
            return Err(ApiError::field(
                FieldError::new(name.clone(), "not a part of a receipt upload")
                    .value(&name)
                    .accepted("one part named file"),
            ));
        }
        let filename = filename(field.file_name());
        let declared = field.content_type().map(str::to_string);
        let mut content = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if content.len() + chunk.len() > max {
                return Err(ApiError::PayloadTooLarge(max));
            }
            content.extend_from_slice(&chunk);
        }
        upload = Some(Upload {
            content: content.freeze(),
            filename,
            declared,
        });
    }
    upload.ok_or_else(|| {
        ApiError::field(
            FieldError::new("file", "no file was sent")
                .accepted("a multipart/form-data part named file"),
        )
    })
}

/// What the content is, refusing anything but the accepted kinds and a
/// declared media type the content contradicts.
pub(crate) fn kind_of(upload: &Upload) -> Result<FileKind, ApiError> {
    let declared = upload
        .declared
        .as_deref()
        .filter(|d| !d.is_empty() && !d.eq_ignore_ascii_case("application/octet-stream"));
    let refuse = |reason: String| {
        ApiError::field(
            FieldError::new("file", reason)
                .value(
                    declared
                        .or(upload.filename.as_deref())
                        .unwrap_or("(unnamed)"),
                )
                .accepted(FileKind::ACCEPTED),
        )
    };
    let Some(kind) = FileKind::sniff(&upload.content) else {
        return Err(refuse(
            "the content is not a JPEG, PNG or WebP image or a PDF".into(),
        ));
    };
    match declared {
        Some(d) if FileKind::from_mime(d) != Some(kind) => Err(refuse(format!(
            "the content is {}, not the {d} it was sent as",
            kind.mime()
        ))),
        _ => Ok(kind),
    }
}

/// Upload a payment receipt.
///
/// `multipart/form-data` with one part named `file`: a JPEG, PNG or WebP
/// image or a PDF, recognised by its content (a declared type the content
/// contradicts is refused), at most `files.receipt_max_bytes` (10 MiB by
/// default). The order's `payment_status` becomes `pending` until the
/// receipt is approved or rejected; an order keeps at most 20 receipts.
#[utoipa::path(
    post, path = "/v1/orders/{id}/receipts", tag = "payments",
    request_body(content = ReceiptUpload, content_type = "multipart/form-data"),
    params(("id" = String, Path, description = "Order id or reference")),
    responses(
        (status = 201, description = "The order with the receipt in review", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The file is over the limit (named in the detail)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not multipart/form-data", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No file, not an accepted kind by its content, or a declared type the content contradicts", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The file store is unavailable; nothing was recorded", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn upload_receipt(
    State(state): State<AppState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "upload receipts")?;
    let lookup = lookup(&id)?;
    let order = read_order(&state, &principal, &lookup).await?;
    let multipart = multipart.map_err(|_| ApiError::UnsupportedMediaType("multipart/form-data"))?;
    let upload = read_upload(multipart, state.config().files.receipt_max_bytes).await?;
    let kind = kind_of(&upload)?;
    let by = (principal.scope(), principal.actor());
    let changed = attach(&state, by, &order, upload.content, upload.filename, kind).await?;
    Ok(json_response(
        StatusCode::CREATED,
        render(&changed.order),
        Some(changed.order.version),
    ))
}

/// Keeps `content` (a receipt of `kind`) and puts it in review on `order`
/// (`receipt.uploaded`), by `actor` within `scope`; a refused change
/// leaves no file behind.
pub(crate) async fn attach(
    state: &AppState,
    (scope, actor): (ordo_store::Scope, ordo_domain::Actor),
    order: &Order,
    content: Bytes,
    filename: Option<String>,
    kind: FileKind,
) -> Result<ordo_store::Changed, ApiError> {
    let now = Timestamp::now();
    let receipt = Receipt {
        id: ReceiptId::new_at(now),
        kind,
        size: content.len() as u64,
        sha256: hex::encode(Sha256::digest(&content)),
        filename,
        state: ReceiptState::InReview,
        uploaded_at: now,
        uploaded_by: actor.clone(),
        decided_at: None,
        decided_by: None,
        payment_id: None,
        reject_reason: None,
    };
    let key = Receipt::key(order.tenant_id, order.id, receipt.id);
    state.files().put(&key, content).await?;
    let changed = orders::change_by(
        state,
        (scope, actor),
        ordo_store::OrderLookup::Id(order.id),
        None,
        Vec::new(),
        move |o, _book, now| o.add_receipt(receipt, now).map(Some),
    )
    .await;
    if changed.is_err() {
        // The order does not name the file: it goes.
        if let Err(cleanup) = state.files().delete(&key).await {
            tracing::warn!(%key, error = %cleanup, "a refused receipt's file could not be removed");
        }
    }
    changed
}

/// Download a receipt.
#[utoipa::path(
    get, path = "/v1/orders/{id}/receipts/{receipt_id}", tag = "payments",
    params(("id" = String, Path, description = "Order id or reference"), ("receipt_id" = String, Path, description = "rcpt_…")),
    responses(
        (status = 200, description = "The file as it was sent, with its content type", content_type = "application/octet-stream"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or receipt", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The file store is unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn download_receipt(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((id, receipt_id)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let order = read_order(&state, &principal, &lookup(&id)?).await?;
    let rid = parse_receipt_id(&receipt_id)?;
    let receipt = order
        .ledger
        .receipts
        .iter()
        .find(|r| r.id == rid)
        .ok_or(ApiError::NotFound("receipt"))?;
    let key = Receipt::key(order.tenant_id, order.id, receipt.id);
    let Some(content) = state.files().get(&key).await? else {
        tracing::error!(%key, "the file of a receipt an order names is missing");
        return Err(ApiError::NotFound("receipt file"));
    };
    let mut response = (StatusCode::OK, content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(receipt.kind.mime()),
    );
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        receipt.id,
        receipt.kind.extension()
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    Ok(response)
}

fn parse_receipt_id(text: &str) -> Result<ReceiptId, ApiError> {
    ReceiptId::parse(text).ok_or(ApiError::NotFound("receipt"))
}

/// Approves or rejects the receipt `ids.1` of the order `ids.0`, as
/// `decision` (given the order's currency) says, answering `status`.
async fn decide(
    state: &AppState,
    principal: &Principal,
    ids: (&str, &str),
    headers: &HeaderMap,
    status: StatusCode,
    decision: impl FnOnce(ordo_domain::Currency) -> Result<ReceiptDecision, ApiError>,
) -> Result<Response, ApiError> {
    let rid = parse_receipt_id(ids.1)?;
    record(
        state,
        principal,
        ids.0,
        headers,
        status,
        decision,
        move |o, decision, actor, now| o.decide_receipt(rid, decision, actor, now).map(Some),
    )
    .await
}

impl ApproveRequest {
    /// The approval, amounts in the order's `currency`.
    fn into_decision(self, currency: ordo_domain::Currency) -> Result<ReceiptDecision, ApiError> {
        let mut errors = ordo_domain::FieldErrors::new();
        let amount = self
            .amount
            .as_deref()
            .and_then(|t| errors.take(positive_amount(currency, "amount", t)));
        let method = match self.method.as_deref() {
            None => Some(PaymentMethod::BankTransfer),
            Some(m) => errors.take(payment_method(m)),
        };
        let transaction_id = self
            .transaction_id
            .as_deref()
            .and_then(|t| errors.take(transaction_id(t)));
        let paid_at = self
            .paid_at
            .as_deref()
            .and_then(|t| errors.take(paid_at(t)));
        match method {
            Some(method) if errors.is_empty() => Ok(ReceiptDecision::Approve {
                amount,
                method,
                transaction_id,
                paid_at,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Approve a receipt: the money arrived.
///
/// Records a payment (of `amount`, by default what is due; `bank_transfer`
/// unless `method` says otherwise) and marks the receipt approved, in one
/// change with one `receipt.approved` event.
#[utoipa::path(
    post, path = "/v1/orders/{id}/receipts/{receipt_id}/approve", tag = "payments",
    request_body(content = ApproveRequest, description = "Optional"),
    params(("id" = String, Path, description = "Order id or reference"), ("receipt_id" = String, Path, description = "rcpt_…"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 201, description = "The order with the payment recorded", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or receipt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The receipt was already approved or rejected, or the transaction id is taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or nothing due and no amount given", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn approve_receipt(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((id, rid)): PathParams<(String, String)>,
    headers: HeaderMap,
    OptionalJsonBody(req): OptionalJsonBody<ApproveRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "approve receipts")?;
    let decide_with = |currency| req.into_decision(currency);
    decide(
        &state,
        &principal,
        (&id, &rid),
        &headers,
        StatusCode::CREATED,
        decide_with,
    )
    .await
}

/// Reject a receipt, with a reason.
///
/// Nothing is recorded as paid; `payment_status` is derived again (no
/// longer `pending` unless another receipt or payment awaits a decision).
#[utoipa::path(
    post, path = "/v1/orders/{id}/receipts/{receipt_id}/reject", tag = "payments",
    request_body = RejectRequest,
    params(("id" = String, Path, description = "Order id or reference"), ("receipt_id" = String, Path, description = "rcpt_…"), ("If-Match" = Option<String>, Header, description = "The ETag last read; a stale one is a 412")),
    responses(
        (status = 200, description = "The order with the receipt rejected", body = OrderResponse, headers(("ETag" = String))),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Read-only role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or receipt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The receipt was already approved or rejected", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "Stale If-Match", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn reject_receipt(
    State(state): State<AppState>,
    principal: Principal,
    PathParams((id, rid)): PathParams<(String, String)>,
    headers: HeaderMap,
    body: JsonBody<RejectRequest>,
) -> Result<Response, ApiError> {
    principal.require(Permission::WriteOrders, "reject receipts")?;
    let decide_with = |_| {
        super::payments::reason(&body.value.reason)
            .map(|reason| ReceiptDecision::Reject { reason })
            .map_err(ApiError::field)
    };
    decide(
        &state,
        &principal,
        (&id, &rid),
        &headers,
        StatusCode::OK,
        decide_with,
    )
    .await
}

//! `GET /v1/orders/export`: every order that matches the list's filters,
//! streamed page by page (memory stays bounded however many there are),
//! as NDJSON (one order per line, in the API's own shape) or CSV (one row
//! per item).

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ordo_domain::FieldError;
use ordo_store::{DynStore, OrderQuery, RenderedOrder, Scope};
use serde_json::Value;

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::describe_serde_error;
use super::orders::ListOrdersParams;
use crate::app::AppState;

/// Orders read per page of the export.
pub const EXPORT_PAGE: u32 = 200;

/// The CSV columns, one row per item; the order's own columns repeat on
/// each of its rows.
pub const CSV_COLUMNS: [&str; 36] = [
    "order_id",
    "reference",
    "external_ids",
    "status",
    "payment_status",
    "fulfillment_status",
    "channel",
    "currency",
    "created_at",
    "buyer_name",
    "buyer_phone",
    "buyer_email",
    "buyer_channel_id",
    "shipping_name",
    "shipping_line1",
    "shipping_line2",
    "shipping_city",
    "shipping_region",
    "shipping_postal_code",
    "shipping_country",
    "notes",
    "batch_id",
    "item_sku",
    "item_name",
    "item_quantity",
    "item_unit_price",
    "item_attributes",
    "item_line_total",
    "item_discount",
    "item_tax",
    "item_total",
    "subtotal",
    "discount_total",
    "shipping_total",
    "tax_total",
    "total",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Ndjson,
    Csv,
}

/// Export every matching order.
///
/// Takes the filters and `sort` of `GET /v1/orders` (not `limit` or
/// `cursor`: it streams them all) and `format`: `ndjson` (default; one
/// order per line, exactly as `GET /v1/orders/{id}` shows it) or `csv`
/// (one row per item, with the order's columns on each: see the README).
#[utoipa::path(
    get, path = "/v1/orders/export", tag = "orders",
    params(
        ("format" = Option<String>, Query, description = "ndjson (default) or csv"),
        ListOrdersParams,
    ),
    responses(
        (status = 200, description = "Every matching order, streamed", content_type = "application/x-ndjson"),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn export_orders(
    State(state): State<AppState>,
    principal: Principal,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (format, params) = parse(raw.as_deref().unwrap_or(""))?;
    if params.limit.is_some() || params.cursor.is_some() {
        let field = if params.limit.is_some() {
            "limit"
        } else {
            "cursor"
        };
        return Err(ApiError::field(
            FieldError::new(field, "an export streams every matching order")
                .accepted("the list's filters and sort, and format"),
        ));
    }
    let mut query = params.query()?;
    query.limit = EXPORT_PAGE;
    let pages = Pages {
        store: state.store_handle(),
        scope: principal.scope(),
        query,
        format,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(pages, |mut pages| async move {
        let chunk = pages.next().await?;
        Some((chunk, pages))
    });
    let (content_type, extension) = match format {
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"orders.{extension}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// The format and the list's parameters from the query string.
fn parse(raw: &str) -> Result<(Format, ListOrdersParams), ApiError> {
    let mut format = Format::Ndjson;
    let mut rest = Vec::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("format", value)) => {
                format = match value {
                    "ndjson" => Format::Ndjson,
                    "csv" => Format::Csv,
                    other => {
                        return Err(ApiError::field(
                            FieldError::new("format", "not an export format")
                                .value(other)
                                .accepted("ndjson or csv"),
                        ))
                    }
                }
            }
            _ => rest.push(pair),
        }
    }
    let params = serde_urlencoded::from_str(&rest.join("&")).map_err(|e| {
        let mut fe = describe_serde_error("", &e.to_string());
        if fe.field.is_empty() {
            fe.field = "query".into();
        }
        ApiError::field(fe)
    })?;
    Ok((format, params))
}

/// The export's pages, read one at a time as the client takes them.
struct Pages {
    store: DynStore,
    scope: Scope,
    query: OrderQuery,
    format: Format,
    started: bool,
    done: bool,
}

impl Pages {
    /// The next chunk of the body; `None` at the end. A read that fails
    /// mid-way ends the body with an error, so the client sees it cut.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started && self.format == Format::Csv {
            out.extend_from_slice(&csv_row(CSV_COLUMNS.iter().map(|c| (*c).to_string())));
        }
        self.started = true;
        let page = match self.store.rendered_orders(&self.scope, &self.query).await {
            Ok(page) => page,
            Err(e) => {
                self.done = true;
                tracing::warn!(error = %e, "export stopped");
                return Some(Err(std::io::Error::other(e.to_string())));
            }
        };
        if page.len() < self.query.limit as usize {
            self.done = true;
        }
        if let Some(last) = page.last() {
            self.query.after = Some(last.cursor(self.query.sort.field));
        }
        metrics::counter!("ordo_orders_exported_total").increment(page.len() as u64);
        for order in &page {
            match self.format {
                Format::Ndjson => {
                    out.extend_from_slice(&order.json);
                    out.push(b'\n');
                }
                Format::Csv => csv_rows(order, &mut out),
            }
        }
        if out.is_empty() {
            return None;
        }
        Some(Ok(Bytes::from(out)))
    }
}

/// One CSV record (RFC 4180: quoted when needed, CRLF-free `\n` ends).
fn csv_row(fields: impl Iterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let _ = writer.write_record(fields.collect::<Vec<_>>());
    writer.into_inner().unwrap_or_default()
}

/// An order's rows, from its rendering: one per item.
fn csv_rows(order: &RenderedOrder, out: &mut Vec<u8>) {
    let Ok(o) = serde_json::from_slice::<Value>(&order.json) else {
        return;
    };
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => String::new(),
        other => other.to_string(),
    };
    let ship = &o["shipping_address"];
    let head = [
        text(&o["id"]),
        text(&o["reference"]),
        text(&o["external_ids"]),
        text(&o["status"]),
        text(&o["payment_status"]),
        text(&o["fulfillment_status"]),
        text(&o["channel"]),
        text(&o["currency"]),
        text(&o["created_at"]),
        text(&o["buyer"]["name"]),
        text(&o["buyer"]["phone"]),
        text(&o["buyer"]["email"]),
        text(&o["buyer"]["channel_id"]),
        text(&ship["name"]),
        text(&ship["line1"]),
        text(&ship["line2"]),
        text(&ship["city"]),
        text(&ship["region"]),
        text(&ship["postal_code"]),
        text(&ship["country"]),
        text(&o["notes"]),
        text(&o["batch_id"]),
    ];
    let tail = [
        text(&o["subtotal"]),
        text(&o["discount_total"]),
        text(&o["shipping_total"]),
        text(&o["tax_total"]),
        text(&o["total"]),
    ];
    for item in o["items"].as_array().into_iter().flatten() {
        let line = [
            text(&item["sku"]),
            text(&item["name"]),
            text(&item["quantity"]),
            text(&item["unit_price"]),
            text(&item["attributes"]),
            text(&item["line_total"]),
            text(&item["discount"]),
            text(&item["tax"]),
            text(&item["total"]),
        ];
        let fields = head.iter().chain(&line).chain(&tail).cloned();
        out.extend_from_slice(&csv_row(fields));
    }
}

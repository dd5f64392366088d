//! `GET /v1/orders/export`: every order that matches the list's filters,
//! streamed page by page (memory stays bounded however many there are),
//! as NDJSON (one order per line, in the API's own shape) or CSV (one row
//! per item).

use std::borrow::Cow;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use ordo_domain::FieldError;
use ordo_store::{DynStore, OrderQuery, RenderedOrder, Scope};
use serde::Deserialize;
use serde_json::value::RawValue;

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
pub(crate) enum Format {
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
    let (format, stream) = export(
        state.store_handle(),
        principal.scope(),
        raw.as_deref().unwrap_or(""),
    )?;
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

/// The orders in `scope` that a query string (the list's filters and
/// sort, and `format`) asks for, as a stream of the file's pieces.
pub(crate) fn export(
    store: DynStore,
    scope: Scope,
    raw: &str,
) -> Result<
    (
        Format,
        impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>,
    ),
    ApiError,
> {
    let (format, params) = parse(raw)?;
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
        store,
        scope,
        query,
        format,
        started: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(pages, |mut pages| async move {
        let chunk = pages.next().await?;
        Some((chunk, pages))
    });
    Ok((format, stream))
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
            let mut header = csv_writer(Vec::new());
            let _ = header.write_record(CSV_COLUMNS);
            out = header.into_inner().unwrap_or_default();
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
        match self.format {
            Format::Ndjson => {
                for order in &page {
                    out.extend_from_slice(&order.json);
                    out.push(b'\n');
                }
            }
            Format::Csv => {
                // One writer for the page's rows.
                let mut writer = csv_writer(out);
                for order in &page {
                    csv_rows(order, &mut writer);
                }
                out = writer.into_inner().unwrap_or_default();
            }
        }
        if out.is_empty() {
            return None;
        }
        Some(Ok(Bytes::from(out)))
    }
}

/// A CSV writer (RFC 4180 quoting, `\n` line ends) into `out`.
pub(crate) fn csv_writer<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out)
}

/// The parts of an order's rendering the CSV shows, read without copying
/// what needs no unescaping.
#[derive(Deserialize)]
struct Rendered<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    reference: Cow<'a, str>,
    #[serde(borrow)]
    external_ids: &'a RawValue,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    payment_status: Cow<'a, str>,
    #[serde(borrow)]
    fulfillment_status: Cow<'a, str>,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    currency: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    buyer: Party<'a>,
    #[serde(borrow)]
    shipping_address: Option<Party<'a>>,
    #[serde(borrow)]
    notes: Option<Cow<'a, str>>,
    #[serde(borrow)]
    batch_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    items: Vec<Item<'a>>,
    #[serde(borrow)]
    subtotal: Cow<'a, str>,
    #[serde(borrow)]
    discount_total: Cow<'a, str>,
    #[serde(borrow)]
    shipping_total: Cow<'a, str>,
    #[serde(borrow)]
    tax_total: Cow<'a, str>,
    #[serde(borrow)]
    total: Cow<'a, str>,
}

/// A buyer or an address: the text fields the CSV shows.
#[derive(Deserialize, Default)]
struct Party<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    phone: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    email: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channel_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    line1: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    line2: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    city: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    region: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    postal_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    country: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    sku: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    quantity: u32,
    #[serde(borrow)]
    unit_price: Cow<'a, str>,
    #[serde(borrow)]
    attributes: &'a RawValue,
    #[serde(borrow)]
    line_total: Cow<'a, str>,
    #[serde(borrow)]
    discount: Cow<'a, str>,
    #[serde(borrow)]
    tax: Cow<'a, str>,
    #[serde(borrow)]
    total: Cow<'a, str>,
}

/// An order's rows, from its rendering: one per item.
fn csv_rows(order: &RenderedOrder, out: &mut csv::Writer<Vec<u8>>) {
    let Ok(o) = serde_json::from_slice::<Rendered<'_>>(&order.json) else {
        tracing::warn!(order = %order.id, "export: a rendering could not be read");
        return;
    };
    let opt = |v: &Option<Cow<'_, str>>| v.as_deref().unwrap_or("").to_string();
    let object = |raw: &RawValue| match raw.get() {
        "{}" | "null" => String::new(),
        text => text.to_string(),
    };
    let ship = o.shipping_address.unwrap_or_default();
    let quantity_text: Vec<String> = o.items.iter().map(|i| i.quantity.to_string()).collect();
    let external_ids = object(o.external_ids);
    for (item, quantity) in o.items.iter().zip(&quantity_text) {
        let attributes = object(item.attributes);
        let record: [&str; 36] = [
            &o.id,
            &o.reference,
            &external_ids,
            &o.status,
            &o.payment_status,
            &o.fulfillment_status,
            &o.channel,
            &o.currency,
            &o.created_at,
            o.buyer.name.as_deref().unwrap_or(""),
            o.buyer.phone.as_deref().unwrap_or(""),
            o.buyer.email.as_deref().unwrap_or(""),
            o.buyer.channel_id.as_deref().unwrap_or(""),
            ship.name.as_deref().unwrap_or(""),
            ship.line1.as_deref().unwrap_or(""),
            ship.line2.as_deref().unwrap_or(""),
            ship.city.as_deref().unwrap_or(""),
            ship.region.as_deref().unwrap_or(""),
            ship.postal_code.as_deref().unwrap_or(""),
            ship.country.as_deref().unwrap_or(""),
            &opt(&o.notes),
            &opt(&o.batch_id),
            item.sku.as_deref().unwrap_or(""),
            &item.name,
            quantity,
            &item.unit_price,
            &attributes,
            &item.line_total,
            &item.discount,
            &item.tax,
            &item.total,
            &o.subtotal,
            &o.discount_total,
            &o.shipping_total,
            &o.tax_total,
            &o.total,
        ];
        let _ = out.write_record(record);
    }
}

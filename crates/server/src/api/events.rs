//! The event feed: every event on the tenant's orders, in the order it
//! entered the feed, for systems that pull (`GET /v1/events`) or listen
//! (`GET /v1/events/stream`, Server-Sent Events).
//!
//! An event enters the feed after its transaction commits, and its cursor
//! (its feed position) only grows, so a reader that pages on with
//! `after=<next_cursor>` sees every event once and never skips one that
//! committed late.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use ordo_domain::field::{FieldError, FieldErrors};
use ordo_domain::{EventType, OrderId};
use ordo_store::{FeedEvent, FeedQuery, Scope};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::{ApiError, Problem};
use super::extract::QueryParams;
use super::orders::{list_of, ActorResponse};
use crate::app::AppState;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 500;

/// Which events to read.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The `next_cursor` of the previous page (or an event's `cursor`);
    /// absent or `0` for the start of the feed.
    pub after: Option<String>,
    /// Comma-separated event types, e.g. `order.created,order.cancelled`.
    pub types: Option<String>,
    /// Only the events of this order (`ord_…`).
    pub order_id: Option<String>,
    /// 1 to 500, default 100. (Ignored by the stream.)
    pub limit: Option<String>,
}

/// An event, as the feed, the stream and webhooks carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedEventResponse {
    #[schema(example = "evt_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")]
    pub id: String,
    /// `order.created`, `order.updated`, `order.confirmed`, `order.cancelled`, `order.completed`, `payment.*`, `refund.*`, `receipt.*`, `shipment.*`, `return.*` (the webhooks' event types).
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    /// The tenant's id (`ten_…`).
    pub tenant: String,
    pub order_id: String,
    /// 1, 2, 3… per order: put an order's events in this order.
    pub sequence: u64,
    /// Where this event is in the feed: pass it as `after` (or as
    /// `Last-Event-ID`) to read on from here.
    pub cursor: String,
    pub actor: ActorResponse,
    /// What changed, with before and after values.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The order as the API showed it right after the event.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub data: Vec<FeedEventResponse>,
    /// Pass as `after` for the next page; when the page is empty it is the
    /// cursor you passed, so polling can go on with it.
    pub next_cursor: String,
    pub has_more: bool,
}

impl FeedEventResponse {
    pub fn from_feed(tenant: &str, e: FeedEvent) -> Result<Self, ApiError> {
        let text = String::from_utf8(e.order)
            .map_err(|_| ApiError::Internal("a stored order is not UTF-8".into()))?;
        let data =
            RawValue::from_string(text).map_err(|err| ApiError::Internal(err.to_string()))?;
        Ok(FeedEventResponse {
            id: e.event.id.to_string(),
            kind: e.event.event_type.as_str().to_string(),
            created_at: e.event.at.to_rfc3339(),
            tenant: tenant.to_string(),
            order_id: e.event.order_id.to_string(),
            sequence: e.event.sequence,
            cursor: e.position.to_string(),
            actor: ActorResponse::from_domain(&e.event.actor),
            details: e.event.data,
            data,
        })
    }
}

fn parse_cursor(field: &str, text: Option<&str>) -> Result<u64, FieldError> {
    match text.map(str::trim) {
        None | Some("") => Ok(0),
        Some(t) => t.parse::<u64>().map_err(|_| {
            FieldError::new(field, "not a feed cursor")
                .value(t)
                .accepted("the next_cursor of a page, an event's cursor, or 0")
        }),
    }
}

/// The query, from the parameters; `after` given separately for the stream
/// (which may take it from `Last-Event-ID`).
fn feed_query(params: &FeedParams, after: Result<u64, FieldError>) -> Result<FeedQuery, ApiError> {
    let mut errors = FieldErrors::new();
    let after = errors.take(after).unwrap_or(0);
    let types = list_of(
        "types",
        params.types.as_deref(),
        EventType::parse,
        EventType::accepted(),
        &mut errors,
    );
    let order_id = match params.order_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(t) => match OrderId::parse(t) {
            Some(id) => Some(id),
            None => {
                errors.push(
                    FieldError::new("order_id", "not an order id")
                        .value(t)
                        .accepted("an order id (ord_…)"),
                );
                None
            }
        },
    };
    let limit = match params.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(t) => match t.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                errors.push(
                    FieldError::new("limit", "not a page size")
                        .value(t)
                        .accepted(format!("a whole number from 1 to {MAX_LIMIT}")),
                );
                DEFAULT_LIMIT
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(FeedQuery {
        after,
        types,
        order_id,
        limit,
    })
}

/// Events on the tenant's orders, oldest first.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(FeedParams),
    responses(
        (status = 200, description = "A page of events", body = FeedPage),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams<FeedParams>,
) -> Result<axum::Json<FeedPage>, ApiError> {
    let scope = principal.scope();
    let after = parse_cursor("after", params.after.as_deref());
    let mut query = feed_query(&params, after)?;
    let limit = query.limit as usize;
    query.limit += 1;
    let mut found = state.store().feed(&scope, &query).await?;
    let has_more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = found.last().map_or(query.after, |e| e.position).to_string();
    let tenant = scope.tenant_id.to_string();
    let data = found
        .into_iter()
        .map(|e| FeedEventResponse::from_feed(&tenant, e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(axum::Json(FeedPage {
        data,
        next_cursor,
        has_more,
    }))
}

/// How long a quiet stream waits before looking again for events placed in
/// the feed by other nodes (events placed by this node wake it at once).
const STREAM_POLL: Duration = Duration::from_secs(1);

struct Listener {
    state: AppState,
    scope: Scope,
    query: FeedQuery,
    tenant: String,
    ready: VecDeque<SseEvent>,
    ticks: tokio::sync::watch::Receiver<u64>,
}

impl Listener {
    /// The next SSE event, waiting for one as long as it takes; `None`
    /// ends the stream (the client reconnects with `Last-Event-ID`).
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            let page = match self.state.store().feed(&self.scope, &self.query).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, "an event stream could not read the feed; closing it");
                    return None;
                }
            };
            if page.is_empty() {
                tokio::select! {
                    _ = self.ticks.changed() => {}
                    () = tokio::time::sleep(STREAM_POLL) => {}
                }
                continue;
            }
            for e in page {
                self.query.after = e.position;
                let kind = e.event.event_type.as_str();
                let cursor = e.position.to_string();
                let body = FeedEventResponse::from_feed(&self.tenant, e)
                    .ok()
                    .and_then(|r| serde_json::to_string(&r).ok())?;
                self.ready
                    .push_back(SseEvent::default().id(cursor).event(kind).data(body));
            }
        }
    }
}

/// Events as they happen (Server-Sent Events), from `after` or the
/// `Last-Event-ID` a reconnecting client sends; each SSE event's id is the
/// event's cursor and its name the event type.
#[utoipa::path(
    get, path = "/v1/events/stream", tag = "events",
    params(FeedParams),
    responses(
        (status = 200, description = "A stream of events (text/event-stream); each `data` is a FeedEventResponse", content_type = "text/event-stream", body = String),
        (status = 401, description = "No or bad API key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn stream_events(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    QueryParams(params): QueryParams<FeedParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("not text"));
    let after = match last_event_id {
        Some(id) => parse_cursor("Last-Event-ID", Some(id)),
        None => parse_cursor("after", params.after.as_deref()),
    };
    let mut query = feed_query(&params, after)?;
    query.limit = DEFAULT_LIMIT;
    let scope = principal.scope();
    let listener = Listener {
        tenant: scope.tenant_id.to_string(),
        ticks: state.feed_ticks(),
        state,
        scope,
        query,
        ready: VecDeque::new(),
    };
    let stream = futures_util::stream::unfold(listener, |mut l| async move {
        l.next().await.map(|e| (Ok(e), l))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

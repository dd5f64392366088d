//! The HTTP API: routes, the OpenAPI document generated from the handlers'
//! types, and the layers every request passes through.

pub mod auth;
pub mod channels;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod fulfilment;
pub mod imports;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod products;
pub mod promotions;
pub mod provider_webhook;
pub mod receipts;
pub mod reports;
pub mod settings;
pub mod storefront;
pub mod webhooks;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;
use error::ApiError;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ordo",
        description = "A self-hosted order management service. Authenticate with `Authorization: Bearer <api key>`. Errors are RFC 9457 problem+json with a stable `type`; unknown fields and values are refused.",
    ),
    modifiers(&Security),
    tags((name = "orders", description = "Orders, their actions and their timeline"), (name = "payments", description = "Payments and refunds: an order's ledger, from which its payment_status follows"), (name = "fulfilment", description = "Shipments of some or all of an order's units, and returns: its fulfillment_status follows from them"), (name = "products", description = "The catalog: products, variants and their stock"), (name = "imports", description = "Files of orders (CSV or NDJSON) imported in the background, with their progress and problems"), (name = "promotions", description = "Codes buyers give and discounts that apply by themselves, with usage limits that hold under any concurrency"), (name = "settings", description = "How the tenant's orders treat stock, and what its shop says"), (name = "storefront", description = "The public shop: products on sale and guest checkout, without a key, rate-limited per client address"), (name = "events", description = "Every event on the tenant's orders, to pull or to stream"), (name = "webhooks", description = "Where events are pushed, signed"), (name = "messaging", description = "The shop's chat channels: Meta's webhooks for WhatsApp and Instagram, which bring buyers' messages to the order chatbot"), (name = "operations", description = "Health, readiness and metrics"))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from `ordo keys create`"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_routes(&crate::Config::default()).split_for_parts().1
}

/// A body limit for the routes of `router`, named in its refusals.
fn body_limit<R: Clone + Send + Sync + 'static>(
    router: OpenApiRouter<R>,
    bytes: usize,
) -> OpenApiRouter<R> {
    router
        .layer(DefaultBodyLimit::max(bytes))
        .layer(Extension(extract::BodyLimit(bytes)))
}

fn api_routes(config: &crate::Config) -> OpenApiRouter<AppState> {
    let storefront = body_limit(
        OpenApiRouter::new()
            .routes(routes!(storefront::list_products))
            .routes(routes!(storefront::checkout)),
        config.storefront.body_limit_bytes,
    );
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orders::create_order, orders::list_orders))
        .routes(routes!(orders::count_orders))
        .routes(routes!(reports::overview))
        .routes(routes!(export::export_orders))
        .routes(routes!(pricing::preview_order))
        .routes(routes!(
            promotions::create_promotion,
            promotions::list_promotions
        ))
        .routes(routes!(
            promotions::get_promotion,
            promotions::update_promotion,
            promotions::delete_promotion
        ))
        .routes(routes!(orders::get_order, orders::update_order))
        .routes(routes!(orders::put_order, orders::get_order_by_external_id))
        .routes(routes!(orders::confirm_order))
        .routes(routes!(orders::cancel_order))
        .routes(routes!(orders::complete_order))
        .routes(routes!(orders::order_events))
        .routes(routes!(payments::record_payment))
        .routes(routes!(payments::record_refund))
        .routes(routes!(payments::charge_order))
        .routes(routes!(payments::settle_refund))
        .routes(routes!(provider_webhook::provider_webhook))
        .routes(routes!(channels::subscribe, channels::deliver))
        .routes(routes!(
            fulfilment::create_shipment,
            fulfilment::list_shipments
        ))
        .routes(routes!(fulfilment::get_shipment))
        .routes(routes!(fulfilment::act_on_shipment))
        .routes(routes!(fulfilment::cancel_items))
        .routes(routes!(fulfilment::create_return, fulfilment::list_returns))
        .routes(routes!(fulfilment::receive_return))
        .routes(routes!(fulfilment::refund_return))
        .routes(routes!(fulfilment::close_return))
        .routes(routes!(receipts::download_receipt))
        .routes(routes!(receipts::approve_receipt))
        .routes(routes!(receipts::reject_receipt))
        .routes(routes!(products::create_product, products::list_products))
        .routes(routes!(products::get_product, products::update_product))
        .routes(routes!(products::archive_product))
        .routes(routes!(products::restore_product))
        .routes(routes!(products::adjust_stock))
        .routes(routes!(products::list_stock_movements))
        .routes(routes!(products::reconcile_stock))
        .routes(routes!(settings::get_settings, settings::update_settings))
        .routes(routes!(events::list_events))
        .routes(routes!(events::stream_events))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::retry_delivery))
        .routes(routes!(webhooks::retry_deliveries))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics));
    // A receipt may be larger than other bodies: its route has its own
    // limit (the file's, and room for the multipart framing around it).
    // An import streams into the file store under its own limit.
    let imports = OpenApiRouter::new()
        .routes(routes!(imports::create_import, imports::list_imports))
        .layer(DefaultBodyLimit::disable());
    let api = api
        .routes(routes!(imports::get_import))
        .routes(routes!(imports::import_errors_csv));
    let receipts = OpenApiRouter::new()
        .routes(routes!(receipts::upload_receipt))
        .layer(DefaultBodyLimit::max(
            config.files.receipt_max_bytes.saturating_add(64 * 1024),
        ))
        .layer(Extension(extract::BodyLimit(
            config.files.receipt_max_bytes,
        )));
    body_limit(api, config.http.body_limit_bytes)
        .merge(storefront)
        .merge(receipts)
        .merge(imports)
}

/// Request ids are ULIDs unless the caller sent an `x-request-id`.
#[derive(Clone, Copy)]
struct MakeRequestUlid;

impl MakeRequestId for MakeRequestUlid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string())
            .ok()
            .map(RequestId::new)
    }
}

pub fn router(state: AppState) -> Router {
    crate::telemetry::metrics();
    let (api, doc) = api_routes(state.config()).split_for_parts();
    let timeout = Duration::from_secs(state.config().http.request_timeout_secs.max(1));
    // The admin pages call the API in-process, through its own routes.
    let in_process = api
        .clone()
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let pages = crate::web::router(state.clone(), in_process);
    let app = api
        .route("/problems/{slug}", get(problem_page))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(pages);
    app.layer(middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal("a handler panicked".into()).into_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // A buyer's link is a key to their order: not for the logs.
                let path = req.uri().path();
                let path = if path.starts_with("/o/") { "/o/…" } else { path };
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %path, tenant = tracing::field::Empty)
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUlid))
}

async fn with_timeout(limit: Duration, req: Request, next: Next) -> Response {
    // An import's upload takes as long as its file does; it times out
    // only when the file stops arriving (see `imports::create_import`).
    if req.method() == Method::POST
        && matches!(req.uri().path(), "/v1/imports" | "/admin/imports/upload")
    {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(req).await;
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("ordo_http_requests_total", &labels).increment(1);
    metrics::histogram!("ordo_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}

async fn no_route(req: Request) -> ApiError {
    ApiError::NoRoute(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Whether this node can serve: the database answers. `payment_providers`
/// shows the circuit of every provider this node has called (an open
/// circuit delays charges and refunds; it does not make the node unready).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready`.
    status: &'static str,
    #[schema(value_type = Vec<Object>)]
    payment_providers: Vec<crate::provider::CircuitReport>,
}

/// Readiness: the database answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready, with the payment providers' circuits", body = Readiness), (status = 503, description = "The database does not answer", body = error::Problem, content_type = "application/problem+json"))
)]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Readiness>, ApiError> {
    state.store().ping().await?;
    Ok(axum::Json(Readiness {
        status: "ready",
        payment_providers: state.providers().circuits(),
    }))
}

/// Prometheus metrics: requests by route and status, a latency histogram,
/// orders created, commit batch sizes.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics() -> Response {
    let body = crate::telemetry::metrics().render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn problem_page(axum::extract::Path(slug): axum::extract::Path<String>) -> Response {
    match error::describe(&slug) {
        Some(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{slug}\n\n{text}\n"),
        )
            .into_response(),
        None => ApiError::NoRoute(format!("GET /problems/{slug}")).into_response(),
    }
}

//! The admin pages of the catalog: products (a searchable list, a low-stock
//! list, a new product) and each product (edit, stock adjustments, its
//! stock movements, archive and restore). Like the order pages, they read
//! and write through the API as the signed-in user.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde_json::Value;

use super::admin::{page, problem_page, status_of};
use super::session::Staff;
use super::{either, segment, Listing, Web};

const PAGE_SIZE: u32 = 50;
/// The list's filters, passed to `GET /v1/products` as they are.
const FILTERS: &[&str] = &["q", "available_lte", "archived", "active", "cursor"];
/// The stock movements a product's page shows, newest first.
const MOVEMENTS_SHOWN: u32 = 50;

pub(crate) async fn products(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let listing = Listing::of("/admin/products", "cursor", FILTERS, query);
    let list = format!("/v1/products?{}", listing.api_query(PAGE_SIZE));
    let (found, problem) = either(web.get(&staff.principal, &list).await);
    page(
        &web,
        &headers,
        &staff,
        status_of(&problem, StatusCode::OK),
        "products.html",
        "products",
        context! {
            products => found["data"].clone(),
            problem => problem,
            chosen => listing.chosen(),
            next => listing.next(found["next_cursor"].as_str()),
            first => listing.first(),
        },
    )
}

pub(crate) async fn new_product(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
) -> Response {
    page(
        &web,
        &headers,
        &staff,
        StatusCode::OK,
        "product_new.html",
        "products",
        context! {},
    )
}

pub(crate) async fn product(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Path(sku): Path<String>,
) -> Response {
    let path = format!("/v1/products/{}", segment(&sku));
    let product = match web.get(&staff.principal, &path).await {
        Ok(p) => p,
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    let recent = web
        .get(
            &staff.principal,
            &format!("{path}/stock-movements?order=desc&limit={MOVEMENTS_SHOWN}"),
        )
        .await
        .map(|m| m["data"].clone())
        .unwrap_or(Value::Null);
    page(
        &web,
        &headers,
        &staff,
        StatusCode::OK,
        "product.html",
        "products",
        context! { product => product, api => path, movements => recent },
    )
}

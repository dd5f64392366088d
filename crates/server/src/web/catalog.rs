//! The admin pages of the catalog: products (a searchable list, a low-stock
//! list, a new product) and each product (edit, stock adjustments, its
//! stock movements, archive and restore). Like the order pages, they read
//! and write through the API as the signed-in user.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use minijinja::context;
use serde_json::Value;

use super::admin::{may, problem_page, status_of};
use super::session::Staff;
use super::{page_with_flash, take_flash, Web, ADMIN};

const PAGE_SIZE: u32 = 50;
/// The list's filters, passed to `GET /v1/products` as they are.
const FILTERS: &[&str] = &["q", "available_lte", "archived", "active", "cursor"];

fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) async fn products(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let filters: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, v)| FILTERS.contains(&k.as_str()) && !v.trim().is_empty())
        .collect();
    let mut listing = filters.clone();
    listing.push(("limit".into(), PAGE_SIZE.to_string()));
    let (page, problem) = match web
        .call(
            &staff.principal,
            Method::GET,
            &format!("/v1/products?{}", encode(&listing)),
            None,
            None,
        )
        .await
    {
        Ok(page) => (page, Value::Null),
        Err(problem) => (Value::Null, problem),
    };
    let without_cursor: Vec<(String, String)> = filters
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let next = page["next_cursor"].as_str().map(|cursor| {
        let mut pairs = without_cursor.clone();
        pairs.push(("cursor".into(), cursor.to_string()));
        format!("/admin/products?{}", encode(&pairs))
    });
    let first = filters
        .iter()
        .any(|(k, _)| k == "cursor")
        .then(|| format!("/admin/products?{}", encode(&without_cursor)));
    let chosen: HashMap<String, String> = filters.into_iter().collect();
    let flash = take_flash(&headers);
    page_with_flash(
        &web,
        &headers,
        ADMIN,
        flash.is_some(),
        web.pages().render(
            status_of(&problem, StatusCode::OK),
            "products.html",
            context! {
                staff => staff.context(),
                may => may(&staff),
                nav => "products",
                products => page["data"].clone(),
                problem => problem,
                chosen => chosen,
                next => next,
                first => first,
                flash => flash,
            },
        ),
    )
}

pub(crate) async fn new_product(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
) -> Response {
    let flash = take_flash(&headers);
    page_with_flash(
        &web,
        &headers,
        ADMIN,
        flash.is_some(),
        web.pages().render(
            StatusCode::OK,
            "product_new.html",
            context! {
                staff => staff.context(),
                may => may(&staff),
                nav => "products",
                flash => flash,
            },
        ),
    )
}

pub(crate) async fn product(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Path(sku): Path<String>,
) -> Response {
    let path = format!("/v1/products/{}", segment(&sku));
    let product = match web
        .call(&staff.principal, Method::GET, &path, None, None)
        .await
    {
        Ok(p) => p,
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    let movements = web
        .call(
            &staff.principal,
            Method::GET,
            &format!("{path}/stock-movements?limit=200"),
            None,
            None,
        )
        .await
        .map(|m| m["data"].clone())
        .unwrap_or(Value::Null);
    // Newest first, the last 50.
    let recent: Vec<Value> = movements
        .as_array()
        .map(|m| m.iter().rev().take(50).cloned().collect())
        .unwrap_or_default();
    let flash = take_flash(&headers);
    page_with_flash(
        &web,
        &headers,
        ADMIN,
        flash.is_some(),
        web.pages().render(
            StatusCode::OK,
            "product.html",
            context! {
                staff => staff.context(),
                may => may(&staff),
                nav => "products",
                product => product,
                api => path,
                movements => recent,
                flash => flash,
            },
        ),
    )
}

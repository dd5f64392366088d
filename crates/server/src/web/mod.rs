//! The admin pages (`/admin`): HTML rendered on the server from templates
//! built into the binary, with a stylesheet of its own (no front-end build,
//! no CDN, no script needed).
//!
//! The pages are a client of the API, in-process: a page reads the API's
//! JSON as the signed-in user (a [`Principal`] of their role), and a form
//! posts an API call whose problem, if any, is shown next to the form's
//! fields. So the pages show exactly the API's field names and texts, and
//! can do exactly what the API lets the user's role do.

mod admin;
mod buyer;
mod catalog;
mod chart;
mod operations;
mod pages;
mod session;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::auth::Principal;
use crate::app::AppState;
use crate::storefront::RateLimiter;
pub use session::{hash_password, PASSWORD_MIN_CHARS};

/// What every page handler has: the app, the API to call, the templates.
#[derive(Clone)]
pub(crate) struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    app: AppState,
    api: Router,
    pages: pages::Pages,
    login_limit: RateLimiter,
}

impl Web {
    fn app(&self) -> &AppState {
        &self.inner.app
    }

    fn pages(&self) -> &pages::Pages {
        &self.inner.pages
    }

    /// Calls the API as `who`: the JSON it answers, or its problem (an
    /// RFC 9457 body, as the API gives it).
    async fn call(
        &self,
        who: &Principal,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Result<Value, Value> {
        answer(self.call_raw(who, method, uri, body, if_match).await).await
    }

    /// A GET of the API as `who`.
    async fn get(&self, who: &Principal, uri: &str) -> Result<Value, Value> {
        self.call(who, Method::GET, uri, None, None).await
    }

    /// [`Web::call`], giving the API's response as it is (a file, say).
    async fn call_raw(
        &self,
        who: &Principal,
        method: Method,
        uri: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(version) = if_match {
            request = request.header(header::IF_MATCH, format!("\"{version}\""));
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        match request.body(body) {
            Ok(request) => self.send(who, request).await,
            Err(e) => plain(StatusCode::BAD_REQUEST, &format!("bad request: {e}")),
        }
    }

    /// Runs `request` through the API as `who`.
    async fn send(&self, who: &Principal, mut request: Request<Body>) -> Response {
        request.extensions_mut().insert(who.clone());
        match self.inner.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// The JSON an API response carries, or its problem (an RFC 9457 body).
async fn answer(response: Response) -> Result<Value, Value> {
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
        .await
        .map_err(|e| problem(500, &format!("the API's answer could not be read: {e}")))?;
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| problem(500, &format!("the API's answer is not JSON: {e}")))?
    };
    if status.is_success() {
        Ok(value)
    } else {
        Err(value)
    }
}

/// The cookie path of the admin pages, and of the buyer's page.
pub(crate) const ADMIN: &str = "/admin";
pub(crate) const BUYER: &str = "/o";
const FLASH_COOKIE: &str = "ordo_flash";

/// Goes to `back`, carrying `flash` (what happened) in a short-lived cookie
/// that the page shows once.
pub(crate) fn flash_to(
    web: &Web,
    headers: &HeaderMap,
    path: &str,
    back: &str,
    flash: &Value,
) -> Response {
    let text = fit(flash.clone());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text.as_bytes());
    let mut r = Redirect::to(back).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(web, headers, path, FLASH_COOKIE, &encoded, Some(60)),
    );
    r
}

/// The most a flash may take as JSON: base64 makes it a third larger, and
/// a cookie holds about 4 kB.
const FLASH_MAX: usize = 2800;

/// `flash` as JSON that fits in a cookie: past the limit, the values typed
/// go first, then all but five field errors and ten short SKUs, then the
/// values the errors quote, then the detail is cut short; at worst the
/// title and status alone.
fn fit(mut flash: Value) -> String {
    let steps: [fn(&mut Value); 4] = [
        |f| {
            if let Some(o) = f.as_object_mut() {
                o.remove("values");
            }
        },
        |f| {
            if let Some(e) = f
                .pointer_mut("/problem/errors")
                .and_then(Value::as_array_mut)
            {
                e.truncate(5);
            }
            if let Some(s) = f
                .pointer_mut("/problem/shortages")
                .and_then(Value::as_array_mut)
            {
                s.truncate(10);
            }
        },
        |f| {
            if let Some(errors) = f
                .pointer_mut("/problem/errors")
                .and_then(Value::as_array_mut)
            {
                for e in errors.iter_mut().filter_map(Value::as_object_mut) {
                    e.remove("value");
                }
            }
        },
        |f| {
            if let Some(d) = f.pointer_mut("/problem/detail") {
                let short: String = d.as_str().unwrap_or_default().chars().take(300).collect();
                *d = Value::String(short);
            }
            if let Some(e) = f
                .pointer_mut("/problem/errors")
                .and_then(Value::as_array_mut)
            {
                for r in e.iter_mut().filter_map(|e| e.get_mut("reason")) {
                    let short: String = r.as_str().unwrap_or_default().chars().take(200).collect();
                    *r = Value::String(short);
                }
            }
        },
    ];
    for step in steps {
        let text = flash.to_string();
        if text.len() <= FLASH_MAX {
            return text;
        }
        step(&mut flash);
    }
    let text = flash.to_string();
    if text.len() <= FLASH_MAX {
        return text;
    }
    serde_json::json!({
        "form": flash["form"],
        "problem": {"title": flash["problem"]["title"], "status": flash["problem"]["status"], "detail": ""},
    })
    .to_string()
}

/// The flash the request carries, if any.
pub(crate) fn take_flash(headers: &HeaderMap) -> Option<Value> {
    let text = session::cookie(headers, FLASH_COOKIE)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `page`, removing the flash cookie when the page showed it.
pub(crate) fn page_with_flash(
    web: &Web,
    headers: &HeaderMap,
    path: &str,
    shown: bool,
    mut page: Response,
) -> Response {
    if shown {
        page.headers_mut().append(
            header::SET_COOKIE,
            session::set_cookie(web, headers, path, FLASH_COOKIE, "", Some(0)),
        );
    }
    page
}

/// `path` if it is one of this server's admin pages (a place to send the
/// browser back to): never another site, nor a header value that breaks.
fn admin_path(path: &str) -> Option<&str> {
    safe_path("/admin", path)
}

/// `path` if it starts with `prefix` and stays under it: no `//` (another
/// host), `\\`, control characters (a header that breaks) or dot segments.
fn safe_path<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    let page = path.split(['?', '#']).next().unwrap_or(path);
    (path.starts_with(prefix)
        && !path.contains("//")
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && !page.split('/').any(|s| s == ".." || s == "."))
    .then_some(path)
}

/// `pairs` as a query string.
fn encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// `text` as one segment of a path.
fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A list page's query: the filters it passes to the API as they are,
/// and its pages (`cursor` names the API's page parameter).
struct Listing {
    page: &'static str,
    cursor: &'static str,
    filters: Vec<(String, String)>,
}

impl Listing {
    /// The non-empty parameters of `query` that are among `allowed`.
    fn of(
        page: &'static str,
        cursor: &'static str,
        allowed: &[&str],
        query: Vec<(String, String)>,
    ) -> Listing {
        let filters = query
            .into_iter()
            .filter(|(k, v)| allowed.contains(&k.as_str()) && !v.trim().is_empty())
            .collect();
        Listing {
            page,
            cursor,
            filters,
        }
    }

    /// The API's query for a page of `limit`.
    fn api_query(&self, limit: u32) -> String {
        let mut pairs = self.filters.clone();
        pairs.push(("limit".into(), limit.to_string()));
        encode(&pairs)
    }

    /// The filters, without `skip` and the page's cursor.
    fn without(&self, skip: &[&str]) -> Vec<(String, String)> {
        self.filters
            .iter()
            .filter(|(k, _)| k != self.cursor && !skip.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// This page with other filters, from the first page.
    fn with(&self, key: &str, value: &str) -> String {
        let mut pairs = self.without(&[key]);
        pairs.push((key.to_string(), value.to_string()));
        format!("{}?{}", self.page, encode(&pairs))
    }

    /// The next page, after `cursor` (the API's next cursor, if any).
    fn next(&self, cursor: Option<&str>) -> Option<String> {
        cursor.map(|c| self.with(self.cursor, c))
    }

    /// The first page, when this is not it.
    fn first(&self) -> Option<String> {
        self.filters
            .iter()
            .any(|(k, _)| k == self.cursor)
            .then(|| format!("{}?{}", self.page, encode(&self.without(&[]))))
    }

    /// The filters by name, for the form to show them chosen.
    fn chosen(&self) -> std::collections::HashMap<String, String> {
        self.filters.iter().cloned().collect()
    }
}

/// An answer, or the problem instead (`null` for the other), for a page
/// that shows what it could read and says why not.
fn either(answer: Result<Value, Value>) -> (Value, Value) {
    match answer {
        Ok(found) => (found, Value::Null),
        Err(problem) => (Value::Null, problem),
    }
}

/// The problem body an API error answers with (logged as the API logs it).
fn problem_of(e: &crate::api::error::ApiError) -> Value {
    serde_json::to_value(e.logged_problem()).unwrap_or_else(|e| problem(500, &e.to_string()))
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The pages' routes. `api` is the API's router, which the pages call
/// in-process.
pub fn router(state: AppState, api: Router) -> Router {
    let config = &state.config().admin;
    // A receipt's file, and room for the multipart framing around it.
    let receipt_limit = state
        .config()
        .files
        .receipt_max_bytes
        .saturating_add(64 * 1024);
    let web = Web {
        inner: Arc::new(Inner {
            login_limit: RateLimiter::new(config.login_per_minute, config.login_burst),
            app: state,
            api,
            pages: pages::Pages::new(),
        }),
    };
    Router::new()
        .route("/admin", get(admin::home))
        .route("/admin/", get(admin::home))
        .route(
            "/admin/login",
            get(session::login_page).post(session::login),
        )
        .route("/admin/logout", post(session::logout))
        .route("/admin/orders", get(admin::orders))
        .route("/admin/orders/{id}", get(admin::order))
        .route(
            "/admin/orders/{id}/receipts/{receipt_id}",
            get(admin::receipt_file),
        )
        .route("/admin/products", get(catalog::products))
        .route("/admin/products/new", get(catalog::new_product))
        .route("/admin/products/{sku}", get(catalog::product))
        .route("/admin/webhooks", get(operations::webhooks))
        .route("/admin/imports", get(operations::imports))
        .route("/admin/imports/upload", post(operations::upload))
        .route("/admin/imports/{id}", get(operations::import))
        .route(
            "/admin/imports/{id}/errors.csv",
            get(operations::import_errors),
        )
        .route("/admin/settings", get(operations::settings))
        .route("/admin/act", post(admin::act))
        .route("/assets/ordo.css", get(pages::stylesheet))
        .route("/o/{token}", get(buyer::page))
        .route("/o/{token}/confirm", post(buyer::confirm))
        .route("/o/{token}/cancel", post(buyer::cancel))
        .route(
            "/o/{token}/receipt",
            post(buyer::receipt).layer(DefaultBodyLimit::max(receipt_limit)),
        )
        .with_state(web)
}

/// A problem body made here (when the API's own answer could not be read).
fn problem(status: u16, detail: &str) -> Value {
    serde_json::json!({"type": "/problems/internal", "title": "Internal error", "status": status, "detail": detail})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_always_fits_in_a_cookie() {
        let long = "x".repeat(5000);
        let flash = serde_json::json!({
            "form": "adjust",
            "values": {"delta": long},
            "problem": {
                "title": "Invalid", "status": 422,
                "detail": format!("delta: \"{long}\" is not accepted"),
                "errors": (0..40).map(|_| serde_json::json!({"field": "delta", "value": long, "reason": "not a whole number"})).collect::<Vec<_>>(),
            },
        });
        let text = fit(flash);
        assert!(text.len() <= FLASH_MAX, "{}", text.len());
        let kept: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(kept["form"], "adjust");
        assert_eq!(kept["problem"]["errors"].as_array().map(Vec::len), Some(5));
        assert_eq!(kept["problem"]["errors"][0]["reason"], "not a whole number");
        let small = serde_json::json!({"ok": "Done."});
        assert_eq!(fit(small.clone()), small.to_string());
    }

    #[test]
    fn only_admin_pages_are_places_to_go_back_to() {
        for good in [
            "/admin",
            "/admin/orders?stage=paid",
            "/admin/products/A%2FB",
            "/admin/products/A..B",
        ] {
            assert_eq!(admin_path(good), Some(good));
        }
        for bad in [
            "https://evil.example/admin",
            "//evil.example",
            "/admin//evil",
            "/admin\\x",
            "/admin/../v1",
            "/admin\n",
            "/adminx\r\nSet-Cookie: a=b",
            "/o/token",
        ] {
            assert_eq!(admin_path(bad), None, "{bad:?}");
        }
    }
}

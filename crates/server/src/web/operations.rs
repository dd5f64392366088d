//! The admin pages that run the shop's plumbing: webhook endpoints and
//! their deliveries, imports, and the settings. They read and write
//! through the API as the signed-in user, as every admin page does.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use minijinja::context;
use ordo_domain::messaging::MessageKind;
use serde_json::Value;

use super::admin::{page, problem_page, status_of};
use super::session::Staff;
use super::{answer, either, encode, flash_to, segment, Listing, Web, ADMIN};

/// The deliveries' filters, passed to `GET /v1/webhook-deliveries`.
const DELIVERY_FILTERS: &[&str] = &["status", "endpoint_id", "event_type", "order_id", "after"];

pub(crate) async fn webhooks(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let who = &staff.principal;
    let endpoints = match web.get(who, "/v1/webhook-endpoints").await {
        Ok(list) => list["data"].clone(),
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    let listing = Listing::of("/admin/webhooks", "after", DELIVERY_FILTERS, query);
    let list = format!("/v1/webhook-deliveries?{}", listing.api_query(50));
    let (deliveries, problem) = either(web.get(who, &list).await);
    let next = listing.next(
        deliveries["next_cursor"]
            .as_str()
            .filter(|_| deliveries["has_more"] == true),
    );
    let back = format!("/admin/webhooks?{}", encode(&listing.without(&[])));
    page(
        &web,
        &headers,
        &staff,
        status_of(&problem, StatusCode::OK),
        "webhooks.html",
        "webhooks",
        context! {
            endpoints => endpoints,
            deliveries => deliveries["data"].clone(),
            problem => problem,
            chosen => listing.chosen(),
            next => next,
            back => back,
        },
    )
}

pub(crate) async fn imports(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let listing = Listing::of("/admin/imports", "cursor", &["cursor"], query);
    let path = format!("/v1/imports?{}", listing.api_query(25));
    let (list, problem) = either(web.get(&staff.principal, &path).await);
    let next = listing.next(list["next_cursor"].as_str());
    let max_mb = web.app().config().files.import_max_bytes / (1024 * 1024);
    page(
        &web,
        &headers,
        &staff,
        status_of(&problem, StatusCode::OK),
        "imports.html",
        "imports",
        context! {
            imports => list["data"].clone(),
            problem => problem,
            next => next,
            max_mb => max_mb,
        },
    )
}

/// An import's upload: the form's `multipart/form-data` body goes to
/// `POST /v1/imports` as it came, streamed. The body is not read here, so
/// the form cannot carry the session's token in a field (nor should it in
/// its address, where logs keep it): the post must come from a page of
/// this server (its `Origin`, or else its `Referer`, says so; browsers send
/// one with every form post), besides the session cookie being SameSite.
pub(crate) async fn upload(State(web): State<Web>, staff: Staff, request: Request) -> Response {
    if !same_origin(&web, request.headers()) {
        return staff.form_expired(
            &web,
            "The upload did not come from a page of this server. Nothing was imported. Go back, reload the page and try again.",
        );
    }
    let headers = request.headers().clone();
    let Some(media) = headers.get(header::CONTENT_TYPE).cloned() else {
        return flash_to(&web, &headers, ADMIN, "/admin/imports", &no_file());
    };
    let forwarded = Request::builder()
        .method(Method::POST)
        .uri("/v1/imports")
        .header(header::CONTENT_TYPE, media)
        .body(Body::new(request.into_body()));
    let Ok(forwarded) = forwarded else {
        return flash_to(&web, &headers, ADMIN, "/admin/imports", &no_file());
    };
    match answer(web.send(&staff.principal, forwarded).await).await {
        Ok(import) => {
            let id = import["id"].as_str().unwrap_or_default();
            let ok = serde_json::json!({"ok": "The file is in: it is being imported."});
            flash_to(
                &web,
                &headers,
                ADMIN,
                &format!("/admin/imports/{}", segment(id)),
                &ok,
            )
        }
        Err(problem) => {
            let flash = serde_json::json!({"form": "upload", "problem": problem});
            flash_to(&web, &headers, ADMIN, "/admin/imports", &flash)
        }
    }
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is
/// this server: the host it was sent to, or the public URL's.
fn same_origin(web: &Web, headers: &HeaderMap) -> bool {
    let origin_of = |text: &str| {
        url::Url::parse(text).ok().and_then(|u| {
            let host = u.host_str()?.to_ascii_lowercase();
            Some(match u.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
    };
    let Some(from) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(origin_of)
    else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    host.as_deref() == Some(from.as_str())
        || origin_of(&web.app().config().public_url()).as_deref() == Some(from.as_str())
}

fn no_file() -> Value {
    serde_json::json!({"form": "upload", "problem": {
        "title": "No file", "status": 422,
        "detail": "Choose a CSV or NDJSON file to import.",
        "errors": [{"field": "file", "reason": "no file was sent"}],
    }})
}

pub(crate) async fn import(
    State(web): State<Web>,
    headers: HeaderMap,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/imports/{}", segment(&id));
    match web.get(&staff.principal, &path).await {
        Ok(import) => {
            let running = matches!(import["state"].as_str(), Some("queued" | "running"));
            page(
                &web,
                &headers,
                &staff,
                StatusCode::OK,
                "import.html",
                "imports",
                context! { import => import, running => running },
            )
        }
        Err(problem) => problem_page(&web, &staff, &problem),
    }
}

/// An import's failed rows, as the API gives them.
pub(crate) async fn import_errors(
    State(web): State<Web>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/imports/{}/errors.csv", segment(&id));
    web.call_raw(&staff.principal, Method::GET, &path, None, None)
        .await
}

pub(crate) async fn settings(State(web): State<Web>, headers: HeaderMap, staff: Staff) -> Response {
    let settings = match web.get(&staff.principal, "/v1/settings").await {
        Ok(s) => s,
        Err(problem) => return problem_page(&web, &staff, &problem),
    };
    let kinds: Vec<&str> = MessageKind::ALL.iter().map(|k| k.as_str()).collect();
    page(
        &web,
        &headers,
        &staff,
        StatusCode::OK,
        "settings.html",
        "settings",
        context! {
            settings => settings,
            kinds => kinds,
            policies => ordo_domain::ReservationPolicy::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
    )
}

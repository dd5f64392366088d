//! Pricing providers on 127.0.0.1 that answer, answer slowly or fail:
//! they are asked at once (the whole takes as long as the slowest), the
//! deadline holds, and the shop's choice on failure (fall back or fail)
//! is kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode as AxumStatus;
use axum::Json;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::helpers::*;
use crate::pricing::{assert_adds_up, cart, lagos_setup};

/// How one fake provider answers.
#[derive(Clone)]
struct Behaviour {
    delay: Duration,
    /// Answers 500 this many times first.
    fail_first: usize,
    answer: Value,
}

type Call = (String, Value, Option<String>);

#[derive(Clone, Default)]
struct Fakes {
    behaviours: Arc<Mutex<HashMap<String, Behaviour>>>,
    /// Each call: the provider's role, the body, the authorization.
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Fakes {
    async fn start() -> (Fakes, String) {
        let fakes = Fakes::default();
        let app = axum::Router::new()
            .route("/{role}", axum::routing::post(answer))
            .with_state(fakes.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fakes, url)
    }

    fn set(&self, role: &str, delay_ms: u64, fail_first: usize, answer: Value) {
        self.behaviours.lock().unwrap().insert(
            role.to_string(),
            Behaviour {
                delay: Duration::from_millis(delay_ms),
                fail_first,
                answer,
            },
        );
    }

    fn calls(&self, role: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _, _)| r == role)
            .count()
    }
}

async fn answer(
    State(fakes): State<Fakes>,
    Path(role): Path<String>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> (AxumStatus, Json<Value>) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fakes.calls.lock().unwrap().push((role.clone(), body, auth));
    let behaviour = fakes.behaviours.lock().unwrap().get_mut(&role).map(|b| {
        let failing = b.fail_first > 0;
        b.fail_first = b.fail_first.saturating_sub(1);
        (b.clone(), failing)
    });
    let Some((b, failing)) = behaviour else {
        return (AxumStatus::NOT_FOUND, Json(json!({})));
    };
    tokio::time::sleep(b.delay).await;
    if failing {
        return (
            AxumStatus::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "boom"})),
        );
    }
    (AxumStatus::OK, Json(b.answer))
}

const SECRET: &str = "pricing-secret-0123456789";

async fn shop_with_providers(
    url: &str,
    roles: &[&str],
    deadline_ms: u64,
    on_failure: &str,
) -> TestApp {
    let app = lagos_setup(
        spawn_app_with(|c| {
            c.webhooks.allow_private_urls = true;
            c.payments.provider_backoff_ms = 20;
        })
        .await,
    )
    .await;
    let mut providers = json!({"deadline_ms": deadline_ms, "on_failure": on_failure});
    for role in roles {
        providers[*role] = json!({"base_url": format!("{url}/{role}"), "secret": SECRET});
    }
    let r = app
        .patch("/v1/settings", &json!({"pricing_providers": providers}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    app
}

fn answers(fakes: &Fakes, delays: [u64; 4]) {
    fakes.set(
        "price",
        delays[0],
        0,
        json!({"items": [{"index": 0, "unit_price": "14000.00"}]}),
    );
    fakes.set(
        "promotion",
        delays[1],
        0,
        json!({"promotions": [{"id": "crm-vip-7", "name": "VIP", "code": null, "type": "fixed", "value": "1000.00", "skus": []}],
               "rejected_codes": [{"code": "OLD", "reason": "expired in our CRM"}]}),
    );
    fakes.set(
        "tax",
        delays[2],
        0,
        json!({"prices_include_tax": false, "items": [{"index": 0, "rate": "10"}, {"index": 1, "rate": "0"}], "shipping_rate": "10"}),
    );
    fakes.set("customer", delays[3], 0, json!({"tax_exempt": false}));
}

#[tokio::test]
async fn providers_are_asked_at_once_and_price_the_order() {
    let (fakes, url) = Fakes::start().await;
    answers(&fakes, [100, 200, 300, 150]);
    let app = shop_with_providers(
        &url,
        &["price", "promotion", "tax", "customer"],
        2_000,
        "fail",
    )
    .await;
    let started = Instant::now();
    let r = app.post("/v1/orders/preview", &cart("Lagos")).await;
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    // Concurrent: about the slowest (300 ms), far from the sum (750 ms).
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(650),
        "took {took:?}"
    );
    assert_adds_up(&p);
    assert_eq!(
        p["items"][0]["unit_price"], "14000.00",
        "the price provider's"
    );
    assert_eq!(
        p["items"][1]["unit_price"], "3333.33",
        "not priced: the catalog's"
    );
    assert_eq!(
        p["items"][0]["tax_rate"], "10",
        "the tax provider's, not Lagos's 8"
    );
    assert_eq!(p["promotions"][0]["name"], "VIP");
    assert_eq!(p["promotions"][0]["external_id"], "crm-vip-7");
    assert_eq!(p["pricing_fallbacks"], json!([]));
    // Every provider got the cart, with the shop's secret.
    let calls = fakes.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    for (_, body, auth) in &calls {
        assert_eq!(auth.as_deref(), Some(&*format!("Bearer {SECRET}")));
        assert_eq!(body["currency"], "NGN");
        assert_eq!(body["items"][0]["sku"], "DRESS");
        assert_eq!(body["items"][0]["tax_class"], "standard");
    }
    // The order is priced the same way; the provider's reason for a code it refuses is given.
    let mut body = cart("Lagos");
    body["promotion_codes"] = json!(["old"]);
    let refused = problem(
        app.post("/v1/orders", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(refused["errors"][0]["reason"], "expired in our CRM");
    let o = app.create(&cart("Lagos")).await;
    assert_eq!(o["total"], p["total"]);
    assert_adds_up(&o);
}

#[tokio::test]
async fn a_provider_past_the_deadline_falls_back_to_the_shops_rules_and_says_so() {
    let (fakes, url) = Fakes::start().await;
    answers(&fakes, [50, 50, 3_000, 50]);
    let app = shop_with_providers(&url, &["price", "tax"], 300, "fallback").await;
    let started = Instant::now();
    let o = app.create(&cart("Lagos")).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1_000),
        "the deadline held: {took:?}"
    );
    assert_adds_up(&o);
    assert_eq!(
        o["items"][0]["unit_price"], "14000.00",
        "the price provider answered"
    );
    assert_eq!(o["items"][0]["tax_rate"], "8", "the shop's own Lagos rule");
    assert_eq!(o["pricing_fallbacks"][0]["provider"], "tax");
    let error = o["pricing_fallbacks"][0]["error"].as_str().unwrap();
    assert!(error.contains("tax provider"), "{error}");
    let events = app
        .json(&format!("/v1/orders/{}/events", o["id"].as_str().unwrap()))
        .await;
    let created = &events["data"][0];
    assert_eq!(created["type"], "order.created");
    assert_eq!(created["data"]["pricing_fallbacks"][0]["provider"], "tax");
}

#[tokio::test]
async fn a_shop_that_chose_to_fail_gets_a_clear_error() {
    let (fakes, url) = Fakes::start().await;
    answers(&fakes, [0, 0, 0, 0]);
    fakes.set("tax", 0, 100, json!({}));
    let app = shop_with_providers(&url, &["tax"], 1_000, "fail").await;
    let p = problem(
        app.post("/v1/orders", &cart("Lagos")).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    says(&p, "the tax provider failed after 3 attempts: HTTP 500");
    assert_eq!(fakes.calls("tax"), 3, "retried as payment calls are");
    assert_eq!(app.json("/v1/orders/count").await["count"], 0);
}

#[tokio::test]
async fn a_provider_that_fails_once_is_retried_within_the_deadline() {
    let (fakes, url) = Fakes::start().await;
    answers(&fakes, [0, 0, 0, 0]);
    fakes.set("customer", 0, 1, json!({"tax_exempt": true}));
    let app = shop_with_providers(&url, &["customer"], 1_000, "fail").await;
    let o = app.create(&cart("Lagos")).await;
    assert_eq!(fakes.calls("customer"), 2);
    assert_eq!(o["tax_total"], "0.00", "the customer is tax exempt");
    assert_eq!(o["pricing_fallbacks"], json!([]));
}

#[tokio::test]
async fn pricing_provider_settings_are_checked_and_their_secrets_never_shown() {
    let app = spawn_app().await;
    let p = problem(
        app.patch(
            "/v1/settings",
            &json!({"pricing_providers": {"tax": {"base_url": "ftp://x", "secret": "short"}, "deadline_ms": 5, "on_failure": "retry"}}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(!fields(&p).is_empty(), "{p}");
    let r = app
        .patch(
            "/v1/settings",
            &json!({"pricing_providers": {"tax": {"base_url": "https://tax.example.com/rates", "secret": SECRET}, "deadline_ms": 250}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(
        s["pricing_providers"],
        json!({"price": null, "promotion": null, "customer": null, "deadline_ms": 250, "on_failure": "fallback",
               "tax": {"base_url": "https://tax.example.com/rates", "secret_hint": "…6789"}})
    );
    assert!(!s.to_string().contains(SECRET));
}

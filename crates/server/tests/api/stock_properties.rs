//! A property test of stock: random sequences of creating, confirming,
//! editing, cancelling, shipping, delivering and returning orders, expiring
//! reservations, adjusting stock and switching the reservation policy,
//! through the real server and database; after every step each product's
//! counters add up and each order's units and fulfillment status agree.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ordo_domain::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Three products per case: two that count stock (5 and 2 units), one
/// that does not.
const PRODUCTS: [(&str, i64, bool); 3] = [("A", 5, true), ("B", 2, true), ("C", 0, false)];

#[derive(Debug, Clone)]
enum Op {
    /// Lines as (product, quantity).
    Create(Vec<(usize, u32)>),
    Confirm(usize),
    Cancel(usize),
    /// Every unit not yet shipped leaves in one shipment.
    Ship(usize),
    /// Every shipment of every order that left arrives.
    Deliver,
    /// Every delivered unit of an order (the first from this one on that
    /// has any) not yet returned comes back, restocked or not.
    Return(usize, bool),
    /// Every unit of an order not in a shipment is called off.
    CancelItems(usize),
    Edit(usize, Vec<(usize, u32)>),
    Adjust(usize, i64),
    Policy(&'static str),
    /// A year passes: every lapsed reservation expires.
    Expire,
}

fn lines() -> impl Strategy<Value = Vec<(usize, u32)>> {
    prop::collection::vec((0..PRODUCTS.len(), 1..=4u32), 1..=3)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => lines().prop_map(Op::Create),
        3 => any::<usize>().prop_map(Op::Confirm),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => any::<usize>().prop_map(Op::Ship),
        3 => Just(Op::Deliver),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(o, r)| Op::Return(o, r)),
        1 => any::<usize>().prop_map(Op::CancelItems),
        2 => (any::<usize>(), lines()).prop_map(|(o, l)| Op::Edit(o, l)),
        2 => (0..PRODUCTS.len(), prop_oneof![-6..=-1i64, 1..=8i64]).prop_map(|(p, d)| Op::Adjust(p, d)),
        1 => prop::sample::select(vec!["on_confirm", "on_create", "none"]).prop_map(Op::Policy),
        1 => Just(Op::Expire),
    ]
}

/// What the test knows independently of the server.
struct Case {
    prefix: String,
    /// On hand per product, as adjustments and completions left it.
    on_hand: [i64; PRODUCTS.len()],
    orders: Vec<String>,
    /// Units shipping took off stock and no return put back, per order and product.
    out: BTreeMap<String, [i64; PRODUCTS.len()]>,
}

impl Case {
    fn sku(&self, product: usize) -> String {
        format!("{}-{}", self.prefix, PRODUCTS[product].0)
    }

    fn items(&self, lines: &[(usize, u32)]) -> Value {
        lines
            .iter()
            .map(|(p, q)| json!({"sku": self.sku(*p), "quantity": q}))
            .collect()
    }

    fn order(&self, i: usize) -> Option<&str> {
        (!self.orders.is_empty()).then(|| self.orders[i % self.orders.len()].as_str())
    }
}

/// (on hand, reserved) of each product.
async fn products(app: &TestApp, case: &Case) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for p in 0..PRODUCTS.len() {
        let product = app.json(&format!("/v1/products/{}", case.sku(p))).await;
        out.push((
            product["on_hand"].as_i64().unwrap(),
            product["reserved"].as_i64().unwrap(),
        ));
    }
    out
}

/// Each item's units add up (none shipped beyond those ordered, delivered
/// beyond those shipped, returned beyond those delivered) and the order's
/// fulfillment status is the one they make.
fn check_units(order: &Value) {
    let (mut ordered, mut shipped, mut delivered, mut returned) = (0, 0, 0, 0);
    for item in order["items"].as_array().unwrap() {
        let f = &item["fulfillment"];
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(n("ordered"), item["quantity"].as_u64().unwrap(), "{order}");
        assert!(n("packing") + n("shipped") <= n("ordered"), "{order}");
        assert!(
            n("delivered") <= n("shipped") && n("returned") <= n("delivered"),
            "{order}"
        );
        (ordered, shipped, delivered, returned) = (
            ordered + n("ordered"),
            shipped + n("shipped"),
            delivered + n("delivered"),
            returned + n("returned"),
        );
    }
    let expected = match () {
        _ if shipped == 0 => "unfulfilled",
        _ if returned == ordered => "returned",
        _ if returned > 0 => "partially_returned",
        _ if delivered == ordered => "delivered",
        _ if delivered > 0 => "partially_delivered",
        _ if shipped == ordered => "shipped",
        _ => "partially_shipped",
    };
    assert_eq!(order["fulfillment_status"], expected, "{order}");
}

/// A 409 for want of stock names only SKUs that really were short, with
/// what was available before the step.
fn check_shortages(problem: &Value, case: &Case, before: &[(i64, i64)]) {
    let shortages = problem["shortages"].as_array().unwrap();
    assert!(!shortages.is_empty(), "{problem}");
    for s in shortages {
        let p = (0..PRODUCTS.len())
            .find(|p| s["sku"] == case.sku(*p).as_str())
            .unwrap();
        let available = before[p].0 - before[p].1;
        assert_eq!(s["available"], available, "{problem}");
        assert!(s["requested"].as_i64().unwrap() > available, "{problem}");
        assert!(PRODUCTS[p].2, "an untracked product is never short");
    }
}

async fn step(app: &TestApp, case: &mut Case, op: &Op) {
    let before = products(app, case).await;
    let (status, body) = match op {
        Op::Create(lines) => {
            let r = app
                .post(
                    "/v1/orders",
                    &json!({"currency": "NGN", "buyer": {"phone": "+2348012345678"}, "items": case.items(lines)}),
                )
                .await;
            let status = r.status();
            let body: Value = r.json().await.unwrap();
            if status == StatusCode::CREATED {
                case.orders.push(body["id"].as_str().unwrap().to_string());
            }
            (status, body)
        }
        Op::Ship(i) => ship_one(app, case, *i).await,
        Op::Deliver => {
            let mut last = (StatusCode::OK, Value::Null);
            for id in &case.orders {
                let shipments = app.json(&format!("/v1/orders/{id}/shipments")).await;
                for s in shipments["data"].as_array().unwrap() {
                    if s["state"] == "shipped" {
                        let sid = s["id"].as_str().unwrap();
                        let r = app
                            .post(&format!("/v1/shipments/{sid}/deliver"), &json!({}))
                            .await;
                        last = (r.status(), r.json().await.unwrap());
                    }
                }
            }
            last
        }
        Op::Return(i, restock) => return_one(app, case, *i, *restock).await,
        Op::Confirm(i) | Op::Cancel(i) | Op::CancelItems(i) => {
            let Some(id) = case.order(*i).map(str::to_string) else {
                return;
            };
            let (action, body) = match op {
                Op::Confirm(_) => ("confirm", json!({})),
                Op::Cancel(_) => ("cancel", json!({"reason": "changed their mind"})),
                _ => ("cancel-items", json!({"reason": "no longer wanted"})),
            };
            let r = app.post(&format!("/v1/orders/{id}/{action}"), &body).await;
            (r.status(), r.json().await.unwrap())
        }
        Op::Edit(i, lines) => {
            let Some(id) = case.order(*i).map(str::to_string) else {
                return;
            };
            let r = app
                .patch(
                    &format!("/v1/orders/{id}"),
                    &json!({"items": case.items(lines)}),
                )
                .await;
            (r.status(), r.json().await.unwrap())
        }
        Op::Adjust(p, delta) => {
            let r = app
                .post(
                    &format!("/v1/products/{}/stock-adjustments", case.sku(*p)),
                    &json!({"delta": delta, "reason": "count"}),
                )
                .await;
            let status = r.status();
            let (on_hand, reserved) = before[*p];
            if status == StatusCode::CREATED {
                case.on_hand[*p] += delta;
            } else {
                assert_eq!(status, StatusCode::CONFLICT);
                assert!(
                    on_hand + delta < reserved.max(0),
                    "refused {delta} on {on_hand}/{reserved}"
                );
            }
            (status, r.json().await.unwrap())
        }
        Op::Policy(policy) => {
            let r = app
                .patch("/v1/settings", &json!({"reservation_policy": policy}))
                .await;
            (r.status(), r.json().await.unwrap())
        }
        Op::Expire => {
            let later = Timestamp::now().plus_millis(365 * 24 * 3_600_000);
            ordo::jobs::expire_reservations(app.store.as_ref(), later)
                .await
                .unwrap();
            (StatusCode::OK, Value::Null)
        }
    };
    match status.as_u16() {
        200 | 201 => {}
        409 if body["type"] == "/problems/insufficient-stock" => {
            check_shortages(&body, case, &before);
        }
        409 if body["type"] == "/problems/invalid-transition" => {}
        409 if matches!(op, Op::Adjust(..)) => {}
        _ => panic!("{op:?}: {status} {body}"),
    }
    check(app, case).await;
}

/// Ships every unit not yet shipped of the first order from the `i`-th on
/// that has any, in one shipment.
async fn ship_one(app: &TestApp, case: &mut Case, i: usize) -> (StatusCode, Value) {
    let n = case.orders.len();
    for k in 0..n {
        let id = case.orders[(i % n + k) % n].clone();
        let held = app.json(&format!("/v1/orders/{id}")).await["reserved"].clone();
        let r = app
            .post(&format!("/v1/orders/{id}/shipments"), &json!({}))
            .await;
        let (status, body): (StatusCode, Value) = (r.status(), r.json().await.unwrap());
        if status != StatusCode::CREATED {
            assert_eq!(body["type"], "/problems/invalid-transition", "{body}");
            continue;
        }
        let shipment = body["id"].as_str().unwrap();
        let r = app
            .post(&format!("/v1/shipments/{shipment}/ship"), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        // What it held of each product left the shop.
        for p in 0..PRODUCTS.len() {
            let n = held[case.sku(p)].as_i64().unwrap_or(0);
            case.on_hand[p] -= n;
            case.out.entry(id.clone()).or_insert([0; PRODUCTS.len()])[p] += n;
        }
        return (r.status(), r.json().await.unwrap());
    }
    (StatusCode::OK, Value::Null)
}

/// Returns every delivered unit of the first order from the `i`-th on that
/// has any, and receives them, restocked or not.
async fn return_one(
    app: &TestApp,
    case: &mut Case,
    i: usize,
    restock: bool,
) -> (StatusCode, Value) {
    let n = case.orders.len();
    for k in 0..n {
        let id = case.orders[(i % n + k) % n].clone();
        let r = app
            .post(
                &format!("/v1/orders/{id}/returns"),
                &json!({"reason": "unwanted"}),
            )
            .await;
        let (status, body): (StatusCode, Value) = (r.status(), r.json().await.unwrap());
        if status != StatusCode::CREATED {
            assert_eq!(body["type"], "/problems/invalid-transition", "{body}");
            continue;
        }
        let rid = body["id"].as_str().unwrap();
        let r = app
            .post(
                &format!("/v1/orders/{id}/returns/{rid}/receive"),
                &json!({"restock": restock}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let order = app.json(&format!("/v1/orders/{id}")).await;
        // Restocked units go back on hand, as many as their shipping took off.
        for l in body["lines"].as_array().unwrap().iter().filter(|_| restock) {
            let item = order["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|it| it["id"] == l["line_id"])
                .unwrap();
            let p = (0..PRODUCTS.len()).find(|p| item["sku"] == case.sku(*p).as_str());
            if let Some(p) = p {
                let out = &mut case.out.entry(id.clone()).or_insert([0; PRODUCTS.len()])[p];
                let back = l["quantity"].as_i64().unwrap().min(*out);
                *out -= back;
                case.on_hand[p] += back;
            }
        }
        return (r.status(), r.json().await.unwrap());
    }
    (StatusCode::OK, Value::Null)
}

/// The invariant: each product's reserved units are exactly what the
/// orders hold of it, never more than on hand; on hand is what the test
/// expects; finished orders hold nothing; an order holds no more than its
/// lines; the server's own reconciliation agrees.
async fn check(app: &TestApp, case: &Case) {
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for id in &case.orders {
        let order = app.json(&format!("/v1/orders/{id}")).await;
        let reserved = order["reserved"].as_object().unwrap();
        if matches!(order["status"].as_str(), Some("cancelled" | "completed")) {
            assert!(reserved.is_empty(), "a finished order holds stock: {order}");
        }
        check_units(&order);
        for (sku, n) in reserved {
            let ordered: u64 = order["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["sku"] == sku.as_str())
                .map(|l| l["quantity"].as_u64().unwrap())
                .sum();
            assert!(
                n.as_u64().unwrap() <= ordered,
                "holds more than ordered: {order}"
            );
            *held.entry(sku.clone()).or_insert(0) += n.as_i64().unwrap();
        }
    }
    for (p, (on_hand, reserved)) in products(app, case).await.into_iter().enumerate() {
        let sku = case.sku(p);
        assert_eq!(on_hand, case.on_hand[p], "{sku} on hand");
        assert_eq!(
            reserved,
            held.get(&sku).copied().unwrap_or(0),
            "{sku} reserved"
        );
        assert!(
            (0..=on_hand).contains(&reserved),
            "{sku}: {reserved} of {on_hand}"
        );
        if !PRODUCTS[p].2 {
            assert_eq!(reserved, 0, "{sku} does not count stock");
        }
    }
    let reconcile = app.json("/v1/stock/reconcile").await;
    assert_eq!(reconcile["in_balance"], true, "{reconcile}");
}

#[test]
fn stock_adds_up_after_any_sequence_of_order_and_stock_changes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(spawn_app());
    let cases = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        rt.block_on(async {
            // Every run (shrinking included) starts on products of its own.
            let mut case = Case {
                prefix: format!("P{}", cases.fetch_add(1, Ordering::Relaxed)),
                on_hand: PRODUCTS.map(|(_, n, _)| n),
                orders: Vec::new(),
                out: BTreeMap::new(),
            };
            for (p, (_, on_hand, track)) in PRODUCTS.iter().enumerate() {
                app.add_product(&json!({
                    "sku": case.sku(p), "name": "Thing", "currency": "NGN",
                    "price": "100.00", "on_hand": on_hand, "track_stock": track
                }))
                .await;
            }
            for op in &ops {
                step(&app, &mut case, op).await;
            }
        });
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

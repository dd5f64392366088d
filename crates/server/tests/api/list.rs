use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, plain_order, problem, spawn_app, TestApp};

async fn ids(app: &TestApp, path: &str) -> Vec<String> {
    let r = app.get(path).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    let page: Value = r.json().await.unwrap();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

async fn count(app: &TestApp, query: &str) -> u64 {
    let c: Value = app
        .get(&format!("/v1/orders/count{query}"))
        .await
        .json()
        .await
        .unwrap();
    c["count"].as_u64().unwrap()
}

fn order(name: &str, phone: &str, channel: &str, price: &str) -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": name, "phone": phone, "email": format!("{}@example.com", name.to_lowercase().replace(' ', "."))},
        "items": [{"name": "Thing", "quantity": 1, "unit_price": price}],
        "channel": channel
    })
}

#[tokio::test]
async fn filters_match_exactly_what_they_say() {
    let app = spawn_app().await;
    let ada = app
        .create(&order("Ada Obi", "+2348011111111", "whatsapp", "100.00"))
        .await;
    let bola = app
        .create(&order("Bola Ade", "+2348022222222", "web", "300.00"))
        .await;
    let chi = app
        .create(&order("Chi Eze", "+2348033333333", "web", "200.00"))
        .await;
    let (a, b, c) = (
        ada["id"].as_str().unwrap(),
        bola["id"].as_str().unwrap(),
        chi["id"].as_str().unwrap(),
    );
    app.post(&format!("/v1/orders/{b}/confirm"), &json!({}))
        .await;
    app.post(&format!("/v1/orders/{c}/cancel"), &json!({"reason": "x"}))
        .await;

    assert_eq!(ids(&app, "/v1/orders?status=confirmed").await, [b]);
    assert_eq!(
        ids(&app, "/v1/orders?status=pending,confirmed").await,
        [b, a]
    );
    assert_eq!(ids(&app, "/v1/orders?stage=cancelled").await, [c]);
    assert_eq!(ids(&app, "/v1/orders?payment_status=unpaid").await.len(), 3);
    assert_eq!(
        ids(&app, "/v1/orders?fulfillment_status=shipped")
            .await
            .len(),
        0
    );
    assert_eq!(ids(&app, "/v1/orders?channel=web").await, [c, b]);
    assert_eq!(
        ids(&app, "/v1/orders?buyer_phone=%2B2348022222222").await,
        [b]
    );
    assert_eq!(
        ids(&app, "/v1/orders?buyer_email=chi.eze@example.com").await,
        [c]
    );
    assert_eq!(ids(&app, "/v1/orders?q=bola").await, [b]);
    assert_eq!(
        ids(
            &app,
            &format!("/v1/orders?q={}", ada["reference"].as_str().unwrap())
        )
        .await,
        [a]
    );
    assert_eq!(ids(&app, "/v1/orders?q=%2B2348033333333").await, [c]);
    assert_eq!(ids(&app, "/v1/orders?q=nobody").await.len(), 0);
    assert_eq!(
        ids(&app, "/v1/orders?q=100%25").await.len(),
        0,
        "LIKE wildcards are literal"
    );

    let created = ada["created_at"].as_str().unwrap();
    assert_eq!(
        ids(&app, &format!("/v1/orders?created_lt={created}"))
            .await
            .len(),
        0
    );
    assert_eq!(
        ids(&app, &format!("/v1/orders?created_gte={created}"))
            .await
            .len(),
        3
    );

    assert_eq!(count(&app, "").await, 3);
    assert_eq!(count(&app, "?status=pending").await, 1);
    assert_eq!(count(&app, "?channel=web&status=cancelled").await, 1);
}

#[tokio::test]
async fn filter_by_external_id_and_creator() {
    let app = spawn_app().await;
    let mut with_id = plain_order();
    with_id["external_ids"] = json!({"com.acme.order-id": "A-1"});
    let o = app.create(&with_id).await;
    app.create(&plain_order()).await;
    assert_eq!(
        ids(&app, "/v1/orders?external_id=com.acme.order-id:A-1").await,
        [o["id"].as_str().unwrap()]
    );
    let creator = o["created_by"]["id"].as_str().unwrap();
    assert_eq!(
        ids(&app, &format!("/v1/orders?created_by={creator}"))
            .await
            .len(),
        2
    );
    assert_eq!(
        ids(&app, "/v1/orders?created_by=key_01JD5Q4ZB8Y7K6M3N2P1R0S9TV")
            .await
            .len(),
        0
    );
    let p = problem(
        app.get("/v1/orders?external_id=nocolon").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["external_id"]);
}

#[tokio::test]
async fn sorting_and_cursor_pagination_visit_every_order_once() {
    let app = spawn_app().await;
    let mut all = Vec::new();
    for i in 0..23 {
        let price = format!("{}.00", (i * 7) % 10 + 1);
        all.push(
            app.create(&order(
                &format!("Buyer {i}"),
                "+2348012345678",
                "web",
                &price,
            ))
            .await,
        );
    }
    for sort in [
        "-created_at",
        "created_at",
        "total",
        "-total",
        "updated_at",
        "-updated_at",
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/orders?limit=5&sort={sort}&cursor={c}"),
                None => format!("/v1/orders?limit=5&sort={sort}"),
            };
            let page: Value = app.get(&path).await.json().await.unwrap();
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 5);
            seen.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(page["has_more"], true);
                    cursor = Some(c.to_string());
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 23, "{sort}");
        let unique: BTreeSet<_> = seen
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(unique.len(), 23, "{sort}: no order twice");
        if sort.ends_with("total") {
            let totals: Vec<f64> = seen
                .iter()
                .map(|o| o["total"].as_str().unwrap().parse().unwrap())
                .collect();
            let mut sorted = totals.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            if sort.starts_with('-') {
                sorted.reverse();
            }
            assert_eq!(totals, sorted, "{sort}");
        }
    }
    let newest: Vec<_> = ids(&app, "/v1/orders?limit=3").await;
    let expected: Vec<_> = all
        .iter()
        .rev()
        .take(3)
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(newest, expected);
}

#[tokio::test]
async fn bad_list_parameters_are_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("status=paid", "status"),
        ("stage=lost", "stage"),
        ("channel=fax", "channel"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("sort=price", "sort"),
        ("cursor=bm9wZQ", "cursor"),
        ("created_gte=yesterday", "created_gte"),
        ("buyer_phone=0801", "buyer_phone"),
        ("buyer_channel_id=tg_1", "buyer_channel_id"),
        ("colour=red", "colour"),
    ] {
        let p = problem(
            app.get(&format!("/v1/orders?{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields(&p), [field], "{query}");
    }
    let page: Value = app
        .get("/v1/orders?limit=1&sort=total")
        .await
        .json()
        .await
        .unwrap();
    assert!(page["next_cursor"].is_null());
    problem(
        app.get("/v1/orders/count?limit=5").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
}

#[tokio::test]
async fn a_cursor_of_another_sort_is_refused() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.create(&plain_order()).await;
    }
    let page: Value = app
        .get("/v1/orders?limit=1&sort=total")
        .await
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let p = problem(
        app.get(&format!("/v1/orders?limit=1&cursor={cursor}"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["cursor"]);
}

/// An edit or an action rewrites only the columns it changed (SQLite
/// updates just the indexes of those): every filter and sort still finds
/// the order by what it is now, never by what it was.
#[tokio::test]
async fn filters_follow_edits_and_actions() {
    let app = spawn_app().await;
    let a = app
        .create(&order("Ada Obi", "+2348011111111", "whatsapp", "100.00"))
        .await;
    let b = app
        .create(&order("Bola Ade", "+2348022222222", "web", "300.00"))
        .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let r = app
        .patch(
            &format!("/v1/orders/{a}"),
            &json!({
                "buyer": {"name": "Ada Obi", "phone": "+2348099999999", "channel_id": "wa_2348099999999"},
                "items": [{"name": "Thing", "quantity": 5, "unit_price": "100.00"}]
            }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(ids(&app, "/v1/orders?buyer_phone=%2B2348011111111")
        .await
        .is_empty());
    assert!(ids(&app, "/v1/orders?buyer_email=ada.obi@example.com")
        .await
        .is_empty());
    assert_eq!(
        ids(&app, "/v1/orders?buyer_phone=%2B2348099999999").await,
        [a]
    );
    assert_eq!(
        ids(&app, "/v1/orders?buyer_channel_id=wa_2348099999999").await,
        [a]
    );
    assert_eq!(
        ids(&app, "/v1/orders?sort=-total").await,
        [a, b],
        "500 > 300"
    );

    app.post(&format!("/v1/orders/{a}/confirm"), &json!({}))
        .await;
    assert_eq!(ids(&app, "/v1/orders?status=confirmed").await, [a]);
    assert_eq!(ids(&app, "/v1/orders?status=pending").await, [b]);
    assert_eq!(count(&app, "?stage=confirmed").await, 1);
    assert_eq!(ids(&app, "/v1/orders?sort=-updated_at").await, [a, b]);
    app.post(&format!("/v1/orders/{b}/cancel"), &json!({"reason": "x"}))
        .await;
    assert_eq!(ids(&app, "/v1/orders?status=cancelled").await, [b]);
    assert_eq!(ids(&app, "/v1/orders?sort=-updated_at").await, [b, a]);
    assert_eq!(count(&app, "?status=pending").await, 0);
}

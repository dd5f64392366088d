//! `GET /v1/orders/export`: every matching order, streamed, as NDJSON or
//! CSV, on both backends.

use std::sync::Arc;

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// Order `i`: two items, every third on WhatsApp, and notes that need
/// quoting in CSV.
fn order(i: usize) -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": format!("Buyer {i}"), "phone": format!("+23480300{i:05}")},
        "items": [
            {"name": "Ankara dress", "quantity": 1 + i % 3, "unit_price": "15000.00", "attributes": {"size": "M"}},
            {"name": "Head tie, \"gold\"", "quantity": 1, "unit_price": "3500.00"}
        ],
        "notes": format!("Leave at the gate, call \"Ada\"\nthen wait ({i})"),
        "external_ids": {"com.shop.cart": format!("C-{i}")},
        "channel": if i % 3 == 0 { "whatsapp" } else { "web" }
    })
}

async fn create_many(app: &Arc<TestApp>, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|i| {
                let app = Arc::clone(app);
                let body = order(*i);
                tokio::spawn(async move { app.post("/v1/orders", &body).await.status() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::CREATED);
        }
    }
}

async fn export(app: &TestApp, key: &str, query: &str) -> (String, String) {
    let r = app.get_as(key, &format!("/v1/orders/export{query}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, r.text().await.unwrap())
}

#[tokio::test]
async fn every_matching_order_is_exported_page_after_page() {
    let app = Arc::new(spawn_app().await);
    // More than two export pages (200 orders each).
    create_many(&app, 450).await;
    let (content_type, body) = export(&app, &app.key, "").await;
    assert_eq!(content_type, "application/x-ndjson");
    let orders: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(orders.len(), 450);
    let mut ids: Vec<&str> = orders.iter().map(|o| o["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 450, "each order once");
    // Exactly as the API shows one order.
    let one = app
        .json(&format!("/v1/orders/{}", orders[7]["id"].as_str().unwrap()))
        .await;
    assert_eq!(orders[7], one);
    // The list's filters and sort.
    let (_, body) = export(&app, &app.key, "?channel=whatsapp&sort=created_at").await;
    let whatsapp: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(whatsapp.len(), 150);
    assert!(whatsapp.iter().all(|o| o["channel"] == "whatsapp"));
    assert!(
        whatsapp
            .windows(2)
            .all(|w| w[0]["created_at"].as_str() <= w[1]["created_at"].as_str()),
        "oldest first"
    );
}

#[tokio::test]
async fn csv_has_one_row_per_item_and_quotes_what_needs_it() {
    let app = Arc::new(spawn_app().await);
    create_many(&app, 3).await;
    let (content_type, body) = export(&app, &app.key, "?format=csv&sort=created_at").await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header.len(), 36);
    assert_eq!(&header[..3], ["order_id", "reference", "external_ids"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 6, "two items an order");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // The orders were made at once: find order 0's rows by its cart id.
    let of_first: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[col("external_ids")] == r#"{"com.shop.cart":"C-0"}"#)
        .collect();
    assert_eq!(of_first.len(), 2);
    let first = of_first[0];
    assert_eq!(
        &first[col("notes")],
        "Leave at the gate, call \"Ada\"\nthen wait (0)"
    );
    assert_eq!(&first[col("item_attributes")], r#"{"size":"M"}"#);
    assert_eq!(&first[col("buyer_phone")], "+2348030000000");
    assert_eq!(&of_first[1][col("item_name")], "Head tie, \"gold\"");
    assert_eq!(&of_first[1][col("item_total")], "3500.00");
    assert_eq!(&first[col("total")], "18500.00");
    assert_eq!(first[col("order_id")], of_first[1][col("order_id")]);
}

#[tokio::test]
async fn an_export_sees_only_what_the_key_may_and_says_what_is_wrong() {
    let app = Arc::new(spawn_app().await);
    create_many(&app, 2).await;
    let vendor = app.key_for(Role::Vendor).await;
    let r = app.post_as(&vendor, "/v1/orders", &order(9)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, body) = export(&app, &vendor, "").await;
    assert_eq!(body.lines().count(), 1, "a vendor exports its own orders");
    let other = app.other_tenant_key().await;
    let (_, body) = export(&app, &other, "?format=csv").await;
    assert_eq!(body.lines().count(), 1, "another tenant: the header alone");
    for (query, field) in [
        ("?format=xml", "format"),
        ("?limit=10", "limit"),
        ("?status=shipped_yesterday", "status"),
        ("?colour=red", "query"),
    ] {
        let p = problem(
            app.get(&format!("/v1/orders/export{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            fields(&p)
                .iter()
                .any(|f| f.starts_with(field) || f == "colour"),
            "{query}: {p}"
        );
    }
}

#[tokio::test]
async fn an_exported_csv_reads_back_as_the_orders_it_came_from() {
    use ordo::import_file::{csv_orders, split_keys, CsvOptions, Entry};
    let app = Arc::new(spawn_app().await);
    create_many(&app, 5).await;
    let (_, body) = export(&app, &app.key, "?format=csv").await;
    let options = CsvOptions::default();
    let split = split_keys(body.as_bytes(), &options).unwrap();
    assert!(split.is_empty());
    let read: Vec<Entry> = csv_orders(body.as_bytes(), &options, split)
        .unwrap()
        .collect();
    assert_eq!(read.len(), 5);
    for r in read {
        let Entry::Order(o) = r else {
            panic!("refused: {r:?}")
        };
        let i: usize = o
            .key
            .trim_start_matches("com.shop.cart:C-")
            .parse()
            .unwrap();
        let sent = order(i);
        let got = serde_json::json!({
            "currency": o.request.currency,
            "buyer": {"name": o.request.buyer.name, "phone": o.request.buyer.phone},
            "items": o.request.items.iter().map(|l| {
                let mut item = json!({"name": l.name, "quantity": l.quantity, "unit_price": l.unit_price});
                if !l.attributes.is_empty() {
                    item["attributes"] = json!(l.attributes);
                }
                item
            }).collect::<Vec<_>>(),
            "notes": o.request.notes,
            "external_ids": o.request.external_ids,
            "channel": o.request.channel,
        });
        assert_eq!(got, sent, "order {i}");
    }
}

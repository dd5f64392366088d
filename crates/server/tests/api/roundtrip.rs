//! What goes in comes out, byte for byte, on every database: money at each
//! currency precision, timestamps, Unicode names, long notes. When the suite
//! runs on PostgreSQL, the same orders are also made on the embedded
//! database and the two are compared.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{postgres_server, spawn_app_on, TestApp, TestDb};

/// Orders exercising every precision and the awkward characters.
fn orders() -> Vec<Value> {
    let long_notes: String = "Leave with 田中さん at the gate, 🚪 then call. "
        .chars()
        .cycle()
        .take(5_000)
        .collect();
    vec![
        // 0 decimals
        json!({"currency": "JPY", "buyer": {"name": "田中太郎", "phone": "+819012345678"},
               "items": [{"name": "抹茶 🍵", "quantity": 3, "unit_price": "1500"}],
               "notes": long_notes}),
        // 2 decimals, the largest amounts allowed
        json!({"currency": "NGN", "buyer": {"name": "Ada Obi 👩🏾‍🍳", "email": "ada@example.com"},
               "items": [{"name": "Product A", "quantity": 1, "unit_price": "9999999999999.99"},
                         {"name": "Zero", "quantity": 1_000_000, "unit_price": "0.00"}]}),
        // 3 decimals
        json!({"currency": "KWD", "buyer": {"name": "Zoë “Quote” O'Brien", "channel_id": "wa_96512345678"},
               "items": [{"name": "Dates — Medjool", "quantity": 7, "unit_price": "1.255",
                          "attributes": {"size": "L", "colour": "brün"}}],
               "shipping_address": {"name": "Zoë", "line1": "Block 1, Street 2 ‏عربي", "city": "Kuwait City", "country": "KW"}}),
        // 4 decimals
        json!({"currency": "CLF", "buyer": {"name": "Niño Ñandú", "email": "nino@example.cl"},
               "items": [{"name": "UF", "quantity": 2, "unit_price": "0.0001"}],
               "notes": "line one\nline two\ttabbed \\ backslash"}),
    ]
}

/// Creates the orders and returns, for each, the create response and what
/// GET, the list and the timeline return afterwards.
async fn round_trip(app: &TestApp) -> Vec<(Value, Value, Value, Value)> {
    let mut out = Vec::new();
    for body in orders() {
        let r = app.post("/v1/orders", &body).await;
        let status = r.status();
        let created: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}: {created}");
        let id = created["id"].as_str().unwrap();
        let got: Value = app
            .get(&format!("/v1/orders/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let listed: Value = app
            .get(&format!(
                "/v1/orders?created_gte={}",
                created["created_at"].as_str().unwrap()
            ))
            .await
            .json()
            .await
            .unwrap();
        let listed = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == created["id"])
            .cloned()
            .unwrap();
        let events: Value = app
            .get(&format!("/v1/orders/{id}/events"))
            .await
            .json()
            .await
            .unwrap();
        out.push((created, got, listed, events));
    }
    out
}

/// What differs between two databases by construction: ids, references,
/// times, the key that created it.
fn comparable(mut v: Value) -> Value {
    fn scrub(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match k.as_str() {
                        "id" | "reference" | "created_at" | "updated_at" | "at" | "order_id"
                        | "created_by" | "actor" => *v = Value::Null,
                        _ => scrub(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    scrub(&mut v);
    v
}

#[tokio::test]
async fn orders_read_back_exactly_as_written() {
    let app = spawn_app_on(TestDb::new().await).await;
    let results = round_trip(&app).await;
    for ((created, got, listed, events), sent) in results.iter().zip(orders()) {
        assert_eq!(got, created, "GET returns the order as created");
        assert_eq!(listed, created, "the list returns the order as created");
        assert_eq!(created["buyer"]["name"], sent["buyer"]["name"]);
        assert_eq!(
            created["notes"],
            sent.get("notes").cloned().unwrap_or(Value::Null)
        );
        for (line, item) in created["items"]
            .as_array()
            .unwrap()
            .iter()
            .zip(sent["items"].as_array().unwrap())
        {
            assert_eq!(
                line["unit_price"], item["unit_price"],
                "money keeps its precision"
            );
            assert_eq!(line["name"], item["name"]);
        }
        assert_eq!(events["data"][0]["type"], "order.created");
    }
    let jpy = &results[0].0;
    assert_eq!(jpy["total"], "4500");
    assert_eq!(jpy["notes"].as_str().unwrap().chars().count(), 5_000);
    assert_eq!(results[1].0["total"], "9999999999999.99");
    assert_eq!(results[2].0["total"], "8.785");
    assert_eq!(results[3].0["total"], "0.0002");

    // On PostgreSQL, the embedded database must agree exactly.
    if postgres_server().is_some() {
        let embedded = spawn_app_on(TestDb {
            dir: tempfile::tempdir().unwrap(),
            url: None,
        })
        .await;
        let other = round_trip(&embedded).await;
        for (a, b) in results.into_iter().zip(other) {
            assert_eq!(comparable(a.1), comparable(b.1));
            assert_eq!(comparable(a.3), comparable(b.3));
        }
    }
}

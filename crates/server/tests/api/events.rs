//! The event feed (`GET /v1/events`) and the live stream
//! (`GET /v1/events/stream`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, plain_order, problem, spawn_app, TestApp};

/// Reads the feed from `after` until it holds `n` events (events enter it
/// a few milliseconds after they commit).
async fn feed_until(app: &TestApp, key: &str, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get_as(key, &format!("/v1/events?limit=500{query}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let page: Value = r.json().await.unwrap();
        let events = page["data"].as_array().unwrap().clone();
        if events.len() >= n || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn cursor(e: &Value) -> u64 {
    e["cursor"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_feed_has_every_event_once_in_order_with_the_order_as_it_was() {
    let app = spawn_app().await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        orders.push(id(&app.create(&plain_order()).await));
    }
    let a = &orders[0];
    app.post(&format!("/v1/orders/{a}/confirm"), &json!({}))
        .await;
    app.post(
        &format!("/v1/orders/{a}/cancel"),
        &json!({"reason": "buyer asked"}),
    )
    .await;
    let b = &orders[1];
    app.post(&format!("/v1/orders/{b}/confirm"), &json!({}))
        .await;

    let events = feed_until(&app, &app.key, "", 7).await;
    assert_eq!(events.len(), 7);
    let cursors: Vec<u64> = events.iter().map(cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    let first = &events[0];
    assert_eq!(first["type"], "order.created");
    assert_eq!(first["tenant"], app.tenant.id.to_string());
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["data"]["id"], first["order_id"]);
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    // Each event carries the order as it was right after it.
    let of_a: Vec<&Value> = events
        .iter()
        .filter(|e| e["order_id"] == a.as_str())
        .collect();
    let statuses: Vec<&str> = of_a
        .iter()
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "confirmed", "cancelled"]);
    let sequences: Vec<u64> = of_a
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
    assert_eq!(of_a[2]["details"]["reason"], "buyer asked");
    // The same events as the order's own timeline.
    let timeline: Value = app
        .get(&format!("/v1/orders/{a}/events"))
        .await
        .json()
        .await
        .unwrap();
    let timeline_ids: Vec<String> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(of_a.iter().map(|e| id(e)).collect::<Vec<_>>(), timeline_ids);

    // Filters.
    let confirmed = feed_until(&app, &app.key, "&types=order.confirmed", 2).await;
    assert_eq!(confirmed.len(), 2);
    let mine = feed_until(&app, &app.key, &format!("&order_id={b}"), 2).await;
    assert_eq!(mine.len(), 2);

    // Pages of 3 visit every event once.
    let mut after = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let page: Value = app
            .get(&format!("/v1/events?limit=3&after={after}"))
            .await
            .json()
            .await
            .unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(id));
        after = page["next_cursor"].as_str().unwrap().to_string();
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(seen, events.iter().map(id).collect::<Vec<_>>());
    // An empty page hands the cursor back, to poll on with.
    let page: Value = app
        .get(&format!("/v1/events?after={after}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"], json!([]));
    assert_eq!(page["next_cursor"], after.as_str());

    // Another tenant sees none of it; a vendor only its own orders' events.
    let other = app.other_tenant_key().await;
    let page: Value = app.get_as(&other, "/v1/events").await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    let vendor = app.key_for(ordo_domain::Role::Vendor).await;
    let own = id(&app.create_as(&vendor, &plain_order()).await);
    let vendor_events = feed_until(&app, &vendor, "", 1).await;
    assert_eq!(vendor_events.len(), 1);
    assert_eq!(vendor_events[0]["order_id"], own.as_str());
    let viewer = app.key_for(ordo_domain::Role::Viewer).await;
    assert_eq!(feed_until(&app, &viewer, "", 8).await.len(), 8);
}

#[tokio::test]
async fn bad_feed_parameters_are_named() {
    let app = spawn_app().await;
    let r = app
        .get("/v1/events?after=yesterday&types=order.shipped&limit=0&order_id=42")
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(named, ["after", "limit", "order_id", "types"]);
    let types = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "types")
        .unwrap();
    assert_eq!(types["value"], "order.shipped");
    assert!(types["accepted"]
        .as_str()
        .unwrap()
        .contains("order.confirmed"));
    let r = app.get("/v1/events?cursor=1").await;
    problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    let r = app.client.get(app.url("/v1/events")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_paging_during_writes_sees_every_event_exactly_once() {
    let app = spawn_app().await;
    let writers = (0..8).map(|_| {
        let (client, url, key) = (app.client.clone(), app.url("/v1/orders"), app.key.clone());
        tokio::spawn(async move {
            for _ in 0..25 {
                let r = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&plain_order())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let mut after = 0_u64;
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 200 && Instant::now() < deadline {
        let page: Value = app
            .get(&format!("/v1/events?limit=7&after={after}"))
            .await
            .json()
            .await
            .unwrap();
        for e in page["data"].as_array().unwrap() {
            assert!(cursor(e) > after, "cursors only grow");
            after = cursor(e);
            seen.push(id(e));
        }
        if page["data"].as_array().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
    assert_eq!(seen.len(), 200, "every event, none skipped");
}

/// Reads SSE events from a response until `n` have arrived.
async fn read_sse(mut r: reqwest::Response, n: usize) -> Vec<(String, String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while events.len() < n {
        let chunk = tokio::time::timeout_at(deadline.into(), r.chunk())
            .await
            .expect("the stream went quiet")
            .unwrap()
            .expect("the stream ended");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut sse_id, mut name, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    sse_id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !data.is_empty() {
                events.push((sse_id, name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_events_as_they_happen_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let before = id(&app.create(&plain_order()).await);
    let stream = app
        .client
        .get(app.url("/v1/events/stream?types=order.created,order.confirmed"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let writer = {
        let app_url = app.url("/v1/orders");
        let (client, key) = (app.client.clone(), app.key.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut ids = Vec::new();
            for _ in 0..3 {
                let o: Value = client
                    .post(&app_url)
                    .bearer_auth(&key)
                    .json(&plain_order())
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                ids.push(o["id"].as_str().unwrap().to_string());
            }
            let first = &ids[0];
            client
                .post(format!("{app_url}/{first}/confirm"))
                .bearer_auth(&key)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            // Filtered out by the stream's types.
            client
                .post(format!("{app_url}/{first}/cancel"))
                .bearer_auth(&key)
                .json(&json!({"reason": "x"}))
                .send()
                .await
                .unwrap();
            ids
        })
    };
    let events = read_sse(stream, 5).await;
    let ids = writer.await.unwrap();
    let order_ids: Vec<&str> = events
        .iter()
        .map(|(_, _, e)| e["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(order_ids, [&before, &ids[0], &ids[1], &ids[2], &ids[0]]);
    let names: Vec<&str> = events.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "order.created",
            "order.created",
            "order.created",
            "order.created",
            "order.confirmed"
        ]
    );
    for (sse_id, _, e) in &events {
        assert_eq!(e["cursor"].as_str().unwrap(), sse_id);
    }

    // A client that lost the connection after the second event resumes.
    let resumed = app
        .client
        .get(app.url("/v1/events/stream?types=order.created,order.confirmed"))
        .bearer_auth(&app.key)
        .header("Last-Event-ID", &events[1].0)
        .send()
        .await
        .unwrap();
    let again = read_sse(resumed, 3).await;
    let again_ids: Vec<&str> = again.iter().map(|(i, _, _)| i.as_str()).collect();
    let expected: Vec<&str> = events[2..].iter().map(|(i, _, _)| i.as_str()).collect();
    assert_eq!(again_ids, expected);

    let r = app
        .client
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&app.key)
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["Last-Event-ID"]);
}

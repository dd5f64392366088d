//! `ordo migrate-data`: an embedded installation moves to PostgreSQL whole.
//!
//! This test needs PostgreSQL, so its name starts with `postgres_only`:
//! `./scripts/test` runs it in its PostgreSQL pass and skips it in the
//! SQLite pass.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    create_database, free_port, order_body, plain_order, postgres_server, spawn_app_on, start,
    TestApp, TestDb,
};

fn migrate_data(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .arg("migrate-data")
        .args(args)
        .output()
        .expect("run ordo migrate-data");
    (
        out.status.success(),
        String::from_utf8(out.stdout).expect("utf8"),
        String::from_utf8(out.stderr).expect("utf8"),
    )
}

/// Everything the API shows of the tenant's orders, as `key` sees it.
async fn snapshot(client: &reqwest::Client, base: &str, key: &str, ids: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for id in ids {
        for path in [
            format!("/v1/orders/{id}"),
            format!("/v1/orders/{id}/events"),
        ] {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            out.push(r.json().await.unwrap());
        }
    }
    out
}

async fn populate(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut body = if i == 0 { order_body() } else { plain_order() };
        body["notes"] = json!(format!("order {i}: 田中太郎 🌴"));
        let r = app
            .client
            .post(app.url("/v1/orders"))
            .bearer_auth(&app.key)
            .header("Idempotency-Key", format!("key-{i}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let order: Value = r.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_string();
        match i % 4 {
            1 => {
                app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
                    .await;
            }
            2 => {
                app.post(
                    &format!("/v1/orders/{id}/cancel"),
                    &json!({"reason": "out of stock"}),
                )
                .await;
            }
            3 => {
                app.patch(&format!("/v1/orders/{id}"), &json!({"notes": "edited"}))
                    .await;
            }
            _ => {
                let r = app
                    .post(
                        &format!("/v1/orders/{id}/payments"),
                        &json!({"method": "bank_transfer", "amount": "1000.00", "currency": "NGN", "transaction_id": format!("FT-{i}")}),
                    )
                    .await;
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_only_migrate_data_moves_every_order_event_and_key() {
    let server = postgres_server()
        .expect("this test needs PostgreSQL: run ./scripts/test, or set TEST_ORDO_POSTGRES");
    let embedded = TestDb {
        dir: tempfile::tempdir().unwrap(),
        url: None,
    };
    let app = spawn_app_on(embedded).await;
    let ids = populate(&app).await;
    let other_key = app.other_tenant_key().await;
    let other = app.create_as(&other_key, &plain_order()).await;
    let other_ids = vec![other["id"].as_str().unwrap().to_string()];
    let hook: Value = app
        .post(
            "/v1/webhook-endpoints",
            &json!({"url": "https://example.com/hooks", "event_types": ["order.created"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let hook_path = format!("/v1/webhook-endpoints/{}", hook["id"].as_str().unwrap());
    let hook_before: Value = app.get(&hook_path).await.json().await.unwrap();
    let before = snapshot(&app.client, &app.base, &app.key, &ids).await;
    // The feed, once every event is in it.
    let feed = |base: String, key: String| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let page: Value = reqwest::Client::new()
                .get(format!("{base}/v1/events?limit=500"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if page["data"].as_array().unwrap().len() >= 80 || std::time::Instant::now() > deadline
            {
                return page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let feed_before = feed(app.base.clone(), app.key.clone()).await;
    assert_eq!(feed_before["data"].as_array().unwrap().len(), 80);
    let before_other = snapshot(&app.client, &app.base, &other_key, &other_ids).await;

    let target = create_database(&server).await;
    let from = app.db.dir.path().display().to_string();
    let (ok, out, err) = migrate_data(&["--from", &from, "--to", &target]);
    assert!(ok, "{err}");
    let counts: Vec<(String, u64, u64)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect();
    let tables: Vec<&str> = counts.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "tenants",
            "api_keys",
            "users",
            "admin_sessions",
            "tenant_secrets",
            "orders",
            "order_external_ids",
            "payment_transactions",
            "order_shipments",
            "provider_events",
            "conversations",
            "order_events",
            "idempotency_keys",
            "webhook_endpoints",
            "webhook_deliveries",
            "webhook_attempts",
            "feed_cursors",
            "jobs",
            "products",
            "promotions",
            "promotion_uses",
            "imports",
            "import_errors",
            "stock_movements"
        ]
    );
    for (table, source, copied) in &counts {
        assert_eq!(source, copied, "{table}");
    }
    let count = |t: &str| counts.iter().find(|(n, _, _)| n == t).unwrap().1;
    assert_eq!(count("tenants"), 2);
    assert_eq!(count("orders"), 41);
    assert_eq!(count("order_events"), 41 + 40);
    assert_eq!(count("payment_transactions"), 10);
    assert_eq!(count("idempotency_keys"), 40);
    assert!(count("api_keys") >= 2);
    assert_eq!(
        count("jobs"),
        2,
        "the idempotency key sweep and the reservation expiry"
    );
    assert_eq!(count("webhook_endpoints"), 1);

    // A second copy into the now non-empty database is refused.
    let (ok, _, err) = migrate_data(&["--from", &from, "--to", &target]);
    assert!(!ok);
    assert!(err.contains("already holds"), "{err}");

    // ordo on PostgreSQL shows the same orders and timelines to the same keys.
    let pg = TestDb {
        dir: tempfile::tempdir().unwrap(),
        url: Some(target),
    };
    let port = free_port();
    let mut node = start(&pg, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    assert_eq!(snapshot(&client, &base, &app.key, &ids).await, before);
    let hook_after: Value = client
        .get(format!("{base}{hook_path}"))
        .bearer_auth(&app.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hook_after, hook_before);
    assert_eq!(
        feed(base.clone(), app.key.clone()).await,
        feed_before,
        "the feed, cursors and all"
    );
    assert_eq!(
        snapshot(&client, &base, &other_key, &other_ids).await,
        before_other
    );

    // Idempotency keys came along: a retry replays the same order.
    let mut body = plain_order();
    body["notes"] = json!("order 5: 田中太郎 🌴");
    let r = client
        .post(format!("{base}/v1/orders"))
        .bearer_auth(&app.key)
        .header("Idempotency-Key", "key-5")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let replayed: Value = r.json().await.unwrap();
    assert_eq!(replayed["id"], ids[5].as_str());

    // New orders continue with references of their own.
    let known: Vec<Value> = before
        .iter()
        .step_by(2)
        .map(|o| o["reference"].clone())
        .collect();
    for _ in 0..5 {
        let r = client
            .post(format!("{base}/v1/orders"))
            .bearer_auth(&app.key)
            .json(&plain_order())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let o: Value = r.json().await.unwrap();
        assert!(!known.contains(&o["reference"]), "{}", o["reference"]);
    }
    // New events enter the feed after the copied ones.
    let last: u64 = feed_before["next_cursor"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let newer = loop {
        let page: Value = client
            .get(format!("{base}/v1/events?after={last}"))
            .bearer_auth(&app.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["data"].as_array().unwrap().len() >= 5 || std::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(newer["data"].as_array().unwrap().len(), 5);
    let _ = node.kill();
    let _ = node.wait();
}

#[test]
fn migrate_data_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.db").display().to_string();
    let (ok, _, err) = migrate_data(&["--from", &missing, "--to", "postgres://u@127.0.0.1:1/x"]);
    assert!(!ok);
    assert!(err.contains("no embedded database"), "{err}");
    let (ok, _, err) = migrate_data(&["--from", &missing, "--to", "sqlite:other.db"]);
    assert!(!ok);
    assert!(err.contains("--to must be a PostgreSQL URL"), "{err}");
    let (ok, _, err) = migrate_data(&[
        "--from",
        "postgres://u:secret@h/x",
        "--to",
        "postgres://u@127.0.0.1:1/x",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--from must be the embedded database"),
        "{err}"
    );
    assert!(!err.contains("secret"));
}

//! `kill -9` under load loses no order that got a 2xx.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{plain_order, TestDb};

fn ordo(db: &TestDb, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(args)
        .output()
        .expect("run ordo");
    assert!(
        out.status.success(),
        "ordo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// The child is returned to the caller, which kills and reaps it.
#[allow(clippy::zombie_processes)]
async fn start(db: &TestDb, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("ORDO_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ordo serve");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == StatusCode::OK {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ordo did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_order() {
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "crash"]);
    let key = ordo(
        &db,
        &[
            "keys",
            "create",
            "--tenant",
            "crash",
            "--role",
            "integration",
        ],
    );
    assert!(
        key.starts_with("ordo_"),
        "the key is the only line on stdout: {key}"
    );
    let port = free_port();
    let mut server = start(&db, port).await;

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/orders");
    let mut workers = Vec::new();
    for w in 0..16 {
        let (client, url, key, acknowledged) = (
            client.clone(),
            url.clone(),
            key.clone(),
            Arc::clone(&acknowledged),
        );
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let mut body = plain_order();
                body["notes"] = Value::String(format!("worker {w} order {i}"));
                let Ok(r) = client.post(&url).bearer_auth(&key).json(&body).send().await else {
                    break;
                };
                if r.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(order) = r.json::<Value>().await else {
                    break;
                };
                acknowledged.lock().expect("lock").push(order);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("kill -9");
    server.wait().expect("reap");
    for w in workers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() > 50,
        "the load was real: {} orders",
        acknowledged.len()
    );

    let mut server = start(&db, port).await;
    let mut missing = 0;
    for order in &acknowledged {
        let id = order["id"].as_str().expect("id");
        let r = client
            .get(format!("{url}/{id}"))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get");
        if r.status() != StatusCode::OK {
            missing += 1;
            continue;
        }
        let stored: Value = r.json().await.expect("json");
        assert_eq!(&stored, order, "the order is intact");
    }
    server.kill().expect("kill");
    let _ = server.wait();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged orders were lost",
        acknowledged.len()
    );
}

use std::future::pending;

use ordo::app::create_key;
use ordo::{App, Config};
use ordo_domain::Role;
use ordo_store::{DynStore, Tenant};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    /// An owner key of the tenant `shop`.
    pub key: String,
    pub tenant: Tenant,
    pub store: DynStore,
    pub db: TestDb,
}

/// The PostgreSQL server the suite runs against, when it does: a URL
/// whose user may create databases (`./scripts/test` sets it).
pub fn postgres_server() -> Option<String> {
    std::env::var("TEST_ORDO_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database for one test: the embedded one in a temporary
/// directory, or, when the suite runs on PostgreSQL, a new database there.
pub struct TestDb {
    pub dir: TempDir,
    pub url: Option<String>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match postgres_server() {
            Some(server) => Some(create_database(&server).await),
            None => None,
        };
        TestDb { dir, url }
    }

    /// For tests that are not async.
    pub fn blocking() -> TestDb {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(TestDb::new())
    }

    pub fn config(&self) -> Config {
        let mut config = Config {
            data_dir: self.dir.path().to_path_buf(),
            database_url: self.url.clone(),
            ..Config::default()
        };
        // Background work runs promptly, so tests can wait for it.
        config.jobs.poll_interval_ms = 50;
        config
    }

    /// The command-line flags that point `ordo` at this database.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--data-dir".to_string(),
            self.dir.path().display().to_string(),
        ];
        if let Some(url) = &self.url {
            args.extend(["--database-url".to_string(), url.clone()]);
        }
        args
    }
}

/// A test's PostgreSQL database goes when the test does, so the ~200
/// databases of a run do not pile up on the disk.
impl Drop for TestDb {
    fn drop(&mut self) {
        let (Some(server), Some(url)) = (postgres_server(), self.url.as_deref()) else {
            return;
        };
        let name = url.rsplit('/').next().and_then(|n| n.split('?').next());
        let Some(name) = name.filter(|n| n.starts_with("ordo_test_")) else {
            return;
        };
        // Connections the test's server still holds are ended (FORCE).
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Drop runs inside the test's runtime, which cannot be blocked
        // on: the statement gets a thread and a runtime of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&server, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

/// Creates an empty database on the server and returns its URL.
pub async fn create_database(server: &str) -> String {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL server (TEST_ORDO_POSTGRES)");
    tokio::spawn(connection);
    let name = format!("ordo_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let (scheme, rest) = server.split_once("://").expect("a postgres:// URL");
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, format!("?{q}")),
        None => (rest, String::new()),
    };
    let host = authority.split_once('/').map_or(authority, |(h, _)| h);
    format!("{scheme}://{host}/{name}{query}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDb::new().await).await
}

pub async fn spawn_app_on(db: TestDb) -> TestApp {
    spawn_app_prepared(db, |_, _| async {}).await
}

/// Like [`spawn_app_on`], running `prepare` on the store (with the tenant
/// `shop`) before the server and its background work start.
pub async fn spawn_app_prepared<F, Fut>(db: TestDb, prepare: F) -> TestApp
where
    F: FnOnce(DynStore, Tenant) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let config = db.config();
    start_app(db, config, prepare).await
}

/// A fresh app whose configuration `configure` changes first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await;
    let mut config = db.config();
    configure(&mut config);
    start_app(db, config, |_, _| async {}).await
}

async fn start_app<F, Fut>(db: TestDb, config: Config, prepare: F) -> TestApp
where
    F: FnOnce(DynStore, Tenant) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let app = App::open(config).await.expect("open");
    let store = app.store();
    let tenant = store.create_tenant("shop", "Shop").await.expect("tenant");
    let (_, key) = create_key(store.as_ref(), &tenant, Role::Owner, "test owner")
        .await
        .expect("key");
    prepare(store.clone(), tenant.clone()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(app.serve(listener, pending()));
    TestApp {
        base: format!("http://{addr}"),
        client: Client::new(),
        key,
        tenant,
        store,
        db,
    }
}

/// Seed 000's order, in this API's shape.
pub fn order_body() -> Value {
    json!({
        "currency": "NGN",
        "buyer": {"name": "Ada Obi", "phone": "+2348012345678", "channel_id": "wa_2348012345678"},
        "items": [{"name": "Product A", "quantity": 2, "unit_price": "5000.00", "sku": "SKU-A", "attributes": {"size": "M"}}],
        "notes": "Delivery by 5pm",
        "external_ids": {"com.acme.order-id": "WEB-2024-123456"},
        "channel": "whatsapp"
    })
}

/// An order body without external ids, so any number can be created.
pub fn plain_order() -> Value {
    let mut body = order_body();
    body.as_object_mut().expect("object").remove("external_ids");
    body
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new key of this tenant with `role`.
    pub async fn key_for(&self, role: Role) -> String {
        create_key(self.store.as_ref(), &self.tenant, role, "test")
            .await
            .expect("key")
            .1
    }

    /// An owner key of a second tenant.
    pub async fn other_tenant_key(&self) -> String {
        let other = self
            .store
            .create_tenant("other", "Other")
            .await
            .expect("tenant");
        create_key(self.store.as_ref(), &other, Role::Owner, "other")
            .await
            .expect("key")
            .1
    }

    pub async fn post_as(&self, key: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(&self.key, path, body).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_as(&self.key, path).await
    }

    /// GET with the owner key, the answer's JSON.
    pub async fn json(&self, path: &str) -> Value {
        self.get(path).await.json().await.expect("json")
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Records a payment of `order`'s whole total (by bank transfer) and
    /// returns the order as the answer shows it, asserting a 201.
    pub async fn pay_in_full(&self, order: &Value) -> Value {
        let id = order["id"].as_str().expect("an order id");
        let r = self
            .post(
                &format!("/v1/orders/{id}/payments"),
                &json!({"method": "bank_transfer", "amount": order["total"], "currency": order["currency"]}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "payment refused");
        r.json().await.expect("json")
    }

    pub async fn put(&self, path: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Ships every unit of confirmed order `id` not yet in a shipment, in
    /// one shipment, and delivers it; returns the order.
    pub async fn deliver_all(&self, id: &str) -> Value {
        let r = self
            .post(&format!("/v1/orders/{id}/shipments"), &json!({}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "shipment refused");
        let shipment: Value = r.json().await.expect("json");
        let sid = shipment["id"].as_str().expect("id");
        for action in ["ship", "deliver"] {
            let r = self
                .post(&format!("/v1/shipments/{sid}/{action}"), &json!({}))
                .await;
            assert_eq!(r.status(), StatusCode::OK, "{action} refused");
        }
        self.json(&format!("/v1/orders/{id}")).await
    }

    /// Creates an order and returns it, asserting a 201.
    pub async fn create(&self, body: &Value) -> Value {
        let r = self.post("/v1/orders", body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create failed");
        r.json().await.expect("json")
    }

    /// Makes a webhook endpoint and returns it as the API showed it (with
    /// its secret).
    pub async fn subscribe(&self, body: &Value) -> Value {
        let r = self.post("/v1/webhook-endpoints", body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "subscribe failed");
        r.json().await.expect("json")
    }

    pub async fn create_as(&self, key: &str, body: &Value) -> Value {
        let r = self.post_as(key, "/v1/orders", body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }
}

/// Reads a problem+json body, checking its content type.
/// Asserts that problem `p`'s detail says `text`.
pub fn says(p: &Value, text: &str) {
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(text), "{text:?} not in {p}");
}

pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let body: Value = r.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("/problems/")));
    body
}

/// The fields named by a validation problem.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|f| f["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs an `ordo` admin command on `db` and returns its stdout, trimmed.
pub fn ordo(db: &TestDb, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
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

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `ordo serve` on `db` and waits until it answers.
pub async fn start(db: &TestDb, port: u16) -> std::process::Child {
    start_with(db, port, &[]).await
}

/// Starts `ordo serve` on `db` with extra `ORDO_*` settings.
// The child is returned to the caller, which kills and reaps it.
#[allow(clippy::zombie_processes)]
pub async fn start_with(db: &TestDb, port: u16, env: &[(&str, &str)]) -> std::process::Child {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .envs(env.iter().copied())
        .env("ORDO_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ordo serve");
    let client = Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
        {
            if r.status() == StatusCode::OK {
                return child;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("ordo did not start");
}

/// A webhook receiver on 127.0.0.1 that answers 500 to its first
/// `failures` requests and 200 after, and keeps every request.
pub struct Receiver {
    pub url: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>,
    failures: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    pub async fn start(failures: usize) -> Receiver {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let seen: std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>> =
            std::sync::Arc::default();
        let remaining = std::sync::Arc::new(AtomicUsize::new(failures));
        let count = std::sync::Arc::clone(&remaining);
        let record = std::sync::Arc::clone(&seen);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (record, count) = (
                    std::sync::Arc::clone(&record),
                    std::sync::Arc::clone(&count),
                );
                async move {
                    record.lock().unwrap().push((headers, body));
                    let failing = count
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "not now")
                    } else {
                        (axum::http::StatusCode::OK, "thanks")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url,
            seen,
            failures: remaining,
        }
    }

    /// From now on, answer 200.
    pub fn recover(&self) {
        self.failures.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requests(&self) -> Vec<(axum::http::HeaderMap, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Checks `Ordo-Signature` the way a receiver would.
pub fn verify(secret: &str, header: &str, body: &str) -> bool {
    use hmac::Mac;
    let mut t = "";
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v,
            Some(("v1", v)) => signatures.push(v),
            _ => return false,
        }
    }
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    signatures.contains(&expected.as_str())
}

/// A receiver that never answers well: `answer` is the status it gives,
/// or `None` to hold every request for `stall` without answering.
pub async fn bad_receiver(
    answer: Option<u16>,
    stall: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let counted = std::sync::Arc::clone(&counted);
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if answer.is_none() {
                    tokio::time::sleep(stall).await;
                }
                let code = axum::http::StatusCode::from_u16(answer.unwrap_or(200)).unwrap();
                (code, "gone")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// A receiver that accepts each connection and closes it at once.
pub async fn closing_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&hits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    (url, hits)
}

/// Reads with `read` until `done` holds or 15 s pass, and returns the last
/// read, for the caller to assert on (for what background work settles).
pub async fn settle<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let value = read().await;
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

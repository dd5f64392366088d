//! The load loops: N tasks, one connection each, sending requests back to
//! back and recording every latency.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::{Method, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::http::{Conn, Target};

/// The list query of the `list` phase.
pub const LIST_PATH: &str = "/v1/orders?status=pending&channel=whatsapp&sort=-created_at&limit=50";
/// The page size the list query asks for.
pub const LIST_LIMIT: usize = 50;

/// What the tasks of a phase send.
pub enum Work {
    /// POST /v1/orders; `seq` numbers the orders of this run.
    Create { run_id: String, seq: AtomicU64 },
    /// POST `path` (a storefront's checkout) with a guest's cart; `seq`
    /// numbers the carts.
    Checkout { path: String, seq: AtomicU64 },
    /// POST /v1/orders with the same body every time.
    CreateSame { body: Bytes },
    /// POST /v1/orders/{id}/confirm for each id once, in turn.
    Confirm {
        ids: Arc<Vec<String>>,
        next: AtomicUsize,
    },
    /// GET /v1/orders/{id} for random ids.
    Get { ids: Arc<Vec<String>> },
    /// The list query.
    List,
    /// POST /v1/orders/preview with the same cart every time.
    Preview { body: Bytes },
    /// GET /v1/orders/{id} for each id once.
    Verify {
        ids: Arc<Vec<String>>,
        next: AtomicUsize,
    },
}

/// When the tasks stop.
pub struct Limits {
    pub deadline: Instant,
    /// Stop once this many requests succeeded (seed).
    pub until_ok: Option<u64>,
    /// Stop once this many requests failed.
    pub max_errors: Option<u64>,
}

/// Counters shared by the tasks, for progress lines and stop conditions.
#[derive(Default)]
pub struct Shared {
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    pub stop: AtomicBool,
}

/// What the tasks of a phase saw, merged.
pub struct Outcome {
    /// Latency of every answered request, in microseconds.
    pub hist: Histogram<u64>,
    pub ok: u64,
    /// Non-2xx answers, and 2xx answers we could not use.
    pub bad_status: u64,
    /// Failed connects, broken connections, unreadable responses.
    pub transport: u64,
    /// List pages with fewer than `LIST_LIMIT` orders.
    pub short_pages: u64,
    /// Verify: ids answered with 404.
    pub missing: Vec<String>,
    /// Create: ids of the orders created.
    pub ids: Vec<String>,
    pub first_error: Option<String>,
    pub reconnects: u64,
    pub elapsed: Duration,
}

impl Outcome {
    fn new(hist: Histogram<u64>) -> Outcome {
        Outcome {
            hist,
            ok: 0,
            bad_status: 0,
            transport: 0,
            short_pages: 0,
            missing: Vec::new(),
            ids: Vec::new(),
            first_error: None,
            reconnects: 0,
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: Outcome) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        self.bad_status += other.bad_status;
        self.transport += other.transport;
        self.short_pages += other.short_pages;
        self.missing.extend(other.missing);
        if self.ids.is_empty() {
            self.ids = other.ids;
        } else {
            self.ids.extend(other.ids);
        }
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.reconnects += other.reconnects;
    }

    pub fn errors(&self) -> u64 {
        self.bad_status + self.transport
    }

    fn note_error(&mut self, shared: &Shared, what: String) {
        shared.errors.fetch_add(1, Relaxed);
        if self.first_error.is_none() {
            self.first_error = Some(what);
        }
    }
}

/// Latencies in microseconds, from 1 µs to 10 min at 3 significant digits.
fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Runs `connections` tasks until `limits` says stop.
pub async fn run(
    target: Arc<Target>,
    work: Arc<Work>,
    connections: usize,
    limits: Arc<Limits>,
    shared: Arc<Shared>,
) -> anyhow::Result<Outcome> {
    let empty = new_histogram()?;
    let start = Instant::now();
    let seed = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos(),
    );
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            tokio::spawn(worker(
                target.clone(),
                work.clone(),
                limits.clone(),
                shared.clone(),
                empty.clone(),
                seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ))
        })
        .collect();
    let mut total = Outcome::new(empty);
    for task in tasks {
        total.merge(task.await?);
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

struct Spec {
    method: Method,
    path: String,
    body: Option<Bytes>,
}

#[derive(Deserialize)]
struct Created {
    /// A checkout answers with `order_id`.
    #[serde(alias = "order_id")]
    id: String,
}

#[derive(Deserialize)]
struct Page {
    data: Vec<IgnoredAny>,
}

async fn worker(
    target: Arc<Target>,
    work: Arc<Work>,
    limits: Arc<Limits>,
    shared: Arc<Shared>,
    hist: Histogram<u64>,
    seed: u64,
) -> Outcome {
    let mut out = Outcome::new(hist);
    let mut conn = Conn::new(target.clone());
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        if shared.stop.load(Relaxed) || Instant::now() >= limits.deadline {
            break;
        }
        if limits
            .until_ok
            .is_some_and(|n| shared.ok.load(Relaxed) >= n)
        {
            break;
        }
        if limits
            .max_errors
            .is_some_and(|n| shared.errors.load(Relaxed) >= n)
        {
            shared.stop.store(true, Relaxed);
            break;
        }
        let (spec, attempts) = match &*work {
            Work::Create { run_id, seq } => {
                let n = seq.fetch_add(1, Relaxed);
                let spec = Spec {
                    method: Method::POST,
                    path: "/v1/orders".to_string(),
                    body: Some(order_body(run_id, n)),
                };
                (spec, 1)
            }
            Work::Checkout { path, seq } => {
                let n = seq.fetch_add(1, Relaxed);
                let spec = Spec {
                    method: Method::POST,
                    path: path.clone(),
                    body: Some(checkout_body(n)),
                };
                (spec, 1)
            }
            Work::CreateSame { body } => {
                let spec = Spec {
                    method: Method::POST,
                    path: "/v1/orders".to_string(),
                    body: Some(body.clone()),
                };
                (spec, 1)
            }
            Work::Confirm { ids, next } => {
                let Some(id) = ids.get(next.fetch_add(1, Relaxed)) else {
                    break;
                };
                let spec = Spec {
                    method: Method::POST,
                    path: format!("/v1/orders/{id}/confirm"),
                    body: Some(Bytes::from_static(b"{}")),
                };
                (spec, 1)
            }
            Work::Get { ids } => {
                if ids.is_empty() {
                    break;
                }
                let id = &ids[rng.gen_range(0..ids.len())];
                let spec = Spec {
                    method: Method::GET,
                    path: format!("/v1/orders/{id}"),
                    body: None,
                };
                (spec, 1)
            }
            Work::Preview { body } => {
                let spec = Spec {
                    method: Method::POST,
                    path: "/v1/orders/preview".to_string(),
                    body: Some(body.clone()),
                };
                (spec, 1)
            }
            Work::List => {
                let spec = Spec {
                    method: Method::GET,
                    path: LIST_PATH.to_string(),
                    body: None,
                };
                (spec, 1)
            }
            Work::Verify { ids, next } => {
                let Some(id) = ids.get(next.fetch_add(1, Relaxed)) else {
                    break;
                };
                let spec = Spec {
                    method: Method::GET,
                    path: format!("/v1/orders/{id}"),
                    body: None,
                };
                // An id must not go unchecked because a connection broke.
                (spec, 3)
            }
        };

        let mut answer = None;
        for _ in 0..attempts {
            match attempt(&mut conn, &target, &spec, &mut out.hist).await {
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(e) => {
                    out.transport += 1;
                    out.note_error(&shared, format!("transport: {e:#}"));
                    // Do not spin when the server is gone.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        let Some((status, body)) = answer else {
            continue;
        };

        match &*work {
            Work::Create { .. } | Work::Checkout { .. } | Work::CreateSame { .. }
                if status.is_success() =>
            {
                match serde_json::from_slice::<Created>(&body) {
                    Ok(created) => {
                        out.ids.push(created.id);
                        out.ok += 1;
                        shared.ok.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        out.bad_status += 1;
                        out.note_error(&shared, format!("{status} without an id ({e})"));
                    }
                }
            }
            Work::List if status.is_success() => match serde_json::from_slice::<Page>(&body) {
                Ok(page) => {
                    if page.data.len() < LIST_LIMIT {
                        out.short_pages += 1;
                    }
                    out.ok += 1;
                    shared.ok.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    out.bad_status += 1;
                    out.note_error(&shared, format!("{status} with no page ({e})"));
                }
            },
            Work::Verify { .. } if status == StatusCode::NOT_FOUND => {
                let id = spec.path.rsplit('/').next().unwrap_or_default().to_string();
                out.missing.push(id);
                shared.ok.fetch_add(1, Relaxed);
            }
            _ if status.is_success() => {
                out.ok += 1;
                shared.ok.fetch_add(1, Relaxed);
            }
            _ => {
                out.bad_status += 1;
                out.note_error(
                    &shared,
                    format!(
                        "{} {} -> {status}: {}",
                        spec.method,
                        spec.path,
                        snippet(&body)
                    ),
                );
            }
        }
    }
    out.reconnects = conn.reconnects;
    out
}

/// One request; the latency is recorded when an answer came.
async fn attempt(
    conn: &mut Conn,
    target: &Target,
    spec: &Spec,
    hist: &mut Histogram<u64>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    conn.ready().await?;
    let req = target.request(spec.method.clone(), &spec.path, spec.body.clone())?;
    let start = Instant::now();
    let answer = conn.send(req).await?;
    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(micros.max(1));
    Ok(answer)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

const FIRST: [&str; 8] = [
    "Ada", "Chinedu", "Ngozi", "Tunde", "Amaka", "Bola", "Emeka", "Zainab",
];
const LAST: [&str; 8] = [
    "Obi", "Okafor", "Adeyemi", "Bello", "Eze", "Nwosu", "Balogun", "Ibrahim",
];
const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
const COLOURS: [&str; 4] = ["black", "white", "red", "navy"];

/// The body of order `n` of run `run_id`: three lines, about 500 bytes,
/// the channel rotating whatsapp, instagram, web.
pub fn order_body(run_id: &str, n: u64) -> Bytes {
    let first = FIRST[(n % 8) as usize];
    let last = LAST[((n / 8) % 8) as usize];
    let digits = format!("234801{:07}", n % 10_000_000);
    let (channel, contact) = match n % 3 {
        0 => (
            "whatsapp",
            format!(r#""phone":"+{digits}","channel_id":"wa_{digits}""#),
        ),
        1 => (
            "instagram",
            format!(
                r#""phone":"+{digits}","channel_id":"ig_178414{:08}""#,
                n % 100_000_000
            ),
        ),
        _ => (
            "web",
            format!(
                r#""phone":"+{digits}","email":"{}.{}{n}@example.com""#,
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            ),
        ),
    };
    let size = SIZES[(n % 4) as usize];
    let colour = COLOURS[((n / 4) % 4) as usize];
    let q = 1 + n % 3;
    let price = 1000 + (n % 50) * 250;
    let body = format!(
        concat!(
            r#"{{"currency":"NGN","buyer":{{"name":"{first} {last}",{contact}}},"#,
            r#""items":["#,
            r#"{{"sku":"SKU-TEE-{size}","name":"Cotton T-shirt","quantity":{q},"unit_price":"{price}.00","attributes":{{"size":"{size}","colour":"{colour}"}}}},"#,
            r#"{{"sku":"SKU-CAP","name":"Baseball cap","quantity":1,"unit_price":"3500.00","attributes":{{"colour":"{colour}"}}}},"#,
            r#"{{"sku":"SKU-BAG-{n3}","name":"Tote bag","quantity":2,"unit_price":"2750.50"}}"#,
            r#"],"notes":"Delivery by 5pm, call on arrival","#,
            r#""external_ids":{{"com.bench.order-id":"{run_id}-{n}"}},"channel":"{channel}"}}"#
        ),
        first = first,
        last = last,
        contact = contact,
        size = size,
        colour = colour,
        q = q,
        price = price,
        n3 = n % 3,
        run_id = run_id,
        n = n,
        channel = channel,
    );
    Bytes::from(body)
}

/// The products a guest's cart names: a T-shirt in sizes and colours, a
/// cap in colours, a bag; stock counted, more than any run sells.
const STOREFRONT_PRODUCTS: [&str; 3] = [
    r#"{"sku":"BENCH-TEE","name":"Cotton T-shirt","currency":"NGN","price":"5000.00","attributes":{"size":["S","M","L","XL"],"colour":["black","white","red","navy"]},"on_hand":1000000000}"#,
    r#"{"sku":"BENCH-CAP","name":"Baseball cap","currency":"NGN","price":"3500.00","attributes":{"colour":["black","white","red","navy"]},"on_hand":1000000000}"#,
    r#"{"sku":"BENCH-BAG","name":"Tote bag","currency":"NGN","price":"2750.50","on_hand":1000000000}"#,
];

/// The SKU the confirm phase's orders all compete for.
pub const HOT_SKU: &str = "BENCH-HOT";

/// Opens the tenant's storefront (with a WhatsApp number, so every answer
/// carries the link) and adds the products carts name.
pub async fn prepare_storefront(target: Arc<Target>) -> anyhow::Result<()> {
    let settings =
        serde_json::json!({"storefront_enabled": true, "whatsapp_number": "+2348012345678"});
    call_json(target.clone(), Method::PATCH, "/v1/settings", &settings).await?;
    for product in STOREFRONT_PRODUCTS {
        ensure_product(target.clone(), serde_json::from_str(product)?).await?;
    }
    Ok(())
}

/// Adds the hot product (as many units as a product may have) and returns
/// the body of an order for one of them.
pub async fn prepare_hot_sku(target: Arc<Target>) -> anyhow::Result<Bytes> {
    let product = serde_json::json!({"sku": HOT_SKU, "name": "Limited drop", "currency": "NGN", "price": "15000.00", "on_hand": 1_000_000_000});
    ensure_product(target, product).await?;
    Ok(Bytes::from(format!(
        r#"{{"currency":"NGN","buyer":{{"name":"Ada Obi","phone":"+2348012345678"}},"items":[{{"sku":"{HOT_SKU}","quantity":1}}],"channel":"web"}}"#
    )))
}

/// Points the tenant's price, tax and customer providers at `url` (the
/// benchmark's own, see `pricing.rs`), or removes them.
pub async fn set_pricing_providers(target: Arc<Target>, url: Option<&str>) -> anyhow::Result<()> {
    let endpoint = |role: &str| {
        url.map(|u| serde_json::json!({"base_url": format!("{u}/{role}"), "secret": "bench-pricing-secret-01"}))
    };
    let settings = serde_json::json!({"pricing_providers": {
        "price": endpoint("price"), "tax": endpoint("tax"), "customer": endpoint("customer"),
        "deadline_ms": 500, "on_failure": "fail"
    }});
    let mut conn = Conn::new(target);
    let (status, answer) = conn
        .call(
            Method::PATCH,
            "/v1/settings",
            Some(Bytes::from(serde_json::to_vec(&settings)?)),
        )
        .await?;
    if !status.is_success() {
        anyhow::bail!("PATCH /v1/settings -> {status}: {}", snippet(&answer));
    }
    Ok(())
}

/// The preview phase's cart: three free-text lines, a buyer and an address.
pub fn preview_body() -> Bytes {
    Bytes::from_static(
        br#"{"currency":"NGN","buyer":{"name":"Ada Obi","phone":"+2348012345678"},"items":[{"name":"Ankara dress","quantity":2,"unit_price":"15000.00"},{"name":"Head tie","quantity":1,"unit_price":"3500.00"},{"name":"Gift card","quantity":1,"unit_price":"5000.00"}],"shipping_address":{"line1":"12 Allen Avenue","city":"Ikeja","region":"Lagos","country":"NG"}}"#,
    )
}

/// Adds a product unless its SKU exists (a server of your own, run twice).
async fn ensure_product(target: Arc<Target>, product: serde_json::Value) -> anyhow::Result<()> {
    let mut conn = Conn::new(target);
    let (status, answer) = conn
        .call(
            Method::POST,
            "/v1/products",
            Some(Bytes::from(serde_json::to_vec(&product)?)),
        )
        .await?;
    if !status.is_success() && status != StatusCode::CONFLICT {
        anyhow::bail!("POST /v1/products -> {status}: {}", snippet(&answer));
    }
    Ok(())
}

/// Cart `n`: three lines of the storefront's products, a buyer, an
/// address and a note, about 400 bytes.
pub fn checkout_body(n: u64) -> Bytes {
    let first = FIRST[(n % 8) as usize];
    let last = LAST[((n / 8) % 8) as usize];
    let size = SIZES[(n % 4) as usize];
    let colour = COLOURS[((n / 4) % 4) as usize];
    let q = 1 + n % 3;
    Bytes::from(format!(
        concat!(
            r#"{{"buyer":{{"name":"{first} {last}","phone":"+234801{phone:07}"}},"#,
            r#""items":[{{"sku":"BENCH-TEE","quantity":{q},"attributes":{{"size":"{size}","colour":"{colour}"}}}},"#,
            r#"{{"sku":"BENCH-CAP","quantity":1,"attributes":{{"colour":"{colour}"}}}},"#,
            r#"{{"sku":"BENCH-BAG","quantity":2}}],"#,
            r#""shipping_address":{{"line1":"12 Allen Avenue","city":"Ikeja","region":"Lagos","country":"NG"}},"#,
            r#""notes":"Please call on arrival"}}"#
        ),
        first = first,
        last = last,
        phone = n % 10_000_000,
        q = q,
        size = size,
        colour = colour,
    ))
}

/// Subscribes `url` to every event; returns the endpoint's id.
pub async fn subscribe(target: Arc<Target>, url: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "url": url });
    let answer = call_json(target, Method::POST, "/v1/webhook-endpoints", &body)
        .await
        .map_err(|e| {
            anyhow::anyhow!("{e} (a server of your own needs webhooks.allow_private_urls)")
        })?;
    answer["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the new endpoint has no id: {answer}"))
}

/// Sends the endpoint's failed deliveries again now (the bulk retry an
/// operator makes after a receiver's outage); returns how many.
pub async fn retry_failed(target: Arc<Target>, endpoint: &str) -> anyhow::Result<u64> {
    let body = serde_json::json!({ "endpoint_id": endpoint, "statuses": ["failed"] });
    let answer = call_json(target, Method::POST, "/v1/webhook-deliveries/retry", &body).await?;
    answer["retried"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no count of retried deliveries: {answer}"))
}

async fn call_json(
    target: Arc<Target>,
    method: Method,
    path: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let mut conn = Conn::new(target);
    let (status, answer) = conn
        .call(
            method.clone(),
            path,
            Some(Bytes::from(serde_json::to_vec(body)?)),
        )
        .await?;
    if !status.is_success() {
        anyhow::bail!("{method} {path} -> {status}: {}", snippet(&answer));
    }
    Ok(serde_json::from_slice(&answer)?)
}

/// Counts the server's orders (GET /v1/orders/count).
pub async fn count_orders(target: Arc<Target>, query: &str) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct Count {
        count: u64,
    }
    let mut conn = Conn::new(target);
    let path = if query.is_empty() {
        "/v1/orders/count".to_string()
    } else {
        format!("/v1/orders/count?{query}")
    };
    let (status, body) = conn.call(Method::GET, &path, None).await?;
    if !status.is_success() {
        anyhow::bail!("GET {path} -> {status}: {}", snippet(&body));
    }
    Ok(serde_json::from_slice::<Count>(&body)?.count)
}

/// Up to `max` ids of the newest orders, for `get` when this run created none.
pub async fn list_ids(target: Arc<Target>, max: usize) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Item {
        id: String,
    }
    #[derive(Deserialize)]
    struct IdPage {
        data: Vec<Item>,
        next_cursor: Option<String>,
        #[serde(default)]
        has_more: bool,
    }
    let mut conn = Conn::new(target);
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    while ids.len() < max {
        let mut path = "/v1/orders?limit=200".to_string();
        if let Some(c) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&crate::http::encode_query_value(c));
        }
        let (status, body) = conn.call(Method::GET, &path, None).await?;
        if !status.is_success() {
            anyhow::bail!("GET {path} -> {status}: {}", snippet(&body));
        }
        let page: IdPage = serde_json::from_slice(&body)?;
        ids.extend(page.data.into_iter().map(|i| i.id));
        match page.next_cursor {
            Some(c) if page.has_more => cursor = Some(c),
            _ => break,
        }
    }
    ids.truncate(max);
    Ok(ids)
}

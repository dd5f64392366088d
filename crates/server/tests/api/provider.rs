//! The payment provider client against a fake provider on 127.0.0.1 whose
//! answers, latency and failures each test scripts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ordo::provider::{
    Charge, CircuitState, Policy, Provider, ProviderError, Providers, RefundCall,
};
use ordo_domain::EntryState;
use serde_json::{json, Value};

/// How the fake answers one call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with the payment (or refund) in this state.
    Ok(&'static str),
    /// This status, with a short body.
    Status(u16),
    /// The reply, after a wait.
    Slow(Duration, Box<Reply>),
}

/// A call the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub key: Option<String>,
    pub authorization: Option<String>,
    pub body: Value,
}

/// Webhooks the fake sends after each payment or refund it answers.
#[derive(Debug, Clone)]
struct Notify {
    url: String,
    secret: String,
    /// (event number, status), in the order sent: a number sent twice is
    /// a duplicate, a lower number after a higher one is out of order.
    plan: Vec<(u32, &'static str)>,
}

#[derive(Default)]
struct Fake {
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Option<Reply>>,
    seen: Mutex<Vec<Seen>>,
    /// Payment ids by idempotency key: the same key is the same payment.
    ids: Mutex<HashMap<String, String>>,
    notify: Mutex<Option<Notify>>,
    /// What ordo answered to each webhook sent (its `outcome`, or the status).
    outcomes: Mutex<Vec<String>>,
}

/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as a provider signs.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A payment provider on 127.0.0.1 speaking seed 001's contract.
#[derive(Clone)]
pub struct FakeProvider {
    pub url: String,
    fake: Arc<Fake>,
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let fake = Arc::new(Fake::default());
        let app = Router::new()
            .route("/api/v1/payments", post(create))
            .route("/api/v1/payments/refund", post(create))
            .route("/api/v1/payments/order/{id}", get(by_order))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider { url, fake }
    }

    /// The next answers, in order; then [`FakeProvider::always`]'s.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) {
        self.fake.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is used up (by default `Ok("succeeded")`).
    pub fn always(&self, reply: Reply) {
        *self.fake.default.lock().unwrap() = Some(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.fake.seen.lock().unwrap().clone()
    }

    /// After answering each payment or refund, send these webhooks about
    /// it to `url`, signed with `secret`: `(event number, status)` in the
    /// order given (a number repeated is a duplicate delivery).
    pub fn notify(&self, url: String, secret: &str, plan: Vec<(u32, &'static str)>) {
        *self.fake.notify.lock().unwrap() = Some(Notify {
            url,
            secret: secret.into(),
            plan,
        });
    }

    /// What ordo answered to the webhooks sent so far.
    pub fn outcomes(&self) -> Vec<String> {
        self.fake.outcomes.lock().unwrap().clone()
    }

    pub fn provider(&self) -> Provider {
        Provider {
            base_url: self.url.clone(),
            secret: "psk_test".into(),
        }
    }
}

fn next_reply(fake: &Fake) -> Reply {
    fake.script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| fake.default.lock().unwrap().clone())
        .unwrap_or(Reply::Ok("succeeded"))
}

async fn answer(reply: Reply, id: String) -> Response {
    let mut reply = reply;
    while let Reply::Slow(wait, inner) = reply {
        tokio::time::sleep(wait).await;
        reply = *inner;
    }
    match reply {
        Reply::Ok(status) => Json(json!({"id": id, "status": status})).into_response(),
        Reply::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            format!("fake provider says {code}"),
        )
            .into_response(),
        Reply::Slow(..) => unreachable!(),
    }
}

async fn create(
    State(fake): State<Arc<Fake>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_string());
    fake.seen.lock().unwrap().push(Seen {
        path: uri.path().to_string(),
        key: key.clone(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    let id = {
        let mut ids = fake.ids.lock().unwrap();
        let n = ids.len();
        ids.entry(key.unwrap_or_default())
            .or_insert_with(|| format!("pp_{n}"))
            .clone()
    };
    let reply = next_reply(&fake);
    let notify = fake.notify.lock().unwrap().clone();
    if let (Some(notify), Ok(body)) = (notify, serde_json::from_str::<Value>(&body)) {
        let kind = if uri.path().ends_with("/refund") {
            "refund"
        } else {
            "payment"
        };
        tokio::spawn(send_webhooks(fake.clone(), notify, kind, id.clone(), body));
    }
    answer(reply, id).await
}

/// Sends the planned webhooks about `id` (shortly after its answer).
async fn send_webhooks(fake: Arc<Fake>, notify: Notify, kind: &str, id: String, call: Value) {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = reqwest::Client::new();
    for (n, status) in notify.plan {
        let event = json!({
            "id": format!("evt_{id}_{n}"),
            "type": format!("{kind}.{status}"),
            "data": {"id": id, "order_id": call["order_id"], "reference": call["reference"], "status": status},
        });
        let body = serde_json::to_vec(&event).unwrap();
        let r = client
            .post(&notify.url)
            .header("content-type", "application/json")
            .header("payment-signature", sign(&notify.secret, now_secs(), &body))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        let outcome = answer["outcome"]
            .as_str()
            .map_or_else(|| status.to_string(), str::to_string);
        fake.outcomes.lock().unwrap().push(outcome);
    }
}

async fn by_order(State(fake): State<Arc<Fake>>, Path(id): Path<String>) -> Response {
    fake.seen.lock().unwrap().push(Seen {
        path: format!("/api/v1/payments/order/{id}"),
        key: None,
        authorization: None,
        body: Value::Null,
    });
    if id == "ord_unknown" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let reply = next_reply(&fake);
    answer(reply, format!("pp_of_{id}")).await
}

fn policy() -> Policy {
    Policy {
        connect_timeout: Duration::from_millis(500),
        timeout: Duration::from_millis(300),
        attempts: 3,
        backoff: Duration::from_millis(20),
        failures_to_open: 5,
        open_for: Duration::from_millis(400),
    }
}

const CHARGE: Charge<'static> = Charge {
    order_id: "ord_1",
    reference: "ORD-7K3Q-X2MB",
    amount: "10000.00",
    currency: "NGN",
};

#[tokio::test]
async fn transient_failures_are_retried_under_one_idempotency_key() {
    let fake = FakeProvider::start().await;
    fake.then([Reply::Status(503), Reply::Status(502), Reply::Ok("pending")]);
    let providers = Providers::new(policy(), true);
    let answer = providers
        .create_payment(&fake.provider(), &CHARGE, "pay_01")
        .await
        .unwrap();
    assert_eq!(answer.status, EntryState::Pending);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.key.as_deref() == Some("pay_01")));
    assert!(seen
        .iter()
        .all(|s| answer.id == "pp_0" && s.path == "/api/v1/payments"));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer psk_test"));
    assert_eq!(
        seen[0].body,
        json!({"order_id": "ord_1", "reference": "ORD-7K3Q-X2MB", "amount": "10000.00", "currency": "NGN"})
    );

    // Failing every attempt says how many were made.
    fake.always(Reply::Status(500));
    let err = providers
        .refund(
            &fake.provider(),
            &RefundCall {
                payment_id: "pp_0",
                order_id: "ord_1",
                reference: "ref_1",
                amount: "1.00",
                currency: "NGN",
            },
            "ref_01",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Unavailable {
            attempts: 3,
            status: 500
        }
    );
    assert!(err.is_transient());
    assert_eq!(fake.seen().len(), 6);
}

#[tokio::test]
async fn refusals_are_not_retried_and_unknown_orders_are_none() {
    let fake = FakeProvider::start().await;
    fake.then([Reply::Status(422)]);
    let providers = Providers::new(policy(), true);
    let err = providers
        .create_payment(&fake.provider(), &CHARGE, "pay_02")
        .await
        .unwrap_err();
    assert!(matches!(&err, ProviderError::Refused { status: 422, body } if body.contains("422")));
    assert!(!err.is_transient());
    assert_eq!(fake.seen().len(), 1, "a 4xx is not retried");
    assert_eq!(
        providers
            .payment_for_order(&fake.provider(), "ord_unknown")
            .await,
        Ok(None)
    );
    let found = providers
        .payment_for_order(&fake.provider(), "ord_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id.as_str(), found.status),
        ("pp_of_ord_1", EntryState::Succeeded)
    );
}

#[tokio::test]
async fn a_slow_provider_times_out_and_a_missing_one_cannot_be_reached() {
    let fake = FakeProvider::start().await;
    let slow = |r| Reply::Slow(Duration::from_secs(2), Box::new(r));
    fake.then([slow(Reply::Ok("succeeded")), Reply::Ok("succeeded")]);
    let providers = Providers::new(policy(), true);
    let started = Instant::now();
    let answer = providers
        .create_payment(&fake.provider(), &CHARGE, "pay_03")
        .await
        .unwrap();
    assert_eq!(answer.status, EntryState::Succeeded);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the slow attempt was abandoned"
    );
    assert_eq!(fake.seen().len(), 2);

    fake.always(slow(Reply::Ok("succeeded")));
    let started = Instant::now();
    let err = providers
        .create_payment(&fake.provider(), &CHARGE, "pay_04")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Transport {
            attempts: 3,
            error: "timed out".into()
        }
    );
    // Three attempts cut at 300 ms and two short waits (about 1 s), where
    // three answers of 2 s would take 6 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = Provider {
        base_url: format!("http://{closed}"),
        secret: "x".into(),
    };
    let err = providers
        .create_payment(&nowhere, &CHARGE, "pay_05")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Transport {
            attempts: 3,
            error: "could not connect".into()
        }
    );
}

#[tokio::test]
async fn the_circuit_opens_after_consecutive_failures_and_a_probe_closes_it() {
    // The recorder ordo serves /metrics from (installed when a server starts).
    ordo::telemetry::metrics();
    let fake = FakeProvider::start().await;
    fake.always(Reply::Status(503));
    let providers = Providers::new(
        Policy {
            attempts: 1,
            failures_to_open: 3,
            ..policy()
        },
        true,
    );
    let provider = fake.provider();
    let call = || providers.create_payment(&provider, &CHARGE, "pay_06");
    for _ in 0..3 {
        assert!(matches!(
            call().await,
            Err(ProviderError::Unavailable { .. })
        ));
    }
    assert_eq!(providers.circuits()[0].state, CircuitState::Open);
    assert_eq!(providers.circuits()[0].consecutive_failures, 3);
    assert_eq!(call().await, Err(ProviderError::Open));
    assert_eq!(fake.seen().len(), 3, "an open circuit does not call");
    let metrics = ordo::telemetry::metrics().render();
    let gauge = format!("ordo_provider_circuit_state{{provider=\"{}\"}} 2", fake.url);
    assert!(metrics.contains(&gauge), "open is 2: {metrics}");

    // After the open period one probe goes through; it fails: open again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(providers.circuits()[0].state, CircuitState::HalfOpen);
    assert!(matches!(
        call().await,
        Err(ProviderError::Unavailable { .. })
    ));
    assert_eq!(providers.circuits()[0].state, CircuitState::Open);
    assert_eq!(call().await, Err(ProviderError::Open));
    assert_eq!(fake.seen().len(), 4);

    // The provider recovers: the next probe closes the circuit.
    fake.always(Reply::Ok("succeeded"));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(call().await.is_ok());
    assert_eq!(providers.circuits()[0].state, CircuitState::Closed);
    assert_eq!(providers.circuits()[0].consecutive_failures, 0);
    let metrics = ordo::telemetry::metrics().render();
    assert!(
        metrics.contains(&gauge.replace("} 2", "} 0")),
        "closed is 0"
    );
    assert!(call().await.is_ok());
    assert_eq!(fake.seen().len(), 6);
}

#[tokio::test]
async fn a_probe_whose_call_is_dropped_gives_the_circuit_back() {
    let fake = FakeProvider::start().await;
    fake.always(Reply::Status(503));
    let providers = Providers::new(
        Policy {
            attempts: 1,
            failures_to_open: 2,
            ..policy()
        },
        true,
    );
    let provider = fake.provider();
    let call = || providers.create_payment(&provider, &CHARGE, "pay_07");
    for _ in 0..2 {
        assert!(call().await.is_err());
    }
    assert_eq!(providers.circuits()[0].state, CircuitState::Open);
    tokio::time::sleep(Duration::from_millis(450)).await;
    // The probe's caller gives up mid-call (a client that went away).
    fake.always(Reply::Slow(
        Duration::from_millis(200),
        Box::new(Reply::Ok("succeeded")),
    ));
    let dropped = tokio::time::timeout(Duration::from_millis(30), call()).await;
    assert!(dropped.is_err(), "the probe was dropped");
    // The circuit lets the next probe through instead of refusing for good.
    fake.always(Reply::Ok("succeeded"));
    assert!(call().await.is_ok());
    assert_eq!(providers.circuits()[0].state, CircuitState::Closed);
}

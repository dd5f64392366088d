//! The order chatbot (issue 8), in conversations: signed WhatsApp webhooks
//! in Meta's shapes go in, the fake Graph API records what the shop
//! answers, and the orders show what the buyer did.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{plain_order, problem, settle, TestApp};
use crate::messaging::{reaching, APP_SECRET};
use crate::meta::{FakeGraph, SmtpSink};

const ADA: &str = "2348012345678";
const OTHER: &str = "2348099999999";

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(APP_SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn payload(messages: Value, statuses: Value) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "2348000000000", "phone_number_id": "106540352242922"},
        "messages": messages, "statuses": statuses
    }}]}]})
}

fn text(id: &str, from: &str, body: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": {"body": body}})
}

struct Chat {
    app: TestApp,
    graph: FakeGraph,
    _sink: SmtpSink,
}

impl Chat {
    /// The texts the shop sent, once `done` holds of them (or after the
    /// wait runs out).
    async fn texts_when(&self, done: impl Fn(&Vec<String>) -> bool) -> Vec<String> {
        let graph = self.graph.clone();
        settle(
            || {
                let graph = graph.clone();
                async move { graph.texts() }
            },
            done,
        )
        .await
    }

    async fn start() -> Chat {
        let graph = FakeGraph::start().await;
        let sink = SmtpSink::start().await;
        let app = reaching(&graph, &sink).await;
        Chat {
            app,
            graph,
            _sink: sink,
        }
    }

    fn path(&self) -> String {
        format!("/v1/channels/whatsapp/{}/webhook", self.app.tenant.id)
    }

    /// Posts `body` as Meta would, signed with `signature`.
    async fn post(&self, body: &Value, signature: Option<String>) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let mut request = self
            .app
            .client
            .post(self.app.url(&self.path()))
            .header("content-type", "application/json")
            .body(raw);
        if let Some(s) = signature {
            request = request.header("x-hub-signature-256", s);
        }
        request.send().await.unwrap()
    }

    async fn deliver(&self, messages: Value) -> Value {
        let body = payload(messages, json!([]));
        let signature = sign(&serde_json::to_vec(&body).unwrap());
        let r = self.post(&body, Some(signature)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// The buyer `from` says `body`; returns what the shop answered
    /// (the texts sent after it, once there are `answers` of them).
    async fn say(&self, id: &str, from: &str, body: &str, answers: usize) -> Vec<String> {
        let before = self.graph.calls().len();
        self.deliver(json!([text(id, from, body)])).await;
        self.texts_when(|t| t.len() >= before + answers)
            .await
            .split_off(before)
    }

    async fn order(&self, id: &str) -> Value {
        self.app.json(&format!("/v1/orders/{id}")).await
    }

    async fn order_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/v1/orders/{id}");
        settle(|| self.app.json(&path), done).await
    }

    /// A new order for `phone`'s WhatsApp, once its message went out.
    async fn new_order(&self, phone: &str) -> Value {
        let mut body = plain_order();
        body["buyer"]["channel_id"] = json!(format!("wa_{phone}"));
        body["buyer"]["phone"] = json!(format!("+{phone}"));
        let before = self.graph.calls().len();
        let order = self.app.create(&body).await;
        let graph = self.graph.clone();
        settle(
            || {
                let graph = graph.clone();
                async move { graph.calls().len() }
            },
            |n| *n > before,
        )
        .await;
        order
    }
}

#[tokio::test]
async fn meta_subscribes_with_the_verify_token_only() {
    let chat = Chat::start().await;
    let get = |query: &str| {
        let url = chat.app.url(&format!("{}?{query}", chat.path()));
        let client = chat.app.client.clone();
        async move { client.get(url).send().await.unwrap() }
    };
    let r = get("hub.mode=subscribe&hub.verify_token=ordo-verify-1&hub.challenge=1158201444").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "1158201444");
    problem(
        get("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = chat
        .app
        .client
        .get(chat.app.url(
            "/v1/channels/whatsapp/ten_01JD8X1Q2W3E4R5T6Y7U8I9O0P/webhook?hub.mode=subscribe&hub.verify_token=ordo-verify-1&hub.challenge=1",
        ))
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn only_signed_deliveries_are_read_and_each_message_once() {
    let chat = Chat::start().await;
    let body = payload(json!([text("wamid.in1", ADA, "help")]), json!([]));
    let r = chat.post(&body, None).await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let r = chat.post(&body, Some(sign(b"another body"))).await;
    problem(r, StatusCode::UNAUTHORIZED).await;
    let first = chat.deliver(json!([text("wamid.in1", ADA, "help")])).await;
    assert_eq!(
        first,
        json!({"messages": 1, "duplicates": 0, "statuses": 0})
    );
    let again = chat.deliver(json!([text("wamid.in1", ADA, "help")])).await;
    assert_eq!(
        again,
        json!({"messages": 0, "duplicates": 1, "statuses": 0})
    );
    let texts = chat.texts_when(|t| !t.is_empty()).await;
    // Answered once: the unsigned ones were never read, the repeat not queued.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(chat.graph.texts().len(), 1, "{texts:?}");
    assert!(texts[0].contains("CONFIRM"), "{}", texts[0]);
}

#[tokio::test]
async fn a_buyer_confirms_cancels_and_asks_in_their_own_words() {
    let chat = Chat::start().await;
    let first = chat.new_order(ADA).await;
    let id = first["id"].as_str().unwrap();
    let reference = first["reference"].as_str().unwrap();

    // "yes please": their only pending order; the order's message answers.
    let answers = chat.say("wamid.a1", ADA, "Yes please 👍", 1).await;
    assert!(
        answers[0].contains(&format!("Order {reference} is confirmed")),
        "{answers:?}"
    );
    let o = chat.order(id).await;
    assert_eq!(o["status"], "confirmed");
    let events = chat.app.json(&format!("/v1/orders/{id}/events")).await;
    let confirmed = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "order.confirmed")
        .unwrap();
    assert_eq!(
        (&confirmed["actor"]["type"], &confirmed["actor"]["id"]),
        (&json!("buyer"), &json!(format!("wa_{ADA}")))
    );

    // Two orders that can be cancelled: the bot asks which, by number.
    let second = chat.new_order(ADA).await;
    let answers = chat
        .say("wamid.a2", ADA, "abeg cancel am because e too cost", 1)
        .await;
    let question = &answers[0];
    assert!(
        question.contains("Which order do you want to cancel?"),
        "{question}"
    );
    let newest = second["reference"].as_str().unwrap();
    assert!(question.contains(&format!("1. {newest}")), "{question}");
    assert!(question.contains(&format!("2. {reference}")), "{question}");
    let answers = chat.say("wamid.a3", ADA, "2", 1).await;
    assert!(
        answers[0].contains("was cancelled: e too cost"),
        "{answers:?}"
    );
    let o = chat.order_when(id, |o| o["status"] == "cancelled").await;
    assert_eq!(o["cancel_reason"], "e too cost");
    assert_eq!(
        chat.order(second["id"].as_str().unwrap()).await["status"],
        "pending"
    );

    // Where things stand (the answer is on the order's timeline); a number
    // with no question open.
    let answers = chat
        .say("wamid.a4", ADA, "wetin dey happen with my order", 1)
        .await;
    assert!(
        answers[0].contains(newest) && answers[0].contains("pending"),
        "{answers:?}"
    );
    let path = format!("/v1/orders/{}/events", second["id"].as_str().unwrap());
    let events = settle(
        || chat.app.json(&path),
        |e| {
            e["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["data"]["kind"] == "reply")
        },
    )
    .await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "message.sent" && e["data"]["kind"] == "reply"),
        "{events}"
    );
    let answers = chat.say("wamid.a5", ADA, "3", 1).await;
    assert!(answers[0].contains("no question waiting"), "{answers:?}");
    let answers = chat.say("wamid.a6", ADA, "my orders", 1).await;
    assert!(
        answers[0].contains(newest) && answers[0].contains(reference),
        "{answers:?}"
    );
    let answers = chat
        .say("wamid.a7", ADA, "what colour is the dress", 1)
        .await;
    assert!(answers[0].contains("did not understand"), "{answers:?}");

    // The Cancel button of the new order's message.
    let before = chat.graph.calls().len();
    chat.deliver(json!([{"from": ADA, "id": "wamid.a8", "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": format!("cancel:{newest}"), "title": "Cancel"}}}]))
        .await;
    let o = chat
        .order_when(second["id"].as_str().unwrap(), |o| {
            o["status"] == "cancelled"
        })
        .await;
    assert_eq!(o["status"], "cancelled");
    let texts = chat.texts_when(|t| t.len() > before).await;
    assert!(
        texts[before].contains(&format!("Order {newest} was cancelled")),
        "{texts:?}"
    );
}

#[tokio::test]
async fn a_buyer_sees_and_touches_only_their_own_orders() {
    let chat = Chat::start().await;
    let ada = chat.new_order(ADA).await;
    let reference = ada["reference"].as_str().unwrap();
    // A stranger is told how to reach the shop, never shown an order.
    let answers = chat
        .say("wamid.s1", OTHER, &format!("cancel {reference}"), 1)
        .await;
    assert!(
        answers[0].contains("We have no order for you"),
        "{answers:?}"
    );
    assert!(!answers[0].contains(reference), "{answers:?}");
    // A buyer with orders of their own is not told about another's.
    chat.new_order(OTHER).await;
    let answers = chat
        .say("wamid.s2", OTHER, &format!("confirm {reference}"), 1)
        .await;
    assert!(
        answers[0].contains(&format!("could not find order {reference}")),
        "{answers:?}"
    );
    assert_eq!(
        chat.order(ada["id"].as_str().unwrap()).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_photo_of_the_receipt_goes_to_the_order_awaiting_payment() {
    let chat = Chat::start().await;
    let order = chat.new_order(ADA).await;
    let id = order["id"].as_str().unwrap();
    let mut png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    png.extend(std::iter::repeat_n(0u8, 100));
    chat.graph.media("MEDIA-1", png.clone());
    chat.deliver(json!([{"from": ADA, "id": "wamid.r1", "type": "image", "image": {"id": "MEDIA-1", "mime_type": "image/png"}}]))
        .await;
    let o = chat
        .order_when(id, |o| {
            o["receipts"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    let receipt = &o["receipts"][0];
    assert_eq!(receipt["state"], "in_review");
    assert_eq!(receipt["content_type"], "image/png");
    assert_eq!(receipt["uploaded_by"]["type"], "buyer");
    assert_eq!(receipt["size"], png.len());
    let texts = chat
        .texts_when(|t| t.iter().any(|t| t.contains("We got your receipt")))
        .await;
    assert!(
        texts.iter().any(|t| t.contains("We got your receipt")),
        "{texts:?}"
    );

    // Not a receipt: said so.
    chat.graph
        .media("MEDIA-2", b"just some text, not an image".to_vec());
    let before = chat.graph.calls().len();
    chat.deliver(json!([{"from": ADA, "id": "wamid.r2", "type": "document", "document": {"id": "MEDIA-2", "mime_type": "text/plain"}}]))
        .await;
    let texts = chat.texts_when(|t| t.len() > before).await;
    assert!(texts[before].contains("not a photo"), "{texts:?}");
    // A file Meta no longer has: said so, not retried for days.
    let before = chat.graph.calls().len();
    chat.deliver(json!([{"from": ADA, "id": "wamid.p2", "type": "image", "image": {"id": "GONE", "mime_type": "image/jpeg"}}]))
        .await;
    let texts = chat.texts_when(|t| t.len() > before).await;
    assert!(
        texts[before..]
            .iter()
            .any(|t| t.contains("could not get that file")),
        "{texts:?}"
    );
}

#[tokio::test]
async fn meta_status_reports_reach_the_orders_timeline() {
    let chat = Chat::start().await;
    let order = chat.new_order(ADA).await;
    let id = order["id"].as_str().unwrap();
    let sent = chat.graph.calls()[0].clone();
    assert_eq!(sent.body["biz_opaque_callback_data"], id);
    let statuses = json!([
        {"id": "wamid.1", "status": "delivered", "timestamp": "1", "recipient_id": ADA, "biz_opaque_callback_data": id},
        {"id": "wamid.1", "status": "read", "timestamp": "2", "recipient_id": ADA, "biz_opaque_callback_data": id}
    ]);
    let body = payload(json!([]), statuses);
    let r = chat
        .post(&body, Some(sign(&serde_json::to_vec(&body).unwrap())))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let path = format!("/v1/orders/{id}/events");
    let events = settle(
        || chat.app.json(&path),
        |e| e["data"].as_array().unwrap().len() >= 4,
    )
    .await;
    let mut types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    // The two reports are handled side by side: either may come first.
    types[2..].sort_unstable();
    assert_eq!(
        types,
        [
            "order.created",
            "message.sent",
            "message.delivered",
            "message.read"
        ]
    );
    assert_eq!(chat.order(id).await["version"], 1);
}

#[tokio::test]
async fn instagram_buyers_are_answered_on_instagram() {
    let chat = Chat::start().await;
    let r = chat
        .app
        .patch(
            "/v1/settings",
            &json!({"messaging": {"instagram": {"account_id": "17841400000000", "access_token": crate::messaging::TOKEN, "app_secret": APP_SECRET, "verify_token": "ordo-verify-1"}}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = plain_order();
    body["buyer"] = json!({"name": "Bola", "channel_id": "ig_6543210987654"});
    let order = chat.app.create(&body).await;
    let reference = order["reference"].as_str().unwrap();
    let ig = |message: Value| {
        json!({"object": "instagram", "entry": [{"id": "17841400000000", "time": 1, "messaging": [
            {"sender": {"id": "6543210987654"}, "recipient": {"id": "17841400000000"}, "timestamp": 1, "message": message}
        ]}]})
    };
    let path = format!("/v1/channels/instagram/{}/webhook", chat.app.tenant.id);
    let post = |body: Value| {
        let raw = serde_json::to_vec(&body).unwrap();
        let request = chat
            .app
            .client
            .post(chat.app.url(&path))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sign(&raw))
            .body(raw);
        async move { request.send().await.unwrap() }
    };
    let r = post(ig(json!({"mid": "mid.in1", "text": "where is my order"}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let graph = chat.graph.clone();
    let reply = settle(
        || {
            let graph = graph.clone();
            async move { graph.calls() }
        },
        |calls| {
            calls.iter().any(|c| {
                c.body["message"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("total") || t.contains("Total"))
            })
        },
    )
    .await
    .into_iter()
    .find(|c| {
        c.body["recipient"]["id"] == "6543210987654"
            && c.body["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Total"))
    })
    .unwrap();
    assert_eq!(reply.account, "17841400000000");
    assert!(reply.body["message"]["text"]
        .as_str()
        .unwrap()
        .contains(reference));

    // A photo of the receipt, as Instagram's attachment URL.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(std::iter::repeat_n(1u8, 64));
    chat.graph.media("IG-1", png);
    let url = chat.graph.cdn_url("IG-1");
    post(ig(
        json!({"mid": "mid.in2", "attachments": [{"type": "image", "payload": {"url": url}}]}),
    ))
    .await;
    let o = chat
        .order_when(order["id"].as_str().unwrap(), |o| {
            o["receipts"].as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    assert_eq!(o["receipts"][0]["content_type"], "image/png");
}

#[tokio::test]
async fn a_paid_order_is_cancelled_by_the_shop_not_the_chat() {
    let chat = Chat::start().await;
    let order = chat.new_order(ADA).await;
    let id = order["id"].as_str().unwrap();
    chat.app.pay_in_full(&order).await;
    let reference = order["reference"].as_str().unwrap();
    let answers = chat
        .say("wamid.p1", ADA, &format!("cancel {reference}"), 2)
        .await;
    assert!(
        answers.iter().any(|a| a.contains("has a payment on it")),
        "{answers:?}"
    );
    assert_eq!(chat.order(id).await["status"], "pending");
}

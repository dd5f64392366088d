//! Stand-ins for a shop's buyer channels on 127.0.0.1: Meta's Graph API
//! (WhatsApp Cloud API and Instagram messaging) and an SMTP server, each
//! recording what it received and answering as each test scripts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How the fake Graph API answers one call.
#[derive(Debug, Clone)]
pub enum GraphReply {
    /// 200 with the next message id.
    Ok,
    /// This status, with a Meta error saying `message`.
    Error(u16, &'static str),
    /// No answer for this long.
    Slow(Duration),
}

/// A call the fake Graph API received.
#[derive(Debug, Clone)]
pub struct GraphCall {
    /// The account id in the path (`/{id}/messages`).
    pub account: String,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Graph {
    script: Mutex<VecDeque<GraphReply>>,
    calls: Mutex<Vec<GraphCall>>,
    /// Files by media id, and where they are served.
    media: Mutex<std::collections::HashMap<String, Vec<u8>>>,
    root: Mutex<String>,
}

/// Meta's Graph API, as far as sending messages goes.
#[derive(Clone)]
pub struct FakeGraph {
    /// What `messaging.graph_base_url` should be.
    pub base_url: String,
    graph: Arc<Graph>,
}

impl FakeGraph {
    pub async fn start() -> FakeGraph {
        let graph = Arc::new(Graph::default());
        let app = Router::new()
            .route("/v21.0/{account}/messages", post(messages))
            .route("/v21.0/{media}", axum::routing::get(media_info))
            .route("/files/{media}", axum::routing::get(media_file))
            .route("/cdn/{media}", axum::routing::get(cdn_file))
            .with_state(graph.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let root = format!("http://{}", listener.local_addr().unwrap());
        *graph.root.lock().unwrap() = root.clone();
        let base_url = format!("{root}/v21.0");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeGraph { base_url, graph }
    }

    /// The next answers, in order; then `Ok`.
    pub fn then(&self, replies: impl IntoIterator<Item = GraphReply>) {
        self.graph.script.lock().unwrap().extend(replies);
    }

    pub fn calls(&self) -> Vec<GraphCall> {
        self.graph.calls.lock().unwrap().clone()
    }

    /// The texts of the messages sent so far, in order.
    pub fn texts(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                let b = &c.body;
                b["text"]["body"]
                    .as_str()
                    .or(b["interactive"]["body"]["text"].as_str())
                    .or(b["message"]["text"].as_str())
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// Serves `file` as media `id` (a buyer's photo), to a caller with a token.
    pub fn media(&self, id: &str, file: Vec<u8>) {
        self.graph.media.lock().unwrap().insert(id.into(), file);
    }

    /// Where Instagram's attachment `id` is served (a plain URL).
    pub fn cdn_url(&self, id: &str) -> String {
        format!("{}/cdn/{id}", self.graph.root.lock().unwrap())
    }
}

async fn cdn_file(State(graph): State<Arc<Graph>>, Path(id): Path<String>) -> Response {
    match graph.media.lock().unwrap().get(&id) {
        Some(file) => file.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn media_info(
    State(graph): State<Arc<Graph>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let known = graph.media.lock().unwrap().contains_key(&id);
    if !known || headers.get("authorization").is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "Unsupported get request"}})),
        )
            .into_response();
    }
    let root = graph.root.lock().unwrap().clone();
    Json(json!({"url": format!("{root}/files/{id}"), "mime_type": "image/png", "id": id}))
        .into_response()
}

async fn media_file(
    State(graph): State<Arc<Graph>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.get("authorization").is_none() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match graph.media.lock().unwrap().get(&id) {
        Some(file) => file.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn messages(
    State(graph): State<Arc<Graph>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let n = {
        let mut calls = graph.calls.lock().unwrap();
        calls.push(GraphCall {
            account,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
        });
        calls.len()
    };
    let reply = graph
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(GraphReply::Ok);
    match reply {
        GraphReply::Ok if body.get("messaging_product").is_some() => Json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": body["to"], "wa_id": body["to"]}],
            "messages": [{"id": format!("wamid.{n}")}],
        }))
        .into_response(),
        GraphReply::Ok => Json(json!({
            "recipient_id": body["recipient"]["id"],
            "message_id": format!("mid.{n}"),
        }))
        .into_response(),
        GraphReply::Error(status, message) => (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": message, "type": "OAuthException", "code": 190}})),
        )
            .into_response(),
        GraphReply::Slow(wait) => {
            tokio::time::sleep(wait).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// An email the sink received.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body).
    pub data: String,
}

#[derive(Default)]
struct Sink {
    mails: Mutex<Vec<Mail>>,
    /// Replies to `MAIL FROM` instead of 250, in order.
    refusals: Mutex<VecDeque<&'static str>>,
}

/// A mail server that takes everything (unless told to refuse) and keeps it.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    sink: Arc<Sink>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let sink = Arc::new(Sink::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, shared.clone()));
            }
        });
        SmtpSink { port, sink }
    }

    /// Refuse the next messages with these replies (`"451 4.3.0 try later"`).
    pub fn refuse(&self, replies: impl IntoIterator<Item = &'static str>) {
        self.sink.refusals.lock().unwrap().extend(replies);
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.sink.mails.lock().unwrap().clone()
    }
}

/// One SMTP conversation (RFC 5321, the parts a client sending one
/// message uses).
async fn converse(stream: tokio::net::TcpStream, sink: Arc<Sink>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Ok(Some(line)) = lines.next_line().await {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink.test\r\n250 8BITMIME".into()
        } else if upper.starts_with("HELO") {
            "250 sink.test".into()
        } else if upper.starts_with("MAIL FROM:") {
            match sink.refusals.lock().unwrap().pop_front() {
                Some(refusal) => refusal.into(),
                None => {
                    from = line[10..].trim().trim_matches(['<', '>']).to_string();
                    "250 2.1.0 ok".into()
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            "250 2.1.5 ok".into()
        } else if upper == "DATA" {
            let _ = write.write_all(b"354 go ahead\r\n").await;
            let mut data = String::new();
            while let Ok(Some(l)) = lines.next_line().await {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            sink.mails.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            "250 2.0.0 queued".into()
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            "250 ok".into()
        } else {
            "502 5.5.1 not implemented".into()
        };
        if write
            .write_all(format!("{reply}\r\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

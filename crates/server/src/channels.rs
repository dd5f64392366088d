//! Sending one message to a buyer: on WhatsApp (the Cloud API) or
//! Instagram (messaging), both through Meta's Graph API, or by email over
//! SMTP. One attempt per call, with a time limit; what failed says whether
//! it is worth trying again, and the job that sends decides when.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use ordo_domain::messaging::{
    EmailChannel, MessagingSettings, MetaChannel, Outgoing, Recipient, SmtpSecurity,
};
use ordo_domain::ChannelId;
use serde_json::{json, Value};

use crate::config::MessagingConfig;

/// The longest body of a WhatsApp message with buttons; a longer text is
/// sent plain (it says what to reply).
const MAX_INTERACTIVE_CHARS: usize = 1024;

/// A message the channel took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The channel's id of it (`wamid.…`, Instagram's `mid`, the email's
    /// `Message-ID`): status callbacks name it.
    pub provider_id: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later: no answer in time, a connection that
    /// failed, a 5xx or a 429, a temporary SMTP refusal.
    #[error("{0}")]
    Transient(String),
    /// Refused for good: a token Meta does not take, a number not on
    /// WhatsApp, an address the mail server refuses.
    #[error("{0}")]
    Refused(String),
    /// The shop has no such channel set up (any more).
    #[error("the shop has no {0} channel set up")]
    NoChannel(&'static str),
}

/// Where buyers' files may be fetched from: Meta's file hosts, over https.
const META_FILE_HOSTS: &[&str] = &[
    ".fbcdn.net",
    ".fbsbx.com",
    ".cdninstagram.com",
    ".facebook.com",
    ".whatsapp.net",
];

/// The senders of every channel.
#[derive(Clone)]
pub struct Channels {
    http: reqwest::Client,
    graph: String,
    timeout: Duration,
    /// Whether files may come from anywhere (tests on 127.0.0.1), not only
    /// from Meta's hosts over https.
    any_file_host: bool,
}

impl Channels {
    /// With `any_file_host` (the operator's `webhooks.allow_private_urls`),
    /// buyers' files may be fetched from any URL; otherwise only from
    /// Meta's file hosts over https, so a forged delivery cannot make ordo
    /// fetch from the network it runs in.
    pub fn new(config: &MessagingConfig, any_file_host: bool) -> Self {
        let timeout = Duration::from_millis(config.timeout_ms);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ordo/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Channels {
            http,
            graph: config.graph_base_url.trim_end_matches('/').to_string(),
            timeout,
            any_file_host,
        }
    }

    /// Sends `out` from shop `shop` over the channel of its recipient.
    pub async fn send(
        &self,
        m: &MessagingSettings,
        shop: &str,
        out: &Outgoing,
    ) -> Result<Sent, SendError> {
        match &out.to {
            Recipient::Whatsapp(digits) => {
                let c = m
                    .whatsapp
                    .as_ref()
                    .ok_or(SendError::NoChannel("WhatsApp"))?;
                self.meta(c, whatsapp_body(digits, out), "/messages/0/id")
                    .await
            }
            Recipient::Instagram(id) => {
                let c = m
                    .instagram
                    .as_ref()
                    .ok_or(SendError::NoChannel("Instagram"))?;
                let body = json!({"recipient": {"id": id}, "message": {"text": out.text}});
                self.meta(c, body, "/message_id").await
            }
            Recipient::Email(address) => {
                let e = m.email.as_ref().ok_or(SendError::NoChannel("email"))?;
                self.email(e, shop, address.as_str(), out).await
            }
        }
    }

    /// The file behind a buyer's image or document: WhatsApp's media id is
    /// looked up through the Graph API (its file needs the token too),
    /// Instagram's attachment is a URL. Refused past `max` bytes.
    pub async fn download(
        &self,
        m: &MessagingSettings,
        from: &ChannelId,
        media: &str,
        max: usize,
    ) -> Result<Vec<u8>, SendError> {
        let (url, token) = match from {
            ChannelId::WhatsApp(_) => {
                let c = m
                    .whatsapp
                    .as_ref()
                    .ok_or(SendError::NoChannel("WhatsApp"))?;
                let token = c.access_token.expose();
                let info = self
                    .http
                    .get(format!("{}/{media}", self.graph))
                    .bearer_auth(token)
                    .send()
                    .await
                    .map_err(|e| {
                        SendError::Transient(format!("Meta did not answer: {}", plain(e)))
                    })?;
                let status = info.status();
                let info: Value = info.json().await.unwrap_or(Value::Null);
                let url = info["url"].as_str().filter(|_| status.is_success());
                let url = url.ok_or_else(|| {
                    SendError::Refused(format!(
                        "Meta has no file for media {media}: HTTP {}",
                        status.as_u16()
                    ))
                })?;
                (url.to_string(), Some(token))
            }
            ChannelId::Instagram(_) => (media.to_string(), None),
        };
        let parsed = url::Url::parse(&url)
            .map_err(|_| SendError::Refused("the file's address is not a URL".into()))?;
        let meta_host = parsed.scheme() == "https"
            && parsed
                .host_str()
                .is_some_and(|h| META_FILE_HOSTS.iter().any(|suffix| h.ends_with(suffix)));
        if !meta_host && !self.any_file_host {
            return Err(SendError::Refused(
                "the file is not on one of Meta's hosts over https".into(),
            ));
        }
        let mut request = self.http.get(parsed);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let mut answer = request
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("the file did not come: {}", plain(e))))?;
        let status = answer.status();
        if !status.is_success() {
            let error = format!("the file did not come: HTTP {}", status.as_u16());
            // Gone or forbidden (an expired link) does not come back.
            return Err(match status.as_u16() {
                408 | 429 | 500..=599 => SendError::Transient(error),
                _ => SendError::Refused(error),
            });
        }
        let mut file = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| SendError::Transient(format!("the file did not come: {}", plain(e))))?
        {
            if file.len() + chunk.len() > max {
                return Err(SendError::Refused(format!(
                    "the file is larger than {max} bytes"
                )));
            }
            file.extend_from_slice(&chunk);
        }
        Ok(file)
    }

    /// Posts `body` to the account's `messages` edge; the message's id is
    /// at `id_at` in the answer.
    async fn meta(&self, c: &MetaChannel, body: Value, id_at: &str) -> Result<Sent, SendError> {
        let url = format!("{}/{}/messages", self.graph, c.account_id);
        let answer = self
            .http
            .post(&url)
            .bearer_auth(c.access_token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("Meta did not answer: {}", plain(e))))?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return match parsed.pointer(id_at).and_then(Value::as_str) {
                Some(id) => Ok(Sent {
                    provider_id: id.to_string(),
                }),
                None => Err(SendError::Transient(format!(
                    "Meta answered {status} without a message id"
                ))),
            };
        }
        let why = parsed
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map_or_else(|| text.chars().take(200).collect(), str::to_string);
        let error = format!("Meta refused the message: HTTP {}: {why}", status.as_u16());
        match status.as_u16() {
            408 | 429 | 500..=599 => Err(SendError::Transient(error)),
            _ => Err(SendError::Refused(error)),
        }
    }

    async fn email(
        &self,
        e: &EmailChannel,
        shop: &str,
        to: &str,
        out: &Outgoing,
    ) -> Result<Sent, SendError> {
        let refused = |what: &str, why: String| SendError::Refused(format!("{what}: {why}"));
        let from_name = e.from_name.clone().unwrap_or_else(|| shop.to_string());
        let from = Mailbox::new(
            Some(from_name),
            e.from
                .as_str()
                .parse()
                .map_err(|x| refused("the sender address", format!("{x}")))?,
        );
        let to: Mailbox = to
            .parse()
            .map_err(|x| refused("the buyer's address", format!("{x}")))?;
        let id = format!("<{}@ordo>", ulid::Ulid::new());
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(out.subject.clone().unwrap_or_default())
            .message_id(Some(id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(out.text.clone())
            .map_err(|x| refused("the message", format!("{x}")))?;
        let builder = match e.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&e.host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&e.host)
                .map_err(|x| refused("the SMTP server", format!("{x}")))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&e.host)
                .map_err(|x| refused("the SMTP server", format!("{x}")))?,
        };
        let mut builder = builder.port(e.port).timeout(Some(self.timeout));
        if let (Some(user), Some(password)) = (&e.username, &e.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            ));
        }
        match builder.build().send(message).await {
            Ok(_) => Ok(Sent { provider_id: id }),
            Err(x) if x.is_permanent() => Err(SendError::Refused(format!(
                "the mail server refused the message: {x}"
            ))),
            Err(x) => Err(SendError::Transient(format!(
                "the mail server did not take the message: {x}"
            ))),
        }
    }
}

/// A WhatsApp message: with reply buttons when it has them and its text
/// fits, plain text otherwise.
fn whatsapp_body(to: &str, out: &Outgoing) -> Value {
    let mut body = whatsapp_content(to, out);
    if let Some(callback) = &out.callback {
        // Meta's status webhooks carry it back: they name the order.
        body["biz_opaque_callback_data"] = json!(callback);
    }
    body
}

fn whatsapp_content(to: &str, out: &Outgoing) -> Value {
    if out.buttons.is_empty() || out.text.chars().count() > MAX_INTERACTIVE_CHARS {
        return json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            "type": "text",
            "text": {"preview_url": false, "body": out.text},
        });
    }
    let buttons: Vec<Value> = out
        .buttons
        .iter()
        .map(|b| json!({"type": "reply", "reply": {"id": b.id, "title": b.title}}))
        .collect();
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": out.text},
            "action": {"buttons": buttons},
        },
    })
}

/// A transport error without the URL (which names the account).
fn plain(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url().to_string()
    }
}

//! How a shop talks to its buyers: the channels it sends on (WhatsApp
//! Cloud API, Instagram messaging, email over SMTP), their credentials
//! (written, never shown again), and the texts of the messages order
//! events send, in the shop's words when it wrote its own (templates with
//! `{placeholders}`, checked when saved), seed 000's otherwise.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::contact::{Buyer, ChannelId, Email};
use crate::event::EventType;
use crate::field::{FieldError, FieldErrors};
use crate::ids::{PaymentId, RefundId};
use crate::order::Order;
use crate::status::OrderStatus;

/// A credential: kept as given, shown only by its last four characters.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// How it may be shown: `…9f2c`.
    pub fn hint(&self) -> String {
        let tail: Vec<char> = self.0.chars().rev().take(4).collect();
        format!("…{}", tail.into_iter().rev().collect::<String>())
    }

    /// Checks a credential: `len` printable ASCII characters, no spaces.
    fn parse(
        field: String,
        text: &str,
        len: std::ops::RangeInclusive<usize>,
    ) -> Result<Secret, FieldError> {
        let ok = len.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        match ok {
            true => Ok(Secret(text.to_string())),
            false => Err(
                FieldError::new(field, "not a usable credential").accepted(format!(
                    "{} to {} printable ASCII characters, no spaces",
                    len.start(),
                    len.end()
                )),
            ),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hint())
    }
}

/// A Meta channel: WhatsApp Cloud API (the business phone number's id) or
/// Instagram messaging (the page or account id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaChannel {
    pub account_id: String,
    /// Sends messages and downloads media (Graph API bearer token).
    pub access_token: Secret,
    /// Signs Meta's webhooks (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    /// What Meta must echo when it subscribes the webhook.
    pub verify_token: Secret,
}

/// A Meta channel as asked for; credentials left out keep those set for
/// the same account.
#[derive(Debug, Clone, Default)]
pub struct MetaChannelDraft<'a> {
    pub account_id: &'a str,
    pub access_token: Option<&'a str>,
    pub app_secret: Option<&'a str>,
    pub verify_token: Option<&'a str>,
}

impl MetaChannel {
    /// Checks a channel's settings; `field` names it in errors
    /// (`messaging.whatsapp`), `id_name` its account id
    /// (`phone_number_id`).
    pub fn parse(
        field: &str,
        id_name: &str,
        draft: MetaChannelDraft<'_>,
        current: Option<&MetaChannel>,
    ) -> Result<MetaChannel, FieldErrors> {
        let mut errors = FieldErrors::new();
        let id = draft.account_id.trim();
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(
                FieldError::new(format!("{field}.{id_name}"), "not a Meta id")
                    .value(draft.account_id)
                    .accepted("1 to 64 digits, as Meta's app dashboard shows it"),
            );
        }
        let same = current.filter(|c| c.account_id == id);
        let mut secret = |name: &str, given: Option<&str>, kept: Option<&Secret>, len| {
            let field = format!("{field}.{name}");
            match (given, kept) {
                (Some(text), _) => errors.take(Secret::parse(field, text, len)),
                (None, Some(kept)) => Some(kept.clone()),
                (None, None) => {
                    errors.push(
                        FieldError::new(field, "needed to set the channel up")
                            .accepted("the value from Meta's app dashboard"),
                    );
                    None
                }
            }
        };
        let access_token = secret(
            "access_token",
            draft.access_token,
            same.map(|c| &c.access_token),
            16..=1000,
        );
        let app_secret = secret(
            "app_secret",
            draft.app_secret,
            same.map(|c| &c.app_secret),
            16..=200,
        );
        let verify_token = secret(
            "verify_token",
            draft.verify_token,
            same.map(|c| &c.verify_token),
            8..=200,
        );
        match (access_token, app_secret, verify_token) {
            (Some(access_token), Some(app_secret), Some(verify_token)) if errors.is_empty() => {
                Ok(MetaChannel {
                    account_id: id.to_string(),
                    access_token,
                    app_secret,
                    verify_token,
                })
            }
            _ => Err(errors),
        }
    }
}

str_enum!(
    /// How an SMTP connection is protected.
    SmtpSecurity {
        /// Plain (a local relay).
        None = "none",
        /// Plain, then upgraded with STARTTLS (port 587).
        Starttls = "starttls",
        /// TLS from the start (port 465).
        Tls = "tls",
    }
);

/// Email over SMTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChannel {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub from: Email,
    /// The name buyers see the mail from (the shop's name when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_name: Option<String>,
}

/// An email channel as asked for; a password left out keeps the one set
/// for the same host and user.
#[derive(Debug, Clone, Default)]
pub struct EmailChannelDraft<'a> {
    pub host: &'a str,
    pub port: i64,
    pub security: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    pub from: &'a str,
    pub from_name: Option<&'a str>,
}

impl EmailChannel {
    /// Checks email settings; `field` names them in errors
    /// (`messaging.email`).
    pub fn parse(
        field: &str,
        draft: EmailChannelDraft<'_>,
        current: Option<&EmailChannel>,
    ) -> Result<EmailChannel, FieldErrors> {
        let mut errors = FieldErrors::new();
        let host = draft.host.trim().to_ascii_lowercase();
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
            });
        if !host_ok {
            errors.push(
                FieldError::new(format!("{field}.host"), "not a host name")
                    .value(draft.host)
                    .accepted("the SMTP server's host name or IP address (smtp.example.com)"),
            );
        }
        let port = errors.take(
            u16::try_from(draft.port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    FieldError::new(format!("{field}.port"), "not a port")
                        .value(draft.port)
                        .accepted("1 to 65535 (587 for STARTTLS, 465 for TLS)")
                }),
        );
        let security = errors.take(SmtpSecurity::parse(draft.security).ok_or_else(|| {
            FieldError::new(format!("{field}.security"), "not a kind of SMTP security")
                .value(draft.security)
                .accepted(SmtpSecurity::accepted())
        }));
        let username = draft.username.map(str::trim).filter(|u| !u.is_empty());
        if username.is_some_and(|u| u.len() > 200) {
            errors.push(
                FieldError::new(format!("{field}.username"), "too long")
                    .accepted("at most 200 characters"),
            );
        }
        let kept = current
            .filter(|c| c.host == host && c.username.as_deref() == username)
            .and_then(|c| c.password.clone());
        let password = match draft.password {
            Some(text) => errors.take(
                Secret::parse(format!("{field}.password"), text, 1..=200)
                    .map_err(|e| e.accepted("1 to 200 printable ASCII characters, no spaces")),
            ),
            None => kept,
        };
        if username.is_some() != password.is_some() {
            errors.push(
                FieldError::new(
                    format!(
                        "{field}.{}",
                        if username.is_some() {
                            "password"
                        } else {
                            "username"
                        }
                    ),
                    "a login needs both a username and a password",
                )
                .accepted("both, or neither for a server that needs no login"),
            );
        }
        let from = errors.take(Email::parse(draft.from).map_err(|reason| {
            FieldError::new(format!("{field}.from"), reason)
                .value(draft.from)
                .accepted(Email::ACCEPTED)
        }));
        let from_name = draft.from_name.map(str::trim).filter(|n| !n.is_empty());
        if from_name.is_some_and(|n| n.chars().count() > 100 || n.contains(['\r', '\n', '"'])) {
            errors.push(
                FieldError::new(format!("{field}.from_name"), "not a sender name")
                    .accepted("at most 100 characters, no line breaks or double quotes"),
            );
        }
        match (port, security, from) {
            (Some(port), Some(security), Some(from)) if errors.is_empty() => Ok(EmailChannel {
                host,
                port,
                security,
                username: username.map(str::to_string),
                password,
                from,
                from_name: from_name.map(str::to_string),
            }),
            _ => Err(errors),
        }
    }
}

/// A shop's channels and its own message texts; every field may be left
/// unset (no channel: no messages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MessagingSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<MetaChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instagram: Option<MetaChannel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailChannel>,
    /// The shop's own texts, by message kind (`order_created`); kinds not
    /// here use the default text.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
}

impl MessagingSettings {
    /// Whether the shop has any channel to reach its buyers on.
    pub fn reaches_buyers(&self) -> bool {
        self.whatsapp.is_some() || self.instagram.is_some() || self.email.is_some()
    }

    /// The text of `kind`: the shop's own, or the default.
    pub fn template(&self, kind: MessageKind) -> &str {
        self.templates
            .get(kind.as_str())
            .map_or(kind.default_template(), String::as_str)
    }
}

str_enum!(
    /// A message an order event sends its buyer.
    MessageKind {
        /// A new order, to confirm or cancel (`order.created`).
        OrderCreated = "order_created",
        OrderConfirmed = "order_confirmed",
        /// A receipt arrived for review (`receipt.uploaded`).
        ReceiptReceived = "receipt_received",
        ReceiptApproved = "receipt_approved",
        ReceiptRejected = "receipt_rejected",
        /// Money recorded or charged (`payment.recorded` that succeeded,
        /// `payment.succeeded`).
        PaymentReceived = "payment_received",
        /// A shipment left, with its tracking (`shipment.shipped`).
        OrderShipped = "order_shipped",
        OrderDelivered = "order_delivered",
        OrderCancelled = "order_cancelled",
        /// Money given back (`refund.succeeded`, or a refund recorded as
        /// already paid back).
        OrderRefunded = "order_refunded",
    }
);

/// The placeholders every message may use.
const COMMON: &[&str] = &[
    "shop",
    "reference",
    "buyer_name",
    "total",
    "items",
    "status",
    "link",
];

impl MessageKind {
    /// The message an event of `event_type` sends, if any (a payment or a
    /// refund only once the money moved: see `event_moved_money`).
    pub fn of(event_type: EventType) -> Option<MessageKind> {
        use EventType as E;
        Some(match event_type {
            E::OrderCreated => MessageKind::OrderCreated,
            E::OrderConfirmed => MessageKind::OrderConfirmed,
            E::ReceiptUploaded => MessageKind::ReceiptReceived,
            E::ReceiptApproved => MessageKind::ReceiptApproved,
            E::ReceiptRejected => MessageKind::ReceiptRejected,
            E::PaymentRecorded | E::PaymentSucceeded => MessageKind::PaymentReceived,
            E::ShipmentShipped => MessageKind::OrderShipped,
            E::ShipmentDelivered => MessageKind::OrderDelivered,
            E::OrderCancelled => MessageKind::OrderCancelled,
            E::RefundRecorded | E::RefundSucceeded => MessageKind::OrderRefunded,
            _ => return None,
        })
    }

    /// The placeholders its text may use, beyond the [`COMMON`] ones.
    pub fn own_placeholders(self) -> &'static [&'static str] {
        use MessageKind as K;
        match self {
            K::ReceiptRejected | K::OrderCancelled => &["reason"],
            K::PaymentReceived | K::OrderRefunded => &["amount"],
            K::OrderShipped => &["tracking", "carrier", "tracking_number", "tracking_url"],
            _ => &[],
        }
    }

    /// Every placeholder its text may use.
    pub fn placeholders(self) -> Vec<&'static str> {
        COMMON
            .iter()
            .chain(self.own_placeholders())
            .copied()
            .collect()
    }

    /// An email's subject.
    pub fn subject(self) -> &'static str {
        use MessageKind as K;
        match self {
            K::OrderCreated => "{shop}: your new order {reference}",
            K::OrderConfirmed => "{shop}: order {reference} is confirmed",
            K::ReceiptReceived => "{shop}: we got your receipt for {reference}",
            K::ReceiptApproved => "{shop}: payment for {reference} confirmed",
            K::ReceiptRejected => "{shop}: about your receipt for {reference}",
            K::PaymentReceived => "{shop}: payment received for {reference}",
            K::OrderShipped => "{shop}: order {reference} is on its way",
            K::OrderDelivered => "{shop}: order {reference} was delivered",
            K::OrderCancelled => "{shop}: order {reference} was cancelled",
            K::OrderRefunded => "{shop}: refund for {reference}",
        }
    }

    /// Seed 000's text, in ordo's words.
    pub fn default_template(self) -> &'static str {
        use MessageKind as K;
        match self {
            K::OrderCreated => "🛒 New order {reference} from {shop}\n\n{items}\n💰 Total: {total}\n\n✅ Reply CONFIRM to accept it\n❌ Reply CANCEL to call it off\n📸 Once you have paid, send a photo of the receipt here.\n\n🔗 Your order: {link}",
            K::OrderConfirmed => "✅ Order {reference} is confirmed!\n💰 Total: {total}\n\nNext: make your payment, then send a photo of the receipt here (or upload it on your order's page: {link}).\n\nThank you for shopping with {shop}! 🛍️",
            K::ReceiptReceived => "📸 We got your receipt for order {reference}. We will check it and let you know.",
            K::ReceiptApproved => "✅ Your payment for order {reference} is confirmed. Thank you!",
            K::ReceiptRejected => "⚠️ We could not accept the receipt for order {reference}: {reason}\nPlease send a clearer photo, or the right receipt (here, or on your order's page: {link}).",
            K::PaymentReceived => "💳 We received {amount} for order {reference}. Thank you!",
            K::OrderShipped => "🚚 Order {reference} is on its way!{tracking}\n\n🔗 Your order: {link}",
            K::OrderDelivered => "📦 Order {reference} was delivered. Enjoy it! Reply HELP if anything is wrong.",
            K::OrderCancelled => "❌ Order {reference} was cancelled: {reason}\n\nIf you would like to order again, just message {shop}. 🙏",
            K::OrderRefunded => "💸 We refunded {amount} for order {reference}.",
        }
    }
}

/// Where a message goes: the buyer's chat id, or their email address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", content = "to", rename_all = "snake_case")]
pub enum Recipient {
    /// The WhatsApp number's digits.
    Whatsapp(String),
    /// The Instagram-scoped id.
    Instagram(String),
    Email(Email),
}

impl Recipient {
    /// The buyer's chat id if the shop has that channel, else their email
    /// if the shop sends email; `None` when the shop cannot reach them.
    pub fn of(buyer: &Buyer, m: &MessagingSettings) -> Option<Recipient> {
        let chat = match &buyer.channel_id {
            Some(ChannelId::WhatsApp(digits)) if m.whatsapp.is_some() => {
                Some(Recipient::Whatsapp(digits.clone()))
            }
            Some(ChannelId::Instagram(id)) if m.instagram.is_some() => {
                Some(Recipient::Instagram(id.clone()))
            }
            _ => None,
        };
        chat.or_else(|| {
            let email = buyer.email.as_ref().filter(|_| m.email.is_some())?;
            Some(Recipient::Email(email.clone()))
        })
    }

    /// As logs may show it: enough to tell buyers apart, not to reach them.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Whatsapp(d) => ChannelId::WhatsApp(d.clone()).masked(),
            Recipient::Instagram(i) => ChannelId::Instagram(i.clone()).masked(),
            Recipient::Email(e) => e.masked(),
        }
    }
}

/// A quick-reply button of a WhatsApp message: what the buyer taps, and
/// the id that comes back when they do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub id: String,
    pub title: String,
}

/// A message to send a buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The event's message it is; `None` for the chatbot's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<MessageKind>,
    pub to: Recipient,
    pub text: String,
    /// An email's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// WhatsApp reply buttons (a new order's Confirm and Cancel).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// What the channel carries back in its status reports (the order's
    /// id), where it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

impl Outgoing {
    /// A plain answer to `to`.
    pub fn text(to: Recipient, text: String) -> Outgoing {
        Outgoing {
            kind: None,
            to,
            text,
            subject: None,
            buttons: Vec::new(),
            callback: None,
        }
    }
}

/// The ids of the buttons of a new order's message: `confirm:ORD-…`.
pub fn button_id(act: &str, order: &Order) -> String {
    format!("{act}:{}", order.reference)
}

/// The message the event (`event_type`, `data`) of `order` sends its
/// buyer, from shop `shop` with settings `m`, `link` being the buyer's
/// page of the order; `None` when the event tells the buyer nothing (a
/// payment or refund that has not moved money yet is told once it has) or
/// the shop cannot reach them.
pub fn compose(
    m: &MessagingSettings,
    shop: &str,
    order: &Order,
    (event_type, data): (EventType, &Value),
    link: &str,
) -> Option<Outgoing> {
    let kind = MessageKind::of(event_type)?;
    let moved = |part: &str| data[part]["state"] == "succeeded";
    match event_type {
        EventType::PaymentRecorded if !moved("payment") => return None,
        EventType::RefundRecorded if !moved("refund") => return None,
        _ => {}
    }
    let to = Recipient::of(&order.buyer, m)?;
    let c = order.currency;
    let mut values: BTreeMap<&str, String> = BTreeMap::new();
    values.insert("shop", shop.to_string());
    values.insert("reference", order.reference.to_string());
    values.insert("link", link.to_string());
    values.insert(
        "buyer_name",
        order.buyer.name.clone().unwrap_or_else(|| "there".into()),
    );
    values.insert("total", c.display_amount(order.total));
    values.insert("status", order.stage().as_str().replace('_', " "));
    let items: Vec<String> = order
        .lines
        .iter()
        .filter(|l| l.quantity > 0)
        .enumerate()
        .map(|(i, l)| {
            format!(
                "{}. {} ×{} — {}",
                i + 1,
                l.name,
                l.quantity,
                c.display_amount(l.line_total)
            )
        })
        .collect();
    values.insert("items", items.join("\n"));
    let text_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    values.insert("reason", text_of(&data["reason"]));
    let amount = match event_type {
        EventType::PaymentRecorded | EventType::PaymentSucceeded => data["payment"]["id"]
            .as_str()
            .and_then(PaymentId::parse)
            .and_then(|id| order.payment(id))
            .map(|p| p.amount),
        EventType::RefundRecorded | EventType::RefundSucceeded => data["refund"]["id"]
            .as_str()
            .and_then(RefundId::parse)
            .and_then(|id| order.refund(id))
            .map(|r| r.amount),
        _ => None,
    };
    values.insert(
        "amount",
        amount.map(|a| c.display_amount(a)).unwrap_or_default(),
    );
    let shipment = &data["shipment"];
    let mut tracking = String::new();
    for (key, label) in [
        ("carrier", "Carrier"),
        ("tracking_number", "Tracking number"),
        ("tracking_url", "Track it"),
    ] {
        let value = text_of(&shipment[key]);
        if !value.is_empty() {
            tracking.push_str(&format!("\n{label}: {value}"));
        }
        values.insert(key, value);
    }
    values.insert("tracking", tracking);
    let text = render(m.template(kind), &values);
    let buttons = match (&to, kind) {
        (Recipient::Whatsapp(_), MessageKind::OrderCreated)
            if order.status == OrderStatus::Pending =>
        {
            vec![
                Button {
                    id: button_id("confirm", order),
                    title: "Confirm".into(),
                },
                Button {
                    id: button_id("cancel", order),
                    title: "Cancel".into(),
                },
            ]
        }
        _ => Vec::new(),
    };
    let subject = matches!(to, Recipient::Email(_)).then(|| render(kind.subject(), &values));
    Some(Outgoing {
        kind: Some(kind),
        to,
        text,
        subject,
        buttons,
        callback: Some(order.id.to_string()),
    })
}

/// The longest message text: WhatsApp's limit for a text message.
pub const MAX_TEMPLATE_CHARS: usize = 4096;

/// One piece of a template: text as written, or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// The pieces of `template`: `{name}` is a placeholder, `{{` and `}}`
/// stand for braces; anything else with a brace is an error.
fn pieces(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let Some(at) = rest.find(['{', '}']) else {
            pieces.push(Piece::Text(rest));
            break;
        };
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("{{") {
            pieces.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            pieces.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("a '}' that closes nothing (write }} for a brace)".into());
        } else {
            let end = tail
                .find('}')
                .ok_or_else(|| "a '{' that is never closed (write {{ for a brace)".to_string())?;
            pieces.push(Piece::Placeholder(&tail[1..end]));
            rest = &tail[end + 1..];
        }
    }
    Ok(pieces)
}

/// Checks a shop's text for `kind`: its placeholders are ones the kind
/// fills, its braces balanced, and it is 1 to [`MAX_TEMPLATE_CHARS`]
/// characters. `field` names it in errors.
pub fn check_template(field: &str, kind: MessageKind, text: &str) -> Result<String, FieldError> {
    let accepted = || {
        format!(
            "text with placeholders among {}",
            kind.placeholders()
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let count = text.chars().count();
    if text.trim().is_empty() || count > MAX_TEMPLATE_CHARS {
        return Err(
            FieldError::new(field, "a message needs 1 to 4096 characters")
                .value(count)
                .accepted(accepted()),
        );
    }
    let pieces = pieces(text).map_err(|why| FieldError::new(field, why).accepted(accepted()))?;
    for piece in pieces {
        if let Piece::Placeholder(name) = piece {
            if !kind.placeholders().contains(&name) {
                return Err(
                    FieldError::new(field, "this message has no such placeholder")
                        .value(format!("{{{name}}}"))
                        .accepted(accepted()),
                );
            }
        }
    }
    Ok(text.to_string())
}

/// `template` with its placeholders filled from `values` (one missing
/// there is left empty).
pub fn render(template: &str, values: &BTreeMap<&str, String>) -> String {
    match pieces(template) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t,
                Piece::Placeholder(name) => values.get(name).map_or("", String::as_str),
            })
            .collect(),
        // Templates are checked when saved; one that is not shows as written.
        Err(_) => template.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_texts_use_only_their_placeholders() {
        for kind in MessageKind::ALL {
            let text = kind.default_template();
            assert_eq!(
                check_template("t", *kind, text),
                Ok(text.to_string()),
                "{kind}"
            );
        }
    }

    #[test]
    fn templates_are_checked_when_saved() {
        let k = MessageKind::OrderShipped;
        assert!(check_template("t", k, "On its way: {tracking_url} {{not a placeholder}}").is_ok());
        let e = check_template("messaging.templates.order_shipped", k, "Paid {amount}")
            .expect_err("not for shipments");
        assert_eq!(e.field, "messaging.templates.order_shipped");
        assert_eq!(e.value.as_deref(), Some("{amount}"));
        assert!(e
            .accepted
            .as_deref()
            .is_some_and(|a| a.contains("{tracking_number}")));
        assert!(check_template("t", k, "oops {reference").is_err());
        assert!(check_template("t", k, "oops }").is_err());
        assert!(check_template("t", k, " ").is_err());
        assert!(check_template("t", k, &"x".repeat(MAX_TEMPLATE_CHARS + 1)).is_err());
    }

    #[test]
    fn rendering_fills_placeholders_and_keeps_escaped_braces() {
        let values = BTreeMap::from([("reference", "ORD-7K3Q-X2MB".to_string())]);
        assert_eq!(
            render("{{{reference}}} {reason}.", &values),
            "{ORD-7K3Q-X2MB} ."
        );
    }

    fn channels() -> MessagingSettings {
        let whatsapp = MetaChannel::parse(
            "w",
            "phone_number_id",
            MetaChannelDraft {
                account_id: "1065",
                access_token: Some("EAAGm0PX4ZCpsBA1234567890"),
                app_secret: Some("0123456789abcdef0123"),
                verify_token: Some("ordo-verify-1"),
            },
            None,
        )
        .expect("valid");
        MessagingSettings {
            whatsapp: Some(whatsapp),
            ..MessagingSettings::default()
        }
    }

    fn an_order() -> Order {
        use crate::fulfilment::tests::{line_of, order_of};
        let mut o = order_of(
            crate::TenantId::new(),
            vec![line_of(None, "Ankara dress", 2, Vec::new())],
        );
        o.reference = crate::OrderReference::parse("ORD-7K3Q-X2MB").expect("reference");
        o
    }

    #[test]
    fn a_new_order_is_told_with_its_items_total_and_buttons() {
        let o = an_order();
        let m = compose(
            &channels(),
            "Ada's Fabrics",
            &o,
            (EventType::OrderCreated, &Value::Null),
            "https://shop.example/o/t",
        )
        .expect("a message");
        assert_eq!(m.to, Recipient::Whatsapp("2348012345678".into()));
        assert!(
            m.text
                .contains("New order ORD-7K3Q-X2MB from Ada's Fabrics"),
            "{}",
            m.text
        );
        assert!(
            m.text.contains("1. Ankara dress ×2 — ₦2,000.00"),
            "{}",
            m.text
        );
        assert!(m.text.contains("Total: ₦2,000.00"), "{}", m.text);
        assert_eq!(
            m.buttons.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
            ["confirm:ORD-7K3Q-X2MB", "cancel:ORD-7K3Q-X2MB"]
        );
        assert_eq!(m.subject, None);
    }

    #[test]
    fn only_events_that_tell_the_buyer_something_send_and_only_where_the_shop_can() {
        let mut o = an_order();
        let m = channels();
        assert_eq!(
            compose(
                &m,
                "s",
                &o,
                (EventType::OrderUpdated, &Value::Null),
                "https://shop.example/o/t"
            ),
            None
        );
        let pending = serde_json::json!({"payment": {"state": "pending"}});
        assert_eq!(
            compose(
                &m,
                "s",
                &o,
                (EventType::PaymentRecorded, &pending),
                "https://shop.example/o/t"
            ),
            None
        );
        assert_eq!(
            compose(
                &MessagingSettings::default(),
                "s",
                &o,
                (EventType::OrderCreated, &Value::Null),
                "https://shop.example/o/t"
            ),
            None,
            "no channel"
        );
        // A buyer with only an email is mailed, when the shop sends email.
        o.buyer = Buyer::parse(Some("Ada"), None, Some("ada@example.com"), None).expect("buyer");
        assert_eq!(
            compose(
                &m,
                "s",
                &o,
                (EventType::OrderCreated, &Value::Null),
                "https://shop.example/o/t"
            ),
            None
        );
        let email = EmailChannel::parse(
            "e",
            EmailChannelDraft {
                host: "127.0.0.1",
                port: 2525,
                security: "none",
                from: "shop@example.com",
                ..EmailChannelDraft::default()
            },
            None,
        )
        .expect("valid");
        let m = MessagingSettings {
            email: Some(email),
            ..m
        };
        let cancelled = serde_json::json!({"reason": "out of stock"});
        let mail = compose(
            &m,
            "Ada's",
            &o,
            (EventType::OrderCancelled, &cancelled),
            "https://shop.example/o/t",
        )
        .expect("mail");
        assert_eq!(
            mail.subject.as_deref(),
            Some("Ada's: order ORD-7K3Q-X2MB was cancelled")
        );
        assert!(
            mail.text.contains("was cancelled: out of stock"),
            "{}",
            mail.text
        );
        assert!(mail.buttons.is_empty());
    }

    #[test]
    fn a_shipment_tells_its_tracking() {
        let o = an_order();
        let data = serde_json::json!({"shipment": {"carrier": "GIG", "tracking_number": "GIG-1", "tracking_url": null}});
        let m = compose(
            &channels(),
            "s",
            &o,
            (EventType::ShipmentShipped, &data),
            "https://shop.example/o/t",
        )
        .expect("sent");
        assert_eq!(
            m.text,
            "🚚 Order ORD-7K3Q-X2MB is on its way!\nCarrier: GIG\nTracking number: GIG-1\n\n🔗 Your order: https://shop.example/o/t"
        );
    }

    #[test]
    fn credentials_are_kept_for_the_same_account_only() {
        let draft = MetaChannelDraft {
            account_id: "106540352242922",
            access_token: Some("EAAGm0PX4ZCpsBA1234567890"),
            app_secret: Some("0123456789abcdef0123"),
            verify_token: Some("ordo-verify-1"),
        };
        let set = MetaChannel::parse("messaging.whatsapp", "phone_number_id", draft, None)
            .expect("valid");
        assert_eq!(format!("{:?}", set.access_token), "…7890");
        let same = MetaChannelDraft {
            account_id: "106540352242922",
            ..MetaChannelDraft::default()
        };
        let kept = MetaChannel::parse("messaging.whatsapp", "phone_number_id", same, Some(&set))
            .expect("kept");
        assert_eq!(kept, set);
        let other = MetaChannelDraft {
            account_id: "999",
            ..MetaChannelDraft::default()
        };
        let errors = MetaChannel::parse("messaging.whatsapp", "phone_number_id", other, Some(&set))
            .expect_err("a new account needs its credentials");
        let fields: Vec<String> = errors.0.into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "messaging.whatsapp.access_token",
                "messaging.whatsapp.app_secret",
                "messaging.whatsapp.verify_token"
            ]
        );
    }

    #[test]
    fn email_settings_are_checked_field_by_field() {
        let draft = EmailChannelDraft {
            host: "smtp.example.com",
            port: 587,
            security: "starttls",
            username: Some("shop"),
            password: Some("hunter2hunter2"),
            from: "orders@example.com",
            from_name: Some("Ada's Fabrics"),
        };
        let set = EmailChannel::parse("messaging.email", draft.clone(), None).expect("valid");
        let again = EmailChannelDraft {
            password: None,
            ..draft.clone()
        };
        assert_eq!(
            EmailChannel::parse("messaging.email", again, Some(&set)).expect("kept"),
            set
        );
        let bad = EmailChannelDraft {
            host: "smtp example",
            port: 70000,
            security: "ssl",
            username: Some("shop"),
            password: None,
            from: "orders",
            from_name: Some("a\nb"),
        };
        let errors = EmailChannel::parse("messaging.email", bad, None).expect_err("bad");
        let fields: Vec<String> = errors.0.into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "messaging.email.host",
                "messaging.email.port",
                "messaging.email.security",
                "messaging.email.password",
                "messaging.email.from",
                "messaging.email.from_name"
            ]
        );
    }
}

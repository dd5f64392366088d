//! What Meta's webhooks bring: buyers' messages (text, a tapped button,
//! an image or a document) and the fate of the messages ordo sent
//! (`sent`, `delivered`, `read`, `failed`), read from the WhatsApp Cloud
//! API's and Instagram messaging's payload shapes. Anything else in a
//! payload is skipped, never an error: Meta adds fields and kinds freely.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contact::ChannelId;

/// What a buyer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        body: String,
    },
    /// A reply button they tapped (its id, as ordo set it).
    Button {
        id: String,
        title: String,
    },
    /// An image or a document: WhatsApp's media id (fetched through the
    /// Graph API) or Instagram's attachment URL.
    Media {
        media: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
    },
    /// A kind ordo does not read (a sticker, a location, a voice note…).
    Other {
        kind: String,
    },
}

/// A buyer's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The channel's id of it (`wamid.…`, `mid.…`): a repeat has the same.
    pub id: String,
    pub from: ChannelId,
    pub content: Content,
}

/// What the channel says of a message ordo sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub provider_id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What ordo gave the message to carry back (its order), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
}

/// One webhook's worth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub messages: Vec<Inbound>,
    pub statuses: Vec<Status>,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// Reads a WhatsApp Cloud API webhook (`object: whatsapp_business_account`)
/// for the business number `account` (others of the same Meta app are
/// skipped).
pub fn whatsapp(body: &Value, account: &str) -> Delivery {
    let mut out = Delivery::default();
    let values = array(&body["entry"])
        .iter()
        .flat_map(|e| array(&e["changes"]))
        .filter(|c| c["field"] == "messages")
        .map(|c| &c["value"])
        .filter(|v| v["metadata"]["phone_number_id"] == account);
    for value in values {
        for m in array(&value["messages"]) {
            let (Some(id), Some(from)) = (text(&m["id"]), text(&m["from"])) else {
                continue;
            };
            let Ok(from) = ChannelId::parse(&format!("wa_{from}")) else {
                continue;
            };
            let kind = m["type"].as_str().unwrap_or_default();
            let content = match kind {
                "text" => Content::Text {
                    body: text(&m["text"]["body"]).unwrap_or_default(),
                },
                "interactive" => {
                    let reply = match m["interactive"]["type"].as_str() {
                        Some("list_reply") => &m["interactive"]["list_reply"],
                        _ => &m["interactive"]["button_reply"],
                    };
                    Content::Button {
                        id: text(&reply["id"]).unwrap_or_default(),
                        title: text(&reply["title"]).unwrap_or_default(),
                    }
                }
                // A template's quick reply.
                "button" => Content::Button {
                    id: text(&m["button"]["payload"]).unwrap_or_default(),
                    title: text(&m["button"]["text"]).unwrap_or_default(),
                },
                "image" | "document" => Content::Media {
                    media: text(&m[kind]["id"]).unwrap_or_default(),
                    mime_type: text(&m[kind]["mime_type"]),
                    caption: text(&m[kind]["caption"]),
                },
                other => Content::Other { kind: other.into() },
            };
            out.messages.push(Inbound { id, from, content });
        }
        for s in array(&value["statuses"]) {
            let (Some(provider_id), Some(status)) = (text(&s["id"]), text(&s["status"])) else {
                continue;
            };
            let error = array(&s["errors"]).first().map(|e| {
                let title = e["title"].as_str().unwrap_or("failed");
                match e["error_data"]["details"].as_str() {
                    Some(details) => format!("{title}: {details}"),
                    None => title.to_string(),
                }
            });
            out.statuses.push(Status {
                provider_id,
                status,
                error,
                callback: text(&s["biz_opaque_callback_data"]),
            });
        }
    }
    out
}

/// Reads an Instagram messaging webhook (`object: instagram`) for the
/// account `account` (others are skipped). Echoes of the shop's own
/// messages are skipped.
pub fn instagram(body: &Value, account: &str) -> Delivery {
    let mut out = Delivery::default();
    let events = array(&body["entry"])
        .iter()
        .filter(|e| e["id"] == account)
        .flat_map(|e| array(&e["messaging"]));
    for e in events {
        let m = &e["message"];
        if m.is_null() || m["is_echo"] == true {
            continue;
        }
        let (Some(id), Some(from)) = (text(&m["mid"]), text(&e["sender"]["id"])) else {
            continue;
        };
        let Ok(from) = ChannelId::parse(&format!("ig_{from}")) else {
            continue;
        };
        let attachment = array(&m["attachments"])
            .iter()
            .find(|a| matches!(a["type"].as_str(), Some("image" | "file")));
        let content = if let Some(payload) = m["quick_reply"]["payload"].as_str() {
            Content::Button {
                id: payload.into(),
                title: text(&m["text"]).unwrap_or_default(),
            }
        } else if let Some(a) = attachment {
            Content::Media {
                media: text(&a["payload"]["url"]).unwrap_or_default(),
                mime_type: None,
                caption: text(&m["text"]),
            }
        } else if let Some(body) = text(&m["text"]) {
            Content::Text { body }
        } else {
            Content::Other {
                kind: "attachment".into(),
            }
        };
        out.messages.push(Inbound { id, from, content });
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn wa(messages: Value, statuses: Value) -> Value {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "2348000000000", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": "2348012345678"}],
            "messages": messages, "statuses": statuses
        }}]}]})
    }

    #[test]
    fn whatsapp_messages_of_every_kind_are_read() {
        let body = wa(
            json!([
                {"from": "2348012345678", "id": "wamid.1", "timestamp": "1700000000", "type": "text", "text": {"body": "confirm"}},
                {"from": "2348012345678", "id": "wamid.2", "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "cancel:ORD-7K3Q-X2MB", "title": "Cancel"}}},
                {"from": "2348012345678", "id": "wamid.3", "type": "image", "image": {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "ORD-7K3Q-X2MB"}},
                {"from": "2348012345678", "id": "wamid.4", "type": "document", "document": {"id": "MEDIA2", "mime_type": "application/pdf", "filename": "r.pdf"}},
                {"from": "2348012345678", "id": "wamid.5", "type": "sticker", "sticker": {"id": "S"}},
                {"from": "not a number", "id": "wamid.6", "type": "text", "text": {"body": "x"}},
                {"id": "wamid.7", "type": "text"}
            ]),
            json!([]),
        );
        let d = whatsapp(&body, "106540352242922");
        assert!(
            whatsapp(&body, "999").messages.is_empty(),
            "another number of the same app"
        );
        let contents: Vec<&Content> = d.messages.iter().map(|m| &m.content).collect();
        assert_eq!(
            contents,
            [
                &Content::Text {
                    body: "confirm".into()
                },
                &Content::Button {
                    id: "cancel:ORD-7K3Q-X2MB".into(),
                    title: "Cancel".into()
                },
                &Content::Media {
                    media: "MEDIA1".into(),
                    mime_type: Some("image/jpeg".into()),
                    caption: Some("ORD-7K3Q-X2MB".into())
                },
                &Content::Media {
                    media: "MEDIA2".into(),
                    mime_type: Some("application/pdf".into()),
                    caption: None
                },
                &Content::Other {
                    kind: "sticker".into()
                },
            ]
        );
        assert_eq!(d.messages[0].from.to_string(), "wa_2348012345678");
    }

    #[test]
    fn whatsapp_statuses_carry_their_callback_and_error() {
        let body = wa(
            json!([]),
            json!([
                {"id": "wamid.9", "status": "delivered", "timestamp": "1", "recipient_id": "2348012345678", "biz_opaque_callback_data": "ord_1"},
                {"id": "wamid.10", "status": "failed", "errors": [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "not on WhatsApp"}}]}
            ]),
        );
        let d = whatsapp(&body, "106540352242922");
        assert_eq!(d.statuses[0].callback.as_deref(), Some("ord_1"));
        assert_eq!(
            d.statuses[1].error.as_deref(),
            Some("Message undeliverable: not on WhatsApp")
        );
        assert!(whatsapp(&json!({"object": "page"}), "1")
            .messages
            .is_empty());
    }

    #[test]
    fn instagram_messages_are_read_and_echoes_skipped() {
        let body = json!({"object": "instagram", "entry": [{"id": "17841400000000", "time": 1, "messaging": [
            {"sender": {"id": "6543210987654"}, "recipient": {"id": "17841400000000"}, "timestamp": 1, "message": {"mid": "mid.1", "text": "where is my order"}},
            {"sender": {"id": "6543210987654"}, "recipient": {"id": "17841400000000"}, "message": {"mid": "mid.2", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/r.jpg"}}]}},
            {"sender": {"id": "17841400000000"}, "recipient": {"id": "6543210987654"}, "message": {"mid": "mid.3", "text": "hi", "is_echo": true}},
            {"sender": {"id": "6543210987654"}, "recipient": {"id": "17841400000000"}, "read": {"mid": "mid.0"}}
        ]}]});
        let d = instagram(&body, "17841400000000");
        assert!(instagram(&body, "1").messages.is_empty());
        assert_eq!(d.messages.len(), 2);
        assert_eq!(d.messages[0].from.to_string(), "ig_6543210987654");
        assert_eq!(
            d.messages[1].content,
            Content::Media {
                media: "https://cdn.example/r.jpg".into(),
                mime_type: None,
                caption: None
            }
        );
    }
}

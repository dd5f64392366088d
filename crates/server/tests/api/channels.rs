//! Sending buyer messages (issue 8) against a fake Graph API and an SMTP
//! sink on 127.0.0.1.

use std::time::Duration;

use ordo::channels::{Channels, SendError};
use ordo::config::MessagingConfig;
use ordo_domain::messaging::{
    Button, EmailChannel, EmailChannelDraft, MessageKind, MessagingSettings, MetaChannel,
    MetaChannelDraft, Outgoing, Recipient,
};
use ordo_domain::Email;
use serde_json::json;

use crate::meta::{FakeGraph, GraphReply, SmtpSink};

const TOKEN: &str = "EAAGm0PX4ZCpsBAKZCx2Zd";

fn meta(id: &str) -> MetaChannel {
    MetaChannel::parse(
        "m",
        "account_id",
        MetaChannelDraft {
            account_id: id,
            access_token: Some(TOKEN),
            app_secret: Some("0123456789abcdef0123"),
            verify_token: Some("ordo-verify-1"),
        },
        None,
    )
    .unwrap()
}

fn settings(port: u16) -> MessagingSettings {
    let email = EmailChannel::parse(
        "e",
        EmailChannelDraft {
            host: "127.0.0.1",
            port: i64::from(port),
            security: "none",
            from: "orders@adafabrics.example",
            from_name: None,
            ..EmailChannelDraft::default()
        },
        None,
    )
    .unwrap();
    MessagingSettings {
        whatsapp: Some(meta("106540352242922")),
        instagram: Some(meta("17841400000000")),
        email: Some(email),
        ..MessagingSettings::default()
    }
}

fn channels(graph: &FakeGraph, timeout_ms: u64) -> Channels {
    Channels::new(
        &MessagingConfig {
            graph_base_url: graph.base_url.clone(),
            timeout_ms,
        },
        true,
    )
}

fn message(to: Recipient, text: &str, buttons: bool) -> Outgoing {
    Outgoing {
        kind: Some(MessageKind::OrderCreated),
        callback: None,
        to,
        text: text.into(),
        subject: Some("Ada's Fabrics: your new order ORD-7K3Q-X2MB".into()),
        buttons: match buttons {
            true => vec![
                Button {
                    id: "confirm:ORD-7K3Q-X2MB".into(),
                    title: "Confirm".into(),
                },
                Button {
                    id: "cancel:ORD-7K3Q-X2MB".into(),
                    title: "Cancel".into(),
                },
            ],
            false => Vec::new(),
        },
    }
}

#[tokio::test]
async fn whatsapp_and_instagram_messages_go_through_the_graph_api() {
    let graph = FakeGraph::start().await;
    let sink = SmtpSink::start().await;
    let ch = channels(&graph, 2_000);
    let m = settings(sink.port);
    let wa = Recipient::Whatsapp("2348012345678".into());
    let sent = ch
        .send(&m, "Ada's Fabrics", &message(wa.clone(), "New order", true))
        .await
        .unwrap();
    assert_eq!(sent.provider_id, "wamid.1");
    let call = &graph.calls()[0];
    assert_eq!(call.account, "106540352242922");
    assert_eq!(
        call.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(call.body["type"], "interactive");
    assert_eq!(call.body["to"], "2348012345678");
    assert_eq!(call.body["interactive"]["body"]["text"], "New order");
    assert_eq!(
        call.body["interactive"]["action"]["buttons"][0],
        json!({"type": "reply", "reply": {"id": "confirm:ORD-7K3Q-X2MB", "title": "Confirm"}})
    );

    // Too long for buttons: plain text, which says what to reply.
    let long = "x".repeat(1_500);
    ch.send(&m, "s", &message(wa, &long, true)).await.unwrap();
    assert_eq!(graph.calls()[1].body["type"], "text");
    assert_eq!(graph.calls()[1].body["text"]["body"], long);

    let ig = Recipient::Instagram("6543210987654".into());
    let sent = ch
        .send(&m, "s", &message(ig, "Hello", false))
        .await
        .unwrap();
    assert_eq!(sent.provider_id, "mid.3");
    let call = &graph.calls()[2];
    assert_eq!(call.account, "17841400000000");
    assert_eq!(
        call.body,
        json!({"recipient": {"id": "6543210987654"}, "message": {"text": "Hello"}})
    );
}

#[tokio::test]
async fn failures_say_whether_to_try_again() {
    let graph = FakeGraph::start().await;
    let ch = channels(&graph, 300);
    let m = settings(1);
    let wa = || message(Recipient::Whatsapp("2348012345678".into()), "Hi", false);
    graph.then([
        GraphReply::Error(503, "Service temporarily unavailable"),
        GraphReply::Error(429, "Too many calls"),
        GraphReply::Error(400, "Recipient phone number not in allowed list"),
        GraphReply::Slow(Duration::from_millis(800)),
    ]);
    for _ in 0..2 {
        assert!(matches!(
            ch.send(&m, "s", &wa()).await,
            Err(SendError::Transient(_))
        ));
    }
    match ch.send(&m, "s", &wa()).await {
        Err(SendError::Refused(why)) => {
            assert!(
                why.contains("HTTP 400: Recipient phone number not in allowed list"),
                "{why}"
            );
            assert!(!why.contains(TOKEN));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match ch.send(&m, "s", &wa()).await {
        Err(SendError::Transient(why)) => assert!(why.contains("no answer in time"), "{why}"),
        other => panic!("expected a time-out, got {other:?}"),
    }
    let none = MessagingSettings::default();
    assert_eq!(
        ch.send(&none, "s", &wa()).await,
        Err(SendError::NoChannel("WhatsApp"))
    );
}

#[tokio::test]
async fn email_goes_through_a_real_smtp_conversation() {
    let graph = FakeGraph::start().await;
    let sink = SmtpSink::start().await;
    let ch = channels(&graph, 2_000);
    let m = settings(sink.port);
    let to = Recipient::Email(Email::parse("ada@example.com").unwrap());
    let sent = ch
        .send(
            &m,
            "Ada's Fabrics",
            &message(to.clone(), "Your order ₦10,000.00", false),
        )
        .await
        .unwrap();
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "orders@adafabrics.example");
    assert_eq!(mail.to, ["ada@example.com"]);
    assert!(
        mail.data
            .contains("Subject: Ada's Fabrics: your new order ORD-7K3Q-X2MB"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains(&format!("Message-ID: {}", sent.provider_id)),
        "{}",
        mail.data
    );
    // The shop's name, encoded for mail headers (RFC 2047).
    assert!(
        mail.data
            .contains("From: =?utf-8?b?QWRhJ3MgRmFicmljcw==?= <orders@adafabrics.example>"),
        "{}",
        mail.data
    );

    sink.refuse(["451 4.3.0 try again later", "550 5.1.1 no such mailbox"]);
    assert!(matches!(
        ch.send(&m, "s", &message(to.clone(), "x", false)).await,
        Err(SendError::Transient(_))
    ));
    assert!(matches!(
        ch.send(&m, "s", &message(to, "x", false)).await,
        Err(SendError::Refused(_))
    ));
}

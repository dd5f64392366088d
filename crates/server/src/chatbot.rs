//! The order chatbot: a buyer's message, queued by the channel's webhook,
//! read (`intent::understand`), placed among the sender's own orders
//! (`dialogue::decide`), acted on as the buyer (confirm, cancel, attach a
//! receipt) and answered on the buyer's channel. The answers to what
//! changed an order are the order's own event messages ("✅ Order …
//! confirmed!"); the bot itself answers questions, refusals and what it
//! could not place.

use ordo_domain::dialogue::{decide, receipt, Act, Answer, Question, Step};
use ordo_domain::inbound::{Content, Inbound};
use ordo_domain::intent::{understand, Intent, Understood};
use ordo_domain::messaging::{Outgoing, Recipient};
use ordo_domain::{
    Actor, ChannelId, FileKind, Order, OrderId, OrderReference, PaymentStatus, TenantSettings,
    Timestamp,
};
use ordo_store::{
    Job, JobOutcome, NewJob, OrderFilter, OrderLookup, OrderQuery, Scope, Sort, SortField, Store,
    StoreError,
};
use serde_json::json;

use crate::api::error::ApiError;
use crate::app::AppState;
use crate::channels::{Channels, SendError};

/// Reads and answers one buyer message.
pub const INBOUND_JOB: &str = "inbound";

/// The most of the sender's orders the bot looks through (newest first).
const RECENT_ORDERS: u32 = 20;

/// Queues a buyer's message for the bot; `false` when it was queued
/// before (the channel delivered it again).
pub async fn queue(
    store: &dyn Store,
    tenant: ordo_domain::TenantId,
    m: &Inbound,
) -> Result<bool, StoreError> {
    store
        .schedule_job(NewJob {
            tenant_id: Some(tenant),
            key: format!("{INBOUND_JOB}:{}", m.id),
            kind: INBOUND_JOB.into(),
            payload: json!({ "message": m }),
            run_at: Timestamp::now(),
        })
        .await
}

/// Runs an [`INBOUND_JOB`].
pub async fn run(
    state: &AppState,
    channels: &Channels,
    job: &Job,
) -> Result<JobOutcome, StoreError> {
    let message: Option<Inbound> = serde_json::from_value(job.payload["message"].clone()).ok();
    let (Some(tenant), Some(message)) = (job.tenant_id, message) else {
        return Ok(JobOutcome::Dead {
            error: format!("an inbound job without a message: {}", job.payload),
        });
    };
    let store = state.store();
    let (settings, shop) = crate::messages::shop_of(state, tenant).await?;
    let scope = Scope::tenant(tenant);
    let orders = buyer_orders(store, &scope, &message.from).await?;
    let channel = message.from.to_string();
    let now = Timestamp::now();
    let open: Option<Question> = store
        .conversation(tenant, &channel)
        .await?
        .and_then(|v| serde_json::from_value(v).ok());
    let step = match &message.content {
        Content::Text { body } => decide(understand(body), &orders, open.as_ref(), now),
        Content::Button { id, title } => decide(button(id, title), &orders, open.as_ref(), now),
        Content::Media { media, caption, .. } => {
            let named = caption.as_deref().and_then(|c| understand(c).reference);
            receipt(media.clone(), named.as_ref(), &orders, now)
        }
        Content::Other { .. } => Step::Say(Answer::NotUnderstood),
    };
    tracing::info!(from = %message.from.masked(), step = ?step_name(&step), "the chatbot read a message");
    let asked = matches!(step, Step::Ask(_));
    // A question waits for its answer.
    if let Step::Ask(q) = &step {
        store
            .save_conversation(tenant, &channel, serde_json::to_value(q).ok())
            .await?;
    }
    let bot = Bot {
        state,
        channels,
        settings: &settings,
        shop: &shop,
        scope,
        from: &message.from,
    };
    let (answer, about) = match step {
        Step::Ask(q) => (Some(bot.question(&q, &orders)), None),
        Step::Say(answer) => (Some(bot.say(&answer, &orders)), None),
        Step::Act { act, order } => {
            let Some(order) = orders.iter().find(|o| o.id == order) else {
                return Ok(JobOutcome::Done);
            };
            (bot.act(act, order).await?, Some(order.id))
        }
    };
    // Anything but a question closes the open one, once what it asked is
    // done (a failure on the way is retried with the question still open).
    if open.is_some() && !asked {
        store.save_conversation(tenant, &channel, None).await?;
    }
    if let Some(text) = answer {
        bot.answer(text, about).await;
    }
    Ok(JobOutcome::Done)
}

/// A tapped button: ordo's own (`confirm:ORD-…`) says what and which;
/// another is read by its title.
fn button(id: &str, title: &str) -> Understood {
    let (act, reference) = id.split_once(':').unwrap_or((id, ""));
    let intent = match act {
        "confirm" => Intent::Confirm,
        "cancel" => Intent::Cancel { reason: None },
        _ => return understand(title),
    };
    Understood {
        intent,
        reference: OrderReference::parse(reference),
    }
}

fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Act { .. } => "act",
        Step::Ask(_) => "ask",
        Step::Say(_) => "say",
    }
}

/// The sender's latest orders, newest first: theirs only.
async fn buyer_orders(
    store: &dyn Store,
    scope: &Scope,
    from: &ChannelId,
) -> Result<Vec<Order>, StoreError> {
    let query = OrderQuery {
        filter: OrderFilter {
            buyer_channel_id: Some(from.clone()),
            ..OrderFilter::default()
        },
        sort: Sort {
            field: SortField::CreatedAt,
            descending: true,
        },
        after: None,
        limit: RECENT_ORDERS,
    };
    let found = store.rendered_orders(scope, &query).await?;
    let mut orders = Vec::with_capacity(found.len());
    for r in found {
        if let Some(o) = store.order(scope, &OrderLookup::Id(r.id)).await? {
            orders.push(o);
        }
    }
    Ok(orders)
}

/// What the bot needs to act and answer for one message.
struct Bot<'a> {
    state: &'a AppState,
    channels: &'a Channels,
    settings: &'a TenantSettings,
    shop: &'a str,
    scope: Scope,
    from: &'a ChannelId,
}

impl Bot<'_> {
    fn recipient(&self) -> Recipient {
        match self.from {
            ChannelId::WhatsApp(d) => Recipient::Whatsapp(d.clone()),
            ChannelId::Instagram(i) => Recipient::Instagram(i.clone()),
        }
    }

    /// Sends `text` to the buyer; an answer about an order goes on its
    /// timeline (`message.sent` of kind `reply`). A failure is logged, not
    /// retried: what the message asked was done, and doing it again is not
    /// wanted.
    async fn answer(&self, text: String, about: Option<OrderId>) {
        let mut out = Outgoing::text(self.recipient(), text);
        out.callback = about.map(|id| id.to_string());
        let sent = match self
            .channels
            .send(&self.settings.messaging, self.shop, &out)
            .await
        {
            Ok(sent) => sent,
            Err(e) => {
                tracing::warn!(to = %self.from.masked(), error = %e, "could not answer the buyer");
                return;
            }
        };
        let Some(order) = about else {
            return;
        };
        let draft = ordo_domain::EventDraft {
            event_type: ordo_domain::EventType::MessageSent,
            data: json!({
                "kind": "reply",
                "channel": match self.from { ChannelId::WhatsApp(_) => "whatsapp", ChannelId::Instagram(_) => "instagram" },
                "to": self.from.masked(),
                "provider_id": sent.provider_id,
            }),
        };
        let appended = self
            .state
            .store()
            .append_events(
                self.scope.clone(),
                order,
                Actor::system(),
                Timestamp::now(),
                vec![draft],
            )
            .await;
        if let Err(e) = appended {
            tracing::warn!(%order, error = %e, "an answer to the buyer is not on the order's timeline");
        }
    }

    /// Does `act` to `order` as the buyer; the answer when the order's own
    /// message does not give it.
    async fn act(&self, act: Act, order: &Order) -> Result<Option<String>, StoreError> {
        let by = (self.scope.clone(), Actor::buyer(self.from.to_string()));
        let lookup = OrderLookup::Id(order.id);
        let reference = &order.reference;
        let done = match act {
            Act::Confirm => {
                let settings = self.settings.clone();
                crate::orders::change_by(self.state, by, lookup, None, Vec::new(), move |o, b, now| {
                    crate::orders::confirm(o, b, now, &settings)
                })
                .await
            }
            // Money was paid: the shop cancels it, and sees to the refund.
            Act::Cancel { .. } if order.payment_status != PaymentStatus::Unpaid => {
                return Ok(Some(format!(
                    "Order {reference} has a payment on it, so {} will cancel it for you and see to your money. Please message them.",
                    self.shop
                )))
            }
            Act::Cancel { reason } => {
                let reason = reason.unwrap_or_else(|| "cancelled by the buyer".into());
                crate::orders::change_by(self.state, by, lookup, None, Vec::new(), move |o, b, now| {
                    crate::orders::cancel(o, b, now, reason)
                })
                .await
            }
            Act::Status => return Ok(Some(self.status(order))),
            Act::Receipt => {
                return Ok(Some(format!(
                    "📸 To pay for order {reference}, send a photo (or the PDF) of your payment receipt here."
                )))
            }
            Act::AttachReceipt { media_id } => return self.attach(order, &media_id).await,
        };
        Ok(match done {
            // The order's event tells the buyer (when it changed anything).
            Ok(changed) if changed.event.is_some() => None,
            Ok(_) => Some(self.status(order)),
            // Tried again later, the question (if any) still open.
            Err(ApiError::Unavailable(e)) => return Err(StoreError::Unavailable(e)),
            Err(e) => Some(format!(
                "Sorry, we could not do that for order {reference}: {e}."
            )),
        })
    }

    /// Fetches the buyer's file and puts it in review on `order`.
    async fn attach(&self, order: &Order, media: &str) -> Result<Option<String>, StoreError> {
        let max = self.state.config().files.receipt_max_bytes;
        let file = match self
            .channels
            .download(&self.settings.messaging, self.from, media, max)
            .await
        {
            Ok(file) => file,
            Err(SendError::Transient(e)) => return Err(StoreError::Unavailable(e)),
            Err(e) => {
                tracing::warn!(from = %self.from.masked(), error = %e, "a receipt could not be fetched");
                return Ok(Some(
                    "Sorry, we could not get that file. Please send it again.".into(),
                ));
            }
        };
        let Some(kind) = FileKind::sniff(&file) else {
            return Ok(Some(
                "That file is not a photo (JPEG, PNG, WebP) or a PDF. Please send your payment receipt as one."
                    .into(),
            ));
        };
        let by = (self.scope.clone(), Actor::buyer(self.from.to_string()));
        let attached =
            crate::api::receipts::attach(self.state, by, order, file.into(), None, kind).await;
        Ok(match attached {
            // `receipt.uploaded` tells the buyer.
            Ok(_) => None,
            Err(e) => Some(format!(
                "Sorry, we could not take that receipt for order {}: {e}.",
                order.reference
            )),
        })
    }

    fn money(&self, order: &Order, minor: i64) -> String {
        order.currency.display_amount(minor)
    }

    /// Where `order` stands, in a line or three.
    fn status(&self, order: &Order) -> String {
        let t = order.ledger.totals(order.total);
        let mut text = format!(
            "📋 Order {}: {}\n💰 Total {}, paid {}",
            order.reference,
            order.stage().as_str().replace('_', " "),
            self.money(order, order.total),
            self.money(order, t.net),
        );
        if let Some(s) = order.shipments.iter().rev().find(|s| s.state.has_shipped()) {
            let tracking = [
                s.tracking.carrier.as_deref(),
                s.tracking.tracking_number.as_deref(),
                s.tracking.tracking_url.as_deref(),
            ];
            let tracking: Vec<&str> = tracking.into_iter().flatten().collect();
            if !tracking.is_empty() {
                text.push_str(&format!("\n🚚 {}", tracking.join(" · ")));
            }
        }
        text
    }

    fn line(&self, n: usize, order: &Order) -> String {
        format!(
            "{n}. {} — {} ({})",
            order.reference,
            self.money(order, order.total),
            order.stage().as_str().replace('_', " ")
        )
    }

    fn question(&self, q: &Question, orders: &[Order]) -> String {
        let what = match q.act {
            Act::Confirm => "confirm",
            Act::Cancel { .. } => "cancel",
            Act::Status => "check",
            Act::Receipt | Act::AttachReceipt { .. } => "pay for",
        };
        let lines: Vec<String> = q
            .choices
            .iter()
            .filter_map(|id| orders.iter().find(|o| o.id == *id))
            .enumerate()
            .map(|(i, o)| self.line(i + 1, o))
            .collect();
        format!(
            "Which order do you want to {what}?\n{}\n\nReply with its number.",
            lines.join("\n")
        )
    }

    fn say(&self, answer: &Answer, orders: &[Order]) -> String {
        let shop = self.shop;
        match answer {
            Answer::Help => format!(
                "Hi! I can help with your orders at {shop}:\n• CONFIRM: go ahead with your order\n• CANCEL: call it off\n• STATUS: where your order is\n• MY ORDERS: your orders\n• Send a photo of your payment receipt once you have paid.\nAdd the order number (like {}) when you have more than one.",
                orders.first().map_or("ORD-7K3Q-X2MB".to_string(), |o| o.reference.to_string())
            ),
            Answer::Orders(ids) => {
                let lines: Vec<String> = ids
                    .iter()
                    .filter_map(|id| orders.iter().find(|o| o.id == *id))
                    .enumerate()
                    .map(|(i, o)| self.line(i + 1, o))
                    .collect();
                format!("Your orders at {shop}:\n{}", lines.join("\n"))
            }
            Answer::NotUnderstood => format!(
                "Sorry, I did not understand that. Reply HELP to see what I can do; someone at {shop} will also read your message."
            ),
            Answer::NoSuchChoice { offered: 0 } => {
                "There is no question waiting for a number. Reply HELP to see what I can do.".into()
            }
            Answer::NoSuchChoice { offered } => {
                format!("Please reply with a number from 1 to {offered}.")
            }
            Answer::NoOrders => match &self.settings.whatsapp_number {
                Some(number) => format!(
                    "We have no order for you at {shop} yet. To order, message {shop} on {}.",
                    number.as_str()
                ),
                None => format!("We have no order for you at {shop} yet. To order, message {shop} directly."),
            },
            Answer::UnknownOrder(reference) => format!(
                "We could not find order {reference} for you. Check the number, or reply MY ORDERS to see yours."
            ),
            Answer::NothingFor(act) => match act {
                Act::Confirm => "You have no order waiting to be confirmed.".into(),
                Act::Cancel { .. } => "You have no order that can still be cancelled (one that has shipped cannot be).".into(),
                _ => "You have no order waiting for payment.".into(),
            },
        }
    }
}

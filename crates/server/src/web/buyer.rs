//! The buyer's order page, `/o/{token}`: no account, the signed link is
//! the key (see [`crate::links`]). The buyer sees the order's stage, lines,
//! totals and what is still to pay and how, confirms or cancels it while
//! that is theirs to do, uploads a payment receipt, and reaches the shop.
//! What they do goes through the same use cases as the chatbot, as the
//! buyer (`"actor": {"type": "buyer"}` on the timeline).

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use minijinja::context;
use ordo_domain::{Action, Actor, Order, OrderStatus, PaymentStatus, TenantSettings};
use ordo_store::{OrderLookup, Scope};
use serde_json::{json, Value};

use super::{flash_to, page_with_flash, problem_of, take_flash, Web, BUYER};
use crate::api::error::ApiError;
use crate::links::{self, Link, Refused};

/// An order opened by its link, with what the page needs around it.
struct Opened {
    link: Link,
    order: Order,
    settings: TenantSettings,
    shop: String,
}

impl Opened {
    /// Who acts: the buyer, known by how the shop reaches them.
    fn actor(&self) -> Actor {
        let b = &self.order.buyer;
        let id = b
            .channel_id
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| b.phone.as_ref().map(|p| p.as_str().to_string()))
            .or_else(|| b.email.as_ref().map(|e| e.as_str().to_string()))
            .unwrap_or_else(|| "order page".into());
        Actor::buyer(id)
    }

    fn by(&self) -> (Scope, Actor) {
        (Scope::tenant(self.link.tenant), self.actor())
    }

    /// Changes the order as its buyer.
    async fn change(
        &self,
        state: &crate::app::AppState,
        change: impl FnOnce(
                &mut Order,
                &mut ordo_domain::StockBook,
                ordo_domain::Timestamp,
            ) -> Result<Option<ordo_domain::EventDraft>, ordo_domain::Refusal>
            + Send
            + 'static,
    ) -> Result<ordo_store::Changed, ApiError> {
        crate::orders::change_by(
            state,
            self.by(),
            OrderLookup::Id(self.order.id),
            None,
            Vec::new(),
            change,
        )
        .await
    }

    fn may_confirm(&self) -> bool {
        self.order.allowed_actions().contains(&Action::Confirm)
    }

    /// A buyer cancels only an order nothing was paid on: with money on
    /// it, the shop cancels and sees to the refund (as in the chat).
    fn may_cancel(&self) -> bool {
        self.order.allowed_actions().contains(&Action::Cancel)
            && self.order.payment_status == PaymentStatus::Unpaid
    }

    fn may_upload(&self) -> bool {
        self.order.status != OrderStatus::Cancelled
            && self.order.ledger.totals(self.order.total).due > 0
    }
}

/// Opens `token`'s order, or the page that says why it cannot be.
async fn open(web: &Web, token: &str) -> Result<Opened, Response> {
    let state = web.app();
    let link = match links::read(state, token).await {
        Ok(Ok(link)) => link,
        Ok(Err(Refused::Invalid)) => {
            return Err(message(
                web,
                StatusCode::NOT_FOUND,
                "This link does not work",
                "Check that it was copied whole, or ask the shop for a new one.",
            ))
        }
        Ok(Err(Refused::Expired(link))) => {
            let shop = crate::messages::shop_of(state, link.tenant).await.ok();
            let contact = shop
                .as_ref()
                .and_then(|(s, _)| s.whatsapp_number.as_ref())
                .map(|n| n.as_str().to_string());
            let name = shop.map_or_else(|| "the shop".into(), |(_, n)| n);
            return Err(web.pages().render(
                StatusCode::GONE,
                "message.html",
                context! {
                    title => "This link has expired",
                    message => format!("Ask {name} for a new link to your order."),
                    contact => contact,
                },
            ));
        }
        Err(e) => return Err(unavailable(web, &e.to_string())),
    };
    let scope = Scope::tenant(link.tenant);
    let order = match state
        .store()
        .order(&scope, &OrderLookup::Id(link.order))
        .await
    {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Err(message(
                web,
                StatusCode::NOT_FOUND,
                "This order is no longer here",
                "Ask the shop about it.",
            ))
        }
        Err(e) => return Err(unavailable(web, &e.to_string())),
    };
    let (settings, shop) = match crate::messages::shop_of(state, link.tenant).await {
        Ok(s) => s,
        Err(e) => return Err(unavailable(web, &e.to_string())),
    };
    Ok(Opened {
        link,
        order,
        settings,
        shop,
    })
}

fn message(web: &Web, status: StatusCode, title: &str, text: &str) -> Response {
    web.pages().render(
        status,
        "message.html",
        context! { title => title, message => text },
    )
}

fn unavailable(web: &Web, detail: &str) -> Response {
    tracing::warn!(error = detail, "the buyer's page could not be served");
    message(
        web,
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again in a moment",
        "The shop's system is not answering.",
    )
}

pub(crate) async fn page(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let opened = match open(&web, &token).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let order = crate::api::orders::OrderResponse::from_domain(&opened.order);
    let whatsapp = opened
        .settings
        .whatsapp_number
        .as_ref()
        .map(|n| n.as_str().to_string());
    let flash = take_flash(&headers);
    let max_mb = web.app().config().files.receipt_max_bytes / (1024 * 1024);
    page_with_flash(
        &web,
        &headers,
        BUYER,
        flash.is_some(),
        web.pages().render(
            StatusCode::OK,
            "buyer.html",
            context! {
                shop => opened.shop,
                order => order,
                here => format!("/o/{token}"),
                may_confirm => opened.may_confirm(),
                may_cancel => opened.may_cancel(),
                may_upload => opened.may_upload(),
                paid_but_open => !opened.may_cancel() && opened.order.allowed_actions().contains(&Action::Cancel),
                instructions => opened.settings.payment_instructions,
                whatsapp => whatsapp,
                max_mb => max_mb.max(1),
                flash => flash,
            },
        ),
    )
}

/// Where an action goes back to, with what happened.
fn back(web: &Web, headers: &HeaderMap, token: &str, outcome: Value) -> Response {
    flash_to(web, headers, BUYER, &format!("/o/{token}"), &outcome)
}

fn outcome(form: &str, done: Result<ordo_store::Changed, ApiError>, ok: &str) -> Value {
    match done {
        Ok(_) => json!({"ok": ok}),
        Err(e) => json!({"form": form, "problem": problem_of(&e)}),
    }
}

pub(crate) async fn confirm(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let opened = match open(&web, &token).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let settings = opened.settings.clone();
    let done = opened
        .change(web.app(), move |o, book, now| {
            crate::orders::confirm(o, book, now, &settings)
        })
        .await;
    let outcome = outcome("confirm", done, "Thank you: your order is confirmed.");
    back(&web, &headers, &token, outcome)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CancelForm {
    #[serde(default)]
    reason: String,
}

pub(crate) async fn cancel(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let opened = match open(&web, &token).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if !opened.may_cancel() {
        let outcome = json!({"form": "cancel", "problem": {
            "title": "Not cancelled",
            "status": 409,
            "detail": format!("This order cannot be cancelled here now: {} will help you with it.", opened.shop),
        }});
        return back(&web, &headers, &token, outcome);
    }
    let reason = match form.reason.trim() {
        "" => "cancelled by the buyer".to_string(),
        r => r.chars().take(500).collect(),
    };
    let done = opened
        .change(web.app(), move |o, book, now| {
            crate::orders::cancel(o, book, now, reason)
        })
        .await;
    let outcome = outcome("cancel", done, "Your order is cancelled.");
    back(&web, &headers, &token, outcome)
}

pub(crate) async fn receipt(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(token): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let opened = match open(&web, &token).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    let state = web.app();
    let done = async {
        if !opened.may_upload() {
            return Err(ApiError::field(
                ordo_domain::FieldError::new("file", "nothing is left to pay on this order")
                    .accepted("a receipt while the order has an amount due"),
            ));
        }
        let multipart =
            multipart.map_err(|_| ApiError::UnsupportedMediaType("multipart/form-data"))?;
        let upload =
            crate::api::receipts::read_upload(multipart, state.config().files.receipt_max_bytes)
                .await?;
        let kind = crate::api::receipts::kind_of(&upload)?;
        crate::api::receipts::attach(
            state,
            opened.by(),
            &opened.order,
            upload.content,
            upload.filename,
            kind,
        )
        .await
    }
    .await;
    let outcome = outcome(
        "receipt",
        done,
        "Thank you: we got your receipt. The shop will check it and let you know.",
    );
    back(&web, &headers, &token, outcome)
}

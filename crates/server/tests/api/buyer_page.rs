//! The buyer's order page, `/o/{token}`, over HTTP: the signed link is the
//! only key; what the buyer does is on the timeline as the buyer.

use ordo_domain::Role;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::json;

use crate::admin::Visitor;
use crate::helpers::*;

/// The buyer's link to `order`, as the staff's order page shows it.
pub(crate) async fn buyer_link(app: &TestApp, order: &str) -> String {
    let email = format!("links-{order}@example.com").to_lowercase();
    let staff = Visitor::staff(app, &email, Role::Admin).await;
    let (_, page) = staff.get(&format!("/admin/orders/{order}")).await;
    let marker = r#"<a id="buyer-link" href=""#;
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no buyer link in {page}"))
        + marker.len();
    let url = page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/");
    let path = url
        .split_once("/o/")
        .map(|(_, t)| format!("/o/{t}"))
        .unwrap();
    assert!(url.ends_with(&path));
    path
}

async fn post_to(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    no_redirects()
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The page at `url`, as text.
async fn read(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_buyer_confirms_pays_and_sees_their_order_by_its_link() {
    let app = spawn_app().await;
    let r = app
        .patch(
            "/v1/settings",
            &json!({"payment_instructions": "Bank transfer to Ada Fabrics,\nGTBank 0123456789", "whatsapp_number": "+2348099998888"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let link = buyer_link(&app, id).await;
    assert_eq!(link.len(), "/o/".len() + 71, "{link}");

    let buyer = no_redirects();
    let page = read(&buyer, &app.url(&link)).await;
    assert!(
        page.contains("Please check your order and confirm it."),
        "{page}"
    );
    assert!(page.contains(r#"id="confirm""#) && page.contains(r#"id="cancel""#));
    assert!(page.contains("GTBank 0123456789"));
    assert!(
        page.contains(r#"id="contact-shop" href="https:&#x2f;&#x2f;wa.me&#x2f;2348099998888"#),
        "{page}"
    );
    assert!(!page.contains("csrf"), "no session, no staff form");

    // Confirm: back to the page, which says so once.
    let r = buyer
        .post(app.url(&format!("{link}/confirm")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], link.as_str());
    let page = read(&buyer, &app.url(&link)).await;
    assert!(
        page.contains("Thank you: your order is confirmed."),
        "{page}"
    );
    assert!(page.contains("Next: pay for it, then send us the receipt here."));
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let confirmed = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "order.confirmed")
        .unwrap()
        .clone();
    assert_eq!(confirmed["actor"]["type"], "buyer");
    assert_eq!(confirmed["actor"]["id"], "wa_2348012345678");

    // A file that is not a receipt is refused next to the field.
    let form = Form::new().part("file", Part::bytes(b"hello".to_vec()).file_name("note.txt"));
    let r = buyer
        .post(app.url(&format!("{link}/receipt")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = read(&buyer, &app.url(&link)).await;
    assert!(page.contains(r#"id="receipt-file-error""#), "{page}");
    assert!(
        page.contains("the content is not a JPEG, PNG or WebP image or a PDF"),
        "{page}"
    );
    // A photo goes in review, by the buyer.
    let mut png =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    png.extend([0u8; 64]);
    let form = Form::new().part("file", Part::bytes(png).file_name("transfer.png"));
    buyer
        .post(app.url(&format!("{link}/receipt")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let page = read(&buyer, &app.url(&link)).await;
    assert!(page.contains("we got your receipt"), "{page}");
    assert!(page.contains("<strong>being checked</strong>"), "{page}");
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "pending");
    assert_eq!(o["receipts"][0]["uploaded_by"]["type"], "buyer");

    // With a payment on it, the buyer is sent to the shop to cancel.
    assert!(
        page.contains("To cancel this order, please message"),
        "{page}"
    );
    let r = post_to(
        &app,
        &format!("{link}/cancel"),
        &[("reason", "changed my mind")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.json(&format!("/v1/orders/{id}")).await["status"],
        "confirmed"
    );
}

#[tokio::test]
async fn a_link_works_only_whole_for_its_own_order_and_until_it_expires() {
    let app = spawn_app().await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let link = buyer_link(&app, id).await;
    let client = no_redirects();

    // Any character changed, or a token cut short, is not a link.
    let mut forged: Vec<char> = link.chars().collect();
    let at = forged.len() - 30;
    forged[at] = if forged[at] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    for bad in [forged.as_str(), &link[..link.len() - 1], "/o/hello"] {
        let r = client.get(app.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        assert!(r.text().await.unwrap().contains("This link does not work"));
        let r = client
            .post(app.url(&format!("{bad}/confirm")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(
        app.json(&format!("/v1/orders/{id}")).await["status"],
        "pending"
    );

    // Links made under link_days = 0 have expired when they are used.
    let short = spawn_app_with(|c| c.buyer_page.link_days = 0).await;
    short
        .patch(
            "/v1/settings",
            &json!({"whatsapp_number": "+2348099998888"}),
        )
        .await;
    let order = short.create(&plain_order()).await;
    let link = buyer_link(&short, order["id"].as_str().unwrap()).await;
    let r = client.get(short.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let page = r.text().await.unwrap();
    assert!(page.contains("This link has expired"), "{page}");
    assert!(
        page.contains("Ask Shop for a new link to your order."),
        "{page}"
    );
    assert!(page.contains("wa.me&#x2f;2348099998888"), "{page}");
    // Another installation's link is not one here.
    let r = client.get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

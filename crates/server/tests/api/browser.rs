//! The admin pages in a real browser: headless Chromium driven through
//! chromedriver (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/test`). A failing scenario leaves a screenshot of the page it
//! failed on in `target/tmp/browser-failures/`.

use std::panic::AssertUnwindSafe;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use ordo_domain::Role;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::admin::PASSWORD;
use crate::helpers::*;

/// A 1×1 PNG a browser can decode.
const PIXEL: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// chromedriver and the browser session it runs; both end when dropped.
struct Browser {
    driver: Child,
    client: Client,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn browser() -> Browser {
    let port = free_port();
    let driver_path = std::env::var("ORDO_TEST_CHROMEDRIVER").unwrap_or("chromedriver".into());
    let driver = Command::new(&driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {driver_path} ({e}): install Debian's chromium and chromium-driver (scripts/test does)")
        });
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let binary = std::env::var("ORDO_TEST_CHROMIUM").unwrap_or("/usr/bin/chromium".into());
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": binary,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session through chromedriver");
    Browser {
        driver,
        client,
        _profile: profile,
    }
}

/// Runs `steps`; if they fail, saves a screenshot of the page as it was
/// and then fails with their message. Either way the browser session is
/// closed, so chromedriver quits Chromium (killing chromedriver alone
/// leaves Chromium running and its profile behind).
async fn scenario<F: std::future::Future<Output = ()>>(name: &str, b: &Browser, steps: F) {
    let outcome = AssertUnwindSafe(steps).catch_unwind().await;
    if let Err(panic) = outcome {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failures");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join(format!("{name}.png"));
        match b.client.screenshot().await {
            Ok(png) => {
                let _ = std::fs::write(&file, png);
                eprintln!("browser: the page at the failure is {}", file.display());
            }
            Err(e) => eprintln!("browser: no screenshot ({e})"),
        }
        let _ = b.client.clone().close().await;
        std::panic::resume_unwind(panic);
    }
    b.client
        .clone()
        .close()
        .await
        .expect("close the browser session");
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .text()
        .await
        .unwrap()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks a link or a form's button, and waits for the next page.
async fn click(c: &Client, css: &str) {
    let target = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} to click: {e}"));
    c.execute("window.ordoLeaving = true;", vec![])
        .await
        .unwrap();
    target.click().await.unwrap();
    let start = Instant::now();
    loop {
        let arrived = c
            .execute(
                "return !window.ordoLeaving && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap_or(json!(false));
        if arrived == json!(true) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no page after clicking {css}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn path(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The id of the order's first shipment.
async fn order_shipment(app: &TestApp, order: &str) -> String {
    app.json(&format!("/v1/orders/{order}")).await["shipments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every visible form control has a label (or an accessible name).
async fn every_control_is_labelled(c: &Client) {
    let unlabelled = c
        .execute(
            r#"return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
                 .map(e => e.name || e.id);"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "controls without a label");
}

async fn sign_in(c: &Client, email: &str) {
    fill(c, "#email", email).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "button[type=submit]").await;
}

#[tokio::test]
async fn staff_find_confirm_approve_and_ship_an_order_in_a_browser() {
    let app = spawn_app().await;
    app.add_plain_product("SHORT", 1).await;
    app.create(&plain_order()).await;
    let mut body = plain_order();
    body["buyer"]["name"] = json!("Bola Ade");
    body["items"] = json!([{"sku": "SHORT", "quantity": 3}]);
    let order = app.create(&body).await;
    let id = order["id"].as_str().unwrap().to_string();
    let reference = order["reference"].as_str().unwrap().to_string();
    app.add_user("ada@example.com", Role::Owner).await;

    let b = browser().await;
    let c = &b.client;
    scenario("staff", &b, async {
        // Signing in comes back to the page asked for.
        c.goto(&app.url("/admin/orders?stage=pending")).await.unwrap();
        assert!(path(c).await.starts_with("/admin/login?next="));
        assert_eq!(text(c, "h1").await, "Sign in to ordo");
        every_control_is_labelled(c).await;
        fill(c, "#email", "ada@example.com").await;
        fill(c, "#password", "not it").await;
        click(c, "button[type=submit]").await;
        assert_eq!(
            text(c, "#password-error").await,
            "The email address or the password is not right."
        );
        sign_in(c, "ada@example.com").await;
        assert_eq!(path(c).await, "/admin/orders?stage=pending");
        assert_eq!(text(c, ".summary").await, "2 orders");
        every_control_is_labelled(c).await;

        // Search, then filter by a status.
        fill(c, "#q", "Bola").await;
        click(c, ".filters button[type=submit]").await;
        assert_eq!(text(c, ".summary").await, "1 order");
        assert_eq!(text(c, "table.list tbody th a").await, reference);
        c.goto(&app.url("/admin/orders")).await.unwrap();
        c.find(Locator::Css("#payment_status"))
            .await
            .unwrap()
            .select_by_value("paid")
            .await
            .unwrap();
        click(c, ".filters button[type=submit]").await;
        assert_eq!(text(c, ".summary").await, "0 orders");
        c.goto(&app.url("/admin/orders?q=Bola")).await.unwrap();

        // The order: confirming it is refused for want of stock, SKU by SKU.
        click(c, "table.list tbody th a").await;
        assert_eq!(path(c).await, format!("/admin/orders/{id}"));
        every_control_is_labelled(c).await;
        click(c, "#confirm").await;
        assert!(text(c, "#problem").await.contains("Not done: not enough stock."));
        assert_eq!(text(c, "#confirm-problem li").await, "SHORT: 3 needed, 1 available");
        assert_eq!(text(c, "#status").await, "pending");

        // Restocked from the low-stock list, it confirms.
        c.goto(&app.url("/admin/products")).await.unwrap();
        click(c, "#low-stock").await;
        click(c, "table.list tbody th a").await;
        assert_eq!(path(c).await, "/admin/products/SHORT");
        every_control_is_labelled(c).await;
        fill(c, "#adjust-delta", "5").await;
        click(c, "#adjust").await;
        assert_eq!(text(c, ".notice.ok").await, "Stock adjusted.");
        assert_eq!(text(c, "#available").await, "6");
        // One fewer: the item is changed on the page and the total follows.
        c.goto(&app.url(&format!("/admin/orders/{id}"))).await.unwrap();
        c.find(Locator::Css("#change-items summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        fill(c, "#edit-items-0-quantity", "2").await;
        click(c, "#save-items").await;
        assert_eq!(text(c, ".notice.ok").await, "Items saved: the totals follow.");
        assert_eq!(text(c, "#total").await, "NGN 25001.00");
        click(c, "#confirm").await;
        assert_eq!(text(c, ".notice.ok").await, "Order confirmed.");
        assert_eq!(text(c, "#status").await, "confirmed");

        // The buyer opens their signed link and sends a photo of the
        // receipt.
        let link = c
            .find(Locator::Css("#buyer-link"))
            .await
            .unwrap()
            .attr("href")
            .await
            .unwrap()
            .unwrap();
        let link = &link[link.find("/o/").unwrap()..];
        c.goto(&app.url(link)).await.unwrap();
        assert!(text(c, "#what-next").await.contains("Next: pay for it"));
        every_control_is_labelled(c).await;
        let photo = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
        std::fs::write(
            photo.path(),
            base64::engine::general_purpose::STANDARD.decode(PIXEL).unwrap(),
        )
        .unwrap();
        c.find(Locator::Css("#receipt-file"))
            .await
            .unwrap()
            .send_keys(&photo.path().display().to_string())
            .await
            .unwrap();
        click(c, "#send-receipt").await;
        assert!(text(c, ".notice.ok").await.contains("we got your receipt"));
        assert_eq!(text(c, "#receipts strong").await, "being checked");

        // Staff see it, previewed, and approve it.
        c.goto(&app.url(&format!("/admin/orders/{id}"))).await.unwrap();
        let start = Instant::now();
        loop {
            let width = c
                .execute(
                    "const i = document.querySelector('.receipt img'); return i && i.complete && i.naturalWidth;",
                    vec![],
                )
                .await
                .unwrap();
            if width == json!(1) {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "the receipt's preview shows: {width}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(text(c, ".receipt-state").await, "in review");
        click(c, ".receipt button.approve").await;
        assert_eq!(text(c, ".notice.ok").await, "Receipt approved: the payment is recorded.");
        assert_eq!(text(c, "#payment-status").await, "paid");

        // Shipped: a shipment of every unit, then marked shipped.
        fill(c, "#ship-carrier", "DHL").await;
        fill(c, "#ship-tracking_number", "JD0142").await;
        click(c, "#create-shipment").await;
        assert_eq!(text(c, ".shipment-state").await, "pending");
        click(c, "button.shipment-ship").await;
        assert_eq!(text(c, ".notice.ok").await, "Shipment shipped.");
        assert_eq!(text(c, ".shipment-state").await, "shipped");
        assert_eq!(text(c, "#fulfillment-status").await, "shipped");
        // A tracking link given afterwards.
        c.find(Locator::Css(".shipment details summary"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        every_control_is_labelled(c).await;
        let url_field = format!("#shipment-{}-tracking_url", order_shipment(&app, &id).await);
        fill(c, &url_field, "https://track.example.com/JD0142").await;
        click(c, "button.shipment-ship").await;
        assert_eq!(text(c, ".notice.ok").await, "Tracking saved.");
        assert!(text(c, ".shipment p").await.contains("DHL JD0142 (follow it)"));
        // The buyer's page says it is on its way.
        c.goto(&app.url(link)).await.unwrap();
        assert_eq!(text(c, "#what-next").await, "Your order is on its way.");
        c.goto(&app.url(&format!("/admin/orders/{id}"))).await.unwrap();

        // The timeline shows it all, newest first.
        let timeline = text(c, "#timeline").await;
        let kinds: Vec<&str> = timeline
            .lines()
            .map(|l| l.split_whitespace().next().unwrap_or(""))
            .collect();
        for kind in ["shipment.shipped", "shipment.created", "receipt.approved", "receipt.uploaded", "order.confirmed", "order.created"] {
            assert!(kinds.contains(&kind), "{kind} in {timeline}");
        }
        assert_eq!(kinds.last(), Some(&"order.created"));

        // Every other page's controls are labelled too.
        for page in ["/admin", "/admin/products/new", "/admin/imports", "/admin/webhooks", "/admin/settings"] {
            c.goto(&app.url(page)).await.unwrap();
            assert!(!text(c, "main h1").await.is_empty(), "{page}");
            every_control_is_labelled(c).await;
        }
        c.goto(&app.url(&format!("/admin/orders/{id}"))).await.unwrap();

        // A form whose token was tampered with changes nothing.
        c.execute(
            "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged');",
            vec![],
        )
        .await
        .unwrap();
        click(c, "button.shipment-deliver").await;
        assert_eq!(text(c, "h1").await, "This form has expired");
        let shipments = app.json(&format!("/v1/orders/{id}/shipments")).await;
        assert_eq!(shipments["data"][0]["state"], "shipped");
    })
    .await;
}

#[tokio::test]
async fn an_idle_session_ends_and_signing_in_again_returns_to_the_page() {
    let app = spawn_app_with(|c| c.admin.session_idle_secs = 1).await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    app.add_user("ada@example.com", Role::Admin).await;
    let b = browser().await;
    let c = &b.client;
    scenario("session", &b, async {
        // Signed in with the keyboard alone: the skip link comes first,
        // then the fields in order, and Enter sends the form.
        c.goto(&app.url("/admin")).await.unwrap();
        let focused = |c: &Client| {
            let c = c.clone();
            async move {
                c.execute(
                    "const e = document.activeElement; return e.id || e.className;",
                    vec![],
                )
                .await
                .unwrap()
            }
        };
        let press = |key: Key| {
            let c = c.clone();
            async move {
                let at = c.active_element().await.unwrap();
                at.send_keys(&char::from(key).to_string()).await.unwrap();
            }
        };
        press(Key::Tab).await;
        assert_eq!(focused(c).await, json!("skip"));
        press(Key::Tab).await;
        assert_eq!(focused(c).await, json!("shop"));
        press(Key::Tab).await;
        assert_eq!(focused(c).await, json!("email"));
        c.active_element()
            .await
            .unwrap()
            .send_keys("ada@example.com")
            .await
            .unwrap();
        press(Key::Tab).await;
        assert_eq!(focused(c).await, json!("password"));
        c.active_element()
            .await
            .unwrap()
            .send_keys(PASSWORD)
            .await
            .unwrap();
        c.execute("window.ordoLeaving = true;", vec![])
            .await
            .unwrap();
        press(Key::Enter).await;
        let start = Instant::now();
        while c
            .execute(
                "return !window.ordoLeaving && document.readyState === 'complete';",
                vec![],
            )
            .await
            .unwrap()
            != json!(true)
        {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no page after Enter"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(path(c).await, "/admin");
        assert_eq!(text(c, "h1").await, "Dashboard");
        click(c, "a[href='/admin/orders']").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        click(c, "table.list tbody th a").await;
        assert_eq!(
            path(c).await,
            format!("/admin/login?next=%2Fadmin%2Forders%2F{id}")
        );
        sign_in(c, "ada@example.com").await;
        assert_eq!(path(c).await, format!("/admin/orders/{id}"));
        // Signing out ends it at once.
        click(c, ".who button").await;
        assert_eq!(path(c).await, "/admin/login");
        c.goto(&app.url(&format!("/admin/orders/{id}")))
            .await
            .unwrap();
        assert!(path(c).await.starts_with("/admin/login?next="));
    })
    .await;
}

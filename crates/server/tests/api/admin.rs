//! The admin pages' handlers over HTTP (no browser): signing in, sessions,
//! the form token, and actions that show the API's answers.

use std::time::Duration;

use ordo::web::hash_password;
use ordo_domain::Role;
use ordo_store::{NewUser, UserChange};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const PASSWORD: &str = "correct horse battery";

impl TestApp {
    /// A user of the tenant `shop` with `role` and [`PASSWORD`].
    pub(crate) async fn add_user(&self, email: &str, role: Role) {
        self.store
            .create_user(NewUser {
                tenant_id: self.tenant.id,
                email: email.into(),
                name: format!("{role} user"),
                role,
                password_hash: hash_password(PASSWORD).unwrap(),
            })
            .await
            .unwrap();
    }
}

/// A browser without a browser: cookies kept, redirects not followed.
pub(crate) struct Visitor {
    pub client: Client,
    pub base: String,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Visitor {
            client: Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
        }
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    /// The redirect `path` answers with.
    pub async fn location(&self, path: &str) -> String {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        r.headers()["location"].to_str().unwrap().to_string()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Signs in (the form's token read from the sign-in page).
    pub async fn sign_in(&self, shop: &str, email: &str, password: &str) -> reqwest::Response {
        let (_, page) = self.get("/admin/login").await;
        let token = hidden(&page, "token");
        self.post(
            "/admin/login",
            &[
                ("token", &token),
                ("shop", shop),
                ("email", email),
                ("password", password),
                ("next", "/admin/orders"),
            ],
        )
        .await
    }

    /// Signs in as a new user with `role`.
    pub async fn staff(app: &TestApp, email: &str, role: Role) -> Visitor {
        app.add_user(email, role).await;
        let v = Visitor::new(app);
        let r = v.sign_in("shop", email, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {email}");
        v
    }

    /// Posts one of the page's action forms the way the browser would.
    pub async fn act(&self, page: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let csrf = hidden(page, "csrf");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let r = self.post("/admin/act", &form).await;
        let status = r.status();
        if status != StatusCode::SEE_OTHER {
            return (status, r.text().await.unwrap());
        }
        let to = r.headers()["location"].to_str().unwrap().to_string();
        self.get(&to).await
    }

    /// Sends a form's fields as they are (see [`form_fields`]) and reads
    /// the page it leads back to.
    pub async fn submit(&self, fields: &[(String, String)]) -> (StatusCode, String) {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = self.post("/admin/act", &fields).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{fields:?}");
        let to = r.headers()["location"].to_str().unwrap().to_string();
        self.get(&to).await
    }

    /// [`Visitor::act`] with values made for the call.
    pub async fn act_owned(&self, page: &str, fields: &[(&str, String)]) -> (StatusCode, String) {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.act(page, &fields).await
    }
}

/// The value of the first hidden field `name` of a page.
pub(crate) fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// What a browser sends with the form whose button has the id `button`
/// (or, given as `class="…"`, that class): its inputs, checkboxes only
/// when ticked (selects and text areas are not read).
pub(crate) fn form_fields(page: &str, button: &str) -> Vec<(String, String)> {
    let marker = if button.contains('=') {
        button.to_string()
    } else {
        format!("id=\"{button}\"")
    };
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no button {button} in {page}"));
    let start = page[..at].rfind("<form").unwrap();
    let form = &page[start..at];
    let attribute = |tag: &str, name: &str| {
        let marker = format!(" {name}=\"");
        let from = tag.find(&marker)? + marker.len();
        let raw = tag[from..].split('"').next()?;
        Some(
            raw.replace("&#x2f;", "/")
                .replace("&#x27;", "'")
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    let mut fields = Vec::new();
    for (i, _) in form.match_indices("<input") {
        let tag = &form[i..i + form[i..].find('>').unwrap()];
        let Some(name) = attribute(tag, "name") else {
            continue;
        };
        if attribute(tag, "type").as_deref() == Some("checkbox") && !tag.contains(" checked") {
            continue;
        }
        fields.push((name, attribute(tag, "value").unwrap_or_default()));
    }
    fields
}

/// Sets a field of a form as a user would (a ticked checkbox is added).
pub(crate) fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    match fields.iter_mut().find(|(k, _)| k == name) {
        Some(field) => field.1 = value.to_string(),
        None => fields.push((name.to_string(), value.to_string())),
    }
}

#[tokio::test]
async fn pages_need_a_sign_in_and_a_wrong_password_is_told_plainly() {
    let app = spawn_app().await;
    app.add_user("ada@example.com", Role::Owner).await;
    let v = Visitor::new(&app);
    assert_eq!(
        v.location("/admin/orders?stage=paid").await,
        "/admin/login?next=%2Fadmin%2Forders%3Fstage%3Dpaid"
    );
    // The only shop is filled in.
    let (status, page) = v.get("/admin/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"id="shop" name="shop" value="shop""#),
        "{page}"
    );

    let r = v.sign_in("shop", "ada@example.com", "wrong password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"<p class="field-error" id="password-error">The email address or the password is not right.</p>"#), "{page}");
    assert!(page.contains(r#"aria-describedby="password-error""#));
    // An unknown address reads the same.
    let r = v.sign_in("shop", "eve@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = v.sign_in("nope", "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("No shop is called &quot;nope&quot;"));
    // A form without the token of its page is refused.
    let r = v
        .post(
            "/admin/login",
            &[
                ("token", "forged"),
                ("shop", "shop"),
                ("email", "ada@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = v.sign_in("shop", "Ada@Example.com ", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/orders");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("ordo_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let (status, page) = v.get("/admin/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("owner user (owner)"), "{page}");

    // Signing out ends the session.
    let r = v
        .post("/admin/logout", &[("csrf", &hidden(&page, "csrf"))])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(v
        .location("/admin/orders")
        .await
        .starts_with("/admin/login"));
}

#[tokio::test]
async fn the_list_filters_searches_and_counts_and_an_order_is_confirmed_or_refused() {
    let app = spawn_app().await;
    app.add_plain_product("SHORT", 1).await;
    let a = app.create(&plain_order()).await;
    let mut body = plain_order();
    body["buyer"]["name"] = json!("Bola Ade");
    body["items"] = json!([{"sku": "SHORT", "quantity": 3}]);
    let short = app.create(&body).await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;

    let (_, page) = v.get("/admin/orders").await;
    assert!(
        page.contains(r#"<p class="summary" role="status">2 orders</p>"#),
        "{page}"
    );
    assert!(
        page.contains(r#"Pending <span class="count">2</span>"#),
        "{page}"
    );
    let (_, page) = v.get("/admin/orders?q=Bola").await;
    assert!(page.contains(short["reference"].as_str().unwrap()));
    assert!(!page.contains(a["reference"].as_str().unwrap()));
    assert!(page.contains("1 order<"), "{page}");
    let (_, page) = v.get("/admin/orders?stage=shipped").await;
    assert!(page.contains("No orders match."), "{page}");
    // A bad filter is the API's problem, shown next to its field.
    let (status, page) = v.get("/admin/orders?payment_status=soon").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(r#"id="payment_status-error""#), "{page}");

    // Confirming the short order shows the stock problem, SKU by SKU.
    let id = short["id"].as_str().unwrap();
    let here = format!("/admin/orders/{id}");
    let (_, page) = v.get(&here).await;
    let confirm = [
        ("_path", format!("/v1/orders/{id}/confirm")),
        ("_back", here.clone()),
        ("_form", "confirm".into()),
        ("_ok", "Order confirmed.".into()),
        ("_version", "1".into()),
    ];
    let (status, page) = v.act_owned(&page, &confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<div class="notice error" id="confirm-problem">"#),
        "{page}"
    );
    assert!(
        page.contains("<strong>Not done: not enough stock.</strong>"),
        "{page}"
    );
    assert!(
        page.contains("<li>SHORT: 3 needed, 1 available</li>"),
        "{page}"
    );
    assert!(page.contains(r#"<dd id="status">pending</dd>"#));
    // The problem is shown once.
    let (_, again) = v.get(&here).await;
    assert!(!again.contains("confirm-problem"));

    // With stock, it confirms; the timeline says who did it.
    let r = app
        .post(
            "/v1/products/SHORT/stock-adjustments",
            &json!({"delta": 5, "reason": "restock"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, page) = v.act_owned(&again, &confirm).await;
    assert!(
        page.contains(r#"<p class="notice ok" role="status">Order confirmed.</p>"#),
        "{page}"
    );
    assert!(page.contains(r#"<dd id="status">confirmed</dd>"#));
    assert!(page.contains("order.confirmed</span>"), "{page}");
    assert!(page.contains("by user (admin)"));
    let events = app.json(&format!("/v1/orders/{id}/events")).await;
    let last = events["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["actor"]["type"], "user");
    assert!(last["actor"]["id"].as_str().unwrap().starts_with("usr_"));

    // The same form again is stale: the order moved on since version 1.
    let (_, page) = v.act_owned(&page, &confirm).await;
    assert!(page.contains("Not done: "), "{page}");
    assert!(
        !page.contains("What can be done now"),
        "no allowed actions were given: {page}"
    );
}

#[tokio::test]
async fn a_form_without_the_sessions_token_changes_nothing() {
    let app = spawn_app().await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;
    let path = format!("/v1/orders/{id}/cancel");
    for csrf in ["", "forged-token"] {
        let r = v
            .post(
                "/admin/act",
                &[
                    ("csrf", csrf),
                    ("_path", &path),
                    ("reason", "no"),
                    ("_back", "/admin"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("This form has expired"));
    }
    assert_eq!(
        app.json(&format!("/v1/orders/{id}")).await["status"],
        "pending"
    );
    // Only API paths can be posted.
    let (_, page) = v.get("/admin/orders").await;
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", "/admin/logout"),
                ("_back", "/admin/orders"),
                ("_form", "x"),
            ],
        )
        .await;
    assert!(page.contains("Not done: the form is not right."), "{page}");
    assert!(page.contains("not a path of the API"), "{page}");
}

#[tokio::test]
async fn roles_limit_the_pages_as_they_limit_the_api() {
    let app = spawn_app().await;
    let theirs = app.create(&plain_order()).await;
    app.add_user("vera@example.com", Role::Vendor).await;
    let viewer = Visitor::staff(&app, "vic@example.com", Role::Viewer).await;
    let id = theirs["id"].as_str().unwrap();
    let (_, page) = viewer.get(&format!("/admin/orders/{id}")).await;
    assert!(
        !page.contains(r#"id="confirm""#),
        "a viewer is offered no actions"
    );
    // Posted anyway, the API's refusal is shown.
    let (_, page) = viewer
        .act(
            &page,
            &[
                ("_path", &format!("/v1/orders/{id}/confirm")),
                ("_back", &format!("/admin/orders/{id}")),
                ("_form", "confirm"),
            ],
        )
        .await;
    assert!(
        page.contains("the viewer role may not change orders"),
        "{page}"
    );
    assert_eq!(
        app.json(&format!("/v1/orders/{id}")).await["status"],
        "pending"
    );

    // A vendor sees only the orders it created.
    let vendor = Visitor::new(&app);
    vendor.sign_in("shop", "vera@example.com", PASSWORD).await;
    let (_, page) = vendor.get("/admin/orders").await;
    assert!(page.contains("0 orders"), "{page}");
    let (status, _) = vendor.get(&format!("/admin/orders/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A disabled user's session ends at once.
    app.store
        .change_user(
            app.tenant.id,
            "vic@example.com",
            UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
        )
        .await
        .unwrap();
    assert!(viewer
        .location("/admin/orders")
        .await
        .starts_with("/admin/login"));
    let r = viewer.sign_in("shop", "vic@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_sign_ins_are_rate_limited() {
    let app = spawn_app_with(|c| {
        c.admin.session_idle_secs = 1;
        c.admin.login_per_minute = 1;
        c.admin.login_burst = 3;
    })
    .await;
    app.add_user("ada@example.com", Role::Owner).await;
    let v = Visitor::new(&app);
    let r = v.sign_in("shop", "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(v.get("/admin/orders").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        v.location("/admin/orders/ord_x").await,
        "/admin/login?next=%2Fadmin%2Forders%2Ford_x"
    );
    // Three tries were allowed at once; the fourth waits.
    for _ in 0..2 {
        let r = v.sign_in("shop", "ada@example.com", "nope").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = v.sign_in("shop", "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Too many sign-in attempts from your address"));
}

#[tokio::test]
async fn users_are_managed_from_the_command_line() {
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "acme"]);
    let password = ordo(
        &db,
        &[
            "users",
            "create",
            "--tenant",
            "acme",
            "--email",
            "Ada@Example.com",
            "--role",
            "admin",
            "--name",
            "Ada",
        ],
    );
    let password = password.trim();
    assert_eq!(password.len(), 20);
    let listed = ordo(&db, &["users", "list", "--tenant", "acme"]);
    assert!(
        listed.contains("\tada@example.com\tadmin\tAda\tactive"),
        "{listed}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args([
            "users",
            "create",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
            "--role",
            "integration",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use one of owner, admin, vendor, viewer")
    );

    // The password works at /admin, until the user is disabled.
    let app = spawn_app_on(db).await;
    let v = Visitor::new(&app);
    assert_eq!(
        v.sign_in("acme", "ada@example.com", password)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    ordo(
        &app.db,
        &[
            "users",
            "disable",
            "--tenant",
            "acme",
            "--email",
            "ada@example.com",
        ],
    );
    assert!(v
        .location("/admin/orders")
        .await
        .starts_with("/admin/login"));
    assert!(ordo(&app.db, &["users", "list", "--tenant", "acme"]).contains("disabled"));
}

#[tokio::test]
async fn the_dashboard_counts_stages_and_charts_the_days_sales() {
    let app = spawn_app().await;
    let a = app.create(&plain_order()).await;
    app.create(&plain_order()).await;
    let c = app.create(&plain_order()).await;
    let id = c["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/v1/orders/{id}/cancel"),
            &json!({"reason": "test"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut usd = plain_order();
    usd["currency"] = json!("USD");
    usd["items"][0]["unit_price"] = json!("12.50");
    app.create(&usd).await;
    let vendor = app.key_for(Role::Vendor).await;
    app.create_as(&vendor, &plain_order()).await;

    let o = app.json("/v1/reports/overview?days=7").await;
    assert_eq!(o["stages"]["pending"], 4);
    assert_eq!(o["stages"]["cancelled"], 1);
    assert_eq!(o["stages"]["shipped"], 0);
    let today = &a["created_at"].as_str().unwrap()[..10];
    assert_eq!(o["to"], today);
    assert_eq!(
        o["days"],
        json!([
            {"date": today, "currency": "NGN", "orders": 3, "total": "30000.00"},
            {"date": today, "currency": "USD", "orders": 1, "total": "25.00"}
        ])
    );
    // A vendor's overview is of its own orders.
    let mine: serde_json::Value = app
        .get_as(&vendor, "/v1/reports/overview")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["stages"]["pending"], 1);
    assert_eq!(mine["days"][0]["orders"], 1);
    let p = problem(
        app.get("/v1/reports/overview?days=367").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["days"]);
    // days=0: the stages only.
    let stages = app.json("/v1/reports/overview?days=0").await;
    assert_eq!(
        (&stages["stages"]["pending"], &stages["days"]),
        (&json!(4), &json!([]))
    );

    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;
    let (status, page) = v.get("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<span class="n">4</span> <span class="badge pending">pending</span>"#),
        "{page}"
    );
    assert!(
        page.contains("<title id=\"chart-title\">Orders and sales (NGN) a day"),
        "{page}"
    );
    assert!(
        page.contains("3 orders in 30 days. The best day was"),
        "{page}"
    );
    assert_eq!(page.matches("<rect class=\"bar\"").count(), 30);
    assert!(page.contains("In USD: 1 order"), "{page}");
    let (_, page) = v.get("/admin/orders").await;
    assert!(
        page.contains(r#"Pending <span class="count">4</span>"#),
        "{page}"
    );
}

#[tokio::test]
async fn products_are_created_edited_and_restocked_from_their_pages() {
    let app = spawn_app().await;
    app.add_plain_product("LOW", 2).await;
    app.add_plain_product("PLENTY", 40).await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;

    let (_, page) = v.get("/admin/products?available_lte=5").await;
    assert!(
        page.contains(">LOW</a>") && !page.contains(">PLENTY</a>"),
        "{page}"
    );
    let (status, page) = v.get("/admin/products?available_lte=few").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains(r#"id="available_lte-error""#), "{page}");

    // A new product: a bad price is told next to its field, then it works.
    let (_, form) = v.get("/admin/products/new").await;
    let new = |price: &'static str| {
        vec![
            ("_path", "/v1/products"),
            ("_back", "/admin/products/new"),
            ("_form", "new"),
            ("_ok", "Product created."),
            ("sku", "WRAP-1"),
            ("name", "Head wrap"),
            ("currency", "NGN"),
            ("price", price),
            ("on_hand:int", "7"),
            ("variant_of", ""),
        ]
    };
    let (_, page) = v.act(&form, &new("three thousand")).await;
    assert!(page.contains(r#"id="new-price-error""#), "{page}");
    assert!(
        page.contains(r#"value="three thousand""#),
        "the value typed is kept: {page}"
    );
    let (_, page) = v.act(&form, &new("3000.00")).await;
    assert!(page.contains("Product created."), "{page}");
    let p = app.json("/v1/products/WRAP-1").await;
    assert_eq!(
        (p["on_hand"].clone(), p["price"].clone()),
        (json!(7), json!("3000.00"))
    );

    // Its page: restock, count, and a take-away below what is reserved.
    let here = "/admin/products/WRAP-1";
    let (_, page) = v.get(here).await;
    assert!(page.contains(r#"<dd id="available">7</dd>"#), "{page}");
    let adjust = |delta: &'static str| {
        vec![
            ("_path", "/v1/products/WRAP-1/stock-adjustments"),
            ("_back", here),
            ("_form", "adjust"),
            ("_ok", "Stock adjusted."),
            ("delta:int", delta),
            ("reason", "restock"),
        ]
    };
    let (_, page) = v.act(&page, &adjust("5")).await;
    assert!(page.contains(r#"<dd id="on-hand">12</dd>"#), "{page}");
    assert!(page.contains("adjustment +5 on hand"), "{page}");
    let (_, page) = v.act(&page, &adjust("-20")).await;
    assert!(page.contains("Not done:"), "{page}");
    assert!(page.contains(r#"<dd id="on-hand">12</dd>"#));

    // Edit: unticking "listed" sends false; a stale form is refused.
    let version = app.json("/v1/products/WRAP-1").await["version"].to_string();
    assert!(
        page.contains(&format!(r#"name="_version" value="{version}""#)),
        "{page}"
    );
    let edit = |name: &'static str, version: String| {
        vec![
            ("_path", "/v1/products/WRAP-1".to_string()),
            ("_method", "PATCH".into()),
            ("_back", here.into()),
            ("_form", "edit".into()),
            ("_version", version),
            ("name", name.into()),
            ("price", "3500.00".into()),
            ("active:bool", "false".into()),
            ("track_stock:bool", "false".into()),
            ("track_stock:bool", "true".into()),
        ]
    };
    let (_, page) = v
        .act_owned(&page, &edit("Silk head wrap", version.clone()))
        .await;
    assert!(page.contains("Product saved."), "{page}");
    let p = app.json("/v1/products/WRAP-1").await;
    assert_eq!(
        (&p["name"], &p["price"], &p["active"], &p["track_stock"]),
        (
            &json!("Silk head wrap"),
            &json!("3500.00"),
            &json!(false),
            &json!(true)
        )
    );
    let (_, page) = v.act_owned(&page, &edit("Old name", version)).await;
    assert!(
        page.contains("Not done:"),
        "a stale version is refused: {page}"
    );
    assert_eq!(
        app.json("/v1/products/WRAP-1").await["name"],
        "Silk head wrap"
    );

    // A SKU with a slash has its own page, and its forms go back to it.
    app.add_plain_product("SHIRT/M", 3).await;
    let (_, list) = v.get("/admin/products?q=shirt").await;
    assert!(
        list.contains(r#"href="/admin/products/SHIRT%2FM""#),
        "{list}"
    );
    let (status, page) = v.get("/admin/products/SHIRT%2FM").await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", "/v1/products/SHIRT%2FM/stock-adjustments"),
                ("_back", "/admin/products/SHIRT%2FM"),
                ("_form", "adjust"),
                ("delta:int", "2"),
                ("reason", "found two"),
            ],
        )
        .await;
    assert!(page.contains(r#"<dd id="on-hand">5</dd>"#), "{page}");
    // The newest movement comes first.
    let first_row = &page[page.find("<tbody>").unwrap()..];
    assert!(
        first_row[..first_row.find("</tr>").unwrap()].contains("+2 on hand"),
        "{page}"
    );

    // A viewer reads, and is offered nothing to change.
    let viewer = Visitor::staff(&app, "vic@example.com", Role::Viewer).await;
    let (status, page) = viewer.get(here).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("/admin/act"), "{page}");
}

#[tokio::test]
async fn webhook_endpoints_and_deliveries_are_run_from_their_page() {
    let receiver = Receiver::start(1).await;
    let app = spawn_app_with(|c| {
        c.webhooks.allow_private_urls = true;
        // A failed delivery waits a minute: long enough to retry by hand.
        c.jobs.retry_initial_ms = 60_000;
        c.jobs.retry_max_ms = 60_000;
    })
    .await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;
    let (_, page) = v.get("/admin/webhooks").await;
    assert!(page.contains("No endpoints"), "{page}");
    let url = receiver.url.clone();
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", "/v1/webhook-endpoints"),
                ("_back", "/admin/webhooks"),
                ("_form", "new-endpoint"),
                ("_show", "secret"),
                ("url", &url),
                ("event_types:list", "order.created, order.confirmed"),
            ],
        )
        .await;
    assert!(page.contains("Shown only this once"), "{page}");
    let shown = &page[page.find("<code>").unwrap() + 6..];
    let secret = &shown[..shown.find("</code>").unwrap()];
    assert!(secret.len() > 20, "{secret}");
    assert!(
        page.contains("events: order.created, order.confirmed"),
        "{page}"
    );
    // The secret is not on the page again.
    let (_, again) = v.get("/admin/webhooks").await;
    assert!(!again.contains(secret));

    // The receiver refuses the first delivery: it shows failed, with a
    // retry that sends it now.
    app.create(&plain_order()).await;
    let page = settle(
        || async { v.get("/admin/webhooks?status=failed").await.1 },
        |p| p.contains(r#"<td data-label="Status" class="delivery-status">failed</td>"#),
    )
    .await;
    assert!(page.contains("HTTP 500"), "{page}");
    let at = page.find("whd_").unwrap();
    // A ULID is 26 characters.
    let delivery = &page[at..at + "whd_".len() + 26];
    let retry = format!("/v1/webhook-deliveries/{delivery}/retry");
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", &retry),
                ("_back", "/admin/webhooks?status=failed"),
                ("_form", "delivery"),
                ("_ok", "Delivery queued again."),
            ],
        )
        .await;
    assert!(page.contains("Delivery queued again."), "{page}");
    settle(
        || async { v.get("/admin/webhooks?status=succeeded").await.1 },
        |p| p.contains(r#"class="delivery-status">succeeded</td>"#),
    )
    .await;
    assert_eq!(receiver.requests().len(), 2);

    // Webhooks are not a viewer's (as in the API), nor in their menu.
    let viewer = Visitor::staff(&app, "vic@example.com", Role::Viewer).await;
    let (status, page) = viewer.get("/admin/webhooks").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("the viewer role may not"), "{page}");
    let (_, page) = viewer.get("/admin/orders").await;
    assert!(!page.contains(r#"href="/admin/webhooks""#), "{page}");
}

#[tokio::test]
async fn a_file_is_imported_from_the_imports_page_and_its_problems_shown() {
    let app = spawn_app().await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;
    let (_, page) = v.get("/admin/imports").await;
    assert!(
        page.contains(r#"action="/admin/imports/upload""#) || page.contains("upload\""),
        "{page}"
    );
    let csv = "external_id,currency,buyer_phone,item_name,item_quantity,item_unit_price\n\
               W-1,NGN,+2348012345678,Ankara dress,2,12500.00\n\
               W-2,NGN,+2348012345678,Head wrap,two,3000.00\n";
    let form = || {
        reqwest::multipart::Form::new()
            .text("kind", "orders")
            .text("on_error", "skip_failed")
            .part(
                "file",
                reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("week.csv"),
            )
    };
    let url = format!("{}/admin/imports/upload", app.base);
    // Not from a page of this server (another site's, or none said),
    // nothing is imported.
    for origin in [Some("https://evil.example"), None] {
        let mut post = v.client.post(&url).multipart(form());
        if let Some(origin) = origin {
            post = post.header("origin", origin);
        }
        let r = post.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin:?}");
    }
    assert!(app.json("/v1/imports").await["data"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = v
        .client
        .post(&url)
        .header("origin", app.base.clone())
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("/admin/imports/imp_"), "{to}");
    let page = settle(
        || async { v.get(&to).await.1 },
        |p| p.contains(r#"<dd id="import-state">succeeded</dd>"#),
    )
    .await;
    assert!(page.contains(r#"<dd id="import-created">1</dd>"#), "{page}");
    assert!(page.contains(r#"<dd id="import-failed">1</dd>"#), "{page}");
    assert!(page.contains("item_quantity"), "{page}");
    let (status, errors) = v.get(&format!("{to}/errors.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(errors.contains("W-2"), "{errors}");
    let (_, list) = v.get("/admin/imports").await;
    assert!(list.contains("week.csv"), "{list}");
    // While it runs, the page refreshes itself; once done, it does not.
    assert!(!page.contains("http-equiv=\"refresh\""));
}

#[tokio::test]
async fn settings_are_changed_from_their_page_with_the_apis_checks() {
    let app = spawn_app().await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;
    let (_, page) = v.get("/admin/settings").await;
    let general = |number: &'static str| {
        vec![
            ("_path", "/v1/settings"),
            ("_method", "PATCH"),
            ("_back", "/admin/settings"),
            ("_form", "shop"),
            ("_ok", "Settings saved."),
            ("reservation_policy", "on_create"),
            ("reservation_minutes:int", "45"),
            ("free_text_lines:bool", "false"),
            ("auto_complete:bool", "false"),
            ("auto_complete:bool", "true"),
            ("storefront_enabled:bool", "false"),
            ("whatsapp_number:opt", number),
            ("payment_instructions:opt", "GTBank 0123456789"),
        ]
    };
    let (_, page) = v.act(&page, &general("080")).await;
    assert!(
        page.contains(r#"id="shop-whatsapp_number-error""#),
        "{page}"
    );
    assert_eq!(
        app.json("/v1/settings").await["reservation_policy"],
        "on_confirm",
        "nothing saved"
    );
    let (_, page) = v.act(&page, &general("+2348012345678")).await;
    assert!(page.contains("Settings saved."), "{page}");
    let s = app.json("/v1/settings").await;
    assert_eq!(
        (
            &s["reservation_policy"],
            &s["reservation_minutes"],
            &s["free_text_lines"],
            &s["auto_complete"],
            &s["whatsapp_number"],
            &s["payment_instructions"]
        ),
        (
            &json!("on_create"),
            &json!(45),
            &json!(false),
            &json!(true),
            &json!("+2348012345678"),
            &json!("GTBank 0123456789")
        )
    );
    // Emptied, an optional setting is cleared.
    let mut cleared = general("");
    cleared.retain(|(k, _)| *k != "payment_instructions:opt");
    cleared.push(("payment_instructions:opt", ""));
    let (_, page) = v.act(&page, &cleared).await;
    let s = app.json("/v1/settings").await;
    assert_eq!(
        (&s["whatsapp_number"], &s["payment_instructions"]),
        (&Value::Null, &Value::Null)
    );

    // A text with an unknown placeholder is refused next to it; emptied,
    // it goes back to the default.
    let text = |t: &'static str| {
        vec![
            ("_path", "/v1/settings"),
            ("_method", "PATCH"),
            ("_back", "/admin/settings"),
            ("_form", "text-order_shipped"),
            ("messaging.templates.order_shipped:opt", t),
        ]
    };
    let (_, page) = v
        .act(&page, &text("Shipped {reference} via {courier}"))
        .await;
    assert!(
        page.contains(r#"id="text-order_shipped-messaging-templates-order_shipped-error""#),
        "{page}"
    );
    let (_, page) = v.act(&page, &text("Shipped {reference}{tracking}")).await;
    assert_eq!(
        app.json("/v1/settings").await["messaging"]["templates"]["order_shipped"]["custom"],
        true
    );
    assert!(
        page.contains("the shop&#x27;s own") || page.contains("the shop's own"),
        "{page}"
    );
    v.act(&page, &text("")).await;
    assert_eq!(
        app.json("/v1/settings").await["messaging"]["templates"]["order_shipped"]["custom"],
        false
    );

    // A viewer reads them, without a save button.
    let viewer = Visitor::staff(&app, "vic@example.com", Role::Viewer).await;
    let (_, page) = viewer.get("/admin/settings").await;
    assert!(
        page.contains("Only owners and admins change the settings"),
        "{page}"
    );
    assert!(!page.contains("save-settings"));
}

#[tokio::test]
async fn returns_and_refunds_are_done_from_the_orders_page() {
    let app = spawn_app().await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    app.pay_in_full(&order).await;
    app.deliver_all(id).await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;
    let here = format!("/admin/orders/{id}");
    let (_, page) = v.get(&here).await;
    assert!(page.contains(r#"id="open-return""#), "{page}");
    assert!(page.contains(r#"id="record-refund""#), "{page}");
    let api = format!("/v1/orders/{id}");
    // The page's own forms, as a browser sends them.
    let mut form = form_fields(&page, "open-return");
    set(&mut form, "reason", "");
    let (_, page) = v.submit(&form).await;
    assert!(
        page.contains(r#"id="return-reason-error""#),
        "a return needs a reason: {page}"
    );
    let mut form = form_fields(&page, "open-return");
    set(&mut form, "reason", "wrong size");
    let (_, mut page) = v.submit(&form).await;
    assert!(
        page.contains(r#"<strong class="return-state">requested</strong>"#),
        "{page}"
    );
    for (action, state) in [("receive", "received"), ("refund", "refunded")] {
        let button = format!(r#"class="return-{action}""#);
        let (_, next) = v.submit(&form_fields(&page, &button)).await;
        assert!(
            next.contains(&format!(r#"<strong class="return-state">{state}</strong>"#)),
            "{action}: {next}"
        );
        page = next;
    }
    let o = app.json(&api).await;
    assert_eq!(
        (&o["payment_status"], &o["fulfillment_status"]),
        (&json!("refunded"), &json!("returned"))
    );
    // An admin may refund; a vendor is not offered it.
    let vendor = Visitor::staff(&app, "vera@example.com", Role::Vendor).await;
    let (status, _) = vendor.get(&here).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not the vendor's order");
}

#[tokio::test]
async fn the_orders_list_pages_through_with_its_filters() {
    let app = spawn_app().await;
    for _ in 0..27 {
        app.create(&plain_order()).await;
    }
    let mut other = plain_order();
    other["buyer"]["name"] = json!("Bola Ade");
    app.create(&other).await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Viewer).await;
    let (_, first) = v.get("/admin/orders?q=Ada&sort=created_at").await;
    assert!(first.contains("27 orders"), "{first}");
    assert_eq!(
        first.matches("<tr>").count() - 1,
        25,
        "a header row and 25 orders"
    );
    let at = first.find(r#"rel="next""#).unwrap();
    let href = &first[first[..at].rfind("href=\"").unwrap() + 6..at - 2];
    let href = href.replace("&amp;", "&").replace("&#x2f;", "/");
    assert!(
        href.starts_with("/admin/orders?q=Ada&sort=created_at&cursor="),
        "{href}"
    );
    let (_, second) = v.get(&href).await;
    assert_eq!(second.matches("<tr>").count() - 1, 2, "{second}");
    assert!(!second.contains(r#"rel="next""#));
    assert!(second.contains(">First page</a>"));
    assert!(!second.contains("Bola Ade"));
}

#[tokio::test]
async fn an_order_is_edited_and_a_refund_by_hand_settled_from_its_page() {
    let app = spawn_app().await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;
    let here = format!("/admin/orders/{id}");
    let api = format!("/v1/orders/{id}");
    let (_, page) = v.get(&here).await;
    assert!(
        !page.contains(r#"id="charge""#),
        "no provider, no card charge: {page}"
    );
    let edit = |phone: &'static str| {
        vec![
            ("_path", api.clone()),
            ("_method", "PATCH".into()),
            ("_back", here.clone()),
            ("_form", "edit-buyer".into()),
            ("_version", "1".into()),
            ("buyer.channel_id", "wa_2348012345678".into()),
            ("buyer.name", "Ada Obi-Eze".into()),
            ("buyer.phone", phone.into()),
            ("notes:opt", "".into()),
        ]
    };
    let (_, page) = v.act_owned(&page, &edit("0801")).await;
    assert!(
        page.contains(r#"id="edit-buyer-buyer-phone-error""#),
        "{page}"
    );
    let (_, page) = v.act_owned(&page, &edit("+2348012345678")).await;
    assert!(page.contains("Order saved."), "{page}");
    let o = app.json(&api).await;
    assert_eq!(
        (&o["buyer"]["name"], &o["buyer"]["channel_id"], &o["notes"]),
        (
            &json!("Ada Obi-Eze"),
            &json!("wa_2348012345678"),
            &Value::Null
        )
    );

    // Paid by transfer, then cancelled: the money goes back by hand, and
    // the page records that it did.
    app.pay_in_full(&o).await;
    app.post(&format!("{api}/cancel"), &json!({"reason": "out of stock"}))
        .await;
    let (_, page) = v.get(&here).await;
    let refund = app.json(&api).await["refunds"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(page.contains(r#"class="settle""#), "{page}");
    let path = format!("{api}/refunds/{refund}/settle");
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", &path),
                ("_back", &here),
                ("_form", "x"),
                ("state", "succeeded"),
            ],
        )
        .await;
    assert!(page.contains("succeeded"), "{page}");
    assert_eq!(app.json(&api).await["payment_status"], "refunded");
}

#[tokio::test]
async fn some_units_are_shipped_returned_or_called_off_item_by_item() {
    let app = spawn_app().await;
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let line = order["items"][0]["id"].as_str().unwrap().to_string();
    app.post(&format!("/v1/orders/{id}/confirm"), &json!({}))
        .await;
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;
    let here = format!("/admin/orders/{id}");
    let api = format!("/v1/orders/{id}");
    let (_, page) = v.get(&here).await;
    let field = format!("lines.{line}:units");
    assert!(
        page.contains(&format!(
            r#"id="ship-{line}" name="{field}" type="number" min="0" max="2" value="2""#
        )),
        "{page}"
    );
    // None chosen is not "all of them".
    let ship = |n: &'static str| {
        vec![
            ("_path", format!("{api}/shipments")),
            ("_back", here.clone()),
            ("_form", "ship".into()),
            (field.as_str(), n.to_string()),
        ]
    };
    let (_, page) = v.act_owned(&page, &ship("0")).await;
    assert!(page.contains("at least one unit of one item"), "{page}");
    assert!(app.json(&format!("{api}/shipments")).await["data"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, page) = v.act_owned(&page, &ship("1")).await;
    let shipments = app.json(&format!("{api}/shipments")).await;
    assert_eq!(shipments["data"][0]["lines"][0]["quantity"], 1);
    // One unit is left to ship, or to call off.
    assert!(
        page.contains(&format!(
            r#"id="ship-{line}" name="{field}" type="number" min="0" max="1" value="1""#
        )),
        "{page}"
    );
    let (_, page) = v
        .act(
            &page,
            &[
                ("_path", &format!("{api}/cancel-items")),
                ("_back", &here),
                ("_form", "cancel-items"),
                (&field, "1"),
                ("reason", "out of stock"),
            ],
        )
        .await;
    assert!(
        page.contains(r#"<p class="notice ok" role="status">Done.</p>"#),
        "{page}"
    );
    let o = app.json(&api).await;
    assert_eq!(
        (
            &o["items"][0]["fulfillment"]["ordered"],
            &o["items"][0]["fulfillment"]["cancelled"]
        ),
        (&json!(1), &json!(1))
    );
}

#[tokio::test]
async fn an_orders_items_are_changed_and_it_is_priced_again_from_its_page() {
    let app = spawn_app().await;
    app.add_product(&json!({"sku": "HAT", "name": "Straw hat", "currency": "NGN", "price": "1500.00", "on_hand": 10}))
        .await;
    // Two of Product A at 5000.00, an item not in the catalog, size M.
    let order = app.create(&plain_order()).await;
    let id = order["id"].as_str().unwrap();
    let api = format!("/v1/orders/{id}");
    let here = format!("/admin/orders/{id}");
    let v = Visitor::staff(&app, "ada@example.com", Role::Admin).await;

    // A billing address, which the order did not have.
    let (_, page) = v.get(&here).await;
    let mut form = form_fields(&page, "save-billing");
    set(&mut form, "billing_address.line1", "12 Broad Street");
    set(&mut form, "billing_address.country", "NG");
    let (_, page) = v.submit(&form).await;
    assert!(
        page.contains(r#"id="edit-billing-billing_address-city-error""#),
        "a city is needed: {page}"
    );
    let mut form = form_fields(&page, "save-billing");
    set(&mut form, "billing_address.city", "Lagos");
    set(&mut form, "billing_address.country", "NG");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Billing address saved."), "{page}");
    assert!(page.contains(r#"<address id="billing-address">"#), "{page}");
    let o = app.json(&api).await;
    assert_eq!(
        (
            &o["billing_address"]["city"],
            &o["billing_address"]["line1"]
        ),
        (&json!("Lagos"), &json!("12 Broad Street"))
    );

    // One more of the first item, and two hats from the catalog.
    let mut form = form_fields(&page, "save-items");
    for kept in [
        ("items[0].name", "Product A"),
        ("items[0].sku", "SKU-A"),
        ("items[0].attributes.size", "M"),
        ("items[0].unit_price", "5000.00"),
    ] {
        assert!(
            form.contains(&(kept.0.into(), kept.1.into())),
            "{kept:?} in {form:?}"
        );
    }
    set(&mut form, "items[0].quantity:int", "3");
    set(&mut form, "items[1].sku", "HAT");
    set(&mut form, "items[1].quantity:int", "2");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Items saved: the totals follow."), "{page}");
    let o = app.json(&api).await;
    let items = o["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{o}");
    assert_eq!(
        (
            &items[0]["quantity"],
            &items[0]["unit_price"],
            &items[0]["attributes"]
        ),
        (&json!(3), &json!("5000.00"), &json!({"size": "M"}))
    );
    assert_eq!(
        (
            &items[1]["sku"],
            &items[1]["unit_price"],
            &items[1]["price_overridden"]
        ),
        (&json!("HAT"), &json!("1500.00"), &json!(false))
    );
    assert!(items[1]["product_id"].is_string());
    assert_eq!(o["subtotal"], "18000.00");

    // The first item taken off and a row added with no units: the API's
    // problem with its second item is shown at the form's third row, and
    // nothing changes.
    let mut form = form_fields(&page, "save-items");
    set(&mut form, "items[0]:remove", "true");
    set(&mut form, "items[2].sku", "HAT");
    set(&mut form, "items[2].quantity:int", "0");
    let (_, page) = v.submit(&form).await;
    assert!(
        page.contains(r#"id="edit-items-items[2]-quantity-error""#),
        "{page}"
    );
    assert!(
        page.contains(r#"aria-describedby="edit-items-items[2]-quantity-error""#),
        "{page}"
    );
    assert_eq!(app.json(&api).await["version"], o["version"]);

    // What was typed is kept, the box ticked too; the row emptied adds
    // nothing.
    let mut form = form_fields(&page, "save-items");
    assert!(
        form.contains(&("items[2].quantity:int".into(), "0".into())),
        "{form:?}"
    );
    assert!(
        form.contains(&("items[0]:remove".into(), "true".into())),
        "{form:?}"
    );
    set(&mut form, "items[2].sku", "");
    set(&mut form, "items[2].quantity:int", "");
    set(&mut form, "items[0]:remove", "true");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Items saved"), "{page}");
    let o = app.json(&api).await;
    assert_eq!(o["items"].as_array().unwrap().len(), 1, "{o}");
    assert_eq!(
        (&o["items"][0]["sku"], &o["subtotal"]),
        (&json!("HAT"), &json!("3000.00"))
    );

    // Priced again with a code; a code that does not apply is shown by
    // the field; an empty field takes the codes off.
    let r = app
        .post(
            "/v1/promotions",
            &json!({"name": "Ten off", "code": "TEN", "type": "percentage", "value": "10"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut form = form_fields(&page, "reprice");
    assert!(
        form.contains(&("reprice:bool".into(), "true".into())),
        "{form:?}"
    );
    set(&mut form, "promotion_codes:list", "ten");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Priced again by today"), "{page}");
    assert_eq!(app.json(&api).await["discount_total"], "300.00");
    let mut form = form_fields(&page, "reprice");
    assert!(
        form.contains(&("promotion_codes:list".into(), "TEN".into())),
        "the order's codes to start with: {form:?}"
    );
    set(&mut form, "promotion_codes:list", "TEN, NOPE");
    let (_, page) = v.submit(&form).await;
    assert!(
        page.contains(r#"id="reprice-promotion_codes-error""#) && page.contains("NOPE"),
        "{page}"
    );
    assert_eq!(app.json(&api).await["discount_total"], "300.00");
    let mut form = form_fields(&page, "reprice");
    set(&mut form, "promotion_codes:list", "");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Priced again by today"), "{page}");
    let o = app.json(&api).await;
    assert_eq!(
        (&o["discount_total"], &o["total"]),
        (&json!("0.00"), &json!("3000.00"))
    );

    // A dress comes in sizes and colours: the options are asked for,
    // and a wrong one is shown by the field.
    app.add_product(&crate::products::dress("DRESS", 5)).await;
    let mut form = form_fields(&page, "save-items");
    set(&mut form, "items[1].sku", "DRESS");
    set(
        &mut form,
        "items[1].attributes:pairs",
        "size=XL, colour=red",
    );
    set(&mut form, "items[1].quantity:int", "1");
    let (_, page) = v.submit(&form).await;
    assert!(
        page.contains(r#"id="edit-items-items[1]-attributes-error""#),
        "{page}"
    );
    let mut form = form_fields(&page, "save-items");
    assert!(
        form.contains(&(
            "items[1].attributes:pairs".into(),
            "size=XL, colour=red".into()
        )),
        "{form:?}"
    );
    set(&mut form, "items[1].attributes:pairs", "size=M, colour=red");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Items saved"), "{page}");
    let o = app.json(&api).await;
    assert_eq!(
        o["items"][1]["attributes"],
        json!({"size": "M", "colour": "red"})
    );
    assert_eq!(o["subtotal"], "15500.50");

    // A viewer is offered neither form; once paid, nobody is.
    let viewer = Visitor::staff(&app, "ola@example.com", Role::Viewer).await;
    let (_, page) = viewer.get(&here).await;
    assert!(!page.contains("save-items") && !page.contains(r#"id="reprice""#));
    app.pay_in_full(&o).await;
    let (_, page) = v.get(&here).await;
    assert!(!page.contains("save-items") && !page.contains(r#"id="reprice""#));
}

#[tokio::test]
async fn units_ship_with_their_serials_and_come_back_to_stock_or_not() {
    let app = spawn_app().await;
    app.add_product(&json!({"sku": "PHONE", "name": "Phone", "currency": "NGN", "price": "90000.00", "on_hand": 5}))
        .await;
    let mut body = plain_order();
    body["items"] = json!([{"sku": "PHONE", "quantity": 2}]);
    let order = app.create(&body).await;
    let id = order["id"].as_str().unwrap();
    let api = format!("/v1/orders/{id}");
    app.post(&format!("{api}/confirm"), &json!({})).await;
    app.pay_in_full(&order).await;
    let line = order["items"][0]["id"].as_str().unwrap().to_string();
    let here = format!("/admin/orders/{id}");
    let v = Visitor::staff(&app, "ada@example.com", Role::Owner).await;

    // Both phones packed with their IMEIs; no units chosen is refused,
    // and what was typed is kept.
    let (_, page) = v.get(&here).await;
    let mut form = form_fields(&page, "create-shipment");
    let units = format!("lines.{line}:units");
    let serials = format!("lines.{line}:serials");
    assert!(form.contains(&(units.clone(), "2".into())), "{form:?}");
    set(&mut form, &units, "0");
    set(&mut form, &serials, "356938035643809");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains(r#"id="ship-lines-error""#), "{page}");
    let mut form = form_fields(&page, "create-shipment");
    assert!(
        form.contains(&(serials.clone(), "356938035643809".into())),
        "{form:?}"
    );
    set(&mut form, &units, "2");
    set(&mut form, &serials, "356938035643809, 356938035643817");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Shipment created"), "{page}");
    let o = app.json(&api).await;
    let shipment = &o["shipments"][0];
    assert_eq!(
        shipment["lines"][0]["instances"],
        json!([{"serial": "356938035643809"}, {"serial": "356938035643817"}]),
        "{shipment}"
    );

    // Shipped with a tracking link, then delivered.
    let mut form = form_fields(&page, r#"class="shipment-ship""#);
    set(&mut form, "tracking_url", "https://track.example.com/1");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Shipment shipped."), "{page}");
    assert!(
        page.contains(r#"href="https:&#x2f;&#x2f;track.example.com&#x2f;1""#),
        "{page}"
    );
    let (_, page) = v
        .submit(&form_fields(&page, r#"class="shipment-deliver""#))
        .await;
    assert_eq!(app.json(&api).await["fulfillment_status"], "delivered");
    // Delivered, its tracking may still be given.
    let mut form = form_fields(&page, r#"class="shipment-ship""#);
    assert!(
        form.iter()
            .any(|(k, v)| k == "_path" && v.ends_with("/deliver")),
        "{form:?}"
    );
    set(&mut form, "tracking_number", "GIG-1");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("Tracking saved."), "{page}");
    assert_eq!(
        app.json(&api).await["shipments"][0]["tracking_number"],
        "GIG-1"
    );
    let on_hand = || async { app.json("/v1/products/PHONE").await["on_hand"].clone() };
    assert_eq!(on_hand().await, 3);

    // One comes back broken: received without going back in stock, and
    // part of its price refunded.
    let mut form = form_fields(&page, "open-return");
    set(&mut form, &format!("lines.{line}:units"), "1");
    set(&mut form, "reason", "cracked screen");
    let (_, page) = v.submit(&form).await;
    let mut form = form_fields(&page, r#"class="return-receive""#);
    assert!(
        form.contains(&("restock:bool".into(), "true".into())),
        "ticked to start with: {form:?}"
    );
    form.retain(|(k, v)| !(k == "restock:bool" && v == "true"));
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("The units are back."), "{page}");
    assert_eq!(on_hand().await, 3, "not back in stock");
    let mut form = form_fields(&page, r#"class="return-refund""#);
    set(&mut form, "amount", "lots");
    let (_, page) = v.submit(&form).await;
    let ret = app.json(&format!("{api}/returns")).await["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        page.contains(&format!(r#"id="return-{ret}-amount-error""#)),
        "{page}"
    );
    let mut form = form_fields(&page, r#"class="return-refund""#);
    set(&mut form, "amount", "50000.00");
    let (_, page) = v.submit(&form).await;
    assert!(page.contains("The return is refunded."), "{page}");
    assert_eq!(app.json(&api).await["amount_refunded"], "50000.00");
}

//! The catalog over HTTP: products, their stock and its movements.

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{fields, problem, says, spawn_app, TestApp};

pub fn dress(sku: &str, on_hand: i64) -> Value {
    json!({
        "sku": sku,
        "name": "Ankara dress",
        "description": "Cotton, hand-dyed",
        "currency": "NGN",
        "price": "12500.50",
        "attributes": {"size": ["S", "M", "L"], "colour": ["red", "blue"]},
        "image_url": "https://cdn.example.com/dress.jpg",
        "on_hand": on_hand
    })
}

impl TestApp {
    /// Adds a product and returns it, asserting a 201.
    pub async fn add_product(&self, body: &Value) -> Value {
        let r = self.post("/v1/products", body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "add product failed");
        r.json().await.expect("json")
    }
}

#[tokio::test]
async fn a_product_is_created_read_and_listed_with_its_stock() {
    let app = spawn_app().await;
    let r = app.post("/v1/products", &dress("DRESS/M", 7)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], "\"1\"");
    assert_eq!(r.headers()["location"], "/v1/products/DRESS%2FM");
    let p: Value = r.json().await.unwrap();
    assert!(p["id"].as_str().unwrap().starts_with("prod_"));
    assert_eq!(p["price"], "12500.50");
    assert_eq!(p["attributes"]["size"], json!(["S", "M", "L"]));
    assert_eq!(
        (
            &p["on_hand"],
            &p["reserved"],
            &p["available"],
            &p["in_stock"]
        ),
        (&json!(7), &json!(0), &json!(7), &json!(true))
    );
    assert_eq!(
        (&p["active"], &p["track_stock"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(p["archived_at"], Value::Null);

    // A SKU with a '/' is read back percent-encoded; every role reads.
    let viewer = app.key_for(Role::Viewer).await;
    let r = app.get_as(&viewer, "/v1/products/DRESS%2FM").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), p);

    // The first units are a movement, so every unit is accounted for.
    let moves = app.json("/v1/products/DRESS%2FM/stock-movements").await;
    assert_eq!(moves["data"].as_array().unwrap().len(), 1);
    let first = &moves["data"][0];
    assert_eq!(
        (&first["kind"], &first["on_hand_change"], &first["reason"]),
        (&json!("adjustment"), &json!(7), &json!("initial stock"))
    );
    assert_eq!(first["actor"]["role"], "owner");

    // The same SKU again is a conflict naming it.
    let again = problem(
        app.post("/v1/products", &dress("DRESS/M", 1)).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(again["errors"][0]["field"], "sku");
    assert_eq!(again["errors"][0]["value"], "DRESS/M");

    // Another tenant neither sees it nor is stopped from using the SKU.
    let other = app.other_tenant_key().await;
    problem(
        app.get_as(&other, "/v1/products/DRESS%2FM").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let r = app
        .post_as(&other, "/v1/products", &dress("DRESS/M", 2))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let list = app.json("/v1/products").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["on_hand"], 7);
}

#[tokio::test]
async fn bad_products_are_refused_naming_every_field() {
    let app = spawn_app().await;
    let body = json!({
        "sku": "no spaces",
        "name": " ",
        "currency": "NGN",
        "price": "10.001",
        "attributes": {"Size": ["S"], "fit": []},
        "image_url": "ftp://x",
        "on_hand": -1,
        "variant_of": "NOPE"
    });
    let p = problem(
        app.post("/v1/products", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut named = fields(&p);
    named.sort();
    assert_eq!(
        named,
        [
            "attributes",
            "attributes.fit",
            "image_url",
            "name",
            "on_hand",
            "price",
            "sku"
        ]
    );
    let price = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "price")
        .unwrap();
    assert_eq!(price["value"], "10.001");

    let mut body = dress("TEE", 1);
    body["variant_of"] = json!("NOPE");
    let p = problem(
        app.post("/v1/products", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["variant_of"]);
    body["variant_of"] = json!("TEE");
    let p = problem(
        app.post("/v1/products", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["variant_of"]);

    let mut body = dress("TEE", 1);
    body["stock"] = json!(3);
    let p = problem(
        app.post("/v1/products", &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["stock"]);

    // Vendors and viewers read the catalog but do not change it.
    for role in [Role::Vendor, Role::Viewer] {
        let key = app.key_for(role).await;
        problem(
            app.post_as(&key, "/v1/products", &dress("TEE", 1)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    // An unknown product, even one whose SKU could not exist, is a 404.
    for path in ["/v1/products/NOPE", "/v1/products/a%20b"] {
        let p = problem(app.get(path).await, StatusCode::NOT_FOUND).await;
        says(&p, "product");
    }
}

#[tokio::test]
async fn products_are_edited_archived_and_restored() {
    let app = spawn_app().await;
    app.add_product(&dress("DRESS-M", 3)).await;
    let patch = json!({"name": "Ankara maxi dress", "price": "15000", "description": null, "attributes": {"size": ["M"]}});
    let r = app
        .client
        .patch(app.url("/v1/products/DRESS-M"))
        .bearer_auth(&app.key)
        .header("if-match", "\"1\"")
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let p: Value = r.json().await.unwrap();
    assert_eq!(
        (&p["name"], &p["price"], &p["description"], &p["version"]),
        (
            &json!("Ankara maxi dress"),
            &json!("15000.00"),
            &Value::Null,
            &json!(2)
        )
    );
    assert_eq!(p["attributes"], json!({"size": ["M"]}));
    // A stale ETag changes nothing and says which version is current.
    let stale = app
        .client
        .patch(app.url("/v1/products/DRESS-M"))
        .bearer_auth(&app.key)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    let stale = problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(stale["current_version"], 2);
    assert!(stale["detail"].as_str().unwrap().contains("product"));
    // SKU and currency never change.
    let p = problem(
        app.patch("/v1/products/DRESS-M", &json!({"sku": "X"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["sku"]);
    // An edit that changes nothing leaves the version.
    let same: Value = app
        .patch(
            "/v1/products/DRESS-M",
            &json!({"name": "Ankara maxi dress"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["version"], 2);

    let archived: Value = app
        .post("/v1/products/DRESS-M/archive", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert!(archived["archived_at"].is_string());
    assert_eq!(archived["active"], false);
    // Archived products leave the default list but stay readable.
    assert_eq!(app.json("/v1/products").await["data"], json!([]));
    let only = app.json("/v1/products?archived=true").await;
    assert_eq!(only["data"][0]["sku"], "DRESS-M");
    let p = problem(
        app.patch("/v1/products/DRESS-M", &json!({"active": true}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["active"]);
    let restored: Value = app
        .post("/v1/products/DRESS-M/restore", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&restored["archived_at"], &restored["active"]),
        (&Value::Null, &json!(false))
    );
    let on: Value = app
        .patch("/v1/products/DRESS-M", &json!({"active": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(on["active"], true);
}

#[tokio::test]
async fn stock_is_adjusted_by_delta_or_count_and_every_change_is_listed() {
    let app = spawn_app().await;
    app.add_product(&dress("DRESS-M", 5)).await;
    let r = app
        .post(
            "/v1/products/DRESS-M/stock-adjustments",
            &json!({"delta": 12, "reason": "restock"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["etag"], "\"2\"");
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["product"]["on_hand"], 17);
    assert_eq!(
        (
            &done["movement"]["on_hand_change"],
            &done["movement"]["on_hand"]
        ),
        (&json!(12), &json!(17))
    );
    let counted: Value = app
        .post(
            "/v1/products/DRESS-M/stock-adjustments",
            &json!({"set": 15, "reason": "stock count"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counted["movement"]["on_hand_change"], -2);

    // Never below zero: a 409 naming the field, the value and the room left.
    let p = problem(
        app.post(
            "/v1/products/DRESS-M/stock-adjustments",
            &json!({"delta": -16, "reason": "damaged"}),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "delta");
    assert_eq!(p["errors"][0]["value"], "-16");
    // Exactly one of delta and set, a reason, sane numbers.
    for (body, field) in [
        (json!({"delta": 1, "set": 2, "reason": "x"}), "delta"),
        (json!({"reason": "x"}), "delta"),
        (json!({"delta": 0, "reason": "x"}), "delta"),
        (json!({"set": -1, "reason": "x"}), "set"),
        (json!({"delta": 1}), "reason"),
        (json!({"delta": 1, "reason": "x", "why": "y"}), "why"),
    ] {
        let p = problem(
            app.post("/v1/products/DRESS-M/stock-adjustments", &body)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // A retry with the ETag it was sent with is refused, not applied twice.
    let retry = app
        .client
        .post(app.url("/v1/products/DRESS-M/stock-adjustments"))
        .bearer_auth(&app.key)
        .header("if-match", "\"2\"")
        .json(&json!({"delta": 12, "reason": "restock"}))
        .send()
        .await
        .unwrap();
    problem(retry, StatusCode::PRECONDITION_FAILED).await;
    let vendor = app.key_for(Role::Vendor).await;
    problem(
        app.post_as(
            &vendor,
            "/v1/products/DRESS-M/stock-adjustments",
            &json!({"delta": 1, "reason": "x"}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Movements page oldest first.
    let first = app
        .json("/v1/products/DRESS-M/stock-movements?limit=2")
        .await;
    assert_eq!(first["has_more"], true);
    let kinds: Vec<_> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["on_hand"].clone())
        .collect();
    assert_eq!(kinds, [json!(5), json!(17)]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .json(&format!(
            "/v1/products/DRESS-M/stock-movements?limit=2&cursor={cursor}"
        ))
        .await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(rest["data"][0]["reason"], "stock count");
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn products_are_filtered_searched_and_paged_by_sku() {
    let app = spawn_app().await;
    for (sku, on_hand) in [
        ("TEE", 0),
        ("TEE-S", 0),
        ("TEE-M", 4),
        ("CAP_1", 2),
        ("BAG.1", 1),
    ] {
        let mut body = dress(sku, on_hand);
        if sku.starts_with("TEE-") {
            body["variant_of"] = json!("TEE");
            body["name"] = json!(format!("Tee {sku}"));
        }
        app.add_product(&body).await;
    }
    let skus = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["sku"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        skus(&app.json("/v1/products").await),
        ["BAG.1", "CAP_1", "TEE", "TEE-M", "TEE-S"]
    );
    assert_eq!(
        skus(&app.json("/v1/products?variant_of=TEE").await),
        ["TEE-M", "TEE-S"]
    );
    assert_eq!(
        skus(&app.json("/v1/products?in_stock=false").await),
        ["TEE", "TEE-S"]
    );
    assert_eq!(
        skus(&app.json("/v1/products?q=tee%20t").await),
        ["TEE-M", "TEE-S"]
    );
    let mut seen = Vec::new();
    let mut path = "/v1/products?limit=2".to_string();
    loop {
        let page = app.json(&path).await;
        seen.extend(skus(&page));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/products?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["BAG.1", "CAP_1", "TEE", "TEE-M", "TEE-S"]);
    for (query, field) in [
        ("active=yes", "active"),
        ("archived=maybe", "archived"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
        ("colour=red", "colour"),
    ] {
        let p = problem(
            app.get(&format!("/v1/products?{query}")).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(fields(&p), [field], "{query}");
    }
}

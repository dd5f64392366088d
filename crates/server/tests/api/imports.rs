//! `/v1/imports`: files of orders imported in the background, on both
//! backends: good and bad rows under each error policy, dry runs, re-runs,
//! column mappings, NDJSON, the export read back, and a run that resumes
//! after `kill -9`.

use std::time::Duration;

use ordo_domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const HEADER: &str =
    "external_id,currency,buyer_name,buyer_phone,item_sku,item_name,item_quantity,item_unit_price,notes";

/// Four good orders (A-1 with two rows, a catalog item in A-2) and four
/// that cannot be imported: an unknown SKU (B-1), a quantity that is not
/// a number (B-2), a second currency (B-3), and rows apart (B-4).
fn mixed_file() -> String {
    [
        HEADER,
        "A-1,NGN,Ada,+2348012345678,,Ankara dress,2,15000.00,gate",
        "A-1,NGN,Ada,+2348012345678,,Head tie,1,3500.00,gate",
        "B-1,NGN,Bola,+2348012345679,NOPE,,1,,",
        "A-2,NGN,Chi,+2348012345670,TEE,,3,,",
        "B-2,NGN,Dayo,+2348012345671,,Bag,two,50.00,",
        "B-3,NGN,Efe,+2348012345672,,Hat,1,20.00,",
        "B-3,USD,Efe,+2348012345672,,Belt,1,30.00,",
        "B-4,NGN,Femi,+2348012345673,,Cap,1,10.00,",
        "A-3,NGN,Gbenga,+2348012345674,,Shoes,1,25000.00,",
        "B-4,NGN,Femi,+2348012345673,,Sock,1,5.00,",
        "A-4,NGN,Halima,+2348012345675,,Wrapper,4,8000.00,",
    ]
    .join("\n")
        + "\n"
}

async fn catalog(app: &TestApp) {
    let r = app
        .post(
            "/v1/products",
            &json!({"sku": "TEE", "name": "T-shirt", "price": "4000.00", "currency": "NGN", "on_hand": 100}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

/// Sends a file with `query` and its content type; the 202's body.
async fn send(app: &TestApp, query: &str, content_type: &str, file: &str) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/v1/imports{query}")))
        .bearer_auth(&app.key)
        .header("content-type", content_type)
        .body(file.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap()
    );
    assert!(r.headers().get("location").is_some());
    r.json().await.unwrap()
}

/// Waits until an import has finished and returns it.
async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let import = app.json(&format!("/v1/imports/{id}")).await;
        if ["succeeded", "failed"].contains(&import["state"].as_str().unwrap()) {
            return import;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import {id} did not finish");
}

/// Imports a file with another key (another shop's) and waits for it.
async fn import_as(
    app: &TestApp,
    key: &str,
    query: &str,
    content_type: &str,
    file: String,
) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/v1/imports{query}")))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    settle(
        || async {
            app.get_as(key, &format!("/v1/imports/{id}"))
                .await
                .json::<Value>()
                .await
                .unwrap()
        },
        |i: &Value| i["state"] == "succeeded" || i["state"] == "failed",
    )
    .await
}

async fn import_csv(app: &TestApp, query: &str, file: &str) -> Value {
    let sent = send(app, query, "text/csv", file).await;
    assert_eq!(sent["state"], "queued");
    finished(app, sent["id"].as_str().unwrap()).await
}

fn counts(import: &Value) -> (u64, u64, u64, u64) {
    let c = &import["counts"];
    (
        c["created"].as_u64().unwrap(),
        c["updated"].as_u64().unwrap(),
        c["unchanged"].as_u64().unwrap(),
        c["failed"].as_u64().unwrap(),
    )
}

async fn count(app: &TestApp, query: &str) -> u64 {
    app.json(&format!("/v1/orders/count{query}")).await["count"]
        .as_u64()
        .unwrap()
}

async fn errors_csv(app: &TestApp, id: &str) -> String {
    let r = app.get(&format!("/v1/imports/{id}/errors.csv")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    r.text().await.unwrap()
}

#[tokio::test]
async fn good_rows_are_imported_and_bad_ones_reported_by_line() {
    let app = spawn_app().await;
    catalog(&app).await;
    let import = import_csv(&app, "", &mixed_file()).await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(counts(&import), (4, 0, 0, 4));
    assert_eq!(import["counts"]["lines"], 12);
    let id = import["id"].as_str().unwrap();
    let problems: Vec<(u64, &str)> = import["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        [
            (4, "item_sku"),
            (6, "item_quantity"),
            (8, "currency"),
            (9, "external_id"),
            (11, "external_id"),
        ],
        "{import}"
    );
    let unknown = &import["errors"][0];
    assert_eq!(unknown["value"], "NOPE");
    assert_eq!(unknown["order"], "import:B-1");
    // The orders carry the import's batch id, and are what the file says.
    assert_eq!(import["batch_id"], id);
    assert_eq!(count(&app, &format!("?batch_id={id}")).await, 4);
    let a1 = app.json("/v1/orders/external/import/A-1").await;
    assert_eq!(a1["batch_id"], id);
    assert_eq!(a1["channel"], "import");
    assert_eq!(a1["subtotal"], "33500.00");
    assert_eq!(a1["items"].as_array().unwrap().len(), 2);
    assert_eq!(a1["notes"], "gate");
    let a2 = app.json("/v1/orders/external/import/A-2").await;
    assert_eq!(
        a2["items"][0]["unit_price"], "4000.00",
        "the catalog's price"
    );

    // errors.csv: the failed orders' rows as they were, after their problems.
    let errors = errors_csv(&app, id).await;
    let mut rows = csv::Reader::from_reader(errors.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[..2], ["error_line", "errors"]);
    assert_eq!(header[2..].join(","), HEADER);
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let lines: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(
        lines,
        ["4", "6", "7", "8", "9", "11"],
        "B-3's first row too"
    );
    assert!(rows[0][1].contains("item_sku"), "{:?}", rows[0]);
    assert!(rows[2][1].contains("another of its rows"), "{:?}", rows[2]);

    // Fixed and sent back as it is, the rest goes in; nothing is doubled.
    let fixed = errors
        .replace(",NOPE,", ",TEE,")
        .replace(",two,", ",2,")
        .replace(",USD,", ",NGN,")
        .replace(
            ",B-4,NGN,Femi,+2348012345673,,Sock",
            ",B-5,NGN,Femi,+2348012345673,,Sock",
        );
    let again = import_csv(&app, "", &fixed).await;
    assert_eq!(counts(&again), (5, 0, 0, 0), "{again}");
    assert_eq!(count(&app, "").await, 9);
}

#[tokio::test]
async fn reject_all_imports_nothing_when_any_order_fails() {
    let app = spawn_app().await;
    catalog(&app).await;
    let import = import_csv(&app, "?on_error=reject_all", &mixed_file()).await;
    assert_eq!(import["state"], "failed", "{import}");
    assert_eq!(import["on_error"], "reject_all");
    assert_eq!(counts(&import).3, 4);
    assert_eq!(import["error_count"], 5);
    let failure = import["failure"]["reason"].as_str().unwrap();
    assert!(failure.contains("4 orders cannot be imported"), "{failure}");
    assert_eq!(count(&app, "").await, 0, "nothing was written");

    // A clean file under reject_all is checked, then written.
    let good: String = mixed_file()
        .lines()
        .filter(|l| !l.starts_with("B-"))
        .map(|l| format!("{l}\n"))
        .collect();
    let import = import_csv(&app, "?on_error=reject_all", &good).await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(counts(&import), (4, 0, 0, 0));
    assert_eq!(count(&app, "").await, 4);
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_a_rerun_is_idempotent() {
    let app = spawn_app().await;
    catalog(&app).await;
    let dry = import_csv(&app, "?dry_run=true", &mixed_file()).await;
    assert_eq!(dry["state"], "succeeded", "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry), (4, 0, 0, 4), "what a real run would do");
    assert_eq!(count(&app, "").await, 0);
    let tee = app.json("/v1/products/TEE").await;
    assert_eq!(tee["on_hand"], 100);

    let first = import_csv(&app, "", &mixed_file()).await;
    assert_eq!(counts(&first), (4, 0, 0, 4));
    let a1 = app.json("/v1/orders/external/import/A-1").await;
    let again = import_csv(&app, "", &mixed_file()).await;
    assert_eq!(counts(&again), (0, 0, 4, 4), "{again}");
    assert_eq!(count(&app, "").await, 4);
    let same = app.json("/v1/orders/external/import/A-1").await;
    assert_eq!(same, a1, "untouched, its batch id included");

    // A changed order is updated (and carries the new batch id); a dry run
    // says so first.
    let changed = mixed_file().replace("Wrapper,4,", "Wrapper,5,");
    let dry = import_csv(&app, "?dry_run=true", &changed).await;
    assert_eq!(counts(&dry), (0, 1, 3, 4));
    let update = import_csv(&app, "", &changed).await;
    assert_eq!(counts(&update), (0, 1, 3, 4));
    let a4 = app.json("/v1/orders/external/import/A-4").await;
    assert_eq!(a4["items"][0]["quantity"], 5);
    assert_eq!(a4["batch_id"], update["id"]);
    assert_eq!(a4["version"], 2);
}

#[tokio::test]
async fn a_csv_with_other_headers_is_read_through_a_mapping() {
    let app = spawn_app().await;
    let file = "Order No;Cur;Customer;Phone;Product;Qty;Price\n".replace(';', ",")
        + "SO-1,NGN,Ada,+2348012345678,Ankara dress,2,15000.00\n"
        + "SO-1,NGN,Ada,+2348012345678,Head tie,1,3500.00\n"
        + "SO-2,NGN,Bola,+2348012345679,Cap,1,2000.00\n";
    let mapping = json!({
        "external_id": "Order No", "currency": "Cur", "buyer_name": "Customer",
        "buyer_phone": "Phone", "item_name": "Product", "item_quantity": "Qty",
        "item_unit_price": "Price"
    });
    // Options as multipart parts, then the file.
    let form = reqwest::multipart::Form::new()
        .text("mapping", mapping.to_string())
        .text("namespace", "com.erp.so")
        .part(
            "file",
            reqwest::multipart::Part::text(file.clone()).file_name("orders.csv"),
        );
    let r = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&app.key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let sent: Value = r.json().await.unwrap();
    assert_eq!(sent["format"], "csv", "from the file's name");
    assert_eq!(sent["filename"], "orders.csv");
    let import = finished(&app, sent["id"].as_str().unwrap()).await;
    assert_eq!(counts(&import), (2, 0, 0, 0), "{import}");
    let so1 = app.json("/v1/orders/external/com.erp.so/SO-1").await;
    assert_eq!(so1["buyer"]["name"], "Ada");
    assert_eq!(so1["total"], "33500.00");

    // Without the mapping the headers are refused as a whole.
    let import = import_csv(&app, "", &file).await;
    assert_eq!(import["state"], "failed");
    assert_eq!(import["failure"]["field"], "header");
    assert_eq!(import["failure"]["value"], "Order No");

    // A mapping naming a column ordo does not have is refused at once.
    let bad = json!({"order_number": "Order No"}).to_string();
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/imports?format=csv&mapping={}",
            urlencode(&bad)
        )))
        .bearer_auth(&app.key)
        .body(file)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["mapping.order_number"]);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn ndjson_orders_are_imported_in_the_apis_shape() {
    let app = spawn_app().await;
    let mut good = order_body();
    good["items"][0]["sku"] = Value::Null;
    let mut no_id = good.clone();
    no_id["external_ids"] = json!({});
    let mut bad_price = good.clone();
    bad_price["external_ids"] = json!({"com.acme.order-id": "WEB-2"});
    bad_price["items"][0]["unit_price"] = json!("12,50");
    let file = format!("{}\n\n{{not json\n{}\n{}\n", good, no_id, bad_price);
    let sent = send(&app, "", "application/x-ndjson", &file).await;
    assert_eq!(sent["format"], "ndjson");
    let import = finished(&app, sent["id"].as_str().unwrap()).await;
    assert_eq!(counts(&import), (1, 0, 0, 3), "{import}");
    let problems: Vec<(u64, &str)> = import["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        problems,
        [(3, "line"), (4, "external_ids"), (5, "items[0].unit_price")]
    );
    let order = app
        .json("/v1/orders/external/com.acme.order-id/WEB-2024-123456")
        .await;
    assert_eq!(order["total"], "10000.00");
    let errors = errors_csv(&app, sent["id"].as_str().unwrap()).await;
    assert!(
        errors.starts_with("line,order,field,value,reason\n"),
        "{errors}"
    );
    assert!(
        errors.contains("5,com.acme.order-id:WEB-2,items[0].unit_price,\"12,50\","),
        "{errors}"
    );
}

#[tokio::test]
async fn an_exported_file_imports_as_the_orders_it_came_from() {
    let app = spawn_app().await;
    for i in 0..30 {
        let mut body = order_body();
        body["items"][0]["sku"] = Value::Null;
        body["items"][0]["quantity"] = json!(1 + i % 4);
        body["external_ids"] = json!({"com.shop.cart": format!("C-{i}")});
        body["notes"] = json!(format!("gate, then \"call\"\n({i})"));
        app.create(&body).await;
    }
    let csv = app
        .get("/v1/orders/export?format=csv")
        .await
        .text()
        .await
        .unwrap();
    // Into another shop: the same orders.
    let other = app.other_tenant_key().await;
    let import = import_as(&app, &other, "", "text/csv", csv).await;
    let id = import["id"].as_str().unwrap();
    assert_eq!(counts(&import), (30, 0, 0, 0), "{import}");
    // The first shop does not see the other's import.
    let r = app.get(&format!("/v1/imports/{id}")).await;
    problem(r, StatusCode::NOT_FOUND).await;
    for i in [0, 7, 29] {
        let path = format!("/v1/orders/external/com.shop.cart/C-{i}");
        let a = app.json(&path).await;
        let b: Value = app.get_as(&other, &path).await.json().await.unwrap();
        for field in [
            "currency",
            "buyer",
            "notes",
            "subtotal",
            "total",
            "external_ids",
        ] {
            assert_eq!(a[field], b[field], "{field}");
        }
        for (x, y) in a["items"]
            .as_array()
            .unwrap()
            .iter()
            .zip(b["items"].as_array().unwrap())
        {
            for field in ["name", "quantity", "unit_price", "attributes", "line_total"] {
                assert_eq!(x[field], y[field], "{field}");
            }
        }
    }
}

#[tokio::test]
async fn uploads_are_checked_before_anything_is_kept() {
    let app = spawn_app_with(|c| c.files.import_max_bytes = 1_000).await;
    let post = |query: &'static str, content_type: &'static str, body: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url(&format!("/v1/imports{query}")))
                .bearer_auth(&app.key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let p = problem(
        post("", "application/octet-stream", "a,b\n".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["format"]);
    let p = problem(
        post("", "text/csv", String::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["file"]);
    let p = problem(
        post(
            "?kind=invoices&on_error=maybe&dry_run=yes",
            "text/csv",
            "x\n".into(),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["kind", "dry_run", "on_error"]);
    let p = problem(
        post("?colour=red", "text/csv", "x\n".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    says(&p, "colour");
    problem(
        post("", "text/csv", "x".repeat(1_001)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let viewer = app.key_for(Role::Viewer).await;
    let r = app
        .client
        .post(app.url("/v1/imports"))
        .bearer_auth(&viewer)
        .header("content-type", "text/csv")
        .body("x\n")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    let list = app.json("/v1/imports").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was kept"
    );
    problem(app.get("/v1/imports/imp_nope").await, StatusCode::NOT_FOUND).await;

    // A file that is kept is listed (a line without a name or price fails).
    let import = import_csv(&app, "", "external_id,currency,item_quantity\nA,NGN,1\n").await;
    assert_eq!(import["state"], "succeeded");
    assert_eq!(counts(&import), (0, 0, 0, 1));
    let list = app.json("/v1/imports").await;
    assert_eq!(list["data"][0]["id"], import["id"]);
    assert!(list["data"][0].get("errors").is_none());
}

/// A large import killed with `kill -9` goes on after the restart from its
/// last saved chunk: every order once, counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_way_resumes_after_a_restart() {
    let db = TestDb::new().await;
    ordo(&db, &["tenants", "create", "bulk"]);
    let key = ordo(
        &db,
        &["keys", "create", "--tenant", "bulk", "--role", "owner"],
    );
    let port = free_port();
    // A short lease, so the restarted node takes the import over soon.
    let env = [("ORDO_JOBS__LEASE_SECS", "2")];
    let mut server = start_with(&db, port, &env).await;
    // Two and a half chunks.
    let n = 10_000;
    let mut file = String::from(HEADER);
    file.push('\n');
    for i in 0..n {
        file.push_str(&format!(
            "K-{i},NGN,Buyer {i},+23480300{i:05},,Dress,1,1000.00,\nK-{i},NGN,Buyer {i},+23480300{i:05},,Scarf,2,500.00,\n"
        ));
    }
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let r = client
        .post(format!("{base}/v1/imports"))
        .bearer_auth(&key)
        .header("content-type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let get = |base: String| {
        let (client, key, id) = (client.clone(), key.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/v1/imports/{id}"))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Killed once some chunks are saved, before the end.
    let mut before = Value::Null;
    for _ in 0..2_000 {
        before = get(base.clone()).await;
        if before["counts"]["created"].as_u64().unwrap() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().expect("kill -9");
    server.wait().expect("reap");
    assert_eq!(before["state"], "running", "{before}");
    let saved = before["counts"]["created"].as_u64().unwrap();
    assert!(saved > 0 && saved < n, "{saved}");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = start_with(&db, port, &env).await;
    let mut after = Value::Null;
    for _ in 0..1_200 {
        after = get(base.clone()).await;
        if after["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let count: Value = client
        .get(format!("{base}/v1/orders/count?batch_id={id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.kill().expect("kill");
    server.wait().expect("reap");
    assert_eq!(after["state"], "succeeded", "{after}");
    assert_eq!(count["count"], n, "every order once");
    assert_eq!(counts(&after), (n, 0, 0, 0), "each counted once: {after}");
    assert_eq!(after["counts"]["lines"], 2 * n + 1);
}

#[tokio::test]
async fn an_ndjson_order_repeated_in_the_file_is_imported_once() {
    let app = spawn_app().await;
    let mut order = order_body();
    order["items"][0]["sku"] = Value::Null;
    let mut changed = order.clone();
    changed["notes"] = json!("a later version of the same order");
    let sent = send(
        &app,
        "",
        "application/x-ndjson",
        &format!("{order}\n{changed}\n"),
    )
    .await;
    let import = finished(&app, sent["id"].as_str().unwrap()).await;
    assert_eq!(counts(&import), (1, 0, 0, 1), "{import}");
    let problem = &import["errors"][0];
    assert_eq!(problem["line"], 2);
    assert_eq!(problem["field"], "external_ids");
    assert!(problem["reason"].as_str().unwrap().contains("earlier line"));
    let stored = app
        .json("/v1/orders/external/com.acme.order-id/WEB-2024-123456")
        .await;
    assert_eq!(stored["notes"], order["notes"], "the first line's order");
}

const PRODUCTS: &str = "\
sku,name,currency,price,on_hand,attributes,variant_of,active,weight_grams
DRESS,Ankara dress,NGN,15000.00,10,\"{\"\"size\"\": [\"\"S\"\", \"\"M\"\"]}\",,,450
DRESS-M,Ankara dress (M),NGN,15000.00,4,,DRESS,,
TEE,,,4500.00,120,,,,
CAP,Cap,NGN,ten,,,,,
HAT,,NGN,2x,,,,,
TEE,,,,,,,,
MUG,Mug,NGN,5.00,,,,maybe,
SOCK,,USD,,,,,,
BAG,Bag,NGN,50.00,7,,,,
";

async fn product(app: &TestApp, body: Value) {
    let r = app.post("/v1/products", &body).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
}

/// A file of products: created (a variant after its parent), updated
/// (price and stock), left as it is, and refused row by row; a dry run
/// first, a re-run after, and the listing read into another shop.
#[tokio::test]
async fn products_are_imported_by_sku() {
    let app = spawn_app().await;
    catalog(&app).await;
    product(
        &app,
        json!({"sku": "SOCK", "name": "Sock", "price": "500.00", "currency": "NGN"}),
    )
    .await;
    product(
        &app,
        json!({"sku": "BAG", "name": "Bag", "price": "50.00", "currency": "NGN", "on_hand": 7}),
    )
    .await;

    let dry = import_csv(&app, "?kind=products&dry_run=true", PRODUCTS).await;
    assert_eq!(dry["kind"], "products");
    assert_eq!(counts(&dry), (2, 1, 1, 5), "{dry}");
    assert_eq!(dry["batch_id"], Value::Null);
    problem(app.get("/v1/products/DRESS").await, StatusCode::NOT_FOUND).await;
    assert_eq!(app.json("/v1/products/TEE").await["price"], "4000.00");

    let import = import_csv(&app, "?kind=products", PRODUCTS).await;
    assert_eq!(import["state"], "succeeded", "{import}");
    assert_eq!(counts(&import), (2, 1, 1, 5), "{import}");
    let problems: Vec<(u64, &str, &str)> = import["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["field"].as_str().unwrap(),
                e["order"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (5, "price", "CAP"),
            (6, "name", "HAT"),
            (6, "price", "HAT"),
            (7, "sku", "TEE"),
            (8, "active", "MUG"),
            (9, "currency", "SOCK"),
        ],
        "{import}"
    );
    let dress = app.json("/v1/products/DRESS").await;
    assert_eq!(dress["attributes"]["size"], json!(["S", "M"]));
    assert_eq!(dress["weight_grams"], 450);
    assert_eq!(dress["on_hand"], 10);
    let variant = app.json("/v1/products/DRESS-M").await;
    assert_eq!(variant["variant_of"], "DRESS");
    let tee = app.json("/v1/products/TEE").await;
    assert_eq!(
        (&tee["price"], &tee["on_hand"]),
        (&json!("4500.00"), &json!(120))
    );
    assert_eq!(
        tee["name"], "T-shirt",
        "an empty cell leaves a field as it is"
    );
    let moves = app.json("/v1/products/TEE/stock-movements").await;
    let last = moves["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["on_hand_change"], 20);
    assert_eq!(
        last["reason"],
        format!("import {}", import["id"].as_str().unwrap())
    );
    assert_eq!(app.json("/v1/products/SOCK").await["currency"], "NGN");

    // errors.csv: the refused rows, each with its own problem.
    let errors = errors_csv(&app, import["id"].as_str().unwrap()).await;
    let lines: Vec<String> = csv::Reader::from_reader(errors.as_bytes())
        .records()
        .map(|r| r.unwrap()[0].to_string())
        .collect();
    assert_eq!(lines, ["5", "6", "7", "8", "9"], "{errors}");

    // Again: nothing changes.
    let again = import_csv(&app, "?kind=products", PRODUCTS).await;
    assert_eq!(counts(&again), (0, 0, 4, 5), "{again}");
    assert_eq!(
        app.json("/v1/products/TEE").await["version"],
        tee["version"]
    );

    // The listing, as NDJSON, makes the same products in another shop.
    let listing = app.json("/v1/products?limit=100").await;
    let ndjson: String = listing["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{p}\n"))
        .collect();
    let other = app.other_tenant_key().await;
    let copied = import_as(
        &app,
        &other,
        "?kind=products",
        "application/x-ndjson",
        ndjson,
    )
    .await;
    assert_eq!(counts(&copied), (5, 0, 0, 0), "{copied}");
    for sku in ["DRESS", "DRESS-M", "TEE", "BAG", "SOCK"] {
        let path = format!("/v1/products/{sku}");
        let a = app.json(&path).await;
        let b: Value = app.get_as(&other, &path).await.json().await.unwrap();
        for field in [
            "name",
            "price",
            "currency",
            "attributes",
            "variant_of",
            "on_hand",
            "weight_grams",
        ] {
            assert_eq!(a[field], b[field], "{sku} {field}");
        }
    }

    // Products take a key that may change the catalog, and no namespace.
    let vendor = app.key_for(Role::Vendor).await;
    let r = app
        .client
        .post(app.url("/v1/imports?kind=products"))
        .bearer_auth(&vendor)
        .header("content-type", "text/csv")
        .body(PRODUCTS)
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::FORBIDDEN).await;
    let r = app
        .client
        .post(app.url(
            "/v1/imports?kind=products&namespace=shop&mapping=%7B%22item_sku%22%3A%22Code%22%7D",
        ))
        .bearer_auth(&app.key)
        .header("content-type", "text/csv")
        .body(PRODUCTS)
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["mapping.item_sku", "namespace"]);
}

/// Runs `ordo` on `db`: its exit code, stdout and stderr.
fn cli(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ordo"))
        .args(db.args())
        .args(args)
        .env_remove("ORDO_API_KEY")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `ordo import` and `ordo export`, on the local database (the importer
/// runs in the command) and against a server (`--url`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_and_exports_locally_and_through_a_server() {
    let db = TestDb::new().await;
    let (code, _, err) = cli(&db, &["tenants", "create", "shop"]);
    assert_eq!(code, Some(0), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.csv");
    std::fs::write(
        &orders,
        "external_id,currency,buyer_phone,item_name,item_quantity,item_unit_price\n\
         A-1,NGN,+2348012345678,Dress,2,15000.00\n\
         A-1,NGN,+2348012345678,Scarf,1,3500.00\n\
         A-2,NGN,+2348012345679,Cap,x,1.00\n\
         A-3,NGN,+2348012345670,Hat,1,5.00\n",
    )
    .unwrap();
    let path = orders.to_str().unwrap();

    // Locally: some rows failed, so exit code 2, with the problem shown.
    let (code, out, err) = cli(&db, &["import", path]);
    assert_eq!(code, Some(2), "{out}{err}");
    let summary = out.trim();
    assert!(
        summary.ends_with("succeeded: 5 lines, 2 created, 0 updated, 0 unchanged, 1 failed"),
        "{summary}"
    );
    assert!(
        err.contains("line 4 (import:A-2): item_quantity \"x\""),
        "{err}"
    );
    let id = summary.split(' ').next().unwrap().to_string();
    let (code, out, _) = cli(&db, &["import", path, "--dry-run"]);
    assert_eq!(code, Some(2));
    assert!(
        out.contains("0 created, 0 updated, 2 unchanged, 1 failed (a dry run"),
        "{out}"
    );
    let (code, _, err) = cli(&db, &["import", path, "--on-error", "maybe"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("on_error: not an error policy"), "{err}");

    // Exported by batch id, as CSV, into a file.
    let exported = dir.path().join("out.csv");
    let query = format!("batch_id={id}");
    let (code, _, err) = cli(
        &db,
        &[
            "export",
            "--format",
            "csv",
            "--query",
            &query,
            "-o",
            exported.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(text.lines().count(), 4, "a header and three items: {text}");
    assert!(text.contains("{\"\"import\"\":\"\"A-1\"\"}"), "{text}");

    // Through a server: products, then an export of the orders.
    let key = ordo(
        &db,
        &["keys", "create", "--tenant", "shop", "--role", "owner"],
    );
    let port = free_port();
    let mut server = start(&db, port).await;
    let url = format!("http://127.0.0.1:{port}");
    let products = dir.path().join("products.ndjson");
    std::fs::write(
        &products,
        "{\"sku\":\"TEE\",\"name\":\"T-shirt\",\"currency\":\"NGN\",\"price\":\"4000.00\",\"on_hand\":5}\n\
         {\"sku\":\"CAP\",\"name\":\"Cap\",\"currency\":\"NGN\",\"price\":\"1500.00\"}\n",
    )
    .unwrap();
    let remote = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--url", url.as_str(), "--key", key.as_str()]);
        cli(&db, &all)
    };
    let (code, out, err) = remote(&["import", products.to_str().unwrap(), "--kind", "products"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("2 lines, 2 created, 0 updated, 0 unchanged, 0 failed"),
        "{out}"
    );
    let (code, out, err) = remote(&["export", "--query", "status=pending"]);
    assert_eq!(code, Some(0), "{err}");
    let mut ids: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["external_ids"]["import"].to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["\"A-1\"", "\"A-3\""]);
    // Bad options are said before the file is sent; a failed export
    // leaves the file it would have replaced as it was.
    let (code, _, err) = remote(&["import", path, "--on-error", "maybe"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("on_error: not an error policy"), "{err}");
    let (code, _, err) = remote(&[
        "export",
        "--query",
        "colour=red",
        "-o",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("colour"), "{err}");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), text);
    let (code, _, err) = cli(&db, &["import", path, "--url", &url, "--key", "nope"]);
    assert_eq!(code, Some(1));
    assert!(err.to_lowercase().contains("key"), "{err}");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// An import's webhook deliveries go after live ones that are due: a live
/// order made while hundreds of imported orders' deliveries wait is
/// delivered in the next batch, not after them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imports_deliveries_wait_behind_live_ones() {
    let app = spawn_app_with(|c| c.webhooks.allow_private_urls = true).await;
    // A receiver that holds every request until the gate opens, and notes
    // the order they arrived in.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let arrived: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let hook = {
        let (gate, arrived) = (gate.clone(), arrived.clone());
        axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let (gate, arrived) = (gate.clone(), arrived.clone());
                async move {
                    arrived.lock().unwrap().push(body);
                    gate.acquire().await.unwrap().forget();
                    "thanks"
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    app.subscribe(&json!({"url": url, "event_types": ["order.created"]}))
        .await;

    let n = 1200;
    let mut file =
        String::from("external_id,currency,buyer_phone,item_name,item_quantity,item_unit_price\n");
    for i in 0..n {
        file.push_str(&format!("BULK-{i},NGN,+2348012345678,Cap,1,10.00\n"));
    }
    let import = import_csv(&app, "", &file).await;
    assert_eq!(counts(&import), (n, 0, 0, 0));
    // The first batch of the import's deliveries is at the receiver.
    let held = settle(|| async { arrived.lock().unwrap().len() }, |n| *n > 0).await;
    assert!(held > 0);
    let mut live = order_body();
    live["external_ids"] = json!({"shop": "LIVE-1"});
    let live = app.create(&live).await;
    // Its delivery is made (fanned out behind the import's events).
    let path = format!(
        "/v1/webhook-deliveries?order_id={}",
        live["id"].as_str().unwrap()
    );
    let made = settle(
        || app.json(&path),
        |d: &Value| !d["data"].as_array().unwrap().is_empty(),
    )
    .await;
    assert_eq!(made["data"].as_array().unwrap().len(), 1, "{made}");
    gate.add_permits(10_000);
    let all = settle(
        || async { arrived.lock().unwrap().clone() },
        |a: &Vec<String>| a.len() > n as usize,
    )
    .await;
    assert_eq!(all.len(), n as usize + 1);
    // Deliveries are claimed 256 at a time and sent side by side: the live
    // one is in the batch after the held one, not behind the other ~900.
    let position = all.iter().position(|b| b.contains("LIVE-1")).unwrap();
    assert!(
        position < 2 * 256,
        "the live order's delivery came {position}th of {}",
        all.len()
    );
}

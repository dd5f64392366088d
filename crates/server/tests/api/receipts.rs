//! Receipts: uploaded, recognised by content, reviewed, downloaded; on the
//! local disk and on an S3 emulator.

use ordo::config::FilesBackend;
use ordo_domain::Role;
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{fields, plain_order, problem, says, spawn_app, spawn_app_with, TestApp};

/// The start of a real PNG (signature and an IHDR chunk), then filler.
fn png() -> Vec<u8> {
    let mut bytes =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89".to_vec();
    bytes.extend((0..2_000u32).map(|i| (i % 251) as u8));
    bytes
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n".to_vec()
}

async fn upload_as(
    app: &TestApp,
    key: &str,
    order: &str,
    content: Vec<u8>,
    name: &str,
    mime: Option<&str>,
) -> Response {
    let mut part = Part::bytes(content).file_name(name.to_string());
    if let Some(mime) = mime {
        part = part.mime_str(mime).unwrap();
    }
    app.client
        .post(app.url(&format!("/v1/orders/{order}/receipts")))
        .bearer_auth(key)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

async fn upload(
    app: &TestApp,
    order: &str,
    content: Vec<u8>,
    name: &str,
    mime: Option<&str>,
) -> Response {
    upload_as(app, &app.key, order, content, name, mime).await
}

async fn order(app: &TestApp) -> String {
    app.create(&plain_order()).await["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Upload, download, approve and reject, whatever stores the files.
async fn review(app: &TestApp) {
    let id = order(app).await;
    let content = png();
    let r = upload(
        app,
        &id,
        content.clone(),
        "C:\\phone\\transfer.png",
        Some("image/png"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "pending", "a receipt is under review");
    let receipt = &o["receipts"][0];
    assert_eq!(receipt["state"], "in_review");
    assert_eq!(receipt["content_type"], "image/png");
    assert_eq!(receipt["size"], content.len());
    assert_eq!(receipt["filename"], "transfer.png");
    assert_eq!(receipt["sha256"], hex::encode(Sha256::digest(&content)));
    let url = receipt["url"].as_str().unwrap().to_string();
    let rid = receipt["id"].as_str().unwrap().to_string();

    // Anyone who may read the order may download it; nobody else.
    let viewer = app.key_for(Role::Viewer).await;
    let r = app.get_as(&viewer, &url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.unwrap().as_ref(), content.as_slice());
    let other = app.other_tenant_key().await;
    assert_eq!(
        app.get_as(&other, &url).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = app.client.get(app.url(&url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A viewer cannot decide; staff approve, for what is due.
    let r = app
        .post_as(&viewer, &format!("{url}/approve"), &json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("{url}/approve"),
            &json!({"transaction_id": "FT-RCPT-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["amount_paid"], "10000.00");
    assert_eq!(o["payments"][0]["method"], "bank_transfer");
    assert_eq!(o["payments"][0]["transaction_id"], "FT-RCPT-1");
    assert_eq!(o["receipts"][0]["state"], "approved");
    assert_eq!(o["receipts"][0]["payment_id"], o["payments"][0]["id"]);
    let p = problem(
        app.post(&format!("{url}/reject"), &json!({"reason": "late"}))
            .await,
        StatusCode::CONFLICT,
    )
    .await;
    says(&p, "already approved");

    // A second receipt for a paid order leaves it paid; rejected.
    let r = upload(app, &id, pdf(), "statement.pdf", None).await;
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["receipts"][1]["content_type"], "application/pdf");
    let second = o["receipts"][1]["url"].as_str().unwrap().to_string();
    let p = problem(
        app.post(&format!("{second}/reject"), &json!({"reason": " "}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(fields(&p), ["reason"]);
    let r = app
        .post(
            &format!("{second}/reject"),
            &json!({"reason": "a duplicate of the first"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["receipts"][1]["state"], "rejected");
    assert_eq!(
        o["receipts"][1]["reject_reason"],
        "a duplicate of the first"
    );
    let r = app.get(&second).await;
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert_eq!(r.bytes().await.unwrap().as_ref(), pdf().as_slice());

    let types: Vec<String> = app.json(&format!("/v1/orders/{id}/events")).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "receipt.uploaded",
            "receipt.approved",
            "receipt.uploaded",
            "receipt.rejected"
        ]
    );
    assert_eq!(
        app.get(&format!("/v1/orders/{id}/receipts/{rid}x"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

fn files_in(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| {
            let path = e.unwrap().path();
            if path.is_dir() {
                files_in(&path)
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test]
async fn receipts_are_reviewed_and_kept_on_the_disk() {
    let app = spawn_app().await;
    review(&app).await;
    assert_eq!(
        files_in(&app.db.dir.path().join("files")),
        2,
        "both files are on the disk"
    );
    // A receipt may be larger than other bodies (http.body_limit_bytes is 1 MiB).
    let mut photo = png();
    photo.resize(3 * 1024 * 1024, 7);
    let id = order(&app).await;
    let r = upload(&app, &id, photo.clone(), "photo.png", Some("image/png")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    let url = o["receipts"][0]["url"].as_str().unwrap();
    assert_eq!(app.get(url).await.bytes().await.unwrap().len(), photo.len());
    let r = app
        .client
        .post(app.url(&format!("/v1/orders/{id}/receipts")))
        .bearer_auth(&app.key)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nnot closed")
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["file"]);
}

#[tokio::test]
async fn files_that_lie_about_their_type_are_refused() {
    let app = spawn_app_with(|c| c.files.receipt_max_bytes = 4_096).await;
    let id = order(&app).await;
    let refused = |r: Response| async { problem(r, StatusCode::UNPROCESSABLE_ENTITY).await };

    let p = refused(
        upload(
            &app,
            &id,
            b"<html><script>alert(1)</script>".to_vec(),
            "receipt.png",
            Some("image/png"),
        )
        .await,
    )
    .await;
    assert_eq!(fields(&p), ["file"]);
    assert_eq!(p["errors"][0]["value"], "image/png");
    assert!(p["errors"][0]["accepted"].as_str().unwrap().contains("PDF"));
    let p = refused(upload(&app, &id, pdf(), "receipt.jpg", Some("image/jpeg")).await).await;
    assert!(p["errors"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("the content is application/pdf, not the image/jpeg"));
    let p = refused(upload(&app, &id, Vec::new(), "empty.png", None).await).await;
    assert_eq!(fields(&p), ["file"]);
    // A name that says PNG does not make a PDF one: it is kept as a PDF.
    let r = upload(
        &app,
        &id,
        pdf(),
        "receipt.png",
        Some("application/octet-stream"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["receipts"][0]["content_type"], "application/pdf");

    let mut big = png();
    big.resize(4_097, 0);
    let p = problem(
        upload(&app, &id, big, "big.png", None).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    says(&p, "4096 bytes");

    let r = app
        .client
        .post(app.url(&format!("/v1/orders/{id}/receipts")))
        .bearer_auth(&app.key)
        .multipart(Form::new().part("photo", Part::bytes(png())))
        .send()
        .await
        .unwrap();
    assert_eq!(fields(&refused(r).await), ["photo"]);
    let p = problem(
        app.post(&format!("/v1/orders/{id}/receipts"), &json!({"file": "x"}))
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    says(&p, "multipart/form-data");
    let viewer = app.key_for(Role::Viewer).await;
    assert_eq!(
        upload_as(&app, &viewer, &id, png(), "r.png", None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&app, "ord_01JD5Q4ZB8Y7K6M3N2P1R0S9TV", png(), "r.png", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // Only the one accepted file was kept.
    assert_eq!(files_in(&app.db.dir.path().join("files")), 1);
    let o = app.json(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["receipts"].as_array().unwrap().len(), 1);
}

/// An S3-compatible server to test against (`./scripts/test` starts one).
fn s3_endpoint() -> String {
    std::env::var("TEST_ORDO_S3")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("this test needs an S3 emulator: run ./scripts/test, or set TEST_ORDO_S3")
}

#[tokio::test]
async fn s3_only_receipts_are_reviewed_and_kept_in_object_storage() {
    let endpoint = s3_endpoint();
    let bucket = format!("ordo-{}", ulid::Ulid::new().to_string().to_lowercase());
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create the bucket: {}", r.status());
    let app = spawn_app_with(|c| {
        c.files.backend = FilesBackend::S3;
        c.files.s3_bucket = bucket.clone();
        c.files.s3_endpoint = endpoint.clone();
        c.files.s3_allow_http = true;
        c.files.s3_access_key_id = "testing".into();
        c.files.s3_secret_access_key = "testing".into();
    })
    .await;
    review(&app).await;
    assert_eq!(
        files_in(&app.db.dir.path().join("files")),
        0,
        "nothing on the disk"
    );
    let listing = reqwest::Client::new()
        .get(format!("{endpoint}/{bucket}?list-type=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(listing.matches("<Key>receipts/").count(), 2, "{listing}");
}

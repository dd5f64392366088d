//! Pricing providers inside the benchmark: one HTTP/1.1 server on
//! 127.0.0.1 that answers each POST after a fixed delay, as a price, a tax
//! and a customer service would (`/price`, `/tax`, `/customer`).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Starts the providers; returns their base URL.
pub async fn start(delay: Duration) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let _ = req.into_body().collect().await;
                    tokio::time::sleep(delay).await;
                    let answer: &'static [u8] = match path.as_str() {
                        "/price" => br#"{"items": []}"#,
                        "/tax" => {
                            br#"{"prices_include_tax": false, "items": [{"index": 0, "rate": "7.5"}, {"index": 1, "rate": "7.5"}, {"index": 2, "rate": "0"}], "shipping_rate": "7.5"}"#
                        }
                        _ => br#"{"tax_exempt": false}"#,
                    };
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(answer))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(url)
}

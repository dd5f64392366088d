//! A webhook receiver inside the benchmark: HTTP/1.1 on 127.0.0.1, answers
//! every POST with 200 at once (or, while told to fail, 503), and counts
//! the ones it took with the time of the first and the last.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

#[derive(Default)]
struct Counts {
    received: AtomicU64,
    refused: AtomicU64,
    failing: AtomicBool,
    first_last: Mutex<Option<(Instant, Instant)>>,
}

pub struct Receiver {
    pub url: String,
    counts: Arc<Counts>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let counts = Arc::new(Counts::default());
        let shared = Arc::clone(&counts);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counts = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let counts = Arc::clone(&counts);
                        async move {
                            // Read the whole body, as a real receiver would.
                            let _ = req.into_body().collect().await;
                            if counts.failing.load(Relaxed) {
                                counts.refused.fetch_add(1, Relaxed);
                                let mut no = Response::new(Full::new(Bytes::from_static(b"down")));
                                *no.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                return Ok::<_, Infallible>(no);
                            }
                            counts.received.fetch_add(1, Relaxed);
                            let now = Instant::now();
                            if let Ok(mut fl) = counts.first_last.lock() {
                                *fl = Some(fl.map_or((now, now), |(first, _)| (first, now)));
                            }
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Receiver { url, counts })
    }

    pub fn received(&self) -> u64 {
        self.counts.received.load(Relaxed)
    }

    /// Deliveries answered 503 so far.
    pub fn refused(&self) -> u64 {
        self.counts.refused.load(Relaxed)
    }

    /// From now on, answer 503 (an outage) or 200; the counts of taken
    /// deliveries start again.
    pub fn set_failing(&self, failing: bool) {
        self.counts.failing.store(failing, Relaxed);
        self.counts.received.store(0, Relaxed);
        if let Ok(mut fl) = self.counts.first_last.lock() {
            *fl = None;
        }
    }

    /// When the first and the last delivery arrived.
    pub fn first_last(&self) -> Option<(Instant, Instant)> {
        self.counts.first_last.lock().ok().and_then(|fl| *fl)
    }
}

//! The lowest-overhead HTTP/1.1 client we can have: one hyper connection per
//! task over a `TcpStream` with `TCP_NODELAY`, kept alive across requests.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go and the headers every request carries.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub base_url: String,
    host: HeaderValue,
    auth: HeaderValue,
}

impl Target {
    /// `url` is `http://HOST[:PORT]`; a path, if any, is ignored.
    pub async fn new(url: &str, key: &str) -> anyhow::Result<Target> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, not {url:?}");
        }
        let authority = uri
            .authority()
            .ok_or_else(|| anyhow!("no host in URL {url:?}"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("cannot resolve {}", authority.host()))?
            .next()
            .ok_or_else(|| anyhow!("{} resolves to no address", authority.host()))?;
        Ok(Target {
            addr,
            base_url: format!("http://{authority}"),
            host: HeaderValue::from_str(authority.as_str())?,
            auth: HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .context("the API key is not a valid header value")?,
        })
    }

    pub fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<Request<Full<Bytes>>> {
        let builder = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, self.auth.clone());
        let req = match body {
            Some(body) => builder
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(Full::new(body))?,
            None => builder.body(Full::new(Bytes::new()))?,
        };
        Ok(req)
    }
}

/// One keep-alive connection, re-established when it breaks.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub reconnects: u64,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Conn {
        Conn {
            target,
            sender: None,
            reconnects: 0,
        }
    }

    /// Waits until the connection can take a request, connecting if needed.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        if let Some(sender) = &mut self.sender {
            if sender.ready().await.is_ok() {
                return Ok(());
            }
            // The server closed it (or it broke between requests).
            self.sender = None;
            self.reconnects += 1;
        }
        let stream = TcpStream::connect(self.target.addr)
            .await
            .with_context(|| format!("connect to {}", self.target.addr))?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = conn.await;
        });
        sender.ready().await?;
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends on a ready connection and reads the whole response body.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        let Some(sender) = self.sender.as_mut() else {
            bail!("not connected");
        };
        let res = match sender.send_request(req).await {
            Ok(res) => res,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = res.status();
        match res.into_body().collect().await {
            Ok(body) => Ok((status, body.to_bytes())),
            Err(e) => {
                self.sender = None;
                Err(e.into())
            }
        }
    }

    /// A GET whose body is read frame by frame and never kept: its status,
    /// its size in bytes and its lines; `sample` runs between frames.
    pub async fn stream(
        &mut self,
        path: &str,
        mut sample: impl FnMut(),
    ) -> anyhow::Result<(StatusCode, u64, u64)> {
        use http_body_util::BodyExt;
        self.ready().await?;
        let req = self.target.request(Method::GET, path, None)?;
        let Some(sender) = self.sender.as_mut() else {
            bail!("not connected");
        };
        let res = sender.send_request(req).await?;
        let status = res.status();
        let mut body = res.into_body();
        let (mut bytes, mut lines) = (0u64, 0u64);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                bytes += data.len() as u64;
                lines += data.iter().filter(|b| **b == b'\n').count() as u64;
            }
            sample();
        }
        Ok((status, bytes, lines))
    }

    /// One request outside the measured loops (setup, counts, id listing).
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.ready().await?;
        let req = self.target.request(method, path, body)?;
        self.send(req).await
    }
}

/// Percent-encodes a query value (cursors are opaque).
pub fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

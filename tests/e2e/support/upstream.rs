//! Real upstream HTTP servers on 127.0.0.1 for the end-to-end tests.
//!
//! Every server answers:
//! - `/bytes/N`: N bytes of a known pattern, streamed in 64 KiB chunks;
//! - `/upload`: reads the body as it streams and answers its length and checksum;
//! - `/hang`: never answers;
//! - `/delay/MS`: the echo, after MS milliseconds;
//! - `/drip/N`: N chunks of 1 KiB, 100 ms apart;
//! - `/status/N`: status N;
//! - anything else: JSON echo of method, path, query and headers.
//!
//! Each answer carries `x-upstream: NAME` so tests see who answered.
//! A [`Behavior`] other than `Normal` overrides all of that for every path,
//! and every upstream counts the requests it received.

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// The byte at offset `i` of every generated body.
pub fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// Checksum the upstream reports for uploads: wrapping sum of byte × (offset + 1).
pub fn checksum(bytes: impl IntoIterator<Item = (u64, u8)>) -> u64 {
    bytes.into_iter().fold(0u64, |acc, (i, b)| {
        acc.wrapping_add(u64::from(b).wrapping_mul(i + 1))
    })
}

type Body = BoxBody<Bytes, Infallible>;

/// How an upstream answers every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// The paths described in the module docs.
    Normal,
    /// Status 500 on every n-th request (1-based), the echo otherwise.
    FailEvery(u64),
    /// Never answers.
    Hang,
    /// Always this status.
    Status(u16),
    /// A JSON catalog entry, `{"item", "price", "served_at"}`, its
    /// `served_at` the time in nanoseconds (never the same twice) and its
    /// `price` 10, or 11 on every n-th request (never when n is 0).
    Catalog(u64),
}

/// A running upstream; stops when the test's runtime ends.
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    arrivals: Arc<Mutex<Vec<u64>>>,
}

impl Upstream {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A config document sending every request to this upstream: service
    /// `s` with one version `v1`, route `all`.
    pub fn only_route(&self) -> String {
        format!(
            "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
             routes: [{{ name: all, service: s }}]",
            self.url()
        )
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// When each request so far arrived, in Unix milliseconds, in order.
    pub fn arrivals_ms(&self) -> Vec<u64> {
        self.arrivals.lock().unwrap().clone()
    }

    /// Starts an upstream called `name` on a free port.
    pub async fn start(name: &'static str) -> Upstream {
        Upstream::start_with(name, Behavior::Normal).await
    }

    /// Starts an upstream called `name` that answers as `behavior` says.
    pub async fn start_with(name: &'static str, behavior: Behavior) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (counter, log) = (hits.clone(), arrivals.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (counter, log) = (counter.clone(), log.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let mut log = log.lock().unwrap();
                        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                        log.push(unix_ms());
                        drop(log);
                        respond(name, behavior, n, req)
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            hits,
            arrivals,
        }
    }
}

/// A config document: service `s` with `v1` on `stable` holding all the
/// weight and `v2` on `canary` none, and route `all` to it.
pub fn canary_service(stable: &Upstream, canary: &Upstream) -> String {
    format!(
        "services:\n\
         - name: s\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: 100, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, weight: 0, targets: [{{ url: '{}' }}] }}\n\
         routes: [{{ name: all, service: s }}]\n",
        stable.url(),
        canary.url()
    )
}

/// [`canary_service`] without outlier detection, so that only a rollback
/// can take a failing canary out.
pub fn canary_service_without_ejection(stable: &Upstream, canary: &Upstream) -> String {
    canary_service(stable, canary).replace(
        "- name: s\n",
        "- name: s\n  outlier_detection: { failures: 0 }\n",
    )
}

/// The wall clock in Unix milliseconds, the clock the host stamps
/// transitions with.
pub fn unix_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| d.as_millis() as u64)
}

/// A port on which nothing listens.
pub async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

async fn respond(
    name: &'static str,
    behavior: Behavior,
    n: u64,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let status = match behavior {
        Behavior::Normal => return serve(name, req).await,
        Behavior::FailEvery(every) if n.is_multiple_of(every) => 500,
        Behavior::FailEvery(_) => return serve(name, req).await,
        Behavior::Hang => std::future::pending().await,
        Behavior::Status(status) => status,
        Behavior::Catalog(every) => {
            let price = if every > 0 && n.is_multiple_of(every) {
                11
            } else {
                10
            };
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let entry = json!({ "item": "widget", "price": price, "served_at": nanos.to_string() });
            return Ok(Response::builder()
                .header("x-upstream", name)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(entry.to_string())).boxed())
                .expect("response"));
        }
    };
    Ok(Response::builder()
        .status(status)
        .header("x-upstream", name)
        .body(Full::new(Bytes::new()).boxed())
        .expect("response"))
}

async fn serve(name: &'static str, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let response = Response::builder().header("x-upstream", name);
    if let Some(n) = path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        const CHUNK: u64 = 64 * 1024;
        let chunks = futures::stream::iter((0..n.div_ceil(CHUNK)).map(move |c| {
            let start = c * CHUNK;
            let end = (start + CHUNK).min(n);
            let data: Vec<u8> = (start..end).map(pattern).collect();
            Ok::<_, Infallible>(Frame::data(Bytes::from(data)))
        }));
        return Ok(response
            .header("content-length", n)
            .body(BodyExt::boxed(StreamBody::new(chunks)))
            .expect("response"));
    }
    if path == "/upload" {
        let mut body = req.into_body().into_data_stream();
        let (mut length, mut sum) = (0u64, 0u64);
        while let Some(Ok(chunk)) = body.next().await {
            sum = sum.wrapping_add(checksum(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (length + i as u64, *b)),
            ));
            length += chunk.len() as u64;
        }
        return Ok(json_response(
            response,
            json!({ "length": length, "checksum": sum }),
        ));
    }
    if path == "/hang" {
        std::future::pending::<()>().await;
    }
    if let Some(ms) = path
        .strip_prefix("/delay/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if let Some(n) = path
        .strip_prefix("/drip/")
        .and_then(|n| n.parse::<u64>().ok())
    {
        let chunks = futures::stream::iter(0..n).then(|i| async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![pattern(i); 1024])))
        });
        return Ok(response
            .header("content-length", n * 1024)
            .body(BodyExt::boxed(StreamBody::new(chunks)))
            .expect("response"));
    }
    if let Some(code) = path
        .strip_prefix("/status/")
        .and_then(|n| n.parse::<u16>().ok())
    {
        return Ok(response
            .status(code)
            .body(Full::new(Bytes::new()).boxed())
            .expect("response"));
    }
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let echo = json!({
        "upstream": name,
        "method": req.method().as_str(),
        "path": path,
        "query": req.uri().query(),
        "headers": headers,
    });
    Ok(json_response(
        response
            .header("connection", "keep-alive")
            .header("keep-alive", "timeout=5"),
        echo,
    ))
}

fn json_response(
    builder: hyper::http::response::Builder,
    body: serde_json::Value,
) -> Response<Body> {
    builder
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("response")
}

/// The values of header `name` in an echo body.
pub fn echoed_header(echo: &serde_json::Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap_or_default().to_owned())
        .collect()
}

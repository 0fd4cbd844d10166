//! The pool against real upstreams on 127.0.0.1: connections are reused,
//! given back only when their body was read, replaced when the upstream
//! closed them, and the request head goes out in origin form with `Host`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use upshift_pool::{Error, Pool};

/// An upstream answering every request with its request line, `Host` and
/// a body of `size` bytes; it counts the connections it accepted and,
/// with `close_after_each`, closes each after one response.
struct Upstream {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn upstream(size: usize, close_after_each: bool) -> Upstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let line = format!(
                        "{} {} host={}",
                        request.method(),
                        request.uri(),
                        request.headers()["host"].to_str().unwrap()
                    );
                    async move {
                        let mut response = Response::new(Full::new(Bytes::from(vec![b'x'; size])));
                        response
                            .headers_mut()
                            .insert("x-line", line.parse().unwrap());
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(!close_after_each)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, connections }
}

fn pool() -> Pool<HttpConnector, Empty<Bytes>> {
    Pool::new(HttpConnector::new(), 2)
}

fn get(addr: SocketAddr, path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://{addr}{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let upstream = upstream(5000, false).await;
    let pool = pool();
    for i in 0..20 {
        let response = pool
            .send(0, get(upstream.addr, &format!("/items/{i}?q=1")), None)
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-line"],
            format!("GET /items/{i}?q=1 host={}", upstream.addr).as_str(),
            "origin form and Host"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), 5000);
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_is_reused_only_after_its_body_was_read() {
    let upstream = upstream(1 << 20, false).await;
    let pool = pool();
    let unread = pool.send(0, get(upstream.addr, "/a"), None).await.unwrap();
    // The first body is still on its connection: the second needs another.
    let second = pool.send(0, get(upstream.addr, "/b"), None).await.unwrap();
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    let body = second.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 1 << 20);
    // Dropped unread: that connection is closed, the read one is reused.
    drop(unread);
    for _ in 0..3 {
        let response = pool.send(0, get(upstream.addr, "/c"), None).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connections_the_upstream_closed_are_replaced() {
    let upstream = upstream(10, true).await;
    let pool = pool();
    for _ in 0..5 {
        let response = pool.send(0, get(upstream.addr, "/"), None).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        // Let the close arrive before the next checkout, or not: both work.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn shards_keep_their_own_connections() {
    let upstream = upstream(10, false).await;
    let pool = pool();
    for shard in [0, 1, 0, 1, 2, 3] {
        let response = pool
            .send(shard, get(upstream.addr, "/"), None)
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    // Shards 2 and 3 are 0 and 1 again (two shards).
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connect_failures_and_relative_uris_are_errors() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let pool = pool();
    let refused = pool.send(0, get(addr, "/"), None).await.unwrap_err();
    assert!(matches!(refused, Error::Connect(_)), "{refused:?}");
    let relative = Request::get("/only/a/path").body(Empty::new()).unwrap();
    let error = pool.send(0, relative, None).await.unwrap_err();
    assert!(matches!(error, Error::NotAbsolute(_)), "{error:?}");
}

#[tokio::test]
async fn a_host_the_caller_set_is_kept() {
    let upstream = upstream(0, false).await;
    let pool = pool();
    let mut request = get(upstream.addr, "/");
    request
        .headers_mut()
        .insert("host", "example.com".parse().unwrap());
    let response = pool.send(0, request, None).await.unwrap();
    assert_eq!(response.headers()["x-line"], "GET / host=example.com");
}

//! Upstreams and clients that speak more than HTTP/1.1 requests: a
//! WebSocket echo server, gRPC servers and clients (Python's grpcio, see
//! `grpc_peer.py`), an HTTP/2-only (h2c) server that counts its
//! connections, a server-sent-events source paced by the test, and a
//! webhook receiver.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;

/// A WebSocket upstream on 127.0.0.1 that answers each text message with
/// `{name}:{message}` and binary ones as they are; its `http://` URL.
pub async fn websocket_upstream(name: &'static str) -> String {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    let answer = match message {
                        Message::Text(text) => Message::text(format!("{name}:{text}")),
                        Message::Binary(bytes) => Message::Binary(bytes),
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if socket.send(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    url
}

fn grpc_peer() -> std::path::PathBuf {
    super::repo().join("tests/e2e/support/grpc_peer.py")
}

/// A gRPC server (`upshift.test.Echo`, h2c) on 127.0.0.1, stopped on drop.
pub struct GrpcServer {
    child: Child,
    /// Closed on drop, which ends the server.
    _stdin: ChildStdin,
    /// Its `h2c://` URL.
    pub url: String,
}

impl GrpcServer {
    /// Starts server `name`, failing every `fail_every`-th unary call with
    /// `UNAVAILABLE` (0: none).
    pub fn start(name: &str, fail_every: u32) -> GrpcServer {
        let mut child = Command::new("python3")
            .arg(grpc_peer())
            .args(["serve", name, &fail_every.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (grpcio: pip install grpcio)");
        let stdin = child.stdin.take().unwrap();
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let port: u16 = port
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the gRPC server did not start: {port:?}"));
        GrpcServer {
            child,
            _stdin: stdin,
            url: format!("h2c://127.0.0.1:{port}"),
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the gRPC client's `scenario` against `url` (`http://host:port`,
/// the gateway): its JSON report.
pub async fn grpc_call(url: &str, scenario: &[&str]) -> Value {
    let address = url.trim_start_matches("http://").to_owned();
    let output = tokio::process::Command::new("python3")
        .arg(grpc_peer())
        .arg("call")
        .arg(address)
        .args(scenario)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the gRPC client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the gRPC client reports JSON")
}

/// An HTTP/2-only upstream (prior knowledge) on 127.0.0.1 that answers
/// every request with `h2:{path}` after `delay`.
pub struct H2Upstream {
    /// Its `h2c://` URL.
    pub url: String,
    connections: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl H2Upstream {
    /// Starts one.
    pub async fn start(delay: std::time::Duration) -> H2Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("h2c://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most_in_flight = Arc::new(AtomicUsize::new(0));
        let counters = (
            connections.clone(),
            in_flight.clone(),
            most_in_flight.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counters.0.fetch_add(1, Ordering::SeqCst);
                let (in_flight, most) = (counters.1.clone(), counters.2.clone());
                let service = hyper::service::service_fn(move |request| {
                    let (in_flight, most) = (in_flight.clone(), most.clone());
                    async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let body = format!("h2:{}", http::Request::uri(&request).path());
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        H2Upstream {
            url,
            connections,
            most_in_flight,
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The most requests it served at once.
    pub fn most_in_flight(&self) -> usize {
        self.most_in_flight.load(Ordering::SeqCst)
    }
}

/// A server-sent-events upstream on 127.0.0.1: each request gets the
/// events the test sends through the returned channel, as they come, and
/// the stream ends when the channel is dropped. Its `http://` URL.
pub async fn event_source() -> (String, tokio::sync::mpsc::Sender<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (events, receiver) = tokio::sync::mpsc::channel::<String>(16);
    let receiver = Arc::new(tokio::sync::Mutex::new(Some(receiver)));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let receiver = receiver.clone();
            let service = hyper::service::service_fn(move |_request| {
                let receiver = receiver.clone();
                async move {
                    let events = receiver.lock().await.take().expect("one stream");
                    let stream = futures::stream::unfold(events, |mut events| async move {
                        let event = events.recv().await?;
                        let frame = Frame::data(Bytes::from(format!("data: {event}\n\n")));
                        Some((Ok::<_, std::convert::Infallible>(frame), events))
                    });
                    let response = http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .header("cache-control", "no-cache")
                        .body(StreamBody::new(stream).boxed_unsync())
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (url, events)
}

/// One webhook call a [`Receiver`] took.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its path.
    pub path: String,
    /// Its headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Its body, as JSON.
    pub body: Value,
    /// Its body as sent, for signatures.
    pub raw: Bytes,
}

impl Delivery {
    /// The value of header `name`, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        super::header_of(&self.headers, name)
    }
}

/// A webhook receiver on 127.0.0.1: records every call and answers each
/// with the status the test sets for its path (200 until then).
#[derive(Clone)]
pub struct Receiver {
    url: String,
    taken: Arc<std::sync::Mutex<Vec<Delivery>>>,
    statuses: Arc<std::sync::Mutex<std::collections::HashMap<String, u16>>>,
}

impl Receiver {
    /// Starts one.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}", listener.local_addr().unwrap()),
            taken: Arc::default(),
            statuses: Arc::default(),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let serving = serving.clone();
                let service = hyper::service::service_fn(
                    move |request: http::Request<hyper::body::Incoming>| {
                        let serving = serving.clone();
                        async move {
                            let path = request.uri().path().to_owned();
                            let headers = request
                                .headers()
                                .iter()
                                .map(|(n, v)| {
                                    (n.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                })
                                .collect();
                            let raw: Bytes = request.into_body().collect().await?.to_bytes();
                            let status = serving.status_of(&path);
                            serving.taken.lock().unwrap().push(Delivery {
                                path,
                                headers,
                                body: serde_json::from_slice(&raw).unwrap_or(Value::Null),
                                raw,
                            });
                            let response = http::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            Ok::<_, hyper::Error>(response)
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        receiver
    }

    /// The URL of `path` on it.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Answers calls to `path` with `status` from now on.
    pub fn answer(&self, path: &str, status: u16) {
        self.statuses
            .lock()
            .unwrap()
            .insert(path.to_owned(), status);
    }

    fn status_of(&self, path: &str) -> u16 {
        self.statuses
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(200)
    }

    /// Every call taken so far at `path`, in order.
    pub fn taken(&self, path: &str) -> Vec<Delivery> {
        self.taken
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.path == path)
            .cloned()
            .collect()
    }
}

//! A fake OpenTelemetry collector on 127.0.0.1: it takes OTLP/HTTP
//! protobuf export requests at `/v1/traces` and keeps their spans.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// A running collector; stops when the test's runtime ends.
pub struct Collector {
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

impl Collector {
    /// Starts listening.
    pub async fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| export(request, kept.clone()));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Collector { url, spans }
    }

    /// The spans received so far, each with its resource's `service.name`,
    /// once there are `n` of them (or after 15 s, whatever came).
    pub async fn spans(&self, n: usize) -> Vec<(String, Span)> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn export(
    request: Request<hyper::body::Incoming>,
    kept: Arc<Mutex<Vec<(String, Span)>>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let wrong = |status| {
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .expect("response"))
    };
    let protobuf = request
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    if request.uri().path() != "/v1/traces" || request.method() != "POST" || !protobuf {
        return wrong(404);
    }
    let body = request.into_body().collect().await?.to_bytes();
    let Ok(decoded) = ExportTraceServiceRequest::decode(body) else {
        return wrong(400);
    };
    let mut kept = kept.lock().unwrap();
    for resource in decoded.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            kept.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    Ok(Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::new()))
        .expect("response"))
}

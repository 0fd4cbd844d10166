//! What crosses the gateway: request ids, forwarding and hop-by-hop headers,
//! and large bodies streamed both ways without being held in memory.

mod support;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use support::upstream::{Upstream, checksum, echoed_header, pattern};
use support::{Host, client, peak_rss_kib};

async fn start() -> (Upstream, tempfile::TempDir, Host) {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    (up, state, host)
}

#[tokio::test]
async fn request_ids_and_forwarding_headers() {
    let (_up, _state, host) = start().await;

    let response = client()
        .get(format!("{}/echo", host.url))
        .header("host", "shop.example.com")
        .header("x-forwarded-for", "203.0.113.7")
        .header("connection", "x-drop-me")
        .header("x-drop-me", "secret")
        .header("x-keep-me", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID request id: {id}");
    assert!(
        response.headers().get("keep-alive").is_none(),
        "hop-by-hop header came back"
    );
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echoed_header(&echo, "x-request-id"), [id]);
    assert_eq!(
        echoed_header(&echo, "x-forwarded-for"),
        ["203.0.113.7, 127.0.0.1"]
    );
    assert_eq!(echoed_header(&echo, "x-forwarded-proto"), ["http"]);
    assert_eq!(
        echoed_header(&echo, "x-forwarded-host"),
        ["shop.example.com"]
    );
    assert_eq!(
        echoed_header(&echo, "forwarded"),
        ["for=127.0.0.1;host=\"shop.example.com\";proto=http"]
    );
    assert_eq!(echoed_header(&echo, "x-keep-me"), ["yes"]);
    assert!(
        echoed_header(&echo, "x-drop-me").is_empty(),
        "connection-listed header was forwarded"
    );
    assert!(
        echoed_header(&echo, "connection")
            .iter()
            .all(|v| !v.contains("x-drop-me")),
        "client connection header was forwarded"
    );
    assert!(
        echo["headers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| !h[0].as_str().unwrap().starts_with("spin-")),
        "runtime headers leaked upstream: {echo}"
    );

    // A sane client request id is kept end to end.
    let response = client()
        .get(format!("{}/echo", host.url))
        .header("x-request-id", "client-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-id-123");
    let echo: Value = response.json().await.unwrap();
    assert_eq!(echoed_header(&echo, "x-request-id"), ["client-id-123"]);
}

const HUNDRED_MB: u64 = 100 * 1024 * 1024;

#[tokio::test]
async fn a_100_mb_upload_and_download_stream_through() {
    let (_up, _state, host) = start().await;
    let before = peak_rss_kib(host.pid());

    // Download: count and check every byte as it arrives.
    let response = client()
        .get(format!("{}/bytes/{HUNDRED_MB}", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut offset = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("download chunk");
        for b in chunk.iter() {
            assert_eq!(*b, pattern(offset), "byte {offset} differs");
            offset += 1;
        }
    }
    assert_eq!(offset, HUNDRED_MB);

    // Upload: generated chunk by chunk, never whole in the client either.
    const CHUNK: u64 = 256 * 1024;
    let chunks = futures::stream::iter((0..HUNDRED_MB / CHUNK).map(|c| {
        let data: Vec<u8> = (c * CHUNK..(c + 1) * CHUNK).map(pattern).collect();
        Ok::<_, std::io::Error>(Bytes::from(data))
    }));
    let response = client()
        .post(format!("{}/upload", host.url))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["length"], HUNDRED_MB);
    assert_eq!(
        result["checksum"],
        checksum((0..HUNDRED_MB).map(|i| (i, pattern(i))))
    );

    let grown_mib = (peak_rss_kib(host.pid()) - before) / 1024;
    assert!(
        grown_mib < 64,
        "host memory peak grew by {grown_mib} MiB while moving 200 MiB"
    );
}

/// With `--instance-concurrency`, requests waiting on upstreams share
/// instances: each still gets its own answer, whole, with its own id.
#[tokio::test]
async fn requests_sharing_an_instance_keep_their_own_answers() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &support::repo().join("spin.toml"),
        state.path(),
        &["--instance-concurrency", "8", "--max-concurrency", "1"],
    );
    host.apply(&up.only_route()).await;

    let requests = (0..48u64).map(|i| {
        let url = host.url.clone();
        async move {
            let id = format!("shared-{i}");
            if i % 2 == 0 {
                let size = 100_000 + i * 4_099;
                let response = client()
                    .get(format!("{url}/bytes/{size}"))
                    .header("x-request-id", &id)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{id}");
                assert_eq!(response.headers()["x-request-id"], id.as_str());
                let body = response.bytes().await.unwrap();
                assert_eq!(body.len() as u64, size, "{id}");
                assert!(
                    body.iter()
                        .enumerate()
                        .all(|(o, b)| *b == pattern(o as u64)),
                    "{id}: body differs"
                );
            } else {
                let response = client()
                    .get(format!("{url}/echo/{i}?n={i}"))
                    .header("x-request-id", &id)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{id}");
                let echo: Value = response.json().await.unwrap();
                assert_eq!(echo["path"], format!("/echo/{i}"), "{id}");
                assert_eq!(echoed_header(&echo, "x-request-id"), [id.as_str()]);
            }
        }
    });
    futures::future::join_all(requests).await;
}

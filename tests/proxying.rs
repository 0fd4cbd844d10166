//! What crosses the gateway: request ids, forwarding and hop-by-hop headers,
//! large bodies streamed both ways without being held in memory, concurrent
//! requests sharing instances, and `https` upstreams.

mod support;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use support::upstream::{Upstream, checksum, echoed_header, pattern};
use support::{Host, RssPeak, client, rss_kib};

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

/// A body larger than a policy instance may ever hold
/// (`MAX_MEMORY_BYTES`, 128 MiB): were it copied into a component's
/// memory, its call would fail for lack of memory.
const GIB: u64 = 1 << 30;

#[tokio::test]
async fn a_1_gib_upload_and_download_stream_through() {
    let (_up, _state, host) = start().await;
    let before = rss_kib(host.pid());
    let peak = RssPeak::start(host.pid());

    // Download: count and check every byte as it arrives.
    let response = client()
        .get(format!("{}/bytes/{GIB}", host.url))
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
    assert_eq!(offset, GIB);

    // Upload: generated chunk by chunk, never whole in the client either.
    const CHUNK: u64 = 256 * 1024;
    let chunks = futures::stream::iter((0..GIB / CHUNK).map(|c| {
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
    assert_eq!(result["length"], GIB);
    assert_eq!(
        result["checksum"],
        checksum((0..GIB).map(|i| (i, pattern(i))))
    );

    let grown_mib = peak.kib().saturating_sub(before) / 1024;
    assert!(
        grown_mib < 64,
        "host memory peak grew by {grown_mib} MiB while moving 2 GiB"
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

/// A TLS upstream on 127.0.0.1 with a certificate for `localhost` from its
/// own certificate authority (written to `ca.pem` in `dir`): it echoes the
/// path and counts the connections it accepts. With `mutual`, it admits
/// only clients with a certificate from that authority, and writes one
/// (`client.pem`, `client-key.pem`) to `dir`.
async fn tls_upstream(dir: &std::path::Path, mutual: bool) -> (u16, Arc<AtomicU64>) {
    use tokio_rustls::rustls;

    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if mutual {
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "upshift-gateway");
        let client = params.signed_by(&client_key, &ca).unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client-key.pem"), client_key.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU64::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|request: hyper::Request<_>| {
                    let body = serde_json::json!({ "path": request.uri().path() }).to_string();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from(body)),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (port, connections)
}

/// A config sending every request to the TLS upstream on `port`.
fn tls_routes(port: u16) -> String {
    format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: 'https://localhost:{port}' }}] }}] }}]\n\
         routes: [{{ name: all, service: s }}]"
    )
}

/// A host whose runtime config (written to `dir`) trusts the certificate
/// authority of the TLS upstream on `port`, with the `[[client_tls]]`
/// lines `identity` adds; with its state folder.
fn trusting_host(dir: &std::path::Path, port: u16, identity: &str) -> (Host, tempfile::TempDir) {
    let runtime_config = dir.join(format!("runtime-config-{}.toml", identity.len()));
    std::fs::write(
        &runtime_config,
        format!(
            "[[client_tls]]\ncomponent_ids = [\"gateway\"]\nhosts = [\"localhost:{port}\"]\n\
             ca_roots_file = \"ca.pem\"\nca_use_webpki_roots = false\n{identity}"
        ),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &support::repo().join("spin.toml"),
        state.path(),
        &["--runtime-config-file", runtime_config.to_str().unwrap()],
    );
    (host, state)
}

/// `https` upstreams: connections are pooled across requests, and the
/// certificate is checked against the Mozilla roots, or against the roots a
/// runtime config file's `[[client_tls]]` names for the component and host.
#[tokio::test]
async fn https_upstreams_are_pooled_and_checked_against_the_configured_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (port, connections) = tls_upstream(dir.path(), false).await;
    let routes = tls_routes(port);

    // Trusting the upstream's certificate authority: every answer comes
    // back over one connection.
    let (host, _state) = trusting_host(dir.path(), port, "");
    host.apply(&routes).await;
    for i in 0..20 {
        let response = client()
            .get(format!("{}/tls/{i}", host.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let echo: Value = response.json().await.unwrap();
        assert_eq!(echo["path"], format!("/tls/{i}"));
    }
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened <= 2,
        "20 requests opened {opened} TLS connections to the upstream"
    );

    // With the default roots, the private authority is not trusted.
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&routes).await;
    let response = client()
        .get(format!("{}/tls/untrusted", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_tls_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("TLS handshake failed") && m.contains("[[client_tls]]")),
        "{body}"
    );
}

/// Mutual TLS: an upstream that asks for a client certificate gets the one
/// `[[client_tls]]` names; without one, the handshake fails with a clear
/// error.
#[tokio::test]
async fn client_certificates_are_presented_to_upstreams_that_ask() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _) = tls_upstream(dir.path(), true).await;
    let routes = tls_routes(port);
    let start = |identity: &str| trusting_host(dir.path(), port, identity);

    let (host, _state) =
        start("client_cert_file = \"client.pem\"\nclient_private_key_file = \"client-key.pem\"\n");
    host.apply(&routes).await;
    for i in 0..3 {
        let response = client()
            .get(format!("{}/mtls/{i}", host.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "request {i}");
        let echo: Value = response.json().await.unwrap();
        assert_eq!(echo["path"], format!("/mtls/{i}"));
    }

    let (host, _state) = start("");
    host.apply(&routes).await;
    let response = client()
        .get(format!("{}/mtls/anonymous", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_tls_failed", "{body}");
}

/// A WebSocket upstream on 127.0.0.1 that answers each text message with
/// `{name}:{message}` and binary ones as they are; its `http://` URL.
async fn websocket_upstream(name: &'static str) -> String {
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

/// WebSocket handshakes pass auth and the split like any request; the
/// connection then stays on the version its handshake went to. The
/// component lane, on wasi:http, refuses them clearly.
#[tokio::test]
async fn websockets_are_relayed_and_stay_on_the_version_their_handshake_picked() {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    use tokio_tungstenite::tungstenite::{Error, Message};

    let (one, two) = (
        websocket_upstream("v1").await,
        websocket_upstream("v2").await,
    );
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services:\n\
         - name: chat\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: 50, targets: [{{ url: '{one}' }}] }}\n\
         \x20   - {{ name: v2, weight: 50, targets: [{{ url: '{two}' }}] }}\n\
         routes: [{{ name: chat, paths: [/chat], service: chat, auth: {{ api_key: {{ header: x-api-key }} }} }}]\n\
         consumers: [{{ name: alice, api_keys: [alice-key-123] }}]"
    ))
    .await;
    let url = format!("{}/chat/room", host.url.replace("http://", "ws://"));
    let handshake = |key: Option<&str>| {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(key) = key {
            request
                .headers_mut()
                .insert("x-api-key", key.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let refused = |result: Result<_, Error>| match result {
        Err(Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("the handshake failed otherwise: {other}"),
        Ok(_) => panic!("the handshake succeeded"),
    };

    if support::lane() == "component" {
        assert_eq!(refused(handshake(Some("alice-key-123")).await), 501);
        return;
    }
    assert_eq!(
        refused(handshake(None).await),
        401,
        "auth holds at the handshake"
    );
    assert_eq!(refused(handshake(Some("wrong-key-000")).await), 401);

    let mut versions = std::collections::BTreeMap::new();
    for connection in 0..20 {
        let (mut socket, response) = handshake(Some("alice-key-123")).await.unwrap();
        assert_eq!(response.status(), 101);
        let upstream = response.headers()["x-upshift-upstream"]
            .to_str()
            .unwrap()
            .to_owned();
        let version = upstream.split('@').nth(1).unwrap().to_owned();
        for i in 0..3 {
            socket
                .send(Message::text(format!("{connection}-{i}")))
                .await
                .unwrap();
            let answer = socket.next().await.unwrap().unwrap();
            assert_eq!(
                answer,
                Message::text(format!("{version}:{connection}-{i}")),
                "every message of a connection goes to the version of its handshake"
            );
        }
        let blob = vec![7u8; 100_000];
        socket.send(Message::binary(blob.clone())).await.unwrap();
        assert_eq!(socket.next().await.unwrap().unwrap(), Message::binary(blob));
        socket.close(None).await.unwrap();
        *versions.entry(version).or_insert(0) += 1;
    }
    assert_eq!(
        versions.len(),
        2,
        "both versions take connections: {versions:?}"
    );
}

/// The gateway ends relayed WebSocket connections with a close frame: an
/// idle one, one past its lifetime and those open at shutdown with 1001,
/// one that sends a message over the limit with 1009. (The component lane
/// relays none: see above.)
#[tokio::test]
async fn websocket_limits_end_connections_with_a_close_frame() {
    use futures::{SinkExt as _, StreamExt as _};
    use std::time::{Duration, Instant};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    if support::lane() == "component" {
        return;
    }
    let upstream = websocket_upstream("v1").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &support::repo().join("spin.toml"),
        state.path(),
        &[
            "--websocket-idle-timeout",
            "1",
            "--websocket-max-lifetime",
            "3",
            "--websocket-max-message-bytes",
            "4096",
        ],
    );
    host.apply(&format!(
        "services: [{{ name: chat, versions: [{{ name: v1, targets: [{{ url: '{upstream}' }}] }}] }}]\n\
         routes: [{{ name: chat, service: chat }}]"
    ))
    .await;
    let url = format!("{}/chat", host.url.replace("http://", "ws://"));
    let closed = |message: Option<Result<Message, _>>| match message {
        Some(Ok(Message::Close(Some(frame)))) => (frame.code, frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    };

    // Idle: closed after a second without messages.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket.send(Message::text("hi")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("v1:hi")
    );
    let since = Instant::now();
    assert_eq!(
        closed(socket.next().await),
        (CloseCode::Away, "idle".to_owned())
    );
    assert!(
        since.elapsed() >= Duration::from_millis(900),
        "{:?}",
        since.elapsed()
    );

    // Too big: 1009, and the upstream never sees the message.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket
        .send(Message::binary(vec![1u8; 10_000]))
        .await
        .unwrap();
    assert_eq!(closed(socket.next().await).0, CloseCode::Size);

    // Lifetime: busy all along, closed after three seconds.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let since = Instant::now();
    let reason = loop {
        socket.send(Message::text("tick")).await.unwrap();
        match socket.next().await {
            Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), "v1:tick"),
            other => break closed(other),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(
        reason,
        (CloseCode::Away, "connection lifetime reached".to_owned())
    );
    let lived = since.elapsed();
    assert!(
        lived >= Duration::from_millis(2_900) && lived < Duration::from_secs(5),
        "{lived:?}"
    );

    // Shutdown: an open connection is closed with 1001 at once, and the
    // host still exits 0.
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    socket.send(Message::text("last")).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::text("v1:last")
    );
    let mut host = host;
    host.signal(libc::SIGTERM);
    assert_eq!(
        closed(socket.next().await),
        (CloseCode::Away, "the gateway is shutting down".to_owned())
    );
    assert_eq!(host.wait(Duration::from_secs(10)).code(), Some(0));
}

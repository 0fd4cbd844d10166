//! What crosses the gateway: request ids, forwarding and hop-by-hop headers,
//! large bodies streamed both ways without being held in memory, concurrent
//! requests sharing instances, and `https` upstreams.

use crate::support;

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
/// path and HTTP version, and counts the connections it accepts. It
/// speaks HTTP/2 to clients that ask for it by ALPN. With `mutual`, it admits
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
    let mut config = builder
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
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
                    let body = serde_json::json!({
                        "path": request.uri().path(),
                        "version": format!("{:?}", request.version()),
                    })
                    .to_string();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(Bytes::from(body)),
                        ))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(io, service)
                .await;
            });
        }
    });
    (port, connections)
}

/// A config sending every request to the TLS upstream on `port`, as
/// `scheme` (`https`, or `h2` for HTTP/2) says.
fn tls_routes(scheme: &str, port: u16) -> String {
    format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{scheme}://localhost:{port}' }}] }}] }}]\n\
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
    let routes = tls_routes("https", port);

    // Trusting the upstream's certificate authority: every answer comes
    // back over one connection.
    let (host, _state) = trusting_host(dir.path(), port, "");
    host.apply(&routes).await;
    echoes(&host, "/tls", 20).await;
    let opened = connections.load(Ordering::SeqCst);
    assert!(
        opened <= 2,
        "20 requests opened {opened} TLS connections to the upstream"
    );

    // With the default roots, the private authority is not trusted.
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&routes).await;
    let answer = host.get("/tls/untrusted", &[]).await;
    let body = &answer.body;
    assert_eq!(
        (answer.status, answer.code()),
        (502, "upstream_tls_failed"),
        "{body}"
    );
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
    let routes = tls_routes("https", port);
    let start = |identity: &str| trusting_host(dir.path(), port, identity);

    let (host, _state) =
        start("client_cert_file = \"client.pem\"\nclient_private_key_file = \"client-key.pem\"\n");
    host.apply(&routes).await;
    echoes(&host, "/mtls", 3).await;

    let (host, _state) = start("");
    host.apply(&routes).await;
    let answer = host.get("/mtls/anonymous", &[]).await;
    assert_eq!(
        (answer.status, answer.code()),
        (502, "upstream_tls_failed"),
        "{:?}",
        answer.body
    );
}

/// `h2://` targets get HTTP/2 over TLS, chosen by ALPN, with every request
/// a stream of one connection; the component lane refuses them clearly.
#[tokio::test]
async fn h2_targets_speak_http2_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (port, connections) = tls_upstream(dir.path(), false).await;
    let (host, _state) = trusting_host(dir.path(), port, "");
    host.apply(&tls_routes("h2", port)).await;
    if support::lane() == "component" {
        support::assert_refused_on_the_component_lane(&host).await;
        return;
    }
    let requests = (0..20).map(|i| {
        let url = format!("{}/tls/{i}", host.url);
        async move {
            let response = client().get(url).send().await.unwrap();
            assert_eq!(response.status(), 200, "request {i}");
            let echo: Value = response.json().await.unwrap();
            assert_eq!(echo["path"], format!("/tls/{i}"));
            assert_eq!(echo["version"], "HTTP/2.0");
        }
    });
    futures::future::join_all(requests).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

/// `n` GETs of `{prefix}/{i}`, each answered by the echo upstream.
async fn echoes(host: &Host, prefix: &str, n: usize) {
    for i in 0..n {
        let answer = host.get(&format!("{prefix}/{i}"), &[]).await;
        assert_eq!(answer.status, 200, "request {i}");
        assert_eq!(answer.body["path"], format!("{prefix}/{i}"));
    }
}

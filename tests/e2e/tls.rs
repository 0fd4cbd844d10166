//! TLS on the listener: the certificate a client gets is chosen by the name
//! it asks for (SNI) and reloaded when its files change, without a
//! restart; HTTP/2 is offered by ALPN, and spoken in clear (h2c) too.

use crate::support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::upstream::Upstream;
use support::{Host, repo};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// A certificate authority for the test.
fn authority() -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// Writes a fresh certificate for `name` to `{name}.pem` and `{name}.key`
/// in `dir`; returns its DER.
fn issue(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    dir: &Path,
    name: &str,
) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    cert.der().clone()
}

/// A TLS connection to `addr` asking for `name`, offering `alpn`.
async fn connect(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    addr: &str,
    name: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), stream)
        .await
        .expect("the TLS handshake succeeds")
}

fn leaf(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// `GET /x` over HTTP/1.1 on `io`: status and `x-upstream`.
async fn get_h1<I>(io: I, host: &str) -> (u16, String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get("/x")
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    answer(sender.send_request(request).await.unwrap()).await
}

/// `GET /x` over HTTP/2 on `io`.
async fn get_h2<I>(io: I, authority: &str) -> (u16, String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(format!("https://{authority}/x"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    answer(sender.send_request(request).await.unwrap()).await
}

async fn answer(response: http::Response<hyper::body::Incoming>) -> (u16, String) {
    let status = response.status().as_u16();
    let upstream = response
        .headers()
        .get("x-upstream")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let _ = response.into_body().collect().await;
    (status, upstream)
}

#[tokio::test]
async fn certificates_are_chosen_by_name_and_reloaded_without_a_restart() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    // The config goes in over plain HTTP first; the TLS host reads it.
    {
        let plain = Host::start(state.path());
        plain.apply(&up.only_route()).await;
    }
    let certs = tempfile::tempdir().unwrap();
    let ca = authority();
    let a = issue(&ca, certs.path(), "a.test");
    let b = issue(&ca, certs.path(), "b.test");
    let file = |name: &str| certs.path().join(name).to_str().unwrap().to_owned();
    let host = Host::start_with(
        &repo().join("spin.toml"),
        state.path(),
        &[
            "--tls-cert",
            &file("a.test.pem"),
            "--tls-key",
            &file("a.test.key"),
            "--tls-cert",
            &file("b.test.pem"),
            "--tls-key",
            &file("b.test.key"),
        ],
    );
    let addr = host.url.trim_start_matches("http://").to_owned();

    let to_a = connect(&ca, &addr, "a.test", &[b"http/1.1"]).await;
    assert_eq!(leaf(&to_a), a);
    assert_eq!(get_h1(to_a, "a.test").await, (200, "up".to_owned()));
    let to_b = connect(&ca, &addr, "b.test", &[b"h2", b"http/1.1"]).await;
    assert_eq!(leaf(&to_b), b);
    assert_eq!(to_b.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(get_h2(to_b, "b.test").await, (200, "up".to_owned()));
    // Plain HTTP on the TLS listener is not served.
    let plain = support::client()
        .get(format!("{}/x", host.url))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP was answered on the TLS listener"
    );

    // A new certificate for a.test is served from the next handshake on.
    let renewed = issue(&ca, certs.path(), "a.test");
    let started = Instant::now();
    while leaf(&connect(&ca, &addr, "a.test", &[]).await) != renewed {
        assert!(started.elapsed() < Duration::from_secs(10), "not reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken file keeps the certificates in use.
    std::fs::write(certs.path().join("b.test.pem"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(leaf(&connect(&ca, &addr, "b.test", &[]).await), b);
    assert_eq!(leaf(&connect(&ca, &addr, "a.test", &[]).await), renewed);
}

#[tokio::test]
async fn http2_in_clear_is_served() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let addr = host.url.trim_start_matches("http://").to_owned();
    let stream = TcpStream::connect(&addr).await.unwrap();
    assert_eq!(get_h2(stream, &addr).await, (200, "up".to_owned()));
}

#[test]
fn a_key_that_does_not_fit_its_certificate_stops_the_start() {
    let certs = tempfile::tempdir().unwrap();
    let ca = authority();
    issue(&ca, certs.path(), "a.test");
    issue(&ca, certs.path(), "b.test");
    let file = |name: &str| certs.path().join(name).to_str().unwrap().to_owned();
    let state = tempfile::tempdir().unwrap();
    let refused = |args: &[&str]| Host::refused(&repo().join("spin.toml"), state.path(), args);
    let err = refused(&[
        "--tls-cert",
        &file("a.test.pem"),
        "--tls-key",
        &file("b.test.key"),
    ]);
    assert!(
        err.contains("a.test.pem with") && err.contains("b.test.key"),
        "{err}"
    );
    let err = refused(&["--tls-cert", &file("a.test.pem")]);
    assert!(err.contains("--tls-key"), "{err}");
}

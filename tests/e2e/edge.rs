//! The listener against hostile and careless clients: request heads that
//! trickle, are too large or lack `Host`, connection floods, and a drain
//! on SIGTERM that lets requests in flight finish.

use crate::support;

use std::time::{Duration, Instant};

use support::upstream::Upstream;
use support::{Host, client, repo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn host(state: &std::path::Path, args: &[&str]) -> Host {
    Host::start_with(&repo().join("spin.toml"), state, args)
}

/// Sends `request` on a new connection and reads until the server closes
/// it (or 5 s pass): the raw answer.
async fn raw(host: &Host, request: &str) -> String {
    let mut stream = TcpStream::connect(host.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

#[tokio::test]
async fn an_http11_request_needs_exactly_one_host() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(state.path(), &[]);
    host.apply(&up.only_route()).await;
    let missing = raw(&host, "GET /x HTTP/1.1\r\nconnection: close\r\n\r\n").await;
    assert_eq!(
        status_line(&missing),
        "HTTP/1.1 400 Bad Request",
        "{missing}"
    );
    assert!(missing.contains("exactly one Host header"), "{missing}");
    let twice = raw(
        &host,
        "GET /x HTTP/1.1\r\nhost: a\r\nhost: b\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&twice), "HTTP/1.1 400 Bad Request", "{twice}");
    let one = raw(
        &host,
        "GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&one), "HTTP/1.1 200 OK", "{one}");
    // The admin API's paths too.
    let admin = raw(
        &host,
        "GET /admin/health HTTP/1.1\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&admin), "HTTP/1.1 400 Bad Request", "{admin}");
}

#[tokio::test]
async fn oversized_and_overmany_headers_are_refused() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(
        state.path(),
        &["--max-header-bytes", "16384", "--max-headers", "50"],
    );
    host.apply(&up.only_route()).await;
    let big = format!(
        "GET /x HTTP/1.1\r\nhost: a\r\nx-big: {}\r\nconnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw(&host, &big).await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "{answer}"
    );
    let many: String = (0..60).map(|i| format!("x-h{i}: {i}\r\n")).collect();
    let answer = raw(&host, &format!("GET /x HTTP/1.1\r\nhost: a\r\n{many}\r\n")).await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 431 Request Header Fields Too Large",
        "{answer}"
    );
    // Request smuggling shapes: both framings go on by the chunked one
    // alone (the length is dropped, so no upstream can read it otherwise);
    // two lengths and folded header lines (obs-fold) are refused.
    let both = raw(
        &host,
        "POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&both), "HTTP/1.1 200 OK", "{both}");
    assert!(
        both.contains(r#"["transfer-encoding","chunked"]"#),
        "{both}"
    );
    assert!(!both.contains(r#"["content-length","#), "{both}");
    let lengths = raw(
        &host,
        "POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    )
    .await;
    assert_eq!(
        status_line(&lengths),
        "HTTP/1.1 400 Bad Request",
        "{lengths}"
    );
    let folded = raw(
        &host,
        "GET /x HTTP/1.1\r\nhost: a\r\nx-a: one\r\n two\r\n\r\n",
    )
    .await;
    assert_eq!(status_line(&folded), "HTTP/1.1 400 Bad Request", "{folded}");
    let fine = client()
        .get(format!("{}/x", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status().as_u16(), 200);
}

#[tokio::test]
async fn trickling_request_heads_are_cut_off_while_others_are_served() {
    // 1,000 sockets here and as many in the host, which inherits the limit.
    raise_open_files_limit(4096);
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(state.path(), &["--header-read-timeout", "1"]);
    host.apply(&up.only_route()).await;
    let addr = host.url.trim_start_matches("http://").to_owned();

    // 1,000 connections that send a request head a byte at a time.
    let started = Instant::now();
    let slow: Vec<_> = (0..1000)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&addr).await.unwrap();
                stream
                    .write_all(b"GET /x HTTP/1.1\r\nhost: a\r\n")
                    .await
                    .unwrap();
                let mut byte = [0u8; 1];
                loop {
                    tokio::select! {
                        read = stream.read(&mut byte) => {
                            // Closed (or answered) by the server.
                            let _ = read;
                            return started.elapsed();
                        }
                        () = tokio::time::sleep(Duration::from_millis(200)) => {
                            if stream.write_all(b"x").await.is_err() {
                                return started.elapsed();
                            }
                        }
                    }
                    assert!(started.elapsed() < Duration::from_secs(20), "still open");
                }
            })
        })
        .collect();
    // A normal client keeps being served meanwhile.
    let client = client();
    for _ in 0..20 {
        let response = client.get(format!("{}/x", host.url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut slowest = Duration::ZERO;
    for task in slow {
        slowest = slowest.max(task.await.unwrap());
    }
    assert!(
        slowest < Duration::from_secs(10),
        "the last trickle ended after {slowest:?}"
    );
    let response = client.get(format!("{}/x", host.url)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn connections_past_the_limit_get_503_with_retry_after() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(state.path(), &["--max-connections", "20"]);
    host.apply(&up.only_route()).await;
    let addr = host.url.trim_start_matches("http://").to_owned();
    // Wait until the apply's connection is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = raw(&host, "GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert_eq!(
        status_line(&answer),
        "HTTP/1.1 503 Service Unavailable",
        "{answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(answer.contains("\"overloaded\""), "{answer}");
    // A held connection is served; freed ones make room.
    let mut first = held.remove(0);
    first
        .write_all(b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"));
    held.truncate(10);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = client()
        .get(format!("{}/x", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish_and_exits_0() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let mut host = host(state.path(), &["--drain-timeout", "20"]);
    host.apply(&up.only_route()).await;
    let client = client();
    // 200 requests the upstream answers after 1.5 s, and a response that
    // streams for 2 s.
    let slow: Vec<_> = (0..200)
        .map(|_| {
            let request = client.get(format!("{}/delay/1500", host.url)).send();
            tokio::spawn(async move {
                let response = request.await?;
                let status = response.status().as_u16();
                response.bytes().await.map(|_| status)
            })
        })
        .collect();
    let streaming = {
        let request = client.get(format!("{}/drip/20", host.url)).send();
        tokio::spawn(async move {
            let response = request.await?;
            response.bytes().await.map(|body| body.len())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    host.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A new connection after the signal is refused.
    let late = TcpStream::connect(host.url.trim_start_matches("http://")).await;
    assert!(late.is_err(), "a new connection was accepted after SIGTERM");

    for request in slow {
        assert_eq!(
            request.await.unwrap().expect("a slow request completes"),
            200
        );
    }
    assert_eq!(
        streaming.await.unwrap().expect("the stream completes"),
        20 * 1024
    );
    let status = host.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "the host exits 0 after draining");
}

#[tokio::test]
async fn the_admin_api_is_not_on_the_public_listener_unless_asked_for() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(state.path(), &[]);
    host.apply(&up.only_route()).await;
    let client = client();
    let status = |base: &str, path: &str| {
        let request = client
            .get(format!("{base}{path}"))
            .bearer_auth(support::ADMIN_TOKEN)
            .send();
        async move {
            let response = request.await.unwrap();
            let upstream = response.headers().get("x-upstream").cloned();
            (response.status().as_u16(), upstream.is_some())
        }
    };
    for path in ["/admin/config", "/admin/components"] {
        // On the public listener, /admin/... is an ordinary path of the gateway.
        assert_eq!(status(&host.url, path).await, (200, true), "{path}");
        assert_eq!(status(&host.admin, path).await, (200, false), "{path}");
    }
    // The admin listener serves nothing else.
    assert_eq!(status(&host.admin, "/x").await.0, 404);
    assert!(
        host.admin.starts_with("http://127.0.0.1:"),
        "{}",
        host.admin
    );
    drop(host);

    let host = self::host(state.path(), &["--admin-public"]);
    for path in ["/admin/config", "/admin/components"] {
        assert_eq!(status(&host.url, path).await, (200, false), "{path}");
    }
}

#[tokio::test]
async fn the_read_only_token_reads_and_changes_nothing() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let variables = state.path().join("variables.toml");
    std::fs::write(&variables, "admin_read_token = \"read-only-0123\"\n").unwrap();
    let host = host(
        state.path(),
        &["--variables-file", variables.to_str().unwrap()],
    );
    host.apply(&up.only_route()).await;
    let client = client();
    let send = |method: reqwest::Method, path: &str, token: &str| {
        client
            .request(method, format!("{}{path}", host.admin))
            .bearer_auth(token)
            .body(up.only_route())
            .send()
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    for path in ["/admin/config", "/admin/stats", "/admin/components"] {
        assert_eq!(
            status(
                send(reqwest::Method::GET, path, "read-only-0123")
                    .await
                    .unwrap()
            ),
            200,
            "{path}"
        );
    }
    let write = send(reqwest::Method::PUT, "/admin/config", "read-only-0123")
        .await
        .unwrap();
    assert_eq!(write.status().as_u16(), 403);
    let body: serde_json::Value = write.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let registry = send(
        reqwest::Method::POST,
        "/admin/components/router/rollback",
        "read-only-0123",
    )
    .await
    .unwrap();
    assert_eq!(status(registry), 403);
    assert_eq!(
        status(
            send(reqwest::Method::GET, "/admin/config", "read-only-0124")
                .await
                .unwrap()
        ),
        401
    );
    // The full token still writes.
    assert_eq!(
        status(
            send(reqwest::Method::PUT, "/admin/config", support::ADMIN_TOKEN)
                .await
                .unwrap()
        ),
        201
    );

    // Every write of a known caller is in the audit trail, reads are not.
    let audit: serde_json::Value = send(reqwest::Method::GET, "/admin/audit", "read-only-0123")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries: Vec<(String, String, String, u64, String)> = audit["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |field: &str| e[field].as_str().unwrap_or_default().to_owned();
            (
                text("token"),
                text("method"),
                text("path"),
                e["status"].as_u64().unwrap(),
                text("outcome"),
            )
        })
        .collect();
    let entry = |token: &str, method: &str, path: &str, status: u64, outcome: &str| {
        (
            token.to_owned(),
            method.to_owned(),
            path.to_owned(),
            status,
            outcome.to_owned(),
        )
    };
    assert_eq!(
        entries,
        [
            entry("admin", "PUT", "/admin/config", 201, "version 1"),
            entry("read-only", "PUT", "/admin/config", 403, "forbidden"),
            entry(
                "read-only",
                "POST",
                "/admin/components/router/rollback",
                403,
                "forbidden"
            ),
            entry("admin", "PUT", "/admin/config", 201, "version 2"),
        ]
    );
}

/// Raises this process's limit of open files to `wanted` (or the hard
/// limit, if lower); processes it starts afterwards inherit it.
fn raise_open_files_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid pointer to an rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= 2100,
        "open files are limited to {} (hard limit {}): too few for 1,000 connections",
        limit.rlim_cur,
        limit.rlim_max
    );
}

#[tokio::test]
async fn without_a_token_one_is_generated_shown_once_and_kept_as_its_digest() {
    let state = tempfile::tempdir().unwrap();
    let manifest = repo().join("spin.toml");
    let host = Host::start_without_token(&manifest, state.path(), &[]);
    let log = host.drain_log();
    let token = log
        .iter()
        .find_map(|line| line.trim().strip_prefix("UPSHIFT_ADMIN_TOKEN="))
        .unwrap_or_else(|| panic!("the generated token is shown: {log:?}"))
        .to_owned();
    assert!(
        token.starts_with("upshift_admin_") && token.len() > 70,
        "{token}"
    );
    let status = |host: &Host, token: &str| {
        let url = format!("{}/admin/components", host.admin);
        let token = token.to_owned();
        async move {
            client()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(&host, &token).await, 200);
    assert_eq!(status(&host, "upshift-dev-admin-token").await, 401);
    let config = client()
        .put(format!("{}/admin/config", host.admin))
        .bearer_auth(&token)
        .header("content-type", "application/yaml")
        .body("routes: []")
        .send()
        .await
        .unwrap();
    assert_eq!(config.status().as_u16(), 201);
    drop(host);

    // Only the digest is kept: the token is nowhere in the state directory.
    let kept = std::fs::read_to_string(state.path().join("admin-token.sha256")).unwrap();
    assert!(kept.trim().starts_with("sha256:"), "{kept}");
    for entry in walk(state.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "{} holds the token",
            entry.display()
        );
    }

    // A restart keeps the token and shows it no more.
    let host = Host::start_without_token(&manifest, state.path(), &[]);
    let log = host.drain_log();
    assert!(
        !log.iter().any(|line| line.contains("UPSHIFT_ADMIN_TOKEN=")),
        "{log:?}"
    );
    assert_eq!(status(&host, &token).await, 200);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_request_body_that_stalls_gets_408_while_others_are_served() {
    let up = Upstream::start("up").await;
    let state = tempfile::tempdir().unwrap();
    let host = host(state.path(), &["--body-read-timeout", "1"]);
    // `held` keeps the body for a retry; the other route streams it on.
    host.apply(&format!(
        "services: [{{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes:\n  - {{ name: held, paths: [/held], service: s, retries: {{ attempts: 1, methods: [POST] }} }}\n  \
         - {{ name: streamed, service: s }}",
        up.url()
    ))
    .await;
    let address = host.url.trim_start_matches("http://").to_owned();
    let stalled = |path: &'static str| {
        let address = address.clone();
        async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let head = format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.write_all(b"0123456789").await.unwrap();
            let sent = Instant::now();
            let mut answer = vec![0; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
                .await
                .expect("answered within 5 s")
                .unwrap();
            (
                String::from_utf8_lossy(&answer[..n]).into_owned(),
                sent.elapsed(),
            )
        }
    };
    let (held, streamed, served) =
        tokio::join!(stalled("/held/upload"), stalled("/upload"), async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            client()
                .get(format!("{}/x", host.url))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    assert_eq!(served, 200, "others are served meanwhile");
    for (route, (answer, waited)) in [("held", held), ("streamed", streamed)] {
        assert_eq!(
            status_line(&answer),
            "HTTP/1.1 408 Request Timeout",
            "{route}: {answer}"
        );
        assert!(
            answer.contains("\"request_body_timeout\""),
            "{route}: {answer}"
        );
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{route} waited {waited:?}"
        );
    }

    // A body that keeps coming, slower in all than the timeout but never
    // pausing that long, goes through.
    let mut stream = TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        stream.write_all(b"0123456789").await.unwrap();
    }
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    assert!(answer.contains("\"length\":50"), "{answer}");
}

//! The protocols APIs speak, through every route feature: WebSocket
//! (relay, limits, counters, draining a retired version), gRPC (every
//! call kind, trailers, deadlines, retries, errors in gRPC form, a canary
//! rolled back on its gRPC statuses), HTTP/2 upstreams multiplexed over
//! one connection, and server-sent events streamed chunk by chunk. The
//! component lane, on wasi:http, refuses what it cannot carry with a
//! clear error.

use crate::support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::peers::{GrpcServer, H2Upstream, event_source, grpc_call, websocket_upstream};
use support::traffic::{admin_get, admin_post, admin_text};
use support::{Host, client};

/// A raw gRPC call over HTTP/2 (prior knowledge) to `url`, with
/// `headers` added: the response's status and headers. The gateway's own
/// answers are trailers-only, so their status is in the headers.
async fn raw_grpc(url: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // One message of 5 bytes: flag, length, payload.
    let mut request = client
        .post(url)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(vec![0, 0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

/// Service `name` with versions `v1` and `v2` at `urls`, weighted as
/// `weights` say.
fn two_versions(name: &str, weights: (u32, u32), urls: (&str, &str)) -> String {
    format!(
        "- name: {name}\n\
         \x20 versions:\n\
         \x20   - {{ name: v1, weight: {}, targets: [{{ url: '{}' }}] }}\n\
         \x20   - {{ name: v2, weight: {}, targets: [{{ url: '{}' }}] }}\n",
        weights.0, urls.0, weights.1, urls.1
    )
}

/// The value of the sample that starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// Every kind of gRPC call passes through a route (with retries, which
/// must not hold a bidirectional stream), trailers and all; the gateway's
/// own errors come in gRPC form, and a call's deadline bounds the wait.
#[tokio::test]
async fn grpc_calls_of_every_kind_pass_through_with_their_trailers() {
    let (one, two) = (GrpcServer::start("v1", 0), GrpcServer::start("v2", 0));
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services:\n{}\
         routes: [{{ name: grpc, paths: [/upshift.test.Echo], service: echo, timeout_ms: 5000, \
                     retries: {{ attempts: 1, methods: [POST] }} }}]",
        two_versions("echo", (50, 50), (&one.url, &two.url))
    ))
    .await;

    if support::lane() == "component" {
        let url = format!("{}/upshift.test.Echo/Unary", host.url);
        let (status, headers) = raw_grpc(&url, &[]).await;
        assert_eq!(
            (status, &headers["grpc-status"]),
            (200, &"12".parse().unwrap())
        );
        let message = headers["grpc-message"].to_str().unwrap();
        assert!(message.starts_with("protocol_not_supported"), "{message}");
        return;
    }

    // Unknown method: the gateway's 404 in gRPC form, no JSON.
    let (status, headers) = raw_grpc(&format!("{}/nope.Svc/Call", host.url), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "12", "UNIMPLEMENTED");
    let message = headers["grpc-message"].to_str().unwrap();
    assert!(message.starts_with("route_not_found"), "{message}");

    let mut served = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let report = grpc_call(&host.url, &["kinds"]).await;
        for (kind, reply) in [
            ("unary", serde_json::json!(":hello")),
            ("server_stream", serde_json::json!([":s:0", ":s:1", ":s:2"])),
            ("client_stream", serde_json::json!(":a+b+c")),
            ("bidi", serde_json::json!([":x", ":y", ":z"])),
        ] {
            let call = &report[kind];
            assert_eq!(call["code"], "OK", "{kind}: {call}");
            // The trailers pass: the server that answered names itself there.
            let version = call["served_by"].as_str().unwrap();
            assert_eq!(call["upstream"], format!("echo@{version}"), "{kind}");
            let named = |r: &Value| Value::from(format!("{version}{}", r.as_str().unwrap()));
            let reply = match reply {
                Value::Array(parts) => Value::Array(parts.iter().map(named).collect()),
                one => named(&one),
            };
            assert_eq!(call["reply"], reply, "{kind}");
            served.insert(version.to_owned());
        }
    }
    assert_eq!(served.len(), 2, "both versions took calls: {served:?}");

    // `grpc-timeout` bounds the wait even when the client does not.
    let started = Instant::now();
    let url = format!("{}/upshift.test.Echo/Slow", host.url);
    let (status, headers) = raw_grpc(&url, &[("grpc-timeout", "300m")]).await;
    assert_eq!(
        (status, &headers["grpc-status"]),
        (200, &"4".parse().unwrap())
    );
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    let report = grpc_call(&host.url, &["deadline", "300"]).await;
    assert_eq!(report["code"], "DEADLINE_EXCEEDED", "{report}");

    // The statuses count per version, streams when their trailers came.
    let text = admin_text(&host, "/admin/metrics").await;
    let ok: u64 = ["v1", "v2"]
        .iter()
        .filter_map(|version| {
            sample(
                &text,
                &format!(
                    "upshift_grpc_responses_total{{route=\"grpc\",service=\"echo\",version=\"{version}\",grpc_status=\"0\"}}"
                ),
            )
        })
        .sum();
    assert_eq!(ok, 16, "{text}");
}

/// `UNAVAILABLE` is retried as the route's policy says (as the 503 it maps
/// to), and a canary failing a fifth of its calls with it is rolled back
/// by the analysis; clients only ever see gRPC statuses.
#[tokio::test]
async fn grpc_unavailable_is_retried_and_a_failing_canary_rolls_back() {
    if support::lane() == "component" {
        return;
    }
    let stable = GrpcServer::start("v1", 0);
    let canary = GrpcServer::start("v2", 5);
    let flaky = GrpcServer::start("flaky", 2);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services:\n{}\
         - name: flaky\n\
         \x20 versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}]\n\
         routes:\n\
         - {{ name: echo, paths: [/upshift.test.Echo], service: echo }}\n\
         - {{ name: flaky, paths: [/upshift.test.Echo], headers: {{ x-lane: flaky }}, service: flaky, \
              retries: {{ attempts: 1, methods: [POST], budget_percent: 100 }} }}",
        two_versions("echo", (100, 0), (&stable.url, &canary.url)),
        flaky.url
    ))
    .await;

    // Every other call of `flaky` fails; the retry makes each one good.
    let unary = format!("{}/upshift.test.Echo/Unary", host.url);
    for _ in 0..10 {
        let (status, headers) = raw_grpc(&unary, &[("x-lane", "flaky")]).await;
        assert_eq!(status, 200);
        assert!(!headers.contains_key("grpc-status"), "{headers:?}");
    }
    let retried = sample(
        &admin_text(&host, "/admin/metrics").await,
        "upshift_grpc_responses_total{route=\"flaky\",service=\"flaky\",version=\"v1\",grpc_status=\"14\"}",
    );
    assert!(retried.is_some_and(|n| n >= 4), "{retried:?}");

    let (status, body) = admin_post(
        &host,
        "/admin/rollouts",
        "service: echo\ncanary: v2\n\
         steps: [{ weight: 50, pause: 10m }, { weight: 100, pause: 10m }]\n\
         analysis: { min_requests: 30, max_error_rate: 0.05, interval: 100ms }\n",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let mut calls = Vec::new();
    let phase = loop {
        let report = grpc_call(&host.url, &["unary", "40"]).await;
        calls.extend(report["calls"].as_array().unwrap().iter().cloned());
        let (_, rollout) = admin_get(&host, "/admin/rollouts/echo").await;
        let phase = rollout["rollout"]["phase"].as_str().unwrap().to_owned();
        if phase != "progressing" || started.elapsed() > Duration::from_secs(60) {
            break (phase, rollout);
        }
    };
    assert_eq!(phase.0, "rolled_back", "{}", phase.1);
    let reason = phase.1["rollout"]["reason"].as_str().unwrap();
    assert!(reason.contains("error rate"), "{reason}");
    for call in &calls {
        match call["code"].as_str().unwrap() {
            "OK" => {}
            "UNAVAILABLE" => assert_eq!(call["served_by"], "v2", "{call}"),
            other => panic!("a client saw {other}: {call}"),
        }
    }
    assert!(calls.iter().any(|c| c["code"] == "UNAVAILABLE"));
    let after = grpc_call(&host.url, &["unary", "20"]).await;
    for call in after["calls"].as_array().unwrap() {
        assert_eq!(
            (&call["code"], &call["served_by"]),
            (&"OK".into(), &"v1".into())
        );
    }
    let text = admin_text(&host, "/admin/metrics").await;
    let unavailable = |version: &str| {
        sample(
            &text,
            &format!(
                "upshift_grpc_responses_total{{route=\"echo\",service=\"echo\",version=\"{version}\",grpc_status=\"14\"}}"
            ),
        )
    };
    assert!(unavailable("v2").is_some_and(|n| n > 0), "{text}");
    assert_eq!(unavailable("v1"), None, "{text}");
}

/// A target that speaks only HTTP/2 (`h2c://`) gets plain HTTP requests
/// of HTTP/1.1 clients as streams of one shared connection; WebSocket
/// handshakes to it are refused.
#[tokio::test]
async fn http2_upstreams_multiplex_requests_over_one_connection() {
    let upstream = H2Upstream::start(Duration::from_millis(200)).await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: h2, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}]\n\
         routes: [{{ name: h2, service: h2 }}]",
        upstream.url
    ))
    .await;
    if support::lane() == "component" {
        support::assert_refused_on_the_component_lane(&host).await;
        return;
    }
    let requests = (0..40).map(|i| {
        let url = format!("{}/item/{i}", host.url);
        async move {
            let response = client().get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    });
    let answers = futures::future::join_all(requests).await;
    for (i, (status, body)) in answers.iter().enumerate() {
        assert_eq!(
            (*status, body.as_str()),
            (200, format!("h2:/item/{i}").as_str())
        );
    }
    assert_eq!(upstream.connections(), 1, "one connection for all");
    assert!(
        upstream.most_in_flight() >= 10,
        "requests shared it at once: at most {} did",
        upstream.most_in_flight()
    );
    // A WebSocket cannot go to such a target: refused, not downgraded.
    let url = format!("{}/ws", host.url.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 501);
        }
        other => panic!("expected a 501: {:?}", other.map(|(_, r)| r.status())),
    }
}

/// Server-sent events reach the client one by one as the upstream sends
/// them, on every lane: the upstream sends the next event only once the
/// client has read the one before.
#[tokio::test]
async fn server_sent_events_stream_event_by_event() {
    use futures::StreamExt as _;

    let (source, events) = event_source().await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services: [{{ name: feed, versions: [{{ name: v1, targets: [{{ url: '{source}' }}] }}] }}]\n\
         routes: [{{ name: feed, service: feed, timeout_ms: 10000 }}]"
    ))
    .await;
    let response = client()
        .get(format!("{}/events", host.url))
        .header("accept", "text/event-stream")
        .send();
    events.send("one".into()).await.unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut read = String::new();
    for event in ["one", "two", "three"] {
        if event != "one" {
            events.send(event.into()).await.unwrap();
        }
        let wanted = format!("data: {event}\n\n");
        while !read.ends_with(&wanted) {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .unwrap_or_else(|_| panic!("{event:?} did not come through alone: {read:?}"))
                .expect("the stream goes on")
                .unwrap();
            read.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
    drop(events);
    assert!(
        body.next().await.is_none(),
        "the stream ends with the upstream's"
    );
    assert_eq!(read, "data: one\n\ndata: two\n\ndata: three\n\n");
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
        "services:\n{}\
         routes: [{{ name: chat, paths: [/chat], service: chat, auth: {{ api_key: {{ header: x-api-key, query: apikey }} }} }}]\n\
         consumers: [{{ name: alice, api_keys: [alice-key-123] }}]",
        two_versions("chat", (50, 50), (&one, &two))
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
    // A browser, which cannot set headers, sends its key in the query.
    let (mut socket, response) =
        tokio_tungstenite::connect_async(format!("{url}?apikey=alice-key-123"))
            .await
            .unwrap();
    assert_eq!(response.status(), 101);
    socket.send(Message::text("from a browser")).await.unwrap();
    let answer = socket.next().await.unwrap().unwrap();
    assert!(
        answer.to_text().unwrap().ends_with(":from a browser"),
        "{answer}"
    );

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

/// Connections count per version, and when a rollback retires the
/// canary, its connections close with 1001 after the drain grace while
/// the stable's stay open.
#[tokio::test]
async fn a_rollback_drains_the_canarys_websockets_and_counts_them() {
    use futures::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    if support::lane() == "component" {
        return;
    }
    let (one, two) = (
        websocket_upstream("v1").await,
        websocket_upstream("v2").await,
    );
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &support::repo().join("spin.toml"),
        state.path(),
        &["--websocket-drain-grace", "1"],
    );
    host.apply(&format!(
        "services:\n{}routes: [{{ name: chat, paths: [/chat], service: chat }}]",
        two_versions("chat", (100, 0), (&one, &two))
    ))
    .await;
    let (status, body) = admin_post(
        &host,
        "/admin/rollouts",
        "service: chat\ncanary: v2\nsteps: [{ weight: 50, pause: manual }]\n",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let url = format!("{}/chat", host.url.replace("http://", "ws://"));
    let mut sockets = Vec::new();
    for i in 0..16 {
        let (mut socket, response) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let version = response.headers()["x-upshift-upstream"]
            .to_str()
            .unwrap()
            .trim_start_matches("chat@")
            .to_owned();
        socket.send(Message::text(format!("{i}"))).await.unwrap();
        assert_eq!(
            socket.next().await.unwrap().unwrap(),
            Message::text(format!("{version}:{i}"))
        );
        sockets.push((version, socket));
    }
    let on = |v: &str| sockets.iter().filter(|(version, _)| version == v).count();
    let (stable, canary) = (on("v1"), on("v2"));
    assert!(stable > 0 && canary > 0, "{stable} and {canary}");

    let (status, body) = admin_post(&host, "/admin/rollouts/chat/abort", "").await;
    assert_eq!(status, 200, "{body}");
    let aborted = Instant::now();
    for (version, socket) in sockets.iter_mut().filter(|(v, _)| v == "v2") {
        let closed = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .unwrap_or_else(|_| panic!("a {version} connection stayed open"));
        match closed {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Away);
                assert_eq!(frame.reason.as_str(), "the version was retired");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    let drained = aborted.elapsed();
    assert!(
        drained >= Duration::from_millis(900) && drained < Duration::from_secs(4),
        "after the grace: {drained:?}"
    );
    for (i, (version, socket)) in sockets.iter_mut().enumerate() {
        if version == "v1" {
            socket.send(Message::text("still")).await.unwrap();
            assert_eq!(
                socket.next().await.unwrap().unwrap(),
                Message::text("v1:still"),
                "connection {i} of the stable stays"
            );
        }
    }

    // Counted per version: opened, closed by code, messages each way.
    let closes = "upshift_websocket_closes_total";
    let v2_closes =
        format!("{closes}{{route=\"chat\",service=\"chat\",version=\"v2\",code=\"1001\"}}");
    let mut text = admin_text(&host, "/admin/metrics").await;
    for _ in 0..50 {
        if sample(&text, &v2_closes) == Some(canary as u64) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = admin_text(&host, "/admin/metrics").await;
    }
    let series = |name: &str, version: &str, extra: &str| {
        let labels = format!("route=\"chat\",service=\"chat\",version=\"{version}\"{extra}");
        sample(&text, &format!("{name}{{{labels}}}"))
    };
    let total = "upshift_websocket_connections_total";
    assert_eq!(series(total, "v1", ""), Some(stable as u64), "{text}");
    assert_eq!(series(total, "v2", ""), Some(canary as u64), "{text}");
    let open = "upshift_websocket_open_connections";
    assert_eq!(series(open, "v1", ""), Some(stable as u64), "{text}");
    assert_eq!(series(open, "v2", ""), Some(0), "{text}");
    assert_eq!(series(closes, "v2", ",code=\"1001\""), Some(canary as u64));
    let messages = "upshift_websocket_messages_total";
    assert_eq!(
        series(messages, "v2", ",direction=\"up\""),
        Some(canary as u64)
    );
    assert_eq!(
        series(messages, "v2", ",direction=\"down\""),
        Some(canary as u64)
    );
}

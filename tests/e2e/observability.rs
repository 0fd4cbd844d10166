//! What the gateway tells of the requests it serves: one access log line
//! each, with no secret in it, and the W3C trace context the upstream gets.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::collector::Collector;
use support::upstream::{Behavior, Upstream, closed_port, echoed_header};
use support::{Host, access_log_lines as log_lines, client, lane, repo};

const ALICE_KEY: &str = "alice-secret-key-4f1c";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The line of request `id`.
fn line_of<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["request_id"] == id)
        .unwrap_or_else(|| panic!("no line for {id} in {lines:#?}"))
}

/// A host on the repository's spin.toml writing its access log to
/// `access.log` in `state`: the host and the log's path.
fn logging_host(state: &Path) -> (Host, PathBuf) {
    let log = state.join("access.log");
    let host = Host::start_with(
        &repo().join("spin.toml"),
        state,
        &["--access-log", log.to_str().unwrap()],
    );
    (host, log)
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_and_no_secret() {
    let up = Upstream::start("one").await;
    let closed = closed_port().await;
    let state = tempfile::tempdir().unwrap();
    let (host, log) = logging_host(state.path());
    host.apply(&format!(
        "services:
  - {{ name: orders, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}] }}
  - {{ name: gone, versions: [{{ name: v3, targets: [{{ url: 'http://127.0.0.1:{closed}' }}] }}] }}
routes:
  - {{ name: api, paths: [/api], service: orders, auth: {{ api_key: {{ header: x-api-key }} }} }}
  - {{ name: down, paths: [/down], service: gone, retries: {{ attempts: 2, methods: [POST] }} }}
consumers:
  - {{ name: alice, tenant: acme, api_keys: [{ALICE_KEY}] }}
",
        up.url()
    ))
    .await;

    let send = |path: &str, id: &str, key: Option<&str>| {
        let mut request = client()
            .post(format!("{}{path}", host.url))
            .header("x-request-id", id)
            .body("twelve bytes");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        request.send()
    };
    let proxied = send(
        "/api/orders?token=query-secret",
        "r-proxied",
        Some(ALICE_KEY),
    )
    .await
    .unwrap();
    assert_eq!(proxied.status(), 200);
    let proxied_len = proxied.bytes().await.unwrap().len() as u64;
    let refused = send("/api/orders", "r-refused", Some("wrong-key-9d2e"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let failed = send("/down", "r-failed", None).await.unwrap();
    assert_eq!(failed.status(), 502);
    let unrouted = send("/nowhere", "r-unrouted", None).await.unwrap();
    assert_eq!(unrouted.status(), 404);

    let lines = log_lines(&log, 4).await;
    assert_eq!(lines.len(), 4, "one line per request: {lines:#?}");

    let line = line_of(&lines, "r-proxied");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["path"], "/api/orders", "the query stays out");
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "api");
    assert_eq!(line["service"], "orders@v1");
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert!(line["host"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(line["bytes_in"], 12);
    assert_eq!(line["bytes_out"], proxied_len);
    assert_eq!(line["trace_id"].as_str().unwrap().len(), 32);
    assert!(line["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    if lane() == "native" {
        assert_eq!(line["consumer"], "alice");
        assert_eq!(line["tenant"], "acme");
        assert_eq!(line["upstream"], up.url().as_str());
        assert_eq!(line["attempts"], 1);
        assert!(line["upstream_latency_ms"].is_u64());
    }

    let line = line_of(&lines, "r-refused");
    assert_eq!(line["status"], 401);
    if lane() == "native" {
        assert_eq!(line["error"], "invalid_api_key");
        assert_eq!(line["attempts"], 0);
    }

    let line = line_of(&lines, "r-failed");
    assert_eq!(line["status"], 502);
    if lane() == "native" {
        assert_eq!(line["error"], "upstream_unavailable");
        assert_eq!(line["attempts"], 3, "the first try and two retries");
        assert_eq!(line["service"], "gone@v3");
    }

    let line = line_of(&lines, "r-unrouted");
    assert_eq!(line["status"], 404);
    if lane() == "native" {
        assert_eq!(line["error"], "route_not_found");
    }

    let text = std::fs::read_to_string(&log).unwrap();
    for secret in [ALICE_KEY, "wrong-key-9d2e", "query-secret"] {
        assert!(
            !text.contains(secret),
            "{secret} leaked into the access log"
        );
    }
}

#[tokio::test]
async fn the_upstream_continues_the_clients_trace() {
    let up = Upstream::start("one").await;
    let state = tempfile::tempdir().unwrap();
    let (host, log) = logging_host(state.path());
    host.apply(&up.only_route()).await;

    let sent = format!("00-{CLIENT_TRACE}-00f067aa0ba902b7-01");
    let echo: Value = client()
        .get(format!("{}/traced", host.url))
        .header("traceparent", &sent)
        .header("tracestate", "vendor=opaque")
        .header("x-request-id", "r-traced")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = echoed_header(&echo, "traceparent");
    let fields: Vec<&str> = got[0].split('-').collect();
    assert_eq!(fields.len(), 4, "{got:?}");
    assert_eq!(
        (fields[0], fields[1], fields[3]),
        ("00", CLIENT_TRACE, "01")
    );
    assert_ne!(
        fields[2], "00f067aa0ba902b7",
        "the gateway's span is the parent"
    );
    assert_eq!(echoed_header(&echo, "tracestate"), ["vendor=opaque"]);

    // Without one (or with a malformed one), a trace starts here.
    for traceparent in [None, Some("00-xyz-00f067aa0ba902b7-01")] {
        let mut request = client().get(format!("{}/started", host.url));
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let echo: Value = request.send().await.unwrap().json().await.unwrap();
        let got = echoed_header(&echo, "traceparent");
        let fields: Vec<&str> = got[0].split('-').collect();
        assert_eq!(fields.len(), 4, "{got:?}");
        assert_eq!(fields[1].len(), 32);
        assert_ne!(fields[1], CLIENT_TRACE);
        assert_ne!(fields[1], "0".repeat(32));
    }

    let lines = log_lines(&log, 3).await;
    assert_eq!(line_of(&lines, "r-traced")["trace_id"], CLIENT_TRACE);
}

#[tokio::test]
async fn a_retried_request_is_traced_to_the_collector_under_the_clients_trace() {
    // Every second request fails: the traced one fails once, then its
    // retry is answered.
    let up = Upstream::start_with("flaky", Behavior::FailEvery(2)).await;
    let mirror = Upstream::start("mirror").await;
    let collector = Collector::start().await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start_with(
        &repo().join("spin.toml"),
        state.path(),
        &["--otlp-endpoint", &collector.url],
    );
    host.apply(&format!(
        "services:
  - {{ name: orders, versions: [{{ name: v1, weight: 100, targets: [{{ url: '{}' }}] }},
                               {{ name: v2, weight: 0, targets: [{{ url: '{}' }}] }}] }}
routes:
  - {{ name: api, paths: [/api], service: orders,
      split: {{ shadow: {{ version: v2, percent: 100, timeout_ms: 2000 }} }},
      retries: {{ attempts: 2, retry_on: [500], budget_percent: 100 }} }}
",
        up.url(),
        mirror.url()
    ))
    .await;
    let first = client().get(format!("{}/api/warm", host.url)).send();
    assert_eq!(first.await.unwrap().status(), 200);

    let sent = format!("00-{CLIENT_TRACE}-00f067aa0ba902b7-01");
    let answer = client()
        .get(format!("{}/api/traced", host.url))
        .header("traceparent", &sent)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let echo: Value = answer.json().await.unwrap();
    assert_eq!(up.hits(), 3, "the traced request was retried once");
    let upstream_saw = echoed_header(&echo, "traceparent");
    let fields: Vec<&str> = upstream_saw[0].split('-').collect();
    assert_eq!(fields[1], CLIENT_TRACE, "{upstream_saw:?}");

    let native = lane() == "native";
    // Per request: the server span, and on the native lane its attempts
    // and its shadow copy.
    let wanted = if native { 7 } else { 2 };
    let spans = collector.spans(wanted).await;
    let trace = hex(&spans
        .iter()
        .find(|(_, s)| s.name == "GET api" && hex(&s.parent_span_id) == "00f067aa0ba902b7")
        .unwrap_or_else(|| panic!("no server span of the traced request in {spans:#?}"))
        .1
        .trace_id);
    assert_eq!(trace, CLIENT_TRACE);
    let ours: Vec<_> = spans
        .iter()
        .filter(|(_, s)| hex(&s.trace_id) == CLIENT_TRACE)
        .collect();
    assert!(ours.iter().all(|(service, _)| service.contains("upshift")));
    let server = &ours.iter().find(|(_, s)| s.name == "GET api").unwrap().1;
    // The upstream's parent is the gateway's span of the request.
    assert_eq!(hex(&server.span_id), fields[2]);
    if native {
        let attempts: Vec<_> = ours
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.name == "attempt orders@v1")
            .collect();
        assert_eq!(attempts.len(), 2, "{ours:#?}");
        for attempt in &attempts {
            assert_eq!(attempt.parent_span_id, server.span_id);
            assert!(attempt.start_time_unix_nano >= server.start_time_unix_nano);
            assert!(attempt.end_time_unix_nano <= server.end_time_unix_nano);
        }
        let statuses: Vec<String> = attempts
            .iter()
            .map(|s| attribute(s, "http.response.status_code"))
            .collect();
        assert_eq!(statuses, ["Some(IntValue(500))", "Some(IntValue(200))"]);
        let shadows: Vec<_> = ours
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.name == "shadow orders@v2")
            .collect();
        assert_eq!(shadows.len(), 1, "{ours:#?}");
        assert_eq!(shadows[0].parent_span_id, server.span_id);
        assert_eq!(
            attribute(shadows[0], "url.full"),
            format!("Some(StringValue({:?}))", mirror.url())
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str) -> String {
    let value = span.attributes.iter().find(|a| a.key == key);
    format!(
        "{:?}",
        value
            .and_then(|a| a.value.as_ref())
            .map(|v| &v.value)
            .cloned()
            .flatten()
    )
}

#[tokio::test]
async fn the_grafana_dashboard_reads_metrics_the_gateway_exports() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("components/admin/grafana/upshift.json")).unwrap(),
    )
    .unwrap();
    let up = Upstream::start("one").await;
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&up.only_route()).await;
    let text = client()
        .get(format!("{}/admin/metrics", host.admin))
        .bearer_auth(support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();

    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut read = 0;
    for expr in panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
    {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("upshift_"))
        {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(
                exported.contains(&family),
                "the dashboard reads {name}, which /admin/metrics does not export"
            );
            read += 1;
        }
    }
    assert!(read >= 15, "{read} metric references");
}

/// Runs `upshift ARGS` (a shell command line) in a new detached tmux
/// session `session`, 120 columns by 50 lines, with the admin token.
fn in_tmux(session: &str, args: &str) {
    let started = std::process::Command::new("tmux")
        .args(["new-session", "-d", "-s", session, "-x", "120", "-y", "50"])
        .args([
            "-e",
            &format!("UPSHIFT_ADMIN_TOKEN={}", support::ADMIN_TOKEN),
        ])
        .arg(format!("{} {args}", support::upshift_bin()))
        .status()
        .expect("tmux starts");
    assert!(started.success());
}

/// What tmux's pane `session` shows now.
fn pane(session: &str) -> String {
    let out = std::process::Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn rollout_status_watch_redraws_the_rollout_as_it_advances() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    let state = tempfile::tempdir().unwrap();
    let host = Host::start(state.path());
    host.apply(&format!(
        "services:
  - {{ name: s, versions: [{{ name: v1, targets: [{{ url: '{}' }}] }}, {{ name: v2, targets: [{{ url: '{}' }}] }}] }}
routes:
  - {{ name: all, service: s }}
",
        one.url(),
        two.url()
    ))
    .await;
    let (status, body) = support::traffic::admin_post(
        &host,
        "/admin/rollouts",
        r#"{"service": "s", "canary": "v2",
            "steps": [{"weight": 10, "pause": "2s"}, {"weight": 50, "pause": "2s"}],
            "analysis": {"min_requests": 5, "max_error_rate": 0.05, "interval": "100ms"}}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let session = format!("upshift-watch-{}", std::process::id());
    let watch = "rollout status s --watch --interval 200ms";
    in_tmux(
        &session,
        &format!("{watch} --admin {}; sleep 30", host.admin),
    );
    let top = format!("{session}-top");
    in_tmux(&top, &format!("top --interval 0.5 --admin {}", host.admin));

    let traffic = {
        let url = format!("{}/watched", host.url);
        tokio::spawn(async move {
            loop {
                let _ = client().get(&url).send().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let shown = pane(&session);
        if seen.last() != Some(&shown) {
            seen.push(shown.clone());
        }
        if shown.contains("phase:   promoted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let table = pane(&top);
    traffic.abort();
    for name in [&session, &top] {
        let _ = std::process::Command::new("tmux")
            .args(["kill-session", "-t", name])
            .status();
    }

    // `top` shows the last interval's rate per version while traffic flows.
    let row = table
        .lines()
        .find(|l| l.starts_with("all ") && l.contains("s@v2"))
        .unwrap_or_else(|| panic!("no row of s@v2: {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    let rate: f64 = cells[2].parse().unwrap();
    assert!(rate > 1.0, "{table}");
    assert_eq!(cells[3], "0.0", "{table}");

    let first = seen
        .iter()
        .position(|s| s.contains("step 1 of 2") && s.contains("pause:"))
        .unwrap_or_else(|| panic!("step 1 never shown: {seen:#?}"));
    let second = seen
        .iter()
        .position(|s| s.contains("step 2 of 2") && s.contains("v2 50%"))
        .unwrap_or_else(|| panic!("step 2 never shown: {seen:#?}"));
    let last = seen.last().unwrap();
    assert!(first < second, "{seen:#?}");
    assert!(last.contains("phase:   promoted"), "{last}");
    assert!(last.contains("[####################]"), "{last}");
    assert!(
        last.contains(" ago)"),
        "history times read as how long ago: {last}"
    );
    assert!(
        !last
            .split(|c: char| !c.is_ascii_digit())
            .any(|n| n.len() >= 13),
        "no epoch milliseconds: {last}"
    );
}

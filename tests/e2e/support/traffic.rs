//! Traffic for the end-to-end tests: many requests through the host, and
//! the admin API's JSON endpoints.

use super::{ADMIN_TOKEN, Host, client};
use futures::StreamExt;
use serde_json::Value;

/// What the client saw of one response.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Status code.
    pub status: u16,
    /// `x-upshift-upstream`: `service@version` (empty if absent).
    pub upstream: String,
    /// `x-upstream`: which upstream server answered (empty if none did).
    pub server: String,
}

impl Seen {
    /// The version part of `x-upshift-upstream`.
    pub fn version(&self) -> &str {
        self.upstream.split('@').nth(1).unwrap_or_default()
    }
}

/// Sends `n` GET requests to `path`, `concurrency` at a time; `decorate`
/// adds per-request headers (it gets the request's index). Answers come
/// back in request order.
pub async fn send_many(
    host: &Host,
    path: &str,
    n: usize,
    concurrency: usize,
    decorate: impl Fn(usize, reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Vec<Seen> {
    let client = client();
    let url = format!("{}{path}", host.url);
    futures::stream::iter(0..n)
        .map(|i| {
            let request = decorate(i, client.get(&url));
            async move {
                let response = request.send().await.expect("the gateway answers");
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let seen = Seen {
                    status: response.status().as_u16(),
                    upstream: header("x-upshift-upstream"),
                    server: header("x-upstream"),
                };
                let _ = response.bytes().await;
                seen
            }
        })
        .buffered(concurrency)
        .collect()
        .await
}

/// `GET {host}{path}` on the admin API: status and JSON body.
pub async fn admin_get(host: &Host, path: &str) -> (u16, Value) {
    admin_json(host, reqwest::Method::GET, path, "").await
}

/// A request to the admin API with `body`: status and JSON answer.
async fn admin_json(host: &Host, method: reqwest::Method, path: &str, body: &str) -> (u16, Value) {
    let response = client()
        .request(method, format!("{}{path}", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .body(body.to_owned())
        .send()
        .await
        .expect("admin answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("admin answers JSON"))
}

/// `GET {host}{path}` on the admin API, as text (Prometheus metrics, a
/// config document).
pub async fn admin_text(host: &Host, path: &str) -> String {
    client()
        .get(format!("{}{path}", host.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("admin answers")
        .text()
        .await
        .expect("admin answers text")
}

/// `POST {host}{path}` on the admin API with a YAML or JSON body.
pub async fn admin_post(host: &Host, path: &str, body: &str) -> (u16, Value) {
    admin_json(host, reqwest::Method::POST, path, body).await
}

/// `DELETE {host}{path}` on the admin API: status and JSON answer.
pub async fn admin_delete(host: &Host, path: &str) -> (u16, Value) {
    admin_json(host, reqwest::Method::DELETE, path, "").await
}

/// The `/admin/stats` entry of `route`, `service`, `version`.
pub async fn stats_of(host: &Host, route: &str, version: &str) -> Value {
    let (status, body) = admin_get(host, "/admin/stats").await;
    assert_eq!(status, 200, "{body}");
    body["series"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["route"] == route && s["version"] == version)
        .cloned()
        .unwrap_or(Value::Null)
}

/// When a failing canary's rollout rolled back, in Unix milliseconds.
#[derive(Debug)]
pub struct Rollback {
    /// The canary's `min_requests`-th request arrived: the evidence was
    /// complete once it was answered.
    pub evidence_ms: u64,
    /// The rollback transition was written.
    pub decided_ms: u64,
    /// The canary's last request arrived.
    pub last_canary_ms: u64,
}

impl Rollback {
    /// Prints the times from the evidence (`cargo test -- --nocapture`).
    pub fn print(&self, setup: &str) {
        eprintln!(
            "rollback, {setup}: decided {} ms and the canary's last request {} ms after the evidence",
            self.decided_ms.saturating_sub(self.evidence_ms),
            self.last_canary_ms.saturating_sub(self.evidence_ms),
        );
    }
}

/// Sends requests to `/r` through every node of `hosts` in rounds until the
/// rollout of service `s` leaves `progressing` (within 20 s), then 100 more
/// per node, and checks that none of those reached `canary`, on any node.
/// The canary fails every request; `min_requests` is the rollout's.
pub async fn drive_to_rollback(
    hosts: &[&Host],
    canary: &super::upstream::Upstream,
    min_requests: usize,
) -> Rollback {
    let started = std::time::Instant::now();
    let status = loop {
        let rounds = hosts.iter().map(|h| send_many(h, "/r", 20, 4, |_, r| r));
        futures::future::join_all(rounds).await;
        let (_, status) = admin_get(hosts[0], "/admin/rollouts/s").await;
        if status["rollout"]["phase"] != "progressing" {
            break status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never rolled back: {status}"
        );
    };
    assert_eq!(status["rollout"]["phase"], "rolled_back", "{status}");
    let seen = canary.hits();
    for host in hosts {
        let after = send_many(host, "/r", 100, 4, |_, r| r).await;
        assert!(after.iter().all(|s| s.status == 200 && s.version() == "v1"));
    }
    assert_eq!(
        canary.hits(),
        seen,
        "the canary took requests after its rollback"
    );
    let arrivals = canary.arrivals_ms();
    let history = status["history"].as_array().unwrap();
    Rollback {
        evidence_ms: arrivals[min_requests - 1],
        decided_ms: history.last().unwrap()["at_ms"].as_u64().unwrap(),
        last_canary_ms: *arrivals.last().unwrap(),
    }
}

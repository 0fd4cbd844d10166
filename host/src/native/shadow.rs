//! Shadow copies on the native lane. A copy of the request goes to the
//! shadow version after the client's attempt answered, from a task of its
//! own, so the client never waits for it; its outcome is compared with the
//! primary's by the splitter (`report-shadow`).
//!
//! When the service's running rollout diffs answers
//! (`analysis.max_shadow_diff_rate`) and the copy goes to its canary, the
//! copy's answer is also compared with the primary's field by field
//! ([`upshift_core::diff`]), the way Diffy does: a second copy goes to the
//! primary's own version, and the fields in which the two stable answers
//! differ are noise (a timestamp, an id), never blamed on the canary, on
//! this request or any later one of the step. The counts and a few sample
//! diffs go to the store under the rollout's step.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};
use serde_json::json;
use tokio::sync::oneshot;
use upshift_core::access_log::Call;
use upshift_core::diff::{self, FieldDiff, MAX_BODY_BYTES};
use upshift_core::policy::{Outcome, ShadowCopy, Upstream, UpstreamAttempt};
use upshift_core::tables::Route;
use upshift_core::trace::{TRACEPARENT, TraceContext};
use upshift_model::keys;
use upshift_model::metrics::{SHADOW_COMPARED, SHADOW_DIFFS};
use upshift_model::rollout::RolloutState;
use upshift_model::store::counter;

use super::body::ForwardBody;
use super::proxy::{Context, upstream_request};
use super::{BUCKET, NativeGateway, PolicySet, lock};
use crate::capabilities::kv::{KvBackend, KvError, blocking};
use crate::telemetry::spans::ShadowCall;
use crate::watched_body::{Ending, Watcher};
use upshift_core::clock::{millis_since, now_ms};

/// Header that marks a shadow copy for the upstream.
const SHADOW_MARKER: &str = "x-upshift-shadow";

/// Sample diffs kept per rollout step, the newest over the oldest.
const SAMPLES: u64 = 5;

/// The request a copy repeats.
pub struct Copied<'a> {
    /// Its method.
    pub method: &'a Method,
    /// Its path and query, as sent upstream.
    pub path_and_query: &'a str,
    /// Its headers, as sent upstream.
    pub headers: HeaderMap,
    /// Its body, held for the copy.
    pub body: Bytes,
}

/// Sends `copy` of `request` in the background and compares it with the
/// `primary` attempt. Returns where the primary's answer body goes for a
/// field-by-field comparison: wrap the client's body in [`Tee`] with it.
pub fn send(
    cx: &Context<'_>,
    (index, route): (u32, &Route),
    copy: ShadowCopy,
    mut request: Copied<'_>,
    primary: UpstreamAttempt,
) -> Option<oneshot::Sender<Bytes>> {
    request
        .headers
        .insert(SHADOW_MARKER, http::HeaderValue::from_static("true"));
    let service = &route.service;
    let build = |upstream: Upstream| {
        let (version, target) = cx.tables.target(service, upstream)?;
        let sent = upstream_request(
            request.method,
            target,
            request.path_and_query,
            request.headers.clone(),
            ForwardBody::bytes(request.body.clone()),
        )?;
        let names = (version.name.clone(), target.url.clone());
        Ok::<_, upshift_core::GatewayError>((sent, target.http2, names))
    };
    let (to_copy, to_primary) = match (build(copy.upstream), build(primary.upstream)) {
        (Ok(to_copy), Ok(to_primary)) => (to_copy, to_primary),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!("shadow copy not sent: {error}");
            return None;
        }
    };
    let (body_tx, body_rx) = oneshot::channel();
    // Traced under the request it copies, when spans are exported.
    let trace = request
        .headers
        .get(TRACEPARENT)
        .filter(|_| cx.lane.telemetry.is_some())
        .and_then(|value| TraceContext::of_sender(value.as_bytes()));
    let task = Task {
        lane: cx.lane.clone(),
        trace,
        policies: cx.policies.clone(),
        worker: cx.worker,
        route: (index, route.name.clone(), service.clone()),
        line: (request.method.clone(), path_of(request.path_and_query)),
        timeout: Duration::from_millis(u64::from(copy.timeout_ms)),
    };
    tokio::spawn(task.run(copy, to_copy, to_primary, primary, body_rx));
    Some(body_tx)
}

/// A request ready to send: the request, whether it goes over HTTP/2, and
/// its version's name and target's URL.
type Ready = (http::Request<ForwardBody>, bool, (Arc<str>, Arc<str>));

/// What the background task of one copy needs.
struct Task {
    lane: Arc<NativeGateway>,
    /// The copied request's span, when the copy is traced.
    trace: Option<TraceContext>,
    policies: Arc<Mutex<PolicySet>>,
    worker: usize,
    /// The route's index and name, and its service.
    route: (u32, Arc<str>, Arc<str>),
    /// The method and path (without the query) of the request, for samples.
    line: (Method, String),
    timeout: Duration,
}

impl Task {
    async fn run(
        self,
        copy: ShadowCopy,
        (to_copy, http2, (copy_version, copy_target)): Ready,
        (to_primary, primary_http2, _): Ready,
        primary: UpstreamAttempt,
        primary_body: oneshot::Receiver<Bytes>,
    ) {
        let diffing = self.diffing(&copy_version).await;
        let started = Instant::now();
        let copy_answer = self.fetch(to_copy, http2, diffing.is_some());
        let second_answer = async {
            match &diffing {
                Some(_) => self.fetch(to_primary, primary_http2, true).await.1,
                None => None,
            }
        };
        let ((outcome, copy_body), second_body) = tokio::join!(copy_answer, second_answer);
        let shadow = UpstreamAttempt {
            upstream: copy.upstream,
            outcome,
            latency_ms: millis_since(started),
        };
        if let (Some(telemetry), Some(trace)) = (&self.lane.telemetry, self.trace) {
            let version = (&self.route.2, &copy_version);
            let call = Call::ended_now(version, Some(&copy_target), started.elapsed(), outcome);
            telemetry.shadow(ShadowCall { trace, call });
        }
        let counts =
            lock(&self.policies).report_shadow(self.route.0, None, &shadow, &primary, now_ms());
        self.lane.add(counts).await;

        let (Some(rollout), Some(copy_body), Some(second_body)) = (diffing, copy_body, second_body)
        else {
            return;
        };
        let Ok(Ok(primary_body)) = tokio::time::timeout(self.timeout, primary_body).await else {
            return;
        };
        let ignore = &rollout.spec.analysis.diff_ignore;
        let blamed = diff::fields(&primary_body, &copy_body, ignore);
        let noise = diff::fields(&primary_body, &second_body, ignore);
        let kv = self.lane.kv.clone();
        let (route, service, line) = (self.route.1.clone(), self.route.2.clone(), self.line);
        let recorded = blocking(move || {
            record(
                &*kv,
                &rollout,
                (&route, &service, &copy_version),
                blamed,
                &noise,
                &line,
            )
        });
        if let Err(error) = recorded.await {
            tracing::warn!("shadow answer comparison not counted: {error}");
        }
    }

    /// The running rollout of the service when it diffs answers and
    /// `version` is its canary.
    async fn diffing(&self, version: &Arc<str>) -> Option<RolloutState> {
        let kv = self.lane.kv.clone();
        let key = keys::rollout_state(&self.route.2);
        let bytes = blocking(move || kv.get(BUCKET, &key)).await.ok()??;
        let state: RolloutState = serde_json::from_slice(&bytes).ok()?;
        (state.is_active()
            && state.spec.analysis.max_shadow_diff_rate.is_some()
            && *state.spec.canary == **version)
            .then_some(state)
    }

    /// Sends `request`; its outcome, and its body when `keep` and it fits
    /// in [`MAX_BODY_BYTES`].
    async fn fetch(
        &self,
        request: http::Request<ForwardBody>,
        http2: bool,
        keep: bool,
    ) -> (Outcome, Option<Bytes>) {
        let sending =
            self.lane
                .client
                .send((self.worker, http2), &self.lane.name, request, self.timeout);
        match sending.await {
            Ok(response) => {
                let status = response.status().as_u16();
                // Read to the end, so that the connection goes back to the pool.
                let body = read_bounded(response.into_body(), keep).await;
                (Outcome::Status(status), body)
            }
            Err(error) => (error.outcome().unwrap_or(Outcome::Failed), None),
        }
    }
}

/// Reads `body` to its end; its bytes when `keep` and they fit.
async fn read_bounded<B: Body<Data = Bytes> + Unpin>(mut body: B, keep: bool) -> Option<Bytes> {
    let mut kept = keep.then(BytesMut::new);
    while let Some(Ok(frame)) = body.frame().await {
        if let (Some(buffer), Ok(data)) = (kept.as_mut(), frame.into_data()) {
            if buffer.len() + data.len() > MAX_BODY_BYTES {
                kept = None;
            } else {
                buffer.extend_from_slice(&data);
            }
        }
    }
    kept.map(BytesMut::freeze)
}

/// Counts one compared copy under the rollout's step: the fields blamed on
/// the canary (those that differ and were never noise in the step), the
/// noise, and a sample when something was blamed.
fn record(
    kv: &dyn KvBackend,
    rollout: &RolloutState,
    (route, service, version): (&str, &str, &str),
    mut blamed: Vec<FieldDiff>,
    noise: &[FieldDiff],
    (method, path): &(Method, String),
) -> Result<(), KvError> {
    let (id, step) = (rollout.id.as_str(), rollout.step);
    for field in noise {
        kv.increment(BUCKET, &keys::diff_noise(service, id, step, &field.path), 1)?;
    }
    let mut still_blamed = Vec::with_capacity(blamed.len());
    for field in blamed.drain(..) {
        if noise.iter().any(|n| n.path == field.path) {
            continue;
        }
        let seen = kv.get(BUCKET, &keys::diff_noise(service, id, step, &field.path))?;
        if counter(seen.as_deref()) == 0 {
            still_blamed.push(field);
        }
    }
    let count = |field: &str| -> Result<i64, KvError> {
        kv.increment(BUCKET, &keys::metric(route, service, version, field), 1)?;
        kv.increment(
            BUCKET,
            &keys::step_metric(service, id, step, version, field),
            1,
        )
    };
    count(SHADOW_COMPARED)?;
    if still_blamed.is_empty() {
        return Ok(());
    }
    let n = count(SHADOW_DIFFS)?;
    for field in &still_blamed {
        kv.increment(BUCKET, &keys::diff_field(service, id, step, &field.path), 1)?;
    }
    let sample = json!({
        "at_ms": now_ms(),
        "method": method.as_str(),
        "path": path,
        "fields": still_blamed
            .iter()
            .map(|f| json!({ "path": f.path, "primary": f.primary, "canary": f.copy }))
            .collect::<Vec<_>>(),
    });
    let slot = n.unsigned_abs() % SAMPLES;
    kv.set(
        BUCKET,
        &keys::diff_sample(service, id, step, slot),
        sample.to_string().as_bytes(),
    )
}

/// The path of `path_and_query`, without the query (it may carry secrets).
fn path_of(path_and_query: &str) -> String {
    path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path)
        .to_owned()
}

/// Keeps the primary's answer body on its way to the client for the
/// comparison with a shadow copy's (up to [`MAX_BODY_BYTES`]) and sends it
/// once it ends. A longer body, or one that breaks, is not compared.
pub struct Tee {
    kept: Option<BytesMut>,
    to: oneshot::Sender<Bytes>,
}

impl Tee {
    /// The watcher of a body whose bytes go to `to` once it ends.
    pub fn new(to: oneshot::Sender<Bytes>) -> Self {
        Tee {
            kept: Some(BytesMut::new()),
            to,
        }
    }
}

impl Watcher for Tee {
    fn frame(&mut self, frame: &Frame<Bytes>) {
        if let (Some(kept), Some(data)) = (self.kept.as_mut(), frame.data_ref()) {
            if kept.len() + data.len() > MAX_BODY_BYTES {
                self.kept = None;
            } else {
                kept.extend_from_slice(data);
            }
        }
    }

    fn ended(self, ending: Ending) {
        if let (Ending::Complete, Some(kept)) = (ending, self.kept) {
            let _ = self.to.send(kept.freeze());
        }
    }
}

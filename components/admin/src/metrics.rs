//! The splitter's counters read back: Prometheus text at `/admin/metrics`,
//! JSON at `/admin/stats`.
//!
//! Counters are written by the splitter, per route, service and version,
//! under [`keys::METRICS_PREFIX`]; whichever node served a request, the
//! numbers here are the sums over all of them.

use crate::api::{AdminResponse, current, in_force};
use crate::rollouts::summary;
use crate::store::{ConfigStore, StoreError};
use crate::{ai_usage, upstreams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use upshift_model::keys;
use upshift_model::metrics::{LATENCY_BOUNDS_MS, VersionStats};
use upshift_model::rollout::RolloutState;

/// Media type of the Prometheus text exposition format.
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters of one route, service and version.
type Series = BTreeMap<(String, String, String), VersionStats>;

/// `GET /admin/metrics`.
pub fn prometheus(store: &impl ConfigStore, now_ms: u64) -> Result<AdminResponse, AdminResponse> {
    let series = collect(store)?;
    let mut out = String::new();
    counter(
        &mut out,
        &series,
        "upshift_requests_total",
        "Upstream attempts.",
        |s| vec![(String::new(), s.requests)],
    );
    counter(
        &mut out,
        &series,
        "upshift_responses_total",
        "Upstream responses by status class.",
        |s| {
            s.by_class
                .iter()
                .enumerate()
                .map(|(i, n)| (format!(",class=\"{}xx\"", i + 1), *n))
                .collect()
        },
    );
    counter(
        &mut out,
        &series,
        "upshift_upstream_failures_total",
        "Upstream attempts without a response, by kind.",
        |s| {
            vec![
                (",kind=\"failed\"".to_owned(), s.failures),
                (",kind=\"timeout\"".to_owned(), s.timeouts),
            ]
        },
    );
    histogram(&mut out, &series);
    counter(
        &mut out,
        &series,
        "upshift_shadow_requests_total",
        "Shadow copies sent to this version.",
        |s| vec![(String::new(), s.shadow_requests)],
    );
    counter(
        &mut out,
        &series,
        "upshift_shadow_mismatches_total",
        "Shadow copies whose response class differed from the primary's.",
        |s| vec![(String::new(), s.shadow_mismatches)],
    );
    counter(
        &mut out,
        &series,
        "upshift_shadow_compared_total",
        "Shadow copies whose answer was compared with the primary's, field by field.",
        |s| vec![(String::new(), s.shadow_compared)],
    );
    counter(
        &mut out,
        &series,
        "upshift_shadow_diffs_total",
        "Compared shadow copies whose answer differed in a field that is not noise.",
        |s| vec![(String::new(), s.shadow_diffs)],
    );
    for (name, help, field) in [
        (
            "upshift_ai_answers_total",
            "AI answers counted for speed and refusals.",
            (|s: &VersionStats| s.ai.answers) as fn(&VersionStats) -> u64,
        ),
        (
            "upshift_ai_refusals_total",
            "AI answers that were refusals (content filter, or empty).",
            |s| s.ai.refusals,
        ),
        (
            "upshift_ai_output_tokens_total",
            "Output tokens of the AI answers.",
            |s| s.ai.output_tokens,
        ),
        (
            "upshift_ai_ttft_milliseconds_total",
            "Sum of the AI answers' times to the first token.",
            |s| s.ai.ttft_ms_sum,
        ),
        (
            "upshift_ai_generation_milliseconds_total",
            "Sum of the AI answers' generation times.",
            |s| s.ai.generation_ms_sum,
        ),
    ] {
        counter(&mut out, &series, name, help, |s| {
            vec![(String::new(), field(s))]
        });
    }
    counter(
        &mut out,
        &series,
        "upshift_grpc_responses_total",
        "gRPC calls by status code.",
        |s| {
            s.grpc_statuses
                .iter()
                .map(|(code, n)| (format!(",grpc_status=\"{code}\""), *n))
                .collect()
        },
    );
    websocket_families(&mut out, &series);
    rollout_gauges(&mut out, &rollouts(store)?);
    let config = in_force(store)?;
    upstreams::prometheus(&mut out, store, config.as_ref(), now_ms)?;
    ai_usage::prometheus(&mut out, store, config.as_ref(), now_ms)?;
    if let Ok(version) = current(store) {
        let _ = writeln!(
            out,
            "# HELP upshift_config_version Config version in force.\n\
             # TYPE upshift_config_version gauge\nupshift_config_version {version}"
        );
    }
    Ok(AdminResponse::text(PROMETHEUS, out))
}

/// `GET /admin/stats`.
pub fn stats(store: &impl ConfigStore) -> Result<AdminResponse, AdminResponse> {
    let series: Vec<Value> = collect(store)?
        .iter()
        .map(|((route, service, version), stats)| {
            let mut entry = summary(stats);
            entry["route"] = json!(route);
            entry["service"] = json!(service);
            entry["version"] = json!(version);
            entry["responses"] = json!({
                "1xx": stats.by_class[0], "2xx": stats.by_class[1], "3xx": stats.by_class[2],
                "4xx": stats.by_class[3], "5xx": stats.by_class[4],
            });
            entry["failures"] = json!(stats.failures);
            entry["timeouts"] = json!(stats.timeouts);
            // The raw counters, for tools that take differences over time.
            entry["counters"] = stats.fields().into_iter().collect();
            if !stats.grpc_statuses.is_empty() {
                entry["grpc_statuses"] = json!(stats.grpc_statuses);
            }
            let websocket = &stats.websocket;
            if websocket.opened > 0 {
                entry["websocket"] = json!({
                    "opened": websocket.opened,
                    "open": websocket.open(),
                    "messages_up": websocket.messages_up,
                    "messages_down": websocket.messages_down,
                    "closes": websocket.closes,
                });
            }
            entry
        })
        .collect();
    Ok(AdminResponse::ok(200, json!({ "series": series })))
}

fn collect(store: &impl ConfigStore) -> Result<Series, StoreError> {
    let keys = store.keys(keys::METRICS_PREFIX)?;
    let values = store.get_many(&keys)?;
    let mut fields: BTreeMap<(String, String, String), Vec<(String, u64)>> = BTreeMap::new();
    for (key, value) in keys.iter().zip(values) {
        let Some(metric) = keys::parse_metric(key) else {
            continue;
        };
        fields
            .entry((metric.route, metric.service, metric.version))
            .or_default()
            .push((
                metric.field,
                upshift_model::store::counter(value.as_deref()),
            ));
    }
    Ok(fields
        .into_iter()
        .map(|(labels, fields)| {
            let stats = VersionStats::from_fields(fields.iter().map(|(f, n)| (f.as_str(), *n)));
            (labels, stats)
        })
        .collect())
}

fn rollouts(store: &impl ConfigStore) -> Result<Vec<RolloutState>, StoreError> {
    let keys: Vec<String> = store
        .keys("rollouts/")?
        .into_iter()
        .filter(|k| k.ends_with("/state"))
        .collect();
    Ok(store
        .get_many(&keys)?
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect())
}

fn labels(route: &str, service: &str, version: &str) -> String {
    format!(
        "route=\"{}\",service=\"{}\",version=\"{}\"",
        escape(route),
        escape(service),
        escape(version)
    )
}

/// A label value as the text format wants it.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn counter(
    out: &mut String,
    series: &Series,
    name: &str,
    help: &str,
    values: impl Fn(&VersionStats) -> Vec<(String, u64)>,
) {
    family(out, series, (name, "counter"), help, values);
}

/// A metric family of type `kind` with one sample per series and extra
/// labels `values` gives.
fn family(
    out: &mut String,
    series: &Series,
    (name, kind): (&str, &str),
    help: &str,
    values: impl Fn(&VersionStats) -> Vec<(String, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for ((route, service, version), stats) in series {
        for (extra, n) in values(stats) {
            let _ = writeln!(
                out,
                "{name}{{{}{extra}}} {n}",
                labels(route, service, version)
            );
        }
    }
}

fn websocket_families(out: &mut String, series: &Series) {
    counter(
        out,
        series,
        "upshift_websocket_connections_total",
        "WebSocket connections switched.",
        |s| vec![(String::new(), s.websocket.opened)],
    );
    family(
        out,
        series,
        ("upshift_websocket_open_connections", "gauge"),
        "WebSocket connections open now.",
        |s| vec![(String::new(), s.websocket.open())],
    );
    counter(
        out,
        series,
        "upshift_websocket_messages_total",
        "WebSocket messages relayed, by direction.",
        |s| {
            vec![
                (",direction=\"up\"".to_owned(), s.websocket.messages_up),
                (",direction=\"down\"".to_owned(), s.websocket.messages_down),
            ]
        },
    );
    counter(
        out,
        series,
        "upshift_websocket_closes_total",
        "WebSocket connections ended, by close code (1005: a close without one).",
        |s| {
            s.websocket
                .closes
                .iter()
                .map(|(code, n)| (format!(",code=\"{code}\""), *n))
                .collect()
        },
    );
}

fn histogram(out: &mut String, series: &Series) {
    let name = "upshift_upstream_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time to the upstream's response head.\n# TYPE {name} histogram"
    );
    for ((route, service, version), stats) in series {
        let labels = labels(route, service, version);
        let mut cumulative = 0;
        for (i, n) in stats.latency_buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BOUNDS_MS.get(i).map_or_else(
                || "+Inf".to_owned(),
                |ms| format!("{}", f64::from(*ms) / 1000.0),
            );
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = stats.latency_ms_sum as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// A rollout gauge: its name, its help and how to read it.
type RolloutGauge = (&'static str, &'static str, fn(&RolloutState) -> u64);

fn rollout_gauges(out: &mut String, rollouts: &[RolloutState]) {
    let gauges: [RolloutGauge; 3] = [
        (
            "upshift_rollout_canary_weight",
            "Share of the service's traffic on the rollout's canary, in percent.",
            |state| u64::from(state.weights().1),
        ),
        (
            "upshift_rollout_step",
            "The rollout's current step, counted from 1.",
            |state| state.step as u64 + 1,
        ),
        (
            "upshift_rollout_steps",
            "Steps of the rollout's plan.",
            |state| state.spec.steps.len() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for state in rollouts {
            let phase = serde_json::to_value(state.phase).unwrap_or_default();
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\",stable=\"{}\",canary=\"{}\",phase=\"{}\"}} {}",
                escape(&state.spec.service),
                escape(&state.spec.stable),
                escape(&state.spec.canary),
                phase.as_str().unwrap_or_default(),
                value(state)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::api::{AdminRequest, handle};
    use crate::store::Store;
    use upshift_model::keys;
    use upshift_model::store::{MemoryStore, for_each_encoding};

    fn get(store: &MemoryStore, path: &str) -> crate::AdminResponse {
        handle(
            &AdminRequest {
                method: "GET",
                path,
                body: b"",
                access: upshift_model::token::Access::Full,
                now_ms: 0,
            },
            store,
        )
    }

    /// Counters as the splitter leaves them, in the store's encoding.
    fn seed(store: &MemoryStore) {
        let fill = |route: &str, version: &str, field: &str, n: i64| {
            store.fill_counter(&keys::metric(route, "s", version, field), n);
        };
        fill("r", "v1", "requests", 10);
        fill("r", "v1", "status_2xx", 9);
        fill("r", "v1", "timeouts", 1);
        fill("r", "v1", "latency_bucket_0", 6);
        fill("r", "v1", "latency_bucket_2", 3);
        fill("r", "v1", "latency_bucket_11", 1);
        fill("r", "v1", "latency_ms_sum", 30_050);
        fill("r\"x", "v2", "requests", 2);
        store.set("unrelated", b"7").unwrap();
    }

    #[test]
    fn prometheus_text_has_counters_and_cumulative_buckets() {
        for_each_encoding(|store| {
            seed(&store);
            let response = get(&store, "/admin/metrics");
            assert_eq!(response.status, 200);
            assert!(
                response
                    .content_type
                    .starts_with("text/plain; version=0.0.4")
            );
            let text = response.body.as_str().unwrap();
            let labels = r#"route="r",service="s",version="v1""#;
            for line in [
                format!("upshift_requests_total{{{labels}}} 10"),
                format!("upshift_responses_total{{{labels},class=\"2xx\"}} 9"),
                format!("upshift_responses_total{{{labels},class=\"5xx\"}} 0"),
                format!("upshift_upstream_failures_total{{{labels},kind=\"timeout\"}} 1"),
                format!("upshift_upstream_latency_seconds_bucket{{{labels},le=\"0.005\"}} 6"),
                format!("upshift_upstream_latency_seconds_bucket{{{labels},le=\"0.01\"}} 6"),
                format!("upshift_upstream_latency_seconds_bucket{{{labels},le=\"0.025\"}} 9"),
                format!("upshift_upstream_latency_seconds_bucket{{{labels},le=\"10\"}} 9"),
                format!("upshift_upstream_latency_seconds_bucket{{{labels},le=\"+Inf\"}} 10"),
                format!("upshift_upstream_latency_seconds_sum{{{labels}}} 30.05"),
                format!("upshift_upstream_latency_seconds_count{{{labels}}} 10"),
                r#"upshift_requests_total{route="r\"x",service="s",version="v2"} 2"#.to_owned(),
            ] {
                assert!(
                    text.lines().any(|l| l == line),
                    "missing {line:?} in\n{text}"
                );
            }
            assert!(text.contains("# TYPE upshift_upstream_latency_seconds histogram"));
        });
    }

    #[test]
    fn stats_are_json_per_route_and_version() {
        for_each_encoding(|store| {
            seed(&store);
            let response = get(&store, "/admin/stats");
            let series = response.body["series"].as_array().unwrap();
            assert_eq!(series.len(), 2);
            let v1 = &series[0];
            assert_eq!(
                (v1["route"].as_str(), v1["version"].as_str()),
                (Some("r"), Some("v1"))
            );
            assert_eq!(v1["requests"], 10);
            assert_eq!(v1["responses"]["2xx"], 9);
            assert_eq!(v1["error_rate"], 0.1);
            assert_eq!(v1["p50_ms"], 5);
        });
    }
}

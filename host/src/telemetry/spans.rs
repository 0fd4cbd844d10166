//! Spans of each request, exported over OTLP/HTTP: the request's server
//! span, a client span per upstream attempt or AI provider call, and one
//! per shadow copy. They are made after the fact, from what the request
//! recorded, on the telemetry thread; the SDK's batch processor sends
//! them from a bounded queue that drops spans rather than block.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, IdGenerator as _, RandomIdGenerator, SpanData,
    SpanEvents, SpanLinks, SpanProcessor as _,
};
use upshift_core::access_log::{Call, Entry};
use upshift_core::policy::Outcome;
use upshift_core::trace::TraceContext;

/// Spans the export queue holds before new ones are dropped.
const QUEUE: usize = 8 * 1024;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    /// The collector's base URL; spans go to its `/v1/traces`.
    pub endpoint: String,
    /// The encoding of the export requests.
    pub protocol: Encoding,
}

/// OTLP/HTTP's two encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `http/protobuf`, the default.
    Protobuf,
    /// `http/json`.
    Json,
}

impl FromStr for Encoding {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "http/protobuf" => Ok(Encoding::Protobuf),
            "http/json" => Ok(Encoding::Json),
            other => Err(format!(
                "unknown OTLP protocol `{other}`: the exporter speaks http/protobuf or http/json"
            )),
        }
    }
}

/// A shadow copy's call, to trace under the request it copies.
#[derive(Debug)]
pub struct ShadowCall {
    /// The primary request's trace, with its span as the parent.
    pub trace: TraceContext,
    /// The call.
    pub call: Call,
}

/// The span exporter.
pub struct Spans {
    processor: BatchSpanProcessor,
    ids: RandomIdGenerator,
    scope: InstrumentationScope,
}

impl Spans {
    /// Starts exporting to `collector`, batched as the `OTEL_BSP_*`
    /// variables say (a 5 s delay by default).
    pub fn start(collector: &Collector) -> anyhow::Result<Self> {
        let endpoint = format!("{}/v1/traces", collector.endpoint.trim_end_matches('/'));
        let protocol = match collector.protocol {
            Encoding::Protobuf => Protocol::HttpBinary,
            Encoding::Json => Protocol::HttpJson,
        };
        // The blocking HTTP client runs a runtime of its own, which may not
        // be made (or dropped) inside the host's.
        let exporter = std::thread::spawn(move || {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .with_protocol(protocol)
                .with_timeout(Duration::from_secs(10))
                .build()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the OTLP exporter panicked while starting"))?
        .context("cannot set up the OTLP exporter")?;
        let config = BatchConfigBuilder::default()
            .with_max_queue_size(QUEUE)
            .build();
        let mut processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(config)
            .build();
        let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "upshift".into());
        processor.set_resource(&Resource::builder_empty().with_service_name(name).build());
        Ok(Spans {
            processor,
            ids: RandomIdGenerator::default(),
            scope: InstrumentationScope::builder("upshift")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        })
    }

    /// Exports the spans of a request that ended: its own, then one per
    /// call, all in the trace `trace`. An unsampled trace exports nothing.
    pub fn request(&self, entry: &Entry, trace: &TraceContext, arrived: SystemTime) {
        if trace.flags & 1 == 0 {
            return;
        }
        let served = &entry.served;
        let took = Duration::from_secs_f64(entry.latency_ms / 1e3);
        let route = served.route.as_deref().unwrap_or(&entry.path);
        let mut attributes = vec![
            KeyValue::new("http.request.method", entry.method.clone()),
            KeyValue::new("url.path", entry.path.clone()),
            KeyValue::new("server.address", entry.host.clone()),
            KeyValue::new("http.response.status_code", i64::from(entry.status)),
            KeyValue::new("upshift.request_id", entry.request_id.clone()),
            KeyValue::new("upshift.attempts", i64::from(served.attempts)),
        ];
        let optional = [
            ("http.route", served.route.as_deref()),
            ("client.address", entry.client_ip.as_deref()),
            ("upshift.service", served.service.as_deref()),
            ("upshift.consumer", served.consumer.as_deref()),
            ("upshift.tenant", served.tenant.as_deref()),
            ("error.type", served.error.as_deref()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, value.to_owned()));
            }
        }
        let failed = entry.status >= 500 || served.error.is_some();
        self.export(SpanData {
            span_context: context(trace.trace_id, trace.span_id, trace.flags),
            parent_span_id: trace.parent_id.map_or(SpanId::INVALID, u64_span),
            parent_span_is_remote: trace.parent_id.is_some(),
            span_kind: SpanKind::Server,
            name: format!("{} {route}", entry.method).into(),
            start_time: arrived,
            end_time: arrived + took,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: status(failed, served.error.as_deref()),
            instrumentation_scope: self.scope.clone(),
        });
        let ai = served.ai.is_some();
        for (n, call) in served.calls.iter().enumerate() {
            self.call(trace, call, n + 1, ai);
        }
    }

    /// Exports the span of a shadow copy.
    pub fn shadow(&self, shadow: &ShadowCall) {
        if shadow.trace.flags & 1 == 0 {
            return;
        }
        self.call(&shadow.trace, &shadow.call, 0, false);
    }

    /// A client span for `call`, the `n`th of its request (0: a shadow
    /// copy), child of the request's span.
    fn call(&self, trace: &TraceContext, call: &Call, n: usize, ai: bool) {
        let (name, mut attributes): (Cow<'static, str>, _) = if ai {
            (
                format!("chat {}", call.version).into(),
                vec![
                    KeyValue::new("gen_ai.operation.name", "chat"),
                    KeyValue::new("gen_ai.provider.name", call.service.to_string()),
                    KeyValue::new("gen_ai.request.model", call.version.to_string()),
                ],
            )
        } else {
            let kind = if n == 0 { "shadow" } else { "attempt" };
            (
                format!("{kind} {}@{}", call.service, call.version).into(),
                vec![
                    KeyValue::new("upshift.service", call.service.to_string()),
                    KeyValue::new("upshift.version", call.version.to_string()),
                ],
            )
        };
        if n > 0 {
            attributes.push(KeyValue::new("upshift.attempt", n as i64));
        }
        if let Some(target) = &call.target {
            attributes.push(KeyValue::new("url.full", target.to_string()));
        }
        let failed = match call.outcome {
            Outcome::Status(status) => {
                attributes.push(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                status >= 500
            }
            Outcome::Failed => {
                attributes.push(KeyValue::new("error.type", "failed"));
                true
            }
            Outcome::TimedOut => {
                attributes.push(KeyValue::new("error.type", "timeout"));
                true
            }
        };
        let mut span_id = self.ids.new_span_id();
        while span_id == SpanId::INVALID {
            span_id = self.ids.new_span_id();
        }
        self.export(SpanData {
            span_context: SpanContext::new(
                TraceId::from(trace.trace_id),
                span_id,
                TraceFlags::new(trace.flags),
                false,
                TraceState::default(),
            ),
            parent_span_id: u64_span(trace.span_id),
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name,
            start_time: call.started(),
            end_time: call.ended,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: status(failed, None),
            instrumentation_scope: self.scope.clone(),
        });
    }

    fn export(&self, span: SpanData) {
        self.processor.on_end(span);
    }
}

impl Drop for Spans {
    /// Sends what is queued before the process ends.
    fn drop(&mut self) {
        if let Err(error) = self.processor.shutdown() {
            tracing::warn!("spans not exported at shutdown: {error}");
        }
    }
}

fn context(trace_id: u128, span_id: u64, flags: u8) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace_id),
        u64_span(span_id),
        TraceFlags::new(flags),
        false,
        TraceState::default(),
    )
}

fn u64_span(id: u64) -> SpanId {
    SpanId::from(id)
}

fn status(failed: bool, description: Option<&str>) -> Status {
    if failed {
        Status::error(description.unwrap_or_default().to_owned())
    } else {
        Status::Unset
    }
}

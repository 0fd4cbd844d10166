//! The access log: one JSON line per request, with what the gateway did
//! for it. Both lanes fill a [`Served`] as the request goes and an
//! [`Entry`] when its answer ends; the line is written off the request
//! path.
//!
//! Nothing secret goes in: the path is logged without its query (where
//! keys are sometimes passed), no header is logged, and the caller is
//! named by its consumer id.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::GatewayError;
use crate::phases::Decision;
use crate::policy::Outcome;
use crate::tables::{Tables, Target};

/// One request's line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Entry {
    /// When the request arrived, RFC 3339 in UTC with milliseconds.
    pub time: String,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The W3C trace id.
    pub trace_id: String,
    /// The peer's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// The method.
    pub method: String,
    /// The authority the client asked for.
    pub host: String,
    /// The path, without the query.
    pub path: String,
    /// What the gateway did.
    #[serde(flatten)]
    pub served: Served,
    /// The answer's status.
    pub status: u16,
    /// From the request's arrival to the answer's last byte, in
    /// milliseconds.
    pub latency_ms: f64,
    /// Request body bytes read from the client.
    pub bytes_in: u64,
    /// Answer body bytes sent to the client.
    pub bytes_out: u64,
}

/// What the gateway did for a request, as far as it got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Served {
    /// The route's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Arc<str>>,
    /// The caller's consumer id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Arc<str>>,
    /// The caller's tenant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Arc<str>>,
    /// `service@version` of the last attempt (see [`Served::settle`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The URL of the last attempt's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Arc<str>>,
    /// Upstream attempts made (retries and fallbacks included).
    pub attempts: u32,
    /// How long the last attempt took to answer, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_latency_ms: Option<u32>,
    /// The gateway's error code, when it refused or failed the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What an AI route did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiServed>,
    /// The calls made, in order: the spans of a trace.
    #[serde(skip)]
    pub calls: Vec<Call>,
    /// Whether nothing reads this record, so the lane need not fill it.
    #[serde(skip)]
    unread: bool,
}

/// One call the gateway made for a request: an upstream attempt, or an AI
/// provider call.
#[derive(Debug, Clone)]
pub struct Call {
    /// The service, or the AI provider.
    pub service: Arc<str>,
    /// The service's version, or the provider's model.
    pub version: Arc<str>,
    /// The target's URL, for upstream attempts.
    pub target: Option<Arc<str>>,
    /// When the call ended (its answer's head arrived, or it failed).
    pub ended: SystemTime,
    /// How long it took.
    pub took: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

impl Call {
    /// A call that ended now, after `took`.
    pub fn ended_now(
        (service, version): (&Arc<str>, &Arc<str>),
        target: Option<&Arc<str>>,
        took: Duration,
        outcome: Outcome,
    ) -> Self {
        Call {
            service: service.clone(),
            version: version.clone(),
            target: target.cloned(),
            ended: SystemTime::now(),
            took,
            outcome,
        }
    }

    /// When the call began.
    pub fn started(&self) -> SystemTime {
        self.ended.checked_sub(self.took).unwrap_or(self.ended)
    }
}

/// What an AI route did for a request.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AiServed {
    /// The model the client asked for.
    pub alias: String,
    /// The provider that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The provider's model that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `hit` or `miss` when the route caches answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// What the answer used, once it is known (a stream's at its end).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub usage: Option<AiUsage>,
}

/// The tokens and cost of an AI answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AiUsage {
    /// Prompt tokens, as the provider reported them (estimated when not).
    pub input_tokens: u64,
    /// Completion tokens, likewise.
    pub output_tokens: u64,
    /// Spend in US dollars, from the model's price (0 without one).
    pub cost_usd: f64,
}

impl AiUsage {
    /// Usage of `input` and `output` tokens costing `nano_usd`.
    pub fn new(input: u64, output: u64, nano_usd: u64) -> Self {
        AiUsage {
            input_tokens: input,
            output_tokens: output,
            cost_usd: nano_usd as f64 / 1e9,
        }
    }
}

/// Where a streamed AI answer leaves its usage when it ends, for the
/// request's line: an extension of the answer.
pub type LateUsage = Arc<std::sync::OnceLock<AiUsage>>;

impl Served {
    /// A record nobody reads (telemetry is off): filling it is skipped.
    pub fn unread() -> Self {
        Served {
            unread: true,
            ..Served::default()
        }
    }

    /// Records the decision: the route and the caller.
    pub fn decided(&mut self, decision: &Decision, tables: &Tables) {
        if self.unread {
            return;
        }
        self.route = Some(decision.route.name.clone());
        if let Some(consumer) = decision
            .authenticated
            .consumer
            .and_then(|c| tables.consumer(c))
        {
            self.consumer = Some(consumer.id.clone());
            self.tenant = consumer.tenant.clone();
        }
    }

    /// Records an attempt at `version` of `service`, at `target`, that
    /// ended with `outcome` after `took`.
    pub fn attempted(
        &mut self,
        service: (&Arc<str>, &Arc<str>),
        target: &Target,
        took: Duration,
        outcome: Outcome,
    ) {
        self.attempts += 1;
        if self.unread {
            return;
        }
        self.upstream = Some(target.url.clone());
        self.upstream_latency_ms = Some(u32::try_from(took.as_millis()).unwrap_or(u32::MAX));
        self.calls
            .push(Call::ended_now(service, Some(&target.url), took, outcome));
    }

    /// Records an AI attempt at `provider`'s `model` for the client's
    /// `alias`, before it is made.
    pub fn trying_ai(&mut self, alias: &str, (provider, model): (&str, &str)) {
        self.attempts += 1;
        if self.unread {
            return;
        }
        self.ai = Some(AiServed {
            alias: alias.to_owned(),
            provider: Some(provider.to_owned()),
            model: Some(model.to_owned()),
            ..AiServed::default()
        });
    }

    /// Records a call to an AI provider's `model` that ended with `outcome`
    /// after `took`.
    pub fn called_provider(
        &mut self,
        (provider, model): (&str, &str),
        took: Duration,
        outcome: Outcome,
    ) {
        if self.unread {
            return;
        }
        self.calls.push(Call::ended_now(
            (&provider.into(), &model.into()),
            None,
            took,
            outcome,
        ));
    }

    /// Fills in what is derived from the calls, off the request path: the
    /// `service@version` (or `provider@model`) of the last call.
    pub fn settle(&mut self) {
        if let Some(last) = self.calls.last() {
            self.service = Some(format!("{}@{}", last.service, last.version));
        }
    }

    /// Records what an answer's headers tell and is not known yet: the
    /// route, and the `service@version` that served it (all that the
    /// component lane tells).
    pub fn answered(&mut self, headers: &http::HeaderMap) {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &http::HeaderValue| v.to_str().ok())
        };
        if self.route.is_none() {
            self.route = text(crate::response::ROUTE).map(Into::into);
        }
        if self.service.is_none() && self.calls.is_empty() {
            self.service = text(crate::response::UPSTREAM).map(str::to_owned);
        }
        if let Some(alias) = text(crate::response::MODEL) {
            let ai = self.ai.get_or_insert_with(|| AiServed {
                alias: alias.to_owned(),
                ..AiServed::default()
            });
            ai.cache = text(crate::response::CACHE).map(str::to_owned);
        }
    }

    /// Records what an AI answer used.
    pub fn used(&mut self, usage: AiUsage) {
        if let Some(ai) = &mut self.ai {
            ai.usage = Some(usage);
        }
    }

    /// Records that the request failed with `error`.
    pub fn failed(&mut self, error: &GatewayError) {
        self.error = Some(error.code().to_owned());
    }
}

/// `unix_ms` as RFC 3339 in UTC, with milliseconds.
pub fn timestamp(unix_ms: u64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_with_milliseconds() {
        assert_eq!(timestamp(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn an_ai_line_carries_tokens_and_cost_once_known() {
        let mut served = Served {
            ai: Some(AiServed {
                alias: "chat".into(),
                ..AiServed::default()
            }),
            ..Served::default()
        };
        let unknown = serde_json::to_value(&served).unwrap();
        assert!(unknown["ai"].get("input_tokens").is_none(), "{unknown}");
        served.used(AiUsage::new(20, 3, 4_800));
        let line = serde_json::to_value(&served).unwrap();
        assert_eq!(
            line["ai"],
            serde_json::json!({
                "alias": "chat", "input_tokens": 20, "output_tokens": 3, "cost_usd": 4.8e-6
            })
        );
    }

    #[test]
    fn a_line_leaves_out_what_is_unknown() {
        let entry = Entry {
            method: "GET".into(),
            path: "/orders".into(),
            status: 404,
            served: Served {
                error: Some("route_not_found".into()),
                ..Served::default()
            },
            ..Entry::default()
        };
        let line = serde_json::to_value(&entry).unwrap();
        assert_eq!(line["error"], "route_not_found");
        assert_eq!(line["attempts"], 0);
        assert!(line.get("route").is_none());
        assert!(line.get("ai").is_none());
    }
}

//! The WIT face of the splitter: `upshift:splitter/splitter` over [`Plan`],
//! with the live state in `wasi:keyvalue` (bucket `default`). Routes,
//! consumers, versions and targets cross as positions in the config; the
//! counters an attempt adds to go back to the caller.

use crate::{ChooseError, Counts, NamedAttempt, NamedUpstream, Outcome, Plan, Reason};
use exports::upshift::splitter::splitter::{self as wit, Guest, GuestPlan};
use upshift::types::types::{ConfigError, GatewayError};
use upshift_model::RequestHead;
use upshift_model::metrics::AiAnswer;

wit_bindgen::generate!({
    path: "../../wit",
    world: "splitter-component",
    generate_all,
});
upshift_model::wit_glue!();

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

struct Component;

impl Guest for Component {
    type Plan = Compiled;
}

/// A compiled split plan behind a WIT resource.
struct Compiled(Plan);

impl From<Reason> for wit::Reason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Pinned => wit::Reason::Pinned,
            Reason::Rule(i) => wit::Reason::Rule(i),
            Reason::Rollout => wit::Reason::Rollout,
            Reason::Sticky => wit::Reason::Sticky,
            Reason::Weight => wit::Reason::Weight,
            Reason::OnlyVersion => wit::Reason::OnlyVersion,
            Reason::CircuitOpen => wit::Reason::CircuitOpen,
        }
    }
}

/// The gateway asked about something the config does not have.
fn unknown(what: &str) -> GatewayError {
    GatewayError {
        status: 500,
        code: "unknown_service".into(),
        message: format!("the splitter has no {what}"),
        headers: Vec::new(),
    }
}

impl Compiled {
    /// The name of route `route` and the service a request of it goes to.
    fn route<'p>(&'p self, route: u32, service: Option<&'p str>) -> Option<(&'p str, &'p str)> {
        let (name, own) = self.0.route_at(route as usize)?;
        Some((name, service.or(own)?))
    }

    /// The attempt `a` names, by positions in `service`.
    fn attempt(&self, service: &str, a: &wit::Attempt) -> Option<NamedAttempt<'_>> {
        Some(NamedAttempt {
            upstream: self
                .0
                .upstream_at(service, a.version as usize, a.target as usize)?,
            outcome: match a.outcome {
                wit::Outcome::Status(status) => Outcome::Status(status),
                wit::Outcome::Failed => Outcome::Failed,
                wit::Outcome::TimedOut => Outcome::TimedOut,
            },
            latency_ms: a.latency_ms,
        })
    }

    fn upstream(&self, service: &str, u: NamedUpstream<'_>) -> wit::Upstream {
        let (version, target) = self.0.positions(service, &u).unwrap_or_default();
        wit::Upstream {
            version: u32::try_from(version).unwrap_or(u32::MAX),
            target: u32::try_from(target).unwrap_or(u32::MAX),
        }
    }
}

impl GuestPlan for Compiled {
    fn load(document: String) -> Result<wit::Plan, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Plan::new(Compiled(Plan::new(&config))))
    }

    fn services(&self) -> Vec<wit::Service> {
        self.0
            .services()
            .map(|service| wit::Service {
                name: service.name.to_owned(),
                versions: service
                    .versions
                    .into_iter()
                    .map(|v| wit::Version {
                        name: v.name.to_owned(),
                        targets: v.targets.into_iter().map(str::to_owned).collect(),
                        response_headers: v.response_headers.to_vec(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn choose(
        &self,
        route: u32,
        service: Option<String>,
        head: String,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> Result<wit::Selection, GatewayError> {
        let (route, service) = self
            .route(route, service.as_deref())
            .ok_or_else(|| unknown("such route"))?;
        let head = RequestHead::parse(&head).map_err(|_| unknown("request head"))?;
        let consumer = consumer.and_then(|i| self.0.consumer_at(i as usize));
        let bucket = bucket().map_err(|e| refusal(&ChooseError::Store(e)))?;
        let s = self
            .0
            .choose(&*bucket, route, service, &head, consumer, now_ms)
            .map_err(|e| refusal(&e))?;
        Ok(wit::Selection {
            primary: self.upstream(service, s.primary),
            alternates: s
                .alternates
                .into_iter()
                .map(|u| self.upstream(service, u))
                .collect(),
            shadow: s.shadow.map(|copy| wit::ShadowCopy {
                upstream: self.upstream(service, copy.upstream),
                timeout_ms: copy.timeout_ms,
            }),
            retry: wit::RetryPolicy {
                attempts: s.retry.attempts,
                retry_on: s.retry.retry_on.to_vec(),
                per_try_timeout_ms: s.retry.per_try_timeout_ms,
            },
            reason: s.reason.into(),
            report_all: s.report_all,
            hooks_due: s.hooks_due,
        })
    }

    fn allow_retry(&self, route: u32, now_ms: u64) -> bool {
        let Some((route, _)) = self.0.route_at(route as usize) else {
            return false;
        };
        bucket().is_ok_and(|b| self.0.allow_retry(&*b, route, now_ms))
    }

    fn report(
        &self,
        route: u32,
        service: Option<String>,
        attempt: wit::Attempt,
        now_ms: u64,
    ) -> Vec<wit::Count> {
        let Some((route, service)) = self.route(route, service.as_deref()) else {
            return Vec::new();
        };
        let (Some(attempt), Ok(bucket)) = (self.attempt(service, &attempt), bucket()) else {
            return Vec::new();
        };
        counts(self.0.report(&*bucket, route, service, &attempt, now_ms))
    }

    fn report_answer(
        &self,
        route: u32,
        service: String,
        version: u32,
        answer: wit::AiAnswer,
    ) -> Vec<wit::Count> {
        let Some((route, service)) = self.route(route, Some(&service)) else {
            return Vec::new();
        };
        let (Some(version), Ok(bucket)) =
            (self.0.version_name(service, version as usize), bucket())
        else {
            return Vec::new();
        };
        let answer = AiAnswer {
            nano_usd: answer.nano_usd,
            counted: answer.counted,
            ttft_ms: answer.ttft_ms,
            generation_ms: answer.generation_ms,
            output_tokens: answer.output_tokens,
            refused: answer.refused,
        };
        counts(
            self.0
                .report_answer(&*bucket, route, service, version, &answer),
        )
    }

    fn report_shadow(
        &self,
        route: u32,
        service: Option<String>,
        shadow: wit::Attempt,
        primary: wit::Attempt,
        now_ms: u64,
    ) -> Vec<wit::Count> {
        let Some((route, service)) = self.route(route, service.as_deref()) else {
            return Vec::new();
        };
        let (Some(shadow), Some(primary), Ok(bucket)) = (
            self.attempt(service, &shadow),
            self.attempt(service, &primary),
            bucket(),
        ) else {
            return Vec::new();
        };
        counts(
            self.0
                .report_shadow(&*bucket, route, service, &shadow, &primary, now_ms),
        )
    }
}

fn counts(counts: Counts) -> Vec<wit::Count> {
    counts
        .into_iter()
        .map(|(key, delta)| wit::Count { key, delta })
        .collect()
}

fn refusal(error: &ChooseError) -> GatewayError {
    GatewayError {
        status: error.status(),
        code: error.code().to_owned(),
        message: error.to_string(),
        headers: Vec::new(),
    }
}

upshift_model::keyvalue_store!(BUCKET);

export!(Component);

//! The WIT face of the splitter: `upshift:gateway/splitter` over [`Plan`],
//! with the live state in `wasi:keyvalue` (bucket `default`).

use crate::{Attempt, ChooseError, Outcome, Plan, Upstream};
use exports::upshift::gateway::splitter::{self as wit, Guest, GuestPlan};
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};

wit_bindgen::generate!({
    path: "../../wit",
    world: "splitter-component",
    generate_all,
});
upshift_config::wit_glue!(head);

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

struct Component;

impl Guest for Component {
    type Plan = Compiled;
}

/// A compiled split plan behind a WIT resource.
struct Compiled(Plan);

impl GuestPlan for Compiled {
    fn load(document: String) -> Result<wit::Plan, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Plan::new(Compiled(Plan::new(&config))))
    }

    fn choose(
        &self,
        route: String,
        service: String,
        head: RequestHead,
        consumer: Option<Consumer>,
        now_ms: u64,
    ) -> Result<wit::Selection, GatewayError> {
        let head = native_head(head);
        let consumer = consumer.map(|c| crate::Consumer {
            id: c.id,
            tenant: c.tenant,
            tags: c.tags,
        });
        let bucket = bucket().map_err(|e| refusal(&ChooseError::Store(e)))?;
        let s = self
            .0
            .choose(&*bucket, &route, &service, &head, consumer.as_ref(), now_ms)
            .map_err(|e| refusal(&e))?;
        Ok(wit::Selection {
            service: s.service.to_owned(),
            primary: upstream(s.primary),
            alternates: s.alternates.into_iter().map(upstream).collect(),
            shadow: s.shadow.map(|copy| wit::ShadowCopy {
                upstream: upstream(copy.upstream),
                timeout_ms: copy.timeout_ms,
            }),
            retry: wit::RetryPolicy {
                attempts: s.retry.attempts,
                retry_on: s.retry.retry_on.to_vec(),
                per_try_timeout_ms: s.retry.per_try_timeout_ms,
            },
            response_headers: s.response_headers.to_vec(),
            reason: s.reason.to_owned(),
        })
    }

    fn allow_retry(&self, route: String, now_ms: u64) -> bool {
        bucket().is_ok_and(|b| self.0.allow_retry(&*b, &route, now_ms))
    }

    fn report(&self, route: String, service: String, attempt: wit::Attempt, now_ms: u64) {
        if let Ok(bucket) = bucket() {
            self.0.report(
                &*bucket,
                &route,
                &service,
                &native_attempt(&attempt),
                now_ms,
            );
        }
    }

    fn report_cost(&self, route: String, service: String, version: String, nano_usd: u64) {
        if let Ok(bucket) = bucket() {
            self.0
                .report_cost(&*bucket, &route, &service, &version, nano_usd);
        }
    }

    fn report_shadow(
        &self,
        route: String,
        service: String,
        shadow: wit::Attempt,
        primary: wit::Attempt,
        now_ms: u64,
    ) {
        if let Ok(bucket) = bucket() {
            self.0.report_shadow(
                &*bucket,
                &route,
                &service,
                &native_attempt(&shadow),
                &native_attempt(&primary),
                now_ms,
            );
        }
    }
}

fn upstream(u: Upstream<'_>) -> wit::Upstream {
    wit::Upstream {
        version: u.version.to_owned(),
        target: u.target.to_owned(),
    }
}

fn native_attempt(a: &wit::Attempt) -> Attempt<'_> {
    Attempt {
        upstream: Upstream {
            version: &a.upstream.version,
            target: &a.upstream.target,
        },
        outcome: match a.outcome {
            wit::Outcome::Status(status) => Outcome::Status(status),
            wit::Outcome::Failed => Outcome::Failed,
            wit::Outcome::TimedOut => Outcome::TimedOut,
        },
        latency_ms: a.latency_ms,
    }
}

fn refusal(error: &ChooseError) -> GatewayError {
    GatewayError {
        status: error.status(),
        code: error.code().to_owned(),
        message: error.to_string(),
        headers: Vec::new(),
    }
}

upshift_config::keyvalue_store!(BUCKET);

export!(Component);

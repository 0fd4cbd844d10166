//! The WIT face of the splitter: `upshift:gateway/splitter` over [`Plan`],
//! with the live state in `wasi:keyvalue` (bucket `default`).

use crate::{Attempt, ChooseError, Outcome, Plan, Store, StoreError, Upstream};
use exports::upshift::gateway::splitter::{self as wit, Guest, GuestPlan};
use std::cell::RefCell;
use std::rc::Rc;
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};
use wasi::keyvalue::{atomics, batch, store};

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

thread_local! {
    /// The bucket, opened once per instance (again after a failed open).
    static OPENED: RefCell<Option<Rc<KeyValue>>> = const { RefCell::new(None) };
}

fn bucket() -> Result<Rc<KeyValue>, StoreError> {
    OPENED.with(|opened| {
        if let Some(bucket) = &*opened.borrow() {
            return Ok(bucket.clone());
        }
        let bucket = Rc::new(KeyValue(store::open(BUCKET).map_err(failed)?));
        *opened.borrow_mut() = Some(bucket.clone());
        Ok(bucket)
    })
}

/// `wasi:keyvalue` as a [`Store`].
struct KeyValue(store::Bucket);

fn failed(e: store::Error) -> StoreError {
    StoreError(format!("{e:?}"))
}

impl Store for KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.get(key).map_err(failed)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut found = batch::get_many(&self.0, keys).map_err(failed)?;
        // Answers may come in any order; match them to the keys asked for.
        Ok(keys
            .iter()
            .enumerate()
            .map(|(i, key)| match found.get_mut(i) {
                Some((k, value)) if k == key => value.take(),
                _ => found
                    .iter_mut()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, value)| value.take()),
            })
            .collect())
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.set(key, value).map_err(failed)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.delete(key).map_err(failed)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.0, key, delta).map_err(failed)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let cas = atomics::Cas::new(&self.0, key).map_err(failed)?;
        if cas.current().map_err(failed)?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, value) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(failed(e)),
        }
    }
}

export!(Component);

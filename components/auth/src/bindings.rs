//! The WIT face of auth: `upshift:gateway/auth` over [`Policy`], with the
//! rate-limit counters in `wasi:keyvalue` (bucket `default`).

use crate::{Policy, Store, StoreError};
use exports::upshift::gateway::auth::{self as wit, Guest, GuestPolicy};
use std::cell::{OnceCell, RefCell};
use std::rc::Rc;
use upshift::gateway::types::{ConfigError, Consumer, GatewayError, RequestHead};
use wasi::keyvalue::{atomics, batch, store};

wit_bindgen::generate!({
    path: "../../wit",
    world: "auth-component",
    generate_all,
});
upshift_config::wit_glue!(head);

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

struct Component;

impl Guest for Component {
    type Policy = Compiled;
}

/// A compiled auth policy behind a WIT resource.
struct Compiled(Policy);

impl GuestPolicy for Compiled {
    fn load(document: String) -> Result<wit::Policy, Vec<ConfigError>> {
        let config = load_config(&document)?;
        Ok(wit::Policy::new(Compiled(Policy::new(&config))))
    }

    fn authenticate(
        &self,
        route: String,
        head: RequestHead,
        now_ms: u64,
    ) -> Result<wit::Authenticated, GatewayError> {
        let head = native_head(head);
        // Opened only when a limit applies; rate limits fail open without it.
        let opened = OnceCell::new();
        let store = || opened.get_or_init(|| bucket().ok()).as_deref();
        match self.0.authenticate_with(store, &route, &head, now_ms) {
            Ok(passed) => Ok(wit::Authenticated {
                consumer: passed.consumer.map(|c| Consumer {
                    id: c.name.clone(),
                    tenant: c.tenant.clone(),
                    tags: c.tags.clone(),
                }),
                response_headers: passed.response_headers,
            }),
            Err(denial) => Err(GatewayError {
                status: denial.status(),
                code: denial.code().to_owned(),
                message: denial.to_string(),
                headers: denial.headers(),
            }),
        }
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
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if let [key] = keys {
            return Ok(vec![self.0.get(key).map_err(failed)?]);
        }
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

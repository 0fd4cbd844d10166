//! The WIT face of the AI API: `upshift:gateway/ai` over [`Catalog`] and
//! [`Call`], with usage counted in `wasi:keyvalue` (bucket `default`).

use std::cell::RefCell;
use std::rc::Rc;

use crate::{Call, Caller, Catalog, Incoming, Reply, Resolution, Stream};
use exports::upshift::ai::ai::{self as wit, Guest, GuestCall, GuestCatalog, GuestTranslator};
use upshift::types::types::ConfigError;
use upshift_model::RequestHead;
use upshift_model::store::{Store, StoreError};

wit_bindgen::generate!({
    path: "../../wit",
    world: "ai-component",
    generate_all,
});
upshift_model::wit_glue!();

/// The key-value store every node of the gateway shares.
const BUCKET: &str = "default";

struct Component;

impl Guest for Component {
    type Catalog = Compiled;
    type Call = Planned;
    type Translator = Translating;
}

/// A compiled model catalog behind a WIT resource, with the callers it
/// may be told about, by their position in the config's `consumers`.
struct Compiled(Catalog, Vec<Caller>);

impl GuestCatalog for Compiled {
    fn load(document: String) -> Result<wit::Catalog, Vec<ConfigError>> {
        let config = load_config(&document)?;
        let callers = config
            .consumers
            .iter()
            .map(|c| Caller {
                consumer: Some(c.name.clone()),
                tenant: c.tenant.clone(),
            })
            .collect();
        Ok(wit::Catalog::new(Compiled(Catalog::new(&config), callers)))
    }

    fn list_models(&self) -> String {
        self.0.list_models()
    }

    fn plan(
        &self,
        path: String,
        head: String,
        body: Vec<u8>,
        consumer: Option<u32>,
        now_ms: u64,
    ) -> wit::Plan {
        let caller = consumer
            .and_then(|i| self.1.get(i as usize).cloned())
            .unwrap_or_default();
        let head = RequestHead::parse(&head).unwrap_or_default();
        let headers: Vec<(String, String)> = head
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        let incoming = Incoming {
            method: head.method(),
            path: &path,
            headers: &headers,
            body: &body,
            now_ms,
        };
        match self.0.plan(&incoming, caller, &DefaultBucket) {
            Resolution::Reply(reply) => wit::Plan::Reply(wit_reply(reply)),
            Resolution::Call(call) => wit::Plan::Call(wit::Call::new(Planned(Rc::from(call)))),
        }
    }

    fn refuse(&self, path: String, status: u16, code: String, message: String) -> wit::Reply {
        wit_reply(Reply::refusal(
            crate::error_dialect(&path),
            status,
            &code,
            &message,
        ))
    }
}

/// A planned call behind a WIT resource.
struct Planned(Rc<Call>);

impl GuestCall for Planned {
    fn streaming(&self) -> bool {
        self.0.streaming()
    }

    fn split(&self) -> Option<String> {
        self.0.split().map(str::to_owned)
    }

    fn choose(&self, version: String) -> bool {
        self.0.choose(&version)
    }

    fn answered(&self) -> wit::Answered {
        let answered = self.0.answered();
        wit::Answered {
            cost_nano_usd: self.0.cost_nanousd(),
            counted: answered.counted,
            input_tokens: answered.input_tokens,
            output_tokens: answered.output_tokens,
            refused: answered.refused,
        }
    }

    fn attempts(&self) -> Vec<wit::Attempt> {
        self.0
            .attempts()
            .iter()
            .map(|a| wit::Attempt {
                alias: a.alias.clone(),
                provider: a.provider.clone(),
                model: a.model.clone(),
                method: a.method.to_owned(),
                url: a.url.clone(),
                headers: a.headers.clone(),
                credential: a.credential.as_ref().map(|c| wit::Credential {
                    variable: c.variable.clone(),
                    header: c.header.to_owned(),
                    prefix: c.prefix.to_owned(),
                }),
                body: a.body.clone(),
                retries: a.retries.map_or(0, |r| r.attempts),
                backoff_ms: a.retries.map_or(0, |r| r.backoff_ms),
            })
            .collect()
    }

    fn respond(&self, index: u32, status: u16, body: Vec<u8>) -> wit::Reply {
        wit_reply(
            self.0
                .respond(index as usize, status, &body, &DefaultBucket),
        )
    }

    fn unavailable(&self, status: u16, code: String, message: String) -> wit::Reply {
        wit_reply(self.0.unavailable(status, &code, &message))
    }

    fn stream(&self, index: u32) -> wit::Translator {
        wit::Translator::new(Translating {
            call: self.0.clone(),
            stream: RefCell::new(self.0.stream(index as usize)),
        })
    }
}

/// A stream translator behind a WIT resource.
struct Translating {
    call: Rc<Call>,
    stream: RefCell<Stream>,
}

impl GuestTranslator for Translating {
    fn headers(&self) -> Vec<(String, String)> {
        Stream::headers()
    }

    fn push(&self, bytes: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 256);
        self.stream.borrow_mut().push(&bytes, &mut out);
        out
    }

    fn done(&self) -> bool {
        self.stream.borrow().is_done()
    }

    fn finish(&self, complete: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.stream
            .borrow_mut()
            .finish(&self.call, complete, &mut out, &DefaultBucket);
        out
    }
}

fn wit_reply(reply: Reply) -> wit::Reply {
    wit::Reply {
        status: reply.status,
        headers: reply.headers,
        body: reply.body,
    }
}

upshift_model::keyvalue_store!(BUCKET);

/// Bucket [`BUCKET`] of `wasi:keyvalue`, where usage counters, budgets and
/// cached answers live: opened on first use (again after a failed open).
/// The call keeps going when it fails (see [`crate::best_effort`]).
struct DefaultBucket;

impl Store for DefaultBucket {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        bucket()?.get(key)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        bucket()?.get_many(keys)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        bucket()?.set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        bucket()?.delete(key)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        bucket()?.increment(key, delta)
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        bucket()?.compare_and_swap(key, expected, value)
    }
}

export!(Component);

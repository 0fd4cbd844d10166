//! One client request to the AI API: planned into provider requests (the
//! model alias first, then its fallbacks), and the provider's answer
//! translated back, whole or as a stream, with its usage counted.
//!
//! Two lanes: when the provider speaks the client's dialect the body
//! passes through (only `model` is replaced, and OpenAI streams are asked
//! for their usage chunk), and the answer comes back as the provider sent
//! it, its usage read on the way (a tap); otherwise the request and the
//! answer are translated through the [IR](crate::ir).
//!
//! The plan names where the provider key goes ([`Credential`]) but never
//! holds the key: the gateway reads it from its variables.
//!
//! The call is planned here and kept until it is answered: [`reply`] is
//! what goes to the client, [`attempts`] the provider requests, [`respond`]
//! a whole answer, [`stream`] (with its passthrough [`tap`]) a streamed
//! one, [`record`] the counting of an answer and [`cache`] the answers
//! kept for the next identical request.

mod attempts;
mod cache;
mod record;
mod reply;
mod respond;
mod stream;
mod tap;

use std::cell::{Cell, OnceCell};

use serde::Deserialize;

use crate::ir::Request;
use crate::{Dialect, StreamOptions};

pub use attempts::ProviderRequest;
pub(crate) use attempts::passthrough_body;
pub(crate) use cache::{CacheSlot, Cached};
pub use reply::Reply;
pub use stream::Stream;

/// Who is calling, for the usage counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The consumer's name, if the route authenticated one.
    pub consumer: Option<String>,
    /// The consumer's tenant.
    pub tenant: Option<String>,
}

/// What the client asked for, read before the body is translated.
#[derive(Debug, Deserialize)]
pub(crate) struct Head {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<HeadStreamOptions>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HeadStreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

/// A client request planned into provider requests.
#[derive(Debug)]
pub struct Call {
    pub(crate) ingress: Dialect,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    /// What the call may send: one variant, or one per version of the
    /// splitter service [`Call::split`] names.
    pub(crate) variants: Vec<Variant>,
    /// The variant in force (the first until [`Call::choose`]).
    pub(crate) chosen: Cell<usize>,
    /// The splitter service that picks the variant, if any.
    pub(crate) split: Option<String>,
    /// An embeddings call (OpenAI's shape, passed through).
    pub(crate) embeddings: bool,
    pub(crate) caller: Caller,
    pub(crate) now_ms: u64,
    /// Budget counters every answered call adds its tokens to.
    pub(crate) budget_keys: Vec<String>,
    /// Counters of minutes past, removed when the call is counted.
    pub(crate) stale_keys: Vec<String>,
    /// Tokens left in the caller's tightest budget: a stream is cut when
    /// they run out.
    pub(crate) allowance: Option<u64>,
    /// Where the answer is cached, for a cacheable call.
    pub(crate) cache: Option<CacheSlot>,
    /// The `x-upshift-cache` header of the answer, when the cache is on.
    pub(crate) cache_status: Option<&'static str>,
    /// What the answered attempts cost so far, in billionths of a USD.
    pub(crate) spent: Cell<u64>,
    /// What the last answer counted came to.
    pub(crate) answered: Cell<CountedAnswer>,
}

/// What a call's last counted answer came to, beside its cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountedAnswer {
    /// Whether an answer was counted.
    pub counted: bool,
    /// Its prompt tokens (reported, or estimated).
    pub input_tokens: u64,
    /// Its output tokens (reported, or estimated).
    pub output_tokens: u64,
    /// Whether it was a refusal: stopped by a content filter, or empty.
    pub refused: bool,
}

/// One version of what a call sends: the client's body (or a prompt
/// template's, filled in) and the provider requests made of it.
#[derive(Debug)]
pub struct Variant {
    /// The splitter version it is (the alias, or the prompt's version).
    pub(crate) version: String,
    /// The request body in the client's dialect.
    pub(crate) body: Vec<u8>,
    /// The body in the IR, parsed once when needed.
    pub(crate) ir: OnceCell<Option<Request>>,
    /// The provider requests: the model, then its fallbacks.
    pub(crate) attempts: Vec<ProviderRequest>,
}

impl Variant {
    /// The body in the IR, read as `ingress`.
    pub(crate) fn request(&self, ingress: Dialect) -> Option<&Request> {
        self.ir
            .get_or_init(|| ingress.parse_request(&self.body).ok())
            .as_ref()
    }
}

impl Call {
    /// The client's dialect.
    pub fn ingress(&self) -> Dialect {
        self.ingress
    }

    /// Whether the client asked for a stream.
    pub fn streaming(&self) -> bool {
        self.stream
    }

    /// The provider requests of the variant in force, in the order to try them.
    pub fn attempts(&self) -> &[ProviderRequest] {
        &self.variant().attempts
    }

    /// The splitter service whose version picks what this call sends:
    /// `model:{alias}` for an alias with a split, `prompt:{name}` for a
    /// prompt template; `None` when there is nothing to pick.
    pub fn split(&self) -> Option<&str> {
        self.split.as_deref()
    }

    /// Sends the variant of `version` (of the [`Call::split`] service);
    /// `false`, leaving the first in force, when there is none.
    pub fn choose(&self, version: &str) -> bool {
        match self.variants.iter().position(|v| v.version == version) {
            Some(index) => {
                self.chosen.set(index);
                true
            }
            None => false,
        }
    }

    /// What the call's answered attempts cost, in billionths of a USD
    /// (from the models' prices; 0 without prices).
    pub fn cost_nanousd(&self) -> u64 {
        self.spent.get()
    }

    /// What the last answer counted came to: its output and whether it
    /// was a refusal.
    pub fn answered(&self) -> CountedAnswer {
        self.answered.get()
    }

    fn variant(&self) -> &Variant {
        &self.variants[self.chosen.get()]
    }

    /// The client's request in the IR (parsed once, when needed).
    pub(crate) fn request(&self) -> Option<&Request> {
        self.variant().request(self.ingress)
    }

    fn created(&self) -> u64 {
        self.now_ms / 1000
    }

    /// What the client's stream is written with.
    fn stream_options(&self) -> StreamOptions {
        StreamOptions {
            include_usage: self.include_usage,
            created: self.created(),
        }
    }
}

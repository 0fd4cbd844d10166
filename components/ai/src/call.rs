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

use std::cell::{Cell, OnceCell};
use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use upshift_config::ai::usage_keys;
use upshift_config::{ModelRetries, Price};

use crate::dialect::{Decoder, Encoder};
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::{Delta, Request, StopReason, StreamEvent, Usage};
use crate::provider::Credential;
use crate::translate::{self, closing_events};
use crate::usage::{self, TokenCounter};
use crate::{Dialect, StreamOptions, StreamTranslator, sse};

/// An answer ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }
    }

    /// A complete event stream (`body`), for a client that asked for one.
    pub fn event_stream(body: Vec<u8>) -> Self {
        Reply {
            status: 200,
            headers: Stream::headers(),
            body,
        }
    }

    /// `error` as a client of `dialect` expects it.
    pub fn error(dialect: Dialect, error: &ApiError) -> Self {
        let (status, body) = error.render(dialect);
        Reply::json(status, body)
    }

    /// The gateway's own refusal (`status`, a stable `code`, a message) in
    /// the error shape of `dialect`, keeping the status as it is.
    pub fn refusal(dialect: Dialect, status: u16, code: &str, message: &str) -> Self {
        let error = ApiError {
            kind: ErrorKind::from_status(status),
            message: message.to_owned(),
            code: Some(code.to_owned()),
            param: None,
        };
        Reply {
            status,
            ..Reply::error(dialect, &error)
        }
    }
}

/// Who is calling, for the usage counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The consumer's name, if the route authenticated one.
    pub consumer: Option<String>,
    /// The consumer's tenant.
    pub tenant: Option<String>,
}

/// The key-value store usage, budgets and cached answers live in. Failures
/// are the implementation's to report: a store that fails loses a count or
/// a cached answer, never a response.
pub trait Store {
    /// Adds `delta` to the counter `key` (atomically), in the backend's
    /// encoding: read it with [`upshift_config::store::decode_counter`].
    fn add(&self, key: &str, delta: u64);
    /// The value of `key`, if any.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Sets `key` to `value`. Never a counter's key: counters are only
    /// added to (see [`upshift_config::store`]).
    fn set(&self, key: &str, value: &[u8]);
    /// Removes `key`.
    fn delete(&self, key: &str);
}

/// The number a counter key holds, in either encoding (see
/// [`upshift_config::store`]); 0 when absent.
pub(crate) fn counter(store: &dyn Store, key: &str) -> u64 {
    upshift_config::store::counter(store.get(key).as_deref())
}

/// Where a call's answer is cached.
#[derive(Debug, Clone)]
pub(crate) struct CacheSlot {
    /// The key of the answer.
    pub key: String,
    /// How long it is served, in milliseconds.
    pub ttl_ms: u64,
}

/// A cached answer: its expiry, who served it, the client's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cached {
    pub expires_ms: u64,
    pub alias: String,
    pub upstream: String,
    pub body: Vec<u8>,
}

impl Cached {
    /// `{expires_ms}\t{alias}\t{provider@model}\n{body}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            format!("{}\t{}\t{}\n", self.expires_ms, self.alias, self.upstream).into_bytes();
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Cached> {
        let newline = bytes.iter().position(|&b| b == b'\n')?;
        let head = std::str::from_utf8(&bytes[..newline]).ok()?;
        let mut fields = head.split('\t');
        let expires_ms = fields.next()?.parse().ok()?;
        let alias = fields.next()?.to_owned();
        let upstream = fields.next()?.to_owned();
        Some(Cached {
            expires_ms,
            alias,
            upstream,
            body: bytes[newline + 1..].to_vec(),
        })
    }

    /// The reply to a client.
    pub fn reply(self) -> Reply {
        let mut reply = Reply::json(200, self.body);
        reply.headers.extend([
            ("x-upshift-cache".to_owned(), "hit".to_owned()),
            ("x-upshift-model".to_owned(), self.alias),
            ("x-upshift-upstream".to_owned(), self.upstream),
        ]);
        reply
    }
}

/// One provider request of a call.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The alias this attempt serves (a fallback's own, for a fallback).
    pub alias: String,
    /// The provider's name.
    pub provider: String,
    /// The provider's model id.
    pub model: String,
    /// The provider's dialect.
    pub dialect: Dialect,
    /// Always `POST`.
    pub method: &'static str,
    /// The whole URL.
    pub url: String,
    /// Request headers without the key.
    pub headers: Vec<(String, String)>,
    /// Where the key goes, if the provider takes one.
    pub credential: Option<Credential>,
    /// The body in the provider's dialect.
    pub body: Vec<u8>,
    /// The model's price, for the cost counter.
    pub price: Option<Price>,
    /// Tries of this attempt again before the next one, and the first
    /// pause between tries (doubling), in milliseconds.
    pub retries: Option<ModelRetries>,
}

impl Attempt {
    /// Whether the body passed through untranslated.
    pub fn passthrough(&self, ingress: Dialect) -> bool {
        self.dialect == ingress
    }
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
    pub(crate) answered: Cell<Answered>,
}

/// What a call's last counted answer came to, beside its cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
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
    pub(crate) attempts: Vec<Attempt>,
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
    pub fn attempts(&self) -> &[Attempt] {
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
    pub fn answered(&self) -> Answered {
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

    /// The client's answer to a complete provider response of attempt
    /// `index` with `status` and `body`: a success translated (its usage
    /// counted), or the provider's error in the client's dialect. A body
    /// that is not JSON (a proxy's error page, say) is an error whatever
    /// its status ([`ApiError::not_json`]).
    ///
    /// A streaming call's success is the client's whole event stream
    /// (`text/event-stream`): this is the answer to a provider that was
    /// asked to stream and answered whole instead. Like any whole answer it
    /// is counted once, here, and is not cut by the budget.
    pub fn respond(&self, index: usize, status: u16, body: &[u8], store: &dyn Store) -> Reply {
        let Some(attempt) = self.attempts().get(index) else {
            return Reply::error(
                self.ingress,
                &ApiError::new(ErrorKind::Server, format!("no attempt {index}")),
            );
        };
        let passthrough = attempt.passthrough(self.ingress);
        if !(200..300).contains(&status) {
            if let Some(reply) = self.not_json(attempt, status, body) {
                return reply;
            }
            if passthrough {
                return Reply::json(status, body.to_vec());
            }
            let (status, body) =
                crate::translate_error(attempt.dialect, self.ingress, status, body);
            return Reply::json(status, body);
        }
        if self.embeddings {
            return self.embedded(attempt, status, body, store);
        }
        let parsed = attempt.dialect.parse_response(body);
        // A success is parsed anyway: only one that fails is parsed again,
        // to tell a body that is not JSON from one of another shape.
        if parsed.is_err()
            && let Some(reply) = self.not_json(attempt, status, body)
        {
            return reply;
        }
        let (reply, reported, output, stop) = match (self.stream, passthrough, parsed) {
            // The provider (or a proxy before it) did not stream: the
            // client still gets the stream it asked for.
            (true, _, Ok(response)) => {
                let output = usage::estimate_output(&response.content);
                match translate::stream_response(self.ingress, &response, self.stream_options()) {
                    Ok(events) => (
                        Reply::event_stream(events),
                        response.usage,
                        output,
                        response.stop_reason,
                    ),
                    Err(error) => return self.not_streaming(attempt, &error),
                }
            }
            (false, true, Ok(response)) => (
                Reply::json(status, body.to_vec()),
                response.usage,
                usage::estimate_output(&response.content),
                response.stop_reason,
            ),
            (false, true, Err(_)) => (
                Reply::json(status, body.to_vec()),
                Usage::default(),
                usage::estimate_text(&String::from_utf8_lossy(body)),
                None,
            ),
            (false, false, Ok(mut response)) => {
                if response.created == 0 {
                    response.created = self.created();
                }
                let output = usage::estimate_output(&response.content);
                match self.ingress.render_response(&response) {
                    Ok(rendered) => (
                        Reply::json(200, rendered),
                        response.usage,
                        output,
                        response.stop_reason,
                    ),
                    Err(error) => return self.bad_upstream(attempt, &error),
                }
            }
            (_, _, Err(error)) => return self.bad_upstream(attempt, &error),
        };
        self.record(attempt, (reported, output), stop, store);
        self.keep(attempt, reply, store)
    }

    /// The answer of an embeddings call: as the provider sent it, its
    /// prompt tokens counted.
    fn embedded(&self, attempt: &Attempt, status: u16, body: &[u8], store: &dyn Store) -> Reply {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            usage: Option<EmbeddingUsage>,
        }
        #[derive(Deserialize)]
        struct EmbeddingUsage {
            #[serde(default)]
            prompt_tokens: u64,
        }
        let parsed = serde_json::from_slice::<Answer>(body);
        if parsed.is_err()
            && let Some(reply) = self.not_json(attempt, status, body)
        {
            return reply;
        }
        let input_tokens = parsed
            .ok()
            .and_then(|a| a.usage)
            .map_or(0, |u| u.prompt_tokens);
        let reported = Usage {
            input_tokens,
            ..Usage::default()
        };
        self.record(attempt, (reported, 0), None, store);
        self.keep(attempt, Reply::json(status, body.to_vec()), store)
    }

    /// Caches a successful `reply` when the cache is on, and says so.
    fn keep(&self, attempt: &Attempt, mut reply: Reply, store: &dyn Store) -> Reply {
        if let Some(slot) = &self.cache {
            let cached = Cached {
                expires_ms: self.now_ms + slot.ttl_ms,
                alias: attempt.alias.clone(),
                upstream: format!("{}@{}", attempt.provider, attempt.model),
                body: reply.body.clone(),
            };
            store.set(&slot.key, &cached.encode());
        }
        if let Some(status) = self.cache_status {
            reply
                .headers
                .push(("x-upshift-cache".to_owned(), status.to_owned()));
        }
        reply
    }

    /// The client's error for an answer whose body is not JSON, if it is not.
    fn not_json(&self, attempt: &Attempt, status: u16, body: &[u8]) -> Option<Reply> {
        let (status, error) = ApiError::not_json(&attempt.provider, status, body)?;
        Some(Reply {
            status,
            ..Reply::error(self.ingress, &error)
        })
    }

    /// A success the gateway cannot read is a bad gateway (502), as one
    /// that is not JSON at all is.
    fn bad_upstream(&self, attempt: &Attempt, error: &TranslateError) -> Reply {
        let message = format!(
            "provider {} answered with a body that cannot be read: {error}",
            attempt.provider
        );
        Reply::refusal(self.ingress, 502, "bad_provider_response", &message)
    }

    /// A whole answer to a streamed request that no stream can carry.
    fn not_streaming(&self, attempt: &Attempt, error: &TranslateError) -> Reply {
        let message = format!(
            "provider {} answered a streamed request whole, and its answer cannot be streamed: {error}",
            attempt.provider
        );
        Reply::refusal(self.ingress, 502, "provider_not_streaming", &message)
    }

    /// The client's answer when no provider answered: `status` (502, 504)
    /// with a stable `code` and a message, in the client's dialect.
    pub fn unavailable(&self, status: u16, code: &str, message: &str) -> Reply {
        Reply::refusal(self.ingress, status, code, message)
    }

    /// A translator for the streamed success response of attempt `index`.
    pub fn stream(&self, index: usize) -> Stream {
        let attempts = self.attempts();
        let attempt = attempts.get(index).unwrap_or(&attempts[0]);
        let options = self.stream_options();
        let lane = if attempt.passthrough(self.ingress) {
            Lane::Tap(Box::new(Tap::new(
                self.ingress,
                self.ingress == Dialect::OpenAiChat && !self.include_usage,
                options,
                self.allowance.is_some(),
            )))
        } else {
            Lane::Translate(Box::new(StreamTranslator::new(
                attempt.dialect,
                self.ingress,
                options,
            )))
        };
        let input_estimate = match self.allowance {
            Some(_) => self.request().map_or(0, usage::estimate_request),
            None => 0,
        };
        Stream {
            lane,
            attempt: index,
            allowance: self.allowance,
            input_estimate,
            cut: false,
        }
    }

    /// Counts a completed call of `attempt`: the reported counts, estimates
    /// where the provider gave none, and whether the answer (which stopped
    /// for `stop_reason`) was a refusal.
    fn record(
        &self,
        attempt: &Attempt,
        (reported, output): (Usage, u64),
        stop_reason: Option<StopReason>,
        store: &dyn Store,
    ) {
        let input = match reported.input_tokens {
            0 if self.embeddings => {
                usage::estimate_text(&String::from_utf8_lossy(&self.variant().body))
            }
            0 => self.request().map_or_else(
                || usage::estimate_text(&String::from_utf8_lossy(&self.variant().body)),
                usage::estimate_request,
            ),
            n => n,
        };
        let output = match reported.output_tokens {
            0 => output,
            n => n,
        };
        self.answered.set(Answered {
            counted: true,
            input_tokens: input,
            output_tokens: output,
            refused: !self.embeddings
                && (stop_reason == Some(StopReason::ContentFilter) || output == 0),
        });
        let caller = &self.caller;
        let key = |field| {
            usage_keys::usage(
                caller.tenant.as_deref(),
                caller.consumer.as_deref(),
                &attempt.alias,
                field,
            )
        };
        store.add(&key(usage_keys::REQUESTS), 1);
        let cost = attempt.price.map_or(0, |p| p.cost_nanousd(input, output));
        self.spent.set(self.spent.get().saturating_add(cost));
        for (field, delta) in [
            (usage_keys::INPUT_TOKENS, input),
            (usage_keys::OUTPUT_TOKENS, output),
            (usage_keys::COST_NANOUSD, cost),
        ] {
            if delta > 0 {
                store.add(&key(field), delta);
            }
        }
        if input + output > 0 {
            for budget in &self.budget_keys {
                store.add(budget, input + output);
            }
            for stale in &self.stale_keys {
                store.delete(stale);
            }
        }
    }
}

/// One streamed response on its way to the client.
#[derive(Debug)]
pub struct Stream {
    lane: Lane,
    attempt: usize,
    /// Tokens the stream may use before it is cut.
    allowance: Option<u64>,
    /// Prompt tokens estimated, until the provider reports its count.
    input_estimate: u64,
    /// Whether the budget cut the stream.
    cut: bool,
}

#[derive(Debug)]
enum Lane {
    Translate(Box<StreamTranslator>),
    Tap(Box<Tap>),
}

impl Stream {
    /// Response headers for the client.
    pub fn headers() -> Vec<(String, String)> {
        vec![
            ("content-type".to_owned(), "text/event-stream".to_owned()),
            ("cache-control".to_owned(), "no-cache".to_owned()),
        ]
    }

    /// Feeds upstream bytes; appends the client bytes they complete. When
    /// the caller's budget runs out, the client's stream ends there,
    /// cleanly (stop reason: length), and [`Stream::is_done`] turns true.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        match &mut self.lane {
            Lane::Translate(translator) => translator.push(bytes, out),
            Lane::Tap(tap) => tap.push(bytes, out),
        }
        if let Some(allowance) = self.allowance
            && !self.is_done()
            && self.spent() >= allowance
        {
            self.cut = true;
            match &mut self.lane {
                Lane::Translate(translator) => translator.cut(StopReason::MaxTokens, out),
                Lane::Tap(tap) => tap.cut(StopReason::MaxTokens, out),
            }
        }
    }

    /// Whether the client's stream is complete: the provider ended it, it
    /// failed, or the budget cut it. The upstream need not be read further.
    pub fn is_done(&self) -> bool {
        match &self.lane {
            Lane::Translate(translator) => translator.is_done(),
            Lane::Tap(tap) => tap.done,
        }
    }

    /// Whether the budget cut the stream.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    /// Tokens used so far: the prompt (reported, or estimated) and the
    /// output (the larger of reported and estimated).
    fn spent(&self) -> u64 {
        let (usage, output) = self.usage();
        let input = match usage.input_tokens {
            0 => self.input_estimate,
            n => n,
        };
        input + usage.output_tokens.max(output)
    }

    /// Usage reported so far, and the output tokens estimated.
    fn usage(&self) -> (Usage, u64) {
        match &self.lane {
            Lane::Translate(translator) => {
                (translator.usage(), translator.estimated_output_tokens())
            }
            Lane::Tap(tap) => (tap.usage, tap.output.tokens()),
        }
    }

    /// The upstream body ended, cleanly or not (`complete`); appends what
    /// ends the client's stream and counts the usage of `call`.
    pub fn finish(&mut self, call: &Call, complete: bool, out: &mut Vec<u8>, store: &dyn Store) {
        match &mut self.lane {
            Lane::Translate(translator) => translator.finish(out),
            Lane::Tap(tap) => tap.finish(complete, out),
        }
        let (mut usage, output) = self.usage();
        if self.cut {
            // The provider's count stopped where the client's stream did not.
            usage.output_tokens = usage.output_tokens.max(output);
        }
        let stop_reason = match &self.lane {
            Lane::Translate(translator) => translator.stop_reason(),
            Lane::Tap(tap) => tap.stop_reason,
        };
        if let Some(attempt) = call.attempts().get(self.attempt) {
            call.record(attempt, (usage, output), stop_reason, store);
        }
    }
}

/// The passthrough lane of a stream: events go to the client as the
/// provider sent them, read on the way for their usage. An OpenAI client
/// that did not ask for the usage chunk does not get the one the gateway
/// asked for.
#[derive(Debug)]
struct Tap {
    parser: sse::Parser,
    decoder: Decoder,
    dialect: Dialect,
    drop_usage_chunk: bool,
    options: StreamOptions,
    usage: Usage,
    output: TokenCounter,
    /// Why the provider says generation stopped, once it has.
    stop_reason: Option<StopReason>,
    done: bool,
    events: Vec<sse::Event>,
    ir: Vec<StreamEvent>,
    /// An encoder fed what passed, its output dropped, so that a cut can
    /// end the stream in the state the client's stream is in.
    shadow: Option<Encoder>,
    open: Option<usize>,
    started: bool,
}

impl Tap {
    fn new(
        dialect: Dialect,
        drop_usage_chunk: bool,
        options: StreamOptions,
        cuttable: bool,
    ) -> Self {
        Tap {
            parser: sse::Parser::new(),
            decoder: Decoder::new(dialect),
            dialect,
            drop_usage_chunk,
            options,
            usage: Usage::default(),
            output: TokenCounter::default(),
            stop_reason: None,
            done: false,
            events: Vec::new(),
            ir: Vec::new(),
            shadow: cuttable.then(|| Encoder::new(dialect, options)),
            open: None,
            started: false,
        }
    }

    /// Ends the client's stream now, as [`StreamTranslator::cut`] does.
    fn cut(&mut self, stop_reason: StopReason, out: &mut Vec<u8>) {
        let Some(encoder) = &mut self.shadow else {
            return;
        };
        if self.done {
            return;
        }
        let ir: Vec<StreamEvent> =
            closing_events(self.open, self.usage, &self.output, stop_reason).collect();
        let mut closing = Vec::new();
        if self.started {
            for event in &ir {
                encoder.encode(event, &mut closing);
            }
            encoder.flush(&mut closing);
        }
        for event in closing {
            event.write_to(out);
        }
        self.done = true;
    }

    fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        self.parser.push(bytes, &mut events);
        self.pass(&mut events, out);
        self.events = events;
    }

    fn finish(&mut self, complete: bool, out: &mut Vec<u8>) {
        let mut events = std::mem::take(&mut self.events);
        self.parser.finish(&mut events);
        self.pass(&mut events, out);
        if !self.done && !complete {
            let mut encoder = Encoder::new(self.dialect, self.options);
            let mut closing = Vec::new();
            encoder.encode(
                &StreamEvent::Error(ApiError::new(
                    ErrorKind::Server,
                    "the provider's stream broke off",
                )),
                &mut closing,
            );
            for event in closing {
                event.write_to(out);
            }
        }
    }

    fn pass(&mut self, events: &mut Vec<sse::Event>, out: &mut Vec<u8>) {
        if self.done && self.shadow.is_some() {
            // Cut: nothing more reaches the client.
            events.clear();
            return;
        }
        for event in events.drain(..) {
            self.observe(&event);
            if self.drop_usage_chunk && is_usage_chunk(&event) {
                continue;
            }
            event.write_to(out);
        }
    }

    fn observe(&mut self, event: &sse::Event) {
        let mut ir = std::mem::take(&mut self.ir);
        // The client gets the event either way; one the decoder cannot read
        // only goes uncounted.
        let _ = self.decoder.decode(event, &mut ir);
        if let Some(shadow) = &mut self.shadow {
            let mut dropped = Vec::new();
            for event in &ir {
                shadow.encode(event, &mut dropped);
            }
            shadow.flush(&mut dropped);
        }
        for event in ir.drain(..) {
            match event {
                StreamEvent::MessageStart { usage, .. } => {
                    self.started = true;
                    self.usage.merge(&usage);
                }
                StreamEvent::BlockStart { index, .. } => self.open = Some(index),
                StreamEvent::BlockStop { .. } => self.open = None,
                StreamEvent::MessageDelta {
                    stop_reason, usage, ..
                } => {
                    self.stop_reason = stop_reason.or(self.stop_reason);
                    if let Some(usage) = usage {
                        self.usage.merge(&usage);
                    }
                }
                StreamEvent::BlockDelta {
                    delta: Delta::Text(text) | Delta::Thinking(text) | Delta::Json(text),
                    ..
                } => self.output.add(&text),
                StreamEvent::MessageStop | StreamEvent::Error(_) => self.done = true,
                _ => {}
            }
        }
        self.ir = ir;
    }
}

/// An OpenAI Chat chunk that only carries usage (`choices` empty).
fn is_usage_chunk(event: &sse::Event) -> bool {
    #[derive(Deserialize)]
    struct Chunk {
        #[serde(default)]
        choices: Option<Vec<IgnoredAny>>,
        #[serde(default)]
        usage: Option<IgnoredAny>,
    }
    match serde_json::from_str::<Chunk>(&event.data) {
        Ok(chunk) => chunk.usage.is_some() && chunk.choices.is_none_or(|c| c.is_empty()),
        Err(_) => false,
    }
}

/// The client's body for a provider of the same dialect: `model` replaced,
/// and a streamed OpenAI Chat request asks for the usage chunk.
pub(crate) fn passthrough_body(
    dialect: Dialect,
    body: &[u8],
    model: &str,
    stream: bool,
) -> Result<Vec<u8>, TranslateError> {
    let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::invalid(format!("the body is not a JSON object: {e}")))?;
    let json = |value: serde_json::Value| {
        serde_json::value::to_raw_value(&value).expect("JSON values serialize")
    };
    if dialect != Dialect::Gemini {
        fields.insert("model".to_owned(), json(model.into()));
    }
    if dialect == Dialect::OpenAiChat && stream {
        fields.insert(
            "stream_options".to_owned(),
            json(serde_json::json!({"include_usage": true})),
        );
    }
    Ok(serde_json::to_vec(&fields).expect("JSON values serialize"))
}

//! The AI API of the Upshift gateway.
//!
//! A [`Catalog`] is compiled once per config version from the `ai` section:
//! the model aliases clients may ask for, their providers and fallbacks.
//! [`Catalog::plan`] turns a client request into a [`Call`]: the provider
//! requests to try in order (URL, headers, body; the key stays with the
//! gateway), and the translation of what comes back ([`Call::respond`],
//! [`Call::stream`]) with its usage counted, budgets kept and answers
//! cached in a key-value [`Store`](upshift_model::store::Store).
//!
//! The translation core is plain Rust without I/O. Every dialect
//! ([`Dialect`]: OpenAI Chat, OpenAI Responses, Anthropic Messages, Gemini)
//! parses into and renders from one internal representation ([`ir`]),
//! modeled on indexed content blocks, so any client dialect can be served
//! by any provider dialect:
//!
//! - bodies: [`translate_request`], [`translate_response`], or
//!   [`Dialect::parse_request`] / [`Dialect::render_request`] (and the
//!   response pair) to look at or change the IR in between;
//! - streams: a [`StreamTranslator`] per response turns upstream bytes into
//!   downstream bytes as they arrive ([`sse`] parses and writes the event
//!   stream); [`stream_response`] writes a whole response as a stream;
//! - errors: [`ApiError`] reads any provider's error body and writes it
//!   with the status the client's dialect expects;
//! - usage: normalized counts in [`ir::Usage`], estimates in [`usage`].

mod best_effort;
mod call;
mod catalog;
pub mod dialect;
pub mod errors;
pub mod ir;
pub mod provider;
pub mod sample;
pub mod sse;
mod stream_progress;
mod translate;
pub mod usage;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use call::{Call, Caller, CountedAnswer, ProviderRequest, Reply, Stream};
pub use catalog::{ApiEndpoint, Catalog, Incoming, Resolution, endpoint, error_dialect};
pub use dialect::{Dialect, StreamOptions};
pub use errors::{ApiError, ErrorKind, TranslateError};
pub use translate::{
    StreamTranslator, stream_response, translate_error, translate_request, translate_response,
};

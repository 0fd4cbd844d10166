//! A whole provider answer turned into the client's: translated or passed
//! through, its usage counted, an error in the client's dialect.

use serde::Deserialize;

use upshift_model::store::Store;

use super::{Call, ProviderRequest, Reply};
use crate::best_effort::BestEffort;
use crate::errors::{ApiError, ErrorKind, TranslateError};
use crate::ir::Usage;
use crate::translate;
use crate::usage;

impl Call {
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
        let store = &BestEffort(store);
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
    fn embedded(
        &self,
        attempt: &ProviderRequest,
        status: u16,
        body: &[u8],
        store: &BestEffort<'_>,
    ) -> Reply {
        #[derive(Deserialize)]
        struct EmbeddingsResponse {
            #[serde(default)]
            usage: Option<EmbeddingUsage>,
        }
        #[derive(Deserialize)]
        struct EmbeddingUsage {
            #[serde(default)]
            prompt_tokens: u64,
        }
        let parsed = serde_json::from_slice::<EmbeddingsResponse>(body);
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

    /// The client's error for an answer whose body is not JSON, if it is not.
    fn not_json(&self, attempt: &ProviderRequest, status: u16, body: &[u8]) -> Option<Reply> {
        let (status, error) = ApiError::not_json(&attempt.provider, status, body)?;
        Some(Reply {
            status,
            ..Reply::error(self.ingress, &error)
        })
    }

    /// A success the gateway cannot read is a bad gateway (502), as one
    /// that is not JSON at all is.
    fn bad_upstream(&self, attempt: &ProviderRequest, error: &TranslateError) -> Reply {
        let message = format!(
            "provider {} answered with a body that cannot be read: {error}",
            attempt.provider
        );
        Reply::refusal(self.ingress, 502, "bad_provider_response", &message)
    }

    /// A whole answer to a streamed request that no stream can carry.
    fn not_streaming(&self, attempt: &ProviderRequest, error: &TranslateError) -> Reply {
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
}

//! The AI lane's decisions that do not depend on I/O: limits, the headers a
//! provider request carries, whether an answer streams, and how long its
//! parts took.

use std::sync::Arc;
use std::time::Instant;

pub use upshift_model::metrics::AiAnswer;

use crate::access_log::AiUsage;
use crate::policy::{Outcome, Upstream, UpstreamAttempt};

/// Largest request body an AI route takes.
pub const BODY_LIMIT: usize = 10 << 20;

/// Most of an oversized request body read (and dropped) before refusing it,
/// so that a client still sending reads the 413 rather than a reset.
pub const DRAIN_LIMIT: usize = 4 * BODY_LIMIT;

/// Largest non-streamed provider answer read.
pub const ANSWER_LIMIT: usize = 64 << 20;

/// Where a provider's key goes: the gateway reads `variable` and sends
/// `prefix` + key in `header`.
#[derive(Debug, Clone, Copy)]
pub struct Credential<'a> {
    /// The variable holding the key.
    pub variable: &'a str,
    /// The header that carries it.
    pub header: &'a str,
    /// Text before the key, e.g. `Bearer `.
    pub prefix: &'a str,
}

/// A provider key the config names but nobody set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the key of provider {provider} is not set: give the variable `{variable}` a value")]
pub struct MissingKey {
    /// The provider.
    pub provider: String,
    /// The variable that should hold its key.
    pub variable: String,
}

impl MissingKey {
    /// The stable code of the client's error.
    pub const CODE: &'static str = "provider_key_missing";
}

/// The headers of a provider request: the plan's, the request id, and the
/// key (read with `key`, which returns the variable's value) in its header.
/// The body's `content-length` is added by the lane that sends it.
pub fn provider_headers(
    planned: &[(String, String)],
    request_id: &str,
    provider: &str,
    credential: Option<Credential<'_>>,
    key: impl FnOnce(&str) -> Option<String>,
) -> Result<Vec<(String, Vec<u8>)>, MissingKey> {
    let mut headers: Vec<(String, Vec<u8>)> = planned
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    headers.push(("x-request-id".into(), request_id.as_bytes().to_vec()));
    if let Some(credential) = credential {
        let key = key(credential.variable)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| MissingKey {
                provider: provider.to_owned(),
                variable: credential.variable.to_owned(),
            })?;
        let mut value = credential.prefix.as_bytes().to_vec();
        value.extend_from_slice(key.as_bytes());
        headers.push((credential.header.to_owned(), value));
    }
    Ok(headers)
}

/// Whether a provider's answer goes to the translator chunk by chunk: the
/// call streams, the answer is a success, and it is an event stream.
/// Anything else is read whole and answered with `respond` (which makes a
/// stream of a whole answer when the call streams).
pub fn streams(call_streams: bool, status: u16, content_type: Option<&[u8]>) -> bool {
    call_streams
        && (200..300).contains(&status)
        && content_type
            .is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"))
}

/// The seconds a `retry-after` header asks for (its delay-seconds form).
pub fn retry_after_s(value: Option<&[u8]>) -> Option<u64> {
    std::str::from_utf8(value?).ok()?.trim().parse().ok()
}

/// The time to the first token and the generation time of an answer, in
/// milliseconds: the call started at `started`, its first bytes reached
/// the client at `first` and it ended at `ended`. A whole answer (`first`
/// is `None`) counts as arriving, and generated, in one piece at its end.
pub fn answer_times(
    started: std::time::Instant,
    first: Option<std::time::Instant>,
    ended: std::time::Instant,
) -> (u32, u32) {
    let ms = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let whole = ended.saturating_duration_since(started);
    match first {
        Some(first) => (
            ms(first.saturating_duration_since(started)),
            ms(ended.saturating_duration_since(first)),
        ),
        None => (ms(whole), ms(whole)),
    }
}

/// Who an AI answer is for: the client's request and route, and the
/// version of the call's split that serves it, for the answer's headers.
#[derive(Debug, Clone)]
pub struct AnswerFor<'a> {
    /// The request's id.
    pub request_id: &'a str,
    /// The route's name.
    pub route: &'a str,
    /// The split's version, once the splitter picked it.
    pub version: Option<Arc<str>>,
}

/// The version of a split AI call (a model alias with versions, a prompt
/// template), as the splitter picked it.
#[derive(Debug, Clone)]
pub struct PickedVersion {
    /// The route's index.
    pub route: u32,
    /// The split's service.
    pub service: String,
    /// The version and target picked.
    pub upstream: Upstream,
    /// The version's name.
    pub version: Arc<str>,
}

impl PickedVersion {
    /// The version's first try, for the splitter's `report`: it ended with
    /// `outcome`, having started at `started`.
    pub fn first_try(&self, outcome: Outcome, started: Instant) -> UpstreamAttempt {
        UpstreamAttempt {
            upstream: self.upstream,
            outcome,
            latency_ms: crate::clock::millis_since(started),
        }
    }
}

/// What an AI call's answers cost, as the AI component counted them (its
/// `answered` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spent {
    /// Cost in billionths of a US dollar.
    pub nano_usd: u64,
    /// Whether an answer was counted (a success).
    pub counted: bool,
    /// The last answer's prompt tokens.
    pub input_tokens: u64,
    /// The last answer's output tokens.
    pub output_tokens: u64,
    /// Whether the last answer was a refusal.
    pub refused: bool,
}

impl Spent {
    /// The tokens and cost for the request's log line: of a counted answer.
    pub fn usage(&self) -> Option<AiUsage> {
        self.counted
            .then(|| AiUsage::new(self.input_tokens, self.output_tokens, self.nano_usd))
    }

    /// What the call came to, for the splitter's judgement of the version
    /// that served it (`splitter.report-answer`): it started at `started`
    /// and sent its first bytes at `first` (`None`: a whole answer), ending
    /// now.
    pub fn answer(&self, started: Instant, first: Option<Instant>) -> AiAnswer {
        let (ttft_ms, generation_ms) = answer_times(started, first, Instant::now());
        AiAnswer {
            nano_usd: self.nano_usd,
            counted: self.counted,
            ttft_ms,
            generation_ms,
            output_tokens: self.output_tokens,
            refused: self.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_times_split_at_the_first_bytes() {
        let started = std::time::Instant::now();
        let at = |ms| started + std::time::Duration::from_millis(ms);
        assert_eq!(
            answer_times(started, Some(at(300)), at(1_300)),
            (300, 1_000)
        );
        assert_eq!(answer_times(started, None, at(800)), (800, 800));
    }

    #[test]
    fn keys_go_in_their_header_with_their_prefix() {
        let credential = Credential {
            variable: "openai_api_key",
            header: "authorization",
            prefix: "Bearer ",
        };
        let planned = [("content-type".to_owned(), "application/json".to_owned())];
        let headers = provider_headers(&planned, "rid", "openai", Some(credential), |v| {
            (v == "openai_api_key").then(|| "sk-1".to_owned())
        })
        .unwrap();
        assert_eq!(
            headers,
            [
                ("content-type".to_owned(), b"application/json".to_vec()),
                ("x-request-id".to_owned(), b"rid".to_vec()),
                ("authorization".to_owned(), b"Bearer sk-1".to_vec()),
            ]
        );
        let missing = provider_headers(&planned, "rid", "openai", Some(credential), |_| {
            Some(String::new())
        })
        .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "the key of provider openai is not set: give the variable `openai_api_key` a value"
        );
    }

    #[test]
    fn only_successful_event_streams_stream() {
        let sse = Some(&b"text/event-stream; charset=utf-8"[..]);
        assert!(streams(true, 200, sse));
        assert!(!streams(false, 200, sse));
        assert!(!streams(true, 429, sse));
        assert!(!streams(true, 200, Some(b"application/json")));
        assert!(!streams(true, 200, None));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after_s(Some(b" 3 ")), Some(3));
        assert_eq!(retry_after_s(Some(b"Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after_s(None), None);
    }
}

//! Cached answers: where a call's answer is kept, and its encoding in the
//! store.

use super::{Call, ProviderRequest, Reply};
use crate::best_effort::BestEffort;

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

impl Call {
    /// Caches a successful `reply` when the cache is on, and says so.
    pub(super) fn keep(
        &self,
        attempt: &ProviderRequest,
        mut reply: Reply,
        store: &BestEffort<'_>,
    ) -> Reply {
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
}

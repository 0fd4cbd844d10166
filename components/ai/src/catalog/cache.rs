//! Cached answers: the request's `cache-control` directives, the key an
//! answer is cached under, and the lookup before a call.

use serde_json::Value;
use sha2::{Digest, Sha256};
use upshift_model::ai::usage_keys;

use super::plan::CallShape;
use super::{Catalog, Incoming};
use crate::best_effort::BestEffort;
use crate::call::{CacheSlot, Cached, Caller, Reply};

/// Where a cacheable call's answer goes, and the `x-upshift-cache` header
/// of its answer.
pub(super) type Slot = (Option<CacheSlot>, Option<&'static str>);

impl Catalog {
    /// The cached answer to `request`, when the cache holds one (its hit
    /// counted); else where the call's answer is to be cached, if anywhere.
    pub(super) fn cached(
        &self,
        setup: &CallShape<'_>,
        request: &Incoming<'_>,
        caller: &Caller,
        store: &BestEffort<'_>,
    ) -> Result<Slot, Reply> {
        Ok(match self.cache_ttl_ms {
            Some(ttl_ms) if !setup.stream => {
                let directives = cache_directives(request.headers);
                if directives.no_store {
                    (None, Some("bypass"))
                } else {
                    let digest = cache_digest(setup.cache_scope, caller, request.body);
                    let key = usage_keys::cache(&digest);
                    if !directives.no_cache
                        && let Some(cached) = store.get(&key).and_then(|v| Cached::decode(&v))
                        && cached.expires_ms > request.now_ms
                    {
                        let counted = usage_keys::usage(
                            caller.tenant.as_deref(),
                            caller.consumer.as_deref(),
                            &cached.alias,
                            usage_keys::CACHE_HITS,
                        );
                        store.add(&counted, 1);
                        return Err(cached.reply());
                    }
                    (Some(CacheSlot { key, ttl_ms }), Some("miss"))
                }
            }
            _ => (None, None),
        })
    }
}

/// The `cache-control` directives the cache follows.
#[derive(Debug, Default)]
struct CacheDirectives {
    no_store: bool,
    no_cache: bool,
}

fn cache_directives(headers: &[(String, String)]) -> CacheDirectives {
    let mut directives = CacheDirectives::default();
    for (_, value) in headers.iter().filter(|(name, _)| name == "cache-control") {
        for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
            match directive.as_str() {
                "no-store" => directives.no_store = true,
                "no-cache" => directives.no_cache = true,
                _ => {}
            }
        }
    }
    directives
}

/// What identifies a cacheable request: its endpoint (the client's dialect,
/// embeddings, or prompt) and the alias its rules chose (or the prompt),
/// its tenant (answers are not shared between tenants), and its body with
/// object keys sorted and whitespace dropped; SHA-256 in hex.
fn cache_digest(scope: [&str; 2], caller: &Caller, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in scope {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(caller.tenant.as_deref().unwrap_or("~").as_bytes());
    hasher.update([0]);
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => write_sorted(&value, &mut hasher),
        Err(_) => hasher.update(body),
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `value` as compact JSON with object keys in sorted order.
fn write_sorted(value: &Value, hasher: &mut Sha256) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            hasher.update(b"{");
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                hasher.update(Value::String(key.clone()).to_string().as_bytes());
                hasher.update(b":");
                write_sorted(value, hasher);
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    hasher.update(b",");
                }
                write_sorted(item, hasher);
            }
            hasher.update(b"]");
        }
        other => hasher.update(other.to_string().as_bytes()),
    }
}

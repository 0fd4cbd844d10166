//! A rollout's webhooks: the calls it makes to a team's own systems, as
//! Flagger makes them.
//!
//! Gates ([`HookKind::PreRollout`], [`HookKind::ConfirmStep`],
//! [`HookKind::ConfirmPromotion`]) hold the rollout until every hook of
//! their kind answers 2xx. Notifications ([`HookKind::Event`],
//! [`HookKind::Rollback`], [`HookKind::PostRollout`]) are told what
//! happened, once per transition. Bodies are JSON, signed with HMAC-SHA256
//! when the hook names a secret (see [`signature`]).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::Problem;
use crate::ai::is_variable_name;
use crate::rollout::Phase;

/// The header carrying a body's signature: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "upshift-signature";
/// The header naming the delivery: the same for every retry of one call,
/// so that a receiver can drop duplicates.
pub const DELIVERY_HEADER: &str = "upshift-delivery";
/// The header naming the hook's kind (`confirm_step`, `rollback`, …).
pub const KIND_HEADER: &str = "upshift-hook";

/// One webhook of a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Names it in the status and the audit trail; unique in the rollout.
    pub name: String,
    /// When it is called.
    #[serde(rename = "type")]
    pub kind: HookKind,
    /// Where the JSON body is posted: an `http` or `https` URL.
    pub url: String,
    /// How long one attempt may take.
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout",
        with = "crate::rollout::duration_text"
    )]
    pub timeout: Duration,
    /// Attempts after the first when the receiver cannot be reached,
    /// times out, or answers 429 or 5xx.
    #[serde(
        default = "default_retries",
        skip_serializing_if = "is_default_retries"
    )]
    pub retries: u32,
    /// The wait before the first retry, doubled before each next one.
    #[serde(
        default = "default_backoff",
        skip_serializing_if = "is_default_backoff",
        with = "crate::rollout::duration_text"
    )]
    pub backoff: Duration,
    /// What a gate does when the hook fails (after its retries): `hold`
    /// asks again at the next analysis interval (confirm hooks' default),
    /// `rollback` rolls the rollout back (a pre-rollout hook's default),
    /// `ignore` lets the gate pass. A notification that fails is dropped
    /// after its retries and recorded: `ignore` is its only policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
    /// The variable holding the HMAC key the body is signed with; no
    /// signature when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_variable: Option<String>,
    /// Passed on in the body, as `metadata`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// When a webhook is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookKind {
    /// Before the canary takes any traffic; the rollout waits for it.
    PreRollout,
    /// Before each move to the next step, once the step has passed (and at
    /// a manual step, whose operator it can stand in for).
    ConfirmStep,
    /// Before the promotion that follows the last step.
    ConfirmPromotion,
    /// Once the rollout is promoted, rolled back or aborted.
    PostRollout,
    /// Once the rollout is rolled back or aborted.
    Rollback,
    /// At every transition.
    Event,
}

impl HookKind {
    /// Its name, as written in a plan.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::PreRollout => "pre_rollout",
            HookKind::ConfirmStep => "confirm_step",
            HookKind::ConfirmPromotion => "confirm_promotion",
            HookKind::PostRollout => "post_rollout",
            HookKind::Rollback => "rollback",
            HookKind::Event => "event",
        }
    }

    /// Whether the rollout waits for hooks of this kind.
    pub fn is_gate(self) -> bool {
        matches!(
            self,
            HookKind::PreRollout | HookKind::ConfirmStep | HookKind::ConfirmPromotion
        )
    }

    /// Whether a notification of this kind is due for a transition to
    /// `phase`.
    pub fn notifies(self, phase: Phase) -> bool {
        match self {
            HookKind::Event => true,
            HookKind::Rollback => matches!(phase, Phase::RolledBack | Phase::Aborted),
            HookKind::PostRollout => {
                matches!(phase, Phase::Promoted | Phase::RolledBack | Phase::Aborted)
            }
            _ => false,
        }
    }
}

/// What a failed gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Wait, and ask again at the next analysis interval.
    Hold,
    /// Roll the rollout back.
    Rollback,
    /// Pass the gate anyway.
    Ignore,
}

impl Webhook {
    /// What this hook's failure does.
    pub fn policy(&self) -> FailurePolicy {
        self.failure_policy.unwrap_or(match self.kind {
            HookKind::PreRollout => FailurePolicy::Rollback,
            HookKind::ConfirmStep | HookKind::ConfirmPromotion => FailurePolicy::Hold,
            _ => FailurePolicy::Ignore,
        })
    }

    /// The longest one call may take, retries and their waits included.
    pub fn budget(&self) -> Duration {
        let waits = (0..self.retries)
            .map(|n| self.backoff.saturating_mul(1 << n.min(16)))
            .fold(Duration::ZERO, Duration::saturating_add);
        self.timeout
            .saturating_mul(self.retries.saturating_add(1))
            .saturating_add(waits)
    }

    /// The wait before retry `n` (from 0).
    pub fn backoff_before(&self, n: u32) -> Duration {
        self.backoff.saturating_mul(1 << n.min(16))
    }
}

/// Checks a rollout's webhooks.
pub(crate) fn check(hooks: &[Webhook], problems: &mut Vec<Problem>) {
    for (i, hook) in hooks.iter().enumerate() {
        let at = |field: &str| format!("webhooks[{i}].{field}");
        if hook.name.is_empty() || hook.name.contains('/') {
            problems.push(Problem::new(
                at("name"),
                "must be a non-empty name without '/'",
            ));
        }
        if hooks[..i].iter().any(|h| h.name == hook.name) {
            problems.push(Problem::new(
                at("name"),
                format!("{:?} names two hooks", hook.name),
            ));
        }
        let scheme = hook.url.parse::<http::Uri>().ok().and_then(|uri| {
            uri.host()?;
            uri.scheme_str().map(str::to_owned)
        });
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            problems.push(Problem::new(
                at("url"),
                format!("{:?} is not an http or https URL", hook.url),
            ));
        }
        if hook.timeout.is_zero() {
            problems.push(Problem::new(at("timeout"), "must be at least 1ms"));
        }
        if hook.retries > 10 {
            problems.push(Problem::new(at("retries"), "must be 10 or fewer"));
        }
        if !hook.kind.is_gate()
            && hook
                .failure_policy
                .is_some_and(|p| p != FailurePolicy::Ignore)
        {
            problems.push(Problem::new(
                at("failure_policy"),
                format!(
                    "a {} hook only notifies: a failed call is dropped after its retries (ignore)",
                    hook.kind.name()
                ),
            ));
        }
        if let Some(variable) = &hook.secret_variable
            && !is_variable_name(variable)
        {
            problems.push(Problem::new(
                at("secret_variable"),
                format!("{variable:?} is not a variable name (lower case, digits and _)"),
            ));
        }
    }
}

/// The signature header's value for `body` sent at `unix_s` with `key`:
/// `t=<unix_s>,v1=<hex of HMAC-SHA256(key, "<unix_s>." + body)>`, as
/// Stripe signs its webhooks. The time is part of what is signed, so a
/// receiver can refuse old deliveries replayed.
pub fn signature(key: &[u8], unix_s: u64, body: &[u8]) -> String {
    format!("t={unix_s},v1={}", hex(&mac(key, unix_s, body)))
}

/// Whether `header` (a [`SIGNATURE_HEADER`] value) signs `body` with
/// `key`; returns the time it was signed at.
pub fn verify(key: &[u8], header: &str, body: &[u8]) -> Option<u64> {
    let mut unix_s = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => unix_s = t.parse().ok(),
            Some(("v1", sig)) => v1 = Some(sig),
            _ => {}
        }
    }
    let (unix_s, v1) = (unix_s?, v1?);
    let bytes = unhex(v1)?;
    let mut mac = keyed(key);
    mac.update(format!("{unix_s}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&bytes).ok().map(|()| unix_s)
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn mac(key: &[u8], unix_s: u64, body: &[u8]) -> Vec<u8> {
    let mut mac = keyed(key);
    mac.update(format!("{unix_s}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn is_default_timeout(d: &Duration) -> bool {
    *d == default_timeout()
}

fn default_retries() -> u32 {
    2
}

fn is_default_retries(n: &u32) -> bool {
    *n == default_retries()
}

fn default_backoff() -> Duration {
    Duration::from_millis(200)
}

fn is_default_backoff(d: &Duration) -> bool {
    *d == default_backoff()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(yaml: &str) -> Vec<Webhook> {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn signatures_verify_and_refuse_tampering() {
        let body = br#"{"event":"rollback"}"#;
        let header = signature(b"s3cret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_eq!(verify(b"s3cret", &header, body), Some(1_700_000_000));
        assert_eq!(verify(b"other", &header, body), None);
        assert_eq!(verify(b"s3cret", &header, b"{}"), None);
        let replayed = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(verify(b"s3cret", &replayed, body), None);
        assert_eq!(verify(b"s3cret", "v1=zz", body), None);
    }

    #[test]
    fn signature_matches_a_known_hmac() {
        // HMAC-SHA256("key", "0.The quick brown fox jumps over the lazy dog"),
        // computed with Python's hmac module.
        let header = signature(b"key", 0, b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            header,
            "t=0,v1=8511f28f7a1949f0c42772b447d68b2daf760f5f0439a20a17e3b4e7cd395763"
        );
    }

    #[test]
    fn policies_default_by_kind() {
        let list = hooks(
            "[{name: a, type: pre_rollout, url: 'http://127.0.0.1:1/a'},
              {name: b, type: confirm_step, url: 'http://127.0.0.1:1/b'},
              {name: c, type: rollback, url: 'http://127.0.0.1:1/c', retries: 1, backoff: 100ms, timeout: 1s}]",
        );
        assert_eq!(list[0].policy(), FailurePolicy::Rollback);
        assert_eq!(list[1].policy(), FailurePolicy::Hold);
        assert_eq!(list[2].policy(), FailurePolicy::Ignore);
        assert_eq!(list[2].budget(), Duration::from_millis(2_100));
        assert_eq!(list[0].backoff_before(2), Duration::from_millis(800));
        let mut problems = Vec::new();
        check(&list, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn bad_hooks_are_refused_by_field() {
        let list = hooks(
            "[{name: a, type: event, url: 'ftp://x/y', failure_policy: rollback},
              {name: a, type: confirm_step, url: 'http://127.0.0.1:1/', secret_variable: 'Not-A-Var', timeout: 0s}]",
        );
        let mut problems = Vec::new();
        check(&list, &mut problems);
        let fields: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            fields,
            [
                "webhooks[0].url",
                "webhooks[0].failure_policy",
                "webhooks[1].name",
                "webhooks[1].timeout",
                "webhooks[1].secret_variable",
            ]
        );
    }

    #[test]
    fn notifications_follow_the_phase() {
        assert!(HookKind::Event.notifies(Phase::Progressing));
        assert!(HookKind::Rollback.notifies(Phase::RolledBack));
        assert!(!HookKind::Rollback.notifies(Phase::Promoted));
        assert!(HookKind::PostRollout.notifies(Phase::Promoted));
        assert!(!HookKind::PostRollout.notifies(Phase::Paused));
        assert!(!HookKind::ConfirmStep.notifies(Phase::Progressing));
    }
}

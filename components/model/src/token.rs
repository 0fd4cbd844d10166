//! Secrets a caller presents: the admin API's bearer tokens and consumers'
//! API keys. Each is configured as itself, or as its digest (`sha256:` and
//! 64 lower-case hex digits), so that what a deployment keeps is not the
//! secret.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The prefix of a token's digest.
const DIGEST_PREFIX: &str = "sha256:";

/// The digest of `token`, as a token variable may hold it.
pub fn digest(token: &str) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(DIGEST_PREFIX.len() + 64);
    text.push_str(DIGEST_PREFIX);
    for byte in Sha256::digest(token.as_bytes()) {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Whether `text` is a token's digest.
pub fn is_digest(text: &str) -> bool {
    text.strip_prefix(DIGEST_PREFIX).is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether the token a caller `presented` is the one `expected` (itself,
/// or its digest), compared in time independent of where they differ. An
/// empty `expected` token (not configured) matches nothing.
pub fn matches(presented: &str, expected: &str) -> bool {
    if is_digest(expected) {
        return same(digest(presented).as_bytes(), expected.as_bytes());
    }
    !expected.is_empty() && same(presented.as_bytes(), expected.as_bytes())
}

/// An API key issued to a consumer through the admin API, kept by its
/// digest (see [`crate::keys::issued_key`]): the key itself is never sent
/// to the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedKey {
    /// Its id: the first 16 hex digits of its digest.
    pub id: String,
    /// The consumer it identifies (one of the config's).
    pub consumer: String,
    /// When it was issued, in Unix milliseconds.
    pub created_at_ms: u64,
    /// When it stops working, in Unix milliseconds (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl IssuedKey {
    /// The id of the key whose digest is `digest`.
    pub fn id_of(digest: &str) -> String {
        let hex = digest.strip_prefix(DIGEST_PREFIX).unwrap_or(digest);
        hex.chars().take(16).collect()
    }

    /// Whether it still works at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| now_ms < at)
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a caller may do with the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: no admin token is configured, so the admin API is closed.
    Closed,
    /// Nothing: no token, or a wrong one.
    None,
    /// Read: the read-only token.
    Read,
    /// Everything: the admin token.
    Full,
}

impl Access {
    /// The access the `authorization` header value `header` grants, given
    /// the admin token `full` and the read-only token `read` (each itself
    /// or its digest).
    pub fn granted(header: Option<&str>, full: &str, read: &str) -> Access {
        if full.is_empty() {
            return Access::Closed;
        }
        let Some(presented) = header
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
        else {
            return Access::None;
        };
        if matches(presented, full) {
            Access::Full
        } else if matches(presented, read) {
            Access::Read
        } else {
            Access::None
        }
    }

    /// Whether it allows a request with `method` (reads: GET and HEAD).
    pub fn allows(self, method: &str) -> bool {
        match self {
            Access::Full => true,
            Access::Read => matches!(method, "GET" | "HEAD"),
            Access::None | Access::Closed => false,
        }
    }

    /// Whether the caller is known: its writes are audited.
    pub fn is_known(self) -> bool {
        matches!(self, Access::Read | Access::Full)
    }

    /// Why a request with this access is refused, if it is: status, code
    /// and message.
    pub fn refusal(self, method: &str) -> Option<(u16, &'static str, &'static str)> {
        match self {
            Access::Closed => Some((
                403,
                "admin_closed",
                "no admin token is configured (the `admin_token` variable), so the admin API is closed",
            )),
            Access::None => Some((
                401,
                "unauthorized",
                "send the admin token as `authorization: Bearer <token>`",
            )),
            _ if !self.allows(method) => Some((
                403,
                "forbidden",
                "the read-only token cannot change anything",
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_never_when_unset() {
        assert!(matches("secret", "secret"));
        assert!(!matches("secret", "secreT"));
        assert!(!matches("secret", "secret2"));
        assert!(!matches("", ""));
    }

    #[test]
    fn a_digest_matches_its_token_only() {
        let kept = digest("secret");
        assert_eq!(
            kept,
            "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
        assert!(is_digest(&kept));
        assert!(matches("secret", &kept));
        assert!(!matches(&kept, &kept));
        assert!(!matches("secret2", &kept));
        assert!(!is_digest("sha256:2bb8"));
        assert!(!is_digest(&kept.to_uppercase()));
        // Not a digest: compared as a token.
        assert!(matches("sha256:2bb8", "sha256:2bb8"));
    }

    #[test]
    fn the_read_only_token_reads() {
        let granted = |header| Access::granted(header, "full", "read");
        assert_eq!(granted(Some("Bearer full")), Access::Full);
        assert_eq!(granted(Some("Bearer read ")), Access::Read);
        assert_eq!(granted(Some("Bearer other")), Access::None);
        assert_eq!(granted(Some("Basic full")), Access::None);
        assert_eq!(granted(None), Access::None);
        assert_eq!(Access::granted(Some("Bearer "), "full", ""), Access::None);
        assert!(Access::Read.allows("GET") && !Access::Read.allows("PUT"));
        assert!(Access::Full.allows("DELETE") && !Access::None.allows("GET"));
    }

    #[test]
    fn without_an_admin_token_the_api_is_closed() {
        let closed = Access::granted(Some("Bearer "), "", "read");
        assert_eq!(closed, Access::Closed);
        assert_eq!(
            Access::granted(Some("Bearer read"), "", "read"),
            Access::Closed
        );
        assert_eq!(closed.refusal("GET").map(|r| r.0), Some(403));
        assert_eq!(Access::None.refusal("GET").map(|r| r.0), Some(401));
        assert_eq!(Access::Read.refusal("PUT").map(|r| r.1), Some("forbidden"));
        assert_eq!(Access::Read.refusal("GET"), None);
    }
}

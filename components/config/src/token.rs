//! Bearer tokens of the admin API.

/// Whether the token a caller `presented` is `expected`, compared in time
/// independent of where they differ. An empty `expected` token (not
/// configured) matches nothing.
pub fn matches(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    !b.is_empty()
        && a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What a caller may do with the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: no token, or a wrong one.
    None,
    /// Read: the read-only token.
    Read,
    /// Everything: the admin token.
    Full,
}

impl Access {
    /// The access the `authorization` header value `header` grants, given
    /// the admin token `full` and the read-only token `read`.
    pub fn granted(header: Option<&str>, full: &str, read: &str) -> Access {
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
            Access::None => false,
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
}

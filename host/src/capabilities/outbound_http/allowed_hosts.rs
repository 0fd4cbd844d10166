//! `allowed_outbound_hosts`, in Spin's syntax: which schemes, hosts and
//! ports a component may send requests to.

/// An invalid `allowed_outbound_hosts` entry.
#[derive(Debug, thiserror::Error)]
#[error("invalid allowed_outbound_hosts entry `{entry}`: {reason}")]
pub struct AllowedHostError {
    entry: String,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: any subdomain (not the apex).
    Subdomain(String),
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

/// The set of hosts a component may call.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    rules: Vec<HostRule>,
}

impl AllowedHosts {
    /// Parses manifest entries such as `https://*.example.com`, `http://localhost:*`,
    /// `http://127.0.0.1:8000..8080` or `*://*:*`.
    pub fn parse(entries: &[String]) -> Result<Self, AllowedHostError> {
        let rules = entries
            .iter()
            .map(|entry| {
                parse_rule(entry).map_err(|reason| AllowedHostError {
                    entry: entry.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Some(port) = uri
            .port_u16()
            .or_else(|| default_port(&scheme.to_ascii_lowercase()))
        else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.rules.iter().any(|rule| {
            let scheme_ok = match &rule.scheme {
                SchemePattern::Any => true,
                SchemePattern::Exact(s) => s.eq_ignore_ascii_case(scheme),
            };
            let host_ok = match &rule.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
                HostPattern::Subdomain(suffix) => {
                    let (host, suffix) = (host.as_bytes(), suffix.as_bytes());
                    host.len() > suffix.len()
                        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                }
            };
            let port_ok = match rule.port {
                PortPattern::Any => true,
                PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
            };
            scheme_ok && host_ok && port_ok
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn parse_rule(entry: &str) -> Result<HostRule, &'static str> {
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or("expected `scheme://host[:port]`")?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "*" => SchemePattern::Any,
        s @ ("http" | "https") => SchemePattern::Exact(s.to_owned()),
        _ => return Err("scheme must be `http`, `https` or `*`"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err("paths are not allowed");
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("unterminated IPv6 address")?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err("missing host");
    }
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return Err("invalid wildcard host");
        }
        HostPattern::Subdomain(format!(".{suffix}"))
    } else if host.contains('*') {
        return Err("wildcards are only allowed as `*` or a leading `*.`");
    } else {
        HostPattern::Exact(host)
    };
    let port = match port {
        Some("*") => PortPattern::Any,
        Some(port) => match port.split_once("..") {
            Some((lo, hi)) => {
                let lo = lo.parse().map_err(|_| "invalid port range")?;
                let hi = hi.parse().map_err(|_| "invalid port range")?;
                if lo > hi {
                    return Err("invalid port range");
                }
                PortPattern::Range(lo, hi)
            }
            None => {
                let port = port.parse().map_err(|_| "invalid port")?;
                PortPattern::Range(port, port)
            }
        },
        None => match &scheme {
            SchemePattern::Exact(s) => {
                let port = default_port(s).ok_or("missing port")?;
                PortPattern::Range(port, port)
            }
            SchemePattern::Any => return Err("a port is required with scheme `*`"),
        },
    };
    Ok(HostRule { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(entries: &[&str], uri: &str) -> bool {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&entries)
            .unwrap()
            .allows(&uri.parse().unwrap())
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        assert!(allows(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8080/x"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8080"],
            "http://127.0.0.1:8081/x"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8080"],
            "https://127.0.0.1:8080/x"
        ));
        assert!(allows(
            &["https://api.openai.com"],
            "https://api.openai.com/v1"
        ));
        assert!(!allows(
            &["https://api.openai.com"],
            "https://api.openai.com:8443/v1"
        ));
        assert!(!allows(&["https://api.openai.com"], "https://evil.com/"));
    }

    #[test]
    fn wildcards() {
        assert!(allows(&["http://localhost:*"], "http://localhost:1234/"));
        assert!(allows(&["http://localhost:*"], "http://localhost/"));
        assert!(allows(
            &["https://*.example.com"],
            "https://a.b.example.com/"
        ));
        assert!(!allows(&["https://*.example.com"], "https://example.com/"));
        assert!(!allows(
            &["https://*.example.com"],
            "https://badexample.com/"
        ));
        assert!(allows(
            &["https://*.example.com"],
            "https://API.Example.COM/"
        ));
        assert!(allows(&["http://Upstream:8080"], "http://upstream:8080/"));
        assert!(allows(&["http://*:*"], "http://anything:9/"));
        assert!(!allows(&["http://*:*"], "https://anything:9/"));
        assert!(allows(&["*://*:*"], "https://anything:9/"));
        assert!(allows(
            &["http://127.0.0.1:8000..8010"],
            "http://127.0.0.1:8005/"
        ));
        assert!(!allows(
            &["http://127.0.0.1:8000..8010"],
            "http://127.0.0.1:8011/"
        ));
        assert!(allows(&["http://[::1]:80"], "http://[::1]/"));
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!allows(&[], "http://127.0.0.1/"));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "example.com",
            "ftp://x",
            "*://x",
            "http://a*b.com",
            "http://x:port",
            "http://x/path",
            "http://x:9..1",
        ] {
            assert!(AllowedHosts::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }
}

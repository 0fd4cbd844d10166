//! What the splitter reads from a request: its caller, cookies, the value
//! a sticky or hash key names, and whether a match rule's conditions hold.

use upshift_model::{Match, RequestHead, RequestKey};

/// Who the auth component identified the request as: the consumer's
/// name, tenant and tags, as match rules and sticky keys read them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerIdentity {
    /// Consumer name.
    pub id: String,
    /// Tenant, if the config groups consumers.
    pub tenant: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
}

/// The value of cookie `name`, from any `cookie` header.
pub(crate) fn cookie<'h>(head: &RequestHead<'h>, name: &str) -> Option<&'h str> {
    head.header_values("cookie")
        .find_map(|v| cookie_in(v, name))
}

/// The value of cookie `name` in one `cookie` header value
/// (`a=1; b="2"`), without quotes.
fn cookie_in<'v>(header: &'v str, name: &str) -> Option<&'v str> {
    let bytes = header.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b';')
            .map_or(bytes.len(), |n| start + n);
        // `;` and whitespace are ASCII, so these are char boundaries.
        let pair = header[start..end].trim_ascii_start();
        if let Some(value) = Some(pair)
            .filter(|p| p.as_bytes().first() == name.as_bytes().first())
            .and_then(|p| p.strip_prefix(name))
            .and_then(|after| after.trim_ascii_start().strip_prefix('='))
        {
            let value = value.trim_ascii();
            return Some(
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value),
            );
        }
        start = end + 1;
    }
    None
}

/// The value `key` names in this request, if present and not empty.
pub(crate) fn key_value<'a>(
    key: &RequestKey,
    head: &RequestHead<'a>,
    consumer: Option<&'a ConsumerIdentity>,
) -> Option<&'a str> {
    let value = match key {
        RequestKey::Consumer => consumer.map(|c| c.id.as_str()),
        RequestKey::ClientIp => head.client_ip(),
        RequestKey::Header(name) => head.header(name),
        RequestKey::Cookie(name) => cookie(head, name),
    };
    value.filter(|v| !v.is_empty())
}

/// The conditions of a match rule, compiled to flat lists.
#[derive(Debug)]
pub(crate) struct Conditions {
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    query: Vec<(String, String)>,
    consumers: Vec<String>,
    tenants: Vec<String>,
    tags: Vec<String>,
}

impl From<&Match> for Conditions {
    fn from(rule: &Match) -> Self {
        let pairs = |map: &std::collections::BTreeMap<String, String>| {
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        Conditions {
            headers: pairs(&rule.headers),
            cookies: pairs(&rule.cookies),
            query: pairs(&rule.query),
            consumers: rule.consumers.clone(),
            tenants: rule.tenants.clone(),
            tags: rule.tags.clone(),
        }
    }
}

impl Conditions {
    /// Whether every condition holds for this request: each header, cookie
    /// and query parameter has its value; the consumer is one of
    /// `consumers`, of one of `tenants`, with one of `tags`.
    pub(crate) fn hold(&self, head: &RequestHead<'_>, consumer: Option<&ConsumerIdentity>) -> bool {
        self.headers
            .iter()
            .all(|(name, want)| head.header_values(name).any(|v| v == want))
            && self
                .cookies
                .iter()
                .all(|(name, want)| cookie(head, name) == Some(want.as_str()))
            && self
                .query
                .iter()
                .all(|(name, want)| head.query_param(name) == Some(want.as_str()))
            && (self.consumers.is_empty()
                || consumer.is_some_and(|c| self.consumers.contains(&c.id)))
            && (self.tenants.is_empty()
                || consumer
                    .and_then(|c| c.tenant.as_ref())
                    .is_some_and(|t| self.tenants.contains(t)))
            && (self.tags.is_empty()
                || consumer.is_some_and(|c| c.tags.iter().any(|t| self.tags.contains(t))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead<'static> {
        let line = upshift_model::HeadLine {
            query,
            client_ip: Some("203.0.113.7"),
            ..upshift_model::HeadLine::default()
        };
        upshift_model::OwnedHead::new(&line, headers).leak()
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let h = head(&[("cookie", "a=1; b=\"two\""), ("cookie", "c=3")], None);
        assert_eq!(cookie(&h, "b"), Some("two"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "d"), None);
        assert_eq!(cookie(&h, "\"two\""), None);
        let spaced = head(&[("cookie", "ab=0;a = 1 ;c=")], None);
        assert_eq!(cookie(&spaced, "a"), Some("1"));
        assert_eq!(cookie(&spaced, "c"), Some(""));
        assert_eq!(cookie(&spaced, "b"), None);
    }

    #[test]
    fn keys_read_their_part_of_the_request() {
        let h = head(
            &[("x-user", "u1"), ("cookie", "s=abc"), ("x-empty", "")],
            None,
        );
        let alice = ConsumerIdentity {
            id: "alice".into(),
            ..ConsumerIdentity::default()
        };
        assert_eq!(
            key_value(&RequestKey::Consumer, &h, Some(&alice)),
            Some("alice")
        );
        assert_eq!(key_value(&RequestKey::Consumer, &h, None), None);
        assert_eq!(
            key_value(&RequestKey::ClientIp, &h, None),
            Some("203.0.113.7")
        );
        assert_eq!(
            key_value(&RequestKey::Header("x-user".into()), &h, None),
            Some("u1")
        );
        assert_eq!(
            key_value(&RequestKey::Header("x-empty".into()), &h, None),
            None
        );
        assert_eq!(
            key_value(&RequestKey::Cookie("s".into()), &h, None),
            Some("abc")
        );
    }

    #[test]
    fn every_condition_must_hold() {
        let rule = Match {
            headers: [("x-beta".to_owned(), "1".to_owned())].into(),
            query: [("v".to_owned(), "2".to_owned())].into(),
            tags: vec!["beta".into(), "staff".into()],
            ..Match::default()
        };
        let staff = ConsumerIdentity {
            id: "bob".into(),
            tenant: Some("acme".into()),
            tags: vec!["staff".into()],
        };
        let h = head(&[("x-beta", "0"), ("x-beta", "1")], Some("a=b&v=2"));
        let rule = Conditions::from(&rule);
        assert!(rule.hold(&h, Some(&staff)));
        assert!(!rule.hold(&h, None), "tags need a consumer");
        assert!(!rule.hold(&head(&[("x-beta", "1")], Some("v=3")), Some(&staff)));
        let tenants = Match {
            tenants: vec!["acme".into()],
            consumers: vec!["bob".into()],
            ..Match::default()
        };
        let tenants = Conditions::from(&tenants);
        assert!(tenants.hold(&head(&[], None), Some(&staff)));
        let other = ConsumerIdentity {
            tenant: None,
            ..staff
        };
        assert!(!tenants.hold(&head(&[], None), Some(&other)));
    }
}

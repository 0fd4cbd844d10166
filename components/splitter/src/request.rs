//! What the splitter reads from a request: its caller, cookies, the value
//! a sticky or hash key names, and whether a match rule holds.

use upshift_config::{Match, RequestHead, RequestKey};

/// The caller the auth component identified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consumer {
    /// Consumer name.
    pub id: String,
    /// Tenant, if the config groups consumers.
    pub tenant: Option<String>,
    /// Labels.
    pub tags: Vec<String>,
}

/// The value of cookie `name`, from any `cookie` header.
pub(crate) fn cookie<'h>(head: &'h RequestHead, name: &str) -> Option<&'h str> {
    head.headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
}

/// The value `key` names in this request, if present and not empty.
pub(crate) fn key_value<'a>(
    key: &RequestKey,
    head: &'a RequestHead,
    consumer: Option<&'a Consumer>,
) -> Option<&'a str> {
    let value = match key {
        RequestKey::Consumer => consumer.map(|c| c.id.as_str()),
        RequestKey::ClientIp => head.client_ip.as_deref(),
        RequestKey::Header(name) => head.header(name),
        RequestKey::Cookie(name) => cookie(head, name),
    };
    value.filter(|v| !v.is_empty())
}

/// Whether every condition of `rule` holds for this request.
pub(crate) fn matches(rule: &Match, head: &RequestHead, consumer: Option<&Consumer>) -> bool {
    let headers = rule
        .headers
        .iter()
        .all(|(name, want)| head.headers.iter().any(|(n, v)| n == name && v == want));
    let cookies = || {
        rule.cookies
            .iter()
            .all(|(name, want)| cookie(head, name) == Some(want.as_str()))
    };
    let query = || {
        rule.query
            .iter()
            .all(|(name, want)| head.query_param(name) == Some(want.as_str()))
    };
    let consumers =
        || rule.consumers.is_empty() || consumer.is_some_and(|c| rule.consumers.contains(&c.id));
    let tenants = || {
        rule.tenants.is_empty()
            || consumer
                .and_then(|c| c.tenant.as_ref())
                .is_some_and(|t| rule.tenants.contains(t))
    };
    let tags = || {
        rule.tags.is_empty()
            || consumer.is_some_and(|c| c.tags.iter().any(|t| rule.tags.contains(t)))
    };
    headers && cookies() && query() && consumers() && tenants() && tags()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead {
        RequestHead {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            query: query.map(str::to_owned),
            client_ip: Some("203.0.113.7".into()),
            ..RequestHead::default()
        }
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let h = head(&[("cookie", "a=1; b=\"two\""), ("cookie", "c=3")], None);
        assert_eq!(cookie(&h, "b"), Some("two"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "d"), None);
    }

    #[test]
    fn keys_read_their_part_of_the_request() {
        let h = head(
            &[("x-user", "u1"), ("cookie", "s=abc"), ("x-empty", "")],
            None,
        );
        let alice = Consumer {
            id: "alice".into(),
            ..Consumer::default()
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
        let staff = Consumer {
            id: "bob".into(),
            tenant: Some("acme".into()),
            tags: vec!["staff".into()],
        };
        let h = head(&[("x-beta", "0"), ("x-beta", "1")], Some("a=b&v=2"));
        assert!(matches(&rule, &h, Some(&staff)));
        assert!(!matches(&rule, &h, None), "tags need a consumer");
        assert!(!matches(
            &rule,
            &head(&[("x-beta", "1")], Some("v=3")),
            Some(&staff)
        ));
        let tenants = Match {
            tenants: vec!["acme".into()],
            consumers: vec!["bob".into()],
            ..Match::default()
        };
        assert!(matches(&tenants, &head(&[], None), Some(&staff)));
        let other = Consumer {
            tenant: None,
            ..staff
        };
        assert!(!matches(&tenants, &head(&[], None), Some(&other)));
    }
}

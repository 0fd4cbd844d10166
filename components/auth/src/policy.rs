//! API-key authentication per route.

use std::collections::HashMap;
use upshift_config::{ApiKeyAuth, Config, Consumer, RequestHead};

/// Why a request was refused: rendered by the gateway as a JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The route needs credentials and none were sent.
    #[error("this route requires an API key")]
    MissingCredentials,
    /// The credentials sent belong to no consumer.
    #[error("the API key is not valid")]
    InvalidApiKey,
}

impl Denial {
    /// HTTP status to answer with.
    pub fn status(&self) -> u16 {
        401
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingCredentials => "missing_credentials",
            Denial::InvalidApiKey => "invalid_api_key",
        }
    }

    /// The `www-authenticate` challenge to send with the error.
    pub fn challenge(&self) -> &'static str {
        "ApiKey realm=\"upshift\""
    }
}

/// Consumers and route auth settings of one config version.
#[derive(Debug, Default)]
pub struct Policy {
    consumers: Vec<Consumer>,
    /// API key → index into `consumers`.
    keys: HashMap<String, usize>,
    /// Route name → where that route reads API keys from.
    routes: HashMap<String, ApiKeyAuth>,
}

impl Policy {
    /// Compiles the consumers and route auth settings of `config`.
    pub fn new(config: &Config) -> Self {
        let keys = config
            .consumers
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.api_keys.iter().map(move |k| (k.clone(), i)))
            .collect();
        let routes = config
            .routes
            .iter()
            .filter_map(|r| {
                let key = r.auth.as_ref()?.api_key.as_ref()?;
                Some((r.name.clone(), key.clone()))
            })
            .collect();
        Policy {
            consumers: config.consumers.clone(),
            keys,
            routes,
        }
    }

    /// The consumer `head` authenticates as on `route`: `None` for public
    /// routes, an error when the route needs credentials that are missing or
    /// unknown.
    pub fn authenticate(
        &self,
        route: &str,
        head: &RequestHead,
    ) -> Result<Option<&Consumer>, Denial> {
        let Some(settings) = self.routes.get(route) else {
            return Ok(None);
        };
        let key = presented_key(settings, head).ok_or(Denial::MissingCredentials)?;
        let index = self.keys.get(key).ok_or(Denial::InvalidApiKey)?;
        Ok(Some(&self.consumers[*index]))
    }
}

/// The key sent in the configured header (a bearer token for
/// `authorization`) or query parameter.
fn presented_key<'h>(settings: &ApiKeyAuth, head: &'h RequestHead) -> Option<&'h str> {
    let from_header = head.header(&settings.header).map(|value| {
        if settings.header == "authorization" {
            value.strip_prefix("Bearer ").unwrap_or(value).trim()
        } else {
            value.trim()
        }
    });
    from_header
        .filter(|k| !k.is_empty())
        .or_else(|| head.query_param(settings.query.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let config = Config::parse(
            r#"
services: [{ name: s, versions: [{ name: v, targets: [{ url: "http://a" }] }] }]
routes:
  - { name: open, service: s, paths: [/open] }
  - { name: keyed, service: s, auth: { api_key: { header: x-api-key, query: apikey } } }
  - { name: bearer, service: s, paths: [/b], auth: { api_key: { header: authorization } } }
consumers:
  - { name: alice, tenant: acme, api_keys: [alice-key-1, alice-key-2] }
  - { name: bob, api_keys: [bob-key-123] }
"#,
        )
        .expect("valid");
        Policy::new(&config)
    }

    fn head(headers: &[(&str, &str)], query: Option<&str>) -> RequestHead {
        RequestHead {
            headers: headers
                .iter()
                .map(|(n, v)| ((*n).into(), (*v).into()))
                .collect(),
            query: query.map(Into::into),
            ..RequestHead::default()
        }
    }

    #[test]
    fn public_routes_need_nothing() {
        assert_eq!(policy().authenticate("open", &head(&[], None)), Ok(None));
    }

    #[test]
    fn keys_identify_consumers() {
        let p = policy();
        let who =
            |h: &RequestHead, route| p.authenticate(route, h).map(|c| c.map(|c| c.name.clone()));
        assert_eq!(
            who(&head(&[("x-api-key", "alice-key-2")], None), "keyed"),
            Ok(Some("alice".into()))
        );
        assert_eq!(
            who(&head(&[], Some("a=1&apikey=bob-key-123")), "keyed"),
            Ok(Some("bob".into()))
        );
        assert_eq!(
            who(
                &head(&[("authorization", "Bearer bob-key-123")], None),
                "bearer"
            ),
            Ok(Some("bob".into()))
        );
    }

    #[test]
    fn missing_and_unknown_keys_are_refused() {
        let p = policy();
        assert_eq!(
            p.authenticate("keyed", &head(&[], None)),
            Err(Denial::MissingCredentials)
        );
        assert_eq!(
            p.authenticate("keyed", &head(&[("x-api-key", "nope-nope")], None)),
            Err(Denial::InvalidApiKey)
        );
        assert_eq!(
            p.authenticate("bearer", &head(&[("x-api-key", "alice-key-1")], None)),
            Err(Denial::MissingCredentials)
        );
    }
}

//! Authentication per route (API keys, JSON Web Tokens) and rate limits
//! per route and per consumer.

use crate::access::Access;
use crate::jwt::{self, Credentials, TokenError};
use crate::ratelimit::{self, Applied, Decision, Limit};
use crate::store::Store;
use std::collections::HashMap;
use upshift_model::jwks::{self, JwksRecord};
use upshift_model::token::{self, IssuedKey};
use upshift_model::{ApiKeyAuth, Config, Consumer, JwtAuth, RequestHead, keys};

/// The `www-authenticate` challenge of API-key routes.
const API_KEY_CHALLENGE: &str = "ApiKey realm=\"upshift\"";
/// The `www-authenticate` challenge of JWT routes without a token.
const BEARER_CHALLENGE: &str = "Bearer realm=\"upshift\"";
/// The `www-authenticate` challenge for a token that was refused (RFC 6750 §3).
const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"upshift\", error=\"invalid_token\"";

/// Why a request was refused: rendered by the gateway as a JSON error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// The route needs credentials and none were sent.
    #[error("this route requires {}", accepted(*.api_key, *.jwt))]
    MissingCredentials {
        /// The route accepts API keys.
        api_key: bool,
        /// The route accepts JSON Web Tokens.
        jwt: bool,
    },
    /// The credentials sent belong to no consumer.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// The token sent was refused. With [`TokenError::KeysWanted`] the
    /// caller fetches the key set and asks again (see
    /// [`upshift_model::jwks`]); unanswered, it is a 401 like the others.
    #[error("invalid token: {}", .0.reason())]
    InvalidToken(TokenError),
    /// A known (or anonymous) caller that the route's access lists keep
    /// out, or whose token lacks a scope or claim the route requires.
    #[error("{0}")]
    Forbidden(String),
    /// A rate limit was reached.
    #[error("rate limit of {} requests per {} s reached; retry in {} s", .0.limit, .0.window_s, .0.reset_s)]
    RateLimited(Decision),
}

fn accepted(api_key: bool, jwt: bool) -> &'static str {
    match (api_key, jwt) {
        (true, true) => "an API key or a bearer token",
        (false, true) => "a bearer token",
        _ => "an API key",
    }
}

impl Denial {
    /// HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Denial::RateLimited(_) => 429,
            Denial::Forbidden(_) => 403,
            _ => 401,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::MissingCredentials { .. } => "missing_credentials",
            Denial::InvalidApiKey => "invalid_api_key",
            Denial::InvalidToken(TokenError::KeysWanted(_)) => jwks::KEYS_WANTED,
            Denial::InvalidToken(_) => "invalid_token",
            Denial::RateLimited(_) => "rate_limited",
            Denial::Forbidden(_) => "forbidden",
        }
    }

    /// The response headers to send with the error: `www-authenticate`
    /// challenges, or the rate-limit fields and `retry-after`.
    pub fn headers(&self) -> Vec<(String, String)> {
        let challenge = |c: &str| ("www-authenticate".to_owned(), c.to_owned());
        match self {
            Denial::MissingCredentials { api_key, jwt } => {
                let mut headers = Vec::new();
                if *api_key || !*jwt {
                    headers.push(challenge(API_KEY_CHALLENGE));
                }
                if *jwt {
                    headers.push(challenge(BEARER_CHALLENGE));
                }
                headers
            }
            Denial::InvalidApiKey => vec![challenge(API_KEY_CHALLENGE)],
            Denial::InvalidToken(TokenError::KeysWanted(url)) => vec![
                challenge(INVALID_TOKEN_CHALLENGE),
                (jwks::JWKS_URL_HEADER.to_owned(), url.clone()),
            ],
            Denial::InvalidToken(_) => vec![challenge(INVALID_TOKEN_CHALLENGE)],
            Denial::RateLimited(decision) => decision.headers(),
            Denial::Forbidden(_) => Vec::new(),
        }
    }
}

/// What a request may pass with: who it is, and where it stands against
/// its rate limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Authenticated<'p> {
    /// The consumer and its position in the config's `consumers`; `None`
    /// on public routes.
    pub consumer: Option<(usize, &'p Consumer)>,
    /// The limit to advertise (the one with the fewest requests left);
    /// `None` when no limit applies or the store could not count.
    pub rate_limit: Option<Decision>,
    /// Headers the upstream request gets in place of the client's copies
    /// (see [`upshift_model::JwtAuth::forward_claims`]): each one named is
    /// removed, then set to the value when there is one.
    pub upstream_headers: Vec<(String, Option<String>)>,
}

/// Who a request comes from, before its rate limits.
struct Identified {
    consumer: Option<usize>,
    /// The token's claims, when the route looks at them.
    claims: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Auth and rate-limit settings of one route.
#[derive(Debug, Default)]
struct RoutePolicy {
    api_key: Option<ApiKeyAuth>,
    jwt: Option<JwtAuth>,
    limit: Option<Limit>,
    access: Option<Access>,
}

/// Consumers, credentials and route settings of one config version.
#[derive(Debug, Default)]
pub struct Policy {
    consumers: Vec<Consumer>,
    /// The digest of each API key (see [`token::digest`]) → index into
    /// `consumers`.
    keys: HashMap<String, usize>,
    /// Consumer name → index into `consumers`, for issued keys.
    by_name: HashMap<String, usize>,
    /// JWT credentials by their `iss`/`kid` value.
    credentials: Credentials,
    /// Each consumer's own limit, by index.
    consumer_limits: Vec<Option<Limit>>,
    /// Route name → its settings (routes with neither auth nor limit are absent).
    routes: HashMap<String, RoutePolicy>,
    /// Route names by their position in the config.
    route_names: Vec<String>,
}

impl Policy {
    /// Compiles the consumers and route settings of `config`.
    pub fn new(config: &Config) -> Self {
        let keys = config
            .consumers
            .iter()
            .enumerate()
            .flat_map(|(i, c)| c.api_keys.iter().map(move |k| (key_digest(k), i)))
            .collect();
        let routes = config
            .routes
            .iter()
            .filter_map(|r| {
                let auth = r.auth.as_ref();
                let policy = RoutePolicy {
                    api_key: auth.and_then(|a| a.api_key.clone()),
                    jwt: auth.and_then(|a| a.jwt.clone()),
                    limit: r.rate_limit.as_ref().map(Limit::from),
                    access: r.access.as_ref().map(Access::new),
                };
                let relevant = policy.api_key.is_some()
                    || policy.jwt.is_some()
                    || policy.limit.is_some()
                    || policy.access.is_some();
                relevant.then(|| (r.name.clone(), policy))
            })
            .collect();
        Policy {
            consumers: config.consumers.clone(),
            keys,
            by_name: config
                .consumers
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            credentials: Credentials::new(config),
            consumer_limits: config
                .consumers
                .iter()
                .map(|c| c.rate_limit.as_ref().map(Limit::from))
                .collect(),
            routes,
            route_names: config.routes.iter().map(|r| r.name.clone()).collect(),
        }
    }

    /// The consumers, in the config's order.
    pub fn consumers(&self) -> &[Consumer] {
        &self.consumers
    }

    /// Positions of the routes with auth settings or a rate limit; on the
    /// others every request passes with no consumer and no limit.
    pub fn guarded(&self) -> impl Iterator<Item = usize> + '_ {
        self.route_names
            .iter()
            .enumerate()
            .filter(|(_, name)| self.routes.contains_key(*name))
            .map(|(i, _)| i)
    }

    /// The name of the route at `index` in the config's `routes`.
    pub fn route_name(&self, index: usize) -> Option<&str> {
        self.route_names.get(index).map(String::as_str)
    }

    /// The consumer `head` authenticates as on `route` at `now_ms`: `None`
    /// for public routes, an error when the route needs credentials that
    /// are missing or refused. Keys issued through the admin API are looked
    /// up in `store`. Rate limits are not looked at.
    pub fn identify<S: Store + ?Sized>(
        &self,
        store: Option<&S>,
        route: &str,
        head: &RequestHead<'_>,
        now_ms: u64,
    ) -> Result<Option<&Consumer>, Denial> {
        let Some(settings) = self.routes.get(route) else {
            return Ok(None);
        };
        Ok(self
            .identify_index(settings, head, now_ms, &|| store)?
            .consumer
            .map(|i| &self.consumers[i]))
    }

    fn identify_index<'s, S: Store + ?Sized + 's>(
        &self,
        settings: &RoutePolicy,
        head: &RequestHead<'_>,
        now_ms: u64,
        store: &impl Fn() -> Option<&'s S>,
    ) -> Result<Identified, Denial> {
        let by_key = |consumer| Identified {
            consumer,
            claims: None,
        };
        if settings.api_key.is_none() && settings.jwt.is_none() {
            return Ok(by_key(None));
        }
        let token = settings
            .jwt
            .as_ref()
            .and_then(|jwt| Some((jwt, jwt::presented_token(jwt, head)?)));
        // A token shaped like a JWT is one, even where API keys are accepted too.
        if let Some((jwt, token)) = token
            && (jwt::looks_like_jwt(token) || settings.api_key.is_none())
        {
            let read_set = |url: &str| {
                let bytes = store()?.get(&keys::jwks(url)).ok()??;
                serde_json::from_slice::<JwksRecord>(&bytes).ok()
            };
            let verified = self
                .credentials
                .verify(jwt, token, now_ms, &read_set)
                .map_err(Denial::InvalidToken)?;
            if let Some(why) = verified.claims.as_ref().and_then(|c| jwt::lacks(jwt, c)) {
                return Err(Denial::Forbidden(why));
            }
            return Ok(Identified {
                consumer: Some(verified.consumer),
                claims: verified.claims,
            });
        }
        if let Some(key) = settings
            .api_key
            .as_ref()
            .and_then(|settings| presented_key(settings, head))
        {
            let digest = token::digest(key);
            return self
                .keys
                .get(&digest)
                .copied()
                .or_else(|| self.issued(store(), &digest, now_ms))
                .map(|i| by_key(Some(i)))
                .ok_or(Denial::InvalidApiKey);
        }
        Err(Denial::MissingCredentials {
            api_key: settings.api_key.is_some(),
            jwt: settings.jwt.is_some(),
        })
    }

    /// Identifies the caller of `route` (see [`Policy::identify`]), then
    /// counts the request against the route's and the consumer's rate
    /// limits in `store`. When the store fails, the request passes
    /// without rate-limit headers: limits fail open.
    pub fn authenticate<S: Store + ?Sized>(
        &self,
        store: &S,
        route: &str,
        head: &RequestHead<'_>,
        now_ms: u64,
    ) -> Result<Authenticated<'_>, Denial> {
        self.authenticate_with(|| Some(store), route, head, now_ms)
    }

    /// The consumer of the issued key whose digest is `digest`, if it is
    /// issued (in `store`), not expired at `now_ms`, and its consumer is in
    /// the config. A store that cannot be read identifies no one.
    fn issued<S: Store + ?Sized>(
        &self,
        store: Option<&S>,
        digest: &str,
        now_ms: u64,
    ) -> Option<usize> {
        let bytes = store?.get(&keys::issued_key(digest)).ok()??;
        let issued: IssuedKey = serde_json::from_slice(&bytes).ok()?;
        if !issued.is_live(now_ms) {
            return None;
        }
        self.by_name.get(&issued.consumer).copied()
    }

    /// [`Policy::authenticate`] with a store opened only when it is needed:
    /// a limit applies, or a key is not in the config.
    pub fn authenticate_with<'s, S: Store + ?Sized + 's>(
        &self,
        store: impl Fn() -> Option<&'s S>,
        route: &str,
        head: &RequestHead<'_>,
        now_ms: u64,
    ) -> Result<Authenticated<'_>, Denial> {
        let Some(settings) = self.routes.get(route) else {
            // Public and unlimited: no consumer, so no consumer limit either.
            return Ok(Authenticated {
                consumer: None,
                rate_limit: None,
                upstream_headers: Vec::new(),
            });
        };
        let access = settings.access.as_ref();
        if let Some(why) = access.and_then(|a| a.refuse_address(head.client_ip())) {
            return Err(Denial::Forbidden(why));
        }
        let Identified { consumer, claims } =
            self.identify_index(settings, head, now_ms, &store)?;
        let upstream_headers = settings.jwt.as_ref().map_or_else(Vec::new, |jwt| {
            jwt.forward_claims
                .iter()
                .map(|(claim, header)| {
                    let value = claims.as_ref().and_then(|c| c.get(claim));
                    (header.clone(), value.and_then(jwt::header_value))
                })
                .collect()
        });
        if let Some(why) =
            access.and_then(|a| a.refuse_caller(consumer.map(|i| &self.consumers[i])))
        {
            return Err(Denial::Forbidden(why));
        }
        let mut applied = Vec::with_capacity(2);
        if let Some(limit) = &settings.limit {
            let name = consumer.map(|i| self.consumers[i].name.as_str());
            applied.push(Applied::route(limit, route, name, head, now_ms));
        }
        if let Some(i) = consumer
            && let Some(limit) = &self.consumer_limits[i]
        {
            applied.push(Applied::consumer(limit, &self.consumers[i].name, now_ms));
        }
        let consumer = consumer.map(|i| (i, &self.consumers[i]));
        let decision = if applied.is_empty() {
            Ok(None)
        } else {
            // Fail open: without a store, or when it fails, the request passes.
            store().map_or(Ok(None), |store| {
                ratelimit::check(store, &applied, now_ms).unwrap_or(Ok(None))
            })
        };
        match decision {
            Ok(rate_limit) => Ok(Authenticated {
                consumer,
                rate_limit,
                upstream_headers,
            }),
            Err(refusal) => Err(Denial::RateLimited(refusal)),
        }
    }
}

/// The key sent in the configured header (a bearer token for
/// `authorization`) or query parameter.
/// The digest of a configured API key: given as one, or made from the key.
fn key_digest(configured: &str) -> String {
    if token::is_digest(configured) {
        configured.to_owned()
    } else {
        token::digest(configured)
    }
}

fn presented_key<'h>(settings: &ApiKeyAuth, head: &RequestHead<'h>) -> Option<&'h str> {
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
mod tests;

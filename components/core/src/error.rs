//! The one error type of the request path, and the JSON envelope every
//! error response carries.
//!
//! A variant is made where the failure is found, and it knows its status,
//! its stable code (documented in the README's error table) and how an
//! upstream attempt that ended with it counts: nothing is decided later by
//! looking at strings.

use http::StatusCode;
use serde::Serialize;
use upshift_model::jwks;

use crate::policy::Outcome;

/// Why the gateway answers a request itself instead of the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No route matches the request.
    #[error("no route matches {method} {path}{}", if *.unconfigured { " (no config has been applied yet)" } else { "" })]
    RouteNotFound {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// No config version was ever applied.
        unconfigured: bool,
    },
    /// A policy component refused the request: auth (401, 403, 429), the
    /// splitter (an unknown service, its state unreadable).
    #[error("{message}")]
    Refused {
        /// Status to answer with.
        status: u16,
        /// The component's stable code.
        code: String,
        /// Its explanation.
        message: String,
        /// Headers it asks for, e.g. `www-authenticate`, `retry-after`.
        headers: Vec<(String, String)>,
    },
    /// The upstream did not connect, answer or keep sending in time.
    #[error("upstream {target} did not answer within {timeout_ms} ms")]
    UpstreamTimeout {
        /// The target's URL.
        target: String,
        /// The timeout that ran out.
        timeout_ms: u32,
    },
    /// The upstream refused the connection, reset it or broke the protocol.
    #[error("upstream {target} failed: {detail}")]
    UpstreamUnavailable {
        /// The target's URL.
        target: String,
        /// What happened.
        detail: String,
    },
    /// The TLS handshake with an `https` upstream failed.
    #[error(
        "upstream {target}: the TLS handshake failed ({detail}); a certificate from a private \
         authority needs its roots in the runtime config's [[client_tls]]"
    )]
    UpstreamTlsFailed {
        /// The target's URL.
        target: String,
        /// What the handshake said.
        detail: String,
    },
    /// The component may not send requests to the target's host.
    #[error("outbound requests to {target} are not allowed for the gateway")]
    UpstreamNotAllowed {
        /// The target's URL.
        target: String,
    },
    /// A target or provider URL that is not a URL.
    #[error("target {target:?} is not a URL")]
    BadTarget {
        /// What the config says.
        target: String,
    },
    /// A request that is not HTTP the gateway can forward: no or two
    /// `Host` headers, a header that cannot be sent on.
    #[error("{0}")]
    BadRequest(String),
    /// The request body broke off or could not be read.
    #[error("the request body could not be read: {0}")]
    BadRequestBody(String),
    /// The client sent no request body data for the listener's body read
    /// timeout.
    #[error(
        "the client stopped sending the request body (nothing came within the body read timeout)"
    )]
    RequestBodyTimeout,
    /// A request body longer than the route takes.
    #[error("request bodies on this route are limited to {limit} bytes")]
    RequestTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The request body was sent already and cannot be sent again.
    #[error("the request body was sent already")]
    BodyConsumed,
    /// The key-value store holding the config could not be read.
    #[error("config store: {0}")]
    ConfigStoreUnavailable(String),
    /// The config version in force cannot be loaded.
    #[error("config version {version} cannot be loaded: {detail}")]
    ConfigUnloadable {
        /// The version.
        version: u64,
        /// Why.
        detail: String,
    },
    /// A protocol upgrade (WebSocket) where this lane or route cannot
    /// carry one.
    #[error("{0}")]
    UpgradeNotSupported(String),
    /// A protocol this lane cannot carry: gRPC, or an HTTP/2 target, where
    /// the gateway can only speak HTTP/1.1 upstream (`wasi:http`).
    #[error("{0}")]
    ProtocolNotSupported(String),
    /// A component trapped, ran out of memory or time, or broke its contract.
    #[error("component {component} failed: {detail}")]
    ComponentFailed {
        /// The component's name.
        component: String,
        /// What happened.
        detail: String,
    },
}

impl GatewayError {
    /// The URL of the key set auth asks to have fetched (see
    /// [`upshift_model::jwks`]), if this is that refusal.
    pub fn keys_wanted(&self) -> Option<&str> {
        match self {
            GatewayError::Refused { code, headers, .. } if code == jwks::KEYS_WANTED => headers
                .iter()
                .find(|(name, _)| name == jwks::JWKS_URL_HEADER)
                .map(|(_, url)| url.as_str()),
            _ => None,
        }
    }

    /// Auth's refusal asking for a key set, as the client gets it when the
    /// set did not have the token's key after all: `401 invalid_token`.
    /// Other errors stay as they are.
    pub fn keys_unavailable(self) -> GatewayError {
        match self {
            GatewayError::Refused {
                status,
                code,
                message,
                headers,
            } if code == jwks::KEYS_WANTED => GatewayError::Refused {
                status,
                code: "invalid_token".to_owned(),
                message,
                headers: headers
                    .into_iter()
                    .filter(|(name, _)| name != jwks::JWKS_URL_HEADER)
                    .collect(),
            },
            other => other,
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        let code = match self {
            GatewayError::RouteNotFound { .. } => 404,
            GatewayError::Refused { status, .. } => *status,
            GatewayError::UpstreamTimeout { .. } => 504,
            GatewayError::UpstreamUnavailable { .. }
            | GatewayError::UpstreamTlsFailed { .. }
            | GatewayError::UpstreamNotAllowed { .. }
            | GatewayError::BadTarget { .. } => 502,
            GatewayError::BadRequest(_) | GatewayError::BadRequestBody(_) => 400,
            GatewayError::RequestTooLarge { .. } => 413,
            GatewayError::RequestBodyTimeout => 408,
            GatewayError::ConfigStoreUnavailable(_) => 503,
            GatewayError::UpgradeNotSupported(_) | GatewayError::ProtocolNotSupported(_) => 501,
            GatewayError::BodyConsumed
            | GatewayError::ConfigUnloadable { .. }
            | GatewayError::ComponentFailed { .. } => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &str {
        match self {
            GatewayError::RouteNotFound { .. } => "route_not_found",
            GatewayError::Refused { code, .. } => code,
            GatewayError::UpstreamTimeout { .. } => "upstream_timeout",
            GatewayError::UpstreamUnavailable { .. } => "upstream_unavailable",
            GatewayError::UpstreamTlsFailed { .. } => "upstream_tls_failed",
            GatewayError::UpstreamNotAllowed { .. } => "upstream_not_allowed",
            GatewayError::BadTarget { .. } => "bad_target",
            GatewayError::BadRequest(_) => "bad_request",
            GatewayError::BadRequestBody(_) => "bad_request_body",
            GatewayError::RequestTooLarge { .. } => "request_too_large",
            GatewayError::RequestBodyTimeout => "request_body_timeout",
            GatewayError::BodyConsumed => "body_consumed",
            GatewayError::ConfigStoreUnavailable(_) => "config_store_unavailable",
            GatewayError::ConfigUnloadable { .. } => "config_unloadable",
            GatewayError::UpgradeNotSupported(_) => "upgrade_not_supported",
            GatewayError::ProtocolNotSupported(_) => "protocol_not_supported",
            GatewayError::ComponentFailed { .. } => "component_failed",
        }
    }

    /// How an upstream attempt that ended with this error counts: a
    /// timeout, or a failure (counted, and retried where the route
    /// retries); `None` when the upstream is not to blame (a bad target
    /// URL, a header that cannot be sent, a body already spent), which is
    /// neither counted nor retried.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            GatewayError::UpstreamTimeout { .. } => Some(Outcome::TimedOut),
            GatewayError::UpstreamUnavailable { .. } | GatewayError::UpstreamTlsFailed { .. } => {
                Some(Outcome::Failed)
            }
            _ => None,
        }
    }

    /// Headers the response carries besides the envelope's.
    pub fn headers(&self) -> &[(String, String)] {
        match self {
            GatewayError::Refused { headers, .. } => headers,
            _ => &[],
        }
    }

    /// The JSON envelope for the request `request_id`:
    /// `{"error":{"code":…,"message":…,"request_id":…}}`.
    pub fn body(&self, request_id: &str) -> String {
        envelope(self.code(), &self.to_string(), request_id)
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

/// The JSON error envelope with `code`, `message` and `request_id`, for
/// errors made outside [`GatewayError`] (the admin API's).
pub fn envelope(code: &str, message: &str, request_id: &str) -> String {
    let body = Envelope {
        error: Detail {
            code,
            message,
            request_id,
        },
    };
    serde_json::to_string(&body).expect("error envelope serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_names_code_message_and_request_id() {
        let error = GatewayError::RouteNotFound {
            method: "GET".into(),
            path: "/x".into(),
            unconfigured: true,
        };
        assert_eq!(error.status(), StatusCode::NOT_FOUND);
        let json: serde_json::Value = serde_json::from_str(&error.body("rid-1")).unwrap();
        assert_eq!(json["error"]["code"], "route_not_found");
        assert_eq!(
            json["error"]["message"],
            "no route matches GET /x (no config has been applied yet)"
        );
        assert_eq!(json["error"]["request_id"], "rid-1");
    }

    #[test]
    fn upstream_failures_count_and_local_ones_do_not() {
        let target = || "http://10.0.0.1".to_owned();
        let timeout = GatewayError::UpstreamTimeout {
            target: target(),
            timeout_ms: 50,
        };
        assert_eq!(timeout.outcome(), Some(Outcome::TimedOut));
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        let refused = GatewayError::UpstreamUnavailable {
            target: target(),
            detail: "connection refused".into(),
        };
        assert_eq!(refused.outcome(), Some(Outcome::Failed));
        let tls = GatewayError::UpstreamTlsFailed {
            target: target(),
            detail: "unknown issuer".into(),
        };
        assert_eq!(
            (tls.outcome(), tls.code()),
            (Some(Outcome::Failed), "upstream_tls_failed")
        );
        for local in [
            GatewayError::BadTarget { target: target() },
            GatewayError::BodyConsumed,
            GatewayError::UpstreamNotAllowed { target: target() },
        ] {
            assert_eq!(local.outcome(), None, "{local:?}");
        }
    }

    #[test]
    fn refusals_keep_the_components_status_code_and_headers() {
        let refused = GatewayError::Refused {
            status: 429,
            code: "rate_limited".into(),
            message: "slow down".into(),
            headers: vec![("retry-after".into(), "3".into())],
        };
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code(), "rate_limited");
        assert_eq!(
            refused.headers(),
            [("retry-after".to_owned(), "3".to_owned())]
        );
        assert_eq!(refused.to_string(), "slow down");
    }
}

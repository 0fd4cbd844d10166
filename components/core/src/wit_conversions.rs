//! Conversions between the policy interfaces' WIT types and the core's.
//! Each lane generates its own bindings of the same WIT (the gateway
//! component with wit-bindgen, the host with wasmtime), so the types differ
//! while their fields do not: [`policy_conversions!`] writes the
//! conversions once, for the bindings whose modules it is given.

/// Writes a module `$module` with the conversions between a lane's bindings of the policy
/// interfaces (`upshift:types`, `upshift:router`, `upshift:auth`,
/// `upshift:splitter` and `upshift:ai`, each given by the absolute path of its
/// interface module) and the core's types:
///
/// - into the core: `gateway-error` (a refusal), `route-match`,
///   `route-kind`, `authenticated`, `upstream`, `selection`, `count`, and
///   the AI component's `answered` (as [`Spent`](crate::ai::Spent));
/// - into WIT: [`UpstreamAttempt`](crate::policy::UpstreamAttempt) (the
///   splitter's `attempt`) and [`AiAnswer`](crate::ai::AiAnswer)
///   (its `ai-answer`);
/// - and `$module::tables`, the config version's tables from the lists its
///   policy components give.
#[macro_export]
macro_rules! policy_conversions {
    (
        mod $module:ident;
        types: $types:path,
        router: $router:path,
        auth: $auth:path,
        splitter: $splitter:path,
        ai: $ai:path $(,)?
    ) => {
        /// Conversions between the policy interfaces' WIT types and the
        /// core's (see `upshift_core::policy_conversions!`).
        pub(crate) mod $module {
            use $ai as ai;
            use $auth as auth;
            use $crate::policy as core;
            use $router as router;
            use $splitter as splitter;
            use $types as types;

            /// The config version's tables, from what its policy components
            /// list: the routes, the guarded routes, the consumers and the
            /// services.
            pub fn tables(
                routes: Vec<router::Route>,
                guarded: Vec<u32>,
                consumers: Vec<auth::Consumer>,
                services: Vec<splitter::Service>,
            ) -> $crate::tables::Tables {
                $crate::tables::Tables::listed(
                    (
                        routes
                            .into_iter()
                            .map(|r| (r.name, r.kind.into(), r.service, r.timeout_ms)),
                        guarded,
                    ),
                    consumers.into_iter().map(|c| (c.id, c.tenant)),
                    services.into_iter().map(|s| {
                        let versions = s.versions.into_iter();
                        (
                            s.name,
                            versions.map(|v| (v.name, v.targets, v.response_headers)),
                        )
                    }),
                )
            }

            impl From<types::GatewayError> for $crate::GatewayError {
                fn from(e: types::GatewayError) -> Self {
                    $crate::GatewayError::Refused {
                        status: e.status,
                        code: e.code,
                        message: e.message,
                        headers: e.headers,
                    }
                }
            }

            impl From<router::RouteMatch> for core::RouteMatch {
                fn from(m: router::RouteMatch) -> Self {
                    core::RouteMatch {
                        route: m.route,
                        upstream_path: m.upstream_path,
                    }
                }
            }

            impl From<router::RouteKind> for core::RouteKind {
                fn from(kind: router::RouteKind) -> Self {
                    match kind {
                        router::RouteKind::Proxy => core::RouteKind::Proxy,
                        router::RouteKind::Ai => core::RouteKind::Ai,
                    }
                }
            }

            impl From<auth::Authenticated> for core::Authenticated {
                fn from(passed: auth::Authenticated) -> Self {
                    core::Authenticated {
                        consumer: passed.consumer,
                        rate_limit: passed.rate_limit.map(|r| core::RateLimit {
                            limit: r.limit,
                            remaining: r.remaining,
                            reset_s: r.reset_s,
                        }),
                        upstream_headers: passed.upstream_headers,
                    }
                }
            }

            impl From<splitter::Upstream> for core::Upstream {
                fn from(u: splitter::Upstream) -> Self {
                    core::Upstream {
                        version: u.version,
                        target: u.target,
                    }
                }
            }

            impl From<splitter::Selection> for core::Selection {
                fn from(s: splitter::Selection) -> Self {
                    core::Selection {
                        primary: s.primary.into(),
                        alternates: s.alternates.into_iter().map(Into::into).collect(),
                        shadow: s.shadow.map(|copy| core::ShadowCopy {
                            upstream: copy.upstream.into(),
                            timeout_ms: copy.timeout_ms,
                        }),
                        retry: core::RetryPolicy {
                            attempts: s.retry.attempts,
                            retry_on: s.retry.retry_on,
                            per_try_timeout_ms: s.retry.per_try_timeout_ms,
                        },
                        reason: match s.reason {
                            splitter::Reason::Pinned => core::Reason::Pinned,
                            splitter::Reason::Rule(i) => core::Reason::Rule(i),
                            splitter::Reason::Rollout => core::Reason::Rollout,
                            splitter::Reason::Sticky => core::Reason::Sticky,
                            splitter::Reason::Weight => core::Reason::Weight,
                            splitter::Reason::OnlyVersion => core::Reason::OnlyVersion,
                            splitter::Reason::CircuitOpen => core::Reason::CircuitOpen,
                        },
                        report_all: s.report_all,
                        hooks_due: s.hooks_due,
                    }
                }
            }

            impl From<splitter::Count> for core::Count {
                fn from(c: splitter::Count) -> Self {
                    core::Count {
                        key: c.key,
                        delta: c.delta,
                    }
                }
            }

            impl From<&core::UpstreamAttempt> for splitter::Attempt {
                fn from(a: &core::UpstreamAttempt) -> Self {
                    splitter::Attempt {
                        version: a.upstream.version,
                        target: a.upstream.target,
                        outcome: match a.outcome {
                            core::Outcome::Status(status) => splitter::Outcome::Status(status),
                            core::Outcome::Failed => splitter::Outcome::Failed,
                            core::Outcome::TimedOut => splitter::Outcome::TimedOut,
                        },
                        latency_ms: a.latency_ms,
                    }
                }
            }

            impl From<&$crate::ai::AiAnswer> for splitter::AiAnswer {
                fn from(a: &$crate::ai::AiAnswer) -> Self {
                    splitter::AiAnswer {
                        nano_usd: a.nano_usd,
                        counted: a.counted,
                        ttft_ms: a.ttft_ms,
                        generation_ms: a.generation_ms,
                        output_tokens: a.output_tokens,
                        refused: a.refused,
                    }
                }
            }

            impl From<&ai::Answered> for $crate::ai::Spent {
                fn from(a: &ai::Answered) -> Self {
                    $crate::ai::Spent {
                        nano_usd: a.cost_nano_usd,
                        counted: a.counted,
                        input_tokens: a.input_tokens,
                        output_tokens: a.output_tokens,
                        refused: a.refused,
                    }
                }
            }
        }
    };
}

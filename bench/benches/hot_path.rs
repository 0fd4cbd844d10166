//! The per-request work of the policy components, natively.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use upshift_auth::{MemoryStore as AuthStore, Policy, decide};
use upshift_bench::{
    JWT_NOW_MS, JWT_TOKENS, config_with_routes, jwt_config, jwt_request, rate_limited_config,
    request_for, split_config, split_request,
};
use upshift_model::{Config, RequestHead};
use upshift_router::RouteTable;
use upshift_splitter::{ConsumerIdentity, MemoryStore, NamedAttempt, Outcome, Plan};

fn route_matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_match");
    for n in [10, 1_000, 10_000] {
        let table = RouteTable::new(&config_with_routes(n));
        let request = request_for(n / 2 + 1);
        assert!(table.resolve(&request.view()).is_some());
        // As the component does it: the packed head parsed, then matched.
        group.bench_with_input(BenchmarkId::from_parameter(n), &request, |b, r| {
            b.iter(|| {
                let head = RequestHead::parse(black_box(r.as_str())).unwrap();
                black_box(table.resolve(&head)).is_some()
            })
        });
    }
    group.finish();
}

fn split_decision(c: &mut Criterion) {
    let plan = Plan::new(&split_config());
    let store = MemoryStore::new();
    let packed = split_request();
    let request = packed.view();
    let consumer = ConsumerIdentity {
        id: "c7".into(),
        tenant: Some("acme".into()),
        tags: vec!["beta".into()],
    };
    let now = 1_800_000_000_000;
    let selection = plan
        .choose(&store, "orders", "orders", &request, Some(&consumer), now)
        .unwrap();
    assert_eq!(selection.reason, upshift_splitter::Reason::Sticky);
    let mut group = c.benchmark_group("split");
    // Reads the live state (one batch get) from the in-memory store, then decides.
    group.bench_function("choose", |b| {
        b.iter(|| {
            black_box(plan.choose(
                &store,
                black_box("orders"),
                black_box("orders"),
                black_box(&request),
                Some(&consumer),
                now,
            ))
        })
    });
    // The decision alone, over live state already read.
    let live = plan.live(&store, "orders").unwrap();
    group.bench_function("decide", |b| {
        b.iter(|| {
            black_box(plan.decide(
                &store,
                &live,
                black_box("orders"),
                black_box("orders"),
                black_box(&request),
                Some(&consumer),
                now,
            ))
        })
    });
    // The floor: weights alone, no rules, no stickiness.
    let weights_only = Plan::new(&config_with_routes(10));
    let plain = request_for(7);
    let plain = plain.view();
    let plain_live = weights_only.live(&store, "svc7").unwrap();
    group.bench_function("decide_weights_only", |b| {
        b.iter(|| {
            black_box(weights_only.decide(
                &store,
                &plain_live,
                black_box("r7"),
                black_box("svc7"),
                black_box(&plain),
                None,
                now,
            ))
        })
    });
    let attempt = NamedAttempt {
        upstream: selection.primary,
        outcome: Outcome::Status(200),
        latency_ms: 12,
    };
    group.bench_function("report", |b| {
        b.iter(|| plan.report(&store, "orders", "orders", black_box(&attempt), now))
    });
    // The whole exchange with the splitter for one request: parse, read
    // the live state, decide, then report the attempt and add its counts.
    group.bench_function("choose_and_report", |b| {
        b.iter(|| {
            let head = RequestHead::parse(black_box(packed.as_str())).unwrap();
            let chosen = plan
                .choose(&store, "orders", "orders", &head, Some(&consumer), now)
                .unwrap();
            let attempt = NamedAttempt {
                upstream: chosen.primary,
                outcome: Outcome::Status(200),
                latency_ms: 12,
            };
            for (key, delta) in plan.report(&store, "orders", "orders", &attempt, now) {
                let _ = upshift_splitter::Store::increment(&store, &key, delta);
            }
        })
    });
    group.finish();
}

fn api_key_lookup(c: &mut Criterion) {
    let config = config_with_routes(1_000);
    let mut config = config;
    for route in &mut config.routes {
        route.auth = Some(upshift_model::RouteAuth {
            api_key: Some(upshift_model::ApiKeyAuth {
                header: "x-api-key".into(),
                query: None,
            }),
            jwt: None,
        });
    }
    let policy = Policy::new(&config);
    let request = request_for(500);
    let request = request.view();
    let store = None::<&AuthStore>;
    assert!(
        policy
            .identify(store, "r500", &request, 0)
            .unwrap()
            .is_some()
    );
    c.bench_function("api_key_lookup_1000_consumers", |b| {
        b.iter(|| black_box(policy.identify(store, black_box("r500"), black_box(&request), 0)))
    });
}

fn jwt_verification(c: &mut Criterion) {
    let policy = Policy::new(&jwt_config());
    let mut group = c.benchmark_group("jwt_verify");
    for (alg, token) in JWT_TOKENS {
        let request = jwt_request(token);
        let request = request.view();
        let who = policy
            .identify(None::<&AuthStore>, "api", &request, JWT_NOW_MS)
            .unwrap();
        assert_eq!(who.unwrap().name, alg.to_ascii_lowercase()[..2]);
        group.bench_with_input(BenchmarkId::from_parameter(alg), &request, |b, r| {
            b.iter(|| {
                black_box(policy.identify(
                    None::<&AuthStore>,
                    black_box("api"),
                    black_box(r),
                    JWT_NOW_MS,
                ))
            })
        });
    }
    group.finish();
}

fn rate_limit_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit");
    // The decision alone, over counts already read.
    group.bench_function("decide", |b| {
        b.iter(|| {
            black_box(decide(
                black_box(1_000),
                black_box(60_000),
                black_box(1_772_323_215_000),
                black_box(640),
                black_box(512),
            ))
        })
    });
    // Identification, counting in an in-memory store and deciding.
    let policy = Policy::new(&rate_limited_config());
    let store = AuthStore::new();
    let request = request_for(1);
    let request = request.view();
    let mut now = 1_772_323_200_000_u64;
    assert!(policy.authenticate(&store, "api", &request, now).is_ok());
    group.bench_function("authenticate_and_count", |b| {
        b.iter(|| {
            now += 1;
            black_box(policy.authenticate(&store, black_box("api"), black_box(&request), now))
        })
    });
    group.finish();
}

fn config_parse(c: &mut Criterion) {
    let config = config_with_routes(1_000);
    let canonical = config.to_canonical_json();
    c.bench_function("config_load_1000_routes", |b| {
        b.iter(|| {
            let config = Config::from_canonical_json(black_box(&canonical)).unwrap();
            black_box(RouteTable::new(&config))
        })
    });
}

/// OpenAI ↔ Anthropic: a typical 2 KB chat request both ways, a response,
/// and one streamed text delta through a stream already under way.
fn ai_translation(c: &mut Criterion) {
    use upshift_ai::sample::TYPICAL_CHAT_REQUEST;
    use upshift_ai::{Dialect, StreamOptions, StreamTranslator};
    let conformance = |file: &str| {
        let path = format!(
            "{}/../tests/ai-conformance/anthropic/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let mut group = c.benchmark_group("ai_translation");
    let openai = TYPICAL_CHAT_REQUEST.as_bytes();
    let anthropic =
        upshift_ai::translate_request(Dialect::OpenAiChat, Dialect::Anthropic, openai).unwrap();
    group.bench_function("request_openai_to_anthropic_2kb", |b| {
        b.iter(|| {
            upshift_ai::translate_request(
                Dialect::OpenAiChat,
                Dialect::Anthropic,
                black_box(openai),
            )
        })
    });
    group.bench_function("request_anthropic_to_openai_2kb", |b| {
        b.iter(|| {
            upshift_ai::translate_request(
                Dialect::Anthropic,
                Dialect::OpenAiChat,
                black_box(&anthropic),
            )
        })
    });
    let response = conformance("tools/anthropic.response.json");
    group.bench_function("response_anthropic_to_openai", |b| {
        b.iter(|| {
            upshift_ai::translate_response(
                Dialect::Anthropic,
                Dialect::OpenAiChat,
                black_box(&response),
            )
        })
    });
    let stream = String::from_utf8(conformance("text/anthropic.stream.sse")).unwrap();
    let opening = &stream[..stream.find("event: content_block_delta").unwrap()];
    let delta = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\
                 \"delta\":{\"type\":\"text_delta\",\"text\":\"Hello, world\"}}\n\n";
    let mut translator = StreamTranslator::new(
        Dialect::Anthropic,
        Dialect::OpenAiChat,
        StreamOptions {
            include_usage: true,
            created: 0,
        },
    );
    let mut out = Vec::new();
    translator.push(opening.as_bytes(), &mut out);
    group.bench_function("stream_chunk_anthropic_to_openai", |b| {
        b.iter(|| {
            out.clear();
            translator.push(black_box(delta.as_bytes()), &mut out);
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    route_matching,
    split_decision,
    api_key_lookup,
    jwt_verification,
    rate_limit_decision,
    ai_translation,
    config_parse
);
criterion_main!(benches);

//! The end-to-end suites, one module (file) each, in one test binary: they
//! share the harness in `support/`, built once, which also starts the
//! hosts of every suite one at a time. Run one suite with its module
//! name as the filter (`cargo test --release --test e2e -- rollouts::`);
//! `UPSHIFT_TEST_LANE=component` runs them with the gateway component on
//! the byte path.

mod support;

mod ai;
mod auth;
mod components;
mod composition;
mod config;
mod dashboard;
mod distributed;
mod edge;
mod failures;
mod live_upgrades;
mod observability;
mod protocols;
mod proxying;
mod rollouts;
mod routing;
mod spin_manifest;
mod tls;
mod upgrades;
mod wit_contract;

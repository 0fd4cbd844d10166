//! Upstream upgrades: which version and target of a service takes a
//! request, and what came of it.
//!
//! A [`Plan`] is compiled once per config version. Per request,
//! [`Plan::choose`] picks a version (route pin, match rules, a running
//! rollout's weights, the config's weights; sticky callers hash on their
//! key) and skips versions whose circuit is open, then a target by the
//! service's balancer, and says where retries and a shadow copy go.
//! [`Plan::report`] counts each attempt, ejects failing targets and moves a
//! rollout on when its analysis says so; [`Plan::allow_retry`] keeps
//! retries within the route's budget.
//!
//! All live state (rollout state, ejected targets, balancer and budget
//! counters, metrics) is in the key-value store behind [`Store`], laid out
//! as [`upshift_model::keys`] documents, so every node decides alike. The
//! plan caches only parsed documents and when it last analysed a rollout.
//! Decisions hash the request id or a sticky key; there is no randomness.

mod balancer;
mod choose;
mod hash;
mod health;
mod live;
mod plan;
mod report;
mod request;
mod retry;
mod rollout_progress;
mod window;

#[cfg(target_arch = "wasm32")]
mod bindings;

pub use choose::{ChooseError, NamedUpstream, Reason, RetryPolicy, Selection, ShadowCopy};
pub use live::Live;
pub use plan::{Plan, ServiceView, VersionView};
pub use report::{Counts, NamedAttempt, Outcome, URGENT_INTERVAL_MS};
pub use request::ConsumerIdentity;

pub use rollout_progress::step_stats;
pub use upshift_model::analysis::{Verdict, advance, evaluate};
use upshift_model::store;

pub use store::{MemoryStore, Store, StoreError};

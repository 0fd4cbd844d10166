//! The gateway's request path without I/O, shared by its two lanes: the
//! `gateway` component (on Spin, and on the host's component lane), and the
//! host's native lane, where hyper moves the bytes and the policy
//! components decide through synchronous calls.
//!
//! A request goes through the [`phases`] (route → authenticate → select),
//! then its [`attempts`] (the one driver of retries and fallbacks for proxy
//! routes and AI calls), and its answer gets the gateway's [`response`]
//! headers. Headers cross as [`forwarding`] says; every failure is one
//! [`GatewayError`], which knows its status, code and how it counts. The
//! lanes do the I/O and implement [`Policy`] over their bindings; per
//! request the components answer with positions in the config version's
//! [`tables`]; [`policy_conversions!`] converts the policy interfaces'
//! WIT types of either lane's bindings.

pub mod access_log;
pub mod ai;
pub mod attempts;
pub mod clock;
pub mod diff;
pub mod error;
pub mod forwarding;
pub mod grpc;
pub mod head;
pub mod hooks;
pub mod phases;
pub mod policy;
pub mod request_id;
pub mod response;
pub mod tables;
pub mod trace;
pub mod wit_conversions;

pub use error::GatewayError;
pub use policy::Policy;

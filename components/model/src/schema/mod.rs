//! The shape of the config document.
//!
//! Modeled on what Kong, APISIX and Gateway API users know: services with
//! versions and targets, routes that match requests and point at a service,
//! consumers with credentials.
//!
//! One file per part of the document: [`service`], [`route`], [`auth`]
//! (consumers and route authentication) and [`rate_limit`]; the `ai`
//! section lives in [`crate::ai`].

mod auth;
mod rate_limit;
mod route;
mod service;

pub use auth::*;
pub use rate_limit::*;
pub use route::*;
pub use service::*;

use crate::ai::Ai;
use serde::{Deserialize, Serialize};

/// A whole config document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Upstream services and their versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<Service>,
    /// Routes, matched most specific first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Known callers and their credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
    /// The OpenAI-compatible AI API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<Ai>,
}

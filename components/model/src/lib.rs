//! The gateway's shared model, linked by every component, the core and the
//! host: the config document (what routes, services, consumers and AI
//! models the gateway serves), the key-value store's key layout and
//! contract ([`keys`], [`store`]), the metrics counted there ([`metrics`]),
//! why a request went where it did and how its attempts ended
//! ([`outcome`]), and the rollout state machine with its analysis
//! ([`rollout`], [`analysis`]).
//!
//! Operators write it as YAML or JSON (`upshift apply -f gateway.yaml`); the
//! admin API parses and validates it here, then stores the canonical JSON form
//! as a numbered version in the key-value store. The policy components load
//! the canonical form with [`Config::from_canonical_json`].

pub mod ai;
pub mod analysis;
pub mod audit;
pub mod changes;
mod defaults;
mod deprecation;
mod error;
pub mod head;
pub mod jwks;
mod schema;
#[cfg(test)]
mod test_support;
mod time;
mod validate;
mod wit_glue;

pub mod keys;
pub mod metrics;
pub mod outcome;
pub mod rollout;
pub mod rollout_log;
pub mod statistics;
pub mod store;
pub mod token;
pub mod webhook;

pub use ai::{
    Ai, Budget, Cache, ModelAlias, ModelMatch, ModelRetries, ModelRule, ModelShare, Period, Price,
    Prompt, PromptMessage, PromptRole, PromptVersion, Provider, ProviderKind,
};
pub use error::{ConfigError, Problem};
pub use head::{HeadLine, OwnedHead, RequestHead};
pub use schema::*;

impl Config {
    /// Parses and validates a document written by an operator, in YAML or
    /// JSON (JSON is valid YAML). Unknown fields are errors.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(ConfigError::syntax)?;
        validate::validate(&config)?;
        Ok(config)
    }

    /// Parses a canonical document stored by the admin API, without
    /// validating it again.
    pub fn from_canonical_json(text: &str) -> Result<Config, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(ConfigError::syntax)
    }

    /// The canonical JSON form that is stored and handed to the components.
    pub fn to_canonical_json(&self) -> String {
        serde_json::to_string(self).expect("config serializes to JSON")
    }

    /// The service called `name`: defined under `services`, or derived
    /// from the AI section (see [`Ai::services`]).
    pub fn service(&self, name: &str) -> Option<std::borrow::Cow<'_, Service>> {
        if let Some(service) = self.services.iter().find(|s| s.name == name) {
            return Some(std::borrow::Cow::Borrowed(service));
        }
        self.derived_services()
            .into_iter()
            .find(|s| s.name == name)
            .map(std::borrow::Cow::Owned)
    }

    /// The services derived from the AI section (see [`Ai::services`]).
    pub fn derived_services(&self) -> Vec<Service> {
        self.ai.as_ref().map(Ai::services).unwrap_or_default()
    }
}

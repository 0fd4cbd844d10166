//! The `ai` section: providers, model aliases with their fallbacks and
//! prices, and the key layout of the usage counters.
//!
//! ```yaml
//! ai:
//!   providers:
//!     - { name: claude, kind: anthropic, api_key_variable: anthropic_api_key }
//!     - { name: groq, kind: openai_compatible, base_url: "https://api.groq.com/openai/v1",
//!         api_key_variable: groq_api_key }
//!   models:
//!     - { alias: chat-default, provider: claude, model: claude-sonnet-4-5,
//!         fallbacks: [chat-fast], price: { input_per_mtok: 3, output_per_mtok: 15 } }
//!     - { alias: chat-fast, provider: groq, model: llama-3.3-70b-versatile }
//! ```
//!
//! Provider keys never appear in the document: a provider names the Spin
//! variable that holds its key. `openai`, `anthropic` and `gemini` are
//! built in (the official endpoints, keys in `openai_api_key`,
//! `anthropic_api_key` and `gemini_api_key`); a provider of the same name
//! in the document replaces the built-in one.
//!
//! The section is split by concern: [`schema`] holds the document types,
//! [`template`] fills prompt templates, [`services`] names and derives the
//! splitter services of models and prompts, [`budget`] cuts time into
//! budget periods. Its checks live in the validation module and its key
//! layout in [`crate::keys::ai`], re-exported here as [`usage_keys`].

pub mod budget;
pub mod schema;
pub mod services;
pub mod template;

pub use crate::keys::ai as usage_keys;
pub use budget::Period;
pub use schema::*;
pub use services::{model_service, prompt_service};
pub use template::{placeholders, render};
pub use usage_keys::USAGE_FIELDS;

#[cfg(test)]
mod tests;

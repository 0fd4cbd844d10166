//! Errors found while reading a config document.

use serde::Serialize;
use std::fmt;

/// One problem in a config document: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Location in the document, e.g. `routes[2].service`; empty for the root.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config document was rejected. A rejected document is rejected whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not a document of the expected shape (bad syntax, unknown
    /// field, wrong type).
    #[error("malformed config: {0}")]
    Syntax(Problem),
    /// The document is well-formed but inconsistent.
    #[error("invalid config: {}", list(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    pub(crate) fn syntax<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> Self {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        // The YAML parser starts its messages with its own, shorter path.
        let message = err.inner().to_string();
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.contains(' ') && path.starts_with(prefix) => {
                rest.to_owned()
            }
            _ => message,
        };
        ConfigError::Syntax(Problem::new(path, message))
    }

    /// Every problem found, in document order.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Syntax(p) => std::slice::from_ref(p),
            ConfigError::Invalid(ps) => ps,
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

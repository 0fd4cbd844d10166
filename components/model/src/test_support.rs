//! Helpers the unit tests of the document checks share.

use crate::Config;

/// The problems `Config::parse` finds in `doc`, as `path: message`.
pub(crate) fn problems(doc: &str) -> Vec<String> {
    match Config::parse(doc) {
        Ok(_) => Vec::new(),
        Err(error) => error
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect(),
    }
}

/// Asserts that `found` holds exactly the `expected` problems, each given
/// by the start of its `path: message`.
pub(crate) fn assert_problems(found: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            found.iter().any(|p| p.starts_with(want)),
            "missing {want:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

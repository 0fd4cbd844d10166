//! Conversions every component's WIT binding layer needs.

/// Expands, inside a component's binding module, `load_config`: canonical
/// JSON → [`Config`](crate::Config), or the WIT `list<config-error>` naming
/// every problem. The WIT type `ConfigError` must be in scope.
#[macro_export]
macro_rules! wit_glue {
    () => {
        fn wit_errors(error: &$crate::ConfigError) -> Vec<ConfigError> {
            error
                .problems()
                .iter()
                .map(|p| ConfigError {
                    path: p.path.clone(),
                    message: p.message.clone(),
                })
                .collect()
        }

        fn load_config(document: &str) -> Result<$crate::Config, Vec<ConfigError>> {
            $crate::Config::from_canonical_json(document).map_err(|e| wit_errors(&e))
        }
    };
}

//! Conversions every component's WIT binding layer needs.

/// Expands, inside a component's binding module, `load_config` (canonical
/// JSON → [`Config`](crate::Config) or WIT `list<config-error>`) and, with
/// `head`, `native_head` (WIT `request-head` →
/// [`RequestHead`](crate::RequestHead)). The WIT types `ConfigError` (and
/// `RequestHead`) must be in scope.
#[macro_export]
macro_rules! wit_glue {
    (head) => {
        $crate::wit_glue!();

        fn native_head(head: RequestHead) -> $crate::RequestHead {
            $crate::RequestHead {
                method: head.method,
                scheme: head.scheme,
                authority: head.authority,
                path: head.path,
                query: head.query,
                headers: head.headers,
                client_ip: head.client_ip,
                request_id: head.request_id,
            }
        }
    };
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

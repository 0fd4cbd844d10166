//! `[[trigger.http]]` route patterns and request routing, with Spin's semantics:
//! `/foo/...` matches `/foo` and everything below it, any other pattern matches
//! exactly; an exact match beats a wildcard and the longest wildcard wins.

/// Errors in a route pattern.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The pattern does not start with `/`.
    #[error("route `{0}` must start with `/`")]
    NoLeadingSlash(String),
    /// `...` appears anywhere but as the last segment.
    #[error("route `{0}`: `...` is only allowed as the last path segment")]
    MisplacedWildcard(String),
}

/// A parsed route pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    raw: String,
    /// The path without the trailing `/...` (no trailing slash; `""` for the root).
    base: String,
    wildcard: bool,
}

impl Route {
    /// Parses a Spin route pattern.
    pub fn parse(raw: &str) -> Result<Self, RouteError> {
        if !raw.starts_with('/') {
            return Err(RouteError::NoLeadingSlash(raw.to_owned()));
        }
        let (base, wildcard) = match raw.strip_suffix("/...") {
            Some(base) => (base, true),
            None => (raw, false),
        };
        if base.split('/').any(|segment| segment == "...") {
            return Err(RouteError::MisplacedWildcard(raw.to_owned()));
        }
        Ok(Self {
            raw: raw.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            wildcard,
        })
    }

    /// The pattern as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The pattern without the wildcard suffix, e.g. `/admin` for `/admin/...`.
    pub fn base(&self) -> &str {
        if self.base.is_empty() {
            "/"
        } else {
            &self.base
        }
    }

    /// If `path` matches, returns the path info: the part of `path` after the base.
    fn path_info<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.wildcard {
            let rest = path.strip_prefix(self.base.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some(rest)
        } else {
            let trimmed = if path.len() > 1 {
                path.trim_end_matches('/')
            } else {
                path
            };
            (trimmed == self.base() || path == self.raw).then_some("")
        }
    }
}

/// The result of routing a request path.
#[derive(Debug, PartialEq, Eq)]
pub struct RouteMatch<'r, T> {
    /// The matched route.
    pub route: &'r Route,
    /// Whatever the router associates with the route (e.g. a component).
    pub target: &'r T,
    /// The part of the path after the route's base.
    pub path_info: String,
}

/// Routes request paths to targets.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<(Route, T)>,
}

impl<T> Router<T> {
    /// Builds a router; more specific routes are tried first.
    pub fn new(mut routes: Vec<(Route, T)>) -> Self {
        // Exact routes first, then wildcards by decreasing base length.
        routes.sort_by_key(|(route, _)| (route.wildcard, std::cmp::Reverse(route.base.len())));
        Self { routes }
    }

    /// Finds the most specific route matching `path`.
    pub fn route(&self, path: &str) -> Option<RouteMatch<'_, T>> {
        self.routes.iter().find_map(|(route, target)| {
            route.path_info(path).map(|info| RouteMatch {
                route,
                target,
                path_info: info.to_owned(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router<&'static str> {
        let routes = [
            ("/admin/...", "admin"),
            ("/...", "gateway"),
            ("/health", "health"),
            ("/admin/special/...", "special"),
        ];
        Router::new(
            routes
                .into_iter()
                .map(|(r, t)| (Route::parse(r).unwrap(), t))
                .collect(),
        )
    }

    fn target(path: &str) -> Option<(&'static str, String)> {
        let router = router();
        router.route(path).map(|m| (*m.target, m.path_info))
    }

    #[test]
    fn wildcard_prefixes_and_exact_matches() {
        assert_eq!(target("/admin/config"), Some(("admin", "/config".into())));
        assert_eq!(target("/admin"), Some(("admin", "".into())));
        assert_eq!(
            target("/administrator"),
            Some(("gateway", "/administrator".into()))
        );
        assert_eq!(target("/admin/special/x"), Some(("special", "/x".into())));
        assert_eq!(target("/health"), Some(("health", "".into())));
        assert_eq!(target("/health/x"), Some(("gateway", "/health/x".into())));
        assert_eq!(target("/"), Some(("gateway", "/".into())));
    }

    #[test]
    fn no_match_without_catch_all() {
        let router = Router::new(vec![(Route::parse("/api/...").unwrap(), ())]);
        assert!(router.route("/other").is_none());
        assert!(router.route("/api/v1").is_some());
    }

    #[test]
    fn route_bases() {
        assert_eq!(Route::parse("/...").unwrap().base(), "/");
        assert_eq!(Route::parse("/admin/...").unwrap().base(), "/admin");
        assert!(Route::parse("admin").is_err());
        assert!(Route::parse("/a/.../b").is_err());
    }
}

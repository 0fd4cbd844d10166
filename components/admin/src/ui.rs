//! The web dashboard's assets, built into the component: the page works
//! offline and needs no token to load; its calls to the admin API carry
//! the token the operator logs in with.

use crate::api::AdminResponse;

/// The asset at `path` (under `/admin/ui`), if there is one.
pub fn asset(path: &str) -> Option<AdminResponse> {
    let (content_type, text) = match path.trim_start_matches("/admin/ui") {
        "" | "/" | "/index.html" => ("text/html; charset=utf-8", include_str!("../ui/index.html")),
        "/app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../ui/app.js"),
        ),
        "/app.css" => ("text/css; charset=utf-8", include_str!("../ui/app.css")),
        _ => return None,
    };
    Some(AdminResponse::text(content_type, text.to_owned()))
}

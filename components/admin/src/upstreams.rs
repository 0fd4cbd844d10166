//! Upstream health read back as metrics: which targets are ejected now,
//! and how often each was ejected.
//!
//! The splitter writes the ejections (`health/{service}`, a document of
//! target URLs and the millisecond each ejection ends) and counts them
//! (`ejections/{service}/{target}`); every node reads the same keys.

use crate::metrics::escape;
use crate::store::{ConfigStore, StoreError};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use upshift_model::{Config, keys};

/// Appends the upstream health families to `out`: a gauge per configured
/// target of `config` (1 in rotation, 0 ejected at `now_ms`) and the
/// ejection counters.
pub fn prometheus(
    out: &mut String,
    store: &impl ConfigStore,
    config: Option<&Config>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let name = "upshift_upstream_up";
    let _ = writeln!(
        out,
        "# HELP {name} Whether a target is in rotation (1) or ejected by outlier detection (0).\n\
         # TYPE {name} gauge"
    );
    for service in config.map_or(&[][..], |c| &c.services) {
        let ejected = ejected(store, &service.name, now_ms)?;
        for version in &service.versions {
            for target in &version.targets {
                let up = u8::from(!ejected.contains_key(&target.url));
                let _ = writeln!(
                    out,
                    "{name}{{service=\"{}\",version=\"{}\",target=\"{}\"}} {up}",
                    escape(&service.name),
                    escape(&version.name),
                    escape(&target.url)
                );
            }
        }
    }
    let name = "upshift_upstream_ejections_total";
    let _ = writeln!(
        out,
        "# HELP {name} Times outlier detection ejected a target.\n# TYPE {name} counter"
    );
    let keys = store.keys(keys::EJECTIONS_PREFIX)?;
    for (key, value) in keys.iter().zip(store.get_many(&keys)?) {
        if let Some((service, target)) = keys::parse_ejections(key) {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\",target=\"{}\"}} {}",
                escape(service),
                escape(&target),
                upshift_model::store::counter(value.as_deref())
            );
        }
    }
    Ok(())
}

/// The targets of `service` ejected at `now_ms`, with the end of each
/// ejection; an unreadable document ejects nothing, as for the splitter.
fn ejected(
    store: &impl ConfigStore,
    service: &str,
    now_ms: u64,
) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut health: BTreeMap<String, u64> = store
        .get(&keys::health(service))?
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    health.retain(|_, until| *until > now_ms);
    Ok(health)
}

#[cfg(test)]
mod tests {
    use crate::api::{AdminRequest, handle};
    use crate::store::Store;
    use upshift_model::keys;
    use upshift_model::store::{MemoryStore, for_each_encoding};
    use upshift_model::token::Access;

    const CONFIG: &str = "services: [{name: s, versions: [\
        {name: v1, targets: [{url: 'http://127.0.0.1:1'}, {url: 'http://127.0.0.1:2'}]}]}]\n\
        routes: [{name: r, service: s}]";

    fn call(store: &MemoryStore, method: &str, path: &str, body: &str) -> crate::AdminResponse {
        let request = AdminRequest {
            method,
            path,
            body: body.as_bytes(),
            access: Access::Full,
            now_ms: 5_000,
        };
        handle(&request, store)
    }

    #[test]
    fn targets_show_up_or_ejected_and_ejections_are_counted() {
        for_each_encoding(|store| {
            call(&store, "PUT", "/admin/config", CONFIG);
            let health = r#"{"http://127.0.0.1:1": 9000, "http://127.0.0.1:2": 4000}"#;
            store.set(&keys::health("s"), health.as_bytes()).unwrap();
            store.fill_counter(&keys::ejections("s", "http://127.0.0.1:1"), 3);
            let text = call(&store, "GET", "/admin/metrics", "").body;
            let text = text.as_str().unwrap();
            for line in [
                r#"upshift_upstream_up{service="s",version="v1",target="http://127.0.0.1:1"} 0"#,
                r#"upshift_upstream_up{service="s",version="v1",target="http://127.0.0.1:2"} 1"#,
                r#"upshift_upstream_ejections_total{service="s",target="http://127.0.0.1:1"} 3"#,
            ] {
                assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
            }
        });
    }
}

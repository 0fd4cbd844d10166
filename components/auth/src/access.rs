//! Who may use a route: allow and deny lists of consumers, tenants, tags
//! and client IP ranges (`routes[].access`), compiled once per config.
//! Addresses are checked before credentials, identities after them; deny
//! wins over allow.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use upshift_model::{AccessList, Consumer, RouteAccess, parse_ip_range};

/// One side of a route's access rules.
#[derive(Debug, Default)]
struct Callers {
    consumers: HashSet<String>,
    tenants: HashSet<String>,
    tags: HashSet<String>,
    ips: Vec<IpNet>,
}

impl Callers {
    fn new(list: &AccessList) -> Self {
        Self {
            consumers: list.consumers.iter().cloned().collect(),
            tenants: list.tenants.iter().cloned().collect(),
            tags: list.tags.iter().cloned().collect(),
            // Validation refused ranges that do not parse.
            ips: list.ips.iter().filter_map(|r| parse_ip_range(r)).collect(),
        }
    }

    fn names_callers(&self) -> bool {
        !(self.consumers.is_empty() && self.tenants.is_empty() && self.tags.is_empty())
    }

    fn has_ip(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.ips.iter().any(|range| range.contains(&ip)))
    }

    fn has(&self, consumer: &Consumer) -> bool {
        self.consumers.contains(&consumer.name)
            || consumer
                .tenant
                .as_ref()
                .is_some_and(|t| self.tenants.contains(t))
            || consumer.tags.iter().any(|t| self.tags.contains(t))
    }
}

/// A route's compiled access rules.
#[derive(Debug, Default)]
pub struct Access {
    allow: Callers,
    deny: Callers,
}

impl Access {
    /// Compiles `access`.
    pub fn new(access: &RouteAccess) -> Self {
        Self {
            allow: Callers::new(&access.allow),
            deny: Callers::new(&access.deny),
        }
    }

    /// Why a client at `ip` may not use the route, if it may not.
    pub fn refuse_address(&self, ip: Option<&str>) -> Option<String> {
        let ip = ip.and_then(|ip| ip.parse::<IpAddr>().ok());
        let shown = || ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        if self.deny.has_ip(ip) {
            return Some(format!(
                "the client address {} is denied on this route",
                shown()
            ));
        }
        if !self.allow.ips.is_empty() && !self.allow.has_ip(ip) {
            return Some(format!(
                "the client address {} is not allowed on this route",
                shown()
            ));
        }
        None
    }

    /// Why `consumer` (`None`: an anonymous caller) may not use the route,
    /// if it may not.
    pub fn refuse_caller(&self, consumer: Option<&Consumer>) -> Option<String> {
        let name = consumer.map_or("anonymous", |c| c.name.as_str());
        if consumer.is_some_and(|c| self.deny.has(c)) {
            return Some(format!("consumer {name:?} is denied on this route"));
        }
        if self.allow.names_callers() && !consumer.is_some_and(|c| self.allow.has(c)) {
            return Some(format!("consumer {name:?} is not allowed on this route"));
        }
        None
    }
}

//! The compiled route table.

use crate::path::normalize;
use std::borrow::Cow;
use std::collections::HashMap;
use upshift_model::{Config, PathMatch, RequestHead, Route, RouteKind};

/// What the gateway does with a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<'t> {
    /// Position of the route in the config document's `routes`.
    pub index: usize,
    /// Name of the matched route.
    pub route: &'t str,
    /// What the route does.
    pub kind: RouteKind,
    /// Service to proxy to (empty for AI routes).
    pub service: &'t str,
    /// Path and query to send upstream when the route changes them
    /// (prefix replaced, dot segments or empty segments removed); `None`
    /// when they go upstream as the client sent them.
    pub upstream_path: Option<String>,
    /// Whole-request upstream timeout, in milliseconds.
    pub timeout_ms: u32,
}

/// A route as [`RouteTable::routes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<'t> {
    /// Its name.
    pub name: &'t str,
    /// What it does.
    pub kind: RouteKind,
    /// Its service (empty for AI routes).
    pub service: &'t str,
    /// Its upstream timeout, in milliseconds.
    pub timeout_ms: u32,
}

/// A route as the table needs it.
#[derive(Debug)]
struct Entry {
    name: String,
    kind: RouteKind,
    service: String,
    methods: Vec<String>,
    headers: Vec<(String, String)>,
    replace_prefix: Option<String>,
    timeout_ms: u32,
}

impl Entry {
    fn accepts(&self, head: &RequestHead<'_>) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == head.method()))
            && self
                .headers
                .iter()
                .all(|(name, value)| head.header_values(name).any(|v| v == value))
    }
}

/// A route registered at a trie node: its entry and how the path compares.
#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: usize,
    exact: bool,
    /// Byte length of the normalized path the route was registered under.
    prefix_len: usize,
}

/// One path segment level of the trie.
#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Routes whose path ends here, most specific first.
    slots: Vec<Slot>,
}

impl Node {
    fn insert(&mut self, path: &str, slot: Slot) {
        let mut node = self;
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            node = node.children.entry(segment.into()).or_default();
        }
        node.slots.push(slot);
    }

    /// The most specific slot along `segments` whose route accepts `head`:
    /// deeper nodes first, then the order of `slots`.
    fn find(
        &self,
        path: &str,
        segments: &mut std::str::Split<'_, char>,
        entries: &[Entry],
        head: &RequestHead<'_>,
    ) -> Option<Slot> {
        let next = segments.by_ref().find(|s| !s.is_empty());
        let at_end = next.is_none();
        if let Some(child) = next.and_then(|s| self.children.get(s))
            && let Some(slot) = child.find(path, segments, entries, head)
        {
            return Some(slot);
        }
        self.slots
            .iter()
            .filter(|slot| !slot.exact || (at_end && slot.prefix_len == path.len()))
            .find(|slot| entries[slot.entry].accepts(head))
            .copied()
    }

    fn sort(&mut self, entries: &[Entry]) {
        // Exact paths first, then routes with more header conditions, then
        // routes that restrict methods; ties keep document order.
        self.slots.sort_by_key(|s| {
            let e = &entries[s.entry];
            (
                !s.exact,
                usize::MAX - e.headers.len(),
                e.methods.is_empty(),
                s.entry,
            )
        });
        for child in self.children.values_mut() {
            child.sort(entries);
        }
    }
}

/// Routes of one config version, indexed by host and path.
#[derive(Debug, Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
    exact_hosts: HashMap<String, Node>,
    /// `(".example.com", trie)`, longest suffix first.
    wildcard_hosts: Vec<(String, Node)>,
    any_host: Node,
}

impl RouteTable {
    /// Compiles the routes of `config`.
    pub fn new(config: &Config) -> Self {
        let mut table = RouteTable::default();
        for (index, route) in config.routes.iter().enumerate() {
            table.add(index, route);
        }
        table
            .wildcard_hosts
            .sort_by_key(|(suffix, _)| usize::MAX - suffix.len());
        let entries = &table.entries;
        table.any_host.sort(entries);
        for node in table.exact_hosts.values_mut() {
            node.sort(entries);
        }
        for (_, node) in &mut table.wildcard_hosts {
            node.sort(entries);
        }
        table
    }

    fn add(&mut self, index: usize, route: &Route) {
        self.entries.push(Entry {
            name: route.name.clone(),
            kind: route.kind,
            service: route.service.clone().unwrap_or_default(),
            methods: route.methods.clone(),
            headers: route
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            replace_prefix: route.replace_prefix.clone(),
            timeout_ms: route.timeout_ms,
        });
        let paths: Vec<String> = if route.paths.is_empty() {
            vec!["/".to_owned()]
        } else {
            route
                .paths
                .iter()
                .map(|p| trim_slash(&normalize(p)).to_owned())
                .collect()
        };
        let exact = route.path_match == PathMatch::Exact;
        let register = |node: &mut Node| {
            for path in &paths {
                let slot = Slot {
                    entry: index,
                    exact,
                    prefix_len: path.len(),
                };
                node.insert(path, slot);
            }
        };
        if route.hosts.is_empty() {
            register(&mut self.any_host);
        }
        for host in &route.hosts {
            match host.strip_prefix('*') {
                Some(suffix) => match self.wildcard_hosts.iter_mut().find(|(s, _)| s == suffix) {
                    Some((_, node)) => register(node),
                    None => {
                        let mut node = Node::default();
                        register(&mut node);
                        self.wildcard_hosts.push((suffix.to_owned(), node));
                    }
                },
                None => register(self.exact_hosts.entry(host.clone()).or_default()),
            }
        }
    }

    /// Every route, in the config's order.
    pub fn routes(&self) -> impl Iterator<Item = Listed<'_>> {
        self.entries.iter().map(|e| Listed {
            name: &e.name,
            kind: e.kind,
            service: &e.service,
            timeout_ms: e.timeout_ms,
        })
    }

    /// Number of routes in the table.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The route that handles `head`: exact host before wildcard host before
    /// any host; within a host, the longest matching path, then exact before
    /// prefix, more header conditions, restricted methods, document order.
    pub fn resolve(&self, head: &RequestHead<'_>) -> Option<Match<'_>> {
        let path = normalize(head.path());
        let trimmed = trim_slash(&path);
        let host = host_key(head.authority());
        let find = |node: &Node| node.find(trimmed, &mut trimmed.split('/'), &self.entries, head);
        let slot = self
            .exact_hosts
            .get(host.as_ref())
            .and_then(find)
            .or_else(|| {
                self.wildcard_hosts
                    .iter()
                    .filter(|(suffix, _)| {
                        host.len() > suffix.len() && host.ends_with(suffix.as_str())
                    })
                    .find_map(|(_, node)| find(node))
            })
            .or_else(|| find(&self.any_host))?;
        let entry = &self.entries[slot.entry];
        Some(Match {
            index: slot.entry,
            route: &entry.name,
            kind: entry.kind,
            service: &entry.service,
            upstream_path: upstream_path(
                &path,
                matches!(path, Cow::Owned(_)),
                &slot,
                entry,
                head.query(),
            ),
            timeout_ms: entry.timeout_ms,
        })
    }
}

/// The host of `authority` as the host index keys it: lower case, no port,
/// borrowed when it is already so.
fn host_key(authority: &str) -> Cow<'_, str> {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The path and query sent upstream, after `replace_prefix`; `None` when
/// the route sends the client's own (`normalized`: `path` is not the
/// client's own but its normalized form).
fn upstream_path(
    path: &str,
    normalized: bool,
    slot: &Slot,
    entry: &Entry,
    query: Option<&str>,
) -> Option<String> {
    let mut out = match &entry.replace_prefix {
        Some(replacement) if !slot.exact => {
            let prefix_len = if slot.prefix_len == 1 {
                0
            } else {
                slot.prefix_len
            };
            let rest = path.get(prefix_len..).unwrap_or("");
            let replacement = replacement.trim_end_matches('/');
            let joined = format!("{replacement}{rest}");
            if joined.starts_with('/') {
                joined
            } else {
                format!("/{joined}")
            }
        }
        _ if normalized => path.to_owned(),
        _ => return None,
    };
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Some(out)
}

/// `/a/b/` → `/a/b`; `/` stays.
fn trim_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

#[cfg(test)]
mod tests;

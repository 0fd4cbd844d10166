//! The README's error table against the codes a client can receive, both
//! ways: a code the gateway, a policy component, the AI component, the
//! admin API or the host can answer with that the table does not list
//! fails, and so does a row whose code nothing makes.
//!
//! The codes come from two places. [`GatewayError`]'s own are enumerated
//! here, one sample per variant (a new variant does not compile until it
//! has one), with their statuses. The codes the components and the host
//! make as strings (auth's denials, the splitter's refusals, the AI
//! component's, the admin API's, the component registry's) are read from
//! their sources, `components/*/src` and `host/src`, wherever a code is
//! written: `code: "…"`, `code: Some("…")`, a status followed by the code
//! (`409, "…"`, `StatusCode::NOT_FOUND, "…"`, `ErrorKind::NotFound, "…"`),
//! or an arm of a `fn code`. Tests (`tests.rs`, `tests/`, inline
//! `mod tests`) are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use upshift_core::GatewayError;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One row of the README's table: the code and its status.
fn table() -> BTreeMap<String, u16> {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md is readable");
    let mut lines = readme
        .lines()
        .skip_while(|line| !line.starts_with("| code | status |"))
        .skip(2);
    let mut rows = BTreeMap::new();
    for line in lines.by_ref().take_while(|line| line.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let code = cells[1].trim_matches('`').to_owned();
        let status = cells[2]
            .parse()
            .unwrap_or_else(|_| panic!("the status of row {code:?} is not a number"));
        assert!(
            rows.insert(code.clone(), status).is_none(),
            "the README lists {code:?} twice"
        );
    }
    assert!(
        !rows.is_empty(),
        "README.md has no `| code | status |` table"
    );
    rows
}

/// How many variants [`GatewayError`] has: one more than [`ordinal`]'s
/// highest.
const VARIANTS: usize = 17;

/// A position of every variant, so that a new variant needs a sample.
fn ordinal(error: &GatewayError) -> usize {
    match error {
        GatewayError::RouteNotFound { .. } => 0,
        GatewayError::Refused { .. } => 1,
        GatewayError::UpstreamTimeout { .. } => 2,
        GatewayError::UpstreamUnavailable { .. } => 3,
        GatewayError::UpstreamTlsFailed { .. } => 4,
        GatewayError::UpstreamNotAllowed { .. } => 5,
        GatewayError::BadTarget { .. } => 6,
        GatewayError::BadRequest(_) => 7,
        GatewayError::BadRequestBody(_) => 8,
        GatewayError::RequestBodyTimeout => 9,
        GatewayError::RequestTooLarge { .. } => 10,
        GatewayError::BodyConsumed => 11,
        GatewayError::ConfigStoreUnavailable(_) => 12,
        GatewayError::ConfigUnloadable { .. } => 13,
        GatewayError::UpgradeNotSupported(_) => 14,
        GatewayError::ProtocolNotSupported(_) => 15,
        GatewayError::ComponentFailed { .. } => 16,
    }
}

/// One of each variant but `Refused`, whose code is a component's.
fn gateway_errors() -> Vec<GatewayError> {
    let target = || "http://upstream".to_owned();
    let text = || "x".to_owned();
    vec![
        GatewayError::RouteNotFound {
            method: "GET".into(),
            path: "/".into(),
            unconfigured: false,
        },
        GatewayError::UpstreamTimeout {
            target: target(),
            timeout_ms: 1,
        },
        GatewayError::UpstreamUnavailable {
            target: target(),
            detail: text(),
        },
        GatewayError::UpstreamTlsFailed {
            target: target(),
            detail: text(),
        },
        GatewayError::UpstreamNotAllowed { target: target() },
        GatewayError::BadTarget { target: target() },
        GatewayError::BadRequest(text()),
        GatewayError::BadRequestBody(text()),
        GatewayError::RequestBodyTimeout,
        GatewayError::RequestTooLarge { limit: 1 },
        GatewayError::BodyConsumed,
        GatewayError::ConfigStoreUnavailable(text()),
        GatewayError::ConfigUnloadable {
            version: 1,
            detail: text(),
        },
        GatewayError::UpgradeNotSupported(text()),
        GatewayError::ProtocolNotSupported(text()),
        GatewayError::ComponentFailed {
            component: text(),
            detail: text(),
        },
    ]
}

/// A code found in a source file, with the status written next to it.
struct Found {
    code: String,
    status: Option<u16>,
    file: PathBuf,
}

/// The Rust files under `dir`, tests left out.
fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, files);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && name != "tests.rs" {
            files.push(path);
        }
    }
}

/// The source without comments and inline tests, its whitespace runs
/// made one space, so that a call split over lines reads as one.
fn flatten(source: &str) -> String {
    let code = source
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    let mut flat = String::with_capacity(code.len());
    for line in code.lines() {
        let line = line.trim();
        if line.starts_with("//") {
            continue;
        }
        flat.push_str(line);
        flat.push(' ');
    }
    flat
}

/// The byte ranges of the bodies of every `fn code(`.
fn code_fns(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    for (at, _) in text.match_indices("fn code(") {
        let Some(open) = text[at..].find('{').map(|o| at + o) else {
            continue;
        };
        let mut depth = 0usize;
        for (i, c) in text[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        ranges.push((open, open + i));
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    ranges
}

/// Whether `literal` has the shape of a code: lower case and underscores.
fn is_code(literal: &str) -> bool {
    literal.starts_with(|c: char| c.is_ascii_lowercase())
        && literal.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Where `text` (flattened) writes a code, and the status beside it.
fn codes_in(text: &str) -> Vec<(String, Option<u16>)> {
    let fns = code_fns(text);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        // A `'"'` char literal opens no string.
        if i > 0 && bytes[i - 1] == b'\'' && bytes.get(i + 1) == Some(&b'\'') {
            i += 2;
            continue;
        }
        let mut end = i + 1;
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let end = end.min(bytes.len());
        let literal = &text[i + 1..end];
        let after = text.get(end + 1..).unwrap_or_default().trim_start();
        // A match arm's pattern, not a value.
        let pattern = after.starts_with("=>") || after.starts_with('|');
        if is_code(literal) && !pattern {
            let before = text[..i].trim_end();
            if before.ends_with("code:") || before.ends_with("code: Some(") {
                found.push((literal.to_owned(), None));
            } else if let Some(before) = before.strip_suffix(',') {
                let before = before.trim_end();
                let start = before
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .map_or(0, |p| p + 1);
                let token = &before[start..];
                if let Ok(status @ 400..=599) = token.parse::<u16>() {
                    found.push((literal.to_owned(), Some(status)));
                } else if token.starts_with("StatusCode::") || token.starts_with("ErrorKind::") {
                    found.push((literal.to_owned(), None));
                }
            } else if before.ends_with("=>") && fns.iter().any(|&(a, b)| a < i && i < b) {
                found.push((literal.to_owned(), None));
            }
        }
        i = end + 1;
    }
    found
}

/// Every code the components and the host write, where.
fn written_codes() -> Vec<Found> {
    let root = root();
    let mut files = Vec::new();
    for entry in fs::read_dir(root.join("components")).expect("components/ is readable") {
        sources(&entry.expect("a component").path().join("src"), &mut files);
    }
    sources(&root.join("host/src"), &mut files);
    assert!(
        !files.is_empty(),
        "no sources found under {}",
        root.display()
    );
    let mut found = Vec::new();
    for file in files {
        let source = fs::read_to_string(&file).expect("a source is readable");
        for (code, status) in codes_in(&flatten(&source)) {
            found.push(Found {
                code,
                status,
                file: file.strip_prefix(&root).unwrap_or(&file).to_owned(),
            });
        }
    }
    found
}

#[test]
fn every_variant_has_a_sample() {
    let samples: BTreeSet<usize> = gateway_errors().iter().map(ordinal).collect();
    let refused = ordinal(&GatewayError::Refused {
        status: 403,
        code: "forbidden".into(),
        message: String::new(),
        headers: Vec::new(),
    });
    let every: BTreeSet<usize> = (0..VARIANTS).filter(|&o| o != refused).collect();
    assert_eq!(samples, every, "gateway_errors() needs one of each variant");
}

#[test]
fn the_readme_error_table_lists_every_code_and_no_other() {
    let table = table();
    let mut problems = Vec::new();
    let mut known = BTreeSet::new();
    for error in gateway_errors() {
        let (code, status) = (error.code().to_owned(), error.status().as_u16());
        match table.get(&code) {
            None => problems.push(format!(
                "{code} ({status}, GatewayError) is not in the table"
            )),
            Some(&listed) if listed != status => problems.push(format!(
                "{code}: GatewayError answers {status}, the table says {listed}"
            )),
            Some(_) => {}
        }
        known.insert(code);
    }
    for found in written_codes() {
        let file = found.file.display();
        match (table.get(&found.code), found.status) {
            (None, _) => problems.push(format!("{} ({file}) is not in the table", found.code)),
            (Some(&listed), Some(status)) if listed != status => problems.push(format!(
                "{}: {file} answers {status}, the table says {listed}",
                found.code
            )),
            _ => {}
        }
        known.insert(found.code);
    }
    for code in table.keys().filter(|code| !known.contains(*code)) {
        problems.push(format!("the table lists {code}, which no source makes"));
    }
    assert!(
        problems.is_empty(),
        "README.md's error table and the codes disagree:\n{}",
        problems.join("\n")
    );
}

#[test]
fn codes_are_found_where_they_are_written() {
    let text = flatten(
        "fn code(&self) -> &str {\n    match self {\n        A => \"alpha\",\n    }\n}\n\
         fn other() { match s { \"pattern\" => 1, _ => 2 }; let k = \"x_y\"; }\n\
         AdminResponse::error(\n    409,\n    \"beta\",\n    \"msg\",\n)\n\
         refused(StatusCode::NOT_FOUND, \"gamma\", m)\n\
         let e = Error { code: \"delta\".into() };\n\
         // code: \"commented\"\n\
         #[cfg(test)]\nmod tests {\n    const C: X = X { code: \"fake\" };\n}\n",
    );
    let found: Vec<(String, Option<u16>)> = codes_in(&text);
    let expected = [
        ("alpha", None),
        ("beta", Some(409)),
        ("gamma", None),
        ("delta", None),
    ]
    .map(|(code, status)| (code.to_owned(), status));
    assert_eq!(found, expected);
}

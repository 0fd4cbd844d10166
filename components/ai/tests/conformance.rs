//! The AI conformance suite: translates every fixture under
//! `tests/ai-conformance/` both ways and compares the result field by field
//! with the fixture on the other side. See that folder's README.md for the
//! layout and the normalizations.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use upshift_ai::dialect::{Dialect, StreamOptions};
use upshift_ai::{ApiError, StreamTranslator, sse};

/// The clock value fixtures use for OpenAI's `created` when the provider
/// gives none (the gateway stamps its own clock there).
const CLOCK: u64 = 1_700_000_000;

fn suite_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/ai-conformance")
}

/// One fixture folder: `<provider>/<feature>/`.
struct Case {
    dir: PathBuf,
    provider: Dialect,
    meta: Meta,
}

/// `case.json`, all fields optional.
#[derive(Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Meta {
    /// What the case shows.
    #[allow(dead_code)]
    description: String,
    /// The model the provider's URL names (Gemini).
    model: Option<String>,
    /// The provider's error status (`<provider>.error.json`).
    provider_status: Option<u16>,
    /// The status an OpenAI client gets (`openai.error.json`).
    openai_status: Option<u16>,
    /// JSON pointers left out of the comparison, with the reason, per
    /// direction: `to_openai`, `to_provider`, `roundtrip`.
    ignore: BTreeMap<String, BTreeMap<String, String>>,
    /// `to_openai` for fixtures in a provider's own shape that the encoders
    /// write differently (say, a finish reason riding on the last text
    /// chunk): only the provider → OpenAI direction is checked.
    only: Option<String>,
}

impl Case {
    fn name(&self) -> String {
        let relative = self.dir.strip_prefix(suite_root()).unwrap_or(&self.dir);
        relative.display().to_string()
    }

    fn file(&self, side: &str, kind: &str) -> Option<PathBuf> {
        let extension = match kind {
            "stream" | "streamed-response" => "sse",
            _ => "json",
        };
        let path = self.dir.join(format!("{side}.{kind}.{extension}"));
        path.exists().then_some(path)
    }

    fn provider_side(&self) -> &'static str {
        self.provider.name()
    }

    /// Whether the comparison in `direction` applies to this case.
    fn checks(&self, direction: &str) -> bool {
        self.meta
            .only
            .as_deref()
            .is_none_or(|only| only == direction)
    }

    fn ignored(&self, direction: &str) -> Vec<String> {
        self.meta
            .ignore
            .get(direction)
            .map(|pointers| pointers.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for provider in sorted_dirs(&suite_root()) {
        let name = provider.file_name().unwrap().to_str().unwrap().to_owned();
        let dialect =
            Dialect::from_name(&name).unwrap_or_else(|| panic!("unknown provider folder {name}"));
        for dir in sorted_dirs(&provider) {
            let meta = match fs::read(dir.join("case.json")) {
                Ok(bytes) => serde_json::from_slice(&bytes)
                    .unwrap_or_else(|e| panic!("{}/case.json: {e}", dir.display())),
                Err(_) => Meta::default(),
            };
            cases.push(Case {
                dir,
                provider: dialect,
                meta,
            });
        }
    }
    cases
}

fn sorted_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Strings holding a JSON object or array (tool arguments, tool results,
/// JSON answers) compare as the JSON they hold: providers format them
/// differently.
fn normalize(value: &mut Value) {
    match value {
        Value::String(text) => {
            let trimmed = text.trim_start();
            if (trimmed.starts_with('{') || trimmed.starts_with('['))
                && let Ok(mut parsed) = serde_json::from_str::<Value>(text)
            {
                normalize(&mut parsed);
                *value = parsed;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(map) => map.values_mut().for_each(normalize),
        _ => {}
    }
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(key);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = key.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

/// Field-by-field differences between `expected` and `actual`.
fn diff(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let path = format!("{path}/{key}");
                match a.get(key) {
                    Some(other) => diff(value, other, &path, out),
                    None => out.push(format!("{path}: missing, expected {value}")),
                }
            }
            for (key, value) in a {
                if !e.contains_key(key) {
                    out.push(format!("{path}/{key}: unexpected {value}"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (index, (e, a)) in e.iter().zip(a).enumerate() {
                diff(e, a, &format!("{path}/{index}"), out);
            }
        }
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

/// Compares two JSON documents after normalization and removal of the
/// ignored pointers; returns the differences.
fn compare(expected: &Value, actual: &Value, ignored: &[String]) -> Vec<String> {
    let (mut expected, mut actual) = (expected.clone(), actual.clone());
    for pointer in ignored {
        remove_pointer(&mut expected, pointer);
        remove_pointer(&mut actual, pointer);
    }
    normalize(&mut expected);
    normalize(&mut actual);
    let mut out = Vec::new();
    diff(&expected, &actual, "", &mut out);
    out
}

/// Collects failures across all cases and reports them together.
#[derive(Default)]
struct Report {
    checked: usize,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, what: String, differences: Vec<String>) {
        self.checked += 1;
        if !differences.is_empty() {
            self.failures
                .push(format!("{what}:\n    {}", differences.join("\n    ")));
        }
    }

    fn fail(&mut self, what: String, error: impl std::fmt::Display) {
        self.checked += 1;
        self.failures.push(format!("{what}: {error}"));
    }

    fn finish(self, minimum: usize) {
        assert!(
            self.failures.is_empty(),
            "{} of {} checks failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
        assert!(
            self.checked >= minimum,
            "only {} checks ran, expected at least {minimum}",
            self.checked
        );
    }
}

fn parse_request(
    case: &Case,
    dialect: Dialect,
    path: &Path,
) -> Result<upshift_ai::ir::Request, String> {
    let mut request = dialect
        .parse_request(&fs::read(path).unwrap())
        .map_err(|e| e.to_string())?;
    if dialect == Dialect::Gemini {
        // Gemini names the model and streaming in the URL.
        request.model = case.meta.model.clone().unwrap_or_default();
        if let Some(openai) = case.file("openai", "request") {
            request.stream = read_json(&openai)["stream"] == true;
            request.include_usage = request.stream;
        }
    }
    Ok(request)
}

fn translate_request(
    case: &Case,
    from: Dialect,
    to: Dialect,
    input: &Path,
) -> Result<Value, String> {
    let request = parse_request(case, from, input)?;
    let body = to.render_request(&request).map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

fn translate_response(from: Dialect, to: Dialect, input: &Path) -> Result<Value, String> {
    let mut response = from
        .parse_response(&fs::read(input).unwrap())
        .map_err(|e| e.to_string())?;
    if response.created == 0 {
        response.created = CLOCK;
    }
    let body = to.render_response(&response).map_err(|e| e.to_string())?;
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// An SSE file as `(event name, data)` pairs, data parsed as JSON unless
/// it is `[DONE]`; `ping` events (keep-alives) are left out.
fn read_stream(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    parser.push(bytes, &mut events);
    parser.finish(&mut events);
    events
        .into_iter()
        .filter(|e| e.event.as_deref() != Some("ping"))
        .map(|e| {
            let data = if e.data == "[DONE]" {
                Value::String(e.data)
            } else {
                serde_json::from_str(&e.data).unwrap_or_else(|err| panic!("{err}: {}", e.data))
            };
            (e.event, data)
        })
        .collect()
}

/// Translates a stream, feeding it in small pieces to exercise the
/// incremental path.
fn translate_stream(from: Dialect, to: Dialect, input: &Path) -> Vec<u8> {
    let options = StreamOptions {
        include_usage: true,
        created: CLOCK,
    };
    let mut translator = StreamTranslator::new(from, to, options);
    let mut out = Vec::new();
    for piece in fs::read(input).unwrap().chunks(7) {
        translator.push(piece, &mut out);
    }
    translator.finish(&mut out);
    out
}

fn compare_streams(expected: &[u8], actual: &[u8], ignored: &[String]) -> Vec<String> {
    let expected = read_stream(expected);
    let actual = read_stream(actual);
    let mut out = Vec::new();
    if expected.len() != actual.len() {
        out.push(format!(
            "expected {} events, got {}:\n      {}",
            expected.len(),
            actual.len(),
            actual
                .iter()
                .map(|(name, data)| format!("{} {data}", name.as_deref().unwrap_or("data")))
                .collect::<Vec<_>>()
                .join("\n      ")
        ));
        return out;
    }
    for (index, ((e_name, e_data), (a_name, a_data))) in expected.iter().zip(&actual).enumerate() {
        if e_name != a_name {
            out.push(format!(
                "event {index}: expected name {e_name:?}, got {a_name:?}"
            ));
        }
        for difference in compare(e_data, a_data, ignored) {
            out.push(format!("event {index}{difference}"));
        }
    }
    out
}

#[test]
fn suite_covers_every_provider_and_feature() {
    let cases = cases();
    for provider in [
        Dialect::Anthropic,
        Dialect::Gemini,
        Dialect::OpenAiResponses,
    ] {
        assert!(
            cases.iter().any(|c| c.provider == provider),
            "no fixtures for {}",
            provider.name()
        );
    }
    let files: usize = cases
        .iter()
        .map(|c| fs::read_dir(&c.dir).unwrap().count())
        .sum();
    println!("{} cases, {files} files", cases.len());
    assert!(cases.len() >= 20, "{} cases", cases.len());
}

/// The direction from a provider's fixtures to OpenAI's.
const TO_OPENAI: &str = "to_openai";
/// The direction from OpenAI's fixtures to a provider's.
const TO_PROVIDER: &str = "to_provider";

/// One direction of a case: the fixture to translate, in which dialect,
/// and the fixture it should come out as.
struct Leg {
    from: Dialect,
    input: PathBuf,
    to: Dialect,
    expected: PathBuf,
    /// [`TO_OPENAI`], [`TO_PROVIDER`] or `roundtrip`: which of the case's
    /// ignored pointers apply.
    direction: &'static str,
    /// What the leg checks, for the report.
    what: String,
}

impl Case {
    /// The leg going `direction` from the `input` fixture of one side to
    /// the `expected` fixture of the other, if the case has both and
    /// checks that direction.
    fn leg(&self, (input, expected): (&str, &str), direction: &'static str) -> Option<Leg> {
        let openai = (Dialect::OpenAiChat, "openai");
        let provider = (self.provider, self.provider_side());
        let ((from, from_side), (to, to_side)) = if direction == TO_OPENAI {
            (provider, openai)
        } else {
            (openai, provider)
        };
        let (Some(input_file), Some(expected_file)) =
            (self.file(from_side, input), self.file(to_side, expected))
        else {
            return None;
        };
        if !self.checks(direction) {
            return None;
        }
        let streamed = if input == expected { "" } else { " stream" };
        Some(Leg {
            from,
            input: input_file,
            to,
            expected: expected_file,
            direction,
            what: format!("{} {input} {from_side} → {to_side}{streamed}", self.name()),
        })
    }

    /// The leg that reads the `kind` fixture of `side` (in `dialect`) and
    /// writes it back, if the case has it.
    fn round_trip(&self, kind: &str, side: &str, dialect: Dialect) -> Option<Leg> {
        let path = self.file(side, kind)?;
        Some(Leg {
            from: dialect,
            input: path.clone(),
            to: dialect,
            expected: path,
            direction: "roundtrip",
            what: format!("{} {kind} {side} round trip", self.name()),
        })
    }
}

/// How a leg's translation differs from what it should come out as, or
/// why it failed.
type Differences = Result<Vec<String>, String>;

/// Checks the legs of every case going each of `directions` from the
/// `kinds` of fixtures (the input's, the expected output's), with
/// `differences`, expecting at least `minimum` checks.
fn check_legs(
    kinds: (&str, &str),
    directions: &[&'static str],
    minimum: usize,
    differences: impl Fn(&Case, &Leg) -> Differences,
) {
    let mut report = Report::default();
    for case in cases() {
        for &direction in directions {
            if let Some(leg) = case.leg(kinds, direction) {
                report.record(&case, &leg, &differences);
            }
        }
    }
    report.finish(minimum);
}

impl Report {
    fn record(
        &mut self,
        case: &Case,
        leg: &Leg,
        differences: &impl Fn(&Case, &Leg) -> Differences,
    ) {
        match differences(case, leg) {
            Ok(found) => self.check(leg.what.clone(), found),
            Err(error) => self.fail(leg.what.clone(), error),
        }
    }
}

/// How the JSON body a leg wrote differs from the one expected.
fn json_differs(case: &Case, leg: &Leg, actual: &Value) -> Vec<String> {
    compare(
        &read_json(&leg.expected),
        actual,
        &case.ignored(leg.direction),
    )
}

/// How the stream a leg wrote differs from the one expected.
fn stream_differs(case: &Case, leg: &Leg, actual: &[u8]) -> Vec<String> {
    let expected = fs::read(&leg.expected).unwrap();
    compare_streams(&expected, actual, &case.ignored(leg.direction))
}

fn request_differences(case: &Case, leg: &Leg) -> Differences {
    let actual = translate_request(case, leg.from, leg.to, &leg.input)?;
    Ok(json_differs(case, leg, &actual))
}

fn response_differences(case: &Case, leg: &Leg) -> Differences {
    let actual = translate_response(leg.from, leg.to, &leg.input)?;
    Ok(json_differs(case, leg, &actual))
}

fn stream_differences(case: &Case, leg: &Leg) -> Differences {
    let actual = translate_stream(leg.from, leg.to, &leg.input);
    Ok(stream_differs(case, leg, &actual))
}

#[test]
fn requests_translate_from_openai_to_providers() {
    check_legs(
        ("request", "request"),
        &[TO_PROVIDER],
        10,
        request_differences,
    );
}

#[test]
fn requests_translate_from_providers_to_openai() {
    check_legs(
        ("request", "request"),
        &[TO_OPENAI],
        10,
        request_differences,
    );
}

#[test]
fn responses_translate_from_providers_to_openai() {
    check_legs(
        ("response", "response"),
        &[TO_OPENAI],
        10,
        response_differences,
    );
}

#[test]
fn responses_translate_from_openai_to_providers() {
    check_legs(
        ("response", "response"),
        &[TO_PROVIDER],
        10,
        response_differences,
    );
}

#[test]
fn streams_translate_from_providers_to_openai() {
    check_legs(("stream", "stream"), &[TO_OPENAI], 8, stream_differences);
}

#[test]
fn streams_translate_from_openai_to_providers() {
    check_legs(("stream", "stream"), &[TO_PROVIDER], 8, stream_differences);
}

/// A provider that answered a streamed request whole: its response reaches
/// the client as the stream of the client's dialect.
#[test]
fn whole_responses_stream_in_the_clients_dialect() {
    let options = StreamOptions {
        include_usage: true,
        created: CLOCK,
    };
    check_legs(
        ("response", "streamed-response"),
        &[TO_OPENAI, TO_PROVIDER],
        10,
        |case, leg| {
            let actual = leg
                .from
                .parse_response(&fs::read(&leg.input).unwrap())
                .and_then(|response| upshift_ai::stream_response(leg.to, &response, options))
                .map_err(|error| error.to_string())?;
            Ok(stream_differs(case, leg, &actual))
        },
    );
}

#[test]
fn errors_translate_with_their_status() {
    check_legs(
        ("error", "error"),
        &[TO_OPENAI, TO_PROVIDER],
        6,
        |case, leg| {
            let provider_status = case
                .meta
                .provider_status
                .expect("case.json: provider_status");
            let openai_status = case.meta.openai_status.expect("case.json: openai_status");
            let (status, expected_status) = if leg.direction == TO_OPENAI {
                (provider_status, openai_status)
            } else {
                (openai_status, provider_status)
            };
            let error = ApiError::parse(leg.from, status, &fs::read(&leg.input).unwrap());
            let (actual_status, body) = error.render(leg.to);
            let mut differences = json_differs(case, leg, &serde_json::from_slice(&body).unwrap());
            if actual_status != expected_status {
                differences.push(format!(
                    "status: expected {expected_status}, got {actual_status}"
                ));
            }
            Ok(differences)
        },
    );
}

/// Every fixture file reads and writes back as itself in its own dialect:
/// the IR loses nothing the dialect can say.
#[test]
fn every_fixture_round_trips_in_its_own_dialect() {
    let mut report = Report::default();
    for case in cases().into_iter().filter(|c| c.checks("roundtrip")) {
        for (side, dialect) in [
            ("openai", Dialect::OpenAiChat),
            (case.provider_side(), case.provider),
        ] {
            if let Some(leg) = case.round_trip("request", side, dialect) {
                report.record(&case, &leg, &request_differences);
            }
            if let Some(leg) = case.round_trip("response", side, dialect) {
                report.record(&case, &leg, &response_differences);
            }
            if let Some(leg) = case.round_trip("stream", side, dialect) {
                report.record(&case, &leg, &stream_differences);
            }
        }
    }
    report.finish(30);
}

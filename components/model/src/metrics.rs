//! The counters kept per route and version (and per rollout step), their
//! field names in the store, and what they add up to.
//!
//! Every attempt at an upstream counts once in `requests` and once in
//! exactly one outcome field: `status_1xx` … `status_5xx` when a response
//! head arrived, else `failures` (no response) or `timeouts`. Failures and
//! timeouts are not counted under `status_5xx`; [`VersionStats::errors`]
//! adds the three. Every attempt's latency (to the response head, or to the
//! failure) counts in one latency bucket and in `latency_ms_sum`. Shadow
//! copies count only in the `shadow_*` fields of the version they went to.
//! gRPC calls count again by status (`grpc_status_*`), and relayed
//! WebSocket connections in the `websocket_*` fields of their version.

use std::collections::BTreeMap;

/// Upper bounds (inclusive) of the latency buckets, in milliseconds; a last
/// bucket takes everything above.
pub const LATENCY_BOUNDS_MS: [u32; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Number of latency buckets: one per bound plus the overflow bucket.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

/// Attempts.
pub const REQUESTS: &str = "requests";
/// Attempts answered with a status of class 1xx … 5xx, by class.
pub const STATUS_CLASSES: [&str; 5] = [
    "status_1xx",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
];
/// Attempts that got no response (refused, reset, protocol error).
pub const FAILURES: &str = "failures";
/// Attempts that got no response head in time.
pub const TIMEOUTS: &str = "timeouts";
/// Sum of the attempts' latencies, in milliseconds.
pub const LATENCY_MS_SUM: &str = "latency_ms_sum";
/// Attempts per latency bucket (not cumulative), by bucket index.
pub const LATENCY_BUCKET_FIELDS: [&str; LATENCY_BUCKETS] = [
    "latency_bucket_0",
    "latency_bucket_1",
    "latency_bucket_2",
    "latency_bucket_3",
    "latency_bucket_4",
    "latency_bucket_5",
    "latency_bucket_6",
    "latency_bucket_7",
    "latency_bucket_8",
    "latency_bucket_9",
    "latency_bucket_10",
    "latency_bucket_11",
];
/// Sum of what the attempts cost, in billionths of a US dollar (AI
/// versions, from the model's price).
pub const COST_NANOUSD_SUM: &str = "cost_nanousd_sum";
/// AI answers whose time to first token, output and refusal were counted.
pub const AI_ANSWERS: &str = "ai_answers";
/// Sum of the AI answers' times to the first token (to the whole answer
/// when not streamed), in milliseconds.
pub const TTFT_MS_SUM: &str = "ttft_ms_sum";
/// Sum of the AI answers' output tokens.
pub const OUTPUT_TOKENS: &str = "output_tokens";
/// Sum of the AI answers' generation times (first token to the end of a
/// stream; the whole answer otherwise), in milliseconds.
pub const GENERATION_MS_SUM: &str = "generation_ms_sum";
/// AI answers that were refusals: stopped by a content filter, or empty.
pub const REFUSALS: &str = "refusals";
/// Shadow copies sent to this version.
pub const SHADOW_REQUESTS: &str = "shadow_requests";
/// Shadow copies whose outcome differed from the primary's: another status
/// class, or one side answered and the other did not.
pub const SHADOW_MISMATCHES: &str = "shadow_mismatches";
/// Shadow copies that got no response or timed out.
pub const SHADOW_FAILURES: &str = "shadow_failures";
/// Shadow copies whose answer was compared with the primary's, field by
/// field.
pub const SHADOW_COMPARED: &str = "shadow_compared";
/// Compared shadow copies whose answer differed from the primary's in a
/// field that is not noise.
pub const SHADOW_DIFFS: &str = "shadow_diffs";

/// Prefix of the fields counting gRPC calls by status (`grpc_status_14`).
/// A call also counts in the status class its status maps to (see
/// `upshift_core::grpc`), so these only tell the statuses apart.
pub const GRPC_STATUS_PREFIX: &str = "grpc_status_";
/// WebSocket connections switched (handshakes answered `101`).
pub const WEBSOCKET_OPENED: &str = "websocket_opened";
/// WebSocket connections ended; open ones are `opened - closed`.
pub const WEBSOCKET_CLOSED: &str = "websocket_closed";
/// WebSocket messages relayed from the client to the upstream.
pub const WEBSOCKET_MESSAGES_UP: &str = "websocket_messages_up";
/// WebSocket messages relayed from the upstream to the client.
pub const WEBSOCKET_MESSAGES_DOWN: &str = "websocket_messages_down";
/// Prefix of the fields counting ended WebSocket connections by close
/// code (`websocket_close_1001`; 1005 for a close without a code).
pub const WEBSOCKET_CLOSE_PREFIX: &str = "websocket_close_";

/// The field counting gRPC calls that ended with status `code`.
pub fn grpc_status_field(code: u32) -> String {
    format!("{GRPC_STATUS_PREFIX}{code}")
}

/// The field counting WebSocket connections closed with `code`.
pub fn websocket_close_field(code: u16) -> String {
    format!("{WEBSOCKET_CLOSE_PREFIX}{code}")
}

/// Every field, in the order [`VersionStats::fields`] lists them.
pub const FIELDS: [&str; 32] = [
    REQUESTS,
    STATUS_CLASSES[0],
    STATUS_CLASSES[1],
    STATUS_CLASSES[2],
    STATUS_CLASSES[3],
    STATUS_CLASSES[4],
    FAILURES,
    TIMEOUTS,
    LATENCY_MS_SUM,
    LATENCY_BUCKET_FIELDS[0],
    LATENCY_BUCKET_FIELDS[1],
    LATENCY_BUCKET_FIELDS[2],
    LATENCY_BUCKET_FIELDS[3],
    LATENCY_BUCKET_FIELDS[4],
    LATENCY_BUCKET_FIELDS[5],
    LATENCY_BUCKET_FIELDS[6],
    LATENCY_BUCKET_FIELDS[7],
    LATENCY_BUCKET_FIELDS[8],
    LATENCY_BUCKET_FIELDS[9],
    LATENCY_BUCKET_FIELDS[10],
    LATENCY_BUCKET_FIELDS[11],
    COST_NANOUSD_SUM,
    AI_ANSWERS,
    TTFT_MS_SUM,
    OUTPUT_TOKENS,
    GENERATION_MS_SUM,
    REFUSALS,
    SHADOW_REQUESTS,
    SHADOW_MISMATCHES,
    SHADOW_FAILURES,
    SHADOW_COMPARED,
    SHADOW_DIFFS,
];

/// The field counting responses with `status` (statuses outside 100–599
/// count with the nearest class).
pub fn status_field(status: u16) -> &'static str {
    STATUS_CLASSES[usize::from(status / 100).clamp(1, 5) - 1]
}

/// The fields an attempt adds to, with what it adds: requests, its
/// `outcome`'s field (a status class, [`FAILURES`] or [`TIMEOUTS`]), its
/// latency bucket and the latency sum.
pub fn attempt_fields(outcome: &'static str, latency_ms: u32) -> [(&'static str, i64); 4] {
    [
        (REQUESTS, 1),
        (outcome, 1),
        (LATENCY_BUCKET_FIELDS[latency_bucket(latency_ms)], 1),
        (LATENCY_MS_SUM, i64::from(latency_ms)),
    ]
}

/// Index of the latency bucket of `latency_ms`.
pub fn latency_bucket(latency_ms: u32) -> usize {
    LATENCY_BOUNDS_MS.partition_point(|bound| *bound < latency_ms)
}

/// The counters of one version, summed over whatever keys were read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionStats {
    /// Attempts.
    pub requests: u64,
    /// Attempts answered, by status class (1xx at index 0).
    pub by_class: [u64; 5],
    /// Attempts without a response.
    pub failures: u64,
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Attempts per latency bucket (not cumulative).
    pub latency_buckets: [u64; LATENCY_BUCKETS],
    /// Sum of latencies, in milliseconds.
    pub latency_ms_sum: u64,
    /// Sum of costs, in billionths of a US dollar.
    pub cost_nanousd: u64,
    /// AI answers counted for time to first token, output and refusals.
    pub ai: AiStats,
    /// Shadow copies received.
    pub shadow_requests: u64,
    /// Shadow copies whose outcome differed from the primary's.
    pub shadow_mismatches: u64,
    /// Shadow copies without a response.
    pub shadow_failures: u64,
    /// Shadow copies whose answer was compared field by field.
    pub shadow_compared: u64,
    /// Compared shadow copies that differed in a field that is not noise.
    pub shadow_diffs: u64,
    /// gRPC calls by status code.
    pub grpc_statuses: BTreeMap<u32, u64>,
    /// WebSocket connections and messages.
    pub websocket: WebSocketStats,
}

/// The AI answer counters of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AiStats {
    /// Answers counted.
    pub answers: u64,
    /// Sum of their times to the first token, in milliseconds.
    pub ttft_ms_sum: u64,
    /// Sum of their output tokens.
    pub output_tokens: u64,
    /// Sum of their generation times, in milliseconds.
    pub generation_ms_sum: u64,
    /// Answers that were refusals.
    pub refusals: u64,
}

impl AiStats {
    /// The mean time to the first token, in milliseconds; `None` without
    /// answers.
    pub fn mean_ttft_ms(&self) -> Option<f64> {
        (self.answers > 0).then(|| self.ttft_ms_sum as f64 / self.answers as f64)
    }

    /// Output tokens per second of generation; `None` without generation
    /// time.
    pub fn tokens_per_second(&self) -> Option<f64> {
        (self.generation_ms_sum > 0)
            .then(|| self.output_tokens as f64 * 1000.0 / self.generation_ms_sum as f64)
    }

    /// Refusals per answer; `None` without answers.
    pub fn refusal_rate(&self) -> Option<f64> {
        ratio(self.refusals, self.answers)
    }
}

/// What one AI call's answer came to: its cost, and (for a success) how
/// fast it came and whether it was a refusal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AiAnswer {
    /// What it cost, in billionths of a US dollar.
    pub nano_usd: u64,
    /// Whether an answer was counted: only then do the fields below count.
    pub counted: bool,
    /// Time from the request to the first token the client got (to the
    /// whole answer when not streamed), in milliseconds.
    pub ttft_ms: u32,
    /// Time from the first token to the end of the answer (the whole
    /// answer when not streamed), in milliseconds.
    pub generation_ms: u32,
    /// Output tokens.
    pub output_tokens: u64,
    /// Whether it was a refusal.
    pub refused: bool,
}

impl AiAnswer {
    /// The fields it adds to, with what it adds; none of them zero.
    pub fn fields(&self) -> Vec<(&'static str, i64)> {
        let mut fields = vec![(COST_NANOUSD_SUM, clamp(self.nano_usd))];
        if self.counted {
            fields.extend([
                (AI_ANSWERS, 1),
                (TTFT_MS_SUM, i64::from(self.ttft_ms)),
                (GENERATION_MS_SUM, i64::from(self.generation_ms)),
                (OUTPUT_TOKENS, clamp(self.output_tokens)),
                (REFUSALS, i64::from(self.refused)),
            ]);
        }
        fields.retain(|(_, delta)| *delta != 0);
        fields
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The WebSocket counters of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebSocketStats {
    /// Connections switched.
    pub opened: u64,
    /// Connections ended.
    pub closed: u64,
    /// Messages relayed to the upstream.
    pub messages_up: u64,
    /// Messages relayed to the client.
    pub messages_down: u64,
    /// Ended connections by close code.
    pub closes: BTreeMap<u16, u64>,
}

impl WebSocketStats {
    /// Connections open now (as far as the counters have heard).
    pub fn open(&self) -> u64 {
        self.opened.saturating_sub(self.closed)
    }
}

impl VersionStats {
    /// Adds up `(field, value)` pairs; unknown fields are ignored, repeated
    /// fields add.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut stats = VersionStats::default();
        for (field, value) in fields {
            if let Some(counter) = stats.counter_mut(field) {
                *counter = counter.saturating_add(value);
            }
        }
        stats
    }

    /// Every field with its value, in the order of [`FIELDS`].
    pub fn fields(&self) -> Vec<(&'static str, u64)> {
        let mut fields = Vec::with_capacity(FIELDS.len());
        fields.push((REQUESTS, self.requests));
        fields.extend(STATUS_CLASSES.into_iter().zip(self.by_class));
        fields.push((FAILURES, self.failures));
        fields.push((TIMEOUTS, self.timeouts));
        fields.push((LATENCY_MS_SUM, self.latency_ms_sum));
        fields.extend(LATENCY_BUCKET_FIELDS.into_iter().zip(self.latency_buckets));
        fields.push((COST_NANOUSD_SUM, self.cost_nanousd));
        fields.push((AI_ANSWERS, self.ai.answers));
        fields.push((TTFT_MS_SUM, self.ai.ttft_ms_sum));
        fields.push((OUTPUT_TOKENS, self.ai.output_tokens));
        fields.push((GENERATION_MS_SUM, self.ai.generation_ms_sum));
        fields.push((REFUSALS, self.ai.refusals));
        fields.push((SHADOW_REQUESTS, self.shadow_requests));
        fields.push((SHADOW_MISMATCHES, self.shadow_mismatches));
        fields.push((SHADOW_FAILURES, self.shadow_failures));
        fields.push((SHADOW_COMPARED, self.shadow_compared));
        fields.push((SHADOW_DIFFS, self.shadow_diffs));
        fields
    }

    fn counter_mut(&mut self, field: &str) -> Option<&mut u64> {
        if let Some(code) = field.strip_prefix(GRPC_STATUS_PREFIX) {
            return Some(self.grpc_statuses.entry(code.parse().ok()?).or_default());
        }
        if let Some(code) = field.strip_prefix(WEBSOCKET_CLOSE_PREFIX) {
            return Some(self.websocket.closes.entry(code.parse().ok()?).or_default());
        }
        Some(match field {
            WEBSOCKET_OPENED => &mut self.websocket.opened,
            WEBSOCKET_CLOSED => &mut self.websocket.closed,
            WEBSOCKET_MESSAGES_UP => &mut self.websocket.messages_up,
            WEBSOCKET_MESSAGES_DOWN => &mut self.websocket.messages_down,
            REQUESTS => &mut self.requests,
            FAILURES => &mut self.failures,
            TIMEOUTS => &mut self.timeouts,
            LATENCY_MS_SUM => &mut self.latency_ms_sum,
            COST_NANOUSD_SUM => &mut self.cost_nanousd,
            AI_ANSWERS => &mut self.ai.answers,
            TTFT_MS_SUM => &mut self.ai.ttft_ms_sum,
            OUTPUT_TOKENS => &mut self.ai.output_tokens,
            GENERATION_MS_SUM => &mut self.ai.generation_ms_sum,
            REFUSALS => &mut self.ai.refusals,
            SHADOW_REQUESTS => &mut self.shadow_requests,
            SHADOW_MISMATCHES => &mut self.shadow_mismatches,
            SHADOW_FAILURES => &mut self.shadow_failures,
            SHADOW_COMPARED => &mut self.shadow_compared,
            SHADOW_DIFFS => &mut self.shadow_diffs,
            _ => {
                if let Some(i) = STATUS_CLASSES.iter().position(|f| *f == field) {
                    &mut self.by_class[i]
                } else {
                    let i = LATENCY_BUCKET_FIELDS.iter().position(|f| *f == field)?;
                    &mut self.latency_buckets[i]
                }
            }
        })
    }

    /// Attempts that failed: 5xx responses, failures and timeouts.
    pub fn errors(&self) -> u64 {
        self.by_class[4]
            .saturating_add(self.failures)
            .saturating_add(self.timeouts)
    }

    /// [`errors`](Self::errors) per request; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        ratio(self.errors(), self.requests)
    }

    /// The latency at quantile `q` (0–1], as the upper bound of the bucket it
    /// falls in; `u32::MAX` when it falls above the last bound, `None`
    /// without data.
    pub fn quantile_ms(&self, q: f64) -> Option<u32> {
        let total: u64 = self.latency_buckets.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank of the q-quantile observation, 1-based.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(LATENCY_BOUNDS_MS.get(i).copied().unwrap_or(u32::MAX));
            }
        }
        Some(u32::MAX)
    }

    /// Cost per request in US dollars; `None` without requests.
    pub fn cost_per_request(&self) -> Option<f64> {
        ratio(self.cost_nanousd, self.requests).map(|nano| nano / 1e9)
    }

    /// Differing compared copies per compared copy; `None` without any.
    pub fn shadow_diff_rate(&self) -> Option<f64> {
        ratio(self.shadow_diffs, self.shadow_compared)
    }

    /// Shadow mismatches per shadow copy; `None` without copies.
    pub fn shadow_mismatch_rate(&self) -> Option<f64> {
        ratio(self.shadow_mismatches, self.shadow_requests)
    }
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_classes() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(5), 0);
        assert_eq!(latency_bucket(6), 1);
        assert_eq!(latency_bucket(10_000), 10);
        assert_eq!(latency_bucket(10_001), 11);
        assert_eq!(latency_bucket(u32::MAX), 11);
        assert_eq!(status_field(204), "status_2xx");
        assert_eq!(status_field(503), "status_5xx");
        assert_eq!(status_field(42), "status_1xx");
        assert_eq!(status_field(999), "status_5xx");
    }

    #[test]
    fn fields_round_trip_and_unknown_fields_are_ignored() {
        let mut stats = VersionStats {
            requests: 10,
            failures: 1,
            timeouts: 2,
            latency_ms_sum: 1234,
            cost_nanousd: 50_000_000,
            shadow_requests: 4,
            shadow_mismatches: 1,
            shadow_failures: 1,
            ..VersionStats::default()
        };
        stats.by_class[1] = 6;
        stats.by_class[4] = 1;
        stats.latency_buckets[3] = 9;
        stats.latency_buckets[11] = 1;
        let fields = stats.fields();
        assert_eq!(fields.iter().map(|(f, _)| *f).collect::<Vec<_>>(), FIELDS);
        let again = VersionStats::from_fields(fields.into_iter().chain([("bogus", 7)]));
        assert_eq!(again, stats);
        assert_eq!(again.errors(), 4);
        assert_eq!(again.error_rate(), Some(0.4));
        assert_eq!(again.shadow_mismatch_rate(), Some(0.25));
        assert_eq!(again.cost_per_request(), Some(0.005));
    }

    #[test]
    fn quantiles_are_bucket_bounds() {
        let empty = VersionStats::default();
        assert_eq!(empty.quantile_ms(0.99), None);
        assert_eq!(empty.error_rate(), None);
        let mut stats = VersionStats::default();
        stats.latency_buckets[2] = 98; // ≤ 25 ms
        stats.latency_buckets[5] = 1; // ≤ 250 ms
        stats.latency_buckets[11] = 1; // above 10 s
        assert_eq!(stats.quantile_ms(0.5), Some(25));
        assert_eq!(stats.quantile_ms(0.98), Some(25));
        assert_eq!(stats.quantile_ms(0.99), Some(250));
        assert_eq!(stats.quantile_ms(1.0), Some(u32::MAX));
        assert_eq!(stats.quantile_ms(0.0), Some(25));
    }

    #[test]
    fn grpc_and_websocket_fields_add_up_by_code() {
        let stats = VersionStats::from_fields([
            ("grpc_status_0", 8),
            ("grpc_status_14", 2),
            ("grpc_status_14", 1),
            ("grpc_status_x", 5),
            (WEBSOCKET_OPENED, 3),
            (WEBSOCKET_CLOSED, 2),
            (WEBSOCKET_MESSAGES_UP, 7),
            (WEBSOCKET_MESSAGES_DOWN, 6),
            (websocket_close_field(1001).as_str(), 2),
        ]);
        assert_eq!(stats.grpc_statuses, BTreeMap::from([(0, 8), (14, 3)]));
        assert_eq!(stats.websocket.open(), 1);
        assert_eq!(
            (stats.websocket.messages_up, stats.websocket.messages_down),
            (7, 6)
        );
        assert_eq!(stats.websocket.closes, BTreeMap::from([(1001, 2)]));
        assert_eq!(grpc_status_field(14), "grpc_status_14");
        assert_eq!(stats.requests, 0, "these fields count no attempt");
    }
}

//! W3C Trace Context (`traceparent`): a request continues the trace its
//! client started, or starts one, and the gateway's span of it becomes the
//! parent of what the upstream does.

use std::fmt;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";

/// The gateway's place in a trace: the trace, its own span, and the
/// caller's flags (sampled or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace, 16 bytes, never all zero.
    pub trace_id: u128,
    /// The gateway's span, 8 bytes, never zero.
    pub span_id: u64,
    /// The span the client's `traceparent` named, if it sent one.
    pub parent_id: Option<u64>,
    /// `trace-flags`; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// The gateway's span of the trace `traceparent` carries, with the span
    /// id `span`; a missing or malformed header starts a trace `trace`,
    /// sampled. Zero ids are replaced by one.
    pub fn continue_or_start(traceparent: Option<&[u8]>, trace: u128, span: u64) -> Self {
        let span_id = span.max(1);
        match traceparent.and_then(parse) {
            Some((trace_id, parent_id, flags)) => TraceContext {
                trace_id,
                span_id,
                parent_id: Some(parent_id),
                flags,
            },
            None => TraceContext {
                trace_id: trace.max(1),
                span_id,
                parent_id: None,
                flags: 1,
            },
        }
    }

    /// The span a valid `traceparent` names as the parent: the sender's
    /// own, as a sender wrote it.
    pub fn of_sender(traceparent: &[u8]) -> Option<Self> {
        let (trace_id, span_id, flags) = parse(traceparent)?;
        Some(TraceContext {
            trace_id,
            span_id,
            parent_id: None,
            flags,
        })
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id as 16 lowercase hex digits.
    pub fn span_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// The `traceparent` that names the gateway's span as the parent.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

/// Trace id, parent id and flags of a valid `traceparent` (version `00`,
/// or a later version read as `00`, as the recommendation asks).
fn parse(value: &[u8]) -> Option<(u128, u64, u8)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let mut fields = value.split('-');
    let version = fields.next()?;
    let (trace, parent, flags) = (fields.next()?, fields.next()?, fields.next()?);
    let lower_hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = lower_hex(version, 2)
        && version != "ff"
        && (version != "00" || fields.next().is_none())
        && lower_hex(trace, 32)
        && lower_hex(parent, 16)
        && lower_hex(flags, 2);
    if !valid {
        return None;
    }
    let trace = u128::from_str_radix(trace, 16).ok()?;
    let parent = u64::from_str_radix(parent, 16).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace != 0 && parent != 0).then_some((trace, parent, flags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn continues_the_callers_trace() {
        let cx = TraceContext::continue_or_start(Some(SAMPLE.as_bytes()), 7, 0xabc);
        assert_eq!(cx.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(cx.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_eq!(
            cx.to_string(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000abc-01"
        );
    }

    #[test]
    fn reads_back_what_it_sends() {
        let cx = TraceContext::continue_or_start(Some(SAMPLE.as_bytes()), 7, 0xabc);
        let sent = TraceContext::of_sender(cx.to_string().as_bytes()).unwrap();
        assert_eq!(
            (sent.trace_id, sent.span_id, sent.flags),
            (cx.trace_id, 0xabc, 1)
        );
        assert_eq!(TraceContext::of_sender(b"00-zz"), None);
    }

    #[test]
    fn starts_a_trace_for_bad_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            let cx = TraceContext::continue_or_start(Some(bad.as_bytes()), 5, 6);
            assert_eq!((cx.trace_id, cx.parent_id, cx.flags), (5, None, 1), "{bad}");
        }
    }

    #[test]
    fn reads_a_later_version_as_00() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more";
        let cx = TraceContext::continue_or_start(Some(later.as_bytes()), 5, 6);
        assert_eq!(cx.parent_id, Some(0x00f0_67aa_0ba9_02b7));
        assert_eq!(cx.flags, 0);
    }
}

//! Server-sent events: an incremental parser and a writer.
//!
//! The parser follows the WHATWG event-stream rules that matter for
//! provider streams: lines end in `\n`, `\r\n` or `\r` (also when a chunk
//! boundary falls between `\r` and `\n`), `data` lines join with `\n`,
//! lines starting with `:` are comments, a leading byte-order mark is
//! skipped, and an event is dispatched at a blank line. `id` and `retry`
//! are not used by any provider stream and are ignored.

/// One event: an optional name and its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl Event {
    /// An unnamed event (OpenAI Chat, Gemini).
    pub fn data(data: impl Into<String>) -> Self {
        Event {
            event: None,
            data: data.into(),
        }
    }

    /// A named event (Anthropic, OpenAI Responses).
    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Self {
        Event {
            event: Some(event.into()),
            data: data.into(),
        }
    }

    /// Appends the wire form of this event to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(name) = &self.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(name.as_bytes());
            out.push(b'\n');
        }
        for line in self.data.split('\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }
}

/// Incremental event-stream parser: feed it bytes as they arrive.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of the line being read.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a `\n` opening this one belongs
    /// to that line ending.
    after_cr: bool,
    /// Whether the first line (which may open with a BOM) was read.
    started: bool,
    /// The event being assembled.
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Parser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `bytes`, appending every completed event to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<Event>) {
        if self.after_cr {
            self.after_cr = false;
            bytes = bytes.strip_prefix(b"\n").unwrap_or(bytes);
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
            self.line = line;
            self.line.clear();
            if bytes[end] == b'\r' {
                match bytes.get(end + 1) {
                    Some(b'\n') => bytes = &bytes[end + 2..],
                    Some(_) => bytes = &bytes[end + 1..],
                    None => {
                        self.after_cr = true;
                        bytes = &[];
                    }
                }
            } else {
                bytes = &bytes[end + 1..];
            }
        }
        self.line.extend_from_slice(bytes);
    }

    /// Ends the stream: an event whose blank line never came is still
    /// dispatched (providers sometimes close right after the last `data:`).
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, out);
        }
        self.dispatch(out);
    }

    fn line_done(&mut self, mut line: &[u8], out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            return self.dispatch(out);
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(Event {
                event,
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(stream: &[u8], piece: usize) -> Vec<Event> {
        let mut parser = Parser::new();
        let mut out = Vec::new();
        for chunk in stream.chunks(piece) {
            parser.push(chunk, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    #[test]
    fn parses_named_and_unnamed_events_across_any_chunking() {
        let stream = b"\xEF\xBB\xBFevent: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n: comment\r\
                       data: a\rdata:b\r\rdata: [DONE]\n\n";
        let expected = vec![
            Event::named("ping", "{\"type\":\"ping\"}"),
            Event::data("a\nb"),
            Event::data("[DONE]"),
        ];
        for piece in 1..stream.len() {
            assert_eq!(parse_in_pieces(stream, piece), expected, "piece {piece}");
        }
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert!(parse_in_pieces(b"event: x\n\n\n: keepalive\n\n", 4).is_empty());
    }

    #[test]
    fn dispatches_an_unterminated_last_event() {
        assert_eq!(parse_in_pieces(b"data: {}", 3), vec![Event::data("{}")]);
    }

    #[test]
    fn writes_what_it_parses() {
        let event = Event::named("message_delta", "line one\nline two");
        let mut bytes = Vec::new();
        event.write_to(&mut bytes);
        assert_eq!(
            bytes,
            b"event: message_delta\ndata: line one\ndata: line two\n\n"
        );
        assert_eq!(parse_in_pieces(&bytes, 5), vec![event]);
    }
}

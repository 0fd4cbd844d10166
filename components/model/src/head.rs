//! The request head the policy components decide on, in the one-string
//! form it crosses into them (WIT `upshift:types/types.request-head`).
//!
//! Lines separated by `\n`: method, scheme, authority, path, query (empty:
//! none), client IP (empty: unknown), request id, then one `name:value`
//! line per header. [`RequestHead::pack`] writes it; [`RequestHead::parse`]
//! reads it without copying: fields and header values are slices of the
//! string, and a header lookup scans the header lines.

/// The fixed lines before the headers.
const FIXED_LINES: usize = 7;

/// A packed head that does not have its seven fixed lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request head has {0} of its {FIXED_LINES} fixed lines")]
pub struct MalformedHead(usize);

/// Method, target and headers of an incoming request, borrowed from its
/// packed form. The default is a head with every field empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestHead<'a> {
    method: &'a str,
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: &'a str,
    client_ip: &'a str,
    request_id: &'a str,
    headers: &'a str,
}

/// The parts of a head that are not headers, for [`RequestHead::pack`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadLine<'a> {
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host and optional port.
    pub authority: &'a str,
    /// Path without the query, starting with `/`.
    pub path: &'a str,
    /// Raw query without the leading `?`.
    pub query: Option<&'a str>,
    /// Address of the connecting peer.
    pub client_ip: Option<&'a str>,
    /// The gateway's request id.
    pub request_id: &'a str,
}

impl<'a> RequestHead<'a> {
    /// Reads a packed head.
    pub fn parse(packed: &'a str) -> Result<Self, MalformedHead> {
        let mut fields = [""; FIXED_LINES];
        let mut rest = packed;
        for (i, field) in fields.iter_mut().enumerate() {
            let (line, tail) = match rest.split_once('\n') {
                Some(split) => split,
                // The last fixed line ends the string when there are no headers.
                None if i == FIXED_LINES - 1 => (rest, ""),
                None => return Err(MalformedHead(i + usize::from(!rest.is_empty()))),
            };
            *field = line;
            rest = tail;
        }
        let [
            method,
            scheme,
            authority,
            path,
            query,
            client_ip,
            request_id,
        ] = fields;
        Ok(RequestHead {
            method,
            scheme,
            authority,
            path,
            query,
            client_ip,
            request_id,
            headers: rest,
        })
    }

    /// Packs `line` and `headers` (lower-case names) into the one-string
    /// form. Header values that are not UTF-8 are converted lossily; a line
    /// break inside any field, which HTTP never lets through, becomes a
    /// space so that it cannot forge a line.
    pub fn pack<'h>(
        line: &HeadLine<'_>,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> String {
        let mut packed = String::with_capacity(1024);
        for field in [
            line.method,
            line.scheme,
            line.authority,
            line.path,
            line.query.unwrap_or_default(),
            line.client_ip.unwrap_or_default(),
            line.request_id,
        ] {
            push_line(&mut packed, field);
        }
        for (name, value) in headers {
            push_field(&mut packed, name);
            packed.push(':');
            match std::str::from_utf8(value) {
                Ok(value) => push_line(&mut packed, value),
                Err(_) => push_line(&mut packed, &String::from_utf8_lossy(value)),
            }
        }
        packed
    }

    /// Upper-case HTTP method.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }

    /// Host and optional port, as the client sent them.
    pub fn authority(&self) -> &'a str {
        self.authority
    }

    /// Path without the query, starting with `/`.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// Raw query without the leading `?`.
    pub fn query(&self) -> Option<&'a str> {
        (!self.query.is_empty()).then_some(self.query)
    }

    /// Address of the peer that connected to the gateway.
    pub fn client_ip(&self) -> Option<&'a str> {
        (!self.client_ip.is_empty()).then_some(self.client_ip)
    }

    /// The gateway's request id.
    pub fn request_id(&self) -> &'a str {
        self.request_id
    }

    /// Every header as `(name, value)`, in arrival order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.headers
            .split('\n')
            .filter_map(|line| line.split_once(':'))
    }

    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_values(name).next()
    }

    /// Every value of header `name` (lower-case), in arrival order.
    pub fn header_values<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.headers.split('\n').filter_map(move |line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
        })
    }

    /// The host the request is for, lower-cased, without port.
    pub fn host(&self) -> String {
        let authority = self
            .authority
            .rsplit_once('@')
            .map_or(self.authority, |(_, h)| h);
        let host = if authority.starts_with('[') {
            authority.split_inclusive(']').next().unwrap_or(authority)
        } else {
            authority.split(':').next().unwrap_or(authority)
        };
        host.to_ascii_lowercase()
    }

    /// The first value of query parameter `name`, undecoded.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// Appends `field` and a line break.
fn push_line(packed: &mut String, field: &str) {
    push_field(packed, field);
    packed.push('\n');
}

/// Appends `field`, with any line break inside it replaced by a space.
fn push_field(packed: &mut String, field: &str) {
    // A byte scan: every request packs each of its headers.
    if field.bytes().any(|b| b == b'\n' || b == b'\r') {
        packed.extend(
            field
                .chars()
                .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c }),
        );
    } else {
        packed.push_str(field);
    }
}

/// A packed head that owns its string, for tests and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedHead(String);

impl OwnedHead {
    /// Packs `line` and `headers`.
    pub fn new(line: &HeadLine<'_>, headers: &[(&str, &str)]) -> Self {
        OwnedHead(RequestHead::pack(
            line,
            headers.iter().map(|(n, v)| (*n, v.as_bytes())),
        ))
    }

    /// The packed string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The head it packs.
    pub fn view(&self) -> RequestHead<'_> {
        RequestHead::parse(&self.0).expect("packed by RequestHead::pack")
    }

    /// The head it packs, for as long as the program runs: its memory is
    /// never freed, so this is for tests and short-lived tools.
    pub fn leak(self) -> RequestHead<'static> {
        RequestHead::parse(Box::leak(self.0.into_boxed_str())).expect("packed by RequestHead::pack")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: HeadLine<'static> = HeadLine {
        method: "GET",
        scheme: "https",
        authority: "API.example.com:8443",
        path: "/orders/42",
        query: Some("a=1&b=two&flag"),
        client_ip: Some("10.0.0.9"),
        request_id: "rid-1",
    };

    #[test]
    fn fields_and_headers_round_trip() {
        let owned = OwnedHead::new(
            &LINE,
            &[
                ("accept", "a/b"),
                ("x-tag", "one"),
                ("x-tag", "two:three"),
                ("empty", ""),
            ],
        );
        let head = owned.view();
        assert_eq!(head.method(), "GET");
        assert_eq!(head.scheme(), "https");
        assert_eq!(head.authority(), "API.example.com:8443");
        assert_eq!(head.host(), "api.example.com");
        assert_eq!(head.path(), "/orders/42");
        assert_eq!(head.query(), Some("a=1&b=two&flag"));
        assert_eq!(head.query_param("b"), Some("two"));
        assert_eq!(head.query_param("flag"), Some(""));
        assert_eq!(head.query_param("c"), None);
        assert_eq!(head.client_ip(), Some("10.0.0.9"));
        assert_eq!(head.request_id(), "rid-1");
        assert_eq!(head.header("x-tag"), Some("one"));
        assert_eq!(
            head.header_values("x-tag").collect::<Vec<_>>(),
            ["one", "two:three"]
        );
        assert_eq!(head.header("empty"), Some(""));
        assert_eq!(head.header("x-ta"), None);
        assert_eq!(head.headers().count(), 4);
    }

    #[test]
    fn absent_query_client_and_headers() {
        let line = HeadLine {
            query: None,
            client_ip: None,
            ..LINE
        };
        let owned = OwnedHead::new(&line, &[]);
        let head = owned.view();
        assert_eq!(head.query(), None);
        assert_eq!(head.client_ip(), None);
        assert_eq!(head.headers().count(), 0);
        // The trailing line break of the last fixed line is optional.
        let trimmed = owned.as_str().trim_end_matches('\n');
        assert_eq!(RequestHead::parse(trimmed).unwrap(), head);
    }

    #[test]
    fn line_breaks_cannot_forge_headers() {
        let line = HeadLine {
            path: "/a\nx-admin:1",
            ..LINE
        };
        let owned = OwnedHead::new(&line, &[("x-h", "v\r\nx-admin:1")]);
        let head = owned.view();
        assert_eq!(head.path(), "/a x-admin:1");
        assert_eq!(head.header("x-admin"), None);
        assert_eq!(head.header("x-h"), Some("v  x-admin:1"));
    }

    #[test]
    fn non_utf8_values_are_converted_lossily() {
        let packed = RequestHead::pack(&LINE, [("x-bin", &b"a\xffb"[..])]);
        let head = RequestHead::parse(&packed).unwrap();
        assert_eq!(head.header("x-bin"), Some("a\u{fffd}b"));
    }

    #[test]
    fn a_head_without_its_fixed_lines_is_refused() {
        assert_eq!(RequestHead::parse("GET\nhttp"), Err(MalformedHead(2)));
    }
}

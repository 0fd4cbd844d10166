//! The response headers that announce a deprecated version.

use crate::Deprecation;
use crate::time::{http_date, parse_rfc3339};

impl Deprecation {
    /// `deprecation: @<unix seconds>` (RFC 9745), `sunset: <HTTP-date>`
    /// (RFC 8594) and `link: <url>; rel="deprecation"`, for those parts that
    /// are set and well-formed.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        if let Some(at) = parse_rfc3339(&self.deprecated_at) {
            headers.push(("deprecation".to_owned(), format!("@{at}")));
        }
        if let Some(sunset) = self.sunset.as_deref().and_then(parse_rfc3339) {
            headers.push(("sunset".to_owned(), http_date(sunset)));
        }
        if let Some(link) = &self.link {
            headers.push(("link".to_owned(), format!("<{link}>; rel=\"deprecation\"")));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use crate::Deprecation;

    #[test]
    fn headers_follow_the_rfcs() {
        let deprecation = Deprecation {
            deprecated_at: "2026-03-01T00:00:00Z".into(),
            sunset: Some("2026-09-01T12:00:00+02:00".into()),
            link: Some("https://developer.example.com/v1-sunset".into()),
        };
        assert_eq!(
            deprecation.headers(),
            [
                ("deprecation".to_owned(), "@1772323200".to_owned()),
                (
                    "sunset".to_owned(),
                    "Tue, 01 Sep 2026 10:00:00 GMT".to_owned()
                ),
                (
                    "link".to_owned(),
                    "<https://developer.example.com/v1-sunset>; rel=\"deprecation\"".to_owned()
                ),
            ]
        );
        let bare = Deprecation {
            deprecated_at: "2026-03-01T00:00:00Z".into(),
            sunset: None,
            link: None,
        };
        assert_eq!(bare.headers().len(), 1);
    }
}

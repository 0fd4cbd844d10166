//! The JSON error body every refusal of the gateway carries.

use serde::Serialize;

/// A refusal: status, stable code and message, rendered as
/// `{"error":{"code":…,"message":…,"request_id":…}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl Refusal {
    /// A refusal without extra headers.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code: code.to_owned(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The JSON body for the request `request_id`.
    pub fn body(&self, request_id: &str) -> String {
        let body = Body {
            error: Detail {
                code: &self.code,
                message: &self.message,
                request_id,
            },
        };
        serde_json::to_string(&body).expect("error body serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_names_code_message_and_request_id() {
        let body = Refusal::new(404, "route_not_found", "no route for GET /x").body("rid-1");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"]["code"], "route_not_found");
        assert_eq!(json["error"]["message"], "no route for GET /x");
        assert_eq!(json["error"]["request_id"], "rid-1");
    }
}

//! An answer ready to send to the client.

use super::Stream;
use crate::Dialect;
use crate::errors::{ApiError, ErrorKind};

/// An answer ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }
    }

    /// A complete event stream (`body`), for a client that asked for one.
    pub fn event_stream(body: Vec<u8>) -> Self {
        Reply {
            status: 200,
            headers: Stream::headers(),
            body,
        }
    }

    /// `error` as a client of `dialect` expects it.
    pub fn error(dialect: Dialect, error: &ApiError) -> Self {
        let (status, body) = error.render(dialect);
        Reply::json(status, body)
    }

    /// The gateway's own refusal (`status`, a stable `code`, a message) in
    /// the error shape of `dialect`, keeping the status as it is.
    pub fn refusal(dialect: Dialect, status: u16, code: &str, message: &str) -> Self {
        let error = ApiError {
            kind: ErrorKind::from_status(status),
            message: message.to_owned(),
            code: Some(code.to_owned()),
            param: None,
        };
        Reply {
            status,
            ..Reply::error(dialect, &error)
        }
    }
}

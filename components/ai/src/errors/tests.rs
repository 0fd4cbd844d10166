//! Error bodies read from every provider and written in every dialect.

use super::*;

#[test]
fn anthropic_overloaded_is_503_for_openai_and_529_for_anthropic() {
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let error = ApiError::parse(Dialect::Anthropic, 529, body);
    assert_eq!(error.kind, ErrorKind::Overloaded);
    let (status, body) = error.render(Dialect::OpenAiChat);
    assert_eq!(status, 503);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"message": "Overloaded", "type": "server_error",
                                     "param": null, "code": null}})
    );
    assert_eq!(error.render(Dialect::Anthropic).0, 529);
}

#[test]
fn rate_limits_stay_429_everywhere() {
    let gemini =
        br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
    let error = ApiError::parse(Dialect::Gemini, 429, gemini);
    assert_eq!(error.kind, ErrorKind::RateLimit);
    for dialect in [Dialect::OpenAiChat, Dialect::Anthropic, Dialect::Gemini] {
        assert_eq!(error.render(dialect).0, 429);
    }
}

#[test]
fn openai_codes_survive() {
    let body = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let error = ApiError::parse(Dialect::OpenAiChat, 429, body);
    assert_eq!(error.kind, ErrorKind::RateLimit);
    assert_eq!(error.code.as_deref(), Some("insufficient_quota"));
}

#[test]
fn non_json_bodies_keep_their_text_and_take_the_status() {
    let error = ApiError::parse(Dialect::Anthropic, 502, b"<html>Bad Gateway</html>");
    assert_eq!(error.kind, ErrorKind::Server);
    assert_eq!(error.message, "Bad Gateway");
    let error = ApiError::parse(Dialect::Gemini, 504, b"");
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert_eq!(error.message, "upstream returned status 504");
}

#[test]
fn pages_read_as_their_text() {
    let page = b"<!DOCTYPE html>\r\n<html><head><title>502 Bad Gateway</title>\
        <style>body { color: red }</style><SCRIPT>var x = 1 < 2;</SCRIPT></head>\
        <body><!-- edge 7 --><h1>Bad&nbsp;Gateway</h1>\n\n  <p>Tom &amp; Jerry&#39;s   proxy</p>\
        </body></html>";
    assert_eq!(
        excerpt(page),
        "502 Bad Gateway Bad Gateway Tom & Jerry's proxy"
    );
    assert_eq!(
        excerpt(b"  upstream\nconnect error  "),
        "upstream connect error"
    );
    assert_eq!(excerpt(b"<p>unclosed <b"), "unclosed");
    let long = "é".repeat(300);
    let cut = excerpt(long.as_bytes());
    assert_eq!(cut.chars().count(), MAX_EXCERPT + 1);
    assert!(cut.ends_with("é…"));
}

#[test]
fn answers_that_are_not_json_say_who_answered_what() {
    let (status, error) =
        ApiError::not_json("openai", 502, b"<html><h1>Bad Gateway</h1></html>").unwrap();
    assert_eq!(status, 502);
    assert_eq!(error.kind, ErrorKind::Server);
    assert_eq!(
        error.message,
        "provider openai answered 502 with a text/html body: Bad Gateway"
    );
    assert_eq!(error.code, None);

    let (status, error) = ApiError::not_json("groq", 503, b"no healthy upstream").unwrap();
    assert_eq!((status, error.kind), (503, ErrorKind::Overloaded));
    assert_eq!(
        error.message,
        "provider groq answered 503 with a text/plain body: no healthy upstream"
    );

    let (status, error) = ApiError::not_json("claude", 500, b" \n").unwrap();
    assert_eq!(status, 500);
    assert_eq!(
        error.message,
        "provider claude answered 500 with an empty body"
    );

    let (status, error) = ApiError::not_json("gem", 200, b"<html>Sign in</html>").unwrap();
    assert_eq!((status, error.kind), (502, ErrorKind::Server));
    assert_eq!(error.code.as_deref(), Some("bad_provider_response"));

    assert_eq!(
        ApiError::not_json("openai", 502, br#"{"detail":"x"}"#),
        None
    );
    assert_eq!(ApiError::not_json("openai", 200, b"null"), None);
}

#[test]
fn gemini_array_wrapped_errors_parse() {
    let body =
        br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#;
    let error = ApiError::parse(Dialect::Gemini, 503, body);
    assert_eq!(error.kind, ErrorKind::Overloaded);
    assert_eq!(error.message, "The model is overloaded.");
}

//! Checks on JWT authentication: a route's `auth.jwt` and the JWT
//! credentials of consumers (secrets, PEM keys, JWKS URLs).

use std::collections::HashSet;

use super::{Report, check_cookie_name, check_header_name, check_target_url};
use crate::{JwtAuth, JwtCredential, JwtKeyKind};

/// Largest clock skew allowed on JWT times: one hour.
const MAX_JWT_LEEWAY_S: u32 = 3_600;

pub(super) fn check_jwt_auth(jwt: &JwtAuth, at: &str, report: &mut Report<'_>) {
    check_header_name(&jwt.header, &format!("{at}.header"), report);
    if let Some(cookie) = &jwt.cookie {
        check_cookie_name(cookie, &format!("{at}.cookie"), report);
    }
    for (field, value) in [("issuer", &jwt.issuer), ("audience", &jwt.audience)] {
        if value.as_ref().is_some_and(String::is_empty) {
            report(format!("{at}.{field}"), "must not be empty".into());
        }
    }
    if jwt.leeway_s > MAX_JWT_LEEWAY_S {
        report(
            format!("{at}.leeway_s"),
            format!("must be at most {MAX_JWT_LEEWAY_S}"),
        );
    }
    for (i, scope) in jwt.scopes.iter().enumerate() {
        if scope.is_empty() || scope.contains(char::is_whitespace) {
            report(
                format!("{at}.scopes[{i}]"),
                format!("{scope:?} is not a scope: one word, no spaces"),
            );
        }
    }
    for (field, mut claims) in [
        ("required_claims", jwt.required_claims.keys()),
        ("forward_claims", jwt.forward_claims.keys()),
    ] {
        if claims.any(String::is_empty) {
            report(
                format!("{at}.{field}"),
                "claim names must not be empty".into(),
            );
        }
    }
    let mut headers = HashSet::new();
    for (claim, header) in &jwt.forward_claims {
        let at = format!("{at}.forward_claims.{claim}");
        check_header_name(header, &at, report);
        if !forwardable(header) {
            report(
                at,
                format!("{header:?} is set by the gateway or names the connection; pick another"),
            );
        } else if !headers.insert(header.as_str()) {
            report(at, format!("{header:?} carries another claim already"));
        }
    }
}

/// Whether a claim may be forwarded in header `name`: not one the
/// gateway sets itself, nor one that describes the connection or the body.
fn forwardable(name: &str) -> bool {
    !matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "content-type"
            | "x-request-id"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "forwarded"
    ) && !name.starts_with("spin-")
}

pub(super) fn check_jwt_credential(credential: &JwtCredential, at: &str, report: &mut Report<'_>) {
    if credential.key.is_empty() {
        report(format!("{at}.key"), "must not be empty".into());
    }
    let algorithm = credential.algorithm.name();
    let labels: &[&str] = match credential.algorithm.key_kind() {
        JwtKeyKind::Secret { min_bytes } => {
            match &credential.secret {
                None => report(
                    format!("{at}.secret"),
                    format!("{algorithm} needs a secret"),
                ),
                Some(secret) if secret.len() < min_bytes => report(
                    format!("{at}.secret"),
                    format!("{algorithm} secrets need at least {min_bytes} bytes"),
                ),
                Some(_) => {}
            }
            if credential.public_key.is_some() || credential.jwks.is_some() {
                report(
                    format!("{at}.public_key"),
                    format!("{algorithm} uses a secret, not a public key"),
                );
            }
            return;
        }
        JwtKeyKind::Rsa => &["PUBLIC KEY", "RSA PUBLIC KEY"],
        JwtKeyKind::Ec | JwtKeyKind::Ed => &["PUBLIC KEY"],
    };
    if let Some(jwks) = &credential.jwks {
        if let Err(why) = check_target_url(&jwks.url) {
            report(format!("{at}.jwks.url"), why);
        }
        if jwks.min_refresh_s == 0 {
            report(
                format!("{at}.jwks.min_refresh_s"),
                "must be at least 1".into(),
            );
        }
    }
    match &credential.public_key {
        None if credential.jwks.is_some() => {}
        Some(_) if credential.jwks.is_some() => report(
            format!("{at}.public_key"),
            "a credential takes its keys from jwks or public_key, not both".into(),
        ),
        None => report(
            format!("{at}.public_key"),
            format!("{algorithm} needs a public_key in PEM, or a jwks"),
        ),
        Some(pem) if !is_pem(pem, labels) => report(
            format!("{at}.public_key"),
            format!(
                "not a PEM public key: expected -----BEGIN {}-----",
                labels.join("----- or -----BEGIN ")
            ),
        ),
        Some(_) => {}
    }
    if credential.secret.is_some() {
        report(
            format!("{at}.secret"),
            format!("{algorithm} uses a public key, not a secret"),
        );
    }
}

/// Whether `text` is one PEM block with one of `labels` and a base64 body.
fn is_pem(text: &str, labels: &[&str]) -> bool {
    let text = text.trim();
    labels.iter().any(|label| {
        let body = text
            .strip_prefix(&format!("-----BEGIN {label}-----"))
            .and_then(|rest| rest.strip_suffix(&format!("-----END {label}-----")));
        body.is_some_and(|body| {
            let body = body.trim();
            !body.is_empty()
                && body.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n')
                })
        })
    })
}

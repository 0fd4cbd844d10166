//! Request ids: kept from the client when sane, made up otherwise.

/// Longest request id accepted from a client.
const MAX_LEN: usize = 128;

/// Whether a client-sent `x-request-id` can be kept: 1 to 128 visible ASCII
/// characters, so it is safe in logs and headers.
pub fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| b.is_ascii_graphic())
}

/// Formats 128 random bits as a UUID version 4.
pub fn from_random(high: u64, low: u64) -> String {
    let bits = (u128::from(high) << 64) | u128::from(low);
    let uuid = uuid::Builder::from_random_bytes(bits.to_be_bytes()).into_uuid();
    uuid.hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_only() {
        assert!(is_acceptable(b"abc-123"));
        assert!(!is_acceptable(b""));
        assert!(!is_acceptable(b"has space"));
        assert!(!is_acceptable(b"line\nbreak"));
        assert!(!is_acceptable(&[b'a'; 129]));
    }

    #[test]
    fn random_ids_are_uuid_v4() {
        let id = from_random(u64::MAX, 0);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(&id[19..20], "8");
        assert_eq!(from_random(0, 0), "00000000-0000-4000-8000-000000000000");
    }
}

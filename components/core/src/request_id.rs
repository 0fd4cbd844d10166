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
    let high = (high & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let low = (low & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0xffff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
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

//! Hashing for decisions that must agree across nodes and requests without
//! a randomness source (weighted picks, stickiness, sampling), and for the
//! plan's maps keyed by config names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;
/// Odd multiplier of the word-wise mix (2^64 / golden ratio).
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// A 64-bit hash of `parts`: eight bytes at a time, each part's length
/// mixed in after it, with a final avalanche so that close inputs spread
/// evenly. Stable across builds and platforms, as every node must agree.
pub(crate) fn hash(parts: &[&[u8]]) -> u64 {
    const K: u64 = MIX;
    let mut hash = FNV_OFFSET;
    for part in parts {
        let mut chunks = part.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            hash = (hash.rotate_left(23) ^ word).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        hash = (hash.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
        hash = (hash.rotate_left(23) ^ part.len() as u64).wrapping_mul(K);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// `hash` mapped onto `0..n` (`n > 0`), preserving order: a larger hash
/// never maps lower, so growing a range at one end only moves the points
/// that fall into the new part.
pub(crate) fn scale(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

/// `hash` as a fraction in `[0, 1)`.
pub(crate) fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// `hash` as a fraction strictly between 0 and 1, so that its logarithm is
/// finite and negative.
pub(crate) fn open_unit(hash: u64) -> f64 {
    ((hash >> 12) as f64 + 0.5) / (1u64 << 52) as f64
}

/// The index picked by `point` (in `0..total`) over cumulative `weights`.
pub(crate) fn weighted_index(point: u64, weights: impl IntoIterator<Item = u64>) -> Option<usize> {
    let mut upper = 0;
    for (i, weight) in weights.into_iter().enumerate() {
        upper += weight;
        if weight > 0 && point < upper {
            return Some(i);
        }
    }
    None
}

/// A word-wise FNV-like [`Hasher`]: fast on short keys. Only for keys from the
/// config document (service, route names), never for request data.
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(FNV_OFFSET)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MIX);
        }
        for b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(FNV_PRIME);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by config names.
pub(crate) type NameMap<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated_and_scaling_stays_in_range() {
        assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"a", b"bc"]));
        assert_ne!(hash(&[b"a"]), hash(&[b"a\0"]));
        assert_ne!(hash(&[b"req-1"]), hash(&[b"req-2"]));
        assert_eq!(scale(u64::MAX, 100), 99);
        assert_eq!(scale(0, 100), 0);
        assert!(unit(u64::MAX) < 1.0);
        assert!(open_unit(u64::MAX) < 1.0 && open_unit(0) > 0.0);
        assert_eq!(weighted_index(0, [0, 3, 1]), Some(1));
        assert_eq!(weighted_index(3, [0, 3, 1]), Some(2));
        assert_eq!(weighted_index(4, [0, 3, 1]), None);
    }
}

//! Request ids and trace ids, made on each worker from a sequence of its
//! own.

use std::cell::Cell;

use upshift_core::request_id;

thread_local! {
    /// State of this worker's request-id generator.
    static REQUEST_IDS: Cell<u64> = const { Cell::new(0) };
}

/// Seeds this worker's sequence with a number no two workers share.
pub fn seed_this_worker() {
    REQUEST_IDS.with(|ids| ids.set(seed()));
}

/// A seed no two workers share.
fn seed() -> u64 {
    let uuid = uuid::Uuid::new_v4().as_u64_pair();
    uuid.0 ^ uuid.1
}

/// A fresh request id: a UUID v4 from this worker's SplitMix64 sequence
/// (ids must be unique, not unguessable, and a system call each costs more
/// than the rest of a request's id handling).
pub fn new_request_id() -> String {
    request_id::from_random(random_u64(), random_u64())
}

/// The next number of this worker's SplitMix64 sequence.
pub fn random_u64() -> u64 {
    REQUEST_IDS.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// 128 bits of this worker's sequence: a trace id.
pub fn random_u128() -> u128 {
    (u128::from(random_u64()) << 64) | u128::from(random_u64())
}

//! AI request bodies in each client dialect: read, and (when read) written
//! in every provider dialect, never panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upshift_ai::Dialect;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let from = Dialect::ALL[usize::from(pick) % Dialect::ALL.len()];
    if let Ok(request) = from.parse_request(body) {
        for to in Dialect::ALL {
            let _ = to.render_request(&request);
        }
    }
});

//! Config documents (YAML or JSON, from `PUT /admin/config`): parsing and
//! validation never panic, and what they accept round-trips through the
//! canonical JSON the store keeps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upshift_model::Config;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::parse(text) {
        let canonical = config.to_canonical_json();
        let stored = Config::from_canonical_json(&canonical).expect("canonical JSON reads back");
        assert_eq!(stored.to_canonical_json(), canonical);
    }
});

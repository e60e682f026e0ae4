//! Any text: formatting must not panic, must keep parsing, and must be idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(once) = fleetform_engine::fmt::format_source(text) {
        let twice = fleetform_engine::fmt::format_source(&once).expect("formatted output parses");
        assert_eq!(once, twice, "fmt is not idempotent");
    }
});

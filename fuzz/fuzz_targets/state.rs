//! Any bytes as one file of the local state store (`LocalBackend`): the
//! scenario and its promises are in `state/tests/fuzz_scenario/mod.rs`,
//! shared with the replay of `fuzz/regressions/state` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../state/tests/fuzz_scenario/mod.rs"]
mod fuzz_scenario;

fuzz_target!(|data: &[u8]| {
    let broken = fuzz_scenario::scenario(data);
    assert!(broken.is_empty(), "broken promises: {broken:?}");
});

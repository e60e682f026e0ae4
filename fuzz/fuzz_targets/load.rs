//! Any bytes as `fleet.hcl` beside the examples' keys and user data: the scenario and its promises are in
//! `engine/tests/fuzz_scenario/mod.rs`, shared with the replay of
//! `fuzz/regressions/load` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../engine/tests/fuzz_scenario/mod.rs"]
mod fuzz_scenario;

fuzz_target!(|data: &[u8]| fuzz_scenario::replay_load(data));

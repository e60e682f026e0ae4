//! Replays the inputs the fuzzers kept (`fuzz/regressions/{load,fmt,plan_file}`,
//! see `fuzz/README.md`) through the fuzz targets' own scenarios
//! (`fuzz_scenario/mod.rs`), on stable Rust in the ordinary `cargo test`:
//! none may panic, and each directory must hold inputs (an empty or missing
//! directory fails, so the replay cannot silently test nothing).

mod fuzz_scenario;

use fuzz_scenario::{load, replay_fmt, replay_load, replay_plan_file};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn regressions(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("regressions")
        .join(target)
}

/// Runs `replay` on every file of `fuzz/regressions/<target>`; fails naming
/// each input that panicked, or when there is no input at all. Returns how
/// many inputs were replayed.
fn replay_all(target: &str, replay: impl Fn(&[u8])) -> usize {
    let dir = regressions(target);
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    let mut panicked = Vec::new();
    for path in &paths {
        let data = std::fs::read(path).expect("read regression input");
        if catch_unwind(AssertUnwindSafe(|| replay(&data))).is_err() {
            panicked.push(path.display().to_string());
        }
    }
    assert!(
        panicked.is_empty(),
        "{} of {} {target} inputs panicked:\n{}",
        panicked.len(),
        paths.len(),
        panicked.join("\n")
    );
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    paths.len()
}

#[test]
fn load_regressions_do_not_panic() {
    let replayed = replay_all("load", replay_load);
    println!("fuzz: load: {replayed} regression inputs replayed, no panic");
    assert!(replayed > 0);
}

#[test]
fn fmt_regressions_do_not_panic_and_stay_idempotent() {
    let replayed = replay_all("fmt", replay_fmt);
    println!("fuzz: fmt: {replayed} regression inputs replayed, no panic");
    assert!(replayed > 0);
}

#[test]
fn plan_file_regressions_do_not_panic() {
    let replayed = replay_all("plan_file", replay_plan_file);
    println!("fuzz: plan_file: {replayed} regression inputs replayed, no panic");
    assert!(replayed > 0);
}

/// The replay reports a panicking input instead of passing over it.
#[test]
fn a_panicking_input_fails_the_replay() {
    let failed =
        catch_unwind(|| replay_all("plan_file", |data| assert!(data.len() > 2, "a short input")));
    assert!(failed.is_err());
}

/// The `load` corpus reaches the checks: the seeds include whole example
/// configurations, and the replay directory gives them their files, so at
/// least one input loads without errors.
#[test]
fn load_regressions_include_a_valid_configuration() {
    let dir = regressions("load");
    let valid = std::fs::read_dir(&dir)
        .expect("list load regressions")
        .filter_map(|entry| std::fs::read(entry.expect("entry").path()).ok())
        .any(|data| {
            let loaded = load(&data);
            loaded.config.is_some() && !loaded.has_errors()
        });
    assert!(valid, "no input in {} loads cleanly", dir.display());
}

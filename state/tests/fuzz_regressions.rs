//! Replays the inputs the `state` fuzzer kept (`fuzz/regressions/state`, see
//! `fuzz/README.md`) through the fuzz target's own scenario
//! (`fuzz_scenario/mod.rs`), on stable Rust in the ordinary `cargo test`.
//!
//! Each input is one state file: its first byte picks the file by its low two
//! bits (`index.json`, `versions/000001.json`, `journal.jsonl`, `lock.json`)
//! and, by bit 2, whether it is made read-only (mode 0444); the rest is its
//! content. Every `Backend` method is then called, and:
//! - none panics;
//! - a reading method (`latest`, `list`, `read`, `journal`, `lease`) changes
//!   no file of the state directory;
//! - a method that fails leaves the fuzzed file byte-identical (the store
//!   never overwrites or removes a file it could not read);
//! - a read-only fuzzed file is never changed or removed by any method.

mod fuzz_scenario;

use fleetform_state::StateError;
use fuzz_scenario::{scenario, Case};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn regressions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
        .join("regressions")
        .join("state")
}

#[test]
fn state_regressions_keep_the_store_promises() {
    let dir = regressions();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    let mut failures = Vec::new();
    for path in &paths {
        let data = std::fs::read(path).expect("read regression input");
        match catch_unwind(AssertUnwindSafe(|| scenario(&data))) {
            Ok(broken) => failures.extend(
                broken
                    .into_iter()
                    .map(|b| format!("{}: {b}", path.display())),
            ),
            Err(_) => failures.push(format!("{}: panicked", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures over {} inputs:\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
    assert!(!paths.is_empty(), "no inputs in {}", dir.display());
    println!(
        "fuzz: state: {} regression inputs replayed, every store promise kept",
        paths.len()
    );
}

/// Each file kind, and the read-only variant, is represented in the corpus.
#[test]
fn state_regressions_cover_every_file_and_mode() {
    let mut selectors = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(regressions()).expect("list state regressions") {
        let data = std::fs::read(entry.expect("entry").path()).expect("read");
        if let Some(first) = data.first() {
            selectors.insert(first & 7);
        }
    }
    assert_eq!(
        selectors,
        (0..8).collect(),
        "file kinds (low two bits) and read-only (bit 2) seen"
    );
}

/// The checks can fail: a method that fails after changing the fuzzed file,
/// or a read that writes, is reported.
#[test]
fn the_checks_report_a_broken_promise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = Path::new("lock.json");
    std::fs::write(dir.path().join(file), b"{}").expect("write");
    let mut case = Case {
        root: dir.path(),
        file,
        read_only: false,
        broken: Vec::new(),
    };
    let _ = case.check("a failing write", false, || -> Result<(), StateError> {
        std::fs::write(dir.path().join(file), b"overwritten").expect("write");
        Err(StateError::LeaseLost)
    });
    let _ = case.check("a writing read", true, || {
        std::fs::write(dir.path().join("index.json"), b"{}").expect("write");
        Ok(())
    });
    let _ = case.check("a succeeding write", false, || {
        std::fs::write(dir.path().join(file), b"again").expect("write");
        Ok(())
    });
    assert_eq!(case.broken.len(), 2, "{:?}", case.broken);
}

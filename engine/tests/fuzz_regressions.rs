//! Replays the inputs the fuzzers kept (`fuzz/regressions/{load,fmt,plan_file}`,
//! see `fuzz/README.md`) through the same code as the fuzz targets, on stable
//! Rust in the ordinary `cargo test`: none may panic, and each directory must
//! hold inputs (an empty or missing directory fails, so the replay cannot
//! silently test nothing).

use fleetform_engine::plan::{render, saved::SavedPlan};
use fleetform_engine::{diagnostic, fmt, load_dir, Inputs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Files beside `fleet.hcl` in the `load` replay, as in `fuzz/fuzz_targets/load.rs`.
const SUPPORT_FILES: [(&str, &str); 4] = [
    (
        "keys/workers.pub",
        include_str!("../../examples/quickstart/keys/workers.pub"),
    ),
    (
        "userdata/worker.sh",
        include_str!("../../examples/quickstart/userdata/worker.sh"),
    ),
    (
        "userdata/docker-worker.sh",
        include_str!("../../examples/firefox-ci/userdata/docker-worker.sh"),
    ),
    (
        "userdata/generic-worker.ps1",
        include_str!("../../examples/firefox-ci/userdata/generic-worker.ps1"),
    ),
];

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

/// A config directory holding `data` as `fleet.hcl` beside [`SUPPORT_FILES`], loaded.
fn load(data: &[u8]) -> fleetform_engine::Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in SUPPORT_FILES {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write support file");
    }
    std::fs::write(dir.path().join("fleet.hcl"), data).expect("write fleet.hcl");
    load_dir(dir.path(), &Inputs::default())
}

/// As `fuzz/fuzz_targets/load.rs`: the bytes as `fleet.hcl`, loaded, every
/// diagnostic rendered.
fn replay_load(data: &[u8]) {
    let loaded = load(data);
    let _ = diagnostic::render_human(&loaded.diagnostics, &loaded.sources, false);
}

/// As `fuzz/fuzz_targets/fmt.rs`: formatted text parses again and formatting is idempotent.
fn replay_fmt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(once) = fmt::format_source(text) {
        let twice = fmt::format_source(&once).expect("formatted output parses");
        assert_eq!(once, twice, "fmt is not idempotent");
    }
}

/// As `fuzz/fuzz_targets/plan_file.rs`: read as a saved plan, then rendered
/// the way `fleetform show` renders it (or its diagnostic).
fn replay_plan_file(data: &[u8]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("plan.json");
    std::fs::write(&path, data).expect("write plan file");
    match SavedPlan::read(&path) {
        Ok(saved) => {
            let _ = render::human(&saved.plan, false);
            let _ = render::human(&saved.plan, true);
            let _ = render::markdown(&saved.plan);
            let _ = serde_json::to_string_pretty(&saved.plan);
        }
        Err(found) => {
            let none = fleetform_engine::source::SourceSet::new();
            let _ = diagnostic::render_human(&[found], &none, false);
        }
    }
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

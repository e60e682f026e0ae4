//! The fuzz targets' scenarios for the engine's readers, shared by
//! `fuzz/fuzz_targets/{load,fmt,plan_file}.rs` (which include this file by
//! path) and `engine/tests/fuzz_regressions.rs`, so the fuzzers and the
//! replay of their regressions run exactly the same code. A scenario panics
//! when a promise is broken.

use fleetform_engine::plan::{render, saved::SavedPlan};
use fleetform_engine::{diagnostic, fmt, load_dir, Inputs};

/// Files beside `fleet.hcl` in the `load` scenario (the examples' keys and
/// user data), so that whole example configurations load as far as the checks.
const SUPPORT_FILES: [(&str, &str); 4] = [
    (
        "keys/workers.pub",
        include_str!("../../../examples/quickstart/keys/workers.pub"),
    ),
    (
        "userdata/worker.sh",
        include_str!("../../../examples/quickstart/userdata/worker.sh"),
    ),
    (
        "userdata/docker-worker.sh",
        include_str!("../../../examples/firefox-ci/userdata/docker-worker.sh"),
    ),
    (
        "userdata/generic-worker.ps1",
        include_str!("../../../examples/firefox-ci/userdata/generic-worker.ps1"),
    ),
];

/// A temporary directory, on tmpfs when there is one (one is made per input).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

/// A config directory holding `data` as `fleet.hcl` beside [`SUPPORT_FILES`], loaded.
#[allow(dead_code)] // used by the replay tests, not by every fuzz target
pub fn load(data: &[u8]) -> fleetform_engine::Loaded {
    let dir = scratch();
    for (path, text) in SUPPORT_FILES {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write support file");
    }
    std::fs::write(dir.path().join("fleet.hcl"), data).expect("write fleet.hcl");
    load_dir(dir.path(), &Inputs::default())
}

/// `load`: the bytes as `fleet.hcl`, loaded (diagnostics, never a panic or a
/// hang), every diagnostic rendered (spans inside the file, on char boundaries).
#[allow(dead_code)]
pub fn replay_load(data: &[u8]) {
    let loaded = load(data);
    let _ = diagnostic::render_human(&loaded.diagnostics, &loaded.sources, false);
}

/// `fmt`: formatted text parses again and formatting is idempotent.
#[allow(dead_code)]
pub fn replay_fmt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(once) = fmt::format_source(text) {
        let twice = fmt::format_source(&once).expect("formatted output parses");
        assert_eq!(once, twice, "fmt is not idempotent");
    }
}

/// `plan_file`: read as a saved plan, then rendered the way `fleetform show`
/// renders it (human, Markdown, JSON), or its diagnostic rendered.
#[allow(dead_code)]
pub fn replay_plan_file(data: &[u8]) {
    let dir = scratch();
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

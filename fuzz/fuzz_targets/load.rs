//! Any bytes as a config file: loading must return diagnostics, never panic
//! or hang, and every diagnostic must render.
//!
//! The bytes are `fleet.hcl` of a directory that also holds the files the
//! examples read with `file()` and `templatefile()` (their keys and user
//! data), so that whole example configurations load as far as the checks.
//! `engine/tests/fuzz_regressions.rs` replays `fuzz/regressions/load` the
//! same way; keep the two in step.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Files beside `fleet.hcl`: path relative to the config directory, contents.
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

fn config_dir() -> Option<tempfile::TempDir> {
    // tmpfs when there is one: a directory is written for every input.
    let dir = tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .ok()?;
    for (path, text) in SUPPORT_FILES {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent()?).ok()?;
        std::fs::write(path, text).ok()?;
    }
    Some(dir)
}

fuzz_target!(|data: &[u8]| {
    let Some(dir) = config_dir() else { return };
    if std::fs::write(dir.path().join("fleet.hcl"), data).is_err() {
        return;
    }
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    // Every diagnostic must render (spans inside the file, on char boundaries).
    let _ = fleetform_engine::diagnostic::render_human(&loaded.diagnostics, &loaded.sources, false);
});

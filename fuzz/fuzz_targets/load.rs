//! Any bytes as a config file: loading must return diagnostics, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    if std::fs::write(dir.path().join("fleet.hcl"), data).is_err() {
        return;
    }
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    // Every diagnostic must render (spans inside the file, on char boundaries).
    let _ = fleetform_engine::diagnostic::render_human(&loaded.diagnostics, &loaded.sources, false);
});

//! Any bytes as a saved plan file (`plan -out FILE`): reading it must return
//! the plan or a diagnostic, never panic or hang; a plan that reads must
//! render the way `fleetform show` renders it (human, Markdown, JSON).
#![no_main]

use fleetform_engine::plan::{render, saved::SavedPlan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("plan.json");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    match SavedPlan::read(&path) {
        Ok(saved) => {
            let _ = render::human(&saved.plan, false);
            let _ = render::human(&saved.plan, true);
            let _ = render::markdown(&saved.plan);
            let _ = serde_json::to_string_pretty(&saved.plan);
        }
        Err(diagnostic) => {
            let none = fleetform_engine::source::SourceSet::new();
            let _ = fleetform_engine::diagnostic::render_human(&[diagnostic], &none, false);
        }
    }
});

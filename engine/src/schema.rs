//! JSON Schemas of fleetform's machine-readable formats, generated from the
//! Rust types so they cannot drift (checked in under `schemas/`, compared in CI).
//! The schema of recorded versions comes from the state crate, which owns
//! that type.

use crate::diagnostic::JsonDiagnostic;
use crate::model::Config;
use schemars::JsonSchema;
use serde::Serialize;

pub use crate::formats::FORMAT_VERSION;

/// The output of `fleetform validate --json`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ValidateReport {
    /// Always [`FORMAT_VERSION`].
    pub format_version: &'static str,
    /// True when there is no error (warnings allowed).
    pub valid: bool,
    /// Every error and warning.
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// Every schema fleetform publishes: (file name under `schemas/`, pretty JSON).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        ("config.schema.json", render(schemars::schema_for!(Config))),
        (
            "validate.schema.json",
            render(schemars::schema_for!(ValidateReport)),
        ),
        (
            "plan.schema.json",
            render(schemars::schema_for!(crate::plan::Plan)),
        ),
        (
            "output.schema.json",
            render(schemars::schema_for!(crate::output::Output)),
        ),
        (
            "plan-file.schema.json",
            render(schemars::schema_for!(crate::plan::saved::SavedPlan)),
        ),
    ]
}

fn render(schema: schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

//! Saved plans (`plan -out FILE`): a plan bound to what it was computed from
//! (the config sources, the resolved model with its variables, the base state
//! version and a fingerprint of the observation), so apply can refuse it once
//! any of those has moved (FF010).

use super::Plan;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::provider::Observation;
use crate::source::SourceSet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Format of saved plan files; a newer one is refused, never guessed at.
pub const FORMAT_VERSION: u32 = 1;

/// A plan and what it is bound to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedPlan {
    /// Always "fleetform-plan".
    pub kind: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// When it was computed, seconds since the epoch.
    pub created: i64,
    /// SHA-256 of every config source file (name and text).
    pub config_hash: String,
    /// SHA-256 of the resolved model: variables and file() contents included.
    pub model_hash: String,
    /// The state version the plan was computed against (none before the first apply).
    pub base_state_version: Option<u64>,
    /// The config directory as it was given to `plan` (apply reads it again).
    pub config_dir: String,
    /// SHA-256 of what was observed.
    pub observation_fingerprint: String,
    /// The plan itself.
    pub plan: Plan,
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hash of the sources, in load order.
pub fn config_hash(sources: &SourceSet) -> String {
    let mut hasher = Sha256::new();
    for file in sources.files() {
        hasher.update(file.name.as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Hash of the resolved model.
pub fn model_hash(config: &Config) -> String {
    sha256(&serde_json::to_vec(config).unwrap_or_default())
}

/// Fingerprint of an observation (the call count left out: it is not EC2's state).
pub fn fingerprint(observation: &Observation) -> String {
    sha256(&serde_json::to_vec(&observation.regions).unwrap_or_default())
}

impl SavedPlan {
    /// Binds `plan` to its inputs.
    pub fn new(
        plan: Plan,
        sources: &SourceSet,
        config: &Config,
        observation: &Observation,
        created: i64,
        config_dir: &Path,
        base_state_version: Option<u64>,
    ) -> Self {
        SavedPlan {
            kind: "fleetform-plan".into(),
            format_version: FORMAT_VERSION,
            created,
            config_hash: config_hash(sources),
            model_hash: model_hash(config),
            base_state_version,
            config_dir: config_dir.display().to_string(),
            observation_fingerprint: fingerprint(observation),
            plan,
        }
    }

    /// Writes the file atomically, readable by its owner only (user data may hold secrets).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::write_atomically(path, &json, Some(0o600))
    }

    /// Reads a plan file; a diagnostic naming the file when it is missing, corrupt or newer.
    pub fn read(path: &Path) -> Result<SavedPlan, Diagnostic> {
        let shown = path.display();
        let bytes = std::fs::read(path).map_err(|e| {
            Diagnostic::error(
                Code::PlanFile,
                format!("cannot read plan file {shown}: {e}"),
            )
            .help("pass the file written by `fleetform plan -out FILE`")
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Diagnostic::error(
                Code::PlanFile,
                format!("{shown} is not a fleetform plan file (corrupt or truncated: {e})"),
            )
            .help("run `fleetform plan -out FILE` again; nothing was changed")
        })?;
        if value.get("kind").and_then(|k| k.as_str()) != Some("fleetform-plan") {
            return Err(Diagnostic::error(
                Code::PlanFile,
                format!("{shown} is not a fleetform plan file"),
            )
            .help("pass the file written by `fleetform plan -out FILE`"));
        }
        let version = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if version > u64::from(FORMAT_VERSION) {
            return Err(Diagnostic::error(
                Code::PlanFile,
                format!("{shown} has plan format {version}, newer than this fleetform understands ({FORMAT_VERSION})"),
            )
            .help("use the fleetform version that wrote it, or plan again"));
        }
        serde_json::from_value(value).map_err(|e| {
            Diagnostic::error(
                Code::PlanFile,
                format!("{shown} does not hold a valid plan: {e}"),
            )
            .help("run `fleetform plan -out FILE` again; nothing was changed")
        })
    }
}

//! FF010: whether a saved plan still describes what it would change: the
//! configuration, its variables (sensitive ones by digest), the state's
//! latest version and EC2 are what they were when it was made.

use fleetform_engine::plan::saved::{self, SavedPlan};
use fleetform_engine::provider::Observation;
use fleetform_engine::sensitive::Mismatch;
use fleetform_engine::Loaded;

/// What moved since `saved` was made, one reason each; empty when the plan
/// may be carried out. `latest` is the state's latest version now.
pub fn staleness(
    saved: &SavedPlan,
    loaded: &Loaded,
    observed: &Observation,
    latest: Option<u64>,
) -> Vec<String> {
    let mut moved = Vec::new();
    if saved::config_hash(&loaded.sources) != saved.config_hash {
        moved.push("the configuration files changed".to_string());
    }
    // The values of sensitive variables are told apart by their digests,
    // and enter the hashes only through the plan's mask.
    let mask = match &saved.sensitive {
        Some(binding) => {
            let mismatches = binding.check(&loaded.secrets);
            let (missing, differs) = split(&mismatches);
            let changed: Vec<&str> = missing.into_iter().chain(differs).collect();
            if !changed.is_empty() {
                moved.push(format!(
                    "the value of sensitive variable{} {} differs from the plan's",
                    if changed.len() == 1 { "" } else { "s" },
                    names(&changed)
                ));
                return moved;
            }
            match binding.mask(&loaded.secrets) {
                Ok(mask) => Some(mask),
                Err(e) => {
                    moved.push(e.to_string());
                    return moved;
                }
            }
        }
        None if !loaded.secrets.is_empty() => {
            moved.push("the configuration now has sensitive variables".to_string());
            return moved;
        }
        None => None,
    };
    let model_hash = loaded
        .config
        .as_ref()
        .map(|config| saved::model_hash(config, mask.as_ref()));
    if model_hash.as_deref() != Some(saved.model_hash.as_str()) {
        moved.push("the resolved configuration (variables, file contents) changed".to_string());
    }
    if latest != saved.base_state_version {
        moved.push(format!(
            "the state moved from version {} to {}",
            saved
                .base_state_version
                .map_or("none".into(), |v| v.to_string()),
            latest.map_or("none".into(), |v| v.to_string())
        ));
    }
    if saved::fingerprint(observed, mask.as_ref()) != saved.observation_fingerprint {
        moved.push("EC2 changed since the plan was made".to_string());
    }
    moved
}

/// The names of `mismatches` that lack a value, and those whose value differs.
pub fn split(mismatches: &[Mismatch]) -> (Vec<&str>, Vec<&str>) {
    let mut missing = Vec::new();
    let mut differs = Vec::new();
    for m in mismatches {
        match m {
            Mismatch::Missing(name) => missing.push(name.as_str()),
            Mismatch::Differs(name) => differs.push(name.as_str()),
        }
    }
    (missing, differs)
}

/// `` `a`, `b` `` for messages.
pub fn names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

//! Saved plans (`plan -out FILE`): a plan bound to what it was computed from
//! (the config sources, the resolved model with its variables, the base state
//! version and a fingerprint of the observation), so apply can refuse it once
//! any of those has moved (FF010).

use super::Plan;
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::provider::{Observation, Observed};
use crate::sensitive::{Mask, SensitiveBinding, SHOWN};
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
    /// When the configuration has sensitive variables: their digests, and
    /// the salt of the key that masks derived values in `model_hash` and
    /// `observation_fingerprint`. Apply needs the same values again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<SensitiveBinding>,
}

fn sha256(bytes: &[u8]) -> String {
    crate::hex(&Sha256::digest(bytes))
}

/// Hash of the configuration files, in load order (variable files are
/// left out: they may hold secrets; their values count in the model hash).
pub fn config_hash(sources: &SourceSet) -> String {
    let mut hasher = Sha256::new();
    for file in sources.files().iter().filter(|f| !f.var_file) {
        hasher.update(file.name.as_bytes());
        hasher.update([0]);
        hasher.update(file.text.as_bytes());
        hasher.update([0]);
    }
    crate::hex(&hasher.finalize())
}

/// Hash of the resolved model; sensitive values enter it only through
/// `mask` (without one, they are left out).
pub fn model_hash(config: &Config, mask: Option<&Mask>) -> String {
    let sensitive = |wt: &crate::model::WorkerType| {
        wt.user_data_sensitive || wt.instance_types.iter().any(|it| it.user_data_sensitive)
    };
    if !config.worker_types.values().any(sensitive) {
        return sha256(&serde_json::to_vec(config).unwrap_or_default());
    }
    let hide = |data: &str| match mask {
        Some(mask) => mask.tag(data),
        None => SHOWN.to_string(),
    };
    let mut masked = config.clone();
    for wt in masked.worker_types.values_mut() {
        // Every user data that may derive from a secret: the worker type's
        // (in every region), and each instance type's own.
        let whole = wt.user_data_sensitive;
        if whole {
            wt.user_data = wt.user_data.as_deref().map(hide);
        }
        let own: std::collections::BTreeSet<String> = wt
            .instance_types
            .iter()
            .filter(|it| it.user_data_sensitive || (whole && it.user_data.is_none()))
            .map(|it| it.name.clone())
            .collect();
        for it in wt
            .instance_types
            .iter_mut()
            .filter(|it| it.user_data_sensitive)
        {
            it.user_data = it.user_data.as_deref().map(hide);
        }
        for regional in wt.regional.values_mut() {
            if whole {
                regional.user_data = regional.user_data.as_deref().map(hide);
            }
            for (name, data) in regional.instance_user_data.iter_mut() {
                if own.contains(name) || whole {
                    *data = hide(data);
                }
            }
        }
    }
    sha256(&serde_json::to_vec(&masked).unwrap_or_default())
}

/// Fingerprint of an observation (the call count left out: it is not
/// EC2's state). With a `mask` (the configuration has secrets), every user
/// data read from EC2 enters it masked: it may hold one.
pub fn fingerprint(observation: &Observation, mask: Option<&Mask>) -> String {
    let Some(mask) = mask else {
        return sha256(&serde_json::to_vec(&observation.regions).unwrap_or_default());
    };
    let mut regions = observation.regions.clone();
    for region in regions.values_mut() {
        if let Observed::Complete { items } = &mut region.launch_templates {
            for data in items.iter_mut().filter_map(|t| t.default_data.as_mut()) {
                data.user_data = data.user_data.as_deref().map(|d| mask.tag(d));
            }
        }
        // Templates read for adoption hold user data too.
        if let Observed::Complete { items } = &mut region.adoptable {
            for data in items
                .launch_templates
                .iter_mut()
                .filter_map(|t| t.default_data.as_mut())
            {
                data.user_data = data.user_data.as_deref().map(|d| mask.tag(d));
            }
        }
    }
    sha256(&serde_json::to_vec(&regions).unwrap_or_default())
}

/// What binds a plan to sensitive values: their digests and the mask
/// derived from them.
pub struct SensitiveInputs<'a> {
    /// Digests stored in the plan file.
    pub binding: &'a SensitiveBinding,
    /// The mask of `binding` for the values of this run.
    pub mask: &'a Mask,
}

/// What a saved plan is bound to.
pub struct Bindings<'a> {
    /// The configuration's sources.
    pub sources: &'a SourceSet,
    /// The resolved model.
    pub config: &'a Config,
    /// What was observed.
    pub observation: &'a Observation,
    /// When the plan was computed, seconds since the epoch.
    pub created: i64,
    /// The configuration directory as given to `plan`.
    pub config_dir: &'a Path,
    /// The state version the plan was computed against.
    pub base_state_version: Option<u64>,
    /// The sensitive values' digests and mask, when there are any.
    pub sensitive: Option<SensitiveInputs<'a>>,
}

impl SavedPlan {
    /// Binds `plan` to its inputs.
    pub fn new(plan: Plan, to: Bindings<'_>) -> Self {
        let mask = to.sensitive.as_ref().map(|s| s.mask);
        SavedPlan {
            kind: "fleetform-plan".into(),
            format_version: FORMAT_VERSION,
            created: to.created,
            config_hash: config_hash(to.sources),
            model_hash: model_hash(to.config, mask),
            base_state_version: to.base_state_version,
            config_dir: to.config_dir.display().to_string(),
            observation_fingerprint: fingerprint(to.observation, mask),
            plan,
            sensitive: to.sensitive.map(|s| s.binding.clone()),
        }
    }

    /// Writes the file atomically, readable by its owner only.
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
        let saved: SavedPlan = serde_json::from_value(value).map_err(|e| {
            Diagnostic::error(
                Code::PlanFile,
                format!("{shown} does not hold a valid plan: {e}"),
            )
            .help("run `fleetform plan -out FILE` again; nothing was changed")
        })?;
        // Every action must be one apply can carry out, before any is.
        if let Some(malformed) = saved.plan.actions.iter().find_map(|a| a.payload().err()) {
            return Err(Diagnostic::error(
                Code::PlanFile,
                format!("{shown} does not hold a valid plan: a {malformed}"),
            )
            .help("run `fleetform plan -out FILE` again; nothing was changed"));
        }
        Ok(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_hash_leaves_sensitive_user_data_of_instance_types_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("f.hcl"),
            "fleet \"f\" {\n  regions = [\"us-east-1\"]\n}\nami_set \"a\" {\n  images = { \"us-east-1\" = \"ami-0123456789abcdef0\" }\n}\nworker_type \"w\" {\n  ami_set = ami_set.a\n  instance_type \"m5.large\" {}\n  capacity {\n    max = 1\n  }\n}\n",
        )
        .expect("write");
        let loaded = crate::load_dir(dir.path(), &crate::Inputs::default());
        let mut config = loaded.config.expect("valid");
        let with = |config: &mut Config, data: &str| {
            if let Some(it) = config
                .worker_types
                .get_mut("w")
                .and_then(|wt| wt.instance_types.first_mut())
            {
                it.user_data = Some(data.to_string());
                it.user_data_sensitive = true;
            }
            model_hash(config, None)
        };
        let one = with(&mut config, "token=first-1");
        let two = with(&mut config, "token=second-2");
        // Without a mask the values are left out: two secrets, one hash.
        assert_eq!(one, two);
        if let Some(it) = config
            .worker_types
            .get_mut("w")
            .and_then(|wt| wt.instance_types.first_mut())
        {
            it.user_data_sensitive = false;
        }
        assert_ne!(model_hash(&config, None), two, "a plain value counts");
    }
}

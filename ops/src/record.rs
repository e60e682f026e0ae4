//! Version records: what a recorded version is made of (the config
//! snapshot, git commit and dirty flag, the diff to the previous version,
//! what it withheld, the images it references), building and writing it
//! with the outcomes of an apply, and what plan reads back from the latest
//! one.

use crate::{journal, Error, Reporter};
use fleetform_engine::apply;
use fleetform_engine::images::PlannedImage;
use fleetform_engine::inventory;
use fleetform_engine::model::Config;
use fleetform_engine::plan::{self, Plan};
use fleetform_engine::provider::Observation;
use fleetform_engine::sensitive::{Secrets, SensitiveBinding};
use fleetform_engine::{Inputs, Loaded};
use fleetform_state::{Backend, JournalRecord, SensitiveRecord, Version};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Largest file kept in a config snapshot.
const MAX_SNAPSHOT_FILE: u64 = 1024 * 1024;

/// The configuration as `rollback` needs it: its `*.hcl` files and exactly
/// the files they read with `file()`/`templatefile()` (relative path ->
/// text). Never other files of the directory (keys, notes) and never a
/// `-var-file`: either may hold secrets.
fn snapshot_sources(dir: &Path, loaded: &Loaded) -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> = loaded
        .sources
        .files()
        .iter()
        .filter(|f| !f.var_file)
        .map(|f| (f.name.clone(), f.text.to_string()))
        .collect();
    for relative in &loaded.read_files {
        let path = dir.join(relative);
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() <= MAX_SNAPSHOT_FILE);
        if let (true, Ok(text)) = (small, std::fs::read_to_string(&path)) {
            files.insert(relative.clone(), text);
        }
    }
    files
}

/// Writes a version's config snapshot into `dir` (for rollback), creating
/// subdirectories; a path that would leave `dir` is skipped.
pub fn restore_sources(sources: &BTreeMap<String, String>, dir: &Path) -> std::io::Result<()> {
    for (relative, text) in sources {
        let path = dir.join(relative);
        if !path.starts_with(dir) || relative.contains("..") {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

/// The git commit of `dir` and whether its files differ from it.
fn git_info(dir: &Path) -> (Option<String>, bool) {
    let run = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"]);
    let dirty = commit.is_some()
        && run(&["status", "--porcelain", "--", "."]).is_some_and(|s| !s.is_empty());
    (commit, dirty)
}

/// A unified diff of two config snapshots, file by file.
pub fn sources_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        let (a, b) = (
            old.get(name).map_or("", String::as_str),
            new.get(name).map_or("", String::as_str),
        );
        if a != b {
            out.push_str(
                &similar::TextDiff::from_lines(a, b)
                    .unified_diff()
                    .header(&format!("a/{name}"), &format!("b/{name}"))
                    .to_string(),
            );
        }
    }
    out
}

/// The objects the latest recorded version saw after its apply (empty before the first).
pub fn recorded_entries(store: &dyn Backend) -> Result<Vec<inventory::Object>, Error> {
    let Some(latest) = store.latest()? else {
        return Ok(Vec::new());
    };
    observed_entries(&store.read(latest)?)
}

/// The objects `version` saw after its apply; [`Error::Damaged`] when its
/// `observed` is not a list of entries.
fn observed_entries(version: &Version) -> Result<Vec<inventory::Object>, Error> {
    serde_json::from_value(version.observed.clone()).map_err(|e| Error::Damaged {
        version: version.number,
        what: format!("its observed objects are not a list of entries ({e})"),
    })
}

/// The actions of the plan `version` carried out, as recorded (plain JSON,
/// read field by field); [`Error::Damaged`] when its plan holds no list of
/// actions (every recorded plan does, an empty one for a refresh).
pub(crate) fn recorded_actions(version: &Version) -> Result<Vec<plan::Action>, Error> {
    let actions = version
        .plan
        .get("actions")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| Error::Damaged {
            version: version.number,
            what: "its plan holds no list of actions".into(),
        })?;
    actions
        .iter()
        .enumerate()
        .map(|(index, action)| {
            serde_json::from_value(action.clone()).map_err(|e| Error::Damaged {
                version: version.number,
                what: format!("action {index} of its plan does not decode ({e})"),
            })
        })
        .collect()
}

/// Key pair -> worker types that used it, as the latest recorded version says (FF008).
pub fn recorded_key_users(store: &dyn Backend) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let Some(latest) = store.latest()? else {
        return Ok(BTreeMap::new());
    };
    Ok(store.read(latest)?.key_pair_users)
}

/// Worker types whose user data the latest recorded version withheld.
pub fn sensitive_before(store: &dyn Backend) -> Result<BTreeSet<String>, Error> {
    let Some(latest) = store.latest()? else {
        return Ok(BTreeSet::new());
    };
    Ok(store
        .read(latest)?
        .sensitive
        .map(|record| record.worker_types.into_iter().collect())
        .unwrap_or_default())
}

/// What a version records of the sensitive values of this run; `None` when
/// there are none. A worker type whose user data an earlier version
/// withheld stays listed while the configuration has it: its live user data
/// may still hold the old secret (an update that failed, or one not made
/// yet), so it is never shown.
fn sensitive_record(
    config: &Config,
    secrets: &Secrets,
    previous: Option<&SensitiveRecord>,
) -> Result<Option<SensitiveRecord>, Error> {
    let worker_types: Vec<String> = config
        .worker_types
        .values()
        .filter(|wt| {
            let holds = |d: Option<&str>| d.is_some_and(|d| secrets.appear_in(d));
            // The worker type's templates and its instance types' own (in
            // any region) are withheld together.
            wt.has_sensitive_user_data()
                || holds(wt.user_data.as_deref())
                || wt
                    .instance_types
                    .iter()
                    .any(|it| it.user_data_sensitive || holds(it.user_data.as_deref()))
                || wt.regional.values().any(|r| {
                    holds(r.user_data.as_deref())
                        || r.instance_user_data.values().any(|d| holds(Some(d)))
                })
                || previous.is_some_and(|p| {
                    p.worker_types.contains(&wt.name) || p.worker_types.iter().any(|w| w == wt.id())
                })
        })
        // The id too, when it is not the name: it outlives a move of the
        // address (a rewrite as a `for_each` instance).
        .flat_map(|wt| {
            let id = (wt.id() != wt.name).then(|| wt.id().to_string());
            std::iter::once(wt.name.clone()).chain(id)
        })
        .collect();
    if secrets.is_empty() && worker_types.is_empty() {
        return Ok(None);
    }
    Ok(Some(SensitiveRecord {
        variables: SensitiveBinding::new(secrets)?.variables,
        worker_types,
    }))
}

/// Region -> image ids a new version references: the images the plan chose,
/// the copies it made, and what every launch template launches after the
/// apply (a region held by a staged roll-out keeps its old image in use).
fn referenced_images(
    plan_images: &[PlannedImage],
    copies: &[(String, String)],
    after: &Observation,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |region: &str, id: &str| {
        let ids = out.entry(region.to_string()).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    };
    for p in plan_images {
        if let Some(id) = &p.image_id {
            add(&p.region, id);
        }
    }
    for (region, id) in copies {
        add(region, id);
    }
    for (region, observed) in &after.regions {
        for t in observed.launch_templates.complete().into_iter().flatten() {
            if let Some(id) = t.default_data.as_ref().and_then(|d| d.image_id.as_deref()) {
                add(region, id);
            }
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    out
}

/// Why a no-op apply must still record a version, if it must: EC2 holds
/// fleet objects the latest version (number `latest`) does not list (every
/// kind was read), or the journal still holds an apply that never ended.
/// A latest version or a journal that cannot be read, or a latest version
/// whose observed objects do not decode, is an error.
pub fn unrecorded(
    store: &dyn Backend,
    latest: Option<u64>,
    config: &Config,
    observation: &Observation,
) -> Result<Option<String>, Error> {
    let latest = latest.map(|n| store.read(n)).transpose()?;
    if journal::holds_open_apply(store)? {
        return Ok(Some("the journal holds an apply that never ended".into()));
    }
    let (entries, unread) = inventory::entries(config, observation);
    if !unread.is_empty() {
        return Ok(None);
    }
    let recorded: BTreeSet<String> = match &latest {
        Some(version) => observed_entries(version)?
            .into_iter()
            .map(|e| e.id)
            .collect(),
        None => BTreeSet::new(),
    };
    let missing = entries
        .iter()
        .filter(|e| e.managed && !recorded.contains(&e.id))
        .count();
    Ok((missing > 0).then(|| {
        format!(
            "EC2 holds {missing} object{} of this fleet that the last version does not record",
            if missing == 1 { "" } else { "s" }
        )
    }))
}

/// What a rollback to `version` loads its restored configuration with:
/// the variables it recorded, then those `supplied` now (later wins); and
/// the names of the sensitive variables it used, whose values were never
/// recorded and must be supplied again. Versions written before sensitive
/// values were withheld recorded `(sensitive)` for them.
pub fn rollback_inputs(version: &Version, supplied: &Inputs) -> (Inputs, BTreeSet<String>) {
    let mut withheld: BTreeSet<String> = version
        .sensitive
        .as_ref()
        .map(|s| s.variables.keys().cloned().collect())
        .unwrap_or_default();
    let mut vars: Vec<String> = Vec::new();
    for (name, value) in &version.variables {
        if value == fleetform_engine::sensitive::SHOWN {
            withheld.insert(name.clone());
        } else {
            vars.push(format!("{name}={value}"));
        }
    }
    vars.extend(supplied.vars.iter().cloned());
    let inputs = Inputs {
        vars,
        var_files: supplied.var_files.clone(),
        env: supplied.env.clone(),
    };
    (inputs, withheld)
}

/// What a version of an apply (or refresh) is built from.
pub struct VersionInputs<'a> {
    /// The state store the version goes to (the previous version is read from it).
    pub store: &'a dyn Backend,
    /// The configuration directory the user named (its git commit is recorded).
    pub dir: &'a Path,
    /// Where the applied configuration lives (for rollback: version N restored).
    pub source_dir: &'a Path,
    /// The applied configuration as loaded.
    pub loaded: &'a Loaded,
    /// Its evaluated model.
    pub config: &'a Config,
    /// The variables given (sensitive ones are never recorded).
    pub inputs: &'a Inputs,
    /// ARN of the caller.
    pub caller: &'a str,
    /// The version this apply rolled back to, if it is a rollback.
    pub rollback_of: Option<u64>,
    /// The plan carried out.
    pub plan: &'a Plan,
    /// The latest version before this one.
    pub latest: Option<u64>,
    /// What happened to each action.
    pub outcomes: &'a [apply::Outcome],
    /// What EC2 holds after the apply.
    pub after: &'a Observation,
    /// The time the version is stamped with, in unix seconds.
    pub time: i64,
}

/// The version an apply (or refresh) records, numbered after `latest`. Kinds
/// EC2 could not read after the apply keep what the previous version
/// recorded of them (each reported as a warning). A sensitive value that
/// cannot be digested, or a previous version that cannot be read or is
/// damaged, is [`Error::Unrecorded`] (the changes were made).
pub fn build_version(inputs: VersionInputs<'_>, reporter: &dyn Reporter) -> Result<Version, Error> {
    let VersionInputs {
        store,
        dir,
        source_dir,
        loaded,
        config,
        inputs,
        caller,
        rollback_of,
        plan,
        latest,
        outcomes,
        after,
        time,
    } = inputs;
    let (entries, unread) = inventory::entries(config, after);
    let sources = snapshot_sources(source_dir, loaded);
    let unrecorded = |e: Error| Error::Unrecorded(Box::new(e));
    let previous = latest
        .map(|n| store.read(n))
        .transpose()
        .map_err(|e| unrecorded(e.into()))?;
    for (region, kind, cause) in &unread {
        reporter.warning(&format!(
            "{kind} in {region} could not be read after the apply ({cause}); the new version keeps what the last one recorded of them, and the next plan adopts what this apply made there"
        ));
    }
    let before: Vec<inventory::Object> = match &previous {
        Some(version) => observed_entries(version).map_err(unrecorded)?,
        None => Vec::new(),
    };
    let entries = inventory::carry_over(entries, &unread, &before);
    let (git_commit, git_dirty) = git_info(dir);
    // Sensitive variables are never recorded: the version keeps a digest
    // of each (below), and rollback asks for them again.
    let sensitive = &config.sensitive_variables;
    let variables: BTreeMap<String, String> = inputs
        .vars
        .iter()
        .filter_map(|v| v.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .chain(inputs.env.iter().cloned())
        // Only this configuration's own variables: the environment may hold
        // FLEETFORM_VAR_* of other fleets (a shared CI runner).
        .filter(|(k, _)| loaded.variables.contains(k) && !sensitive.contains(k))
        .collect();
    let sensitive_record = sensitive_record(
        config,
        &loaded.secrets,
        previous.as_ref().and_then(|p| p.sensitive.as_ref()),
    )
    .map_err(unrecorded)?;
    let copies: Vec<(String, String)> = outcomes
        .iter()
        .filter(|o| plan.actions[o.action].action == plan::ActionKind::Copy)
        .filter_map(|o| {
            let id = o.result.as_ref().ok()?.first()?;
            Some((plan.actions[o.action].region.clone(), id.clone()))
        })
        .collect();
    let images = referenced_images(&plan.images, &copies, after);
    let number = latest.unwrap_or(0) + 1;
    Ok(Version {
        format_version: fleetform_state::FORMAT_VERSION,
        number,
        time,
        git_commit,
        git_dirty,
        caller: caller.to_string(),
        rollback_of,
        diff: sources_diff(
            previous.as_ref().map_or(&BTreeMap::new(), |p| &p.sources),
            &sources,
        ),
        sources,
        variables,
        plan: serde_json::to_value(plan).unwrap_or_default(),
        outcomes: outcomes
            .iter()
            .map(|o| fleetform_state::ActionOutcome {
                action: o.action,
                ok: o.result.is_ok(),
                error: o.result.as_ref().err().map(|e| e.message.clone()),
                ids: o.result.clone().unwrap_or_default(),
            })
            .collect(),
        observed: serde_json::to_value(&entries).unwrap_or_default(),
        summary: serde_json::to_value(&plan.summary).unwrap_or_default(),
        images,
        sensitive: sensitive_record,
        key_pair_users: plan::build::key_pair_users(config),
    })
}

/// Writes `version` (built by [`build_version`]), then ends the journal of
/// apply `apply_id` and clears it. A version that cannot be written is
/// [`Error::Unrecorded`]: the changes were made, and the journal keeps them.
/// A journal that cannot be cleared is reported as a warning.
pub fn record_version(
    store: &dyn Backend,
    version: &Version,
    apply_id: String,
    reporter: &dyn Reporter,
) -> Result<(), Error> {
    let end = JournalRecord::End {
        apply_id,
        time: crate::clock(),
        version: Some(version.number),
    };
    let ended = store
        .record(version, &end)
        .map_err(|e| Error::Unrecorded(Box::new(e.into())))?;
    if let Err(e) = ended {
        reporter.warning(&format!("cannot clear the journal: {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user_data: &str) -> (tempfile::TempDir, Loaded) {
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = format!(
            "fleet \"f\" {{\n  regions = [\"us-east-1\"]\n}}\nami_set \"a\" {{\n  images = {{ \"us-east-1\" = \"ami-0123456789abcdef0\" }}\n}}\nworker_type \"w\" {{\n  ami_set   = ami_set.a\n  user_data = {user_data}\n  instance_type \"m5.large\" {{}}\n  capacity {{\n    max = 1\n  }}\n}}\n"
        );
        std::fs::write(dir.path().join("f.hcl"), hcl).expect("write");
        let loaded = fleetform_engine::load_dir(dir.path(), &Inputs::default());
        (dir, loaded)
    }

    #[test]
    fn a_worker_type_withheld_before_stays_withheld_after_its_secret_is_gone() {
        // Its template may still hold the old secret (the update failed or was not made).
        let (_dir, loaded) = config("\"no secret now\"");
        let config = loaded.config.expect("valid");
        let none = sensitive_record(&config, &Secrets::default(), None).expect("record");
        assert_eq!(none, None);
        let before = SensitiveRecord {
            variables: BTreeMap::new(),
            worker_types: vec!["w".into(), "removed".into()],
        };
        let record = sensitive_record(&config, &Secrets::default(), Some(&before))
            .expect("record")
            .expect("kept");
        assert_eq!(record.worker_types, vec!["w".to_string()]);
    }

    #[test]
    fn a_worker_type_whose_instance_type_has_sensitive_user_data_is_recorded_as_withheld() {
        let (_dir, loaded) = config("\"plain\"");
        let mut config = loaded.config.expect("valid");
        if let Some(it) = config
            .worker_types
            .get_mut("w")
            .and_then(|wt| wt.instance_types.first_mut())
        {
            it.user_data = Some("token=(derived)".into());
            it.user_data_sensitive = true;
        }
        let record = sensitive_record(&config, &Secrets::default(), None)
            .expect("record")
            .expect("withheld");
        assert_eq!(record.worker_types, vec!["w".to_string()]);
    }
}

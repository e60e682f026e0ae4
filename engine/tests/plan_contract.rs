//! The plan contract (`schemas/README.md`): `plan --json` documents, plan
//! files and `output --json` documents of every published format version
//! are read by this build without losing a field. `schemas/compat/vN/`
//! holds real documents written by format N; a field removed, renamed or retyped fails here, and bumping a
//! format version fails until its documents are added.

use fleetform_engine::output::Output;
use fleetform_engine::plan::saved::{SavedPlan, FORMAT_VERSION as PLAN_FILE_FORMAT};
use fleetform_engine::plan::{render, Plan};
use fleetform_engine::schema::FORMAT_VERSION as JSON_FORMAT;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn compat() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/compat")
}

/// `(version, file)` of every committed document whose name starts with `prefix`.
fn documents(prefix: &str) -> Vec<(u32, PathBuf)> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(compat())
        .expect("schemas/compat exists")
        .flatten()
    {
        let name = dir.file_name().to_string_lossy().into_owned();
        let Some(version) = name.strip_prefix('v').and_then(|v| v.parse().ok()) else {
            continue;
        };
        for file in std::fs::read_dir(dir.path()).expect("list").flatten() {
            let file_name = file.file_name().to_string_lossy().into_owned();
            if file_name.starts_with(prefix) && file_name.ends_with(".json") {
                found.push((version, file.path()));
            }
        }
    }
    found.sort();
    assert!(!found.is_empty(), "no {prefix}*.json under schemas/compat");
    found
}

/// Every key and value of `old` is in `new` unchanged (objects may gain keys).
fn assert_kept(old: &Value, new: &Value, at: &str) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in old {
                let Some(kept) = new.get(key) else {
                    panic!("{at}.{key} was dropped");
                };
                assert_kept(value, kept, &format!("{at}.{key}"));
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            assert_eq!(old.len(), new.len(), "{at}: length changed");
            for (n, (o, v)) in old.iter().zip(new).enumerate() {
                assert_kept(o, v, &format!("{at}[{n}]"));
            }
        }
        (old, new) => assert_eq!(old, new, "{at} changed"),
    }
}

#[test]
fn every_published_plan_json_reads_without_losing_a_field() {
    for (version, path) in documents("plan-") {
        let text = std::fs::read_to_string(&path).expect("read");
        let old: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            old["format_version"],
            version.to_string(),
            "{}",
            path.display()
        );
        let plan: Plan = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} no longer reads: {e}", path.display()));
        let new = serde_json::to_value(&plan).expect("serialises");
        assert_kept(&old, &new, &path.display().to_string());
        assert!(!render::human(&plan, false).is_empty());
    }
}

#[test]
fn every_published_plan_file_reads_without_losing_a_field() {
    for (version, path) in documents("planfile-") {
        let old: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
        assert_eq!(old["format_version"], version, "{}", path.display());
        assert_eq!(old["kind"], "fleetform-plan");
        let saved = SavedPlan::read(&path)
            .unwrap_or_else(|d| panic!("{} no longer reads: {}", path.display(), d.message));
        let new = serde_json::to_value(&saved).expect("serialises");
        assert_kept(&old, &new, &path.display().to_string());
    }
}

#[test]
fn every_published_output_json_reads_without_losing_a_field() {
    for (version, path) in documents("output-") {
        let text = std::fs::read_to_string(&path).expect("read");
        let old: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            old["format_version"],
            version.to_string(),
            "{}",
            path.display()
        );
        let output: Output = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} no longer reads: {e}", path.display()));
        let new = serde_json::to_value(&output).expect("serialises");
        assert_kept(&old, &new, &path.display().to_string());
        assert!(!fleetform_engine::output::human(&output).is_empty());
    }
}

#[test]
fn the_current_formats_have_published_documents() {
    let json: u32 = JSON_FORMAT.parse().expect("a number");
    assert!(
        documents("plan-").iter().any(|(v, _)| *v == json),
        "plan --json format {json} has no documents in schemas/compat/v{json}/: add them when bumping it"
    );
    assert!(
        documents("output-").iter().any(|(v, _)| *v == json),
        "output --json format {json} has no documents in schemas/compat/v{json}/: add them when bumping it"
    );
    assert!(
        documents("planfile-").iter().any(|(v, _)| *v == PLAN_FILE_FORMAT),
        "plan file format {PLAN_FILE_FORMAT} has no documents in schemas/compat/v{PLAN_FILE_FORMAT}/"
    );
}

#[test]
fn the_check_catches_a_dropped_or_changed_field() {
    let old: Value = serde_json::json!({"a": 1, "b": {"c": [1, 2]}});
    let dropped = std::panic::catch_unwind(|| {
        assert_kept(&old, &serde_json::json!({"a": 1, "b": {}}), "doc")
    });
    assert!(dropped.is_err());
    let changed = std::panic::catch_unwind(|| {
        assert_kept(
            &old,
            &serde_json::json!({"a": "1", "b": {"c": [1, 2]}}),
            "doc",
        )
    });
    assert!(changed.is_err());
    assert_kept(
        &old,
        &serde_json::json!({"a": 1, "b": {"c": [1, 2], "d": 0}, "e": 2}),
        "doc",
    );
}

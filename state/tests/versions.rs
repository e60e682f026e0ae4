//! Versions and the index of a local state directory.

use fleetform_state::{
    ActionOutcome, Backend, LocalBackend, StateError, Version, VersionSummary, FORMAT_VERSION,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn version(number: u64) -> Version {
    Version {
        format_version: FORMAT_VERSION,
        number,
        time: 1_700_000_000 + number as i64,
        git_commit: Some(format!("c0ffee{number}")),
        git_dirty: number.is_multiple_of(2),
        caller: "arn:aws:iam::123456789012:user/releng".into(),
        rollback_of: (number > 2).then_some(1),
        sources: BTreeMap::from([
            (
                "fleet.hcl".to_string(),
                format!("fleet \"f\" {{ # v{number}\n}}\n"),
            ),
            (
                "workers/linux.hcl".to_string(),
                "worker_type \"a\" {}\n".to_string(),
            ),
        ]),
        variables: BTreeMap::from([
            ("owner".to_string(), "releng".to_string()),
            ("token".to_string(), "(sensitive)".to_string()),
        ]),
        plan: serde_json::json!({"actions": [{"address": "worker_type.a", "action": "launch", "count": number}]}),
        outcomes: vec![ActionOutcome {
            action: 0,
            ok: true,
            error: None,
            ids: vec![format!("i-{number:017x}")],
        }],
        observed: serde_json::json!({"us-east-1": {"instances": number}}),
        diff: format!(
            "--- a/fleet.hcl\n+++ b/fleet.hcl\n@@ -1 +1 @@\n-v{}\n+v{number}\n",
            number - 1
        ),
        summary: serde_json::json!({"add": 0, "change": 0, "destroy": 0, "launch": number, "terminate": 0, "hourly_usd": 1.5}),
        images: BTreeMap::from([(
            "us-east-1".to_string(),
            vec!["ami-0123456789abcdef0".to_string()],
        )]),
        sensitive: None,
        key_pair_users: Default::default(),
    }
}

fn store() -> (tempfile::TempDir, LocalBackend, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(".fleetform");
    (tmp, LocalBackend::new(&dir), dir)
}

fn version_file(dir: &Path, number: u64) -> PathBuf {
    dir.join("versions").join(format!("{number:06}.json"))
}

/// Every file under `dir` with its bytes (to prove nothing changed).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("ls").flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.insert(path.clone(), b"<dir>".to_vec());
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).expect("read"));
            }
        }
    }
    files
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

#[test]
fn versions_round_trip_and_list_ascending() {
    let (_tmp, store, _dir) = store();
    assert_eq!(store.latest().expect("latest"), None);
    assert_eq!(store.list().expect("list"), vec![]);
    for n in [1, 3, 2] {
        store.write(&version(n)).expect("written");
    }
    for n in 1..=3 {
        assert_eq!(store.read(n).expect("read"), version(n));
    }
    let list = store.list().expect("list");
    assert_eq!(
        list.iter().map(|s| s.number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(list[1], VersionSummary::from(&version(2)));
    assert_eq!(store.latest().expect("latest"), Some(3));
    assert!(matches!(store.read(4), Err(StateError::NoSuchVersion(4))));
}

#[test]
fn format_version_is_always_that_of_the_writer() {
    let (_tmp, store, dir) = store();
    let mut v = version(1);
    v.format_version = 0;
    store.write(&v).expect("written");
    let text = std::fs::read_to_string(version_file(&dir, 1)).expect("read");
    let value: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(value["format_version"], FORMAT_VERSION);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["format_version"], FORMAT_VERSION);
    assert_eq!(index["versions"][0]["number"], 1);
}

#[test]
fn list_reads_only_the_index() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    store.write(&version(2)).expect("written");
    let before = store.list().expect("list");
    let file = version_file(&dir, 1);
    std::fs::write(&file, "").expect("emptied");
    assert_eq!(store.list().expect("list still works"), before);
    assert_eq!(store.latest().expect("latest"), Some(2));
    let err = store.read(1).expect_err("body gone");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert_eq!(err.path(), Some(file.as_path()));
    assert_eq!(store.read(2).expect("other one reads"), version(2));
}

#[test]
fn an_indexed_version_whose_file_was_removed_is_listed_and_read_names_the_file() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    store.write(&version(2)).expect("written");
    std::fs::remove_file(version_file(&dir, 1)).expect("removed");
    assert_eq!(store.list().expect("list").len(), 2);
    let err = store.read(1).expect_err("gone");
    assert!(matches!(err, StateError::Io { .. }), "{err}");
    assert_eq!(err.path(), Some(version_file(&dir, 1).as_path()));
}

#[test]
fn write_is_atomic_private_and_leaves_no_temporary_files() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    store.write(&version(2)).expect("written");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("versions")), 0o700);
    assert_eq!(mode(&version_file(&dir, 1)), 0o600);
    assert_eq!(mode(&version_file(&dir, 2)), 0o600);
    assert_eq!(mode(&dir.join("index.json")), 0o600);
    let names: Vec<PathBuf> = snapshot(&dir).into_keys().collect();
    assert_eq!(
        names,
        vec![
            dir.join("index.json"),
            dir.join("versions"),
            version_file(&dir, 1),
            version_file(&dir, 2),
        ]
    );
}

#[test]
fn writing_an_existing_number_is_refused_and_the_file_is_unchanged() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    let before = snapshot(&dir);
    let mut other = version(1);
    other.caller = "arn:aws:iam::123456789012:user/intruder".into();
    assert!(matches!(
        store.write(&other),
        Err(StateError::VersionExists(1))
    ));
    assert_eq!(snapshot(&dir), before);
    assert_eq!(store.read(1).expect("read"), version(1));
}

#[test]
fn an_unindexed_version_file_is_found_and_its_number_is_taken() {
    // A crash between the version file and the index update.
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    let index_after_1 = std::fs::read(dir.join("index.json")).expect("index");
    store.write(&version(2)).expect("written");
    std::fs::write(dir.join("index.json"), &index_after_1).expect("old index back");
    assert_eq!(
        store.list().expect("list"),
        vec![
            VersionSummary::from(&version(1)),
            VersionSummary::from(&version(2))
        ]
    );
    assert_eq!(store.latest().expect("latest"), Some(2));
    assert!(matches!(
        store.write(&version(2)),
        Err(StateError::VersionExists(2))
    ));
    store.write(&version(3)).expect("written");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    assert_eq!(index["versions"].as_array().expect("list").len(), 3);
}

#[test]
fn concurrent_writers_never_lose_a_version() {
    let (_tmp, store, dir) = store();
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        for n in 1..=8 {
            let barrier = &barrier;
            let dir = &dir;
            scope.spawn(move || {
                let store = LocalBackend::new(dir);
                barrier.wait();
                store.write(&version(n)).expect("written");
            });
        }
    });
    let numbers: Vec<u64> = store
        .list()
        .expect("list")
        .iter()
        .map(|s| s.number)
        .collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    for n in 1..=8 {
        assert_eq!(store.read(n).expect("read"), version(n));
    }
}

fn newer(number: u64) -> String {
    let mut value = serde_json::to_value(version(number)).expect("json");
    value["format_version"] = (FORMAT_VERSION + 1).into();
    value["something_new"] = true.into();
    serde_json::to_string(&value).expect("json")
}

/// `version` as a format-1 fleetform wrote it: pretty JSON, no checksum.
fn format_1(version: &Version) -> String {
    let mut value = serde_json::to_value(version).expect("json");
    value["format_version"] = 1.into();
    serde_json::to_string_pretty(&value).expect("json") + "\n"
}

/// Damaged contents for a version file: (label, bytes).
fn damaged_versions(number: u64) -> Vec<(&'static str, String)> {
    let good = serde_json::to_string_pretty(&version(number)).expect("json");
    vec![
        ("garbage", "this is not json {".to_string()),
        ("truncated", good[..good.len() / 2].to_string()),
        ("empty", String::new()),
        (
            "wrong shape",
            r#"{"format_version": 1, "number": "two"}"#.to_string(),
        ),
        ("no format_version", r#"{"number": 2}"#.to_string()),
        ("wrong number", format_1(&version(number + 1))),
        (
            "format 2 without its checksum",
            serde_json::to_string_pretty(&version(number)).expect("json"),
        ),
        ("newer format", newer(number)),
    ]
}

#[test]
fn damaged_version_files_are_errors_naming_the_file_and_are_never_touched() {
    for (label, text) in damaged_versions(2) {
        let (_tmp, store, dir) = store();
        store.write(&version(1)).expect("written");
        store.write(&version(2)).expect("written");
        let file = version_file(&dir, 2);
        std::fs::write(&file, &text).expect("damaged");
        let before = snapshot(&dir);

        let err = store.read(2).expect_err(label);
        assert_eq!(err.path(), Some(file.as_path()), "{label}: {err}");
        if label == "newer format" {
            assert!(
                matches!(err, StateError::NewerFormat { found, .. } if found == FORMAT_VERSION + 1),
                "{label}: {err}"
            );
        } else {
            assert!(matches!(err, StateError::Corrupt { .. }), "{label}: {err}");
        }
        assert!(err.to_string().contains("000002.json"), "{label}: {err}");
        assert!(matches!(
            store.write(&version(2)),
            Err(StateError::VersionExists(2))
        ));
        assert_eq!(snapshot(&dir), before, "{label}: nothing changed");
    }
}

#[test]
fn a_damaged_unindexed_version_file_blocks_list_and_write_by_name() {
    for (label, text) in damaged_versions(2) {
        let (_tmp, store, dir) = store();
        store.write(&version(1)).expect("written");
        let file = version_file(&dir, 2);
        std::fs::write(&file, &text).expect("damaged");
        let before = snapshot(&dir);
        let err = store.list().expect_err(label);
        assert_eq!(err.path(), Some(file.as_path()), "{label}: {err}");
        let err = store.write(&version(3)).expect_err(label);
        assert_eq!(err.path(), Some(file.as_path()), "{label}: {err}");
        assert_eq!(snapshot(&dir), before, "{label}: nothing changed");
    }
}

fn damaged_indexes() -> Vec<(&'static str, String)> {
    vec![
        ("garbage", "]]".to_string()),
        (
            "truncated",
            r#"{"format_version": 1, "versions": [{"number": 1, "ti"#.to_string(),
        ),
        ("empty", String::new()),
        (
            "wrong shape",
            r#"{"format_version": 1, "versions": 3}"#.to_string(),
        ),
    ]
}

#[test]
fn a_damaged_index_is_an_error_naming_it_and_is_never_overwritten() {
    for (label, text) in damaged_indexes() {
        let (_tmp, store, dir) = store();
        store.write(&version(1)).expect("written");
        store.write(&version(2)).expect("written");
        let expected = store.list().expect("list");
        let index = dir.join("index.json");
        std::fs::write(&index, &text).expect("damaged");
        let before = snapshot(&dir);
        for err in [
            store.list().expect_err(label),
            store.latest().expect_err(label),
            store.write(&version(3)).expect_err(label),
        ] {
            assert!(matches!(err, StateError::Corrupt { .. }), "{label}: {err}");
            assert_eq!(err.path(), Some(index.as_path()), "{label}: {err}");
            assert!(err.to_string().contains("index.json"), "{label}: {err}");
        }
        assert_eq!(snapshot(&dir), before, "{label}: nothing changed");
        // Versions still read one by one.
        assert_eq!(store.read(2).expect(label), version(2));
        // Moved aside, it is rebuilt from the version files.
        std::fs::rename(&index, dir.join("index.json.damaged")).expect("moved aside");
        assert_eq!(store.list().expect(label), expected, "{label}");
        store.write(&version(3)).expect(label);
        assert!(index.exists(), "{label}: the rebuilt index is stored");
    }
}

#[test]
fn a_missing_index_is_rebuilt_from_the_version_files() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    store.write(&version(2)).expect("written");
    let expected = store.list().expect("list");
    std::fs::remove_file(dir.join("index.json")).expect("removed");
    assert_eq!(store.list().expect("list"), expected);
    assert!(!dir.join("index.json").exists(), "list never writes");
    store.write(&version(3)).expect("written");
    assert!(dir.join("index.json").exists());
}

#[test]
fn a_missing_index_with_a_damaged_version_file_is_an_error_naming_that_file() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    store.write(&version(2)).expect("written");
    std::fs::remove_file(dir.join("index.json")).expect("removed");
    let file = version_file(&dir, 2);
    std::fs::write(&file, "{").expect("damaged version");
    let before = snapshot(&dir);
    for err in [
        store.list().expect_err("damaged"),
        store.write(&version(3)).expect_err("damaged"),
    ] {
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert_eq!(err.path(), Some(file.as_path()), "{err}");
    }
    assert_eq!(snapshot(&dir), before, "nothing changed");
}

#[test]
fn a_newer_format_index_is_never_rebuilt_or_overwritten() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    let index = dir.join("index.json");
    let newer = format!(
        r#"{{"format_version": {}, "entries": {{}}}}"#,
        FORMAT_VERSION + 1
    );
    std::fs::write(&index, newer).expect("newer");
    let before = snapshot(&dir);
    for err in [
        store.list().expect_err("newer"),
        store.write(&version(2)).expect_err("newer"),
    ] {
        assert!(
            matches!(err, StateError::NewerFormat { found, .. } if found == FORMAT_VERSION + 1),
            "{err}"
        );
        assert_eq!(err.path(), Some(index.as_path()));
    }
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn an_index_listing_a_number_twice_is_corrupt() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    let summary = serde_json::to_value(VersionSummary::from(&version(1))).expect("json");
    let index = serde_json::json!({"format_version": 1, "versions": [summary.clone(), summary]});
    let path = dir.join("index.json");
    std::fs::write(&path, index.to_string()).expect("written");
    let err = store.list().expect_err("listed twice");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(err.to_string().contains("listed twice"), "{err}");
}

#[test]
fn a_format_1_state_still_reads_and_is_upgraded_by_the_next_write() {
    let (_tmp, store, dir) = store();
    std::fs::create_dir_all(dir.join("versions")).expect("mkdir");
    std::fs::write(version_file(&dir, 1), format_1(&version(1))).expect("v1");
    let summary = serde_json::to_value(VersionSummary::from(&version(1))).expect("json");
    let index = serde_json::json!({"format_version": 1, "versions": [summary]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_string_pretty(&index).expect("json") + "\n",
    )
    .expect("index");
    let mut expected = version(1);
    expected.format_version = 1;
    assert_eq!(store.read(1).expect("format 1 reads"), expected);
    assert_eq!(
        store.list().expect("list"),
        vec![VersionSummary::from(&version(1))]
    );
    let old = std::fs::read(version_file(&dir, 1)).expect("read");
    store.write(&version(2)).expect("written");
    assert_eq!(
        std::fs::read(version_file(&dir, 1)).expect("read"),
        old,
        "never rewritten"
    );
    for file in [dir.join("index.json"), version_file(&dir, 2)] {
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.starts_with("{\n  \"sha256\": \""), "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["format_version"], FORMAT_VERSION);
    }
    assert_eq!(store.list().expect("list").len(), 2);
}

#[test]
fn a_format_1_file_that_carries_a_checksum_is_corrupt() {
    let (_tmp, store, dir) = store();
    std::fs::create_dir_all(dir.join("versions")).expect("mkdir");
    let mut value = serde_json::to_value(version(1)).expect("json");
    value["format_version"] = 1.into();
    value["sha256"] = "0".repeat(64).into();
    std::fs::write(version_file(&dir, 1), value.to_string()).expect("v1");
    let err = store.read(1).expect_err("format 1 has no checksum");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
}

#[test]
fn stray_files_in_versions_are_ignored() {
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("written");
    let versions = dir.join("versions");
    for name in [
        "1.json",
        ".000002.json.new.123",
        "notes.txt",
        "0000003.json",
    ] {
        std::fs::write(versions.join(name), "junk").expect("stray");
    }
    assert_eq!(store.latest().expect("latest"), Some(1));
    store.write(&version(2)).expect("written");
}

/// A read-only state directory or `versions/` (mode 0500: as root too,
/// whom permission bits do not stop) refuses every write by name, before
/// writing anything; reading works.
#[test]
fn a_read_only_state_dir_is_refused_by_name_and_changes_nothing() {
    use fleetform_state::JournalRecord;
    use std::os::unix::fs::PermissionsExt;
    let record = JournalRecord::End {
        apply_id: "a".into(),
        time: 1,
        version: None,
    };
    for read_only in [None, Some("versions")] {
        let (_tmp, store, dir) = store();
        store.write(&version(1)).expect("written");
        store.append_journal(&record).expect("journal");
        let target = read_only.map_or(dir.clone(), |d| dir.join(d));
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        let before = snapshot(&dir);
        let mut errors = vec![
            store.write(&version(2)).expect_err("read-only"),
            store
                .lock("u@h:1", 60, 1000)
                .map(|_| ())
                .expect_err("read-only"),
        ];
        if read_only.is_none() {
            errors.push(store.append_journal(&record).expect_err("read-only"));
            errors.push(store.clear_journal().expect_err("read-only"));
        }
        for err in errors {
            assert!(
                matches!(err, StateError::ReadOnly { mode: 0o500, .. }),
                "{err}"
            );
            assert_eq!(err.path(), Some(target.as_path()), "{err}");
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        // Reading still works.
        assert_eq!(store.read(1).expect("read"), version(1));
        assert_eq!(store.latest().expect("latest"), Some(1));
        assert_eq!(store.journal().expect("journal"), vec![record.clone()]);
        assert_eq!(snapshot(&dir), before, "nothing changed");
        assert_eq!(mode(&target), 0o500);
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
}

#[test]
fn the_backend_is_usable_as_a_trait_object() {
    let (_tmp, store, _dir) = store();
    let backend: Box<dyn Backend> = Box::new(store);
    backend.write(&version(1)).expect("written");
    assert_eq!(backend.latest().expect("latest"), Some(1));
}

#[test]
fn the_index_carries_each_versions_images_and_reads_entries_without_them() {
    // Plan learns which images recent versions protect from the index alone.
    let (_tmp, store, dir) = store();
    store.write(&version(1)).expect("write");
    let listed = store.list().expect("list");
    assert_eq!(listed[0].images, Some(version(1).images));

    // An index written before entries had images (format 1, no checksum)
    // still reads; the entry says it does not know (None), so the caller
    // reads the version file.
    let index = dir.join("index.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index).expect("read")).expect("json");
    let object = value.as_object_mut().expect("object");
    object.remove("sha256");
    object.insert("format_version".into(), 1.into());
    value["versions"][0]
        .as_object_mut()
        .expect("entry")
        .remove("images");
    std::fs::write(&index, serde_json::to_vec(&value).expect("encode")).expect("write");
    let listed = store.list().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].images, None);
    assert_eq!(store.read(1).expect("read").images, version(1).images);
}

#[test]
fn a_version_written_before_key_pair_users_existed_still_reads() {
    let mut written = version(1);
    written.key_pair_users = BTreeMap::from([("workers".to_string(), vec!["builder".to_string()])]);
    let mut json = serde_json::to_value(&written).expect("encode");
    assert_eq!(json["key_pair_users"]["workers"][0], "builder");
    json.as_object_mut()
        .expect("object")
        .remove("key_pair_users");
    let read: fleetform_state::Version = serde_json::from_value(json).expect("old versions read");
    assert!(read.key_pair_users.is_empty());
}

//! The write-ahead journal of a local state directory.

use fleetform_state::{Backend, JournalRecord, LocalBackend, StateError, FORMAT_VERSION};
use std::path::PathBuf;

fn store() -> (tempfile::TempDir, LocalBackend, PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join(".fleetform");
    (tmp, LocalBackend::new(&dir), dir.join("journal.jsonl"))
}

fn records() -> Vec<JournalRecord> {
    vec![
        JournalRecord::Begin {
            apply_id: "apply-1".into(),
            time: 100,
            holder: "alice@ci:42".into(),
            actions: 2,
        },
        JournalRecord::Intent {
            apply_id: "apply-1".into(),
            action: 0,
            address: "worker_type.gecko-t-linux".into(),
            region: "us-east-1".into(),
            client_token: "ff-apply-1-0".into(),
            time: 101,
        },
        JournalRecord::Outcome {
            apply_id: "apply-1".into(),
            action: 0,
            ok: true,
            error: None,
            ids: vec!["i-0123456789abcdef0".into(), "i-0123456789abcdef1".into()],
            time: 102,
        },
        JournalRecord::Intent {
            apply_id: "apply-1".into(),
            action: 1,
            address: "key_pair.ci".into(),
            region: "eu-central-1".into(),
            client_token: "ff-apply-1-1".into(),
            time: 103,
        },
        JournalRecord::Outcome {
            apply_id: "apply-1".into(),
            action: 1,
            ok: false,
            error: Some("UnauthorizedOperation: \"quoted\"\nsecond line".into()),
            ids: vec![],
            time: 104,
        },
        JournalRecord::End {
            apply_id: "apply-1".into(),
            time: 105,
            version: Some(7),
        },
    ]
}

fn append_all(store: &LocalBackend, records: &[JournalRecord]) {
    for record in records {
        store.append_journal(record).expect("appended");
    }
}

#[test]
fn records_round_trip_in_order() {
    let (_tmp, store, path) = store();
    assert_eq!(store.journal().expect("no journal yet"), vec![]);
    append_all(&store, &records());
    assert_eq!(store.journal().expect("journal"), records());
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"{"format_version":2}"#);
    assert_eq!(lines.len(), 1 + records().len(), "one line per record");
    assert!(lines[1].starts_with(r#"{"sha256":""#), "{}", lines[1]);
    assert!(lines[1].contains(r#"","record":"begin","#), "{}", lines[1]);
    assert!(text.ends_with('\n'));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_torn_last_line_is_ignored_and_cut_before_the_next_append() {
    let (_tmp, store, path) = store();
    let all = records();
    append_all(&store, &all[..3]);
    let full = std::fs::read(&path).expect("read");
    // Crash in the middle of writing record 4.
    let fourth = serde_json::to_vec(&all[3]).expect("json");
    for cut in [1, fourth.len() / 2, fourth.len() - 1] {
        let mut torn = full.clone();
        torn.extend_from_slice(&fourth[..cut]);
        std::fs::write(&path, &torn).expect("torn");
        assert_eq!(
            store.journal().expect("torn tail ignored"),
            all[..3],
            "cut {cut}"
        );
    }
    // Zeros, as some filesystems leave after a crash.
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0; 40]);
    std::fs::write(&path, &zeros).expect("zeros");
    assert_eq!(store.journal().expect("zero tail ignored"), all[..3]);
    store
        .append_journal(&all[3])
        .expect("appended after a torn line");
    assert_eq!(store.journal().expect("journal"), all[..4]);
    let after = std::fs::read(&path).expect("read");
    assert!(
        after.starts_with(&full),
        "the records before the tear are kept"
    );
    let added = &after[full.len()..];
    assert_eq!(
        added.iter().filter(|b| **b == b'\n').count(),
        1,
        "the torn bytes are cut and one line added: {}",
        String::from_utf8_lossy(added)
    );
    assert!(!added.contains(&0), "the zeros are cut");
}

#[test]
fn a_complete_last_record_missing_its_newline_is_kept() {
    let (_tmp, store, path) = store();
    let all = records();
    append_all(&store, &all[..2]);
    let mut bytes = std::fs::read(&path).expect("read");
    assert_eq!(bytes.pop(), Some(b'\n'));
    std::fs::write(&path, &bytes).expect("written");
    assert_eq!(store.journal().expect("journal"), all[..2]);
    store.append_journal(&all[2]).expect("appended");
    assert_eq!(store.journal().expect("journal"), all[..3]);
}

/// A journal is created with its header and first record at once, so a file
/// without a whole header line is damage, not a crash.
#[test]
fn an_empty_journal_or_a_torn_header_is_corrupt_and_kept() {
    for text in ["", r#"{"format_ver"#, r#"{"format_version":2}"#] {
        let (_tmp, store, path) = store();
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, text).expect("torn");
        for err in [
            store.journal().expect_err(text),
            store.append_journal(&records()[0]).expect_err(text),
            store.clear_journal().expect_err(text),
        ] {
            assert!(matches!(err, StateError::Corrupt { .. }), "{text:?}: {err}");
            assert_eq!(err.path(), Some(path.as_path()), "{err}");
        }
        assert_eq!(std::fs::read_to_string(&path).expect("kept"), text);
    }
}

#[test]
fn a_new_journal_is_created_whole_with_its_first_record() {
    let (_tmp, store, path) = store();
    store.append_journal(&records()[0]).expect("appended");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 2, "{text}");
    let dir = path.parent().expect("dir");
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("journal.jsonl")],
        "no temporary file left"
    );
}

#[test]
fn a_format_1_journal_still_reads_and_is_appended_in_format_1() {
    let (_tmp, store, path) = store();
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let all = records();
    let mut text = "{\"format_version\":1}\n".to_string();
    for record in &all[..2] {
        text.push_str(&serde_json::to_string(record).expect("json"));
        text.push('\n');
    }
    std::fs::write(&path, &text).expect("format 1");
    assert_eq!(store.journal().expect("journal"), all[..2]);
    store.append_journal(&all[2]).expect("appended");
    assert_eq!(store.journal().expect("journal"), all[..3]);
    let after = std::fs::read_to_string(&path).expect("read");
    let added = &after[text.len()..];
    assert_eq!(added, serde_json::to_string(&all[2]).expect("json") + "\n");
}

#[test]
fn a_bad_middle_line_is_corrupt_naming_the_journal() {
    let (_tmp, store, path) = store();
    append_all(&store, &records());
    let text = std::fs::read_to_string(&path).expect("read");
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = lines[3][..lines[3].len() / 2].to_string();
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&path, &damaged).expect("damaged");
    let err = store.journal().expect_err("corrupt");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(err.to_string().contains("line 4"), "{err}");
    // A complete (newline-terminated) last line that does not parse is not a tear.
    let mut last_bad = text.clone();
    last_bad.push_str("{\"record\":\"nonsense\"}\n");
    std::fs::write(&path, &last_bad).expect("damaged");
    assert!(matches!(store.journal(), Err(StateError::Corrupt { .. })));
    // Clearing refuses a journal it cannot read.
    assert!(matches!(
        store.clear_journal(),
        Err(StateError::Corrupt { .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), last_bad);
}

#[test]
fn a_journal_without_header_is_corrupt() {
    let (_tmp, store, path) = store();
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let line = serde_json::to_string(&records()[0]).expect("json") + "\n";
    std::fs::write(&path, &line).expect("written");
    for err in [
        store.journal().expect_err("no header"),
        store.append_journal(&records()[1]).expect_err("no header"),
    ] {
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        assert_eq!(err.path(), Some(path.as_path()));
    }
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), line);
}

#[test]
fn a_newer_format_journal_is_refused_and_kept() {
    let (_tmp, store, path) = store();
    std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
    let newer = FORMAT_VERSION + 1;
    let text = format!("{{\"format_version\":{newer}}}\n{{\"record\":\"something_new\"}}\n");
    std::fs::write(&path, &text).expect("written");
    for err in [
        store.journal().expect_err("newer"),
        store.append_journal(&records()[0]).expect_err("newer"),
        store.clear_journal().expect_err("newer"),
    ] {
        assert!(
            matches!(err, StateError::NewerFormat { found, .. } if found == newer),
            "{err}"
        );
        assert_eq!(err.path(), Some(path.as_path()));
    }
    assert_eq!(std::fs::read_to_string(&path).expect("kept"), text);
}

#[test]
fn clear_empties_the_journal() {
    let (_tmp, store, path) = store();
    store.clear_journal().expect("clearing nothing is fine");
    append_all(&store, &records());
    store.clear_journal().expect("cleared");
    assert_eq!(store.journal().expect("journal"), vec![]);
    assert!(!path.exists());
    let all = records();
    store.append_journal(&all[0]).expect("appended");
    assert_eq!(store.journal().expect("journal"), all[..1]);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.starts_with("{\"format_version\":2}\n"), "{text}");
}

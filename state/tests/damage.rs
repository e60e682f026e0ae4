//! Damage to every kind of state file, exhaustively on small real samples:
//! every single-bit flip, every truncation, emptied, newer format, read-only.
//!
//! The promise checked: a damaged file is an error naming it (`Corrupt`, or
//! `NewerFormat` when the flip makes its format number larger), never read
//! as something else, and never changed: not by a read, not by a refused
//! write, lock or append. The one documented exception is the journal's torn
//! last line (what a crash mid-append leaves): a flip of the journal's final
//! newline drops just its last record, and a journal truncated inside a line
//! loses that line.

use fleetform_state::{
    Backend, JournalRecord, Lease, LocalBackend, StateError, Version, FORMAT_VERSION,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A temporary directory, on tmpfs when there is one: the store fsyncs.
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

/// A small but complete version (every field set), so that flips are many
/// but each run stays fast.
fn version(number: u64) -> Version {
    Version {
        format_version: FORMAT_VERSION,
        number,
        time: 1_700_000_000,
        git_commit: Some("c0ffee".into()),
        git_dirty: true,
        caller: "arn:aws:iam::1:user/ci".into(),
        rollback_of: None,
        sources: BTreeMap::from([("f.hcl".to_string(), "fleet \"f\" {}\n".to_string())]),
        variables: BTreeMap::from([("owner".to_string(), "ci".to_string())]),
        plan: serde_json::json!({"actions": [{"address": "worker_type.a"}]}),
        outcomes: vec![fleetform_state::ActionOutcome {
            action: 0,
            ok: true,
            error: None,
            ids: vec!["i-1".into()],
        }],
        observed: serde_json::json!([{"id": "i-1"}]),
        diff: "+x\n".into(),
        summary: serde_json::json!({"launch": 1, "hourly_usd": 0.25}),
        images: BTreeMap::from([("us-east-1".to_string(), vec!["ami-1".to_string()])]),
        sensitive: None,
        key_pair_users: Default::default(),
    }
}

fn records() -> Vec<JournalRecord> {
    vec![
        JournalRecord::Begin {
            apply_id: "a1".into(),
            time: 100,
            holder: "ci@h:1".into(),
            actions: 1,
        },
        JournalRecord::Intent {
            apply_id: "a1".into(),
            action: 0,
            address: "worker_type.a".into(),
            region: "us-east-1".into(),
            client_token: "t-0".into(),
            time: 101,
        },
        JournalRecord::Outcome {
            apply_id: "a1".into(),
            action: 0,
            ok: true,
            error: None,
            ids: vec!["i-1".into()],
            time: 102,
        },
    ]
}

fn end() -> JournalRecord {
    JournalRecord::End {
        apply_id: "a1".into(),
        time: 103,
        version: Some(1),
    }
}

/// A genuine state: version 1 and its index, a journal of three records.
fn sample() -> (tempfile::TempDir, LocalBackend, PathBuf) {
    let tmp = tmp();
    let dir = tmp.path().join(".fleetform");
    let store = LocalBackend::new(&dir);
    store.write(&version(1)).expect("written");
    for record in records() {
        store.append_journal(&record).expect("appended");
    }
    (tmp, store, dir)
}

/// Every single-bit flip of `good`: (byte position, bit, damaged bytes).
fn flips(good: &[u8]) -> impl Iterator<Item = (usize, u8, Vec<u8>)> + '_ {
    (0..good.len()).flat_map(move |pos| {
        (0..8u8).map(move |bit| {
            let mut damaged = good.to_vec();
            damaged[pos] ^= 1 << bit;
            (pos, bit, damaged)
        })
    })
}

/// Names and bytes of everything under `dir` (directories as `<dir>`).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("ls").flatten() {
            let path = entry.path();
            let mode = std::fs::symlink_metadata(&path)
                .expect("meta")
                .permissions()
                .mode();
            if path.is_dir() {
                files.insert(path.clone(), (b"<dir>".to_vec(), mode));
                stack.push(path);
            } else {
                files.insert(path.clone(), (std::fs::read(&path).expect("read"), mode));
            }
        }
    }
    files
}

/// `err` is `Corrupt` or `NewerFormat` naming `file`.
fn assert_names(err: &StateError, file: &Path, context: &str) {
    assert!(
        matches!(
            err,
            StateError::Corrupt { .. } | StateError::NewerFormat { .. }
        ),
        "{context}: {err}"
    );
    assert_eq!(err.path(), Some(file), "{context}: {err}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{context}: {err}"
    );
}

fn expect_named<T: std::fmt::Debug>(result: Result<T, StateError>, file: &Path, context: &str) {
    match result {
        Ok(value) => panic!("{context}: read as {value:?}"),
        Err(err) => assert_names(&err, file, context),
    }
}

#[test]
fn every_bit_flip_of_the_index_is_an_error_naming_it_and_nothing_is_written() {
    let (_tmp, store, dir) = sample();
    let index = dir.join("index.json");
    let good = std::fs::read(&index).expect("read");
    let mut count = 0;
    for (pos, bit, damaged) in flips(&good) {
        let context = format!("index.json byte {pos} bit {bit}");
        std::fs::write(&index, &damaged).expect("damaged");
        let before = snapshot(&dir);
        expect_named(store.list(), &index, &context);
        expect_named(store.latest(), &index, &context);
        expect_named(store.write(&version(2)), &index, &context);
        assert_eq!(snapshot(&dir), before, "{context}: something changed");
        count += 1;
    }
    assert_eq!(count, good.len() * 8);
    println!(
        "damage: index.json: {count} single-bit flips, each an error naming it, nothing written"
    );
    std::fs::write(&index, &good).expect("restored");
    assert_eq!(store.latest().expect("the undamaged index reads"), Some(1));
}

#[test]
fn every_bit_flip_of_a_version_file_is_an_error_naming_it_and_nothing_is_written() {
    let (_tmp, store, dir) = sample();
    let file = dir.join("versions").join("000001.json");
    let good = std::fs::read(&file).expect("read");
    let index = dir.join("index.json");
    let good_index = std::fs::read(&index).expect("read");
    for indexed in [true, false] {
        if !indexed {
            // Without the index, `list` and `write` must read the file.
            std::fs::remove_file(&index).expect("removed");
        }
        for (pos, bit, damaged) in flips(&good) {
            let context = format!("000001.json byte {pos} bit {bit} (indexed: {indexed})");
            std::fs::write(&file, &damaged).expect("damaged");
            let before = snapshot(&dir);
            expect_named(store.read(1), &file, &context);
            if indexed {
                assert_eq!(store.latest().expect(&context), Some(1), "{context}");
                assert!(
                    matches!(store.write(&version(1)), Err(StateError::VersionExists(1))),
                    "{context}"
                );
            } else {
                expect_named(store.list(), &file, &context);
                expect_named(store.write(&version(2)), &file, &context);
            }
            assert_eq!(snapshot(&dir), before, "{context}: something changed");
        }
    }
    println!(
        "damage: a version file: {} single-bit flips (with and without the index), each an error naming it, nothing written",
        good.len() * 8 * 2
    );
    std::fs::write(&file, &good).expect("restored");
    std::fs::write(&index, &good_index).expect("restored");
    assert_eq!(store.read(1).expect("the undamaged file reads"), version(1));
}

#[test]
fn every_bit_flip_of_the_lock_file_is_an_error_naming_it_and_only_force_moves_it_aside() {
    let (_tmp, store, dir) = sample();
    let mut lease: Lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let file = dir.join("lock.json");
    let good = std::fs::read(&file).expect("read");
    for (pos, bit, damaged) in flips(&good) {
        let context = format!("lock.json byte {pos} bit {bit}");
        std::fs::write(&file, &damaged).expect("damaged");
        let before = snapshot(&dir);
        expect_named(store.lease(), &file, &context);
        expect_named(store.lock("bob@ci:2", 60, 5000), &file, &context);
        expect_named(store.break_lock(false, 5000), &file, &context);
        expect_named(store.renew(&mut lease, 60, 1001), &file, &context);
        assert_eq!(snapshot(&dir), before, "{context}: something changed");
        // Forced, it is moved aside with its bytes, never deleted.
        let broken = store
            .break_lock(true, 5000)
            .expect(&context)
            .expect("there was a lock");
        assert!(!file.exists(), "{context}");
        let aside: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("ls")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("lock.json.unreadable."))
            .collect();
        assert_eq!(aside.len(), 1, "{context}: {aside:?}");
        assert_eq!(
            std::fs::read(&aside[0]).expect("kept"),
            damaged,
            "{context}"
        );
        assert!(
            broken.holder.contains(&aside[0].display().to_string()),
            "{context}: {}",
            broken.holder
        );
        std::fs::remove_file(&aside[0]).expect("cleaned");
    }
    println!(
        "damage: lock.json: {} single-bit flips, each an error naming it; only --force moves it aside, bytes kept",
        good.len() * 8
    );
    std::fs::write(&file, &good).expect("restored");
    store
        .renew(&mut lease, 60, 1001)
        .expect("the undamaged lock renews");
    store.release(lease).expect("released");
}

#[test]
fn every_bit_flip_of_the_journal_is_an_error_naming_it_except_a_flipped_final_newline() {
    let (_tmp, store, dir) = sample();
    let file = dir.join("journal.jsonl");
    let good = std::fs::read(&file).expect("read");
    assert_eq!(good.last(), Some(&b'\n'));
    let last_line_start = good[..good.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("several lines")
        + 1;
    let all = records();
    let mut dropped = 0;
    for (pos, bit, damaged) in flips(&good) {
        let context = format!("journal.jsonl byte {pos} bit {bit}");
        std::fs::write(&file, &damaged).expect("damaged");
        let before = snapshot(&dir);
        let read = store.journal();
        match &read {
            Err(err) => {
                assert_names(err, &file, &context);
                expect_named(store.clear_journal(), &file, &context);
            }
            Ok(records) => {
                // The documented exception: the final newline, nothing else.
                assert_eq!(pos, good.len() - 1, "{context}: read as {records:?}");
                assert_eq!(
                    records,
                    &all[..2],
                    "{context}: only the last record dropped"
                );
                dropped += 1;
            }
        }
        assert_eq!(
            snapshot(&dir),
            before,
            "{context}: a read changed something"
        );
        match store.append_journal(&end()) {
            Err(err) => {
                assert_names(&err, &file, &context);
                assert_eq!(snapshot(&dir), before, "{context}: a refused append wrote");
            }
            Ok(()) => {
                let after = std::fs::read(&file).expect("read");
                if read.is_ok() {
                    // The torn last line is cut, as after a crash.
                    assert!(after.starts_with(&damaged[..last_line_start]), "{context}");
                    assert_eq!(
                        store.journal().expect(&context),
                        [&all[..2], &[end()]].concat()
                    );
                } else {
                    // Append checks the header and the last line only; it
                    // never rewrites what is there, and the damage stays
                    // visible to the next full read.
                    assert!(after.starts_with(&damaged), "{context}: overwritten");
                    expect_named(store.journal(), &file, &context);
                }
            }
        }
    }
    assert_eq!(dropped, 8, "every flip of the final newline is a torn line");
    println!(
        "damage: journal.jsonl: {} single-bit flips, {} errors naming it, {dropped} (the final newline) read as a torn last line",
        good.len() * 8,
        good.len() * 8 - dropped
    );
}

#[test]
fn every_truncation_of_a_document_is_corrupt_naming_it() {
    let (_tmp, store, dir) = sample();
    let _lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    let index = dir.join("index.json");
    let version_file = dir.join("versions").join("000001.json");
    let lock = dir.join("lock.json");
    for file in [&index, &version_file, &lock] {
        let good = std::fs::read(file).expect("read");
        for len in 0..good.len() {
            let context = format!("{} cut to {len} bytes", file.display());
            std::fs::write(file, &good[..len]).expect("truncated");
            let before = snapshot(&dir);
            let first = if file == &index {
                expect_named(store.write(&version(2)), file, &context);
                store.list().expect_err(&context)
            } else if file == &version_file {
                store.read(1).expect_err(&context)
            } else {
                expect_named(store.lock("bob@ci:2", 60, 5000), file, &context);
                expect_named(store.break_lock(false, 5000), file, &context);
                store.lease().expect_err(&context)
            };
            assert_names(&first, file, &context);
            if len == 0 {
                assert!(first.to_string().contains("empty"), "{context}: {first}");
            }
            assert_eq!(snapshot(&dir), before, "{context}: something changed");
        }
        std::fs::write(file, &good).expect("restored");
    }
}

#[test]
fn a_truncated_journal_is_corrupt_without_a_whole_header_else_reads_as_a_torn_tail() {
    let (_tmp, store, dir) = sample();
    let file = dir.join("journal.jsonl");
    let good = std::fs::read(&file).expect("read");
    let newlines: Vec<usize> = good
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    let all = records();
    for len in 0..good.len() {
        let context = format!("journal cut to {len} bytes");
        std::fs::write(&file, &good[..len]).expect("truncated");
        let before = snapshot(&dir);
        if len <= newlines[0] {
            expect_named(store.journal(), &file, &context);
            expect_named(store.append_journal(&end()), &file, &context);
            expect_named(store.clear_journal(), &file, &context);
        } else {
            // Record i (line i + 2) ends at newlines[i + 1]; without its
            // newline it is still whole, anything shorter is a torn line.
            let whole = newlines[1..].iter().filter(|end| **end <= len).count();
            assert_eq!(store.journal().expect(&context), all[..whole], "{context}");
        }
        assert_eq!(snapshot(&dir), before, "{context}: something changed");
    }
}

#[test]
fn a_newer_format_of_each_file_is_named_and_kept() {
    let newer = FORMAT_VERSION + 1;
    for name in [
        "index.json",
        "versions/000001.json",
        "lock.json",
        "journal.jsonl",
    ] {
        let (_tmp, store, dir) = sample();
        let file = dir.join(name);
        let text = if name == "journal.jsonl" {
            format!("{{\"format_version\":{newer}}}\n{{\"what\":\"new\"}}\n")
        } else {
            format!("{{\"format_version\":{newer},\"what\":\"new\"}}")
        };
        std::fs::write(&file, &text).expect("newer");
        let before = snapshot(&dir);
        let errors: Vec<StateError> = match name {
            "index.json" => vec![
                store.list().expect_err(name),
                store.write(&version(2)).expect_err(name),
            ],
            "lock.json" => vec![
                store.lease().expect_err(name),
                store
                    .lock("bob@ci:2", 60, 1000)
                    .map(|_| ())
                    .expect_err(name),
                store.break_lock(false, 1000).expect_err(name),
            ],
            "journal.jsonl" => vec![
                store.journal().expect_err(name),
                store.append_journal(&end()).expect_err(name),
                store.clear_journal().expect_err(name),
            ],
            _ => vec![store.read(1).expect_err(name)],
        };
        for err in errors {
            assert!(
                matches!(err, StateError::NewerFormat { found, .. } if found == newer),
                "{name}: {err}"
            );
            assert_eq!(err.path(), Some(file.as_path()), "{name}: {err}");
        }
        assert_eq!(snapshot(&dir), before, "{name}: something changed");
    }
}

/// Read-only files and directories: mode without the owner-write bit. The
/// tests run as root, whom permission bits do not stop: the store refuses
/// by itself.
#[test]
fn a_read_only_file_or_directory_is_refused_by_name_and_reading_works() {
    use std::os::unix::fs::PermissionsExt;
    for name in [
        "",
        "versions",
        "index.json",
        "journal.jsonl",
        "lock.json",
        "versions/000001.json",
    ] {
        let (_tmp, store, dir) = sample();
        let mut lease =
            (name == "lock.json").then(|| store.lock("alice@ci:1", 60, 1000).expect("locked"));
        let target = if name.is_empty() {
            dir.clone()
        } else {
            dir.join(name)
        };
        let mode = if target.is_dir() { 0o555 } else { 0o444 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let before = snapshot(&dir);

        // Reading works.
        assert_eq!(store.read(1).expect(name), version(1));
        assert_eq!(store.latest().expect(name), Some(1));
        assert_eq!(store.journal().expect(name), records());
        store.lease().expect(name);

        let refused = |err: StateError| {
            assert!(
                matches!(err, StateError::ReadOnly { mode: m, .. } if m == mode),
                "{name}: {err}"
            );
            assert_eq!(err.path(), Some(target.as_path()), "{name}: {err}");
        };
        match name {
            "versions/000001.json" => {
                // Version files are never rewritten: a read-only one is no obstacle.
                store.write(&version(2)).expect("a new version is written");
                assert_eq!(snapshot(&dir).get(&target), before.get(&target));
                continue;
            }
            "lock.json" => {
                let lease = lease.as_mut().expect("held");
                refused(store.renew(lease, 60, 1001).expect_err(name));
                refused(store.break_lock(true, 1001).expect_err(name));
                refused(store.break_lock(false, 5000).expect_err(name));
            }
            _ => {
                refused(
                    store
                        .lock("bob@ci:2", 60, 1000)
                        .map(|_| ())
                        .expect_err(name),
                );
                if name != "journal.jsonl" {
                    refused(store.write(&version(2)).expect_err(name));
                }
                if matches!(name, "" | "journal.jsonl") {
                    refused(store.append_journal(&end()).expect_err(name));
                    refused(store.clear_journal().expect_err(name));
                }
            }
        }
        assert_eq!(snapshot(&dir), before, "{name}: something changed");
    }
}

#[test]
fn documents_begin_with_a_checksum_of_the_rest() {
    let (_tmp, store, dir) = sample();
    let _lease = store.lock("alice@ci:1", 60, 1000).expect("locked");
    for name in ["index.json", "versions/000001.json", "lock.json"] {
        let text = std::fs::read_to_string(dir.join(name)).expect("read");
        let prefix = "{\n  \"sha256\": \"";
        assert!(text.starts_with(prefix), "{name}: {text}");
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["format_version"], FORMAT_VERSION, "{name}");
        assert!(
            value["sha256"]
                .as_str()
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{name}: {text}"
        );
        // Rewritten with a different layout (same JSON value), it no longer matches.
        let reformatted = serde_json::to_string(&value).expect("json");
        std::fs::write(dir.join(name), &reformatted).expect("rewritten");
        let err = match name {
            "index.json" => store.list().expect_err(name),
            "lock.json" => store.lease().expect_err(name),
            _ => store.read(1).expect_err(name),
        };
        assert!(matches!(err, StateError::Corrupt { .. }), "{name}: {err}");
        std::fs::write(dir.join(name), &text).expect("restored");
    }
}

//! Damaged state files, end to end: every kind of state file (index, version,
//! journal, lock) truncated, with one bit flipped, emptied, made read-only or
//! from a newer format, under the commands that read or write it.
//!
//! Promised for each: the command fails (exit 1; 3 where the contract is
//! "lock held") with a diagnostic naming the damaged file, the whole state
//! directory is byte-identical afterwards (every file and mode), and the
//! apply changed nothing in EC2. A read-only state still serves the reading
//! commands. One real apply makes a genuine state; each case works on a copy.

use fleetform_state::{Backend, JournalRecord, LocalBackend, FORMAT_VERSION};
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

fn fleetform(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .arg("--no-color")
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A config directory after one real apply, with a changed config (one more
/// instance wanted) so that an apply that got through would change EC2, a
/// journal left in its state, and the plan of the change as it reads then.
struct Genuine {
    dir: TempDir,
    plan: String,
}

fn genuine() -> &'static Genuine {
    static GENUINE: OnceLock<Genuine> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let fleet = unique_fleet("damage");
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = |min: u32| {
            format!(
                "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n\nworker_type \"linux\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = {min}\n    max = 3\n  }}\n}}\n"
            )
        };
        std::fs::write(dir.path().join("fleet.hcl"), hcl(1)).expect("write");
        std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
        let applied = fleetform(&["apply", "--auto-approve"], dir.path());
        assert_eq!(applied.status.code(), Some(0), "{}", stderr(&applied));
        std::fs::write(dir.path().join("fleet.hcl"), hcl(2)).expect("write");
        let store = LocalBackend::new(dir.path().join(".fleetform"));
        for record in journal_records() {
            store.append_journal(&record).expect("journal");
        }
        let plan = fleetform(&["plan"], dir.path());
        assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
        assert!(stdout(&plan).contains("launch"), "{}", stdout(&plan));
        Genuine {
            dir,
            plan: stdout(&plan),
        }
    })
}

/// What an apply that was killed after its first call leaves in the journal.
fn journal_records() -> Vec<JournalRecord> {
    vec![
        JournalRecord::Begin {
            apply_id: "earlier".into(),
            time: 1,
            holder: "ci@runner:9".into(),
            actions: 2,
        },
        JournalRecord::Intent {
            apply_id: "earlier".into(),
            action: 0,
            address: "worker_type.linux".into(),
            region: "us-east-1".into(),
            client_token: "ff-earlier-0".into(),
            time: 2,
        },
        JournalRecord::Outcome {
            apply_id: "earlier".into(),
            action: 0,
            ok: true,
            error: None,
            ids: vec![],
            time: 3,
        },
    ]
}

/// A copy of the genuine config directory and its state; with an expired
/// lock of a process that is gone when `locked`.
fn copy(locked: bool) -> TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("ls").flatten() {
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), &target).expect("copy");
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(genuine().dir.path(), dir.path());
    if locked {
        let store = LocalBackend::new(dir.path().join(".fleetform"));
        let _gone = store
            .lock("gone@host:1", 60, fleetform_state::now() - 7200)
            .expect("locked");
    }
    dir
}

/// Every file and directory under `dir` with its bytes and mode.
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
                files.insert(path.clone(), (Vec::new(), mode));
                stack.push(path);
            } else {
                files.insert(path.clone(), (std::fs::read(&path).expect("read"), mode));
            }
        }
    }
    files
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Damage {
    Truncated,
    BitFlipped,
    Emptied,
    ReadOnly,
    NewerFormat,
}

const DAMAGES: [Damage; 5] = [
    Damage::Truncated,
    Damage::BitFlipped,
    Damage::Emptied,
    Damage::ReadOnly,
    Damage::NewerFormat,
];

/// Damages `file` (for `ReadOnly`, also `dir_too`, a directory made 0555).
fn damage(file: &Path, how: Damage, dir_too: Option<&Path>) {
    use std::os::unix::fs::PermissionsExt;
    let bytes = std::fs::read(file).expect("read");
    let is_journal = file.extension().is_some_and(|e| e == "jsonl");
    let damaged: Vec<u8> = match how {
        Damage::Truncated if is_journal => {
            // Inside the header: a journal cut inside a later line reads as
            // a crash's torn last line (see `a_journal_cut_inside_a_record…`).
            bytes[..8].to_vec()
        }
        Damage::Truncated => bytes[..bytes.len() / 2].to_vec(),
        Damage::BitFlipped => {
            // One bit of a string value (the caller ARN, the lock holder, the
            // journal's holder): the file still parses as what it was, so
            // only the checksum can tell.
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let needle: &[u8] = match name {
                "lock.json" => b"gone@",
                "journal.jsonl" => b"runner",
                _ => b"arn:",
            };
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("the value to flip");
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            if !is_journal {
                serde_json::from_slice::<serde_json::Value>(&damaged)
                    .expect("the flip keeps valid JSON");
            }
            damaged
        }
        Damage::Emptied => Vec::new(),
        Damage::NewerFormat if is_journal => {
            let text = String::from_utf8(bytes).expect("utf-8");
            text.replacen(
                &format!("{{\"format_version\":{FORMAT_VERSION}}}"),
                &format!("{{\"format_version\":{}}}", FORMAT_VERSION + 1),
                1,
            )
            .into_bytes()
        }
        Damage::NewerFormat => {
            let mut value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            value["format_version"] = (FORMAT_VERSION + 1).into();
            serde_json::to_vec_pretty(&value).expect("json")
        }
        Damage::ReadOnly => bytes,
    };
    std::fs::write(file, damaged).expect("damaged");
    if how == Damage::ReadOnly {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        if let Some(dir) = dir_too {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        }
    }
}

thread_local! {
    /// Commands run against damaged state by this test (each test has its own thread).
    static RUNS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Prints how many commands the calling test ran against damaged state.
fn report(what: &str) {
    println!(
        "damage: {what}: {} fleetform commands against damaged state, each with the expected exit code, the file named, the state unchanged",
        RUNS.with(std::cell::Cell::get)
    );
}

/// Runs `args`; asserts its exit code, that a failure names `named`, and
/// that the state directory is byte-identical afterwards.
fn run(dir: &Path, args: &[&str], code: i32, named: &Path, context: &str) -> Output {
    RUNS.with(|runs| runs.set(runs.get() + 1));
    let state = dir.join(".fleetform");
    let before = snapshot(&state);
    let out = fleetform(args, dir);
    let context = format!("{context}: `fleetform {}`", args.join(" "));
    assert_eq!(
        out.status.code(),
        Some(code),
        "{context}\nstdout: {}\nstderr: {}",
        stdout(&out),
        stderr(&out)
    );
    if code == 1 {
        let named = named.display().to_string();
        assert!(
            stderr(&out).contains(&named),
            "{context}: {named} not named in\n{}",
            stderr(&out)
        );
    }
    assert!(
        snapshot(&state) == before,
        "{context}: the state directory changed"
    );
    out
}

/// EC2 holds what it held after the genuine apply: the plan of the changed
/// config is still what it was.
fn assert_ec2_unchanged() {
    let check = copy(false);
    let plan = fleetform(&["plan"], check.path());
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert_eq!(stdout(&plan), genuine().plan, "EC2 changed");
}

fn restore_modes(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let state = dir.join(".fleetform");
    for d in [state.clone(), state.join("versions")] {
        let _ = std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700));
    }
}

#[test]
fn a_damaged_index_is_named_and_nothing_is_written() {
    for how in DAMAGES {
        let dir = copy(false);
        let file = dir.path().join(".fleetform/index.json");
        damage(&file, how, None);
        let context = format!("index.json {how:?}");
        let p = dir.path();
        if how == Damage::ReadOnly {
            run(p, &["history"], 0, &file, &context);
            run(p, &["show", "--version", "1"], 0, &file, &context);
            run(p, &["plan"], 0, &file, &context);
        } else {
            run(p, &["history"], 1, &file, &context);
            // `show` reads the version file, not the index.
            run(p, &["show", "--version", "1"], 0, &file, &context);
            run(p, &["plan"], 1, &file, &context);
        }
        run(p, &["apply", "--auto-approve"], 1, &file, &context);
        run(p, &["unlock"], 0, &file, &context);
        if how == Damage::BitFlipped {
            let out = run(p, &["history"], 1, &file, &context);
            assert!(stderr(&out).contains("checksum"), "{}", stderr(&out));
            assert!(stderr(&out).contains("move it aside"), "{}", stderr(&out));
            run(p, &["state", "list"], 0, &file, &context);
        }
        restore_modes(p);
    }
    assert_ec2_unchanged();
    report("index.json (CLI)");
}

#[test]
fn a_damaged_version_file_is_named_and_nothing_is_written() {
    for how in DAMAGES {
        let dir = copy(false);
        let versions = dir.path().join(".fleetform/versions");
        let file = versions.join("000001.json");
        damage(&file, how, Some(&versions));
        let context = format!("000001.json {how:?}");
        let p = dir.path();
        // `history` lists from the index.
        run(p, &["history"], 0, &file, &context);
        if how == Damage::ReadOnly {
            run(p, &["show", "--version", "1"], 0, &file, &context);
            run(p, &["plan"], 0, &file, &context);
            // New versions cannot be added to a read-only versions/.
            run(p, &["apply", "--auto-approve"], 1, &versions, &context);
        } else {
            run(p, &["show", "--version", "1"], 1, &file, &context);
            run(p, &["plan"], 1, &file, &context);
            run(p, &["apply", "--auto-approve"], 1, &file, &context);
        }
        run(p, &["unlock"], 0, &file, &context);
        if how == Damage::BitFlipped {
            run(p, &["state", "list"], 0, &file, &context);
        }
        restore_modes(p);
    }
    assert_ec2_unchanged();
    report("a version file (CLI)");
}

#[test]
fn a_damaged_journal_is_named_and_nothing_is_written() {
    for how in DAMAGES {
        let dir = copy(false);
        let file = dir.path().join(".fleetform/journal.jsonl");
        damage(&file, how, None);
        let context = format!("journal.jsonl {how:?}");
        let p = dir.path();
        run(p, &["history"], 0, &file, &context);
        run(p, &["show", "--version", "1"], 0, &file, &context);
        if how == Damage::ReadOnly {
            let out = run(p, &["plan"], 0, &file, &context);
            assert!(
                stderr(&out).contains("an earlier apply (earlier"),
                "{}",
                stderr(&out)
            );
        } else {
            run(p, &["plan"], 1, &file, &context);
        }
        run(p, &["apply", "--auto-approve"], 1, &file, &context);
        run(p, &["unlock"], 0, &file, &context);
        if how == Damage::BitFlipped {
            run(p, &["state", "list"], 0, &file, &context);
        }
    }
    assert_ec2_unchanged();
    report("journal.jsonl (CLI)");
}

/// The documented exception: a journal cut inside a record reads as what a
/// crash mid-append leaves, a torn last line, which is ignored.
#[test]
fn a_journal_cut_inside_a_record_reads_as_a_torn_last_line() {
    let dir = copy(false);
    let file = dir.path().join(".fleetform/journal.jsonl");
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..bytes.len() - 10]).expect("cut");
    let out = run(dir.path(), &["plan"], 0, &file, "torn journal");
    // Begin and Intent are read; the torn Outcome is not.
    assert!(
        stderr(&out).contains("after 0 of 2 actions"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_lock_file_is_named_and_only_unlock_force_moves_it_aside() {
    for how in DAMAGES {
        let dir = copy(true);
        let state = dir.path().join(".fleetform");
        let file = state.join("lock.json");
        damage(&file, how, None);
        let context = format!("lock.json {how:?}");
        let p = dir.path();
        // Nothing but apply and unlock reads the lock.
        run(p, &["history"], 0, &file, &context);
        run(p, &["show", "--version", "1"], 0, &file, &context);
        run(p, &["plan"], 0, &file, &context);
        if how == Damage::ReadOnly {
            // Readable: held (expired) by a process that is gone.
            let out = run(p, &["apply", "--auto-approve"], 3, &file, &context);
            assert!(stderr(&out).contains("gone@host:1"), "{}", stderr(&out));
            run(p, &["unlock"], 1, &file, &context);
            run(p, &["unlock", "--force"], 1, &file, &context);
        } else {
            let out = run(p, &["apply", "--auto-approve"], 1, &file, &context);
            assert!(stderr(&out).contains("unlock --force"), "{}", stderr(&out));
            run(p, &["unlock"], 1, &file, &context);
            // Forced, it is moved aside with its bytes; the state is free.
            let damaged = std::fs::read(&file).expect("read");
            let out = fleetform(&["unlock", "--force"], p);
            assert_eq!(out.status.code(), Some(0), "{context}: {}", stderr(&out));
            assert!(!file.exists(), "{context}");
            let aside: Vec<PathBuf> = std::fs::read_dir(&state)
                .expect("ls")
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().contains("lock.json.unreadable."))
                .collect();
            assert_eq!(aside.len(), 1, "{context}: {aside:?}");
            assert_eq!(std::fs::read(&aside[0]).expect("kept"), damaged);
            assert!(
                stdout(&out).contains(&aside[0].display().to_string()),
                "{context}: {}",
                stdout(&out)
            );
        }
        if how == Damage::BitFlipped {
            run(p, &["state", "list"], 0, &file, &context);
        }
    }
    assert_ec2_unchanged();
    report("lock.json (CLI)");
}

#[test]
fn a_read_only_state_directory_serves_reads_and_refuses_apply_by_name() {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy(false);
    let state = dir.path().join(".fleetform");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let p = dir.path();
    let context = "state directory read-only";
    run(p, &["history"], 0, &state, context);
    run(p, &["show", "--version", "1"], 0, &state, context);
    run(p, &["plan"], 0, &state, context);
    let out = run(p, &["apply", "--auto-approve"], 1, &state, context);
    assert!(stderr(&out).contains("read-only"), "{}", stderr(&out));
    run(p, &["unlock"], 0, &state, context);
    restore_modes(p);
    assert_ec2_unchanged();
    report("a read-only state directory (CLI)");
}

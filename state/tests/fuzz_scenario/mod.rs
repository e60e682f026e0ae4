//! The `state` fuzz scenario, shared by `fuzz/fuzz_targets/state.rs` (which
//! includes this file by path) and `state/tests/fuzz_regressions.rs`, so the
//! fuzzer and the replay of its regressions check exactly the same promises.
//!
//! One input is one state file: its first byte picks the file by its low two
//! bits (`index.json`, `versions/000001.json`, `journal.jsonl`, `lock.json`)
//! and, by bit 2, whether it is made read-only (mode 0444); the rest is its
//! content. Every `Backend` method is then called, and:
//! - none panics;
//! - a reading method (`latest`, `list`, `read`, `journal`, `lease`) changes
//!   no file of the state directory;
//! - a method that fails leaves the fuzzed file byte-identical (the store
//!   never overwrites or removes a file it could not read);
//! - a read-only fuzzed file is never changed or removed by any method.

use fleetform_state::{Backend, JournalRecord, LocalBackend, StateError, Version};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files a state directory holds, chosen by the first input byte.
const FILES: [&str; 4] = [
    "index.json",
    "versions/000001.json",
    "journal.jsonl",
    "lock.json",
];

/// Every regular file under `dir`: relative path -> bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
                out.insert(relative, bytes);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn version(number: u64) -> Version {
    Version {
        format_version: fleetform_state::FORMAT_VERSION,
        number,
        time: 1_700_000_000,
        git_commit: None,
        git_dirty: false,
        caller: "arn:aws:iam::123456789012:user/fuzz".into(),
        rollback_of: None,
        sources: BTreeMap::new(),
        variables: BTreeMap::new(),
        plan: serde_json::Value::Null,
        outcomes: Vec::new(),
        observed: serde_json::Value::Null,
        diff: String::new(),
        summary: serde_json::Value::Null,
        images: BTreeMap::new(),
        sensitive: None,
        key_pair_users: Default::default(),
    }
}

/// The state directory with its fuzzed file, and the promises broken so far.
pub struct Case<'a> {
    pub root: &'a Path,
    pub file: &'a Path,
    pub read_only: bool,
    pub broken: Vec<String>,
}

impl Case<'_> {
    /// Runs `op`, a reading method if `reads`, and records every promise it breaks.
    pub fn check<T>(
        &mut self,
        what: &str,
        reads: bool,
        op: impl FnOnce() -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let before = snapshot(self.root);
        let result = op();
        let after = snapshot(self.root);
        let error = result.as_ref().err();
        if reads && before != after {
            self.broken.push(format!(
                "{what} (a reading method) changed the state directory; result {error:?}"
            ));
        }
        if (error.is_some() || self.read_only) && before.get(self.file) != after.get(self.file) {
            self.broken.push(format!(
                "{what} changed {} (read-only: {}); result {error:?}",
                self.file.display(),
                self.read_only
            ));
        }
        result
    }
}

/// The scenario of the fuzz target for one input; the promises it broke.
pub fn scenario(data: &[u8]) -> Vec<String> {
    let Some((&selector, contents)) = data.split_first() else {
        return Vec::new();
    };
    let file = Path::new(FILES[usize::from(selector & 3)]);
    let read_only = selector & 4 != 0;
    // tmpfs when there is one: the store fsyncs every write.
    let dir = tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir");
    let root = dir.path();
    let path = root.join(file);
    std::fs::create_dir_all(root.join("versions")).expect("mkdir versions");
    std::fs::write(&path, contents).expect("write the state file");
    if read_only {
        make_read_only(&path);
    }
    let mut case = Case {
        root,
        file,
        read_only,
        broken: Vec::new(),
    };
    let backend = LocalBackend::new(root);
    let _ = case.check("latest", true, || backend.latest());
    let _ = case.check("list", true, || backend.list());
    let _ = case.check("read(1)", true, || backend.read(1));
    let _ = case.check("journal", true, || backend.journal());
    let _ = case.check("lease", true, || backend.lease());
    let _ = case.check("break_lock(false, 0)", false, || {
        backend.break_lock(false, 0)
    });
    if let Ok(lease) = case.check("lock", false, || {
        backend.lock("fuzz@host:1", 60, 1_700_000_000)
    }) {
        let _ = case.check("release", false, || backend.release(lease));
    }
    let _ = case.check("append_journal", false, || {
        backend.append_journal(&JournalRecord::End {
            apply_id: "fuzz".into(),
            time: 1_700_000_000,
            version: None,
        })
    });
    let _ = case.check("write(2)", false, || backend.write(&version(2)));
    let _ = case.check("clear_journal", false, || backend.clear_journal());
    let _ = case.check("break_lock(true, 0)", false, || backend.break_lock(true, 0));
    case.broken
}

#[cfg(unix)]
fn make_read_only(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).expect("chmod 0444");
}

#[cfg(not(unix))]
fn make_read_only(path: &Path) {
    let mut permissions = std::fs::metadata(path).expect("metadata").permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(path, permissions).expect("set read-only");
}

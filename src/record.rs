//! What a recorded version is made of, gathered from the machine: the config
//! snapshot, git commit and dirty flag, and the diff to the previous version.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Largest file kept in a config snapshot.
const MAX_SNAPSHOT_FILE: u64 = 1024 * 1024;

/// The configuration as `rollback` needs it: its `*.hcl` files and exactly
/// the files they read with `file()`/`templatefile()` (relative path ->
/// text). Never other files of the directory (keys, notes) and never a
/// `-var-file`: either may hold secrets.
pub(crate) fn snapshot_sources(
    dir: &Path,
    loaded: &fleetform_engine::Loaded,
) -> BTreeMap<String, String> {
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

/// Writes a snapshot into `dir` (for rollback), creating subdirectories.
pub(crate) fn restore_sources(
    sources: &BTreeMap<String, String>,
    dir: &Path,
) -> std::io::Result<()> {
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
pub(crate) fn git_info(dir: &Path) -> (Option<String>, bool) {
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

/// A unified diff of two snapshots, file by file.
pub(crate) fn sources_diff(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> String {
    let mut out = String::new();
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
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

/// RFC 3339 (UTC) of a unix time.
pub(crate) fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

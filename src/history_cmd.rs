//! `fleetform history`, `show --version N`, `diff A B` and `unlock`: reading
//! and repairing the state store.

use crate::store::{open_dir, state_error};
use fleetform_state::StateError;
use std::path::Path;

fn summary_text(summary: &serde_json::Value) -> String {
    let n = |k: &str| {
        summary
            .get(k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    format!(
        "+{} ~{} -{}  capacity +{} -{}",
        n("add"),
        n("change"),
        n("destroy"),
        n("launch"),
        n("terminate")
    )
}

/// `fleetform history [--json] [DIR]`.
pub(crate) fn history(dir: &Path, json: bool, color: bool) -> u8 {
    let store = match open_dir(dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let versions = match store.list() {
        Ok(v) => v,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    if json {
        let out = serde_json::json!({
            "format_version": "1",
            "versions": versions.iter().map(|v| serde_json::json!({
                "version": v.number,
                "time": crate::clock::rfc3339(v.time),
                "git_commit": v.git_commit,
                "git_dirty": v.git_dirty,
                "caller": v.caller,
                "rollback_of": v.rollback_of,
                "summary": v.summary,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return 0;
    }
    if versions.is_empty() {
        println!("No versions recorded yet: `fleetform apply` records one.");
        return 0;
    }
    println!(
        "{:>4}  {:<20}  {:<10}  {:<28}  changes",
        "#", "time (UTC)", "git", "who"
    );
    for v in &versions {
        let git = v
            .git_commit
            .as_deref()
            .map(|c| {
                format!(
                    "{}{}",
                    &c[..c.len().min(8)],
                    if v.git_dirty { "+" } else { "" }
                )
            })
            .unwrap_or_else(|| "-".into());
        let who = v.caller.rsplit(['/', ':']).next().unwrap_or(&v.caller);
        println!(
            "{:>4}  {:<20}  {:<10}  {:<28}  {}{}",
            v.number,
            crate::clock::rfc3339(v.time),
            git,
            who,
            summary_text(&v.summary),
            v.rollback_of
                .map(|n| format!("  (rollback to {n})"))
                .unwrap_or_default()
        );
    }
    0
}

/// `fleetform show --version N [--json] [DIR]`.
pub(crate) fn show_version(dir: &Path, number: u64, json: bool, color: bool) -> u8 {
    let store = match open_dir(dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let version = match store.read(number) {
        Ok(v) => v,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&version).unwrap_or_default()
        );
        return 0;
    }
    println!(
        "version {}{}",
        version.number,
        version
            .rollback_of
            .map(|n| format!(" (rollback to {n})"))
            .unwrap_or_default()
    );
    println!("time:   {}", crate::clock::rfc3339(version.time));
    println!(
        "git:    {}{}",
        version.git_commit.as_deref().unwrap_or("-"),
        if version.git_dirty { " (dirty)" } else { "" }
    );
    println!("caller: {}", version.caller);
    println!(
        "result: {} of {} actions succeeded",
        version.outcomes.iter().filter(|o| o.ok).count(),
        version.outcomes.len()
    );
    match serde_json::from_value::<fleetform_engine::plan::Plan>(version.plan.clone()) {
        Ok(plan) => print!("\n{}", fleetform_engine::plan::render::human(&plan, color)),
        Err(e) => eprintln!("warning: the recorded plan cannot be rendered: {e}"),
    }
    if !version.diff.is_empty() {
        println!(
            "\nconfiguration diff to the previous version:\n{}",
            version.diff
        );
    }
    0
}

/// `fleetform diff A B [DIR]`: the configuration change from version A to B.
pub(crate) fn diff(dir: &Path, a: u64, b: u64, color: bool) -> u8 {
    let store = match open_dir(dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let (old, new) = match (store.read(a), store.read(b)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) | (_, Err(e)) => {
            state_error(&e, color);
            return 1;
        }
    };
    let text = fleetform_ops::sources_diff(&old.sources, &new.sources);
    if text.is_empty() {
        println!("versions {a} and {b} have the same configuration");
    } else {
        print!("{text}");
    }
    0
}

/// `fleetform unlock [--force] [DIR]`.
pub(crate) fn unlock(dir: &Path, force: bool, color: bool) -> u8 {
    let now = fleetform_state::now();
    let store = match open_dir(dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    match store.break_lock(force, now) {
        // An unreadable lock file (moved aside by --force) has no times to report:
        // the store gives it a zero-length lease.
        Ok(Some(info)) if info.started == info.expires => {
            println!("broke the lock of {}", info.holder);
            0
        }
        Ok(Some(info)) => {
            println!(
                "broke the lock of {} (taken at {}, {} {}s {})",
                info.holder,
                crate::clock::rfc3339(info.started),
                if info.expired(now) {
                    "expired"
                } else {
                    "live, forced,"
                },
                (now - info.expires).abs(),
                if info.expired(now) {
                    "ago"
                } else {
                    "before expiry"
                }
            );
            0
        }
        Ok(None) => {
            println!("the state is not locked");
            0
        }
        Err(StateError::Locked(info)) => {
            eprintln!(
                "error: the lock of {} is live (expires in {}s); wait for it, or pass --force if {} is gone",
                info.holder,
                info.expires - now,
                info.holder
            );
            3
        }
        Err(e) => {
            state_error(&e, color);
            1
        }
    }
}

//! State size and `list` time at N versions of a FirefoxCI-sized config.
//!
//! `cargo run --release -p fleetform-state --example history_bench -- CONFIG_DIR OUT_DIR [N]`
//! writes N versions (each with the config's files as its snapshot and a plan
//! of one action per worker type) into OUT_DIR/.fleetform, then prints the size
//! on disk and the median time of `list()`.

use fleetform_state::{Backend, LocalBackend, Version};
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(config), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: history_bench CONFIG_DIR OUT_DIR [N]");
        std::process::exit(2);
    };
    let n: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let mut sources = BTreeMap::new();
    let mut pending = vec![std::path::PathBuf::from(config)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                sources.insert(path.display().to_string(), text);
            }
        }
    }
    let actions: Vec<serde_json::Value> = (0..120)
        .map(|i| serde_json::json!({"address": format!("worker_type.w{i}"), "region": "us-east-1", "action": "update",
            "changes": [{"path": "image_id", "old": "ami-0123456789abcdef0", "new": "ami-0fedcba9876543210"}]}))
        .collect();
    let store = LocalBackend::new(std::path::Path::new(out).join(".fleetform"));
    let start = Instant::now();
    for number in 1..=n {
        let version = Version {
            format_version: fleetform_state::FORMAT_VERSION,
            number,
            time: 1_700_000_000 + number as i64,
            git_commit: Some(format!("{number:040x}")),
            git_dirty: false,
            caller: "arn:aws:sts::123456789012:assumed-role/ci/runner".into(),
            rollback_of: None,
            sources: sources.clone(),
            variables: BTreeMap::new(),
            plan: serde_json::json!({"actions": actions}),
            outcomes: Vec::new(),
            observed: serde_json::json!([]),
            diff: String::new(),
            summary: serde_json::json!({"add": 0, "change": 120, "destroy": 0, "launch": 0, "terminate": 0}),
            images: BTreeMap::new(),
            sensitive: None,
            key_pair_users: Default::default(),
        };
        if let Err(e) = store.write(&version) {
            eprintln!("write failed: {e}");
            std::process::exit(1);
        }
    }
    let wrote = start.elapsed();
    let mut bytes = 0u64;
    for entry in walk(&std::path::Path::new(out).join(".fleetform")) {
        bytes += entry;
    }
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let listed = store.list().map(|l| l.len()).unwrap_or(0);
        times.push(t.elapsed());
        assert_eq!(listed as u64, n);
    }
    times.sort();
    println!(
        "{n} versions: {:.1} MiB on disk ({:.0} KiB per version), written in {:.2}s; list() median {:.2} ms",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1024.0 / n as f64,
        wrote.as_secs_f64(),
        times[times.len() / 2].as_secs_f64() * 1000.0
    );
}

fn walk(dir: &std::path::Path) -> Vec<u64> {
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sizes.extend(walk(&path));
        } else if let Ok(meta) = entry.metadata() {
            sizes.push(meta.len());
        }
    }
    sizes
}

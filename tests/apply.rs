//! `apply`, `history`, `rollback`, locks and the state store, end to end
//! against the local EC2 endpoint.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{ObserveRequest, Provider};
use fleetform_state::{Backend, LocalBackend};
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

fn config(prefix: &str, image: &str) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"{image}\"\n  }}\n}}\n\nworker_type \"linux\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 1\n    max = 2\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
    (dir, fleet)
}

fn fleetform(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn out(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_image(dir: &Path, from: &str, to: &str) {
    let path = dir.join("fleet.hcl");
    let hcl = std::fs::read_to_string(&path).expect("read");
    std::fs::write(path, hcl.replace(from, to)).expect("write");
}

/// Starts `fleetform apply --auto-approve` on `dir` through `endpoint`, to be killed mid-flight.
fn spawn_apply(dir: &Path, endpoint: &str, parallelism: usize) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args([
            "apply",
            "--auto-approve",
            "--parallelism",
            &parallelism.to_string(),
        ])
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("apply starts")
}

/// A runtime and a provider connected to this test binary's local EC2 endpoint.
fn connect() -> (tokio::runtime::Runtime, AwsProvider) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let provider = runtime
        .block_on(AwsProvider::connect(&ConnectOptions {
            endpoint_url: Some(endpoint().to_string()),
            ..ConnectOptions::default()
        }))
        .expect("connects");
    (runtime, provider)
}

/// The config of `dir` and what EC2 holds for it now.
fn observe(
    dir: &Path,
) -> (
    fleetform_engine::model::Config,
    fleetform_engine::provider::Observation,
) {
    let loaded = fleetform_engine::load_dir(dir, &fleetform_engine::Inputs::default());
    let config = loaded.config.expect("valid config");
    let (runtime, provider) = connect();
    let observation = runtime.block_on(provider.observe(&ObserveRequest::for_config(&config)));
    (config, observation)
}

/// The image the default version of the fleet's launch template launches.
fn default_image(dir: &Path) -> Option<String> {
    let (_, observation) = observe(dir);
    let templates = observation.regions["us-east-1"]
        .launch_templates
        .complete()?
        .clone();
    templates.first()?.default_data.as_ref()?.image_id.clone()
}

#[test]
fn apply_then_plan_is_a_no_op_and_one_version_is_recorded() {
    let (dir, _) = config("noop", "ami-785db401");
    let applied = fleetform(&["apply", "--auto-approve", "--no-color"], dir.path());
    assert_eq!(applied.status.code(), Some(0), "{}", err(&applied));
    assert!(
        out(&applied).contains("Recorded version 1: 3 of 3 actions succeeded"),
        "{}",
        out(&applied)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "{}{}", out(&plan), err(&plan));
    let history = fleetform(&["history", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json");
    assert_eq!(json["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["versions"][0]["summary"]["launch"], 1);
    assert!(json["versions"][0]["caller"]
        .as_str()
        .is_some_and(|c| c.starts_with("arn:aws:")));
}

#[test]
fn without_a_terminal_or_auto_approve_apply_refuses_and_changes_nothing() {
    let (dir, _) = config("refuse", "ami-785db401");
    let applied = fleetform(&["apply", "--no-color"], dir.path());
    assert_eq!(applied.status.code(), Some(1));
    assert!(
        err(&applied).contains("refusing to apply without approval"),
        "{}",
        err(&applied)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(2), "still everything to do");
    assert!(
        LocalBackend::new(dir.path().join(".fleetform"))
            .lease()
            .expect("readable")
            .is_none(),
        "lock released"
    );
}

#[test]
fn a_saved_plan_applies_once_and_is_stale_the_second_time() {
    let (dir, _) = config("stale", "ami-785db401");
    let file = dir.path().join("plan.bin");
    let plan = fleetform(&["plan", "-out", file.to_str().expect("utf-8")], dir.path());
    assert_eq!(plan.status.code(), Some(0), "{}", err(&plan));
    let first = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["apply", "--no-color"])
        .arg(&file)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(
        first.status.code(),
        Some(0),
        "a reviewed plan needs no prompt: {}",
        err(&first)
    );
    let second = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["apply", "--no-color"])
        .arg(&file)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .output()
        .expect("runs");
    assert_eq!(second.status.code(), Some(1));
    let stderr = err(&second);
    assert!(
        stderr.contains("FF010") && stderr.contains("state moved from version none to 1"),
        "{stderr}"
    );
}

#[test]
fn rollback_returns_the_launch_template_to_the_old_image() {
    let (dir, _) = config("rollback", "ami-785db401");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    set_image(dir.path(), "ami-785db401", "ami-760aaa0f");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    assert_eq!(default_image(dir.path()).as_deref(), Some("ami-760aaa0f"));
    let rolled = fleetform(
        &["rollback", "--to", "1", "--auto-approve", "--no-color"],
        dir.path(),
    );
    assert_eq!(rolled.status.code(), Some(0), "{}", err(&rolled));
    assert!(
        out(&rolled).contains("Recorded version 3 (rollback to 1)"),
        "{}",
        out(&rolled)
    );
    // The working copy still names the new image; EC2 is back on the old one.
    assert_eq!(default_image(dir.path()).as_deref(), Some("ami-785db401"));
    let json: serde_json::Value =
        serde_json::from_slice(&fleetform(&["history", "--json"], dir.path()).stdout)
            .expect("json");
    let versions = json["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2]["rollback_of"], 1);
    let diff = fleetform(&["diff", "1", "2"], dir.path());
    assert!(
        out(&diff).contains("-    \"us-east-1\" = \"ami-785db401\"")
            && out(&diff).contains("+    \"us-east-1\" = \"ami-760aaa0f\""),
        "{}",
        out(&diff)
    );
}

#[test]
fn a_live_lock_makes_a_second_apply_exit_3_naming_the_holder() {
    let (dir, _) = config("locked", "ami-785db401");
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    let now = fleetform_state::now();
    let lease = store.lock("ci@runner-7:4242", 600, now).expect("locked");
    let applied = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(applied.status.code(), Some(3));
    assert!(
        err(&applied).contains("locked by ci@runner-7:4242"),
        "{}",
        err(&applied)
    );
    let unlock = fleetform(&["unlock"], dir.path());
    assert_eq!(
        unlock.status.code(),
        Some(3),
        "a live lease is never broken without --force"
    );
    store.release(lease).expect("released");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn the_lock_of_a_killed_process_is_reported_expired_and_unlock_clears_it() {
    let (dir, _) = config("expired", "ami-785db401");
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    // A lease taken long ago by a process that is gone and never renewed it.
    let _abandoned = store
        .lock("gone@host:1", 60, fleetform_state::now() - 3600)
        .expect("locked");
    let applied = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(applied.status.code(), Some(3));
    assert!(
        err(&applied).contains("gone@host:1") && err(&applied).contains("expired"),
        "{}",
        err(&applied)
    );
    let unlock = fleetform(&["unlock"], dir.path());
    assert_eq!(unlock.status.code(), Some(0), "{}", err(&unlock));
    assert!(
        out(&unlock).contains("broke the lock of gone@host:1"),
        "{}",
        out(&unlock)
    );
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn a_corrupt_state_file_is_named_and_left_untouched() {
    let (dir, _) = config("corrupt", "ami-785db401");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    let version = dir.path().join(".fleetform/versions/000001.json");
    let bytes = std::fs::read(&version).expect("version file");
    let truncated = &bytes[..bytes.len() / 2];
    std::fs::write(&version, truncated).expect("truncate");
    let shown = fleetform(&["show", "--version", "1"], dir.path());
    assert_eq!(shown.status.code(), Some(1));
    assert!(err(&shown).contains("000001.json"), "{}", err(&shown));
    assert_eq!(
        std::fs::read(&version).expect("still there"),
        truncated,
        "left untouched"
    );
}

#[test]
fn plan_says_when_an_earlier_apply_was_interrupted() {
    let (dir, _) = config("interrupted", "ami-785db401");
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    // What a process killed after its first call leaves behind.
    for record in [
        fleetform_state::JournalRecord::Begin {
            apply_id: "abc".into(),
            time: 1,
            holder: "ci@runner:9".into(),
            actions: 3,
        },
        fleetform_state::JournalRecord::Intent {
            apply_id: "abc".into(),
            action: 0,
            address: "key_pair.workers".into(),
            region: "us-east-1".into(),
            client_token: "ff-abc-0".into(),
            time: 1,
        },
        fleetform_state::JournalRecord::Outcome {
            apply_id: "abc".into(),
            action: 0,
            ok: true,
            error: None,
            ids: vec![],
            time: 2,
        },
    ] {
        store.append_journal(&record).expect("journal");
    }
    let plan = fleetform(&["plan", "--no-color"], dir.path());
    assert!(
        err(&plan).contains("an earlier apply (abc, by ci@runner:9")
            && err(&plan).contains("after 1 of 3 actions"),
        "{}",
        err(&plan)
    );
    // The next apply completes and clears the journal.
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    assert!(store.journal().expect("journal").is_empty());
}

#[test]
fn an_apply_killed_mid_launch_converges_on_the_next_apply_without_duplicates() {
    let (dir, _) = config("crash", "ami-785db401");
    let proxy = fleetform_test_support::fault::HoldingProxy::start(
        endpoint(),
        std::sync::Arc::new(|_: &str, action: &str| action == "RunInstances"),
    )
    .expect("proxy");
    let mut child = spawn_apply(dir.path(), &proxy.url, 1);
    // The key pair and template exist; the launch is in flight: kill -9 now.
    assert_eq!(
        proxy
            .wait_for_held(std::time::Duration::from_secs(60))
            .as_deref(),
        Some("RunInstances")
    );
    child.kill().expect("killed");
    child.wait().expect("reaped");
    // The call had reached EC2 before the crash: let it land.
    proxy.release_one();

    let store = LocalBackend::new(dir.path().join(".fleetform"));
    let journal = store.journal().expect("journal readable");
    let intents = journal
        .iter()
        .filter(|r| matches!(r, fleetform_state::JournalRecord::Intent { .. }))
        .count();
    let ends = journal
        .iter()
        .filter(|r| matches!(r, fleetform_state::JournalRecord::End { .. }))
        .count();
    assert_eq!(
        (intents, ends),
        (3, 0),
        "the journal explains the interruption: {journal:?}"
    );
    assert!(
        store.latest().expect("state").is_none(),
        "nothing recorded as done"
    );

    // The killed holder's lease is still live: reported, then broken on purpose.
    let again = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(again.status.code(), Some(3), "{}", err(&again));
    assert_eq!(
        fleetform(&["unlock", "--force"], dir.path()).status.code(),
        Some(0)
    );

    // Wait (bounded) until EC2 shows the launch the dead process made.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while instance_count(dir.path()) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the held launch never landed"
        );
        std::thread::yield_now();
    }
    // State knows nothing of what the dead process made: the plan adopts it.
    let planned: serde_json::Value =
        serde_json::from_slice(&fleetform(&["plan", "--json"], dir.path()).stdout).expect("json");
    let adopted: Vec<&str> = planned["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "adopt")
        .filter_map(|a| a["resource"].as_str())
        .collect();
    assert_eq!(adopted, vec!["key_pair", "launch_template"], "{planned}");
    assert_eq!(planned["summary"]["add"], 0, "nothing is created twice");
    let resumed = fleetform(&["apply", "--auto-approve", "--no-color"], dir.path());
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}{}",
        out(&resumed),
        err(&resumed)
    );
    assert!(
        err(&resumed).contains("was interrupted after 2 of 3 actions"),
        "{}",
        err(&resumed)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "converged: {}", out(&plan));
    assert_eq!(instance_count(dir.path()), 1, "no duplicate launch");
}

fn instance_count(dir: &Path) -> usize {
    let (_, observation) = observe(dir);
    observation.regions["us-east-1"]
        .instances
        .complete()
        .map_or(0, Vec::len)
}

#[test]
fn refresh_only_reports_drift_since_the_last_version_and_changes_nothing() {
    let (dir, fleet) = config("drift", "ami-785db401");
    let none = fleetform(&["plan", "--refresh-only"], dir.path());
    assert!(out(&none).contains("No recorded version"), "{}", out(&none));
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    let clean = fleetform(
        &["plan", "--refresh-only", "--detailed-exitcode"],
        dir.path(),
    );
    assert_eq!(clean.status.code(), Some(0), "{}", out(&clean));
    assert!(
        out(&clean).contains("No drift: EC2 holds what version 1 recorded"),
        "{}",
        out(&clean)
    );
    // Someone terminates the worker outside fleetform.
    let (_, observation) = observe(dir.path());
    let gone: Vec<String> = observation.regions["us-east-1"]
        .instances
        .complete()
        .expect("read")
        .iter()
        .map(|i| i.id.clone())
        .collect();
    let (runtime, provider) = connect();
    runtime
        .block_on(provider.mutate(
            "us-east-1",
            fleetform_engine::provider::Mutation::TerminateInstances { ids: gone.clone() },
        ))
        .expect("terminated");
    assert_eq!(gone.len(), 1, "{fleet}");
    let drifted = fleetform(
        &["plan", "--refresh-only", "--detailed-exitcode"],
        dir.path(),
    );
    assert_eq!(drifted.status.code(), Some(2));
    let text = out(&drifted);
    assert!(
        text.contains(&format!("- instance {}", gone[0])) && text.contains("disappeared"),
        "{text}"
    );
    assert!(text.contains("nothing will be changed"), "{text}");
    let history: serde_json::Value =
        serde_json::from_slice(&fleetform(&["history", "--json"], dir.path()).stdout)
            .expect("json");
    assert_eq!(
        history["versions"].as_array().map(Vec::len),
        Some(1),
        "refresh-only records nothing"
    );
}

/// A fleet of `worker_types` worker types in three regions: 3 key pairs and
/// 3 x `worker_types` launch templates, no launches.
fn wide_config(prefix: &str, worker_types: usize) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    let regions = ["us-east-1", "us-west-2", "eu-central-1"];
    let images: String = regions
        .iter()
        .map(|r| format!("    \"{r}\" = \"ami-785db401\"\n"))
        .collect();
    let mut hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\", \"us-west-2\", \"eu-central-1\"]\n  limits {{\n    max_launches = 0\n  }}\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n{images}  }}\n}}\n"
    );
    for n in 0..worker_types {
        hcl.push_str(&format!(
            "\nworker_type \"w{n}\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    max = 2\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
    (dir, fleet)
}

/// Launch templates and key pairs of the fleet, by address and region, with how many of each exist.
fn object_counts(dir: &Path) -> std::collections::BTreeMap<(String, String, String), usize> {
    let (config, observation) = observe(dir);
    let (entries, incomplete) = fleetform_engine::inventory::entries(&config, &observation);
    assert!(incomplete.is_empty(), "{incomplete:?}");
    let mut counts = std::collections::BTreeMap::new();
    for e in entries
        .into_iter()
        .filter(|e| e.kind.as_str() == "key_pair" || e.kind.as_str() == "launch_template")
    {
        *counts
            .entry((e.address, e.region, e.kind.as_str().to_string()))
            .or_insert(0) += 1;
    }
    counts
}

#[test]
fn kill_9_at_several_points_of_a_sixty_action_apply_never_duplicates_and_converges() {
    // 19 worker types x 3 regions + 3 key pairs = 60 actions.
    let (dir, _) = wide_config("kill9", 19);
    // The k-th mutating call of each round is held and the process killed; the
    // rounds' k add up to less than the 60 calls, so every round is interrupted.
    for kill_at in [1usize, 12, 20, 15] {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&seen);
        let mutating = ["ImportKeyPair", "CreateLaunchTemplate"];
        let proxy = fleetform_test_support::fault::HoldingProxy::start(
            endpoint(),
            std::sync::Arc::new(move |_: &str, action: &str| {
                mutating.contains(&action)
                    && counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == kill_at
            }),
        )
        .expect("proxy");
        let mut child = spawn_apply(dir.path(), &proxy.url, 4);
        let held = proxy.wait_for_held(std::time::Duration::from_secs(60));
        child.kill().expect("killed");
        child.wait().expect("reaped");
        proxy.release_one();
        assert!(
            held.is_some(),
            "round {kill_at}: the apply was killed mid-flight"
        );
        let unlock = fleetform(&["unlock", "--force"], dir.path());
        assert_eq!(
            unlock.status.code(),
            Some(0),
            "round {kill_at}: {}",
            err(&unlock)
        );
    }
    let finished = fleetform(&["apply", "--auto-approve", "--no-color"], dir.path());
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}{}",
        out(&finished),
        err(&finished)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "converged: {}", out(&plan));
    let counts = object_counts(dir.path());
    assert_eq!(counts.len(), 60, "every object exists: {counts:?}");
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing created twice: {counts:?}"
    );
    // Every object is recorded in state.
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    let latest = store.latest().expect("state").expect("a version");
    let recorded: Vec<fleetform_engine::inventory::Object> =
        serde_json::from_value(store.read(latest).expect("version").observed).expect("entries");
    assert_eq!(
        recorded
            .iter()
            .filter(|e| e.kind.as_str() != "image")
            .count(),
        60
    );
}

#[test]
fn a_local_backend_block_moves_the_state_directory() {
    let (dir, _) = config("backend", "ami-785db401");
    let path = dir.path().join("fleet.hcl");
    let hcl = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        format!("backend \"local\" {{\n  path = \"state\"\n}}\n\n{hcl}"),
    )
    .expect("write");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    assert!(dir.path().join("state/versions/000001.json").is_file());
    assert!(!dir.path().join(".fleetform").exists());
    let history = fleetform(&["history", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json");
    assert_eq!(json["versions"].as_array().map(Vec::len), Some(1));
}

#[test]
fn rollback_to_a_version_whose_image_is_gone_stops_before_changing_anything() {
    let (dir, fleet) = config("imagegone", "ami-785db401");
    // Version 1 runs on a copy of the image that is later deregistered.
    let (runtime, provider) = connect();
    let copied = runtime
        .block_on(provider.mutate(
            "us-east-1",
            fleetform_engine::provider::Mutation::CopyImage {
                source_region: "us-east-1".into(),
                source_image: "ami-785db401".into(),
                name: format!("{fleet}-copy"),
                tags: Default::default(),
                client_token: unique_fleet("copy"),
            },
        ))
        .expect("copied");
    let fleetform_engine::provider::MutationOutcome::Image { id: copy } = copied else {
        panic!("unexpected {copied:?}")
    };
    set_image(dir.path(), "ami-785db401", &copy);
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    set_image(dir.path(), &copy, "ami-760aaa0f");
    assert_eq!(
        fleetform(&["apply", "--auto-approve"], dir.path())
            .status
            .code(),
        Some(0)
    );
    runtime
        .block_on(provider.mutate(
            "us-east-1",
            fleetform_engine::provider::Mutation::DeregisterImage {
                image_id: copy.clone(),
                snapshot_ids: vec![],
            },
        ))
        .expect("deregistered");
    let rolled = fleetform(
        &["rollback", "--to", "1", "--auto-approve", "--no-color"],
        dir.path(),
    );
    assert_eq!(rolled.status.code(), Some(1));
    let stderr = err(&rolled);
    assert!(
        stderr.contains("FF002") && stderr.contains(&copy),
        "names the missing image: {stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        default_image(dir.path()).as_deref(),
        Some("ami-760aaa0f"),
        "EC2 untouched"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fleetform(&["history", "--json"], dir.path()).stdout)
            .expect("json");
    assert_eq!(
        json["versions"].as_array().map(Vec::len),
        Some(2),
        "no version recorded"
    );
}

#[test]
fn a_plan_file_carrying_a_blocking_finding_is_never_applied() {
    let (dir, _) = config("blockedfile", "ami-785db401");
    let file = dir.path().join("plan.bin");
    assert_eq!(
        fleetform(&["plan", "-out", file.to_str().expect("utf-8")], dir.path())
            .status
            .code(),
        Some(0)
    );
    // As if written by a fleetform that saved blocked plans, or edited by hand.
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    saved["plan"]["diagnostics"] = serde_json::json!([{
        "code": "FF006", "severity": "error", "message": "the plan launches too many instances"
    }]);
    std::fs::write(&file, serde_json::to_vec(&saved).expect("json")).expect("write");
    let applied = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["apply", "--no-color"])
        .arg(&file)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .output()
        .expect("runs");
    assert_eq!(applied.status.code(), Some(1));
    assert!(
        err(&applied).contains("blocking findings (FF006)"),
        "{}",
        err(&applied)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(2), "nothing was applied");
}

#[test]
fn a_plan_file_with_an_action_apply_cannot_carry_out_is_refused_before_any_change() {
    // Regression: such an action used to fail half way through the apply,
    // after the actions before it had changed EC2.
    let (dir, _) = config("malformed", "ami-785db401");
    let file = dir.path().join("plan.bin");
    assert_eq!(
        fleetform(&["plan", "-out", file.to_str().expect("utf-8")], dir.path())
            .status
            .code(),
        Some(0)
    );
    let mut saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    let actions = saved["plan"]["actions"].as_array_mut().expect("actions");
    let launch = actions
        .iter_mut()
        .find(|a| a["action"] == "launch")
        .expect("a launch");
    launch
        .as_object_mut()
        .expect("an object")
        .remove("instance_type");
    std::fs::write(&file, serde_json::to_vec(&saved).expect("json")).expect("write");
    let applied = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["apply", "--no-color"])
        .arg(&file)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .output()
        .expect("runs");
    assert_eq!(applied.status.code(), Some(1));
    assert!(
        err(&applied).contains("has no instance type"),
        "{}",
        err(&applied)
    );
    // Not even the key pair and the template before the launch were made.
    assert!(object_counts(dir.path()).is_empty(), "nothing was created");
}

#[test]
fn a_kind_unreadable_after_the_apply_keeps_its_record_and_the_next_plan_is_a_no_op() {
    // Regression: the observation that records an apply could fail for one
    // kind (a throttle, a timeout); the version then recorded no launch
    // templates at all, and the next plan offered to adopt every one of them.
    let (dir, _) = config("unread", "ami-785db401");
    let first = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(first.status.code(), Some(0), "{}", err(&first));

    // The second apply changes the template's image; DescribeLaunchTemplates
    // answers the plan's read and fails every read after it.
    set_image(dir.path(), "ami-785db401", "ami-760aaa0f");
    let reads = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&reads);
    let rule: fleetform_test_support::fault::Rule =
        std::sync::Arc::new(move |_region: &str, action: &str| {
            action == "DescribeLaunchTemplates"
                && counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1
        });
    let proxy = fleetform_test_support::fault::FaultProxy::start(endpoint(), rule).expect("proxy");
    let second = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["apply", "--auto-approve"])
        .arg(dir.path())
        .env("FLEETFORM_EC2_ENDPOINT", &proxy.url)
        .stdin(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(second.status.code(), Some(0), "{}", err(&second));
    assert!(proxy.injected() >= 1, "the after-apply read was failed");
    assert!(
        err(&second).contains("launch templates in us-east-1 could not be read after the apply"),
        "{}",
        err(&second)
    );
    assert_eq!(default_image(dir.path()).as_deref(), Some("ami-760aaa0f"));

    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "{}{}", out(&plan), err(&plan));
}

/// Group commit on the local state: an apply killed after its intents'
/// batch was written (and fsynced) but before the call reached EC2, and one
/// killed after EC2 made the call but before its outcome was recorded, each
/// leave a journal holding the intent of every call made (and none of the
/// stopped call's outcome); the next apply converges without a duplicate key
/// pair, template or instance.
#[test]
fn an_apply_on_local_state_killed_between_batch_and_call_or_call_and_outcome_converges() {
    let worker_types = 6;
    let fleet = unique_fleet("local-group");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n"
    );
    for n in 0..worker_types {
        hcl.push_str(&format!(
            "\nworker_type \"w{n}\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 1\n    max = 2\n  }}\n}}\n"
        ));
    }
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
    let store = LocalBackend::new(dir.path().join(".fleetform"));
    // 13 calls: the key pair, 6 templates, 6 launches.
    for (at, after_ec2) in [(4, false), (6, true)] {
        let round = format!("call {at}, after EC2: {after_ec2}");
        let stop = fleetform_test_support::fault::CallStop::start(endpoint(), at, after_ec2)
            .expect("proxy");
        let mut child = spawn_apply(dir.path(), &stop.url, 16);
        let stopped = stop.wait_tripped(std::time::Duration::from_secs(120));
        child.kill().expect("killed");
        child.wait().expect("reaped");
        assert!(stopped.is_some(), "{round}: stopped mid-call");
        let records = store.journal().expect("journal reads");
        let count = |intent: bool| {
            records
                .iter()
                .filter(|r| match r {
                    fleetform_state::JournalRecord::Intent { .. } => intent,
                    fleetform_state::JournalRecord::Outcome { .. } => !intent,
                    _ => false,
                })
                .count()
        };
        assert!(
            count(true) >= stop.calls(),
            "{round}: {} calls reached EC2, only {} intents are in the journal",
            stop.calls(),
            count(true)
        );
        assert!(
            count(false) < count(true),
            "{round}: the stopped call has no outcome"
        );
        let unlock = fleetform(&["unlock", "--force"], dir.path());
        assert_eq!(unlock.status.code(), Some(0), "{round}: {}", err(&unlock));
    }
    let finished = fleetform(&["apply", "--auto-approve", "--no-color"], dir.path());
    assert_eq!(
        finished.status.code(),
        Some(0),
        "{}{}",
        out(&finished),
        err(&finished)
    );
    let plan = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(plan.status.code(), Some(0), "converged: {}", out(&plan));
    let (config, observation) = observe(dir.path());
    let (entries, incomplete) = fleetform_engine::inventory::entries(&config, &observation);
    assert!(incomplete.is_empty(), "{incomplete:?}");
    let mut counts = std::collections::BTreeMap::new();
    for e in entries.into_iter().filter(|e| e.kind.as_str() != "image") {
        *counts
            .entry((e.address, e.region, e.kind.as_str().to_string()))
            .or_insert(0) += 1;
    }
    assert_eq!(
        counts.len(),
        1 + 2 * worker_types,
        "every object: {counts:?}"
    );
    assert!(
        counts.values().all(|&n| n == 1),
        "nothing twice: {counts:?}"
    );
    assert_eq!(store.journal().expect("journal"), Vec::new(), "cleared");
}

//! `fleetform plan` end to end against the local EC2 endpoint: a dozen
//! scenarios from the seeds, each snapshotted as people and CI see it.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{tags, Mutation, Provider};
use fleetform_test_support::fault::FaultProxy;
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";
const OTHER_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvd6wC0mhxfT0p7FZcqsG2pYIP7Yt0W7lE1h0z9i3QO two";

/// A small fleet: one key pair, one AMI set, one worker type; `{...}` holes are filled per test.
fn fleet_hcl(fleet: &str, regions: &[&str], image: &str, worker: &str) -> String {
    let region_list: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    let images: String = regions
        .iter()
        .map(|r| format!("    \"{r}\" = \"{image}\"\n"))
        .collect();
    format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [{}]\n}}\n\nkey_pair \"workers\" {{\n  public_key = file(\"workers.pub\")\n}}\n\nami_set \"linux\" {{\n  images = {{\n{images}  }}\n}}\n\n{worker}",
        region_list.join(", ")
    )
}

fn worker(min: u32, max: u32, user_data: &str) -> String {
    format!(
        "worker_type \"linux\" {{\n  ami_set   = ami_set.linux\n  key_pair  = key_pair.workers\n  user_data = \"{user_data}\"\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = {min}\n    max = {max}\n  }}\n}}\n"
    )
}

fn write_config(dir: &Path, hcl: &str, key: &str) {
    std::fs::write(dir.join("fleet.hcl"), hcl).expect("write config");
    std::fs::write(dir.join("workers.pub"), key).expect("write key");
}

fn new_config(prefix: &str, regions: &[&str], image: &str, worker_hcl: &str) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(
        dir.path(),
        &fleet_hcl(&fleet, regions, image, worker_hcl),
        KEY,
    );
    (dir, fleet)
}

fn plan_at(endpoint: &str, dir: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["plan", "--no-color"])
        .args(extra)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint)
        .output()
        .expect("runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Snapshot settings: fleet names, ids, paths and timings vary per run.
fn redacted(fleet: &str, dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(fleet), "[fleet]");
    settings.add_filter(&regex_escape(&dir.display().to_string()), "[dir]");
    settings.add_filter(r"\bi-[0-9a-f]{8,17}", "i-[id]");
    settings.add_filter(r"lt-[0-9a-f]{8,17}", "lt-[id]");
    settings.add_filter(r"key-[0-9a-f]{8,17}", "key-[id]");
    settings.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[digest]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[time]");
    settings.add_filter(r"[0-9a-f]{64}", "[digest]");
    settings.add_filter(
        r"observed (\d+) regions? in [0-9.]+s with \d+ API calls",
        "observed $1 regions in [time] with [n] API calls",
    );
    settings
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// Snapshots the JSON plan and the Markdown comment of `dir` as `name_json` / `name_markdown`.
fn snapshot_machine_outputs(name: &str, endpoint: &str, fleet: &str, dir: &Path, extra: &[&str]) {
    let markdown = dir.join("plan.md");
    let mut args = vec!["--json", "--markdown", markdown.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let out = plan_at(endpoint, dir, &args);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json plan");
    let md = std::fs::read_to_string(&markdown).expect("markdown written");
    redacted(fleet, dir).bind(|| {
        insta::assert_json_snapshot!(format!("{name}_json"), json);
        insta::assert_snapshot!(format!("{name}_markdown"), md);
    });
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

async fn provider() -> AwsProvider {
    AwsProvider::connect(&ConnectOptions {
        endpoint_url: Some(endpoint().to_string()),
        ..ConnectOptions::default()
    })
    .await
    .expect("connects")
}

/// Applies the current plan of `dir` with `fleetform apply`, which records a version.
fn apply(dir: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args([
            "apply",
            "--auto-approve",
            "--allow-destroy",
            "--max-launches",
            "10000",
        ])
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Launches `count` instances tagged as `address` of `fleet`, outside of any plan.
fn launch_tagged(
    fleet: &str,
    region: &str,
    address: &str,
    count: i32,
    key: Option<&str>,
) -> Vec<String> {
    launch_as(
        fleet,
        region,
        address,
        count,
        key,
        &Side {
            instance_type: "c5.metal",
            worker_type: None,
        },
    )
}

/// What a provisioner outside fleetform launches with.
struct Side<'a> {
    /// The instance type it asks for.
    instance_type: &'a str,
    /// Its `fleetform:worker-type` tag, if any.
    worker_type: Option<&'a str>,
}

/// [`launch_tagged`] with the instance type and worker type tag of `side`.
fn launch_as(
    fleet: &str,
    region: &str,
    address: &str,
    count: i32,
    key: Option<&str>,
    side: &Side<'_>,
) -> Vec<String> {
    runtime().block_on(async {
        let provider = provider().await;
        let template = provider
            .mutate(
                region,
                Mutation::CreateLaunchTemplate {
                    name: unique_fleet("side"),
                    data: fleetform_engine::provider::LaunchTemplateData {
                        image_id: Some("ami-785db401".into()),
                        key_name: key.map(str::to_string),
                        ..Default::default()
                    },
                    tags: BTreeMap::new(),
                    client_token: unique_fleet("side-token"),
                },
            )
            .await
            .expect("template");
        let fleetform_engine::provider::MutationOutcome::LaunchTemplate { id, .. } = template
        else {
            panic!()
        };
        let mut tag_set = BTreeMap::from([
            (tags::FLEET.to_string(), fleet.to_string()),
            (tags::ADDRESS.to_string(), address.to_string()),
        ]);
        if let Some(worker_type) = side.worker_type {
            tag_set.insert(tags::WORKER_TYPE.to_string(), worker_type.to_string());
        }
        match provider
            .mutate(
                region,
                Mutation::RunInstances {
                    template_id: id,
                    version: 1,
                    instance_type: side.instance_type.into(),
                    count,
                    tags: tag_set,
                    client_token: unique_fleet("run"),
                    dry_run: false,
                    subnet: None,
                },
            )
            .await
            .expect("launched")
        {
            fleetform_engine::provider::MutationOutcome::Instances { ids } => ids,
            other => panic!("{other:?}"),
        }
    })
}

#[test]
fn a_fresh_fleet_plans_key_pair_template_and_launches() {
    let (dir, fleet) = new_config(
        "fresh",
        &["us-east-1"],
        "ami-785db401",
        &worker(2, 4, "#!/bin/sh\\necho linux\\n"),
    );
    let markdown = dir.path().join("plan.md");
    let out = plan_at(
        endpoint(),
        dir.path(),
        &[
            "--detailed-exitcode",
            "--markdown",
            markdown.to_str().expect("utf-8"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "changes present: {stderr}");
    assert!(
        stdout.contains("Plan: 2 to add, 0 to change, 0 to destroy; capacity: +2 -0"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&markdown).expect("markdown written");
    let json_out = plan_at(endpoint(), dir.path(), &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("json");
    assert_eq!(json["summary"]["launch"], 2);
    redacted(&fleet, dir.path()).bind(|| {
        insta::assert_snapshot!("fresh_human", stdout);
        insta::assert_snapshot!("fresh_markdown", md);
        insta::assert_json_snapshot!("fresh_json", json);
    });
}

#[test]
fn a_second_plan_after_apply_is_a_no_op() {
    let (dir, fleet) = new_config("noop", &["us-east-1"], "ami-785db401", &worker(1, 4, "x"));
    apply(dir.path());
    let out = plan_at(endpoint(), dir.path(), &["--detailed-exitcode"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    redacted(&fleet, dir.path()).bind(|| insta::assert_snapshot!("noop_human", stdout));
    snapshot_machine_outputs("noop", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn a_changed_image_updates_the_launch_template_in_that_region_only() {
    let (dir, fleet) = new_config(
        "ami",
        &["us-east-1", "us-west-2"],
        "ami-785db401",
        &worker(0, 4, "x"),
    );
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    let changed = hcl.replacen(
        "\"us-west-2\" = \"ami-785db401\"",
        "\"us-west-2\" = \"ami-760aaa0f\"",
        1,
    );
    std::fs::write(dir.path().join("fleet.hcl"), changed).expect("write");
    let out = plan_at(endpoint(), dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy"),
        "{stdout}"
    );
    redacted(&fleet, dir.path()).bind(|| insta::assert_snapshot!("ami_changed_human", stdout));
    snapshot_machine_outputs("ami_changed", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn a_user_data_edit_is_shown_as_a_unified_diff() {
    let (dir, fleet) = new_config(
        "userdata",
        &["us-east-1"],
        "ami-785db401",
        &worker(0, 4, "#!/bin/sh\\nstart --type linux\\nexit 0\\n"),
    );
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        hcl.replace("start --type linux", "start --type linux --verbose"),
    )
    .expect("write");
    let (stdout, _) = text(&plan_at(endpoint(), dir.path(), &[]));
    assert!(
        stdout.contains("-start --type linux\n")
            && stdout.contains("+start --type linux --verbose"),
        "{stdout}"
    );
    redacted(&fleet, dir.path()).bind(|| insta::assert_snapshot!("user_data_human", stdout));
    snapshot_machine_outputs("user_data", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn seed_002_three_hundred_ninety_five_metal_instances_are_terminated_down_to_max() {
    let metal = "worker_type \"linux\" {\n  ami_set = ami_set.linux\n\n  instance_type \"c5.metal\" { capacity = 1 }\n\n  capacity {\n    min = 0\n    max = 10\n  }\n}\n";
    let (dir, fleet) = new_config("metal", &["us-east-1"], "ami-785db401", metal);
    apply(dir.path());
    launch_tagged(
        &fleet,
        "us-east-1",
        "worker_type.linux[\"us-east-1\"]",
        395,
        None,
    );
    let out = plan_at(endpoint(), dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("capacity: +0 -385"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "blast radius blocks: {stderr}");
    assert!(
        stderr.contains("FF006") && stderr.contains("terminates 385 instances"),
        "{stderr}"
    );
    let allowed = plan_at(endpoint(), dir.path(), &["--allow-destroy"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed).1);
    redacted(&fleet, dir.path()).bind(|| {
        insta::assert_snapshot!("metal_human", stdout);
        insta::assert_snapshot!("metal_findings", stderr);
    });
    snapshot_machine_outputs("metal", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn instances_of_an_undeclared_type_count_at_the_heaviest_declared_weight() {
    // A provisioner launched from the template without a type override: EC2's
    // default type, which the worker type does not declare.
    let weighed = "worker_type \"linux\" {\n  ami_set = ami_set.linux\n\n  instance_type \"m5.large\" { capacity = 1 }\n  instance_type \"c5.metal\" { capacity = 4 }\n\n  capacity {\n    min = 0\n    max = 10\n  }\n}\n";
    let (dir, fleet) = new_config("unweighed", &["us-east-1"], "ami-785db401", weighed);
    apply(dir.path());
    let mut small = launch_as(
        &fleet,
        "us-east-1",
        "worker_type.linux[\"us-east-1\"]",
        5,
        None,
        &Side {
            instance_type: "m1.small",
            worker_type: Some("linux"),
        },
    );
    small.sort();
    let out = plan_at(endpoint(), dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // 5 x 4 units = 20 against max 10: three go, two stay (8 units).
    let terminate = json["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .find(|a| a["action"] == "terminate")
        .expect("a termination");
    assert_eq!(terminate["reason"], "above-max");
    assert_eq!(terminate["ids"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        json["unweighed"],
        serde_json::json!([{
            "address": "worker_type.linux",
            "region": "us-east-1",
            "instance_type": "m1.small",
            "counted_weight": 4,
            "ids": small,
        }])
    );
    let warnings: Vec<&serde_json::Value> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "FF004")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["severity"], "warning");
    let message = warnings[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("5 x m1.small") && message.contains("counts as 4 capacity units"),
        "{message}"
    );
    let (stdout, stderr) = text(&plan_at(endpoint(), dir.path(), &[]));
    redacted(&fleet, dir.path()).bind(|| {
        insta::assert_snapshot!("unweighed_human", stdout);
        insta::assert_snapshot!("unweighed_findings", stderr);
    });
    snapshot_machine_outputs("unweighed", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn a_region_whose_instances_cannot_be_read_gets_no_launches() {
    let (dir, fleet) = new_config(
        "blind",
        &["us-east-1", "us-west-2"],
        "ami-785db401",
        &worker(2, 4, "x"),
    );
    let proxy = FaultProxy::start(
        endpoint(),
        std::sync::Arc::new(|region: &str, action: &str| {
            region == "us-west-2" && action == "DescribeInstances"
        }),
    )
    .expect("proxy");
    let out = plan_at(&proxy.url, dir.path(), &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let launches: Vec<&serde_json::Value> = json["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "launch")
        .collect();
    assert_eq!(launches.len(), 1, "{launches:?}");
    assert_eq!(launches[0]["region"], "us-east-1");
    assert_eq!(
        json["summary"]["skipped_regions"],
        serde_json::json!(["us-west-2"])
    );
    assert_eq!(json["incomplete"][0]["kind"], "instances");
    let codes: Vec<&str> = json["diagnostics"]
        .as_array()
        .expect("d")
        .iter()
        .filter_map(|d| d["code"].as_str())
        .collect();
    assert!(codes.contains(&"FF005"), "{codes:?}");
    let (stdout, stderr) = text(&plan_at(&proxy.url, dir.path(), &[]));
    redacted(&fleet, dir.path()).bind(|| {
        insta::assert_snapshot!("blind_human", stdout);
        insta::assert_snapshot!("blind_findings", stderr);
    });
    snapshot_machine_outputs("blind", &proxy.url, &fleet, dir.path(), &[]);
}

#[test]
fn orphaned_instances_are_terminated() {
    let (dir, fleet) = new_config("orphan", &["us-east-1"], "ami-785db401", &worker(0, 4, "x"));
    apply(dir.path());
    let orphans = launch_tagged(
        &fleet,
        "us-east-1",
        "worker_type.retired[\"us-east-1\"]",
        2,
        None,
    );
    let json: serde_json::Value =
        serde_json::from_slice(&plan_at(endpoint(), dir.path(), &["--json"]).stdout).expect("json");
    let terminate = json["actions"]
        .as_array()
        .expect("a")
        .iter()
        .find(|a| a["action"] == "terminate")
        .expect("terminate");
    assert_eq!(terminate["reason"], "orphan");
    assert_eq!(terminate["address"], "worker_type.retired");
    let mut ids: Vec<&str> = terminate["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .filter_map(|i| i.as_str())
        .collect();
    ids.sort_unstable();
    let mut expected: Vec<&str> = orphans.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(ids, expected);
}

#[test]
fn an_image_that_no_longer_exists_is_ff002_before_anything_changes() {
    let (dir, fleet) = new_config(
        "gone",
        &["us-east-1"],
        "ami-0123456789abcdef0",
        &worker(1, 2, "x"),
    );
    let out = plan_at(endpoint(), dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("FF002") && stderr.contains("does not exist"),
        "{stderr}"
    );
    redacted(&fleet, dir.path()).bind(|| insta::assert_snapshot!("image_gone_findings", stderr));
    snapshot_machine_outputs("image_gone", endpoint(), &fleet, dir.path(), &[]);
}

#[test]
fn a_paravirtual_image_declared_as_hvm_is_ff003() {
    // ami-8104a4f8 is paravirtual; the AMI set says hvm (the default).
    let (dir, _) = new_config("pv", &["us-east-1"], "ami-8104a4f8", &worker(0, 2, "x"));
    let out = plan_at(endpoint(), dir.path(), &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("FF003") && stderr.contains("is paravirtual"),
        "{stderr}"
    );
}

#[test]
fn replacing_a_key_pair_names_the_worker_types_and_instances_using_it() {
    let (dir, fleet) = new_config("key", &["us-east-1"], "ami-785db401", &worker(1, 2, "x"));
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    write_config(dir.path(), &hcl, OTHER_KEY);
    let out = plan_at(endpoint(), dir.path(), &[]);
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("-/+ key pair"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&plan_at(endpoint(), dir.path(), &["--json"]).stdout).expect("json");
    let finding = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "FF008")
        .expect("FF008");
    let message = finding["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("[linux]") && message.contains("1 running instance"),
        "{message}"
    );
    redacted(&fleet, dir.path()).bind(|| {
        insta::assert_snapshot!("key_replace_human", stdout);
        insta::assert_snapshot!("key_replace_findings", stderr);
    });
    snapshot_machine_outputs("key_replace", endpoint(), &fleet, dir.path(), &[]);
}

/// Two worker types sharing key pair "workers": builder runs one instance, tester none.
fn two_key_users() -> String {
    ["builder", "tester"]
        .iter()
        .zip([1, 0])
        .map(|(name, min)| {
            format!(
                "worker_type \"{name}\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = {min}\n    max = 2\n  }}\n}}\n\n"
            )
        })
        .collect()
}

/// The FF008 finding and the `key_impacts` entry of `dir`'s plan.
fn key_finding(dir: &Path) -> (serde_json::Value, serde_json::Value) {
    let out = plan_at(endpoint(), dir, &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json plan");
    let findings: Vec<&serde_json::Value> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == "FF008")
        .collect();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let impacts = json["key_impacts"].as_array().expect("key_impacts");
    assert_eq!(impacts.len(), 1, "{impacts:?}");
    (findings[0].clone(), impacts[0].clone())
}

/// `(worker type, sources, instance count)` of each user in a `key_impacts` entry.
fn key_users(impact: &serde_json::Value) -> Vec<(String, Vec<String>, u64)> {
    impact["worker_types"]
        .as_array()
        .expect("worker_types")
        .iter()
        .map(|u| {
            let ids = u["ids"].as_array().map_or(0, Vec::len) as u64;
            assert_eq!(u["instances"].as_u64(), Some(ids), "{u}");
            (
                u["worker_type"].as_str().unwrap_or_default().to_string(),
                u["sources"]
                    .as_array()
                    .expect("sources")
                    .iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect(),
                ids,
            )
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// 1-based line of the first line of `dir`'s fleet.hcl that contains `needle`.
fn line_of(dir: &Path, needle: &str) -> u64 {
    let hcl = std::fs::read_to_string(dir.join("fleet.hcl")).expect("read");
    hcl.lines()
        .position(|l| l.contains(needle))
        .expect("present") as u64
        + 1
}

#[test]
fn renaming_a_key_pair_names_the_worker_types_that_used_the_old_one() {
    let (dir, _) = new_config(
        "key-rename",
        &["us-east-1"],
        "ami-785db401",
        &two_key_users(),
    );
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    let renamed = hcl
        .replace("key_pair \"workers\"", "key_pair \"workers-v2\"")
        .replace("key_pair.workers", "key_pair.workers-v2");
    write_config(dir.path(), &renamed, OTHER_KEY);
    let (finding, impact) = key_finding(dir.path());
    assert_eq!(impact["address"], "key_pair.workers");
    assert_eq!(impact["action"], "delete");
    assert_eq!(impact["replaced_by"], "key_pair.workers-v2");
    assert_eq!(
        key_users(&impact),
        vec![
            (
                "builder".to_string(),
                strings(&["recorded", "launch-template", "instances"]),
                1
            ),
            (
                "tester".to_string(),
                strings(&["recorded", "launch-template"]),
                0
            ),
        ]
    );
    let message = finding["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("[builder, tester] and 1 running instance")
            && message.contains("builder 1, tester 0"),
        "{message}"
    );
    // At the block that replaces it.
    assert_eq!(
        finding["line"].as_u64(),
        Some(line_of(dir.path(), "key_pair \"workers-v2\""))
    );
}

#[test]
fn a_new_public_key_under_the_same_name_names_every_worker_type_using_it() {
    let (dir, _) = new_config("key-new", &["us-east-1"], "ami-785db401", &two_key_users());
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    write_config(dir.path(), &hcl, OTHER_KEY);
    let (finding, impact) = key_finding(dir.path());
    assert_eq!(impact["action"], "replace");
    assert_eq!(impact.get("replaced_by"), None);
    assert_eq!(
        key_users(&impact),
        vec![
            (
                "builder".to_string(),
                strings(&["config", "recorded", "launch-template", "instances"]),
                1
            ),
            (
                "tester".to_string(),
                strings(&["config", "recorded", "launch-template"]),
                0
            ),
        ]
    );
    assert_eq!(
        finding["line"].as_u64(),
        Some(line_of(dir.path(), "public_key"))
    );
}

#[test]
fn removing_a_key_pair_points_at_the_worker_types_that_dropped_it() {
    let (dir, _) = new_config("key-drop", &["us-east-1"], "ami-785db401", &two_key_users());
    apply(dir.path());
    let hcl = std::fs::read_to_string(dir.path().join("fleet.hcl")).expect("read");
    let dropped: String = hcl
        .replace(
            "key_pair \"workers\" {\n  public_key = file(\"workers.pub\")\n}\n",
            "",
        )
        .lines()
        .filter(|l| !l.contains("key_pair.workers"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!dropped.contains("key_pair"), "{dropped}");
    write_config(dir.path(), &dropped, KEY);
    let (finding, impact) = key_finding(dir.path());
    assert_eq!(impact["action"], "delete");
    assert_eq!(impact.get("replaced_by"), None);
    assert_eq!(
        key_users(&impact),
        vec![
            (
                "builder".to_string(),
                strings(&["recorded", "launch-template", "instances"]),
                1
            ),
            (
                "tester".to_string(),
                strings(&["recorded", "launch-template"]),
                0
            ),
        ]
    );
    assert_eq!(
        finding["line"].as_u64(),
        Some(line_of(dir.path(), "worker_type \"builder\""))
    );
}

#[test]
fn a_saved_plan_is_shown_as_it_was_planned() {
    let (dir, _) = new_config("saved", &["us-east-1"], "ami-785db401", &worker(1, 2, "x"));
    let file = dir.path().join("plan.bin");
    let planned = plan_at(
        endpoint(),
        dir.path(),
        &["-out", file.to_str().expect("utf-8")],
    );
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned).1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("saved")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "plan files may hold user data secrets");
    }
    let shown = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["show", "--no-color"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(shown.status.code(), Some(0));
    assert_eq!(
        text(&shown).0,
        text(&planned).0,
        "show renders exactly what plan printed"
    );
}

#[test]
fn a_corrupt_plan_file_is_named_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("plan.bin");
    std::fs::write(
        &file,
        "{\"kind\": \"fleetform-plan\", \"format_version\": 1, \"plan\": {",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["show", "--no-color"])
        .arg(&file)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("plan-file") && stderr.contains("corrupt or truncated"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&file.display().to_string()),
        "names the file: {stderr}"
    );
    std::fs::write(
        &file,
        "{\"kind\": \"fleetform-plan\", \"format_version\": 99}",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(["show"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        text(&out).1.contains("newer than this fleetform"),
        "{}",
        text(&out).1
    );
}

#[test]
fn a_target_plans_one_worker_type_and_the_key_pair_it_uses() {
    let (dir, _) = new_config("target", &["us-east-1"], "ami-785db401", &worker(1, 2, "x"));
    let json: serde_json::Value = serde_json::from_slice(
        &plan_at(
            endpoint(),
            dir.path(),
            &["--json", "--target", "worker_type.linux"],
        )
        .stdout,
    )
    .expect("json");
    let addresses: std::collections::BTreeSet<&str> = json["actions"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert_eq!(
        addresses,
        ["key_pair.workers", "worker_type.linux"]
            .into_iter()
            .collect()
    );
    let json: serde_json::Value = serde_json::from_slice(
        &plan_at(
            endpoint(),
            dir.path(),
            &["--json", "--target", "key_pair.workers"],
        )
        .stdout,
    )
    .expect("json");
    let addresses: Vec<&str> = json["actions"]
        .as_array()
        .expect("a")
        .iter()
        .filter_map(|a| a["address"].as_str())
        .collect();
    assert_eq!(addresses, vec!["key_pair.workers"]);
}

#[test]
fn dry_run_reports_what_ec2_would_refuse() {
    let (dir, fleet) = new_config("dryrun", &["us-east-1"], "ami-785db401", &worker(1, 2, "x"));
    let ok = plan_at(endpoint(), dir.path(), &["--dry-run"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "moto accepts the dry run: {}",
        text(&ok).1
    );
    let proxy = fleetform_test_support::fault::FaultProxy::start_with(
        endpoint(),
        std::sync::Arc::new(|_: &str, action: &str| action == "RunInstances"),
        fleetform_test_support::fault::Fault {
            status: 403,
            code: "UnauthorizedOperation".into(),
        },
    )
    .expect("proxy");
    let refused = plan_at(&proxy.url, dir.path(), &["--dry-run"]);
    let (_, stderr) = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FF011") && stderr.contains("UnauthorizedOperation"),
        "{stderr}"
    );
    redacted(&fleet, dir.path()).bind(|| insta::assert_snapshot!("dry_run_refused", stderr));
}

#[test]
fn a_blocked_plan_is_not_saved() {
    let metal = "worker_type \"linux\" {\n  ami_set = ami_set.linux\n\n  instance_type \"m5.large\" { capacity = 1 }\n\n  capacity {\n    min = 60\n    max = 60\n  }\n}\n";
    let (dir, _) = new_config("blocked", &["us-east-1"], "ami-785db401", metal);
    let file = dir.path().join("plan.bin");
    let out = plan_at(
        endpoint(),
        dir.path(),
        &["-out", file.to_str().expect("utf-8")],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "60 launches exceed the default limit of 50"
    );
    assert!(
        text(&out).1.contains("not saving the plan"),
        "{}",
        text(&out).1
    );
    assert!(!file.exists(), "a blocked plan must never reach apply");
}

//! `for_each` and ids end to end against the local EC2 endpoint: a worker
//! type written out, applied, then rewritten as a `for_each` instance with
//! the same `name`, plans exactly what the written-out form plans: no new
//! object, nothing deleted.

use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

const WRITTEN_OUT: &str = r#"
key_pair "workers" {
  name       = "workers-main"
  public_key = file("workers.pub")
}

worker_type "gecko-1-b-linux" {
  name     = "gecko-1/b-linux"
  ami_set  = ami_set.linux
  key_pair = key_pair.workers
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 1
    max = 2
  }
}
"#;

const AS_FOR_EACH: &str = r#"
locals {
  levels = { "gecko-1" = 2 }
}

key_pair "keys" {
  for_each   = ["main"]
  name       = "workers-${each.key}"
  public_key = file("workers.pub")
}

worker_type "b-linux" {
  for_each = local.levels
  name     = "${each.key}/b-linux"
  ami_set  = ami_set.linux
  key_pair = key_pair.keys["main"]
  dynamic "instance_type" {
    for_each = { "m5.large" = 1 }
    labels   = [instance_type.key]
    content {
      capacity = instance_type.value
    }
  }
  capacity {
    min = 1
    max = each.value
  }
}
"#;

fn fleetform(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What `plan --json` would change in EC2: each action without its address
/// and the informational address tag (which the two forms differ in).
fn effects(out: &Output) -> Vec<serde_json::Value> {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("plan --json: {e}: {}", text(out));
    });
    let mut actions = json["actions"].as_array().cloned().unwrap_or_default();
    for action in &mut actions {
        if let Some(object) = action.as_object_mut() {
            object.remove("address");
            object.remove("tags");
            object.remove("launch_template");
            if let Some(changes) = object.get_mut("changes").and_then(|c| c.as_array_mut()) {
                changes.retain(|c| {
                    !c["path"]
                        .as_str()
                        .is_some_and(|p| p.contains("fleetform:address"))
                });
            }
        }
    }
    actions
}

#[test]
fn a_worker_type_rewritten_as_a_for_each_instance_with_its_name_plans_what_it_planned_before() {
    let fleet = unique_fleet("each");
    let dir = tempfile::tempdir().expect("tempdir");
    let head = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("fleet.hcl"), &head).expect("write");
    std::fs::write(dir.path().join("workers.pub"), KEY).expect("write");
    std::fs::write(dir.path().join("pools.hcl"), WRITTEN_OUT).expect("write");

    let applied = fleetform(&["apply", "--auto-approve", "--no-color"], dir.path());
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let before = effects(&fleetform(&["plan", "--json"], dir.path()));
    assert!(
        before.iter().all(|a| a["action"] == "update"),
        "nothing but drift the endpoint reports after apply: {before:#?}"
    );
    let listed = fleetform(&["state", "list"], dir.path());
    assert!(
        text(&listed).contains("worker_type.gecko-1-b-linux[\"us-east-1\"]"),
        "{}",
        text(&listed)
    );

    std::fs::write(dir.path().join("pools.hcl"), AS_FOR_EACH).expect("write");
    // The same objects, found by id under their new addresses: exactly what
    // the written-out form plans (the local endpoint may report drift in
    // fields it does not keep; both forms see the same).
    let after = effects(&fleetform(&["plan", "--json"], dir.path()));
    assert_eq!(after, before);
    let listed = fleetform(&["state", "list"], dir.path());
    assert!(
        text(&listed).contains("worker_type.b-linux[\"gecko-1\"][\"us-east-1\"]"),
        "{}",
        text(&listed)
    );
    let shown = fleetform(&["state", "show", "worker_type.b-linux"], dir.path());
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown));
    assert!(
        text(&shown).contains(&format!("{fleet}.gecko-1/b-linux")),
        "{}",
        text(&shown)
    );

    // Without the name its id is `b-linux-gecko-1`: a new worker type.
    std::fs::write(
        dir.path().join("pools.hcl"),
        AS_FOR_EACH.replace("  name     = \"${each.key}/b-linux\"\n", ""),
    )
    .expect("write");
    let plan = fleetform(&["plan", "--detailed-exitcode", "--no-color"], dir.path());
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(
        text(&plan).contains(&format!("{fleet}.b-linux-gecko-1")),
        "{}",
        text(&plan)
    );
}

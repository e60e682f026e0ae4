//! What EC2 does not list yet is not gone: fleetform against the local EC2
//! endpoint through a proxy that plays EC2's eventual consistency (what was
//! just created is missing from Describe answers that look complete), and
//! with instances that really vanished. Time is fleetform's clock
//! (`FLEETFORM_NOW`), never a wait.

use aws_sdk_ec2::types::Filter;
use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::tags;
use fleetform_test_support::fault::{FaultClass, FaultProxy};
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy one";

/// A fleet in us-east-1 with a key pair and one worker type `w` that keeps
/// exactly two m5.large (`fleet_extra` goes inside the fleet block).
fn config(prefix: &str, fleet_extra: &str) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n{fleet_extra}\n}}\n\nkey_pair \"workers\" {{\n  public_key = \"{KEY}\"\n}}\n\nami_set \"linux\" {{\n  images = {{\n    \"us-east-1\" = \"ami-785db401\"\n  }}\n}}\n\nworker_type \"w\" {{\n  ami_set  = ami_set.linux\n  key_pair = key_pair.workers\n\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    min = 2\n    max = 2\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    (dir, fleet)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs fleetform against `via`; with `now`, fleetform's clock reads that.
fn fleetform(args: &[&str], dir: &Path, via: &str, now: Option<i64>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    command
        .args(args)
        .arg("--no-color")
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", via)
        .env_remove("FLEETFORM_NOW")
        .stdin(Stdio::null());
    if let Some(now) = now {
        command.env("FLEETFORM_NOW", now.to_string());
    }
    command.output().expect("runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `plan --json --detailed-exitcode`: its exit code and document.
fn plan_json(dir: &Path, via: &str, now: Option<i64>) -> (Option<i32>, serde_json::Value) {
    let out = fleetform(&["plan", "--json", "--detailed-exitcode"], dir, via, now);
    let plan = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --json: {e}\n{}", text(&out)));
    (out.status.code(), plan)
}

/// The messages of the plan's warnings that say something is not listed yet.
fn unlisted_warnings(plan: &serde_json::Value) -> Vec<String> {
    plan["diagnostics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["severity"] == "warning")
        .filter_map(|d| d["message"].as_str())
        .filter(|m| m.contains("not listed by EC2 yet"))
        .map(str::to_string)
        .collect()
}

/// EC2 seen directly (no proxy) through aws-sdk-ec2.
struct Ec2 {
    runtime: tokio::runtime::Runtime,
    client: aws_sdk_ec2::Client,
}

impl Ec2 {
    fn connect() -> Ec2 {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let provider = runtime
            .block_on(AwsProvider::connect(&ConnectOptions {
                endpoint_url: Some(endpoint().to_string()),
                ..ConnectOptions::default()
            }))
            .expect("connects");
        let client = provider.ec2("us-east-1");
        Ec2 { runtime, client }
    }

    fn fleet_filter(fleet: &str) -> Filter {
        Filter::builder()
            .name(format!("tag:{}", tags::FLEET))
            .values(fleet)
            .build()
    }

    /// Ids of the fleet's pending and running instances.
    fn instances(&self, fleet: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let out = self
                .client
                .describe_instances()
                .filters(Self::fleet_filter(fleet))
                .filters(
                    Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .build(),
                )
                .send()
                .await
                .expect("describe instances");
            let mut ids: Vec<String> = out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect();
            ids.sort();
            ids
        })
    }

    /// How many launch templates and key pairs the fleet has.
    fn templates_and_keys(&self, fleet: &str) -> (usize, usize) {
        self.runtime.block_on(async {
            let templates = self
                .client
                .describe_launch_templates()
                .filters(Self::fleet_filter(fleet))
                .send()
                .await
                .expect("describe templates");
            let keys = self
                .client
                .describe_key_pairs()
                .filters(Self::fleet_filter(fleet))
                .send()
                .await
                .expect("describe key pairs");
            (templates.launch_templates().len(), keys.key_pairs().len())
        })
    }

    /// Terminates an instance behind fleetform's back.
    fn terminate(&self, id: &str) {
        self.runtime.block_on(async {
            self.client
                .terminate_instances()
                .instance_ids(id)
                .send()
                .await
                .expect("terminate");
        });
    }
}

#[test]
fn a_plan_right_after_apply_counts_what_ec2_does_not_list_yet_and_makes_nothing_twice() {
    let (dir, fleet) = config("lag", "");
    // EC2 that lists nothing created in the last hour: longer than this test.
    let proxy =
        FaultProxy::eventually_consistent(endpoint(), Duration::from_secs(3600)).expect("proxy");
    let out = fleetform(&["apply", "--auto-approve"], dir.path(), &proxy.url, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ec2 = Ec2::connect();
    let launched = ec2.instances(&fleet);
    assert_eq!(launched.len(), 2, "{}", text(&out));

    // At once, through the lagging reads: nothing to do, and the plan says why.
    let (code, plan) = plan_json(dir.path(), &proxy.url, None);
    assert_eq!(
        plan["actions"],
        serde_json::json!([]),
        "nothing created or launched again"
    );
    assert_eq!(code, Some(0), "{plan:#}");
    assert!(
        proxy
            .tally()
            .get(&FaultClass::Unlisted)
            .copied()
            .unwrap_or(0)
            > 0,
        "the proxy hid what the apply made"
    );
    let warnings = unlisted_warnings(&plan);
    let instances = warnings
        .iter()
        .find(|m| m.starts_with("2 instances of worker_type.w in us-east-1"))
        .unwrap_or_else(|| panic!("a warning names the instances: {warnings:#?}"));
    for id in &launched {
        assert!(instances.contains(id.as_str()), "{id} in {instances}");
    }
    assert!(
        warnings
            .iter()
            .any(|m| m.starts_with("launch template [lt-") && m.contains("worker_type.w")),
        "{warnings:#?}"
    );
    assert!(
        warnings
            .iter()
            .any(|m| m.starts_with("key pair [key-") && m.contains("key_pair.workers")),
        "{warnings:#?}"
    );

    // Applying again through the same reads converges: EC2 holds what one apply made.
    let out = fleetform(&["apply", "--auto-approve"], dir.path(), &proxy.url, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("No changes to apply"), "{}", text(&out));
    assert_eq!(ec2.instances(&fleet), launched, "no extra launch");
    assert_eq!(
        ec2.templates_and_keys(&fleet),
        (1, 1),
        "one template, one key pair"
    );
}

#[test]
fn past_the_grace_period_an_instance_that_vanished_is_gone_and_replaced() {
    let (dir, fleet) = config("vanish", "  consistency_grace = \"5m\"");
    let applied = unix_now();
    let out = fleetform(
        &["apply", "--auto-approve"],
        dir.path(),
        endpoint(),
        Some(applied),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ec2 = Ec2::connect();
    let launched = ec2.instances(&fleet);
    assert_eq!(launched.len(), 2);
    let gone = &launched[0];
    ec2.terminate(gone);

    // A minute later it could still be EC2 lagging: it counts as running.
    let (code, plan) = plan_json(dir.path(), endpoint(), Some(applied + 60));
    assert_eq!(plan["summary"]["launch"], 0, "{plan:#}");
    assert_eq!(code, Some(0), "{plan:#}");
    let warnings = unlisted_warnings(&plan);
    assert!(
        warnings.iter().any(
            |m| m.starts_with("1 instance of worker_type.w in us-east-1")
                && m.contains(gone.as_str())
                && m.contains("until 5m after its creation")
        ),
        "{warnings:#?}"
    );

    // Once the grace period has passed, what EC2 does not list is gone.
    let (code, plan) = plan_json(dir.path(), endpoint(), Some(applied + 301));
    assert_eq!(code, Some(2), "{plan:#}");
    assert_eq!(plan["summary"]["launch"], 1, "{plan:#}");
    assert!(unlisted_warnings(&plan).is_empty(), "{plan:#}");
    let out = fleetform(
        &["apply", "--auto-approve"],
        dir.path(),
        endpoint(),
        Some(applied + 301),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let now = ec2.instances(&fleet);
    assert_eq!(now.len(), 2, "replaced up to min");
    assert!(!now.contains(gone));
}

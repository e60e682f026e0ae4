//! `fleetform output` end to end against the local EC2 endpoint: a fleet
//! with a network and two instance types (one with a launch template of its
//! own) is applied; `output --json` is checked against
//! schemas/output.schema.json and against what EC2 holds, read through EC2's
//! own API; the Taskcluster example (examples/provisioners/) turns it into
//! worker pools whose launch configs name the right template per subnet and
//! instance type. Before any apply, output is a diagnostic and exit 1.

use aws_sdk_ec2::types::Filter;
use fleetform_test_support::cli;
use fleetform_test_support::cli::{block_on, text};
use fleetform_test_support::network::TestNetwork;
use fleetform_test_support::{endpoint, repo_root, unique_fleet};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-785db401";
/// An id with a `/`, as Taskcluster's pool ids have.
const ID: &str = "gecko-t/t-linux";

/// A fleet of one worker type `linux` (id [`ID`]) in a network over `net`'s
/// subnets, with `m5.large` (weight 1, the worker type's template) and
/// `c5.large` (weight 2, a volume of its own, so a template of its own,
/// excluded from the second zone).
fn config(fleet: &str, subnets: &[(String, String)], group: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let subnet_lines: String = subnets
        .iter()
        .map(|(zone, id)| format!("    \"{zone}\" = \"{id}\"\n"))
        .collect();
    let excluded = &subnets[1].0;
    let hcl = format!(
        r#"fleet "{fleet}" {{
  account_id = "123456789012"
  regions    = ["{REGION}"]
}}

ami_set "linux" {{
  images = {{
    "{REGION}" = "{IMAGE}"
  }}
}}

network "untrusted" {{
  subnets = {{
{subnet_lines}  }}
  security_groups = {{
    "{REGION}" = ["{group}"]
  }}
  exclude = {{
    "{excluded}" = ["c5"]
  }}
}}

worker_type "linux" {{
  name    = "{ID}"
  ami_set = ami_set.linux
  network = network.untrusted
  market  = "spot"

  instance_type "m5.large" {{ capacity = 1 }}
  instance_type "c5.large" {{
    capacity = 2
    volume "/dev/xvdb" {{
      size_gb = 200
      type    = "gp3"
    }}
  }}

  capacity {{
    min = 0
    max = 6
  }}
}}
"#
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    dir
}

fn fleetform_at(url: &str, args: &[&str], dir: &Path) -> Output {
    cli::run_at(env!("CARGO_BIN_EXE_fleetform"), url, args, dir)
}

/// Runs `program args` with `input` on stdin.
fn run_with_input(program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("waits")
}

/// The python of the local endpoint's virtualenv, which has the
/// `jsonschema` package (moto's server depends on it).
fn venv_python() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/dev-ec2"))
        .arg("python")
        .stderr(Stdio::inherit())
        .output()
        .expect("runs scripts/dev-ec2");
    assert!(out.status.success(), "scripts/dev-ec2 python failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Validates `document` against schemas/output.schema.json (JSON Schema
/// 2020-12, with the `jsonschema` package); the errors, if any.
fn schema_errors(document: &[u8]) -> String {
    let schema = repo_root().join("schemas/output.schema.json");
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
errors = [f"{list(e.absolute_path)}: {e.message}"
          for e in jsonschema.Draft202012Validator(schema).iter_errors(json.load(sys.stdin))]
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;
    let out = run_with_input(
        &venv_python(),
        &["-c", script, &schema.to_string_lossy()],
        document,
    );
    if out.status.success() {
        String::new()
    } else {
        format!("{}{}", text(&out), "(schema check failed)")
    }
}

/// EC2 name -> (id, default version) of the fleet's launch templates, as EC2 reports them.
fn templates_of(net: &TestNetwork, fleet: &str) -> BTreeMap<String, (String, i64)> {
    block_on(async {
        let out = net
            .ec2()
            .describe_launch_templates()
            .filters(
                Filter::builder()
                    .name("tag:fleetform:fleet")
                    .values(fleet)
                    .build(),
            )
            .send()
            .await
            .expect("describe launch templates");
        out.launch_templates()
            .iter()
            .map(|t| {
                (
                    t.launch_template_name().unwrap_or_default().to_string(),
                    (
                        t.launch_template_id().unwrap_or_default().to_string(),
                        t.default_version_number().unwrap_or_default(),
                    ),
                )
            })
            .collect()
    })
}

fn str_of<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string in {value}"))
}

#[test]
fn output_hands_provisioners_the_applied_templates_subnets_and_instance_types() {
    let fleet = unique_fleet("output");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let group = net
        .group("untrusted")
        .expect("an untrusted group")
        .to_string();
    let dir = config(&fleet, &net.subnets, &group);
    let out = fleetform_at(endpoint(), &["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));

    // Output reads no cloud: an endpoint nothing listens on changes nothing.
    let out = fleetform_at("http://127.0.0.1:9", &["output", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let errors = schema_errors(&out.stdout);
    assert!(errors.is_empty(), "{errors}\n{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["format_version"], "1");
    assert_eq!(doc["fleet"], fleet.as_str());
    assert_eq!(doc["state_version"], 1);

    let ec2 = templates_of(&net, &fleet);
    let own = ec2
        .get(&format!("{fleet}.{ID}"))
        .unwrap_or_else(|| panic!("the worker type's template in EC2: {ec2:?}"));
    let c5 = ec2
        .get(&format!("{fleet}.{ID}.c5.large"))
        .unwrap_or_else(|| panic!("c5.large's own template in EC2: {ec2:?}"));
    assert_ne!(own.0, c5.0);

    let wts = doc["worker_types"].as_array().expect("worker types");
    assert_eq!(wts.len(), 1, "{doc}");
    let wt = &wts[0];
    assert_eq!(str_of(wt, "id"), ID);
    assert_eq!(str_of(wt, "address"), "worker_type.linux");
    assert_eq!(str_of(wt, "scaling"), "direct");
    assert_eq!(wt["capacity"]["max"], 6);
    let region = &wt["regions"][0];
    assert_eq!(str_of(region, "region"), REGION);
    let template = &region["launch_template"];
    assert_eq!(str_of(template, "id"), own.0, "{region}");
    assert_eq!(template["default_version"], own.1, "{region}");
    let subnets: Vec<(String, String)> = region["subnets"]
        .as_array()
        .expect("subnets")
        .iter()
        .map(|s| {
            (
                str_of(s, "zone").to_string(),
                str_of(s, "subnet_id").to_string(),
            )
        })
        .collect();
    assert_eq!(subnets, net.subnets);
    assert_eq!(region["security_group_ids"], serde_json::json!([group]));
    assert_eq!(
        (&region["min"], &region["max"]),
        (&Value::from(0), &Value::from(6))
    );
    assert!(region["auto_scaling_group"].is_null(), "{region}");
    let types: BTreeMap<&str, (&Value, &str, bool)> = region["instance_types"]
        .as_array()
        .expect("instance types")
        .iter()
        .map(|t| {
            (
                str_of(t, "instance_type"),
                (
                    &t["weight"],
                    str_of(&t["launch_template"], "id"),
                    t["own_template"] == true,
                ),
            )
        })
        .collect();
    assert_eq!(types["m5.large"], (&Value::from(1), own.0.as_str(), false));
    assert_eq!(types["c5.large"], (&Value::from(2), c5.0.as_str(), true));

    // The Taskcluster example: one pool, one launch config per subnet and
    // instance type, each naming the template its instances launch from.
    let script = repo_root().join("examples/provisioners/taskcluster_pools.py");
    let pools = run_with_input(
        "python3",
        &[&script.to_string_lossy(), "--provider-id", "aws"],
        &out.stdout,
    );
    assert!(pools.status.success(), "{}", text(&pools));
    let pools: Value = serde_json::from_slice(&pools.stdout).expect("JSON pools");
    let list = pools["workerPools"].as_array().expect("pools");
    assert_eq!(list.len(), 1, "{pools}");
    let pool = &list[0];
    assert_eq!(str_of(pool, "workerPoolId"), ID);
    assert_eq!(str_of(pool, "providerId"), "aws");
    assert_eq!(
        (
            &pool["config"]["minCapacity"],
            &pool["config"]["maxCapacity"]
        ),
        (&Value::from(0), &Value::from(6))
    );
    let got: BTreeSet<(String, String, String, String, u64)> = pool["config"]["launchConfigs"]
        .as_array()
        .expect("launch configs")
        .iter()
        .map(|c| {
            let lc = &c["launchConfig"];
            assert_eq!(str_of(c, "region"), REGION);
            (
                str_of(lc, "SubnetId").to_string(),
                str_of(lc, "InstanceType").to_string(),
                str_of(&lc["LaunchTemplate"], "LaunchTemplateId").to_string(),
                str_of(&lc["LaunchTemplate"], "Version").to_string(),
                c["capacityPerInstance"].as_u64().expect("a weight"),
            )
        })
        .collect();
    let mut expected = BTreeSet::new();
    for (n, (_, subnet)) in net.subnets.iter().enumerate() {
        expected.insert((
            subnet.clone(),
            "m5.large".to_string(),
            own.0.clone(),
            own.1.to_string(),
            1,
        ));
        // The network keeps c5 out of the second zone.
        if n != 1 {
            expected.insert((
                subnet.clone(),
                "c5.large".to_string(),
                c5.0.clone(),
                c5.1.to_string(),
                2,
            ));
        }
    }
    assert_eq!(got, expected, "{pools}");
    assert_eq!(pools["skipped"], serde_json::json!([]));

    // The text: per worker type and region.
    let out = fleetform_at("http://127.0.0.1:9", &["output"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains(&format!("worker_type.linux (id {ID})")),
        "{human}"
    );
    assert!(human.contains(&own.0), "{human}");
    assert!(human.contains(&format!("own template {}", c5.0)), "{human}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("differs"),
        "{}",
        text(&out)
    );

    // A configuration changed since the apply: the same ids, and a warning
    // on stderr (the JSON on stdout stays whole).
    let file = dir.path().join("fleet.hcl");
    let mut hcl = std::fs::read_to_string(&file).expect("read");
    hcl.push_str("\n# edited after the apply\n");
    std::fs::write(&file, hcl).expect("write");
    let out = fleetform_at("http://127.0.0.1:9", &["output", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the configuration differs from the one version 1 applied"),
        "{err}"
    );
    let after: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(after, doc);
}

#[test]
fn output_before_any_apply_is_a_diagnostic_and_exit_1() {
    let subnets = vec![
        ("us-east-1a".to_string(), "subnet-0aaaaaaa".to_string()),
        ("us-east-1b".to_string(), "subnet-0bbbbbbb".to_string()),
    ];
    let dir = config(&unique_fleet("output-none"), &subnets, "sg-0aaaaaaa");
    for json in [false, true] {
        let args: &[&str] = if json {
            &["output", "--json"]
        } else {
            &["output"]
        };
        let out = fleetform_at("http://127.0.0.1:9", args, dir.path());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(out.stdout.is_empty(), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("nothing applied yet"), "{err}");
        assert!(err.contains("run `fleetform apply` first"), "{err}");
        assert!(err.contains("not-applied"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// The Taskcluster example on a contract built without a cloud: an `asg`
/// worker type and a region no apply has made the template of are skipped,
/// a template without a recorded default version launches `$Default`, and
/// bounds over all regions are the pool's.
#[test]
fn the_taskcluster_example_skips_asg_worker_types_and_unapplied_regions() {
    use fleetform_engine::inventory::{Object, ObjectKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let hcl = r#"fleet "tc" {
  account_id = "123456789012"
  regions    = ["us-east-1", "us-west-2"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-11111111"
    "us-west-2" = "ami-22222222"
  }
}

network "n" {
  subnets = {
    "us-east-1a" = "subnet-0aaaaaaa"
    "us-west-2a" = "subnet-0bbbbbbb"
  }
  security_groups = {
    "us-east-1" = ["sg-0aaaaaaa"]
    "us-west-2" = ["sg-0bbbbbbb"]
  }
}

worker_type "builds" {
  ami_set = ami_set.linux
  network = network.n
  scaling = "asg"
  market  = "on-demand"
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 0
    max = 4
  }
}

worker_type "tests" {
  name    = "gecko-t/t-linux"
  ami_set = ami_set.linux
  network = network.n
  market  = "spot"
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min   = 2
    max   = 30
    scope = "worker_type"
  }
}
"#;
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    let config = loaded
        .config
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    // Only us-east-1's template of `tests` was recorded, without its default version.
    let observed = vec![Object {
        address: "worker_type.tests[\"us-east-1\"]".into(),
        region: "us-east-1".into(),
        kind: ObjectKind::LaunchTemplate,
        id: "lt-0east".into(),
        name: Some("tc.gecko-t/t-linux".into()),
        detail: "tc.gecko-t/t-linux default v2 of 2".into(),
        managed: true,
        default_version: None,
    }];
    let contract = fleetform_engine::output::build(&config, &observed, 4);
    let document = serde_json::to_vec(&contract).expect("JSON");
    let errors = schema_errors(&document);
    assert!(errors.is_empty(), "{errors}");

    let script = repo_root().join("examples/provisioners/taskcluster_pools.py");
    let out = run_with_input(
        "python3",
        &[&script.to_string_lossy(), "--provider-id", "aws-ci"],
        &document,
    );
    assert!(out.status.success(), "{}", text(&out));
    let pools: Value = serde_json::from_slice(&out.stdout).expect("JSON pools");
    let list = pools["workerPools"].as_array().expect("pools");
    assert_eq!(list.len(), 1, "{pools}");
    let pool = &list[0];
    assert_eq!(str_of(pool, "workerPoolId"), "gecko-t/t-linux");
    assert_eq!(str_of(pool, "providerId"), "aws-ci");
    assert_eq!(pool["config"]["minCapacity"], 2);
    assert_eq!(pool["config"]["maxCapacity"], 30);
    assert_eq!(
        pool["config"]["launchConfigs"],
        serde_json::json!([{
            "region": "us-east-1",
            "capacityPerInstance": 1,
            "launchConfig": {
                "LaunchTemplate": {"LaunchTemplateId": "lt-0east", "Version": "$Default"},
                "SubnetId": "subnet-0aaaaaaa",
                "InstanceType": "m5.large"
            }
        }])
    );
    let skipped: Vec<(&str, Option<&str>)> = pools["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|s| (str_of(s, "workerPoolId"), s["region"].as_str()))
        .collect();
    assert_eq!(
        skipped,
        [("builds", None), ("gecko-t/t-linux", Some("us-west-2"))],
        "{pools}"
    );

    // Anything but the output contract is refused, saying what it expects.
    let out = run_with_input(
        "python3",
        &[&script.to_string_lossy(), "--provider-id", "aws-ci"],
        br#"{"format_version": "2"}"#,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fleetform output --json"),
        "{}",
        text(&out)
    );
}

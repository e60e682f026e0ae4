//! Auto Scaling groups and bounds over regions end to end, through the real
//! binary against the local endpoint's EC2 and Auto Scaling APIs: what a
//! group holds after apply (read back through Auto Scaling's own API), a
//! no-op plan after it, a lowered max and what it terminates, a template
//! change with a refresh and its rollback, a blind region, and pool-wide
//! bounds over three regions with one of them blind.

use aws_sdk_autoscaling::types::AutoScalingGroup;
use fleetform_test_support::cli;
use fleetform_test_support::cli::{block_on, text};
use fleetform_test_support::fault::FaultProxy;
use fleetform_test_support::network::TestNetwork;
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-785db401";

/// An asg worker type `gecko` in `net`: `m5.large` (1) and `m5.xlarge` (2),
/// spot at most 0.5, lifetime 7 days, bounds `min`..`max`; `extra` goes in
/// the worker type block.
fn asg_config(fleet: &str, net: &TestNetwork, min: u32, max: u32, extra: &str) -> String {
    let subnets: String = net
        .subnets
        .iter()
        .map(|(zone, id)| format!("    \"{zone}\" = \"{id}\"\n"))
        .collect();
    let group = net.group("untrusted").expect("an untrusted group");
    format!(
        r#"fleet "{fleet}" {{
  account_id = "123456789012"
  regions    = ["{REGION}"]
  limits {{
    max_terminations = 100
  }}
}}

ami_set "linux" {{
  images = {{
    "{REGION}" = "{IMAGE}"
  }}
}}

network "untrusted" {{
  subnets = {{
{subnets}  }}
  security_groups = {{
    "{REGION}" = ["{group}"]
  }}
}}

worker_type "gecko" {{
  ami_set      = ami_set.linux
  network      = network.untrusted
  scaling      = "asg"
  market       = "spot"
  max_lifetime = "7d"
  tags         = {{ team = "ci" }}

  spot {{
    max_price = "0.50"
  }}

  instance_type "m5.large" {{ capacity = 1 }}
  instance_type "m5.xlarge" {{ capacity = 2 }}

  capacity {{
    min = {min}
    max = {max}
  }}
{extra}
}}
"#
    )
}

fn write(dir: &Path, hcl: &str) {
    std::fs::write(dir.join("fleet.hcl"), hcl).expect("write");
}

fn fleetform_at(url: &str, args: &[&str], dir: &Path) -> Output {
    cli::run_at(env!("CARGO_BIN_EXE_fleetform"), url, args, dir)
}

fn fleetform(args: &[&str], dir: &Path) -> Output {
    fleetform_at(endpoint(), args, dir)
}

fn autoscaling(region: &str) -> aws_sdk_autoscaling::Client {
    let config = block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .endpoint_url(endpoint())
            .credentials_provider(aws_sdk_autoscaling::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load(),
    );
    aws_sdk_autoscaling::Client::new(&config)
}

/// The group `name` as Auto Scaling reports it.
fn group(region: &str, name: &str) -> Option<AutoScalingGroup> {
    let client = autoscaling(region);
    block_on(async {
        client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("describe groups")
            .auto_scaling_groups()
            .first()
            .cloned()
    })
}

fn plan_json(dir: &Path) -> serde_json::Value {
    let out = fleetform(&["plan", "--json"], dir);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn group_actions(plan: &serde_json::Value) -> Vec<&serde_json::Value> {
    plan["actions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["resource"] == "auto_scaling_group")
                .collect()
        })
        .unwrap_or_default()
}

fn template_id(net: &TestNetwork, name: &str) -> String {
    block_on(async {
        net.ec2()
            .describe_launch_templates()
            .launch_template_names(name)
            .send()
            .await
            .expect("templates")
            .launch_templates()
            .first()
            .and_then(|t| t.launch_template_id())
            .map(str::to_string)
            .expect("the template exists")
    })
}

#[test]
fn a_group_holds_its_policy_weights_zones_bounds_lifetime_and_tags_then_plans_no_op() {
    let fleet = unique_fleet("asg-make");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &asg_config(&fleet, &net, 2, 10, ""));
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));

    let name = format!("{fleet}.gecko");
    let g = group(REGION, &name).expect("the group exists");
    assert_eq!(g.min_size(), Some(2));
    // Weights up to 2: MaxSize is max - 1 so that a weighted launch never passes max.
    assert_eq!(g.max_size(), Some(9));
    assert_eq!(g.max_instance_lifetime(), Some(7 * 86_400));
    let policy = g
        .mixed_instances_policy()
        .expect("a mixed instances policy");
    let template = policy.launch_template().expect("its launch template");
    let spec = template
        .launch_template_specification()
        .expect("template spec");
    assert_eq!(
        spec.launch_template_id(),
        Some(template_id(&net, &name).as_str())
    );
    assert_eq!(spec.version(), Some("$Default"));
    let weights: BTreeSet<(String, String)> = template
        .overrides()
        .iter()
        .map(|o| {
            (
                o.instance_type().unwrap_or_default().to_string(),
                o.weighted_capacity().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        weights,
        BTreeSet::from([
            ("m5.large".to_string(), "1".to_string()),
            ("m5.xlarge".to_string(), "2".to_string())
        ])
    );
    let distribution = policy.instances_distribution().expect("distribution");
    assert_eq!(
        distribution.on_demand_percentage_above_base_capacity(),
        Some(0)
    );
    assert_eq!(distribution.spot_max_price(), Some("0.5"));
    let zones: BTreeSet<&str> = g
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .collect();
    let ours: BTreeSet<&str> = net.subnets.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(zones, ours);
    let tags: Vec<(String, String, bool)> = g
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
                t.propagate_at_launch().unwrap_or(false),
            )
        })
        .collect();
    for key in ["fleetform:fleet", "fleetform:address", "team"] {
        assert!(
            tags.iter().any(|(k, _, propagate)| k == key && *propagate),
            "{key} propagated: {tags:?}"
        );
    }

    // What was applied is the configuration: nothing to do, though Auto
    // Scaling launched the group's min itself.
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // The provisioner contract names the group, its bounds and the template.
    let out = fleetform(&["output", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let contract: serde_json::Value = serde_json::from_slice(&out.stdout).expect("output JSON");
    let here = &contract["worker_types"][0]["regions"][0];
    assert_eq!(
        contract["worker_types"][0]["scaling"], "asg",
        "{contract:#}"
    );
    assert_eq!(here["auto_scaling_group"], name.as_str(), "{contract:#}");
    assert_eq!(here["max_size"], 9);
    assert_eq!(
        (here["min"].as_u64(), here["max"].as_u64()),
        (Some(2), Some(10))
    );
    assert_eq!(
        here["launch_template"]["id"],
        template_id(&net, &name).as_str(),
        "{contract:#}"
    );
}

#[test]
fn lowering_max_clamps_the_group_and_shows_what_auto_scaling_terminates() {
    let fleet = unique_fleet("asg-lower");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &asg_config(&fleet, &net, 6, 10, ""));
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("{fleet}.gecko");
    assert_eq!(
        group(REGION, &name).and_then(|g| g.desired_capacity()),
        Some(6)
    );

    // max 4 with weights up to 2: MaxSize 3, desired 6 -> 3.
    write(dir.path(), &asg_config(&fleet, &net, 0, 4, ""));
    let plan = plan_json(dir.path());
    let actions = group_actions(&plan);
    assert_eq!(actions.len(), 1, "{plan:#}");
    let update = actions[0];
    assert_eq!(update["action"], "update");
    assert_eq!(update["auto_scaling_group"]["max_size"], 3);
    assert_eq!(update["auto_scaling_group"]["desired_capacity"], 3);
    assert_eq!(update["count"], 3, "{update:#}");
    assert_eq!(plan["summary"]["terminate"], 3);

    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let g = group(REGION, &name).expect("group");
    assert_eq!((g.max_size(), g.desired_capacity()), (Some(3), Some(3)));
}

#[test]
fn a_template_change_refreshes_once_and_rollback_restores_what_the_group_launches() {
    let fleet = unique_fleet("asg-refresh");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = tempfile::tempdir().expect("tempdir");
    let refresh = "  instance_refresh {\n    min_healthy_percentage = 50\n  }";
    write(dir.path(), &asg_config(&fleet, &net, 1, 4, refresh));
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("{fleet}.gecko");
    let refreshes = || {
        let client = autoscaling(REGION);
        block_on(async {
            client
                .describe_instance_refreshes()
                .auto_scaling_group_name(&name)
                .send()
                .await
                .expect("refreshes")
                .instance_refreshes()
                .len()
        })
    };
    assert_eq!(refreshes(), 0, "a new group is not refreshed");

    write(
        dir.path(),
        &asg_config(&fleet, &net, 1, 4, refresh).replace("team = \"ci\"", "team = \"release\""),
    );
    let plan = plan_json(dir.path());
    let kinds: Vec<&str> = group_actions(&plan)
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(kinds, ["update", "refresh"], "{plan:#}");
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(refreshes(), 1);

    // Rolled back: the template's default version launches the old tags
    // again, which is what the group (at `$Default`) launches next.
    let out = fleetform(&["rollback", "--to", "1", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let team = block_on(async {
        net.ec2()
            .describe_launch_template_versions()
            .launch_template_name(&name)
            .versions("$Default")
            .send()
            .await
            .expect("versions")
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .map(|d| {
                d.tag_specifications()
                    .iter()
                    .flat_map(|s| s.tags())
                    .filter(|t| t.key() == Some("team"))
                    .filter_map(|t| t.value().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    });
    assert!(
        team.iter().all(|t| t == "ci") && !team.is_empty(),
        "{team:?}"
    );
    let g = group(REGION, &name).expect("group");
    let spec = g
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
        .and_then(|t| t.launch_template_specification())
        .and_then(|s| s.version())
        .map(str::to_string);
    assert_eq!(spec.as_deref(), Some("$Default"));
}

#[test]
fn a_region_whose_groups_cannot_be_read_changes_no_group() {
    let fleet = unique_fleet("asg-blind");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &asg_config(&fleet, &net, 0, 4, ""));
    let proxy = FaultProxy::start(
        endpoint(),
        Arc::new(|_: &str, action: &str| action == "DescribeAutoScalingGroups"),
    )
    .expect("proxy");
    let out = fleetform_at(&proxy.url, &["plan", "--json"], dir.path());
    let plan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert!(group_actions(&plan).is_empty(), "{plan:#}");
    let incomplete = plan["incomplete"].as_array().expect("incomplete");
    assert!(
        incomplete
            .iter()
            .any(|i| i["kind"] == "auto_scaling_groups" && i["region"] == REGION),
        "{incomplete:?}"
    );
    assert!(
        plan["diagnostics"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["code"] == "FF005")),
        "{plan:#}"
    );
    assert!(group(REGION, &format!("{fleet}.gecko")).is_none());
}

const REGIONS: [&str; 3] = ["us-east-1", "us-west-1", "us-west-2"];

fn pool_config(fleet: &str) -> String {
    let images: String = REGIONS
        .iter()
        .map(|r| format!("    \"{r}\" = \"{IMAGE}\"\n"))
        .collect();
    format!(
        r#"fleet "{fleet}" {{
  account_id = "123456789012"
  regions    = ["us-east-1", "us-west-1", "us-west-2"]
}}

ami_set "linux" {{
  images = {{
{images}  }}
}}

worker_type "pool" {{
  ami_set = ami_set.linux

  instance_type "m5.large" {{ capacity = 1 }}

  capacity {{
    min   = 7
    max   = 7
    scope = "worker_type"
  }}
}}
"#
    )
}

#[test]
fn pool_wide_bounds_over_three_regions_hold_nothing_back_but_a_blind_region() {
    let fleet = unique_fleet("pool");
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), &pool_config(&fleet));

    // One region unreadable: the worker type is blind everywhere.
    let proxy = FaultProxy::start(
        endpoint(),
        Arc::new(|region: &str, action: &str| {
            region == "us-west-1" && action == "DescribeInstances"
        }),
    )
    .expect("proxy");
    let out = fleetform_at(&proxy.url, &["plan", "--json"], dir.path());
    let plan: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(plan["summary"]["launch"], 0, "{plan:#}");

    // All read: 7 units over three empty regions, the remainder first.
    let plan = plan_json(dir.path());
    let launches: Vec<(String, u64)> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "launch")
        .map(|a| {
            (
                a["region"].as_str().unwrap_or_default().to_string(),
                a["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        launches,
        vec![
            ("us-east-1".to_string(), 3),
            ("us-west-1".to_string(), 2),
            ("us-west-2".to_string(), 2)
        ],
        "{plan:#}"
    );
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

#[test]
fn switching_a_running_worker_type_to_asg_and_back_terminates_nothing() {
    let fleet = unique_fleet("asg-switch");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = tempfile::tempdir().expect("tempdir");
    let asg = asg_config(&fleet, &net, 3, 10, "");
    let direct = asg.replace("  scaling      = \"asg\"\n", "");
    write(dir.path(), &direct);
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let running = || -> BTreeSet<String> {
        block_on(async {
            net.ec2()
                .describe_instances()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("tag:fleetform:fleet")
                        .values(&fleet)
                        .build(),
                )
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-state-name")
                        .values("pending")
                        .values("running")
                        .build(),
                )
                .send()
                .await
                .expect("instances")
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_id().map(str::to_string))
                .collect()
        })
    };
    let before = running();
    assert_eq!(before.len(), 3, "direct scaling launched min");

    write(dir.path(), &asg);
    let plan = plan_json(dir.path());
    assert_eq!(plan["summary"]["terminate"], 0, "{plan:#}");
    assert_eq!(plan["summary"]["launch"], 0, "{plan:#}");
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let name = format!("{fleet}.gecko");
    let g = group(REGION, &name).expect("the group exists");
    let members: BTreeSet<String> = g
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    assert_eq!(members, before, "the running instances were attached");
    assert_eq!((g.min_size(), g.desired_capacity()), (Some(3), Some(3)));
    assert_eq!(running(), before, "nothing was launched or terminated");
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // And back: the instances leave the group and keep running.
    write(dir.path(), &direct);
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(group(REGION, &name).is_none(), "the group is gone");
    assert_eq!(running(), before);
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

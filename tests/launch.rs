//! Launch configurations end to end against the local EC2 endpoint: a worker
//! type with a network, volumes, spot and metadata options is applied, and
//! what EC2 then holds (template versions, instances, volumes) is read back
//! through EC2's own API; broken networks and types EC2 does not offer are
//! refused at plan; a zone out of capacity falls through to the others.

use aws_sdk_ec2::types::Filter;
use fleetform_test_support::cli;
use fleetform_test_support::cli::{block_on, text};
use fleetform_test_support::fault::FaultProxy;
use fleetform_test_support::network::TestNetwork;
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Output;
use tempfile::TempDir;

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-785db401";

/// A fleet of one worker type `linux` in the network `net`, with
/// `instance_types` (HCL blocks), `min` and `max`, and `network_extra`
/// (HCL inside the network block, e.g. `exclude`).
fn config(
    fleet: &str,
    net: &TestNetwork,
    instance_types: &str,
    min: u32,
    max: u32,
    network_extra: &str,
) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let subnets: String = net
        .subnets
        .iter()
        .map(|(zone, id)| format!("    \"{zone}\" = \"{id}\"\n"))
        .collect();
    let group = net.group("untrusted").expect("an untrusted group");
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
{subnets}  }}
  security_groups = {{
    "{REGION}" = ["{group}"]
  }}
{network_extra}
}}

worker_type "linux" {{
  ami_set = ami_set.linux
  network = network.untrusted
  market  = "spot"

{instance_types}

  root_volume {{
    size_gb = 40
    type    = "gp3"
  }}
  volume "/dev/xvdb" {{
    size_gb = 100
    type    = "gp3"
  }}
  capacity {{
    min = {min}
    max = {max}
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

fn fleetform(args: &[&str], dir: &Path) -> Output {
    fleetform_at(endpoint(), args, dir)
}

/// One running instance of the fleet as EC2 reports it.
#[derive(Debug)]
struct Launched {
    id: String,
    instance_type: String,
    zone: String,
    subnet: String,
}

fn instances_of(net: &TestNetwork, fleet: &str) -> Vec<Launched> {
    block_on(async {
        let out = net
            .ec2()
            .describe_instances()
            .filters(
                Filter::builder()
                    .name("tag:fleetform:fleet")
                    .values(fleet)
                    .build(),
            )
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
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| Launched {
                id: i.instance_id().unwrap_or_default().to_string(),
                instance_type: i
                    .instance_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_string(),
                subnet: i.subnet_id().unwrap_or_default().to_string(),
            })
            .collect()
    })
}

#[test]
fn a_worker_type_launches_into_its_subnets_over_zones_with_its_template_fields() {
    let fleet = unique_fleet("launch-fields");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let dir = config(
        &fleet,
        &net,
        "  instance_type \"m5.large\" { capacity = 1 }\n  instance_type \"c5.large\" { capacity = 1 }",
        6,
        8,
        "",
    );
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));

    let launched = instances_of(&net, &fleet);
    assert_eq!(launched.len(), 6, "{launched:?}");
    let ours: BTreeSet<&str> = net.subnets.iter().map(|(_, id)| id.as_str()).collect();
    for i in &launched {
        assert!(
            ours.contains(i.subnet.as_str()),
            "{i:?} outside the network"
        );
        assert_eq!(net.subnet_in(&i.zone), Some(i.subnet.as_str()), "{i:?}");
    }
    let zones: BTreeSet<&str> = launched.iter().map(|i| i.zone.as_str()).collect();
    assert!(zones.len() >= 2, "spread over zones: {launched:?}");

    // The default version of the template, read back through EC2.
    let (data, volume_tags) = block_on(async {
        let versions = net
            .ec2()
            .describe_launch_template_versions()
            .launch_template_name(format!("{fleet}.linux"))
            .versions("$Default")
            .send()
            .await
            .expect("template versions");
        let data = versions
            .launch_template_versions()
            .first()
            .and_then(|v| v.launch_template_data())
            .cloned()
            .expect("default version data");
        let ids: Vec<String> = launched.iter().map(|i| i.id.clone()).collect();
        let volumes = net
            .ec2()
            .describe_volumes()
            .filters(
                Filter::builder()
                    .name("attachment.instance-id")
                    .set_values(Some(ids))
                    .build(),
            )
            .send()
            .await
            .expect("volumes");
        let tags: Vec<BTreeMap<String, String>> = volumes
            .volumes()
            .iter()
            .map(|v| {
                v.tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                    .collect()
            })
            .collect();
        (data, tags)
    });
    let group = net.group("untrusted").expect("group");
    let groups: Vec<&str> = data
        .security_group_ids()
        .iter()
        .map(String::as_str)
        .chain(
            data.network_interfaces()
                .iter()
                .flat_map(|n| n.groups())
                .map(String::as_str),
        )
        .collect();
    assert_eq!(groups, [group], "{data:?}");
    let devices: BTreeSet<&str> = data
        .block_device_mappings()
        .iter()
        .filter_map(|m| m.device_name())
        .collect();
    assert!(devices.contains("/dev/xvdb"), "{data:?}");
    assert_eq!(devices.len(), 2, "root and /dev/xvdb: {data:?}");
    let metadata = data.metadata_options().expect("metadata options");
    assert_eq!(
        metadata.http_tokens().map(|t| t.as_str()),
        Some("required"),
        "IMDSv2 by default"
    );
    assert_eq!(metadata.http_put_response_hop_limit(), Some(1));
    assert_eq!(
        data.instance_market_options()
            .and_then(|m| m.market_type())
            .map(|m| m.as_str()),
        Some("spot")
    );
    assert!(!volume_tags.is_empty(), "the instances have volumes");
    for tags in &volume_tags {
        assert_eq!(tags.get("fleetform:fleet"), Some(&fleet), "{volume_tags:?}");
    }

    // What was applied is what the configuration says: nothing left to do.
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path());
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

#[test]
fn an_excluded_type_never_lands_in_the_zone_that_excludes_it() {
    let fleet = unique_fleet("launch-exclude");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let (zone, _) = net.subnets[0].clone();
    let dir = config(
        &fleet,
        &net,
        "  instance_type \"m5.large\" { capacity = 1 }\n  instance_type \"c5.large\" { capacity = 1 }",
        6,
        6,
        &format!("  exclude = {{\n    \"{zone}\" = [\"m5\"]\n  }}"),
    );
    let out = fleetform(&["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let launched = instances_of(&net, &fleet);
    assert_eq!(launched.len(), 6, "{launched:?}");
    assert!(
        !launched
            .iter()
            .any(|i| i.zone == zone && i.instance_type == "m5.large"),
        "{launched:?}"
    );
    assert!(
        launched.iter().any(|i| i.zone == zone),
        "the zone still takes the other type: {launched:?}"
    );
}

#[test]
fn a_subnet_deleted_behind_fleetforms_back_is_ff012_and_nothing_launches() {
    let fleet = unique_fleet("launch-gone");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let (_, gone) = net.subnets[1].clone();
    block_on(net.ec2().delete_subnet().subnet_id(&gone).send()).expect("subnet deleted");
    let dir = config(
        &fleet,
        &net,
        "  instance_type \"m5.large\" { capacity = 1 }",
        2,
        4,
        "",
    );
    let out = fleetform(&["plan", "--json"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let diagnostics = plan["diagnostics"].as_array().expect("diagnostics");
    let network = diagnostics
        .iter()
        .find(|d| d["code"] == "FF012")
        .unwrap_or_else(|| panic!("FF012 in {diagnostics:?}"));
    assert!(
        network.to_string().contains(&gone),
        "names the subnet: {network}"
    );
    let launches: Vec<&serde_json::Value> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "launch")
        .collect();
    assert!(launches.is_empty(), "{launches:?}");
    let applied = fleetform(&["apply", "--auto-approve"], dir.path());
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    assert!(instances_of(&net, &fleet).is_empty());
}

#[test]
fn an_instance_type_no_zone_of_a_region_offers_is_ff013() {
    let fleet = unique_fleet("launch-offer");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    // The local endpoint, like EC2 there, offers no g3.4xlarge in us-east-1.
    let dir = config(
        &fleet,
        &net,
        "  instance_type \"m5.large\" { capacity = 1 }\n  instance_type \"g3.4xlarge\" { capacity = 1 }",
        1,
        2,
        "",
    );
    let out = fleetform(&["plan"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("FF013"), "{shown}");
    assert!(shown.contains("g3.4xlarge"), "{shown}");
    assert!(shown.contains("fleet.hcl:"), "points at the HCL: {shown}");
}

#[test]
fn a_zone_out_of_capacity_falls_through_to_the_other_zones_in_the_same_apply() {
    let fleet = unique_fleet("launch-ice");
    let net = TestNetwork::create_blocking(REGION, &fleet);
    let (dry_zone, dry_subnet) = net.subnets[0].clone();
    let proxy = FaultProxy::out_of_capacity_in(endpoint(), &dry_subnet).expect("proxy");
    let dir = config(
        &fleet,
        &net,
        "  instance_type \"m5.large\" { capacity = 1 }",
        6,
        6,
        "",
    );
    let out = fleetform_at(&proxy.url, &["apply", "--auto-approve"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(proxy.injected() > 0, "the zone was tried: {}", text(&out));
    let launched = instances_of(&net, &fleet);
    assert_eq!(launched.len(), 6, "{launched:?}");
    assert!(launched.iter().all(|i| i.zone != dry_zone), "{launched:?}");
}

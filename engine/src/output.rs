//! `fleetform output`: the provisioner contract. Per worker type and region,
//! what a provisioner (Taskcluster's worker manager, a custom scaler) needs to
//! launch into the fleet: the launch template (id, name, default version),
//! the subnets per zone, the security groups, the instance types with their
//! weights (and their own templates), the bounds, and the Auto Scaling group
//! where one is used.
//!
//! It reads no cloud: [`build`] combines the configuration with the objects
//! the latest recorded state version observed after its apply, as
//! Terraform's `output` reads its state. What the configuration declares but
//! no apply made yet has no ids (`null`). Its JSON follows
//! `schemas/output.schema.json`, versioned by `format_version` like the plan.

use crate::inventory::{Object, ObjectKind};
use crate::model::{address, CapacityScope, Config, Scaling, WorkerType};
use crate::plan::build::{launch_template_name, wanted_templates, TemplateOf};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Marks every property of an object schema required: every field of the
/// contract is always written, `null` where it has no value, so consumers
/// may rely on its presence.
fn every_field_required(schema: &mut schemars::Schema) {
    let names: Vec<serde_json::Value> = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|p| p.keys().cloned().map(serde_json::Value::String).collect())
        .unwrap_or_default();
    schema.insert("required".into(), serde_json::Value::Array(names));
}

/// The output of `fleetform output --json`: every worker type of the
/// configuration, per region, with the ids the last apply recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct Output {
    /// Version of this format (`"1"`); bumped on incompatible change, fields are only added within one.
    pub format_version: String,
    /// The fleet's name.
    pub fleet: String,
    /// The recorded state version the ids come from (the latest one).
    pub state_version: u64,
    /// Every worker type, by address.
    pub worker_types: Vec<OutputWorkerType>,
}

/// One worker type of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct OutputWorkerType {
    /// Its address, `worker_type.NAME`.
    pub address: String,
    /// Its id: what EC2 names carry (`<fleet>.<id>`) and what a provisioner
    /// names its pool after; it may hold `/` (`gecko-t/t-linux-large`).
    pub id: String,
    /// Who holds its bounds: `direct` (a provisioner or fleetform's applies
    /// launch and terminate) or `asg` (an Auto Scaling group per region).
    pub scaling: Scaling,
    /// Spot or on-demand.
    pub market: crate::model::Market,
    /// The declared capacity bounds, in capacity units.
    pub capacity: OutputCapacity,
    /// The name of the network it launches into; `null`: EC2's defaults (no
    /// subnets or security groups are named).
    pub network: Option<String>,
    /// Per region of the worker type, in declared order.
    pub regions: Vec<OutputRegion>,
}

/// The declared `capacity` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OutputCapacity {
    /// Fewest capacity units running (per region, or in all regions together).
    pub min: u32,
    /// Most capacity units running (per region, or in all regions together).
    pub max: u32,
    /// What the bounds hold over: `region` (each region on its own) or
    /// `worker_type` (all its regions together).
    pub scope: CapacityScope,
}

/// A launch template as the last apply recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct OutputTemplate {
    /// The launch template id (`lt-...`).
    pub id: String,
    /// Its EC2 name (`<fleet>.<id>`, or `<fleet>.<id>.<instance type>` for an instance type's own).
    pub name: String,
    /// Its default version, the one fleetform keeps current; `null` when
    /// the recorded version predates this field (launch `$Default` then).
    pub default_version: Option<i64>,
}

/// One subnet a worker type launches into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct OutputSubnet {
    /// Its availability zone (`us-east-1a`).
    pub zone: String,
    /// The subnet id (`subnet-...`).
    pub subnet_id: String,
}

/// One instance type of a worker type in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct OutputInstanceType {
    /// The EC2 instance type (`m5.large`).
    pub instance_type: String,
    /// Capacity units one instance provides (its weight, >= 1).
    pub weight: u32,
    /// Whether it has a launch template of its own (its volumes or user
    /// data differ from the worker type's).
    pub own_template: bool,
    /// The template instances of this type launch from: its own when it has
    /// one, else the worker type's; `null` when no apply made it yet.
    pub launch_template: Option<OutputTemplate>,
    /// Zones of the region's subnets where the network's `exclude` keeps
    /// this type from launching.
    pub excluded_zones: Vec<String>,
}

/// One worker type in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = every_field_required)]
pub struct OutputRegion {
    /// The region (`us-east-1`).
    pub region: String,
    /// The worker type's launch template here; `null` when no apply made it yet.
    pub launch_template: Option<OutputTemplate>,
    /// The network's subnets in this region, in zone order (empty without a network).
    pub subnets: Vec<OutputSubnet>,
    /// The network's security groups in this region (empty without a network).
    pub security_group_ids: Vec<String>,
    /// Whether instances get a public IPv4 address; `null`: the subnet's setting.
    pub assign_public_ip: Option<bool>,
    /// The instance types used here, in declared order.
    pub instance_types: Vec<OutputInstanceType>,
    /// The region's lower bound in capacity units: the worker type's own
    /// with per-region bounds, an Auto Scaling group's share of bounds over
    /// all regions; `null` for direct bounds over all regions (see `capacity`).
    pub min: Option<u32>,
    /// The region's upper bound in capacity units, as `min`.
    pub max: Option<u32>,
    /// `asg` only: the group's MaxSize (`max` less the heaviest weight but
    /// one, so weighted launches never pass `max`).
    pub max_size: Option<u32>,
    /// `asg` only: the Auto Scaling group's name, as recorded; `null` when
    /// no apply made it yet, and always for `direct`.
    pub auto_scaling_group: Option<String>,
}

/// The recorded launch template or group of `kind` in `region` tagged
/// `tag` (its regional address), else named `name` (the configuration's
/// EC2 name for it).
fn recorded<'a>(
    observed: &'a [Object],
    kind: ObjectKind,
    region: &str,
    tag: &str,
    name: &str,
) -> Option<&'a Object> {
    let here = || {
        observed
            .iter()
            .filter(move |o| o.kind == kind && o.region == region && o.managed)
    };
    here()
        .find(|o| o.address == tag)
        .or_else(|| here().find(|o| o.name() == Some(name)))
}

fn template(object: &Object) -> OutputTemplate {
    OutputTemplate {
        id: object.id.clone(),
        name: object.name().unwrap_or_default().to_string(),
        default_version: object.default_version,
    }
}

/// The contract for `config`, with the ids of `observed` (what state
/// version `state_version` recorded after its apply).
pub fn build(config: &Config, observed: &[Object], state_version: u64) -> Output {
    Output {
        format_version: crate::formats::FORMAT_VERSION.to_string(),
        fleet: config.fleet.name.clone(),
        state_version,
        worker_types: config
            .worker_types
            .values()
            .map(|wt| worker_type(config, wt, observed))
            .collect(),
    }
}

fn worker_type(config: &Config, wt: &WorkerType, observed: &[Object]) -> OutputWorkerType {
    OutputWorkerType {
        address: address::worker_type(&wt.name),
        id: wt.id().to_string(),
        scaling: wt.scaling,
        market: wt.market,
        capacity: OutputCapacity {
            min: wt.capacity.min,
            max: wt.capacity.max,
            scope: wt.capacity.scope,
        },
        network: wt.network.clone(),
        regions: wt
            .regions
            .iter()
            .map(|region| in_region(config, wt, region, observed))
            .collect(),
    }
}

fn in_region(config: &Config, wt: &WorkerType, region: &str, observed: &[Object]) -> OutputRegion {
    let templates = wanted_templates(config, wt, region);
    let find_template = |tag: &str, name: &str| {
        recorded(observed, ObjectKind::LaunchTemplate, region, tag, name).map(template)
    };
    let own_template = templates
        .first()
        .and_then(|(_, tag, name, _)| find_template(tag, name));
    let network = wt.network.as_deref().and_then(|n| config.networks.get(n));
    let subnets: Vec<OutputSubnet> = network
        .map(|n| {
            n.subnets_in(region)
                .map(|(zone, subnet)| OutputSubnet {
                    zone: zone.to_string(),
                    subnet_id: subnet.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    let instance_types = wt
        .instance_types_in(region)
        .map(|it| {
            let own = templates.iter().find_map(|(_, tag, name, of)| match of {
                TemplateOf::InstanceType(t) if t.name == it.name => Some((tag, name)),
                _ => None,
            });
            OutputInstanceType {
                instance_type: it.name.clone(),
                weight: it.capacity,
                own_template: own.is_some(),
                launch_template: match own {
                    Some((tag, name)) => find_template(tag, name),
                    None => own_template.clone(),
                },
                excluded_zones: subnets
                    .iter()
                    .filter(|s| network.is_some_and(|n| n.excludes(&s.zone, &it.name)))
                    .map(|s| s.zone.clone())
                    .collect(),
            }
        })
        .collect();
    let (min, max, max_size, auto_scaling_group) = match (wt.scaling, wt.capacity.scope) {
        (Scaling::Direct, CapacityScope::Region) => {
            (Some(wt.capacity.min), Some(wt.capacity.max), None, None)
        }
        (Scaling::Direct, CapacityScope::WorkerType) => (None, None, None, None),
        (Scaling::Asg, _) => {
            let group = crate::plan::groups::planned_group(config, wt, region, &Default::default());
            let recorded_group = recorded(
                observed,
                ObjectKind::AutoScalingGroup,
                region,
                &address::worker_type_in(&wt.name, region),
                &launch_template_name(config, wt),
            )
            .map(|g| g.name().unwrap_or(&g.id).to_string());
            (
                Some(group.min),
                Some(group.max),
                Some(group.max_size),
                recorded_group,
            )
        }
    };
    OutputRegion {
        region: region.to_string(),
        launch_template: own_template,
        subnets,
        security_group_ids: network
            .and_then(|n| n.security_groups.get(region).cloned())
            .unwrap_or_default(),
        assign_public_ip: network.and_then(|n| n.assign_public_ip),
        instance_types,
        min,
        max,
        max_size,
        auto_scaling_group,
    }
}

fn template_text(t: Option<&OutputTemplate>) -> String {
    match t {
        Some(t) => format!(
            "{} {} (default version {})",
            t.id,
            t.name,
            t.default_version
                .map_or_else(|| "not recorded".to_string(), |v| v.to_string())
        ),
        None => "not applied yet".to_string(),
    }
}

/// The contract as readable lines: per worker type, per region.
pub fn human(output: &Output) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet {}, from state version {}",
        output.fleet, output.state_version
    );
    for wt in &output.worker_types {
        let scope = match wt.capacity.scope {
            CapacityScope::Region => "per region",
            CapacityScope::WorkerType => "over all its regions",
        };
        let scaling = match wt.scaling {
            Scaling::Direct => "direct",
            Scaling::Asg => "asg",
        };
        let _ = writeln!(
            out,
            "\n{} (id {}): {scaling} scaling, capacity {}..{} {scope}",
            wt.address, wt.id, wt.capacity.min, wt.capacity.max
        );
        for r in &wt.regions {
            let _ = writeln!(out, "  {}", r.region);
            let _ = writeln!(
                out,
                "    launch template   {}",
                template_text(r.launch_template.as_ref())
            );
            if wt.network.is_none() {
                let _ = writeln!(out, "    network           none (EC2's defaults)");
            } else {
                let subnets: Vec<String> = r
                    .subnets
                    .iter()
                    .map(|s| format!("{} {}", s.zone, s.subnet_id))
                    .collect();
                let _ = writeln!(out, "    subnets           {}", list(&subnets));
                let _ = writeln!(out, "    security groups   {}", list(&r.security_group_ids));
                let public = match r.assign_public_ip {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "the subnet's setting",
                };
                let _ = writeln!(out, "    public IPv4       {public}");
            }
            for it in &r.instance_types {
                let template = if it.own_template {
                    format!(
                        ", own template {}",
                        template_text(it.launch_template.as_ref())
                    )
                } else {
                    String::new()
                };
                let excluded = if it.excluded_zones.is_empty() {
                    String::new()
                } else {
                    format!(", not in {}", it.excluded_zones.join(", "))
                };
                let _ = writeln!(
                    out,
                    "    instance type     {} weight {}{template}{excluded}",
                    it.instance_type, it.weight
                );
            }
            match (r.min, r.max) {
                (Some(min), Some(max)) => {
                    let _ = writeln!(out, "    bounds            {min}..{max}");
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "    bounds            over all regions ({}..{})",
                        wt.capacity.min, wt.capacity.max
                    );
                }
            }
            if wt.scaling == Scaling::Asg {
                let _ = writeln!(
                    out,
                    "    Auto Scaling      {} (max size {})",
                    r.auto_scaling_group.as_deref().unwrap_or("not applied yet"),
                    r.max_size
                        .map_or_else(|| "-".to_string(), |m| m.to_string())
                );
            }
        }
    }
    out
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(hcl: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("f.hcl"), hcl).expect("write");
        let loaded = crate::load_dir(dir.path(), &crate::Inputs::default());
        loaded
            .config
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
    }

    const FLEET: &str = r#"
fleet "ci" {
  account_id = "123456789012"
  regions    = ["us-east-1", "us-west-2"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-11111111"
    "us-west-2" = "ami-22222222"
  }
}

network "untrusted" {
  subnets = {
    "us-east-1a" = "subnet-aaaaaaaa"
    "us-east-1b" = "subnet-bbbbbbbb"
    "us-west-2a" = "subnet-cccccccc"
  }
  security_groups = {
    "us-east-1" = ["sg-11111111"]
    "us-west-2" = ["sg-22222222"]
  }
  exclude = {
    "us-east-1b" = ["c5"]
  }
  assign_public_ip = true
}

worker_type "linux" {
  name    = "gecko-t/t-linux"
  ami_set = ami_set.linux
  network = network.untrusted
  market  = "spot"
  instance_type "m5.large" { capacity = 1 }
  instance_type "c5.xlarge" {
    capacity = 2
    volume "/dev/xvdb" {
      size_gb = 200
      type    = "gp3"
    }
  }
  capacity {
    min = 1
    max = 8
  }
}

worker_type "pool" {
  ami_set = ami_set.linux
  network = network.untrusted
  scaling = "asg"
  market  = "on-demand"
  instance_type "m5.large" { capacity = 1 }
  instance_type "m5.2xlarge" { capacity = 4 }
  capacity {
    min   = 3
    max   = 21
    scope = "worker_type"
  }
}

worker_type "spread" {
  ami_set = ami_set.linux
  market  = "on-demand"
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min   = 0
    max   = 10
    scope = "worker_type"
  }
}
"#;

    fn lt(address: &str, region: &str, id: &str, name: &str, version: Option<i64>) -> Object {
        Object {
            address: address.into(),
            region: region.into(),
            kind: ObjectKind::LaunchTemplate,
            id: id.into(),
            name: Some(name.into()),
            detail: format!("{name} default v1 of 1"),
            managed: true,
            default_version: version,
        }
    }

    fn recorded_objects() -> Vec<Object> {
        vec![
            lt(
                "worker_type.linux[\"us-east-1\"]",
                "us-east-1",
                "lt-east",
                "ci.gecko-t/t-linux",
                Some(3),
            ),
            lt(
                "worker_type.linux.instance_type[\"c5.xlarge\"][\"us-east-1\"]",
                "us-east-1",
                "lt-east-c5",
                "ci.gecko-t/t-linux.c5.xlarge",
                Some(1),
            ),
            // Recorded before default versions were, and found by name.
            lt(
                "(orphan)",
                "us-west-2",
                "lt-west",
                "ci.gecko-t/t-linux",
                None,
            ),
            lt(
                "worker_type.pool[\"us-east-1\"]",
                "us-east-1",
                "lt-pool",
                "ci.pool",
                Some(1),
            ),
            Object {
                address: "worker_type.pool[\"us-east-1\"]".into(),
                region: "us-east-1".into(),
                kind: ObjectKind::AutoScalingGroup,
                id: "ci.pool".into(),
                name: Some("ci.pool".into()),
                detail: String::new(),
                managed: true,
                default_version: None,
            },
            // Another region's template never stands in for this one.
            Object {
                region: "eu-west-1".into(),
                ..lt(
                    "worker_type.spread[\"eu-west-1\"]",
                    "eu-west-1",
                    "lt-x",
                    "ci.spread",
                    Some(1),
                )
            },
        ]
    }

    #[test]
    fn a_direct_worker_type_has_its_templates_subnets_groups_and_bounds_per_region() {
        let config = config(FLEET);
        let out = build(&config, &recorded_objects(), 7);
        assert_eq!((out.fleet.as_str(), out.state_version), ("ci", 7));
        assert_eq!(out.format_version, "1");
        let linux = &out.worker_types[0];
        assert_eq!(linux.address, "worker_type.linux");
        assert_eq!(linux.id, "gecko-t/t-linux");
        assert_eq!(linux.scaling, Scaling::Direct);
        let east = &linux.regions[0];
        assert_eq!(east.region, "us-east-1");
        let t = east.launch_template.as_ref().expect("recorded");
        assert_eq!((t.id.as_str(), t.default_version), ("lt-east", Some(3)));
        let subnets: Vec<(&str, &str)> = east
            .subnets
            .iter()
            .map(|s| (s.zone.as_str(), s.subnet_id.as_str()))
            .collect();
        assert_eq!(
            subnets,
            [
                ("us-east-1a", "subnet-aaaaaaaa"),
                ("us-east-1b", "subnet-bbbbbbbb")
            ]
        );
        assert_eq!(east.security_group_ids, ["sg-11111111"]);
        assert_eq!(east.assign_public_ip, Some(true));
        assert_eq!(
            (east.min, east.max, east.max_size),
            (Some(1), Some(8), None)
        );
        assert_eq!(east.auto_scaling_group, None);
        let m5 = &east.instance_types[0];
        assert_eq!(
            (m5.instance_type.as_str(), m5.weight, m5.own_template),
            ("m5.large", 1, false)
        );
        assert_eq!(
            m5.launch_template.as_ref().map(|t| t.id.as_str()),
            Some("lt-east")
        );
        assert!(m5.excluded_zones.is_empty());
        let c5 = &east.instance_types[1];
        assert_eq!((c5.weight, c5.own_template), (2, true));
        assert_eq!(
            c5.launch_template
                .as_ref()
                .map(|t| (t.id.as_str(), t.name.as_str())),
            Some(("lt-east-c5", "ci.gecko-t/t-linux.c5.xlarge"))
        );
        assert_eq!(c5.excluded_zones, ["us-east-1b"]);
        // us-west-2: the template found by its name, without a recorded
        // default version; the instance type's own was never made there.
        let west = &linux.regions[1];
        let t = west.launch_template.as_ref().expect("recorded by name");
        assert_eq!((t.id.as_str(), t.default_version), ("lt-west", None));
        assert_eq!(west.security_group_ids, ["sg-22222222"]);
        assert_eq!(west.subnets.len(), 1);
        assert!(west.instance_types[1].own_template);
        assert_eq!(west.instance_types[1].launch_template, None);
    }

    #[test]
    fn an_asg_worker_type_has_its_groups_share_of_the_bounds_and_its_group() {
        let config = config(FLEET);
        let out = build(&config, &recorded_objects(), 1);
        let pool = out
            .worker_types
            .iter()
            .find(|w| w.id == "pool")
            .expect("pool");
        assert_eq!(pool.scaling, Scaling::Asg);
        assert_eq!(pool.network.as_deref(), Some("untrusted"));
        let east = &pool.regions[0];
        // 3..21 over two regions: 2..11 and 1..10; MaxSize less 3 (weight 4).
        assert_eq!(
            (east.min, east.max, east.max_size),
            (Some(2), Some(11), Some(8))
        );
        assert_eq!(east.auto_scaling_group.as_deref(), Some("ci.pool"));
        let west = &pool.regions[1];
        assert_eq!(
            (west.min, west.max, west.max_size),
            (Some(1), Some(10), Some(7))
        );
        assert_eq!(west.auto_scaling_group, None);
        assert_eq!(west.launch_template, None);
    }

    #[test]
    fn direct_bounds_over_all_regions_have_no_region_share() {
        let config = config(FLEET);
        let out = build(&config, &recorded_objects(), 1);
        let spread = out
            .worker_types
            .iter()
            .find(|w| w.id == "spread")
            .expect("spread");
        assert_eq!(spread.capacity.scope, CapacityScope::WorkerType);
        for r in &spread.regions {
            assert_eq!((r.min, r.max, r.max_size), (None, None, None), "{r:?}");
            assert_eq!(r.launch_template, None, "{r:?}");
        }
    }

    #[test]
    fn the_json_has_every_field_and_the_text_reads_per_region() {
        let config = config(FLEET);
        let out = build(&config, &recorded_objects(), 2);
        let json = serde_json::to_value(&out).expect("json");
        let region = &json["worker_types"][0]["regions"][0];
        for field in [
            "launch_template",
            "subnets",
            "security_group_ids",
            "assign_public_ip",
            "instance_types",
            "min",
            "max",
            "max_size",
            "auto_scaling_group",
        ] {
            assert!(region.get(field).is_some(), "{field} missing: {region}");
        }
        assert_eq!(json["worker_types"][0]["scaling"], "direct");
        assert_eq!(json["worker_types"][1]["scaling"], "asg");
        assert_eq!(json["worker_types"][1]["capacity"]["scope"], "worker_type");
        let back: Output = serde_json::from_value(json).expect("decodes");
        assert_eq!(back, out);
        let text = human(&out);
        assert!(
            text.contains("worker_type.linux (id gecko-t/t-linux)"),
            "{text}"
        );
        assert!(
            text.contains("lt-east ci.gecko-t/t-linux (default version 3)"),
            "{text}"
        );
        assert!(
            text.contains(
                "subnets           us-east-1a subnet-aaaaaaaa, us-east-1b subnet-bbbbbbbb"
            ),
            "{text}"
        );
        assert!(
            text.contains("c5.xlarge weight 2, own template lt-east-c5"),
            "{text}"
        );
        assert!(text.contains("not in us-east-1b"), "{text}");
        assert!(
            text.contains("Auto Scaling      ci.pool (max size 8)"),
            "{text}"
        );
        assert!(text.contains("launch template   not applied yet"), "{text}");
    }
}

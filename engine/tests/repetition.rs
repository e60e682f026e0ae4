//! Repetition in the language: `for_each` on worker types, key pairs, AMI
//! sets and networks, `dynamic` nested blocks, worker type and key pair ids
//! (`name`), the addresses instances get in plans, and every mistake with
//! its code, place and help. Pure engine: no network.

use fleetform_engine::model::Config;
use fleetform_engine::plan::{self, ActionKind, PlanOptions, Resource};
use fleetform_engine::provider::{
    tags, Observation, Observed, ObservedInstance, ObservedLaunchTemplate, RegionObservation,
};
use fleetform_engine::{load_dir, Inputs, Loaded};
use std::collections::BTreeMap;
use tempfile::TempDir;

const FLEET: &str = r#"
fleet "f" {
  regions = ["us-east-1", "us-west-2"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
    "us-west-2" = "ami-785db402"
  }
}
"#;

fn dir_with(text: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), FLEET).expect("write");
    std::fs::write(dir.path().join("repeat.hcl"), text).expect("write");
    dir
}

fn load(text: &str) -> Loaded {
    let dir = dir_with(text);
    load_dir(dir.path(), &Inputs::default())
}

fn valid(text: &str) -> Config {
    let loaded = load(text);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.code.as_str(), d.message))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    loaded.config.expect("a model")
}

/// The errors of `text` as (code, line:col in repeat.hcl, message, help).
fn errors(text: &str) -> Vec<(String, String, String, String)> {
    let loaded = load(text);
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let place = d
                .location
                .as_ref()
                .map(|at| {
                    let lc = loaded.sources.line_col(at);
                    format!(
                        "{}:{}:{}",
                        loaded.sources.file(at.file).name,
                        lc.line,
                        lc.column
                    )
                })
                .unwrap_or_default();
            (
                d.code.as_str().to_string(),
                place,
                d.message.clone(),
                d.help.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The one error of `text`, with its code and place checked.
fn one_error(text: &str, code: &str, place: &str) -> (String, String) {
    let found = errors(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (c, p, message, help) = found.into_iter().next().expect("one");
    assert_eq!(
        (c.as_str(), p.ends_with(place)),
        (code, true),
        "{p}: {message}"
    );
    assert!(!help.is_empty(), "{message} has no help");
    (message, help)
}

const LEVELS: &str = r#"
locals {
  levels = {
    "gecko-1" = { max = 10 }
    "gecko-3" = { max = 5 }
  }
}

worker_type "b-linux" {
  for_each = local.levels
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    max = each.value.max
  }
  tags = { level = each.key }
}
"#;

fn empty_observation(regions: &[&str]) -> Observation {
    Observation {
        regions: regions
            .iter()
            .map(|r| (r.to_string(), region(Vec::new(), Vec::new())))
            .collect(),
        api_calls: 0,
    }
}

fn region(
    templates: Vec<ObservedLaunchTemplate>,
    instances: Vec<ObservedInstance>,
) -> RegionObservation {
    let images = ["ami-785db401", "ami-785db402"]
        .iter()
        .map(|id| fleetform_engine::provider::ObservedImage {
            id: id.to_string(),
            name: "ubuntu".into(),
            state: "available".into(),
            virtualization: "hvm".into(),
            architecture: "x86_64".into(),
            creation_date: String::new(),
            owner: String::new(),
            snapshot_ids: Vec::new(),
            tags: BTreeMap::new(),
            root_device_name: None,
        })
        .collect();
    RegionObservation {
        key_pairs: Observed::Complete { items: Vec::new() },
        images: Observed::Complete { items: images },
        launch_templates: Observed::Complete { items: templates },
        instances: Observed::Complete { items: instances },
        subnets: Observed::nothing(),
        security_groups: Observed::nothing(),
        offerings: Observed::nothing(),
        auto_scaling_groups: Observed::nothing(),
        adoptable: Observed::nothing(),
    }
}

fn plan_with(config: &Config, obs: &Observation, targets: &[&str]) -> plan::Plan {
    plan::build(
        config,
        obs,
        &PlanOptions {
            now: 100_000,
            targets: targets.iter().map(|t| t.to_string()).collect(),
            ..PlanOptions::default()
        },
    )
    .0
}

#[test]
fn for_each_over_a_map_makes_one_worker_type_per_key_with_its_values() {
    let config = valid(LEVELS);
    let names: Vec<&str> = config.worker_types.keys().map(String::as_str).collect();
    assert_eq!(names, ["b-linux[\"gecko-1\"]", "b-linux[\"gecko-3\"]"]);
    let one = &config.worker_types["b-linux[\"gecko-1\"]"];
    assert_eq!(one.capacity.max, 10);
    assert_eq!(one.id(), "b-linux-gecko-1");
    assert_eq!(one.tags["level"], "gecko-1");
    assert_eq!(config.worker_types["b-linux[\"gecko-3\"]"].capacity.max, 5);
}

#[test]
fn for_each_over_a_set_keys_each_instance_by_its_string() {
    let config = valid(
        r#"
worker_type "w" {
  for_each = ["small", "large"]
  name     = "pool/${each.value}"
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    let ids: Vec<&str> = config.worker_types.values().map(|wt| wt.id()).collect();
    assert_eq!(ids, ["pool/large", "pool/small"]);
    assert!(config.worker_types.contains_key("w[\"small\"]"));
}

#[test]
fn plans_address_instances_by_key_and_name_ec2_objects_by_id() {
    let config = valid(LEVELS);
    let plan = plan_with(
        &config,
        &empty_observation(&["us-east-1", "us-west-2"]),
        &[],
    );
    let template = plan
        .actions
        .iter()
        .find(|a| {
            a.resource == Resource::LaunchTemplate
                && a.region == "us-east-1"
                && a.address == "worker_type.b-linux[\"gecko-1\"]"
        })
        .expect("a template for the instance gecko-1");
    assert_eq!(template.name.as_deref(), Some("f.b-linux-gecko-1"));
    assert_eq!(
        template.tags[tags::ADDRESS],
        "worker_type.b-linux[\"gecko-1\"][\"us-east-1\"]"
    );
    assert_eq!(template.tags[tags::WORKER_TYPE], "b-linux-gecko-1");
    let human = plan::render::human(&plan, false);
    assert!(
        human.contains("worker_type.b-linux[\"gecko-3\"]"),
        "{human}"
    );
}

#[test]
fn a_target_of_the_label_covers_every_key_and_a_key_only_itself() {
    let config = valid(LEVELS);
    let obs = empty_observation(&["us-east-1", "us-west-2"]);
    let all = plan_with(&config, &obs, &["worker_type.b-linux"]);
    let owners: std::collections::BTreeSet<&str> =
        all.actions.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(
        owners.into_iter().collect::<Vec<_>>(),
        [
            "worker_type.b-linux[\"gecko-1\"]",
            "worker_type.b-linux[\"gecko-3\"]"
        ]
    );
    let one = plan_with(&config, &obs, &["worker_type.b-linux[\"gecko-3\"]"]);
    assert!(!one.actions.is_empty());
    assert!(one
        .actions
        .iter()
        .all(|a| a.address == "worker_type.b-linux[\"gecko-3\"]"));
    let here = plan_with(
        &config,
        &obs,
        &["worker_type.b-linux[\"gecko-3\"][\"us-west-2\"]"],
    );
    assert!(!here.actions.is_empty());
    assert!(here
        .actions
        .iter()
        .all(|a| a.address == "worker_type.b-linux[\"gecko-3\"]" && a.region == "us-west-2"));
    assert!(plan_with(&config, &obs, &["worker_type.b"])
        .actions
        .is_empty());
}

const WRITTEN_OUT: &str = r#"
worker_type "gecko-1-b-linux" {
  name    = "gecko-1/b-linux"
  ami_set = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 1
    max = 10
  }
}
"#;

const AS_FOR_EACH: &str = r#"
worker_type "b-linux" {
  for_each = { "gecko-1" = 10 }
  name     = "${each.key}/b-linux"
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 1
    max = each.value
  }
}
"#;

/// What one action makes in EC2: region, resource, action, name, tags without the address.
type Effect = (
    String,
    Resource,
    ActionKind,
    Option<String>,
    Vec<(String, String)>,
);

/// What a plan makes in EC2.
fn ec2_effects(plan: &plan::Plan) -> Vec<Effect> {
    plan.actions
        .iter()
        .map(|a| {
            let tags: Vec<(String, String)> = a
                .tags
                .iter()
                .filter(|(k, _)| k.as_str() != tags::ADDRESS)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (a.region.clone(), a.resource, a.action, a.name.clone(), tags)
        })
        .collect()
}

#[test]
fn a_worker_type_written_out_and_as_a_for_each_instance_with_one_name_are_one_in_ec2() {
    let written = valid(WRITTEN_OUT);
    let repeated = valid(AS_FOR_EACH);
    let wt = &written.worker_types["gecko-1-b-linux"];
    assert_eq!(wt.id(), "gecko-1/b-linux");
    assert_eq!(
        repeated.worker_types["b-linux[\"gecko-1\"]"].id(),
        "gecko-1/b-linux"
    );

    let empty = empty_observation(&["us-east-1", "us-west-2"]);
    let first = plan_with(&written, &empty, &[]);
    assert_eq!(
        ec2_effects(&first),
        ec2_effects(&plan_with(&repeated, &empty, &[]))
    );
    assert!(first
        .actions
        .iter()
        .any(|a| a.name.as_deref() == Some("f.gecko-1/b-linux")));

    // What applying the written-out form leaves: its templates and one instance per region.
    let mut obs = Observation {
        regions: BTreeMap::new(),
        api_calls: 0,
    };
    for (n, region_name) in ["us-east-1", "us-west-2"].iter().enumerate() {
        let create = first
            .actions
            .iter()
            .find(|a| {
                a.resource == Resource::LaunchTemplate
                    && a.action == ActionKind::Create
                    && a.region == *region_name
            })
            .expect("a template is created");
        let image = ["ami-785db401", "ami-785db402"][n];
        let template = ObservedLaunchTemplate {
            id: format!("lt-{n}"),
            name: create.name.clone().expect("named"),
            default_version: 1,
            latest_version: 1,
            default_data: Some(plan::build::desired_template(
                &written,
                wt,
                region_name,
                Some(image.to_string()),
            )),
            tags: create.tags.clone().into(),
        };
        let instance = ObservedInstance {
            id: format!("i-{n}"),
            state: "running".into(),
            instance_type: "m5.large".into(),
            launch_time: 99_000,
            image_id: image.into(),
            key_name: None,
            launch_template: Some((format!("lt-{n}"), "1".into())),
            tags: create.tags.clone().into(),
            zone: None,
            subnet_id: None,
        };
        obs.regions.insert(
            region_name.to_string(),
            region(vec![template], vec![instance]),
        );
    }
    assert!(plan_with(&written, &obs, &[]).actions.is_empty());
    let rewritten = plan_with(&repeated, &obs, &[]);
    assert!(rewritten.actions.is_empty(), "{:#?}", rewritten.actions);

    // Without the same name the id differs: a new worker type, the old one deleted.
    let renamed = valid(&AS_FOR_EACH.replace("name     = \"${each.key}/b-linux\"\n", ""));
    let moved = plan_with(&renamed, &obs, &[]);
    assert!(moved
        .actions
        .iter()
        .any(|a| a.action == ActionKind::Delete && a.resource == Resource::LaunchTemplate));
    assert!(moved
        .actions
        .iter()
        .any(|a| a.name.as_deref() == Some("f.b-linux-gecko-1")));
}

#[test]
fn removing_a_key_removes_exactly_its_instance() {
    let both = valid(LEVELS);
    let one = valid(&LEVELS.replace("    \"gecko-3\" = { max = 5 }\n", ""));
    assert_eq!(both.worker_types.len(), 2);
    let names: Vec<&str> = one.worker_types.keys().map(String::as_str).collect();
    assert_eq!(names, ["b-linux[\"gecko-1\"]"]);
    let json =
        |c: &Config| serde_json::to_string(&c.worker_types["b-linux[\"gecko-1\"]"]).expect("json");
    assert_eq!(json(&one), json(&both));
}

#[test]
fn key_pairs_ami_sets_and_networks_take_for_each_and_are_referenced_by_key() {
    let config = valid(
        r#"
key_pair "k" {
  for_each   = ["a", "b"]
  public_key = "ssh-ed25519 AAAA${each.key} k"
}

ami_set "per" {
  for_each = { "x86" = "x86_64", "arm" = "arm64" }
  architecture = each.value
  images = {
    "us-east-1" = "ami-785db401"
    "us-west-2" = "ami-785db402"
  }
}

network "n" {
  for_each = { "one" = "subnet-0123456789abcdef0" }
  subnets = {
    "us-east-1a" = each.value
    "us-west-2a" = each.value
  }
  security_groups = {
    "us-east-1" = ["sg-0123456789abcdef0"]
    "us-west-2" = ["sg-0123456789abcdef0"]
  }
}

locals {
  pools = {
    "p" = { network = network.n["one"], key = key_pair.k["b"] }
  }
}

worker_type "w" {
  for_each = local.pools
  ami_set  = ami_set.per["x86"]
  key_pair = each.value.key
  network  = each.value.network
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    assert_eq!(
        config.key_pairs.keys().collect::<Vec<_>>(),
        ["k[\"a\"]", "k[\"b\"]"]
    );
    assert_eq!(config.key_pairs["k[\"a\"]"].id(), "k-a");
    assert!(config.ami_sets.contains_key("per[\"arm\"]"));
    let wt = &config.worker_types["w[\"p\"]"];
    assert_eq!(wt.ami_set, "per[\"x86\"]");
    assert_eq!(wt.key_pair.as_deref(), Some("k[\"b\"]"));
    assert_eq!(wt.network.as_deref(), Some("n[\"one\"]"));
    let plan = plan_with(&config, &empty_observation(&["us-east-1"]), &[]);
    let key = plan
        .actions
        .iter()
        .find(|a| a.resource == Resource::KeyPair)
        .expect("the key pair is created");
    assert_eq!(key.address, "key_pair.k[\"b\"]");
    assert_eq!(key.name.as_deref(), Some("f.k-b"));
}

#[test]
fn a_local_may_hold_a_block_written_out() {
    let config = valid(
        r#"
network "untrusted" {
  subnets = {
    "us-east-1a" = "subnet-0123456789abcdef0"
    "us-west-2a" = "subnet-0123456789abcdef1"
  }
  security_groups = {
    "us-east-1" = ["sg-0123456789abcdef0"]
    "us-west-2" = ["sg-0123456789abcdef1"]
  }
}

locals {
  levels = { "l1" = { network = network.untrusted } }
}

worker_type "w" {
  for_each = local.levels
  ami_set  = ami_set.linux
  network  = each.value.network
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    assert_eq!(
        config.worker_types["w[\"l1\"]"].network.as_deref(),
        Some("untrusted")
    );
}

#[test]
fn dynamic_blocks_make_one_nested_block_per_element() {
    let config = valid(
        r#"
worker_type "w" {
  ami_set = ami_set.linux
  dynamic "instance_type" {
    for_each = { "c5.4xlarge" = 1, "c5.9xlarge" = 2 }
    labels   = [instance_type.key]
    content {
      capacity = instance_type.value
    }
  }
  dynamic "volume" {
    for_each = ["/dev/xvdb"]
    iterator = disk
    labels   = [disk.value]
    content {
      size_gb = 100
      type    = "gp3"
    }
  }
  dynamic "capacity" {
    for_each = [5]
    content {
      max = capacity.value
    }
  }
}
"#,
    );
    let wt = &config.worker_types["w"];
    let types: Vec<(&str, u32)> = wt
        .instance_types
        .iter()
        .map(|t| (t.name.as_str(), t.capacity))
        .collect();
    assert_eq!(types, [("c5.4xlarge", 1), ("c5.9xlarge", 2)]);
    assert_eq!(wt.volumes["/dev/xvdb"].size_gb, 100);
    assert_eq!(wt.capacity.max, 5);
}

#[test]
fn dynamic_blocks_nest_and_see_each() {
    let config = valid(
        r#"
worker_type "w" {
  for_each = { "big" = 200 }
  ami_set  = ami_set.linux
  dynamic "instance_type" {
    for_each = ["c5.4xlarge"]
    labels   = [instance_type.value]
    content {
      capacity = 1
      dynamic "volume" {
        for_each = ["/dev/xvdb"]
        labels   = [volume.value]
        content {
          size_gb = each.value
          type    = "gp3"
        }
      }
    }
  }
  capacity { max = 1 }
}
"#,
    );
    let it = &config.worker_types["w[\"big\"]"].instance_types[0];
    assert_eq!(it.volumes["/dev/xvdb"].size_gb, 200);
}

/// Instances that iterate the same elements share what their `dynamic`
/// blocks make; what they make still depends on each instance where the
/// block uses `each`: in its content (evaluated with the instance) and in
/// its labels (then nothing is shared).
#[test]
fn dynamic_blocks_over_the_same_elements_still_see_each_instance() {
    let keys: Vec<String> = (1..=40).map(|i| format!("\"k{i}\" = {i}")).collect();
    let config = valid(&format!(
        r#"
worker_type "w" {{
  for_each = {{ {keys} }}
  ami_set  = ami_set.linux
  dynamic "instance_type" {{
    for_each = {{ "m5.large" = 1, "c5.large" = 2 }}
    labels   = [instance_type.key]
    content {{
      capacity = instance_type.value * each.value
    }}
  }}
  dynamic "volume" {{
    for_each = ["/dev/xvdb"]
    labels   = [each.value % 2 == 0 ? "/dev/xvdc" : volume.value]
    content {{
      size_gb = each.value
      type    = "gp3"
    }}
  }}
  capacity {{ max = 1 }}
}}
"#,
        keys = keys.join(", ")
    ));
    assert_eq!(config.worker_types.len(), 40);
    for i in 1..=40u32 {
        let wt = &config.worker_types[&format!("w[\"k{i}\"]")];
        let capacities: Vec<(&str, u32)> = wt
            .instance_types
            .iter()
            .map(|it| (it.name.as_str(), it.capacity))
            .collect();
        assert_eq!(capacities, [("m5.large", i), ("c5.large", 2 * i)], "k{i}");
        let device = if i % 2 == 0 { "/dev/xvdc" } else { "/dev/xvdb" };
        let volumes: Vec<(&str, u32)> = wt
            .volumes
            .iter()
            .map(|(name, v)| (name.as_str(), v.size_gb))
            .collect();
        assert_eq!(volumes, [(device, i)], "k{i}");
    }
}

/// An instance of a `for_each` reads the blocks its `dynamic` blocks make
/// in their place among the written ones, as if the block were written out:
/// the order of instance types, and which of two is "listed again".
#[test]
fn made_blocks_keep_their_place_among_written_ones_in_each_instance() {
    let block = |dynamic_capacity: &str| {
        format!(
            r#"
worker_type "w" {{
  for_each = {{ "a" = ["c5.xlarge", "c5.2xlarge"], "b" = ["m5.large"] }}
  ami_set  = ami_set.linux
  instance_type "t3.large" {{ capacity = 1 }}
  dynamic "instance_type" {{
    for_each = each.value
    labels   = [instance_type.value]
    content {{
      capacity = {dynamic_capacity}
    }}
  }}
  instance_type "m5.xlarge" {{ capacity = 1 }}
  capacity {{ max = 1 }}
  tags = {{ key = each.key }}
}}
"#
        )
    };
    let config = valid(&block("2"));
    let order = |key: &str| -> Vec<(String, u32)> {
        config.worker_types[&format!("w[\"{key}\"]")]
            .instance_types
            .iter()
            .map(|t| (t.name.clone(), t.capacity))
            .collect()
    };
    let named = |list: &[(&str, u32)]| -> Vec<(String, u32)> {
        list.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    };
    assert_eq!(
        order("a"),
        named(&[
            ("t3.large", 1),
            ("c5.xlarge", 2),
            ("c5.2xlarge", 2),
            ("m5.xlarge", 1)
        ])
    );
    assert_eq!(
        order("b"),
        named(&[("t3.large", 1), ("m5.large", 2), ("m5.xlarge", 1)])
    );
    assert_eq!(
        config.worker_types["w[\"b\"]"]
            .tags
            .get("key")
            .map(|t| t.as_str()),
        Some("b")
    );

    // A written block that repeats a made one before it is the one listed
    // again (and only in the instance that makes it).
    let text = block("1").replace("\"m5.xlarge\" {", "\"m5.large\" {");
    let (message, _) = one_error(&text, "duplicate", "repeat.hcl:13:3");
    assert!(message.contains("`m5.large` is listed twice"), "{message}");
}

#[test]
fn two_worker_types_with_one_id_are_an_error_at_each() {
    let found = errors(
        r#"
worker_type "a" {
  name    = "same/id"
  ami_set = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}

worker_type "b" {
  for_each = ["x"]
  name     = "same/id"
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    let places: Vec<&str> = found.iter().map(|(_, p, _, _)| p.as_str()).collect();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found
        .iter()
        .all(|(c, _, m, _)| c == "duplicate" && m.contains("same/id")));
    assert!(places[0].ends_with("repeat.hcl:3:13"), "{places:?}");
    assert!(places[1].ends_with("repeat.hcl:11:14"), "{places:?}");
}

#[test]
fn a_for_each_key_defaulting_to_another_id_is_a_duplicate() {
    let found = errors(
        r#"
worker_type "a-x" {
  ami_set = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
worker_type "a" {
  for_each = ["x"]
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found
        .iter()
        .all(|(c, _, m, _)| c == "duplicate" && m.contains("`a-x`")));
}

#[test]
fn for_each_over_something_else_than_a_map_or_a_set_of_strings_is_a_type_error() {
    for (value, what) in [
        ("3", "a number"),
        ("[1, 2]", "more than strings"),
        ("\"a\"", "a string"),
    ] {
        let text = format!(
            "worker_type \"w\" {{\n  for_each = {value}\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{ max = 1 }}\n}}\n"
        );
        let (message, help) = one_error(&text, "type", "repeat.hcl:2:14");
        assert!(message.contains(what), "{message}");
        assert!(help.contains("set of strings"), "{help}");
    }
}

#[test]
fn for_each_over_a_sensitive_value_is_refused() {
    let (message, _) = one_error(
        r#"
variable "pools" {
  sensitive = true
  default   = ["a"]
}
worker_type "w" {
  for_each = var.pools
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
        "invalid-value",
        "repeat.hcl:7:14",
    );
    assert!(message.contains("sensitive"), "{message}");
}

#[test]
fn duplicate_and_invalid_keys_are_errors_that_say_what_is_allowed() {
    let (message, _) = one_error(
        "worker_type \"w\" {\n  for_each = [\"a\", \"a\"]\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
        "duplicate",
        "repeat.hcl:2:14",
    );
    assert!(message.contains("`a` twice"), "{message}");
    let (message, help) = one_error(
        "worker_type \"w\" {\n  for_each = { \"has space\" = 1 }\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
        "invalid-value",
        "repeat.hcl:2:14",
    );
    assert!(message.contains("has space"), "{message}");
    assert!(help.contains("letters, digits"), "{help}");
}

#[test]
fn each_outside_for_each_is_an_undefined_reference() {
    let (message, help) = one_error(
        "worker_type \"w\" {\n  ami_set = ami_set.linux\n  tags = { k = each.key }\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
        "undefined-reference",
        "repeat.hcl:3:16",
    );
    assert!(message.contains("each"), "{message}");
    assert!(help.contains("for_each"), "{help}");
}

#[test]
fn a_dynamic_block_of_a_type_that_does_not_exist_is_unknown_there() {
    let (message, help) = one_error(
        "worker_type \"w\" {\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n  dynamic \"volumes\" {\n    for_each = [1]\n    content {}\n  }\n}\n",
        "unknown-block",
        "repeat.hcl:5:3",
    );
    assert!(message.contains("volumes"), "{message}");
    assert!(help.contains("volume"), "{help}");
}

#[test]
fn a_name_that_ec2_cannot_carry_is_invalid() {
    let (_, help) = one_error(
        "worker_type \"w\" {\n  name = \"no spaces\"\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
        "invalid-value",
        "repeat.hcl:2:10",
    );
    assert!(help.contains("`/`"), "{help}");
}

#[test]
fn an_expansion_past_the_instance_limit_is_too_large_not_a_hang() {
    let keys: Vec<String> = (0..100_001).map(|i| format!("\"k{i}\"")).collect();
    let text = format!(
        "worker_type \"w\" {{\n  for_each = local.keys\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{ max = 1 }}\n}}\nlocals {{\n  keys = [{}]\n}}\n",
        keys.join(", ")
    );
    let (message, _) = one_error(&text, "too-large", "repeat.hcl:2:14");
    assert!(message.contains("100000"), "{message}");
}

#[test]
fn without_for_each_or_name_nothing_changes_in_the_model() {
    let config = valid(
        "worker_type \"w\" {\n  ami_set = ami_set.linux\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
    );
    let wt = &config.worker_types["w"];
    assert_eq!((wt.id.as_deref(), wt.id()), (None, "w"));
    let json = serde_json::to_string(wt).expect("serializes");
    assert!(!json.contains("\"id\""), "{json}");
}

#[test]
fn fmt_keeps_for_each_dynamic_and_their_comments() {
    let text = r#"
# pools by trust level
worker_type "b-linux" {
  for_each = { "gecko-1" = 10 } # one instance per level
  name = "${each.key}/b-linux"
  ami_set  = ami_set.linux
  dynamic "instance_type" {
    # one block per type
    for_each = { "c5.4xlarge" = 1 }
    labels = [instance_type.key]
    content {
      capacity = instance_type.value # weight
    }
  }
  capacity {
    max = each.value
  }
}
"#;
    let formatted = fleetform_engine::fmt::format_source(text).expect("parses");
    for kept in [
        "# pools by trust level",
        "# one instance per level",
        "# one block per type",
        "# weight",
        "dynamic \"instance_type\" {",
        "name     = \"${each.key}/b-linux\"",
        "labels   = [instance_type.key]",
    ] {
        assert!(formatted.contains(kept), "{kept} lost:\n{formatted}");
    }
    assert_eq!(
        fleetform_engine::fmt::format_source(&formatted).expect("parses"),
        formatted
    );
    let json = |c: &Config| serde_json::to_string(&c.worker_types).expect("json");
    assert_eq!(json(&valid(&formatted)), json(&valid(text)));
}

#[test]
fn a_local_and_a_for_each_that_need_each_other_are_a_cycle() {
    let (message, help) = one_error(
        r#"
locals {
  nets = network.n
}
network "n" {
  for_each = local.nets
  subnets = { "us-east-1a" = "subnet-0123456789abcdef0" }
  security_groups = { "us-east-1" = ["sg-0123456789abcdef0"] }
}
"#,
        "reference-cycle",
        "repeat.hcl:3:10",
    );
    assert!(message.contains("network `n`"), "{message}");
    assert!(help.contains("variables only"), "{help}");
}

#[test]
fn a_mistake_in_a_block_with_for_each_is_reported_once() {
    let found = errors(
        "worker_type \"w\" {\n  for_each = [\"a\", \"b\", \"c\"]\n  ami_set = ami_set.linux\n  market = \"cheap\"\n  instance_type \"m5.large\" { capacity = 1 }\n  capacity { max = 1 }\n}\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].1.ends_with("repeat.hcl:4:12"), "{found:#?}");
}

#[test]
fn reordering_keys_changes_nothing() {
    let swapped = LEVELS.replace(
        "    \"gecko-1\" = { max = 10 }\n    \"gecko-3\" = { max = 5 }\n",
        "    \"gecko-3\" = { max = 5 }\n    \"gecko-1\" = { max = 10 }\n",
    );
    assert_ne!(swapped, LEVELS);
    let json = |c: &Config| serde_json::to_string(&c.worker_types).expect("json");
    assert_eq!(json(&valid(&swapped)), json(&valid(LEVELS)));
}

#[test]
fn a_target_of_a_for_each_worker_type_pulls_in_its_key_pair() {
    let config = valid(
        r#"
key_pair "k" {
  public_key = "ssh-ed25519 AAAAk k"
}
worker_type "w" {
  for_each = ["a", "b"]
  ami_set  = ami_set.linux
  key_pair = key_pair.k
  instance_type "m5.large" { capacity = 1 }
  capacity { max = 1 }
}
"#,
    );
    let obs = empty_observation(&["us-east-1", "us-west-2"]);
    let plan = plan_with(&config, &obs, &["worker_type.w[\"a\"][\"us-east-1\"]"]);
    let picked: Vec<(&str, &str)> = plan
        .actions
        .iter()
        .map(|a| (a.address.as_str(), a.region.as_str()))
        .collect();
    assert_eq!(
        picked,
        [
            ("key_pair.k", "us-east-1"),
            ("worker_type.w[\"a\"]", "us-east-1")
        ]
    );
}

#[test]
fn user_data_a_version_withheld_stays_withheld_after_the_address_moves() {
    let repeated = valid(&AS_FOR_EACH.replace(
        "  ami_set  = ami_set.linux\n",
        "  ami_set  = ami_set.linux\n  user_data = \"plain\"\n",
    ));
    let wt = &repeated.worker_types["b-linux[\"gecko-1\"]"];
    let mut data =
        plan::build::desired_template(&repeated, wt, "us-east-1", Some("ami-785db401".into()));
    data.user_data = Some("TOKEN=hunter2".into());
    let template = ObservedLaunchTemplate {
        id: "lt-0".into(),
        name: "f.gecko-1/b-linux".into(),
        default_version: 1,
        latest_version: 1,
        default_data: Some(data),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (
                tags::ADDRESS.to_string(),
                "worker_type.gecko-1-b-linux[\"us-east-1\"]".to_string(),
            ),
            (tags::WORKER_TYPE.to_string(), "gecko-1/b-linux".to_string()),
        ]),
    };
    let obs = Observation {
        regions: BTreeMap::from([("us-east-1".to_string(), region(vec![template], Vec::new()))]),
        api_calls: 0,
    };
    let options = |before: &[&str]| PlanOptions {
        now: 100_000,
        sensitive_before: before.iter().map(|s| s.to_string()).collect(),
        ..PlanOptions::default()
    };
    let shown = |p: &plan::Plan| serde_json::to_string(&p.actions).expect("json");
    let (open, _) = plan::build(&repeated, &obs, &options(&[]));
    assert!(
        shown(&open).contains("hunter2"),
        "the test shows the value unless withheld"
    );
    let (withheld, _) = plan::build(&repeated, &obs, &options(&["gecko-1/b-linux"]));
    assert!(
        !shown(&withheld).contains("hunter2"),
        "{}",
        shown(&withheld)
    );
    assert!(
        withheld
            .actions
            .iter()
            .any(|a| a.address == "worker_type.b-linux[\"gecko-1\"]"
                && a.action == ActionKind::Update)
    );
}

#[test]
fn the_fleet_block_takes_dynamic_blocks_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("fleet.hcl"),
        FLEET.replace(
            "  regions = [\"us-east-1\", \"us-west-2\"]\n",
            "  regions = [\"us-east-1\", \"us-west-2\"]\n  dynamic \"rollout\" {\n    for_each = [[\"us-east-1\"]]\n    content {\n      canary_regions = rollout.value\n    }\n  }\n",
        ),
    )
    .expect("write");
    let loaded = load_dir(dir.path(), &Inputs::default());
    let config = loaded.config.expect("valid");
    assert_eq!(
        config.fleet.rollout.map(|r| r.canary_regions),
        Some(vec!["us-east-1".to_string()])
    );
}

/// A `for_each` worker type whose user data template is picked by its key,
/// with `extra` files written into `userdata/`.
fn picked_template(extra: &[(&str, &str)]) -> Loaded {
    let dir = dir_with(
        r#"
worker_type "w" {
  for_each = { linux = "sh", windows = "ps1" }
  ami_set  = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    max = 1
  }
  user_data = templatefile("userdata/worker.${each.value}", { kind = each.key })
}
"#,
    );
    std::fs::create_dir_all(dir.path().join("userdata")).expect("mkdir");
    std::fs::write(
        dir.path().join("userdata/worker.sh"),
        "#!/bin/sh\necho ${kind}\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("userdata/worker.ps1"),
        "Write-Host ${kind}\n",
    )
    .expect("write");
    for (name, text) in extra {
        std::fs::write(dir.path().join("userdata").join(name), text).expect("write");
    }
    load_dir(dir.path(), &Inputs::default())
}

#[test]
fn a_template_path_picked_by_key_is_bounded_by_the_files_it_can_name() {
    // The path is not written out, so the size bound comes from the files
    // under userdata/ it can name, not from the largest file any could be.
    let loaded = picked_template(&[]);
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} {}", d.code.as_str(), d.message))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let config = loaded.config.expect("a model");
    let data: Vec<&str> = config
        .worker_types
        .values()
        .filter_map(|wt| wt.user_data.as_deref())
        .collect();
    assert_eq!(data, ["#!/bin/sh\necho linux\n", "Write-Host windows\n"]);
}

#[test]
fn a_candidate_template_that_could_explode_still_bounds_the_path() {
    // One file the path can name repeats its argument 4^12 times: the bound
    // takes the worst of the candidates, so the expression is refused.
    let mut nested = String::new();
    for n in 0..12 {
        nested.push_str(&format!("%{{ for a{n} in [1, 2, 3, 4] }}"));
    }
    nested.push_str("${kind}");
    for _ in 0..12 {
        nested.push_str("%{ endfor }");
    }
    let loaded = picked_template(&[("worker.big", &nested)]);
    let codes: Vec<&str> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.code.as_str())
        .collect();
    assert!(codes.contains(&"too-large"), "{codes:?}");
}

/// Independent locals are evaluated at once (on every core), but charged
/// to the total budget one after another in the order they were always
/// evaluated in, so the local reported for crossing it is always the same
/// one, and the others are skipped quietly.
#[test]
fn the_local_that_crosses_the_total_budget_is_always_the_same() {
    // `file` with a path that is not a literal is bounded by the largest
    // file the config may read (1 MiB): 300 of them cross 256 MiB.
    let mut text = String::from("locals {\n");
    for i in 0..300 {
        text.push_str(&format!("  l{i:03} = file(\"${{\"small\"}}.txt\")\n"));
    }
    text.push_str("}\n");
    let runs: Vec<Vec<(String, String, String)>> = (0..3)
        .map(|_| {
            let dir = dir_with(&text);
            std::fs::write(dir.path().join("small.txt"), "x").expect("write");
            let loaded = load_dir(dir.path(), &Inputs::default());
            loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .map(|d| {
                    let place = d
                        .location
                        .as_ref()
                        .map(|at| {
                            let lc = loaded.sources.line_col(at);
                            format!("{}:{}", loaded.sources.file(at.file).name, lc.line)
                        })
                        .unwrap_or_default();
                    (d.code.as_str().to_string(), place, d.message.clone())
                })
                .collect()
        })
        .collect();
    let first = &runs[0];
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0].1, "repeat.hcl:45", "{first:#?}");
    assert!(first[0].2.contains("in all; this expression crosses that"));
    for run in &runs[1..] {
        assert_eq!(run, first);
    }
}

/// A dynamic block's labels are evaluated as written, with its iterator
/// bound: a mistake in them is reported at the labels, in the words the
/// author wrote.
#[test]
fn a_mistake_in_dynamic_labels_is_reported_at_them_as_written() {
    let (message, _) = one_error(
        r#"
worker_type "w" {
  ami_set = ami_set.linux
  dynamic "instance_type" {
    for_each = { "c5.4xlarge" = 1 }
    labels   = [instance_type.nope]
    content {
      capacity = instance_type.value
    }
  }
  capacity { max = 1 }
}
"#,
        "undefined-reference",
        "6:16",
    );
    assert!(message.contains("nope"), "{message}");
    assert!(!message.contains("c5.4xlarge"), "{message}");
}

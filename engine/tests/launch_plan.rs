//! Launch configurations as pure engine logic, on observations built by
//! hand: what a launch template carries (networks, volumes, spot, profile,
//! metadata), drift of each field, per-instance-type templates, zone-aware
//! placement with `exclude` and offerings, FF012/FF013, FF005 for the new
//! kinds, and apply's fall-through from pair to pair. No network.
//!
//! Networks, volumes and the other new attributes are set on the loaded
//! model directly: their decoding is written beside this.

use fleetform_engine::apply::{self, Journal};
use fleetform_engine::model::{
    Config, HttpTokens, Metadata, Network, Origin, Spans, Spot, Volume, VolumeType,
};
use fleetform_engine::plan::build::{template_for, TemplateOf};
use fleetform_engine::plan::{self, Action, ActionKind, PlanOptions, Resource, SkipReason};
use fleetform_engine::provider::{
    tags, Caller, ErrorKind, Mutation, MutationOutcome, Observation, ObserveRequest, Observed,
    ObservedImage, ObservedInstance, ObservedLaunchTemplate, ObservedSecurityGroup, ObservedSubnet,
    Offering, Provider, ProviderError, RegionObservation,
};
use fleetform_engine::{Code, Diagnostic};
use std::collections::BTreeMap;
use std::sync::Mutex;

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-0123456789abcdef0";
const NOW: i64 = 1_000_000;
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

const HCL: &str = r#"
fleet "f" {
  regions = ["us-east-1"]
  limits {
    max_launches = 100
  }
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-0123456789abcdef0"
  }
}

worker_type "w" {
  ami_set = ami_set.linux
  market  = "spot"

  instance_type "m5.large" { capacity = 1 }
  instance_type "c5.large" { capacity = 1 }

  capacity {
    min = 0
    max = 10
  }
}

worker_type "plain" {
  ami_set = ami_set.linux

  instance_type "t3.medium" { capacity = 1 }

  capacity {
    min = 0
    max = 4
  }
}
"#;

fn loaded() -> Config {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), HCL).expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    loaded
        .config
        .unwrap_or_else(|| panic!("valid: {:?}", loaded.diagnostics))
}

/// The loaded fleet with network `untrusted` (a subnet in each of three
/// zones, one security group) used by worker type `w`; its origins point
/// at spans of `w` so that diagnostics can be told apart.
fn config() -> Config {
    let mut c = loaded();
    let origin = c.worker_types["w"].origin.clone();
    let span = |key: &str| {
        origin.attributes.get(key).cloned().unwrap_or_else(|| {
            let names: Vec<&str> = origin.attributes.keys().collect();
            panic!("{key} in {names:?}")
        })
    };
    let mut attributes = Spans::default();
    for zone in ZONES {
        attributes.insert(format!("subnets.{zone}"), span("ami_set"));
    }
    attributes.insert(format!("security_groups.{REGION}"), span("market"));
    c.networks.insert(
        "untrusted".into(),
        Network {
            name: "untrusted".into(),
            subnets: ZONES
                .iter()
                .map(|z| (z.to_string(), subnet_of(z)))
                .collect(),
            security_groups: BTreeMap::from([(REGION.to_string(), vec!["sg-1".to_string()])]),
            exclude: BTreeMap::new(),
            assign_public_ip: Some(false),
            origin: Origin {
                block: None,
                attributes,
            },
        },
    );
    c.worker_types
        .get_mut("w")
        .expect("w")
        .network
        .replace("untrusted".into());
    c
}

fn subnet_of(zone: &str) -> String {
    format!("subnet-{}", zone.chars().last().unwrap_or('x'))
}

fn wt_mut<'a>(c: &'a mut Config, name: &str) -> &'a mut fleetform_engine::model::WorkerType {
    c.worker_types.get_mut(name).expect("declared")
}

fn instance(id: &str, zone: &str, instance_type: &str, worker_type: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        state: "running".into(),
        instance_type: instance_type.into(),
        launch_time: NOW - 60,
        image_id: IMAGE.into(),
        key_name: None,
        launch_template: None,
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (
                tags::ADDRESS.to_string(),
                format!("worker_type.{worker_type}[\"{REGION}\"]"),
            ),
        ]),
        zone: Some(zone.into()),
        subnet_id: Some(subnet_of(zone)),
    }
}

/// The live template of `worker_type` exactly as `c` wants it.
fn template(c: &Config, worker_type: &str) -> ObservedLaunchTemplate {
    let wt = &c.worker_types[worker_type];
    let data = template_for(
        c,
        wt,
        TemplateOf::WorkerType,
        REGION,
        Some(IMAGE.into()),
        Some("/dev/xvda"),
    );
    ObservedLaunchTemplate {
        id: format!("lt-{worker_type}"),
        name: format!("f.{worker_type}"),
        default_version: 1,
        latest_version: 1,
        default_data: Some(data),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (
                tags::ADDRESS.to_string(),
                format!("worker_type.{worker_type}[\"{REGION}\"]"),
            ),
        ]),
    }
}

/// What EC2 holds: the image (root device `/dev/xvda`), `templates`,
/// `instances`, the three subnets in vpc-1, sg-1 in vpc-1, and every type
/// offered in every zone.
struct World {
    templates: Vec<ObservedLaunchTemplate>,
    instances: Vec<ObservedInstance>,
    subnets: Observed<Vec<ObservedSubnet>>,
    groups: Observed<Vec<ObservedSecurityGroup>>,
    offerings: Observed<Vec<Offering>>,
}

impl World {
    fn new(templates: Vec<ObservedLaunchTemplate>) -> World {
        World {
            templates,
            instances: Vec::new(),
            subnets: Observed::Complete {
                items: ZONES
                    .iter()
                    .map(|z| ObservedSubnet {
                        id: subnet_of(z),
                        zone: z.to_string(),
                        vpc_id: "vpc-1".into(),
                    })
                    .collect(),
            },
            groups: Observed::Complete {
                items: vec![ObservedSecurityGroup {
                    id: "sg-1".into(),
                    name: "untrusted".into(),
                    vpc_id: "vpc-1".into(),
                }],
            },
            offerings: Observed::Complete {
                items: ZONES
                    .iter()
                    .flat_map(|z| {
                        ["m5.large", "c5.large", "t3.medium"].map(|t| Offering {
                            instance_type: t.into(),
                            zone: z.to_string(),
                        })
                    })
                    .collect(),
            },
        }
    }

    fn observation(&self) -> Observation {
        let image = ObservedImage {
            id: IMAGE.into(),
            name: "ubuntu".into(),
            state: "available".into(),
            virtualization: "hvm".into(),
            architecture: "x86_64".into(),
            creation_date: String::new(),
            owner: String::new(),
            snapshot_ids: Vec::new(),
            tags: BTreeMap::new(),
            root_device_name: Some("/dev/xvda".into()),
        };
        Observation {
            regions: BTreeMap::from([(
                REGION.to_string(),
                RegionObservation {
                    key_pairs: Observed::Complete { items: Vec::new() },
                    images: Observed::Complete { items: vec![image] },
                    launch_templates: Observed::Complete {
                        items: self.templates.clone(),
                    },
                    instances: Observed::Complete {
                        items: self.instances.clone(),
                    },
                    subnets: self.subnets.clone(),
                    security_groups: self.groups.clone(),
                    offerings: self.offerings.clone(),
                    auto_scaling_groups: Observed::nothing(),
                    adoptable: Observed::nothing(),
                },
            )]),
            api_calls: 0,
        }
    }
}

fn build(c: &Config, world: &World) -> (plan::Plan, Vec<Diagnostic>) {
    plan::build(
        c,
        &world.observation(),
        &PlanOptions {
            now: NOW,
            ..PlanOptions::default()
        },
    )
}

fn errors(diags: &[Diagnostic], code: Code) -> Vec<&Diagnostic> {
    diags.iter().filter(|d| d.code == code).collect()
}

fn launch<'a>(plan: &'a plan::Plan, address: &str) -> Option<&'a Action> {
    plan.actions
        .iter()
        .find(|a| a.action == ActionKind::Launch && a.address == address)
}

/// (zone, instance type, count) of a launch's split.
fn split(action: &Action) -> Vec<(String, String, u32)> {
    action
        .placement
        .as_ref()
        .map(|p| {
            p.split
                .iter()
                .map(|s| {
                    (
                        s.zone.clone().unwrap_or_default(),
                        s.instance_type.clone(),
                        s.count,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn volume(size_gb: u32) -> Volume {
    Volume {
        size_gb,
        volume_type: VolumeType::Gp3,
        iops: None,
        throughput: None,
        encrypted: None,
    }
}

/// `w` with every new launch setting: a profile, a root volume, a second
/// volume, a spot price, hop limit 2.
fn full(c: &mut Config) {
    let wt = wt_mut(c, "w");
    wt.iam_instance_profile = Some("gecko-workers".into());
    wt.root_volume = Some(volume(60));
    wt.volumes.insert("/dev/xvdb".into(), volume(120));
    wt.spot = Some(Spot {
        max_price: Some("0.68".into()),
    });
    wt.metadata = Metadata {
        http_tokens: HttpTokens::Required,
        hop_limit: 2,
    };
}

fn create_of<'a>(plan: &'a plan::Plan, address: &str) -> &'a Action {
    plan.actions
        .iter()
        .find(|a| a.resource == Resource::LaunchTemplate && a.address == address)
        .unwrap_or_else(|| panic!("a template action of {address}: {:?}", plan.actions))
}

#[test]
fn the_desired_template_carries_every_launch_setting() {
    let mut c = config();
    full(&mut c);
    let (plan, diags) = build(&c, &World::new(Vec::new()));
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    let data = create_of(&plan, "worker_type.w")
        .launch_template
        .as_ref()
        .expect("data");
    assert_eq!(data.security_group_ids, ["sg-1"]);
    assert_eq!(data.assign_public_ip, Some(false));
    let devices: Vec<(&str, u32)> = data
        .block_devices
        .iter()
        .map(|d| (d.device_name.as_str(), d.size_gb))
        .collect();
    // The root volume at the image's root device, then the others, by name.
    assert_eq!(devices, [("/dev/xvda", 60), ("/dev/xvdb", 120)]);
    assert_eq!(data.spot_max_price.as_deref(), Some("0.68"));
    assert_eq!(data.iam_instance_profile.as_deref(), Some("gecko-workers"));
    let metadata = data.metadata.as_ref().expect("metadata");
    assert_eq!(
        (metadata.http_tokens.as_str(), metadata.hop_limit),
        ("required", 2)
    );
    assert_eq!(
        data.volume_tags.get(tags::ADDRESS).map(|t| t.as_str()),
        Some("worker_type.w[\"us-east-1\"]")
    );
    assert_eq!(
        data.volume_tags.get(tags::WORKER_TYPE).map(|t| t.as_str()),
        Some("w")
    );
    // Two instance types: the template names none.
    assert_eq!(data.instance_type, None);
}

#[test]
fn existing_worker_types_get_imdsv2_and_their_only_instance_type() {
    let c = config();
    let (plan, _) = build(&c, &World::new(Vec::new()));
    let data = create_of(&plan, "worker_type.plain")
        .launch_template
        .as_ref()
        .expect("data");
    let metadata = data.metadata.as_ref().expect("always set");
    assert_eq!(
        (metadata.http_tokens.as_str(), metadata.hop_limit),
        ("required", 1)
    );
    assert_eq!(data.instance_type.as_deref(), Some("t3.medium"));
    // No network: no groups, no public address setting, no volumes.
    assert!(data.security_group_ids.is_empty() && data.block_devices.is_empty());
    assert_eq!(data.assign_public_ip, None);
}

#[test]
fn a_spot_price_is_sent_in_the_form_ec2_reads_back() {
    // EC2 answers `0.68` for `0.680`: the template must say so too, or
    // every plan would see a change.
    let mut c = config();
    full(&mut c);
    wt_mut(&mut c, "w").spot = Some(Spot {
        max_price: Some("0.680".into()),
    });
    let (plan, _) = build(&c, &World::new(Vec::new()));
    let data = create_of(&plan, "worker_type.w")
        .launch_template
        .as_ref()
        .expect("data");
    assert_eq!(data.spot_max_price.as_deref(), Some("0.68"));
}

#[test]
fn an_on_demand_worker_type_has_no_spot_price() {
    let mut c = config();
    full(&mut c);
    wt_mut(&mut c, "w").market = fleetform_engine::model::Market::OnDemand;
    let (plan, _) = build(&c, &World::new(Vec::new()));
    let data = create_of(&plan, "worker_type.w")
        .launch_template
        .as_ref()
        .expect("data");
    assert_eq!(data.spot_max_price, None);
    assert_eq!(data.market.as_deref(), Some("on-demand"));
}

#[test]
fn a_template_changed_by_hand_is_drift_in_each_field() {
    let mut c = config();
    full(&mut c);
    type Edit = fn(&mut fleetform_engine::provider::LaunchTemplateData);
    let cases: [(&str, Edit); 11] = [
        ("security_groups", |d| {
            d.security_group_ids = vec!["sg-9".into()]
        }),
        ("assign_public_ip", |d| d.assign_public_ip = Some(true)),
        ("volume./dev/xvdb.size_gb", |d| {
            d.block_devices[1].size_gb = 8
        }),
        ("root_volume.size_gb", |d| d.block_devices[0].size_gb = 8),
        ("root_volume.type", |d| {
            d.block_devices[0].volume_type = "gp2".into()
        }),
        ("spot.max_price", |d| d.spot_max_price = None),
        ("metadata.http_tokens", |d| {
            if let Some(m) = d.metadata.as_mut() {
                m.http_tokens = "optional".into();
            }
        }),
        ("metadata.hop_limit", |d| d.metadata = None),
        ("iam_instance_profile", |d| {
            d.iam_instance_profile = Some("admin".into())
        }),
        ("instance_type", |d| {
            d.instance_type = Some("m5.large".into())
        }),
        ("volume_tags.fleetform:address", |d| {
            d.volume_tags.remove(tags::ADDRESS);
        }),
    ];
    for (path, edit) in cases {
        let mut live = template(&c, "w");
        if let Some(data) = live.default_data.as_mut() {
            edit(data);
        }
        let (plan, _) = build(&c, &World::new(vec![live, template(&c, "plain")]));
        let update = create_of(&plan, "worker_type.w");
        assert_eq!(update.action, ActionKind::Update, "{path}");
        let paths: Vec<&str> = update.changes.iter().map(|c| c.path.as_str()).collect();
        assert!(paths.contains(&path), "{path} not in {paths:?}");
    }
    // Untouched, nothing changes.
    let (plan, _) = build(
        &c,
        &World::new(vec![template(&c, "w"), template(&c, "plain")]),
    );
    assert!(plan.is_empty(), "{:?}", plan.actions);
}

#[test]
fn a_template_made_before_imdsv2_defaults_is_updated_to_them() {
    let c = config();
    let mut live = template(&c, "plain");
    if let Some(data) = live.default_data.as_mut() {
        data.metadata = None;
        data.volume_tags.clear();
        data.instance_type = None;
    }
    let (plan, _) = build(&c, &World::new(vec![template(&c, "w"), live]));
    let update = create_of(&plan, "worker_type.plain");
    let changes: Vec<(&str, Option<&str>, Option<&str>)> = update
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.as_deref(), c.new.as_deref()))
        .collect();
    assert!(
        changes.contains(&("metadata.http_tokens", None, Some("required"))),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("metadata.hop_limit", None, Some("1"))),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("instance_type", None, Some("t3.medium"))),
        "{changes:?}"
    );
}

#[test]
fn launches_go_first_to_the_zones_with_the_least_capacity() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 6;
    let mut world = World::new(vec![template(&c, "w"), template(&c, "plain")]);
    world.instances = vec![
        instance("i-1", "us-east-1a", "m5.large", "w"),
        instance("i-2", "us-east-1a", "m5.large", "w"),
    ];
    let (plan, diags) = build(&c, &world);
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    let action = launch(&plan, "worker_type.w").expect("a launch");
    assert_eq!(action.count, Some(4));
    assert_eq!(action.instance_type.as_deref(), Some("m5.large"));
    assert_eq!(
        split(action),
        [
            ("us-east-1b".to_string(), "m5.large".to_string(), 2),
            ("us-east-1c".into(), "m5.large".into(), 2),
        ]
    );
    let placement = action.placement.as_ref().expect("placement");
    let pairs: Vec<(&str, &str)> = placement
        .pairs
        .iter()
        .map(|p| (p.zone.as_deref().unwrap_or(""), p.instance_type.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("us-east-1b", "m5.large"),
            ("us-east-1b", "c5.large"),
            ("us-east-1c", "m5.large"),
            ("us-east-1c", "c5.large"),
            ("us-east-1a", "m5.large"),
            ("us-east-1a", "c5.large"),
        ]
    );
    assert_eq!(placement.security_group_ids, ["sg-1"]);
    assert_eq!(plan.summary.launch, 4);
}

#[test]
fn excluded_and_unoffered_pairs_are_skipped_and_listed() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 3;
    if let Some(n) = c.networks.get_mut("untrusted") {
        n.exclude.insert("us-east-1a".into(), vec!["m5".into()]);
    }
    let mut world = World::new(vec![template(&c, "w"), template(&c, "plain")]);
    if let Observed::Complete { items } = &mut world.offerings {
        items.retain(|o| !(o.zone == "us-east-1b" && o.instance_type == "m5.large"));
    }
    let (plan, diags) = build(&c, &world);
    assert!(errors(&diags, Code::Offering).is_empty(), "{diags:?}");
    let skipped: Vec<(&str, &str, SkipReason)> = plan
        .skipped_pairs
        .iter()
        .filter(|s| s.address == "worker_type.w")
        .map(|s| (s.zone.as_str(), s.instance_type.as_str(), s.reason))
        .collect();
    assert_eq!(
        skipped,
        [
            ("us-east-1a", "m5.large", SkipReason::Excluded),
            ("us-east-1b", "m5.large", SkipReason::NotOffered),
        ]
    );
    let action = launch(&plan, "worker_type.w").expect("a launch");
    assert_eq!(
        split(action),
        [
            ("us-east-1a".to_string(), "c5.large".to_string(), 1),
            ("us-east-1b".into(), "c5.large".into(), 1),
            ("us-east-1c".into(), "m5.large".into(), 1),
        ]
    );
    let placement = action.placement.as_ref().expect("placement");
    assert!(!placement.pairs.iter().any(|p| {
        (p.zone.as_deref(), p.instance_type.as_str()) == (Some("us-east-1a"), "m5.large")
            || (p.zone.as_deref(), p.instance_type.as_str()) == (Some("us-east-1b"), "m5.large")
    }));
    let json = serde_json::to_value(&plan).expect("json");
    assert_eq!(json["skipped_pairs"][0]["reason"], "excluded");
    assert_eq!(json["skipped_pairs"][1]["reason"], "not-offered");
    // The text names what EC2 does not offer, and counts what the config excludes.
    let human = plan::render::human(&plan, false);
    assert!(
        human.contains("worker_type.w us-east-1: m5.large in us-east-1b"),
        "{human}"
    );
    assert!(!human.contains("m5.large in us-east-1a"), "{human}");
    assert!(
        human.contains("Skipped 1 (zone, instance type) pair that networks exclude"),
        "{human}"
    );
}

#[test]
fn a_missing_or_misplaced_subnet_or_group_is_ff012_and_nothing_launches_into_it() {
    let base = {
        let mut c = config();
        wt_mut(&mut c, "w").capacity.min = 2;
        wt_mut(&mut c, "plain").capacity.min = 1;
        c
    };
    let subnet_span = base.networks["untrusted"]
        .origin
        .attribute("subnets.us-east-1b");
    let group_span = base.networks["untrusted"]
        .origin
        .attribute("security_groups.us-east-1");
    type Break = fn(&mut World);
    let cases: [(&str, Break, bool); 4] = [
        (
            "does not exist",
            |w| {
                if let Observed::Complete { items } = &mut w.subnets {
                    items.retain(|s| s.id != "subnet-b");
                }
            },
            true,
        ),
        (
            "not in us-east-1b",
            |w| {
                if let Observed::Complete { items } = &mut w.subnets {
                    for s in items.iter_mut().filter(|s| s.id == "subnet-b") {
                        s.zone = "us-east-1c".into();
                    }
                }
            },
            true,
        ),
        (
            "security group sg-1",
            |w| w.groups = Observed::Complete { items: Vec::new() },
            false,
        ),
        (
            "is in vpc-2",
            |w| {
                if let Observed::Complete { items } = &mut w.groups {
                    items[0].vpc_id = "vpc-2".into();
                }
            },
            false,
        ),
    ];
    for (words, broken, at_subnet) in cases {
        let mut world = World::new(vec![template(&base, "w"), template(&base, "plain")]);
        broken(&mut world);
        let (plan, diags) = build(&base, &world);
        let found = errors(&diags, Code::Network);
        assert_eq!(found.len(), 1, "{words}: {diags:?}");
        assert!(found[0].is_error());
        assert!(found[0].message.contains(words), "{}", found[0].message);
        // It names what uses the network there, and nothing else.
        assert!(
            found[0]
                .message
                .ends_with("nothing launches for worker types [w] in us-east-1"),
            "{}",
            found[0].message
        );
        let span = if at_subnet { &subnet_span } else { &group_span };
        assert_eq!(&found[0].location, span, "{words}");
        assert!(launch(&plan, "worker_type.w").is_none(), "{words}");
        // The worker type without that network is not held back.
        assert!(launch(&plan, "worker_type.plain").is_some(), "{words}");
    }
}

#[test]
fn an_instance_type_no_zone_offers_is_ff013_at_its_block() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 2;
    let mut world = World::new(vec![template(&c, "w"), template(&c, "plain")]);
    if let Observed::Complete { items } = &mut world.offerings {
        items.retain(|o| o.instance_type != "c5.large");
    }
    let (plan, diags) = build(&c, &world);
    let found = errors(&diags, Code::Offering);
    assert_eq!(found.len(), 1, "{diags:?}");
    assert!(found[0].is_error() && found[0].message.contains("c5.large"));
    assert_eq!(
        found[0].location,
        c.worker_types["w"]
            .origin
            .attribute("instance_type.c5.large")
    );
    assert_eq!(
        plan.skipped_pairs
            .iter()
            .filter(|s| s.instance_type == "c5.large" && s.reason == SkipReason::NotOffered)
            .count(),
        3
    );
    // A worker type without a network is not judged by offerings.
    assert!(!found[0].message.contains("t3.medium"));
}

#[test]
fn a_worker_type_whose_every_pair_is_skipped_is_warned_about() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 2;
    if let Some(n) = c.networks.get_mut("untrusted") {
        for zone in ZONES {
            n.exclude.insert(zone.into(), vec!["m5".into()]);
        }
    }
    let mut world = World::new(vec![template(&c, "w"), template(&c, "plain")]);
    if let Observed::Complete { items } = &mut world.offerings {
        // c5.large is sold only in a zone the network has no subnet in.
        items.retain(|o| o.instance_type != "c5.large");
        items.push(Offering {
            instance_type: "c5.large".into(),
            zone: "us-east-1d".into(),
        });
    }
    let (plan, diags) = build(&c, &world);
    let found = errors(&diags, Code::Offering);
    assert_eq!(found.len(), 1, "{diags:?}");
    assert!(!found[0].is_error());
    assert!(
        found[0].message.contains("no (zone, instance type) pair"),
        "{}",
        found[0].message
    );
    assert!(launch(&plan, "worker_type.w").is_none());
    assert_eq!(plan.skipped_pairs.len(), 6);
}

#[test]
fn an_incomplete_read_of_subnets_groups_or_offerings_blinds_the_region() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 2;
    wt_mut(&mut c, "plain").capacity.min = 1;
    for kind in ["subnets", "security groups", "instance type offerings"] {
        let mut world = World::new(vec![template(&c, "w"), template(&c, "plain")]);
        let cause = "throttled".to_string();
        match kind {
            "subnets" => world.subnets = Observed::Incomplete { cause },
            "security groups" => world.groups = Observed::Incomplete { cause },
            _ => world.offerings = Observed::Incomplete { cause },
        }
        let (plan, diags) = build(&c, &world);
        assert!(
            plan.actions.iter().all(|a| a.action != ActionKind::Launch),
            "{kind}: {:?}",
            plan.actions
        );
        assert_eq!(plan.summary.skipped_regions, [REGION], "{kind}");
        assert_eq!(plan.incomplete.len(), 1, "{kind}");
        assert_eq!(plan.incomplete[0].kind.to_string(), kind);
        assert!(
            diags
                .iter()
                .any(|d| d.code == Code::BlindScaling && d.message.contains(kind)),
            "{kind}: {diags:?}"
        );
        assert!(
            errors(&diags, Code::Network).is_empty() && errors(&diags, Code::Offering).is_empty()
        );
    }
}

#[test]
fn the_saved_plan_fingerprint_covers_subnets_groups_and_offerings() {
    let c = config();
    let world = World::new(vec![template(&c, "w")]);
    let before = plan::saved::fingerprint(&world.observation(), None);
    for change in 0..3 {
        let mut moved = World::new(vec![template(&c, "w")]);
        match change {
            0 => {
                if let Observed::Complete { items } = &mut moved.subnets {
                    items[0].zone = "us-east-1c".into();
                }
            }
            1 => {
                if let Observed::Complete { items } = &mut moved.groups {
                    items[0].vpc_id = "vpc-2".into();
                }
            }
            _ => {
                if let Observed::Complete { items } = &mut moved.offerings {
                    items.pop();
                }
            }
        }
        assert_ne!(plan::saved::fingerprint(&moved.observation(), None), before);
    }
}

/// `w` whose c5.large has a larger second volume: it needs its own template.
fn with_own_template(c: &mut Config) {
    let wt = wt_mut(c, "w");
    wt.volumes.insert("/dev/xvdb".into(), volume(120));
    if let Some(it) = wt.instance_types.iter_mut().find(|t| t.name == "c5.large") {
        it.volumes.insert("/dev/xvdb".into(), volume(200));
    }
}

#[test]
fn an_instance_type_with_its_own_volumes_gets_its_own_template_and_launches_from_it() {
    let mut c = config();
    with_own_template(&mut c);
    wt_mut(&mut c, "w").capacity.min = 2;
    if let Some(n) = c.networks.get_mut("untrusted") {
        // Only c5.large may run in 1a and 1b; 1c is not used.
        n.exclude.insert("us-east-1a".into(), vec!["m5".into()]);
        n.exclude.insert("us-east-1b".into(), vec!["m5".into()]);
        n.exclude
            .insert("us-east-1c".into(), vec!["m5".into(), "c5".into()]);
    }
    let (plan, _) = build(&c, &World::new(vec![template(&c, "plain")]));
    let own = create_of(&plan, "worker_type.w.instance_type[\"c5.large\"]");
    assert_eq!(own.action, ActionKind::Create);
    assert_eq!(own.name.as_deref(), Some("f.w.c5.large"));
    assert_eq!(
        own.tags.get(tags::ADDRESS).map(String::as_str),
        Some("worker_type.w.instance_type[\"c5.large\"][\"us-east-1\"]")
    );
    let data = own.launch_template.as_ref().expect("data");
    assert_eq!(data.instance_type.as_deref(), Some("c5.large"));
    assert_eq!(data.block_devices[0].size_gb, 200);
    // Its instances are the worker type's: capacity is counted as before.
    assert_eq!(
        data.instance_tags.get(tags::ADDRESS).map(|t| t.as_str()),
        Some("worker_type.w[\"us-east-1\"]")
    );
    let main = create_of(&plan, "worker_type.w")
        .launch_template
        .as_ref()
        .expect("data");
    assert_eq!(main.block_devices[0].size_gb, 120);
    let action = launch(&plan, "worker_type.w").expect("launch");
    let placement = action.placement.as_ref().expect("placement");
    assert!(placement.pairs.iter().all(|p| {
        p.template.as_deref() == Some("worker_type.w.instance_type[\"c5.large\"]")
            && p.template_name.as_deref() == Some("f.w.c5.large")
    }));
    // A target of the worker type selects its instance types' templates.
    let (targeted, _) = plan::build(
        &c,
        &World::new(vec![template(&c, "plain")]).observation(),
        &PlanOptions {
            now: NOW,
            targets: vec!["worker_type.w[\"us-east-1\"]".into()],
            ..PlanOptions::default()
        },
    );
    assert!(targeted
        .actions
        .iter()
        .any(|a| a.address == "worker_type.w.instance_type[\"c5.large\"]"));
}

#[test]
fn a_template_an_instance_type_no_longer_needs_is_deleted() {
    let mut c = config();
    with_own_template(&mut c);
    let wt = &c.worker_types["w"];
    let it = wt
        .instance_types
        .iter()
        .find(|t| t.name == "c5.large")
        .expect("c5");
    let data = template_for(
        &c,
        wt,
        TemplateOf::InstanceType(it),
        REGION,
        Some(IMAGE.into()),
        Some("/dev/xvda"),
    );
    let address = "worker_type.w.instance_type[\"c5.large\"][\"us-east-1\"]";
    let own = ObservedLaunchTemplate {
        id: "lt-own".into(),
        name: "f.w.c5.large".into(),
        default_version: 1,
        latest_version: 1,
        default_data: Some(data),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (tags::ADDRESS.to_string(), address.to_string()),
        ]),
    };
    let world = World::new(vec![template(&c, "w"), template(&c, "plain"), own]);
    let (plan, _) = build(&c, &world);
    assert!(plan.is_empty(), "up to date: {:?}", plan.actions);
    // The instance type drops its own volume: its template goes.
    if let Some(it) = wt_mut(&mut c, "w")
        .instance_types
        .iter_mut()
        .find(|t| t.name == "c5.large")
    {
        it.volumes.clear();
    }
    let (plan, _) = build(&c, &world);
    let delete = create_of(&plan, "worker_type.w.instance_type[\"c5.large\"]");
    assert_eq!(
        (delete.action, delete.ids.as_slice()),
        (ActionKind::Delete, &["lt-own".to_string()][..])
    );
    // And `state list` names it by its worker type, not as an orphan.
    let (entries, _) = fleetform_engine::inventory::entries(&c, &world.observation());
    assert!(entries
        .iter()
        .any(|e| e.id == "lt-own" && e.address == address));
}

#[test]
fn sensitive_user_data_of_an_instance_type_is_withheld_from_its_template() {
    let mut c = config();
    if let Some(it) = wt_mut(&mut c, "w")
        .instance_types
        .iter_mut()
        .find(|t| t.name == "c5.large")
    {
        it.user_data = Some("token=canary-77\n".into());
        it.user_data_sensitive = true;
    }
    let (plan, _) = build(&c, &World::new(Vec::new()));
    let own = create_of(&plan, "worker_type.w.instance_type[\"c5.large\"]");
    assert_eq!(own.sensitive, ["user_data"]);
    assert_eq!(
        own.launch_template
            .as_ref()
            .and_then(|d| d.user_data.clone()),
        None
    );
    let json = serde_json::to_string(&plan).expect("json");
    assert!(!json.contains("canary-77"), "{json}");
    // Apply gets it back from the configuration.
    let withheld =
        fleetform_engine::sensitive::Withheld::of(&c, &Default::default()).expect("withheld");
    assert_eq!(
        withheld.user_data("worker_type.w.instance_type[\"c5.large\"]", REGION),
        Some("token=canary-77\n")
    );
}

#[test]
fn plans_without_the_new_features_keep_their_json_shape() {
    let mut c = loaded();
    wt_mut(&mut c, "plain").capacity.min = 2;
    let mut world = World::new(Vec::new());
    world.subnets = Observed::nothing();
    world.groups = Observed::nothing();
    world.offerings = Observed::nothing();
    let (plan, diags) = build(&c, &world);
    assert!(diags.is_empty(), "{diags:?}");
    let json = serde_json::to_string(&plan).expect("json");
    for absent in [
        "placement",
        "skipped_pairs",
        "security_group_ids",
        "block_devices",
    ] {
        assert!(!json.contains(absent), "{absent} in {json}");
    }
    let action = launch(&plan, "worker_type.plain").expect("launch");
    assert_eq!(
        (action.count, action.instance_type.as_deref()),
        (Some(2), Some("t3.medium"))
    );
}

// ---- apply: falling through from pair to pair ----

/// A provider that launches into every subnet but `failing`, which answers
/// with `code`; every RunInstances is recorded.
struct Zonal {
    failing: Vec<&'static str>,
    code: &'static str,
    calls: Mutex<Vec<Mutation>>,
}

impl Zonal {
    fn new(failing: &[&'static str], code: &'static str) -> Zonal {
        Zonal {
            failing: failing.to_vec(),
            code,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn launches(&self) -> Vec<(String, String, i32, String)> {
        self.calls
            .lock()
            .map(|calls| {
                calls
                    .iter()
                    .filter_map(|m| match m {
                        Mutation::RunInstances {
                            subnet,
                            instance_type,
                            count,
                            client_token,
                            ..
                        } => Some((
                            subnet
                                .as_ref()
                                .map(|s| s.subnet_id.clone())
                                .unwrap_or_default(),
                            instance_type.clone(),
                            *count,
                            client_token.clone(),
                        )),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Provider for Zonal {
    async fn caller(&self) -> Result<Caller, ProviderError> {
        Ok(Caller {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/test".into(),
        })
    }

    async fn observe(&self, _: &ObserveRequest) -> Observation {
        World::new(Vec::new()).observation()
    }

    async fn mutate(&self, _: &str, mutation: Mutation) -> Result<MutationOutcome, ProviderError> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(mutation.clone());
        }
        match mutation {
            Mutation::RunInstances {
                subnet,
                count,
                client_token,
                ..
            } => {
                let into = subnet.map(|s| s.subnet_id).unwrap_or_default();
                if self.failing.contains(&into.as_str()) {
                    return Err(ProviderError {
                        kind: ErrorKind::InvalidRequest,
                        code: Some(self.code.into()),
                        message: format!("{} in {into}", self.code),
                    });
                }
                Ok(MutationOutcome::Instances {
                    ids: (0..count)
                        .map(|i| format!("i-{client_token}-{i}"))
                        .collect(),
                })
            }
            Mutation::DryRunFromImage { subnet, .. } => {
                let into = subnet.map(|s| s.subnet_id).unwrap_or_default();
                if self.failing.contains(&into.as_str()) {
                    return Err(ProviderError {
                        kind: ErrorKind::DryRunFailed,
                        code: Some(self.code.into()),
                        message: format!("{} in {into}", self.code),
                    });
                }
                Ok(MutationOutcome::DryRunOk)
            }
            Mutation::CreateLaunchTemplate { name, .. } => Ok(MutationOutcome::LaunchTemplate {
                id: format!("lt-{name}"),
                version: 1,
            }),
            _ => Ok(MutationOutcome::Done),
        }
    }
}

/// Every intent (action, token) and outcome (action, ok) in order.
#[derive(Default)]
struct Recorded {
    intents: Mutex<Vec<(usize, String)>>,
    outcomes: Mutex<Vec<(usize, bool)>>,
}

impl Journal for Recorded {
    async fn intent(&self, index: usize, _: &Action, token: &str) -> Result<(), String> {
        self.intents
            .lock()
            .map_err(|e| e.to_string())?
            .push((index, token.to_string()));
        Ok(())
    }

    async fn outcome(&self, index: usize, result: &Result<Vec<String>, ProviderError>) {
        if let Ok(mut outcomes) = self.outcomes.lock() {
            outcomes.push((index, result.is_ok()));
        }
    }
}

/// The plan launching 3 of `w` into 1a, 1b and 1c (and 1 of `plain`).
fn launch_plan() -> (Config, plan::Plan) {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 3;
    wt_mut(&mut c, "plain").capacity.min = 1;
    let (plan, diags) = build(
        &c,
        &World::new(vec![template(&c, "w"), template(&c, "plain")]),
    );
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    let action = launch(&plan, "worker_type.w").expect("launch");
    assert_eq!(split(action).len(), 3, "{:?}", split(action));
    (c, plan)
}

fn execute(plan: &plan::Plan, provider: &Zonal, journal: &Recorded) -> Vec<apply::Outcome> {
    futures::executor::block_on(apply::execute(
        plan,
        &Default::default(),
        provider,
        4,
        journal,
        &|_, _| {},
    ))
}

fn outcome_of<'a>(
    plan: &plan::Plan,
    outcomes: &'a [apply::Outcome],
    address: &str,
) -> &'a apply::Outcome {
    outcomes
        .iter()
        .find(|o| {
            plan.actions[o.action].address == address
                && plan.actions[o.action].action == ActionKind::Launch
        })
        .expect("an outcome")
}

#[test]
fn a_zone_without_capacity_falls_through_to_the_next_pair_with_its_own_token() {
    let (_, plan) = launch_plan();
    let provider = Zonal::new(&["subnet-a"], "InsufficientInstanceCapacity");
    let journal = Recorded::default();
    let outcomes = execute(&plan, &provider, &journal);
    let w = outcome_of(&plan, &outcomes, "worker_type.w");
    let ids = w.result.as_ref().expect("the launch succeeds elsewhere");
    assert_eq!(ids.len(), 3);
    let launches: Vec<(String, String, i32)> = provider
        .launches()
        .into_iter()
        .filter(|(s, _, _, _)| !s.is_empty())
        .map(|(s, t, n, _)| (s, t, n))
        .collect();
    // 1a fails for m5.large, then for c5.large (same subnet); its part goes
    // to 1b, whose pair comes next; the other parts land where planned.
    assert_eq!(
        launches,
        [
            ("subnet-a".to_string(), "m5.large".to_string(), 1),
            ("subnet-a".into(), "c5.large".into(), 1),
            ("subnet-b".into(), "m5.large".into(), 1),
            ("subnet-b".into(), "m5.large".into(), 1),
            ("subnet-c".into(), "m5.large".into(), 1),
        ]
    );
    // Every attempt has its own intent and token.
    let index = plan
        .actions
        .iter()
        .position(|a| a.address == "worker_type.w" && a.action == ActionKind::Launch)
        .expect("index");
    let tokens: Vec<String> = journal
        .intents
        .lock()
        .map(|i| {
            i.iter()
                .filter(|(a, _)| *a == index)
                .map(|(_, t)| t.clone())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(tokens.len(), launches.len());
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), tokens.len(), "{tokens:?}");
    assert!(
        tokens.iter().all(|t| t.len() <= 64 && t.starts_with("ff-")),
        "{tokens:?}"
    );
    let sent: Vec<String> = provider
        .launches()
        .into_iter()
        .filter(|(s, _, _, _)| !s.is_empty())
        .map(|(_, _, _, t)| t)
        .collect();
    assert_eq!(sent, tokens, "the journal holds the tokens EC2 got");
    let outcomes_of_w: Vec<bool> = journal
        .outcomes
        .lock()
        .map(|o| {
            o.iter()
                .filter(|(a, _)| *a == index)
                .map(|(_, ok)| *ok)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(outcomes_of_w.iter().filter(|ok| !**ok).count(), 2);
    assert_eq!(outcomes_of_w.iter().filter(|ok| **ok).count(), 3);
}

#[test]
fn the_same_plan_run_again_repeats_its_attempt_tokens() {
    let (_, plan) = launch_plan();
    let tokens = |provider: &Zonal| -> Vec<String> {
        execute(&plan, provider, &Recorded::default());
        provider
            .launches()
            .into_iter()
            .map(|(_, _, _, t)| t)
            .collect()
    };
    let first = tokens(&Zonal::new(&["subnet-b"], "Unsupported"));
    let again = tokens(&Zonal::new(&["subnet-b"], "Unsupported"));
    assert!(!first.is_empty());
    assert_eq!(first, again);
}

#[test]
fn only_when_every_pair_fails_is_the_launch_a_failure_and_other_worker_types_go_on() {
    let (_, plan) = launch_plan();
    let provider = Zonal::new(
        &["subnet-a", "subnet-b", "subnet-c"],
        "InvalidSubnetID.NotFound",
    );
    let outcomes = execute(&plan, &provider, &Recorded::default());
    let w = outcome_of(&plan, &outcomes, "worker_type.w");
    let error = w.result.as_ref().expect_err("every pair failed");
    assert!(
        error
            .message
            .contains("every (zone, instance type) pair failed"),
        "{}",
        error.message
    );
    // Six pairs, each tried once: a failed pair is not tried again.
    let tried = provider
        .launches()
        .iter()
        .filter(|(s, _, _, _)| !s.is_empty())
        .count();
    assert_eq!(tried, 6);
    let plain = outcome_of(&plan, &outcomes, "worker_type.plain");
    assert_eq!(plain.result.as_ref().map(Vec::len), Ok(1));
}

#[test]
fn an_error_no_other_pair_would_avoid_stops_the_launch_at_once() {
    let (_, plan) = launch_plan();
    let provider = Zonal::new(&["subnet-a"], "UnauthorizedOperation");
    let outcomes = execute(&plan, &provider, &Recorded::default());
    let w = outcome_of(&plan, &outcomes, "worker_type.w");
    assert_eq!(
        w.result.as_ref().err().and_then(|e| e.code.as_deref()),
        Some("UnauthorizedOperation")
    );
    let into_a = provider
        .launches()
        .iter()
        .filter(|(s, _, _, _)| s == "subnet-a")
        .count();
    assert_eq!(into_a, 1);
    // Nothing else of the launch was tried: the first part stopped it.
    let of_w = provider
        .launches()
        .iter()
        .filter(|(s, _, _, _)| !s.is_empty())
        .count();
    assert_eq!(of_w, 1);
}

#[test]
fn a_launch_stopped_after_some_parts_landed_reports_what_they_launched() {
    let (_, plan) = launch_plan();
    // 1a and 1b launch; 1c meets an error no other pair would avoid.
    let provider = Zonal::new(&["subnet-c"], "UnauthorizedOperation");
    let outcomes = execute(&plan, &provider, &Recorded::default());
    let w = outcome_of(&plan, &outcomes, "worker_type.w");
    assert_eq!(
        w.result.as_ref().map(Vec::len),
        Ok(2),
        "recorded, so never launched twice"
    );
}

#[test]
fn the_dry_run_tries_each_part_with_its_subnet_groups_and_profile() {
    let mut c = config();
    full(&mut c);
    wt_mut(&mut c, "w").capacity.min = 2;
    // No template yet: the dry run goes from the image, with the profile.
    let (plan, _) = build(&c, &World::new(vec![template(&c, "plain")]));
    let provider = Zonal::new(&["subnet-b"], "InvalidSubnetID.NotFound");
    let found = futures::executor::block_on(plan::dry_run::dry_run(&plan, &c, &provider));
    let calls = provider.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let tried: Vec<(String, Vec<String>, Option<String>)> = calls
        .iter()
        .filter_map(|m| match m {
            Mutation::DryRunFromImage {
                subnet,
                iam_instance_profile,
                ..
            } => subnet.as_ref().map(|s| {
                (
                    s.subnet_id.clone(),
                    s.security_group_ids.clone(),
                    iam_instance_profile.clone(),
                )
            }),
            _ => None,
        })
        .collect();
    assert_eq!(
        tried,
        [
            (
                "subnet-a".to_string(),
                vec!["sg-1".to_string()],
                Some("gecko-workers".to_string())
            ),
            (
                "subnet-b".into(),
                vec!["sg-1".into()],
                Some("gecko-workers".into())
            ),
        ]
    );
    // The refusal names the subnet, at the instance type's block.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, Code::DryRun);
    assert!(
        found[0].message.contains("into subnet-b"),
        "{}",
        found[0].message
    );
    assert_eq!(
        found[0].location,
        c.worker_types["w"]
            .origin
            .attribute("instance_type.m5.large")
    );
}

// ---- what users see ----

/// A plan that updates `w`'s template (groups, a volume, the spot price and
/// hop limit changed by hand) and launches 4 of `w` over three zones.
fn shown_plan() -> plan::Plan {
    let mut c = config();
    full(&mut c);
    wt_mut(&mut c, "w").capacity.min = 4;
    if let Some(n) = c.networks.get_mut("untrusted") {
        n.exclude
            .insert("us-east-1c".into(), vec!["c5.large".into()]);
    }
    let mut live = template(&c, "w");
    if let Some(d) = live.default_data.as_mut() {
        d.security_group_ids = vec!["sg-0ld".into()];
        d.block_devices[1].size_gb = 100;
        d.spot_max_price = Some("0.50".into());
        if let Some(m) = d.metadata.as_mut() {
            m.hop_limit = 1;
        }
    }
    let mut world = World::new(vec![live, template(&c, "plain")]);
    world.instances = vec![instance("i-1", "us-east-1a", "m5.large", "w")];
    let (plan, diags) = build(&c, &world);
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    plan
}

#[test]
fn snapshot_of_the_new_diffs_and_a_split_launch() {
    let plan = shown_plan();
    insta::assert_snapshot!("launch_config_human", plan::render::human(&plan, false));
    insta::assert_snapshot!("launch_config_markdown", plan::render::markdown(&plan));
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "actions": plan.actions,
        "skipped_pairs": plan.skipped_pairs,
    }))
    .expect("json");
    insta::assert_snapshot!("launch_config_json", json);
}

#[test]
fn a_launch_uses_the_template_apply_just_made_for_its_instance_type() {
    let mut c = config();
    with_own_template(&mut c);
    wt_mut(&mut c, "w").capacity.min = 2;
    if let Some(n) = c.networks.get_mut("untrusted") {
        // Only c5.large, which has a template of its own, may launch.
        for zone in ZONES {
            n.exclude.insert(zone.into(), vec!["m5".into()]);
        }
    }
    let (plan, _) = build(&c, &World::new(vec![template(&c, "plain")]));
    let provider = Zonal::new(&[], "none");
    let outcomes = execute(&plan, &provider, &Recorded::default());
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    let calls = provider.calls.lock().map(|c| c.clone()).unwrap_or_default();
    let used: Vec<&str> = calls
        .iter()
        .filter_map(|m| match m {
            Mutation::RunInstances {
                template_id,
                instance_type,
                ..
            } if instance_type == "c5.large" => Some(template_id.as_str()),
            _ => None,
        })
        .collect();
    // Zonal names a template it creates `lt-<name>`.
    assert_eq!(used, ["lt-f.w.c5.large", "lt-f.w.c5.large"]);
}

#[test]
fn snapshot_of_new_templates_with_every_setting_and_an_instance_type_of_its_own() {
    let mut c = config();
    full(&mut c);
    with_own_template(&mut c);
    wt_mut(&mut c, "w").capacity.min = 2;
    let (plan, diags) = build(&c, &World::new(vec![template(&c, "plain")]));
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    insta::assert_snapshot!("launch_config_new_human", plan::render::human(&plan, false));
}

#[test]
fn an_instance_type_used_only_in_other_regions_is_never_launched_here() {
    let mut c = loaded();
    let wt = wt_mut(&mut c, "plain");
    wt.capacity.min = 2;
    wt.instance_types.insert(
        0,
        fleetform_engine::model::InstanceType {
            name: "m6g.large".into(),
            capacity: 1,
            regions: Some(vec!["eu-central-1".into()]),
            user_data: None,
            user_data_sensitive: false,
            volumes: BTreeMap::new(),
        },
    );
    let (plan, _) = build(&c, &World::new(Vec::new()));
    let action = launch(&plan, "worker_type.plain").expect("launch");
    assert_eq!(action.instance_type.as_deref(), Some("t3.medium"));
}

/// What a journal heard, in order: intents announced ahead and asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heard {
    Ahead(usize, String),
    Intent(usize, String),
}

/// A journal that records what it is told ahead and asked, in order.
#[derive(Default)]
struct Listening {
    heard: Mutex<Vec<Heard>>,
}

impl Journal for Listening {
    async fn intent(&self, index: usize, _: &Action, token: &str) -> Result<(), String> {
        self.heard
            .lock()
            .map_err(|e| e.to_string())?
            .push(Heard::Intent(index, token.to_string()));
        Ok(())
    }

    async fn outcome(&self, _: usize, _: &Result<Vec<String>, ProviderError>) {}

    fn intents_ahead(&self, ahead: &[apply::Ahead<'_>]) {
        if let Ok(mut heard) = self.heard.lock() {
            heard.extend(
                ahead
                    .iter()
                    .map(|a| Heard::Ahead(a.index, a.client_token.to_string())),
            );
        }
    }
}

/// Every intent the executor asks for of an action that is not a launch
/// split over pairs was announced before, once, with the same token; the
/// split launch's attempts are not (their tokens depend on what earlier
/// attempts met); and at parallelism 1 a phase's first announcement holds
/// the action in flight and the next four rounds, not the whole phase.
#[test]
fn intents_are_announced_ahead_once_before_they_are_asked_for() {
    let mut c = config();
    wt_mut(&mut c, "w").capacity.min = 3;
    wt_mut(&mut c, "plain").capacity.min = 1;
    for i in 0..6 {
        let mut more = c.worker_types["plain"].clone();
        more.name = format!("more{i}");
        c.worker_types.insert(more.name.clone(), more);
    }
    let (plan, diags) = build(&c, &World::new(Vec::new()));
    assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
    let templates = plan
        .actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate)
        .count();
    assert!(templates >= 8, "{templates} templates");
    let journal = Listening::default();
    let outcomes = futures::executor::block_on(apply::execute(
        &plan,
        &Default::default(),
        &Zonal::new(&[], "none"),
        1,
        &journal,
        &|_, _| {},
    ));
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");
    let heard = journal.heard.into_inner().expect("heard");
    let placed = |index: usize| plan.actions[index].placement.is_some();
    let mut asked_placed = 0;
    for (at, heard_now) in heard.iter().enumerate() {
        match heard_now {
            Heard::Intent(index, token) if placed(*index) => {
                asked_placed += 1;
                assert!(!heard.contains(&Heard::Ahead(*index, token.clone())));
            }
            Heard::Intent(index, token) => {
                let ahead = Heard::Ahead(*index, token.clone());
                let announced: Vec<usize> = heard
                    .iter()
                    .enumerate()
                    .filter(|(_, h)| **h == ahead)
                    .map(|(i, _)| i)
                    .collect();
                assert_eq!(announced.len(), 1, "{heard_now:?} announced once");
                assert!(announced[0] < at, "{heard_now:?} announced before");
            }
            Heard::Ahead(..) => {}
        }
    }
    assert!(asked_placed > 0, "the split launch journals its attempts");
    let first_run = heard
        .iter()
        .take_while(|h| matches!(h, Heard::Ahead(..)))
        .count();
    assert_eq!(first_run, apply::INTENTS_AHEAD_ROUNDS + 1, "{heard:?}");
}

//! Auto Scaling groups and bounds over a worker type's regions, as pure
//! engine logic on observations built by hand: decoding and FF014, the
//! group a plan makes (policy, weights, subnets, MaxSize, lifetime, tags),
//! no-op, lowered max (what Auto Scaling terminates counts in FF006),
//! refreshes, blind regions, switching between direct and asg, deleted
//! groups, and pool-wide bounds for direct scaling. No network.

use fleetform_engine::model::{CapacityScope, Config, Scaling};
use fleetform_engine::plan::build::{template_for, wanted_templates};
use fleetform_engine::plan::{self, Action, ActionKind, PlanOptions, Reason, Resource};
use fleetform_engine::provider::{
    tags, Caller, GroupInstance, GroupOverride, GroupSpec, GroupSpot, InstanceRefresh, Mutation,
    MutationOutcome, Observation, ObserveRequest, Observed, ObservedGroup, ObservedImage,
    ObservedInstance, ObservedLaunchTemplate, ObservedSecurityGroup, ObservedSubnet, Offering,
    Provider, ProviderError, RegionObservation,
};
use fleetform_engine::{Code, Diagnostic, Severity};
use std::collections::BTreeMap;

const IMAGE: &str = "ami-0123456789abcdef0";
const NOW: i64 = 10_000_000;
const REGIONS: [&str; 3] = ["us-east-1", "us-west-1", "us-west-2"];

fn hcl(worker: &str) -> String {
    format!(
        r#"
fleet "f" {{
  regions = ["us-east-1", "us-west-1", "us-west-2"]
  limits {{
    max_launches     = 1000
    max_terminations = 5
  }}
}}

ami_set "linux" {{
  images = {{
    "us-east-1" = "{IMAGE}"
    "us-west-1" = "{IMAGE}"
    "us-west-2" = "{IMAGE}"
  }}
}}

network "untrusted" {{
  subnets = {{
    "us-east-1a" = "subnet-000000ea"
    "us-east-1b" = "subnet-000000eb"
    "us-west-1b" = "subnet-0000000b"
    "us-west-2a" = "subnet-000000a2"
  }}
  security_groups = {{
    "us-east-1" = ["sg-0000000e"]
    "us-west-1" = ["sg-0000000f"]
    "us-west-2" = ["sg-000000a0"]
  }}
}}

{worker}
"#
    )
}

const ASG: &str = r#"
worker_type "gecko" {
  ami_set = ami_set.linux
  network = network.untrusted
  scaling = "asg"
  market  = "spot"
  max_lifetime = "2d"
  tags = { team = "ci" }

  spot {
    max_price = "0.680"
  }

  instance_type "m5.large" { capacity = 1 }
  instance_type "m5.2xlarge" { capacity = 4 }

  capacity {
    min = 2
    max = 40
  }

  instance_refresh {
    min_healthy_percentage = 75
  }
}
"#;

fn load(text: &str) -> (Config, Vec<Diagnostic>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), text).expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    let diags = loaded.diagnostics.clone();
    match loaded.config {
        Some(config) => (config, diags),
        None => panic!("not valid: {diags:#?}"),
    }
}

fn config(worker: &str) -> Config {
    load(&hcl(worker)).0
}

/// The diagnostics of a configuration that may not load.
fn diagnostics(worker: &str) -> Vec<Diagnostic> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), hcl(worker)).expect("write");
    fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default()).diagnostics
}

fn zone_subnets(region: &str) -> Vec<(&'static str, &'static str)> {
    match region {
        "us-east-1" => vec![
            ("us-east-1a", "subnet-000000ea"),
            ("us-east-1b", "subnet-000000eb"),
        ],
        "us-west-1" => vec![("us-west-1b", "subnet-0000000b")],
        _ => vec![("us-west-2a", "subnet-000000a2")],
    }
}

fn fleet_tags(address: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::FLEET.to_string(), "f".to_string()),
        (tags::ADDRESS.to_string(), address.to_string()),
    ])
}

/// What EC2 holds in one region.
#[derive(Clone, Default)]
struct Region {
    templates: Vec<ObservedLaunchTemplate>,
    instances: Vec<ObservedInstance>,
    groups: Vec<ObservedGroup>,
    blind: bool,
}

/// Every template `c` wants in `region`, exactly as it wants them.
fn templates(c: &Config, region: &str) -> Vec<ObservedLaunchTemplate> {
    let mut out = Vec::new();
    for wt in c
        .worker_types
        .values()
        .filter(|w| w.regions.iter().any(|r| r == region))
    {
        for (action, tag, name, of) in wanted_templates(c, wt, region) {
            let data = template_for(c, wt, of, region, Some(IMAGE.into()), Some("/dev/xvda"));
            out.push(ObservedLaunchTemplate {
                id: format!("lt-{}", action.replace(['.', '[', ']', '"'], "")),
                name,
                default_version: 1,
                latest_version: 1,
                default_data: Some(data),
                tags: fleet_tags(&tag).into(),
            });
        }
    }
    out
}

fn instance(id: &str, region: &str, worker_type: &str, instance_type: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        state: "running".into(),
        instance_type: instance_type.into(),
        launch_time: NOW - 3600,
        image_id: IMAGE.into(),
        key_name: None,
        launch_template: None,
        tags: fleet_tags(&format!("worker_type.{worker_type}[\"{region}\"]")).into(),
        zone: Some(zone_subnets(region)[0].0.to_string()),
        subnet_id: Some(zone_subnets(region)[0].1.to_string()),
    }
}

/// The group the plan of `c` would create in `region`, as Auto Scaling
/// would then report it (with `members` in it at `desired`).
fn group_as_made(
    c: &Config,
    region: &str,
    members: &[(&str, &str)],
    desired: i64,
) -> ObservedGroup {
    let (plan, _) = build(c, &world(c, |_| Region::default()));
    let planned = plan
        .actions
        .iter()
        .find(|a| {
            a.region == region
                && a.resource == Resource::AutoScalingGroup
                && a.action == ActionKind::Create
        })
        .and_then(|a| a.auto_scaling_group.clone())
        .expect("a group is created");
    let ids: BTreeMap<String, String> = templates(c, region)
        .into_iter()
        .map(|t| {
            let address = plan::build::action_address(&t.tags[tags::ADDRESS], region);
            (address, t.id)
        })
        .collect();
    let spec = GroupSpec {
        name: planned.name.clone(),
        launch_template_id: ids["worker_type.gecko"].clone(),
        overrides: planned
            .overrides
            .iter()
            .map(|o| GroupOverride {
                instance_type: o.instance_type.clone(),
                weight: o.weight,
                launch_template_id: o.template.as_ref().map(|t| ids[t].clone()),
            })
            .collect(),
        subnet_ids: planned.subnet_ids.clone(),
        min_size: i64::from(planned.min),
        max_size: i64::from(planned.max_size),
        desired_capacity: None,
        max_instance_lifetime_secs: planned.max_instance_lifetime_secs.map(|s| s as i64),
        spot: planned.spot.as_ref().map(|s| GroupSpot {
            max_price: s.max_price.clone(),
        }),
        tags: planned.tags.clone(),
    };
    ObservedGroup {
        tags: spec.tags.clone(),
        spec,
        desired_capacity: desired,
        instances: members
            .iter()
            .map(|(id, instance_type)| GroupInstance {
                id: id.to_string(),
                instance_type: instance_type.to_string(),
                lifecycle_state: "InService".into(),
                launch_template_version: Some("1".into()),
            })
            .collect(),
        refresh_in_flight: None,
    }
}

/// A group member as EC2 lists it: the group's tags propagated, and Auto
/// Scaling's own.
fn member(id: &str, region: &str, instance_type: &str) -> ObservedInstance {
    let mut i = instance(id, region, "gecko", instance_type);
    i.tags
        .insert("aws:autoscaling:groupName".into(), "f.gecko".into());
    i
}

fn world(c: &Config, mut region: impl FnMut(&str) -> Region) -> Observation {
    let mut regions = BTreeMap::new();
    for name in REGIONS {
        let r = region(name);
        let subnets = zone_subnets(name)
            .into_iter()
            .map(|(zone, id)| ObservedSubnet {
                id: id.into(),
                zone: zone.into(),
                vpc_id: "vpc-1".into(),
            })
            .collect();
        let sg = c.networks["untrusted"].security_groups[name][0].clone();
        let offerings = zone_subnets(name)
            .into_iter()
            .flat_map(|(zone, _)| {
                ["m5.large", "m5.2xlarge", "c5.large"].map(|t| Offering {
                    instance_type: t.into(),
                    zone: zone.into(),
                })
            })
            .collect();
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
        let instances = if r.blind {
            Observed::Incomplete {
                cause: "throttled".into(),
            }
        } else {
            Observed::Complete {
                items: r.instances.clone(),
            }
        };
        regions.insert(
            name.to_string(),
            RegionObservation {
                key_pairs: Observed::Complete { items: Vec::new() },
                images: Observed::Complete { items: vec![image] },
                launch_templates: Observed::Complete {
                    items: r.templates.clone(),
                },
                instances,
                subnets: Observed::Complete { items: subnets },
                security_groups: Observed::Complete {
                    items: vec![ObservedSecurityGroup {
                        id: sg,
                        name: "untrusted".into(),
                        vpc_id: "vpc-1".into(),
                    }],
                },
                offerings: Observed::Complete { items: offerings },
                auto_scaling_groups: Observed::Complete {
                    items: r.groups.clone(),
                },
                adoptable: Observed::nothing(),
            },
        );
    }
    Observation {
        regions,
        api_calls: 0,
    }
}

fn build(c: &Config, observation: &Observation) -> (plan::Plan, Vec<Diagnostic>) {
    plan::build(
        c,
        observation,
        &PlanOptions {
            now: NOW,
            ..PlanOptions::default()
        },
    )
}

fn group_actions<'a>(plan: &'a plan::Plan, region: &str) -> Vec<&'a Action> {
    plan.actions
        .iter()
        .filter(|a| {
            a.region == region
                && (a.resource == Resource::AutoScalingGroup
                    || matches!(a.action, ActionKind::Attach | ActionKind::Detach))
        })
        .collect()
}

/// Records the mutations apply makes, in order; creations answer with ids.
#[derive(Default)]
struct Recording {
    calls: std::sync::Mutex<Vec<String>>,
}

impl Provider for Recording {
    async fn caller(&self) -> Result<Caller, ProviderError> {
        Ok(Caller {
            account: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:user/t".into(),
        })
    }

    async fn observe(&self, _: &ObserveRequest) -> Observation {
        Observation {
            regions: BTreeMap::new(),
            api_calls: 0,
        }
    }

    async fn mutate(
        &self,
        region: &str,
        mutation: Mutation,
    ) -> Result<MutationOutcome, ProviderError> {
        let line = match &mutation {
            Mutation::CreateAutoScalingGroup { spec } => format!(
                "create {} min {} desired {:?} template {}",
                spec.name, spec.min_size, spec.desired_capacity, spec.launch_template_id
            ),
            Mutation::UpdateAutoScalingGroup { spec, .. } => format!(
                "update {} min {} desired {:?}",
                spec.name, spec.min_size, spec.desired_capacity
            ),
            Mutation::DeleteAutoScalingGroup { name } => format!("delete {name}"),
            Mutation::AttachInstances { name, ids } => format!("attach {name} {}", ids.join(",")),
            Mutation::DetachInstances { name, ids } => format!("detach {name} {}", ids.join(",")),
            Mutation::StartInstanceRefresh { name, .. } => format!("refresh {name}"),
            Mutation::CreateLaunchTemplateVersion { template_id, .. } => {
                format!("template version {template_id}")
            }
            Mutation::CreateLaunchTemplate { name, .. } => format!("template {name}"),
            other => format!("{other:?}")
                .split(' ')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        self.calls
            .lock()
            .expect("calls")
            .push(format!("{region} {line}"));
        Ok(match mutation {
            Mutation::CreateLaunchTemplate { .. }
            | Mutation::CreateLaunchTemplateVersion { .. } => MutationOutcome::LaunchTemplate {
                id: "lt-made".into(),
                version: 2,
            },
            _ => MutationOutcome::Done,
        })
    }
}

/// The calls apply makes for `plan` in us-east-1, in order.
fn applied(plan: &plan::Plan) -> Vec<String> {
    let provider = Recording::default();
    let outcomes = futures::executor::block_on(fleetform_engine::apply::execute(
        plan,
        &fleetform_engine::sensitive::Withheld::default(),
        &provider,
        1,
        &fleetform_engine::apply::NoJournal,
        &|_, _| {},
    ));
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:#?}");
    let calls = provider.calls.lock().expect("calls").clone();
    calls
        .into_iter()
        .filter_map(|c| c.strip_prefix("us-east-1 ").map(str::to_string))
        .filter(|c| !c.starts_with("template") && c != "SetDefaultVersion")
        .collect()
}

fn with_code(diags: &[Diagnostic], code: Code) -> Vec<&Diagnostic> {
    diags.iter().filter(|d| d.code == code).collect()
}

#[test]
fn scaling_scope_and_refresh_decode() {
    let c = config(ASG);
    let wt = &c.worker_types["gecko"];
    assert_eq!(wt.scaling, Scaling::Asg);
    assert_eq!(wt.capacity.scope, CapacityScope::Region);
    assert_eq!(
        wt.instance_refresh.map(|r| r.min_healthy_percentage),
        Some(75)
    );
    let pooled = config(&ASG.replace("max = 40", "max = 40\n    scope = \"worker_type\""));
    assert_eq!(
        pooled.worker_types["gecko"].capacity.scope,
        CapacityScope::WorkerType
    );
}

#[test]
fn ff014_asg_without_network_short_lifetime_refresh_on_direct_and_tight_bounds() {
    let no_network = diagnostics(&ASG.replace("network = network.untrusted", ""));
    let found = with_code(&no_network, Code::AutoScaling);
    assert_eq!(found.len(), 1, "{no_network:#?}");
    assert!(
        found[0].message.contains("no network"),
        "{}",
        found[0].message
    );
    assert!(found[0].location.is_some(), "at the scaling attribute");

    let short = diagnostics(&ASG.replace("\"2d\"", "\"12h\""));
    assert!(
        with_code(&short, Code::AutoScaling)
            .iter()
            .any(|d| d.message.contains("at least one day")),
        "{short:#?}"
    );

    let direct = diagnostics(&ASG.replace("scaling = \"asg\"", "scaling = \"direct\""));
    assert!(
        with_code(&direct, Code::AutoScaling)
            .iter()
            .any(|d| d.message.contains("instance_refresh")),
        "{direct:#?}"
    );

    // Weight 4 under max 4: MaxSize 1, below min 2.
    let tight = diagnostics(&ASG.replace("max = 40", "max = 4"));
    assert!(
        with_code(&tight, Code::AutoScaling)
            .iter()
            .any(|d| d.message.contains("MaxSize")),
        "{tight:#?}"
    );

    let bad = diagnostics(&ASG.replace("= 75", "= 150"));
    assert!(
        bad.iter().any(|d| d.message.contains("0 to 100")),
        "{bad:#?}"
    );

    let scaling = diagnostics(&ASG.replace("\"asg\"", "\"groups\""));
    assert!(
        scaling
            .iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("scaling")),
        "{scaling:#?}"
    );
}

#[test]
fn exclude_on_an_asg_network_is_a_warning() {
    let text = hcl(ASG).replace(
        "  security_groups = {\n    \"us-east-1\" = [\"sg-0000000e\"]",
        "  exclude = { \"us-east-1a\" = [\"m5.2xlarge\"] }\n  security_groups = {\n    \"us-east-1\" = [\"sg-0000000e\"]",
    );
    let (_, diags) = load(&text);
    let found = with_code(&diags, Code::AutoScaling);
    assert_eq!(found.len(), 1, "{diags:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
}

#[test]
fn a_new_group_has_the_policy_weights_subnets_bounds_lifetime_and_tags() {
    let c = config(ASG);
    let (plan, diags) = build(&c, &world(&c, |_| Region::default()));
    assert!(
        diags.iter().all(|d| d.severity != Severity::Error),
        "{diags:#?}"
    );
    // Auto Scaling launches: fleetform does not.
    assert!(
        plan.actions.iter().all(|a| a.action != ActionKind::Launch),
        "{:#?}",
        plan.actions
    );
    let east = group_actions(&plan, "us-east-1");
    assert_eq!(east.len(), 1, "{east:#?}");
    let create = east[0];
    assert_eq!(create.action, ActionKind::Create);
    assert_eq!(create.reason, Reason::New);
    let g = create.auto_scaling_group.as_ref().expect("group");
    assert_eq!(g.name, "f.gecko");
    assert_eq!(g.launch_template_id, None, "the template this plan creates");
    let weights: Vec<(&str, u32)> = g
        .overrides
        .iter()
        .map(|o| (o.instance_type.as_str(), o.weight))
        .collect();
    assert_eq!(weights, vec![("m5.large", 1), ("m5.2xlarge", 4)]);
    assert_eq!(g.subnet_ids, vec!["subnet-000000ea", "subnet-000000eb"]);
    assert_eq!((g.min, g.max, g.max_size), (2, 40, 37));
    assert_eq!(g.desired_capacity, Some(2));
    assert_eq!(g.max_instance_lifetime_secs, Some(2 * 86_400));
    assert_eq!(
        g.spot.as_ref().and_then(|s| s.max_price.as_deref()),
        Some("0.68")
    );
    assert_eq!(g.tags.get("team").map(String::as_str), Some("ci"));
    assert_eq!(
        g.tags.get(tags::ADDRESS).map(String::as_str),
        Some("worker_type.gecko[\"us-east-1\"]")
    );
    assert_eq!(g.tags.get(tags::FLEET).map(String::as_str), Some("f"));
    // The template carries no market options under a group.
    let template = plan
        .actions
        .iter()
        .find(|a| a.resource == Resource::LaunchTemplate && a.region == "us-east-1")
        .and_then(|a| a.launch_template.as_ref())
        .expect("template created");
    assert_eq!(template.market, None);
    assert_eq!(template.spot_max_price, None);
    let text = plan::render::human(&plan, false);
    assert!(text.contains("MaxSize 37"), "{text}");
}

#[test]
fn a_group_as_made_is_a_no_op() {
    let c = config(ASG);
    let observation = world(&c, |region| Region {
        templates: templates(&c, region),
        groups: vec![group_as_made(&c, region, &[], 2)],
        ..Region::default()
    });
    let (plan, _) = build(&c, &observation);
    assert!(plan.actions.is_empty(), "{:#?}", plan.actions);
}

#[test]
fn a_lowered_max_clamps_the_desired_capacity_and_counts_what_auto_scaling_terminates() {
    let c = config(ASG);
    let members: Vec<(String, &str)> = (0..30).map(|i| (format!("i-{i:02}"), "m5.large")).collect();
    let member_refs: Vec<(&str, &str)> = members.iter().map(|(i, t)| (i.as_str(), *t)).collect();
    let observation = world(&c, |region| Region {
        templates: templates(&c, region),
        groups: vec![group_as_made(&c, region, &member_refs, 30)],
        instances: members
            .iter()
            .map(|(id, t)| member(id, region, t))
            .collect(),
        ..Region::default()
    });
    let lowered = config(&ASG.replace("max = 40", "max = 20"));
    let (plan, diags) = build(&lowered, &observation);
    let east = group_actions(&plan, "us-east-1");
    assert_eq!(east.len(), 1, "{east:#?}");
    let update = east[0];
    assert_eq!(update.action, ActionKind::Update);
    let g = update.auto_scaling_group.as_ref().expect("group");
    assert_eq!(g.max_size, 17);
    assert_eq!(g.desired_capacity, Some(17));
    assert_eq!(update.count, Some(13), "30 in service, 17 stay");
    let paths: Vec<&str> = update.changes.iter().map(|c| c.path.as_str()).collect();
    assert!(
        paths.contains(&"max_size") && paths.contains(&"desired_capacity"),
        "{paths:?}"
    );
    assert_eq!(plan.summary.terminate, 3 * 13);
    // Above the termination limit (5): FF006 blocks it.
    assert!(
        with_code(&diags, Code::BlastRadius)
            .iter()
            .any(|d| d.severity == Severity::Error),
        "{diags:#?}"
    );
    // Members are the group's: direct scaling never terminates them itself.
    assert!(plan
        .actions
        .iter()
        .all(|a| a.action != ActionKind::Terminate));
}

#[test]
fn a_template_change_starts_one_refresh_and_none_while_one_is_in_flight() {
    let c = config(ASG);
    let changed = config(&ASG.replace("team = \"ci\"", "team = \"release\""));
    let observation = |in_flight: bool| {
        world(&c, |region| {
            let mut group = group_as_made(&changed, region, &[], 2);
            group.refresh_in_flight = in_flight.then(|| InstanceRefresh {
                id: "r-1".into(),
                status: "InProgress".into(),
                percentage_complete: Some(40),
            });
            Region {
                templates: templates(&c, region),
                groups: vec![group],
                ..Region::default()
            }
        })
    };
    let (plan, _) = build(&changed, &observation(false));
    let east = group_actions(&plan, "us-east-1");
    let refresh: Vec<&&Action> = east
        .iter()
        .filter(|a| a.action == ActionKind::Refresh)
        .collect();
    assert_eq!(refresh.len(), 1, "{east:#?}");
    assert_eq!(refresh[0].reason, Reason::TemplateChanged);
    assert_eq!(
        refresh[0]
            .auto_scaling_group
            .as_ref()
            .and_then(|g| g.min_healthy_percentage),
        Some(75)
    );
    assert!(plan
        .actions
        .iter()
        .any(|a| a.resource == Resource::LaunchTemplate
            && a.action == ActionKind::Update
            && a.region == "us-east-1"));

    let (plan, diags) = build(&changed, &observation(true));
    assert!(
        plan.actions.iter().all(|a| a.action != ActionKind::Refresh),
        "{:#?}",
        plan.actions
    );
    assert!(
        with_code(&diags, Code::AutoScaling)
            .iter()
            .any(|d| d.message.contains("r-1") && d.message.contains("40% done")),
        "{diags:#?}"
    );
}

#[test]
fn a_blind_region_changes_no_group() {
    let c = config(ASG);
    let observation = world(&c, |region| Region {
        blind: region == "us-west-1",
        ..Region::default()
    });
    let (plan, diags) = build(&c, &observation);
    assert!(group_actions(&plan, "us-west-1").is_empty());
    assert_eq!(group_actions(&plan, "us-east-1").len(), 1);
    assert!(!with_code(&diags, Code::BlindScaling).is_empty());
}

#[test]
fn switching_from_direct_attaches_the_running_instances_and_terminates_nothing() {
    let direct = config(&ASG.replace("scaling = \"asg\"", "").replace(
        "  instance_refresh {\n    min_healthy_percentage = 75\n  }\n",
        "",
    ));
    let asg = config(ASG);
    let observation = world(&asg, |region| Region {
        templates: templates(&direct, region),
        instances: vec![
            instance("i-a", region, "gecko", "m5.large"),
            instance("i-b", region, "gecko", "m5.2xlarge"),
        ],
        ..Region::default()
    });
    let (plan, _) = build(&asg, &observation);
    let east = group_actions(&plan, "us-east-1");
    assert!(
        east.iter().all(|a| a.reason == Reason::ScalingChanged),
        "{east:#?}"
    );
    assert!(plan
        .actions
        .iter()
        .all(|a| !matches!(a.action, ActionKind::Terminate | ActionKind::Launch)));
    assert_eq!(plan.summary.terminate, 0);
    // The group starts empty, takes the instances (5 units, above min 2,
    // so the desired capacity is left alone), then gets its min.
    assert_eq!(
        applied(&plan),
        vec![
            "create f.gecko min 0 desired Some(0) template lt-worker_typegecko",
            "attach f.gecko i-a,i-b",
            "update f.gecko min 2 desired None",
        ]
    );
}

#[test]
fn switching_back_to_direct_detaches_before_the_group_goes() {
    let asg = config(ASG);
    let direct = config(&ASG.replace("scaling = \"asg\"", "").replace(
        "  instance_refresh {\n    min_healthy_percentage = 75\n  }\n",
        "",
    ));
    let observation = world(&asg, |region| Region {
        templates: templates(&asg, region),
        groups: vec![group_as_made(
            &asg,
            region,
            &[("i-a", "m5.large"), ("i-b", "m5.large")],
            2,
        )],
        instances: vec![
            member("i-a", region, "m5.large"),
            member("i-b", region, "m5.large"),
        ],
        ..Region::default()
    });
    let (plan, _) = build(&direct, &observation);
    let east = group_actions(&plan, "us-east-1");
    let delete = east
        .iter()
        .find(|a| a.action == ActionKind::Delete)
        .expect("the group goes");
    assert_eq!(
        delete.count, None,
        "its instances are detached, not terminated"
    );
    assert_eq!(plan.summary.terminate, 0);
    assert!(plan
        .actions
        .iter()
        .all(|a| a.action != ActionKind::Terminate));
    // Min comes down first (detaching lowers the desired capacity), then
    // the instances leave, then the group goes.
    assert_eq!(
        applied(&plan),
        vec![
            "update f.gecko min 0 desired None",
            "detach f.gecko i-a,i-b",
            "delete f.gecko",
        ]
    );
}

#[test]
fn a_removed_worker_type_deletes_its_group_with_its_instances_counted_once() {
    let asg = config(ASG);
    let other = config(
        r#"
worker_type "other" {
  ami_set = ami_set.linux
  instance_type "m5.large" { capacity = 1 }
  capacity {
    max = 1
  }
}
"#,
    );
    let observation = world(&asg, |region| Region {
        templates: templates(&asg, region),
        groups: vec![group_as_made(
            &asg,
            region,
            &[("i-a", "m5.large"), ("i-b", "m5.large")],
            2,
        )],
        instances: vec![
            member("i-a", region, "m5.large"),
            member("i-b", region, "m5.large"),
        ],
        ..Region::default()
    });
    let (plan, _) = build(&other, &observation);
    let east = group_actions(&plan, "us-east-1");
    assert_eq!(east.len(), 1, "{east:#?}");
    assert_eq!(east[0].action, ActionKind::Delete);
    assert_eq!(east[0].reason, Reason::Orphan);
    assert_eq!(east[0].count, Some(2));
    // Not terminated a second time as orphans.
    assert!(
        plan.actions
            .iter()
            .all(|a| a.action != ActionKind::Terminate),
        "{:#?}",
        plan.actions
    );
    assert_eq!(plan.summary.terminate, 6);
}

const POOL: &str = r#"
worker_type "pool" {
  ami_set = ami_set.linux

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min   = 9
    max   = 12
    scope = "worker_type"
  }
}
"#;

fn launched(plan: &plan::Plan, region: &str) -> u32 {
    plan.actions
        .iter()
        .filter(|a| a.region == region && a.action == ActionKind::Launch)
        .filter_map(|a| a.count)
        .sum()
}

#[test]
fn pool_bounds_launch_first_where_the_least_runs() {
    let c = config(POOL);
    let observation = world(&c, |region| Region {
        templates: templates(&c, region),
        instances: match region {
            "us-east-1" => (0..5)
                .map(|i| instance(&format!("i-e{i}"), region, "pool", "m5.large"))
                .collect(),
            "us-west-1" => vec![instance("i-w0", region, "pool", "m5.large")],
            _ => Vec::new(),
        },
        ..Region::default()
    });
    let (plan, _) = build(&c, &observation);
    // 6 running, 3 missing: to us-west-2 (0) first, then the tie in fleet order.
    assert_eq!(launched(&plan, "us-east-1"), 0);
    assert_eq!(launched(&plan, "us-west-1"), 1);
    assert_eq!(launched(&plan, "us-west-2"), 2);
    assert_eq!(plan.summary.launch, 3);
}

#[test]
fn pool_bounds_terminate_first_where_the_most_runs() {
    let c = config(POOL);
    let observation = world(&c, |region| Region {
        templates: templates(&c, region),
        instances: (0..if region == "us-west-2" { 2 } else { 6 })
            .map(|i| instance(&format!("i-{region}-{i}"), region, "pool", "m5.large"))
            .collect(),
        ..Region::default()
    });
    let (plan, _) = build(&c, &observation);
    // 14 running, max 12: one each from the two regions running 6.
    let terminated = |region: &str| -> usize {
        plan.actions
            .iter()
            .filter(|a| a.region == region && a.action == ActionKind::Terminate)
            .map(|a| a.ids.len())
            .sum()
    };
    assert_eq!(
        (
            terminated("us-east-1"),
            terminated("us-west-1"),
            terminated("us-west-2")
        ),
        (1, 1, 0)
    );
}

#[test]
fn a_blind_region_blinds_a_pooled_worker_type_everywhere() {
    let c = config(POOL);
    let observation = world(&c, |region| Region {
        templates: templates(&c, region),
        blind: region == "us-west-1",
        ..Region::default()
    });
    let (plan, _) = build(&c, &observation);
    assert_eq!(plan.summary.launch, 0, "{:#?}", plan.actions);
}

#[test]
fn asg_pool_bounds_split_evenly_with_the_remainder_first() {
    let c = config(&ASG.replace("max = 40", "max = 40\n    scope = \"worker_type\""));
    let wt = &c.worker_types["gecko"];
    let shares: Vec<(u32, u32)> = REGIONS
        .iter()
        .map(|r| wt.group_bounds_in(r, &c.fleet.regions))
        .collect();
    assert_eq!(shares, vec![(1, 14), (1, 13), (0, 13)]);
    let (plan, _) = build(&c, &world(&c, |_| Region::default()));
    let maxima: Vec<u32> = REGIONS
        .iter()
        .map(|r| {
            group_actions(&plan, r)[0]
                .auto_scaling_group
                .as_ref()
                .map_or(0, |g| g.max)
        })
        .collect();
    assert_eq!(maxima, vec![14, 13, 13]);
}

#[test]
fn ff007_counts_a_pooled_max_once() {
    let per_region = config(POOL.replace("    scope = \"worker_type\"\n", "").as_str());
    let pooled = config(POOL);
    let cost =
        |c: &Config| fleetform_engine::checks::max_hourly_cost(&c.worker_types["pool"]).hourly_usd;
    let ratio = cost(&per_region) / cost(&pooled);
    assert!((ratio - 3.0).abs() < 1e-9, "{ratio}");
}

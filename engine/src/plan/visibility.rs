//! What EC2 does not list yet is not gone (README, "Reading EC2").
//!
//! EC2's reads are eventually consistent: an instance, launch template or
//! key pair just created can be missing from a Describe call that looks
//! complete, for seconds to minutes. An object that fleetform recorded
//! creating ([`Created`]: from the state's recent versions, or the journal
//! of an apply that never ended), that a complete read of its kind in its
//! region does not list, and whose creation is younger than
//! `fleet.consistency_grace` at the plan's clock, is *not yet visible*
//! ([`Unseen`]): the plan counts it as present for the capacity bounds,
//! never creates or launches it again, and says so in a warning. Once the
//! grace period has passed, an object still missing is gone.
//!
//! Pure: the recently created objects come in `PlanOptions::created`
//! (gathered by the caller from the state), with one region's observation and
//! the plan's clock; nothing here reads the state or the cloud.

use super::{Action, ActionKind, Resource};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Config, Duration, WorkerType};
use crate::provider::RegionObservation;
use std::collections::{BTreeMap, BTreeSet};

/// An object an apply created, as the state recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// Cloud id: `i-...`, `lt-...`, `key-...`.
    pub id: String,
    /// What kind of object it is.
    pub resource: Resource,
    /// Address of the action that created it: `worker_type.NAME` or `key_pair.NAME`.
    pub address: String,
    /// Region it was created in.
    pub region: String,
    /// For instances: the instance type launched, when the state knows it.
    pub instance_type: Option<String>,
    /// When it was created (the time recorded with it), unix seconds.
    pub created: i64,
}

/// The objects of one region that are not yet visible.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unseen<'a> {
    /// Not yet visible, in the order given.
    pub objects: Vec<&'a Created>,
}

/// The objects of `created` in `region` that a complete read of their kind
/// does not list, created less than `grace` before `now`. A kind whose read
/// is incomplete yields none: nothing is concluded from it (the region is
/// blind to scaling anyway, FF005).
pub fn unseen<'a>(
    created: &'a [Created],
    region: &str,
    observed: &RegionObservation,
    grace: Duration,
    now: i64,
) -> Unseen<'a> {
    let listed = |resource: Resource| -> Option<BTreeSet<&str>> {
        match resource {
            Resource::KeyPair => observed
                .key_pairs
                .complete()
                .map(|items| items.iter().map(|k| k.id.as_str()).collect()),
            Resource::LaunchTemplate => observed
                .launch_templates
                .complete()
                .map(|items| items.iter().map(|t| t.id.as_str()).collect()),
            Resource::Instances => observed
                .instances
                .complete()
                .map(|items| items.iter().map(|i| i.id.as_str()).collect()),
            Resource::Image | Resource::AutoScalingGroup => None,
        }
    };
    let listed: BTreeMap<Resource, Option<BTreeSet<&str>>> = [
        Resource::KeyPair,
        Resource::LaunchTemplate,
        Resource::Instances,
    ]
    .into_iter()
    .map(|r| (r, listed(r)))
    .collect();
    let young = |c: &Created| now.saturating_sub(c.created) < grace.as_secs() as i64;
    Unseen {
        objects: created
            .iter()
            .filter(|c| c.region == region && young(c))
            .filter(|c| {
                listed
                    .get(&c.resource)
                    .and_then(Option::as_ref)
                    .is_some_and(|ids| !ids.contains(c.id.as_str()))
            })
            .collect(),
    }
}

impl<'a> Unseen<'a> {
    /// True when nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    fn of(&self, resource: Resource, address: &str) -> Vec<&'a Created> {
        self.objects
            .iter()
            .copied()
            .filter(|c| c.resource == resource && c.address == address)
            .collect()
    }

    /// The not yet visible instances of a worker type (`worker_type.NAME`).
    pub fn instances(&self, address: &str) -> Vec<&'a Created> {
        self.of(Resource::Instances, address)
    }

    /// The id of a not yet visible launch template of a worker type, to launch from.
    pub fn template(&self, address: &str) -> Option<&'a str> {
        self.of(Resource::LaunchTemplate, address)
            .first()
            .map(|c| c.id.as_str())
    }

    /// Removes the creations of key pairs and launch templates (a key pair's
    /// replacement too) whose address has a not yet visible object of the
    /// same kind: it exists, so making it again would make a duplicate.
    pub fn hold_creations(&self, actions: &mut Vec<Action>) {
        actions.retain(|a| {
            let creates = match a.resource {
                Resource::KeyPair => matches!(a.action, ActionKind::Create | ActionKind::Replace),
                Resource::LaunchTemplate => a.action == ActionKind::Create,
                // A group is named, and made again by name is AlreadyExists: never two.
                Resource::Instances | Resource::Image | Resource::AutoScalingGroup => false,
            };
            !creates || self.of(a.resource, &a.address).is_empty()
        });
    }

    /// One warning per worker type (instances, launch template) and key pair
    /// with objects not yet visible: how many, which ids, and until when
    /// they count as present.
    pub fn warn(&self, config: &Config, region: &str, diags: &mut Diagnostics) {
        let grace = config.fleet.consistency_grace;
        let mut by_address: BTreeMap<(&str, Resource), Vec<&Created>> = BTreeMap::new();
        for c in &self.objects {
            by_address
                .entry((c.address.as_str(), c.resource))
                .or_default()
                .push(c);
        }
        for ((address, resource), objects) in by_address {
            let ids = listing(&objects);
            let until = format!(
                "until {grace} after {} (fleet.consistency_grace)",
                if objects.len() == 1 {
                    "its creation"
                } else {
                    "the newest one's creation"
                }
            );
            let worker_type = address
                .strip_prefix("worker_type.")
                .and_then(|name| config.worker_types.get(name));
            let (message, at, label) = match (resource, worker_type) {
                (Resource::Instances, wt) => {
                    let units: u32 = objects
                        .iter()
                        .map(|c| wt.map_or(1, |wt| weight(wt, c.instance_type.as_deref())))
                        .sum();
                    (
                        format!(
                            "{} instance{} of {address} in {region} that fleetform launched {} not listed by EC2 yet [{ids}]; {} as present ({units} capacity unit{}) {until}, so nothing is launched in {} place",
                            objects.len(),
                            plural(objects.len()),
                            if objects.len() == 1 { "is" } else { "are" },
                            if objects.len() == 1 { "it counts" } else { "they count" },
                            plural(units as usize),
                            if objects.len() == 1 { "its" } else { "their" },
                        ),
                        wt.and_then(|wt| wt.origin.attribute("capacity.max")),
                        "counted as running",
                    )
                }
                (Resource::LaunchTemplate, wt) => (
                    format!(
                        "launch template [{ids}] of {address} in {region} that fleetform created is not listed by EC2 yet; it is not created again {until}"
                    ),
                    wt.and_then(|wt| wt.origin.block.clone()),
                    "template exists, not listed yet",
                ),
                _ => (
                    format!(
                        "key pair [{ids}] of {address} in {region} that fleetform created is not listed by EC2 yet; it is not created again {until}"
                    ),
                    address
                        .strip_prefix("key_pair.")
                        .and_then(|name| config.key_pairs.get(name))
                        .and_then(|k| k.origin.block.clone()),
                    "key pair exists, not listed yet",
                ),
            };
            diags.push(
                Diagnostic::warning(Code::BlindScaling, message)
                    .at(at.or_else(|| config.fleet.origin.block.clone()), label)
                    .help(format!(
                        "EC2 lists what was just created only after a delay; run plan again in a few minutes. Anything still not listed {grace} after its creation is treated as gone and made again"
                    )),
            );
        }
    }
}

/// The capacity weight a not yet visible instance counts at: its instance
/// type's, or, when the type is unknown or no longer declared, the heaviest
/// the worker type declares (the bound `max` is never exceeded by what
/// cannot be weighed).
pub fn weight(wt: &WorkerType, instance_type: Option<&str>) -> u32 {
    let heaviest = wt
        .instance_types
        .iter()
        .map(|t| t.capacity)
        .max()
        .unwrap_or(1);
    instance_type
        .and_then(|name| wt.instance_types.iter().find(|t| t.name == name))
        .map_or(heaviest, |t| t.capacity)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Up to ten ids, then how many more.
fn listing(objects: &[&Created]) -> String {
    let shown: Vec<&str> = objects.iter().take(10).map(|c| c.id.as_str()).collect();
    let more = objects.len() - shown.len();
    if more > 0 {
        format!("{}, and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{build, PlanOptions};
    use crate::provider::{
        tags, Observation, Observed, ObservedInstance, ObservedKeyPair, ObservedLaunchTemplate,
        Tags,
    };

    const NOW: i64 = 1_000_000;

    fn config(grace: &str) -> Config {
        let hcl = format!(
            r#"
fleet "f" {{
  regions = ["us-east-1"]
  {grace}
}}

key_pair "k" {{
  public_key = "ssh-ed25519 AAAA test"
}}

ami_set "linux" {{
  images = {{
    "us-east-1" = "ami-785db401"
  }}
}}

worker_type "w" {{
  ami_set  = ami_set.linux
  key_pair = key_pair.k

  instance_type "m5.large" {{ capacity = 1 }}
  instance_type "m5.4xlarge" {{ capacity = 4 }}

  capacity {{
    min = 2
    max = 8
  }}
}}
"#
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
        let loaded = crate::load_dir(dir.path(), &crate::Inputs::default());
        assert!(
            loaded.diagnostics.iter().all(|d| !d.is_error()),
            "{:?}",
            loaded.diagnostics
        );
        loaded.config.expect("valid")
    }

    fn addressed(address: &str) -> Tags {
        Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (tags::ADDRESS.to_string(), address.to_string()),
        ])
    }

    fn instance(id: &str) -> ObservedInstance {
        ObservedInstance {
            id: id.into(),
            state: "running".into(),
            instance_type: "m5.large".into(),
            launch_time: NOW - 30,
            image_id: "ami-785db401".into(),
            key_name: Some("f.k".into()),
            launch_template: Some(("lt-1".into(), "1".into())),
            tags: addressed("worker_type.w[\"us-east-1\"]"),
            zone: None,
            subnet_id: None,
        }
    }

    /// EC2 as a read sees it: the key pair and, when `template`, the launch
    /// template as the config wants them, and `instances`.
    fn observation(
        config: &Config,
        template: bool,
        instances: Observed<Vec<ObservedInstance>>,
    ) -> Observation {
        let wt = &config.worker_types["w"];
        let mut key_tags = addressed("key_pair.k");
        key_tags.insert(
            tags::KEY_DIGEST.to_string(),
            crate::plan::build::key_digest(&config.key_pairs["k"].public_key).into(),
        );
        let templates = template
            .then(|| ObservedLaunchTemplate {
                id: "lt-1".into(),
                name: "f.w".into(),
                default_version: 1,
                latest_version: 1,
                default_data: Some(crate::plan::build::desired_template(
                    config,
                    wt,
                    "us-east-1",
                    Some("ami-785db401".into()),
                )),
                tags: addressed("worker_type.w[\"us-east-1\"]"),
            })
            .into_iter()
            .collect();
        let image = crate::provider::ObservedImage {
            id: "ami-785db401".into(),
            name: "ubuntu".into(),
            state: "available".into(),
            virtualization: "hvm".into(),
            architecture: "x86_64".into(),
            creation_date: String::new(),
            owner: String::new(),
            snapshot_ids: Vec::new(),
            tags: BTreeMap::new(),
            root_device_name: None,
        };
        Observation {
            regions: BTreeMap::from([(
                "us-east-1".to_string(),
                RegionObservation {
                    key_pairs: Observed::Complete {
                        items: vec![ObservedKeyPair {
                            name: "f.k".into(),
                            id: "key-1".into(),
                            fingerprint: String::new(),
                            tags: key_tags,
                        }],
                    },
                    images: Observed::Complete { items: vec![image] },
                    launch_templates: Observed::Complete { items: templates },
                    instances,
                    subnets: Observed::nothing(),
                    security_groups: Observed::nothing(),
                    offerings: Observed::nothing(),
                    auto_scaling_groups: Observed::nothing(),
                    adoptable: Observed::nothing(),
                },
            )]),
            api_calls: 0,
        }
    }

    fn created(id: &str, resource: Resource, age: i64, instance_type: Option<&str>) -> Created {
        Created {
            id: id.into(),
            resource,
            address: match resource {
                Resource::KeyPair => "key_pair.k".into(),
                _ => "worker_type.w".into(),
            },
            region: "us-east-1".into(),
            instance_type: instance_type.map(str::to_string),
            created: NOW - age,
        }
    }

    fn plan(
        config: &Config,
        obs: &Observation,
        created: Vec<Created>,
    ) -> (crate::plan::Plan, Vec<Diagnostic>) {
        build(
            config,
            obs,
            &PlanOptions {
                now: NOW,
                created,
                ..PlanOptions::default()
            },
        )
    }

    fn launches(plan: &crate::plan::Plan) -> u32 {
        plan.summary.launch
    }

    #[test]
    fn launched_instances_not_listed_yet_count_as_running_and_are_not_launched_again() {
        let config = config("");
        let obs = observation(&config, true, Observed::Complete { items: Vec::new() });
        // Without the record of the launch, the plan launches up to min.
        assert_eq!(launches(&plan(&config, &obs, Vec::new()).0), 2);
        let recent = vec![
            created("i-a", Resource::Instances, 20, Some("m5.large")),
            created("i-b", Resource::Instances, 20, Some("m5.large")),
        ];
        let (p, diags) = plan(&config, &obs, recent);
        assert!(p.is_empty(), "{:?}", p.actions);
        let warning = diags
            .iter()
            .find(|d| d.message.contains("not listed by EC2 yet"))
            .expect("a warning says so");
        assert_eq!(warning.code, Code::BlindScaling);
        assert!(!warning.is_error());
        assert!(
            warning
                .message
                .starts_with("2 instances of worker_type.w in us-east-1")
                && warning.message.contains("[i-a, i-b]")
                && warning.message.contains("(2 capacity units)")
                && warning.message.contains("until 10m after"),
            "{}",
            warning.message
        );
    }

    #[test]
    fn not_listed_instances_count_at_their_weight_toward_min() {
        let config = config("");
        let obs = observation(&config, true, Observed::Complete { items: Vec::new() });
        // One m5.large launched, min 2: one more unit is missing, not two.
        let (p, _) = plan(
            &config,
            &obs,
            vec![created("i-a", Resource::Instances, 5, Some("m5.large"))],
        );
        assert_eq!(launches(&p), 1);
        let launch = p
            .actions
            .iter()
            .find(|a| a.action == ActionKind::Launch)
            .expect("a launch");
        assert_eq!(
            launch.changes[0].old.as_deref(),
            Some("1"),
            "capacity now counts the unseen instance"
        );
    }

    #[test]
    fn an_instance_of_unknown_type_counts_at_the_heaviest_declared_weight() {
        let config = config("");
        let wt = &config.worker_types["w"];
        assert_eq!(weight(wt, Some("m5.large")), 1);
        assert_eq!(weight(wt, Some("m5.4xlarge")), 4);
        assert_eq!(weight(wt, None), 4);
        assert_eq!(weight(wt, Some("c5.metal")), 4);
    }

    #[test]
    fn past_the_grace_a_missing_instance_is_gone_and_replaced() {
        let config = config("consistency_grace = \"2m\"");
        assert_eq!(config.fleet.consistency_grace.as_secs(), 120);
        let obs = observation(&config, true, Observed::Complete { items: Vec::new() });
        let recent = |age| {
            vec![
                created("i-a", Resource::Instances, age, Some("m5.large")),
                created("i-b", Resource::Instances, age, Some("m5.large")),
            ]
        };
        assert_eq!(launches(&plan(&config, &obs, recent(119)).0), 0);
        let (p, diags) = plan(&config, &obs, recent(120));
        assert_eq!(launches(&p), 2);
        assert!(diags.iter().all(|d| !d.message.contains("not listed")));
    }

    #[test]
    fn a_listed_instance_is_counted_once() {
        let config = config("");
        let obs = observation(
            &config,
            true,
            Observed::Complete {
                items: vec![instance("i-a")],
            },
        );
        let (p, diags) = plan(
            &config,
            &obs,
            vec![created("i-a", Resource::Instances, 5, Some("m5.large"))],
        );
        assert_eq!(launches(&p), 1, "one listed of min 2");
        assert!(diags.iter().all(|d| !d.message.contains("not listed")));
    }

    #[test]
    fn an_incomplete_read_concludes_nothing_about_visibility() {
        let config = config("");
        let obs = observation(
            &config,
            true,
            Observed::Incomplete {
                cause: "throttled".into(),
            },
        );
        let recent = [created("i-a", Resource::Instances, 5, None)];
        let region = &obs.regions["us-east-1"];
        assert!(unseen(&recent, "us-east-1", region, Duration::from_secs(600), NOW).is_empty());
    }

    #[test]
    fn a_template_not_listed_yet_is_not_created_again_and_launches_use_it() {
        let config = config("");
        let obs = observation(&config, false, Observed::Complete { items: Vec::new() });
        let (before, _) = plan(&config, &obs, Vec::new());
        assert!(before
            .actions
            .iter()
            .any(|a| a.resource == Resource::LaunchTemplate && a.action == ActionKind::Create));
        let (p, diags) = plan(
            &config,
            &obs,
            vec![created("lt-new", Resource::LaunchTemplate, 5, None)],
        );
        assert!(
            !p.actions
                .iter()
                .any(|a| a.resource == Resource::LaunchTemplate),
            "{:?}",
            p.actions
        );
        let launch = p
            .actions
            .iter()
            .find(|a| a.action == ActionKind::Launch)
            .expect("min is still met by launching");
        assert_eq!(launch.ids, vec!["lt-new".to_string()]);
        assert!(diags.iter().any(|d| d
            .message
            .starts_with("launch template [lt-new] of worker_type.w")));
    }

    #[test]
    fn a_key_pair_not_listed_yet_is_not_imported_again() {
        let config = config("");
        let mut obs = observation(&config, true, Observed::Complete { items: Vec::new() });
        if let Some(region) = obs.regions.get_mut("us-east-1") {
            region.key_pairs = Observed::Complete { items: Vec::new() };
        }
        let creates_key = |p: &crate::plan::Plan| {
            p.actions
                .iter()
                .any(|a| a.resource == Resource::KeyPair && a.action == ActionKind::Create)
        };
        assert!(creates_key(&plan(&config, &obs, Vec::new()).0));
        let (p, diags) = plan(
            &config,
            &obs,
            vec![created("key-new", Resource::KeyPair, 5, None)],
        );
        assert!(!creates_key(&p), "{:?}", p.actions);
        assert!(diags
            .iter()
            .any(|d| d.message.starts_with("key pair [key-new] of key_pair.k")));
    }

    #[test]
    fn objects_of_other_regions_are_not_missing_here() {
        let config = config("");
        let obs = observation(&config, true, Observed::Complete { items: Vec::new() });
        let mut elsewhere = created("i-a", Resource::Instances, 5, Some("m5.large"));
        elsewhere.region = "eu-west-1".into();
        assert_eq!(launches(&plan(&config, &obs, vec![elsewhere]).0), 2);
    }
}

//! Building a plan: the desired objects of each region (from the model)
//! against what was observed there, each region on its own, plus the safety
//! checks that need live state: FF002/FF003 on the real images, FF005 (a
//! region not read completely is not scaled), FF004 (capacity decided by
//! [`super::capacity`], instances of undeclared types weighed at the
//! heaviest weight), FF008 (who a key pair change touches), and, over the
//! whole plan, FF006 (the blast radius). Objects created but not yet listed
//! are counted by [`super::visibility`], prunes and their FF001 protection
//! come from [`super::image_actions::prune`], and the last step withholds
//! sensitive values.
//!
//! Launch templates: each worker type has one per region
//! (`<fleet>.<worker type>`, plan address `worker_type.NAME`), and each of
//! its instance types whose volumes or user data differ has its own
//! (`<fleet>.<worker type>.<instance type>`, plan address
//! `worker_type.NAME.instance_type["TYPE"]`, tagged with the region
//! appended); instances carry the worker type's address whichever launched
//! them. A template's default version is compared with the desired one field
//! by field ([`template_changes`]), so a change by hand is drift. Launches of
//! a worker type with a network go to (zone, instance type) pairs
//! ([`super::placement`]) that [`super::network`] finds usable: FF012 for
//! its subnets and groups, FF013 for offerings.

use super::capacity::{self, Bounds, TerminateReason, Unit, Weight};
use super::image_actions;
use super::{
    Action, ActionKind, Change, IncompleteRead, KeyImpact, KeyUser, LaunchPair, LaunchPlacement,
    Placement, Plan, Reason, Resource, Rollout, RolloutRegion, SkippedPair, Stage, Summary,
    Unweighed,
};
use crate::catalog::hourly_price;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::images::{self, ImageVia, PlannedImage, VersionImages};
use crate::model::{address, Config, InstanceType, Market, Volume, WorkerType};
use crate::provider::{
    tags, BlockDevice, LaunchTemplateData, MetadataOptions, Observation, Observed,
    ObservedInstance, ObservedKeyPair, ObservedLaunchTemplate, RegionObservation, Tags,
};
use crate::sorted_map::Text;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Flags that change what a plan allows.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Lifts the termination and deletion limits (FF006).
    pub allow_destroy: bool,
    /// Raises the launch limit of `fleet.limits` (FF006).
    pub max_launches: Option<u32>,
    /// Raises the termination limit of `fleet.limits` (FF006).
    pub max_terminations: Option<u32>,
    /// Now, seconds since the epoch (for `max_lifetime`).
    pub now: i64,
    /// Restrict the plan to these addresses (`worker_type.NAME`, `key_pair.NAME`,
    /// or one region: `worker_type.NAME["us-east-1"]`) and the key pairs they use.
    pub targets: Vec<String>,
    /// Carry image changes of staged roll-outs to every region, canaries first.
    pub promote: bool,
    /// Recorded versions and the images they reference (FF001 protection when pruning).
    pub versions: Vec<VersionImages>,
    /// AMI set -> region -> image that must be used (a rollback's images).
    pub pins: BTreeMap<String, BTreeMap<String, String>>,
    /// The sensitive variables' values, to recognise them in live user data.
    pub secrets: crate::sensitive::Secrets,
    /// Worker types whose user data the last recorded version withheld: its
    /// live value may hold a secret, so it is never shown.
    pub sensitive_before: BTreeSet<String>,
    /// Key pair -> worker types that used it, as the last recorded version
    /// says ([`key_pair_users`] of its configuration); FF008 names them.
    pub recorded_key_users: BTreeMap<String, Vec<String>>,
    /// Objects recent applies created (from the state): those a complete read
    /// does not list yet count as present (`fleet.consistency_grace`).
    pub created: Vec<super::visibility::Created>,
}

/// Key pair name -> the worker types of `config` that use it: what a version
/// records so that a later plan can name who a key change touches (FF008).
pub fn key_pair_users(config: &Config) -> BTreeMap<String, Vec<String>> {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for wt in config.worker_types.values() {
        if let Some(key) = &wt.key_pair {
            users.entry(key.clone()).or_default().push(wt.name.clone());
        }
    }
    users
}

/// Whether target `target` covers action address `address`: the same, or
/// a block with `for_each` whose instance it is (`worker_type.b` covers
/// `worker_type.b["gecko-1"]`).
pub fn covers(target: &str, address: &str) -> bool {
    target == address
        || (!target.contains('[')
            && address
                .strip_prefix(target)
                .is_some_and(|rest| rest.starts_with("[\"")))
}

/// Whether `action` is selected by `targets` (empty: everything). A worker type
/// target also selects the key pair it uses, in the regions it runs in.
fn targeted(config: &Config, action: &Action, targets: &[String]) -> bool {
    if targets.is_empty() {
        return true;
    }
    let owner = owner_address(&action.address);
    let in_region = format!("[\"{}\"]", action.region);
    targets.iter().any(|t| {
        if t == &action.address || covers(t, owner) {
            return true;
        }
        // `worker_type.NAME["REGION"]`, `worker_type.NAME["KEY"]["REGION"]`.
        let here = t.strip_suffix(&in_region);
        if here.is_some_and(|base| base == owner) {
            return true;
        }
        // A targeted worker type pulls in its key pair and the copies its
        // image needs (never prunes): every instance under a bare label.
        let Some(label) = t.strip_prefix("worker_type.").map(address::label) else {
            return false;
        };
        config
            .worker_types
            .range::<str, _>((std::ops::Bound::Included(label), std::ops::Bound::Unbounded))
            .take_while(|(name, _)| name.starts_with(label))
            .filter(|(_, wt)| {
                let a = address::worker_type(&wt.name);
                covers(t, &a) || here == Some(a.as_str())
            })
            .any(|(_, wt)| {
                let key_pair = action.resource == Resource::KeyPair
                    && wt
                        .key_pair
                        .as_deref()
                        .is_some_and(|key| action.address == address::key_pair(key));
                let copy = action.action == ActionKind::Copy
                    && action.address == address::ami_set(&wt.ami_set);
                key_pair || copy
            })
    })
}

/// EC2 name of the key pair named `key` in the model: its `ec2_name`, else
/// `<fleet>.<id>`, so fleets in one account never collide.
pub fn key_pair_name(config: &Config, key: &str) -> String {
    match config.key_pairs.get(key) {
        Some(k) => k.ec2_name_in(&config.fleet.name),
        None => format!("{}.{key}", config.fleet.name),
    }
}

/// EC2 name of the launch template of worker type `wt`: its `ec2_name`,
/// else `<fleet>.<id>` (an id may hold `/`, which EC2 allows).
pub fn launch_template_name(config: &Config, wt: &WorkerType) -> String {
    wt.ec2_name_in(&config.fleet.name)
}

/// SHA-256 (hex) of a public key, tagged on key pairs to see a changed key.
pub fn key_digest(public_key: &str) -> String {
    crate::hex(&Sha256::digest(public_key.trim().as_bytes()))
}

fn identity_tags(
    config: &Config,
    address: &str,
    worker_type: Option<&str>,
) -> BTreeMap<String, String> {
    let mut t = BTreeMap::from([
        (tags::FLEET.to_string(), config.fleet.name.clone()),
        (tags::ADDRESS.to_string(), address.to_string()),
    ]);
    if let Some(wt) = worker_type {
        t.insert(tags::WORKER_TYPE.to_string(), wt.to_string());
    }
    t
}

/// Which launch template of a worker type: its own, or the one of an
/// instance type whose volumes or user data differ from the worker type's
/// (`<fleet>.<worker type>.<instance type>`).
#[derive(Debug, Clone, Copy)]
pub enum TemplateOf<'a> {
    /// The worker type's template, `<fleet>.<worker type>`.
    WorkerType,
    /// The template of one instance type, `<fleet>.<worker type>.<instance type>`.
    InstanceType(&'a InstanceType),
}

/// The plan address of an instance type's own launch template:
/// `worker_type.NAME.instance_type["TYPE"]` (tagged with the region appended,
/// like every regional address).
pub fn instance_type_address(worker_type: &str, instance_type: &str) -> String {
    format!(
        "{}.instance_type[\"{instance_type}\"]",
        address::worker_type(worker_type)
    )
}

/// EC2 name of an instance type's own launch template: `<fleet>.<worker type>.<instance type>`.
pub fn instance_type_template_name(
    config: &Config,
    worker_type: &str,
    instance_type: &str,
) -> String {
    format!("{}.{worker_type}.{instance_type}", config.fleet.name)
}

/// The address a plan action has for an object tagged `tagged` in `region`:
/// the tag without its trailing `["REGION"]` (`worker_type.w["us-east-1"]`
/// -> `worker_type.w`, `worker_type.w.instance_type["c5.large"]["us-east-1"]`
/// -> `worker_type.w.instance_type["c5.large"]`).
pub fn action_address(tagged: &str, region: &str) -> String {
    match tagged.strip_suffix(&format!("[\"{region}\"]")) {
        Some(base) => base.to_string(),
        None => tagged.split('[').next().unwrap_or(tagged).to_string(),
    }
}

/// The worker type address (`worker_type.NAME`) an action address belongs to:
/// itself, or the worker type of an instance type's template.
pub fn owner_address(action: &str) -> &str {
    match action.find(".instance_type[") {
        Some(at) if action.starts_with("worker_type.") => &action[..at],
        _ => action,
    }
}

/// What the default version of a worker type's launch template should launch
/// in `region`, with `image` (the planned image of its AMI set there). The
/// root volume needs the image's root device name: see [`template_for`].
pub fn desired_template(
    config: &Config,
    wt: &WorkerType,
    region: &str,
    image: Option<String>,
) -> LaunchTemplateData {
    template_for(config, wt, TemplateOf::WorkerType, region, image, None)
}

/// What the default version of launch template `of` of `wt` should launch
/// in `region`, with `image`, whose root device is `root_device` (where
/// `root_volume` goes; without it no root volume is mapped).
pub fn template_for(
    config: &Config,
    wt: &WorkerType,
    of: TemplateOf<'_>,
    region: &str,
    image: Option<String>,
    root_device: Option<&str>,
) -> LaunchTemplateData {
    // Instances carry the worker type's address whichever template launched
    // them, so capacity is counted per worker type as before.
    let identity = identity_tags(
        config,
        &address::worker_type_in(&wt.name, region),
        Some(wt.id()),
    );
    let mut instance_tags = wt.tags_in(region).clone();
    instance_tags.extend(identity.clone());
    let network = wt.network.as_deref().and_then(|n| config.networks.get(n));
    let volumes = match of {
        TemplateOf::WorkerType => wt.volumes.clone(),
        TemplateOf::InstanceType(it) => wt.volumes_of(it),
    };
    let mut block_devices: Vec<BlockDevice> = volumes
        .iter()
        .map(|(device, v)| block_device(device, v))
        .collect();
    if let (Some(root), Some(device)) = (&wt.root_volume, root_device) {
        block_devices.retain(|d| d.device_name != device);
        block_devices.push(block_device(device, root));
    }
    block_devices.sort_by(|a, b| a.device_name.cmp(&b.device_name));
    let (user_data, instance_type) = match of {
        TemplateOf::WorkerType => {
            let mut types = wt.instance_types_in(region);
            let only = match (types.next(), types.next()) {
                (Some(t), None) => Some(t.name.clone()),
                _ => None,
            };
            (wt.user_data_in(region).map(str::to_string), only)
        }
        TemplateOf::InstanceType(it) => (
            wt.instance_user_data_in(it, region).map(str::to_string),
            Some(it.name.clone()),
        ),
    };
    LaunchTemplateData {
        image_id: image,
        instance_type,
        key_name: wt.key_pair.as_ref().map(|k| key_pair_name(config, k)),
        user_data,
        // A group's instances distribution decides the market: its template
        // carries none (Auto Scaling refuses market options with a policy).
        market: match (wt.scaling, wt.market) {
            (crate::model::Scaling::Asg, _) => None,
            (_, Market::Spot) => Some("spot".to_string()),
            (_, Market::OnDemand) => Some("on-demand".to_string()),
        },
        instance_tags,
        security_group_ids: network
            .and_then(|n| n.security_groups.get(region))
            .cloned()
            .unwrap_or_default(),
        assign_public_ip: network.and_then(|n| n.assign_public_ip),
        block_devices,
        spot_max_price: match wt.market {
            _ if wt.scaling == crate::model::Scaling::Asg => None,
            // In the form EC2 reads back, so that `0.680` is not drift from `0.68`.
            Market::Spot => wt
                .spot
                .as_ref()
                .and_then(|s| s.max_price.as_deref())
                .map(crate::provider::canonical_price),
            Market::OnDemand => None,
        },
        iam_instance_profile: wt.iam_instance_profile_in(region).map(str::to_string),
        // Always set: EC2's own default allows IMDSv1.
        metadata: Some(MetadataOptions {
            http_tokens: wt.metadata.http_tokens.as_str().to_string(),
            hop_limit: u32::from(wt.metadata.hop_limit),
        }),
        volume_tags: identity.into(),
    }
}

fn block_device(device: &str, v: &Volume) -> BlockDevice {
    BlockDevice {
        device_name: device.to_string(),
        size_gb: v.size_gb,
        volume_type: v.volume_type.as_str().to_string(),
        iops: v.iops,
        throughput: v.throughput,
        encrypted: v.encrypted,
    }
}

/// Attribute changes from `old` (the live default version; `None`: no
/// template yet) to `new`. `root_device` is the image's root device name,
/// whose mapping is shown as `root_volume.*`; other devices as
/// `volume.DEVICE.*`.
pub fn template_changes(
    old: Option<&LaunchTemplateData>,
    new: &LaunchTemplateData,
    root_device: Option<&str>,
) -> Vec<Change> {
    let empty = LaunchTemplateData::default();
    let old = old.unwrap_or(&empty);
    // EC2 reports no market options for on-demand templates.
    fn market(d: &LaunchTemplateData) -> Option<&str> {
        Some(d.market.as_deref().unwrap_or("on-demand"))
    }
    // Compared by reference, cloned only when they differ: a no-op plan of
    // thousands of templates must not copy every user data.
    let fields: [(&str, Option<&str>, Option<&str>); 6] = [
        ("image_id", old.image_id.as_deref(), new.image_id.as_deref()),
        (
            "instance_type",
            old.instance_type.as_deref(),
            new.instance_type.as_deref(),
        ),
        ("key_name", old.key_name.as_deref(), new.key_name.as_deref()),
        ("market", market(old), market(new)),
        (
            "user_data",
            old.user_data.as_deref(),
            new.user_data.as_deref(),
        ),
        (
            "iam_instance_profile",
            old.iam_instance_profile.as_deref(),
            new.iam_instance_profile.as_deref(),
        ),
    ];
    let mut changes: Vec<Change> = fields
        .into_iter()
        .filter(|(_, o, n)| o != n)
        .map(|(path, old, new)| change(path, old.map(str::to_string), new.map(str::to_string)))
        .collect();
    let groups = |d: &LaunchTemplateData| {
        let mut ids: Vec<&str> = d.security_group_ids.iter().map(String::as_str).collect();
        ids.sort_unstable();
        (!ids.is_empty()).then(|| ids.join(", "))
    };
    let (o, n) = (groups(old), groups(new));
    if o != n {
        changes.push(change("security_groups", o, n));
    }
    if old.assign_public_ip != new.assign_public_ip {
        changes.push(change(
            "assign_public_ip",
            old.assign_public_ip.map(|b| b.to_string()),
            new.assign_public_ip.map(|b| b.to_string()),
        ));
    }
    if old.spot_max_price != new.spot_max_price {
        changes.push(change(
            "spot.max_price",
            old.spot_max_price.clone(),
            new.spot_max_price.clone(),
        ));
    }
    let (om, nm) = (old.metadata.as_ref(), new.metadata.as_ref());
    let tokens = |m: Option<&MetadataOptions>| m.map(|m| m.http_tokens.clone());
    let hops = |m: Option<&MetadataOptions>| m.map(|m| m.hop_limit.to_string());
    if tokens(om) != tokens(nm) {
        changes.push(change("metadata.http_tokens", tokens(om), tokens(nm)));
    }
    if hops(om) != hops(nm) {
        changes.push(change("metadata.hop_limit", hops(om), hops(nm)));
    }
    if old.block_devices != new.block_devices {
        let devices: BTreeSet<&str> = old
            .block_devices
            .iter()
            .chain(&new.block_devices)
            .map(|d| d.device_name.as_str())
            .collect();
        for device in devices {
            let (o, n) = (
                old.block_devices.iter().find(|b| b.device_name == device),
                new.block_devices.iter().find(|b| b.device_name == device),
            );
            if o == n {
                continue;
            }
            let prefix = if Some(device) == root_device {
                "root_volume".to_string()
            } else {
                format!("volume.{device}")
            };
            type Field = fn(&BlockDevice) -> Option<String>;
            let fields: [(&str, Field); 5] = [
                ("size_gb", |b| Some(b.size_gb.to_string())),
                ("type", |b| Some(b.volume_type.clone())),
                ("iops", |b| b.iops.map(|v| v.to_string())),
                ("throughput", |b| b.throughput.map(|v| v.to_string())),
                ("encrypted", |b| b.encrypted.map(|v| v.to_string())),
            ];
            for (name, field) in fields {
                let (ov, nv) = (o.and_then(field), n.and_then(field));
                if ov != nv {
                    changes.push(change(&format!("{prefix}.{name}"), ov, nv));
                }
            }
        }
    }
    tag_changes("tags", &old.instance_tags, &new.instance_tags, &mut changes);
    tag_changes(
        "volume_tags",
        &old.volume_tags,
        &new.volume_tags,
        &mut changes,
    );
    changes
}

fn change(path: &str, old: Option<String>, new: Option<String>) -> Change {
    Change {
        path: path.to_string(),
        old,
        new,
        sensitive: false,
    }
}

fn tag_changes(prefix: &str, old: &Tags, new: &Tags, changes: &mut Vec<Change>) {
    if old == new {
        return;
    }
    let keys: BTreeSet<&str> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        // The address recorded at creation is informational: a worker type
        // whose address moved (written as a `for_each` instance, found by
        // its id) keeps its objects.
        if key == tags::ADDRESS && o.is_some() && n.is_some() {
            continue;
        }
        if o != n {
            changes.push(change(
                &format!("{prefix}.{key}"),
                o.map(ToString::to_string),
                n.map(ToString::to_string),
            ));
        }
    }
}

fn incomplete_everything(cause: &str) -> RegionObservation {
    let gone = || cause.to_string();
    RegionObservation {
        key_pairs: Observed::Incomplete { cause: gone() },
        images: Observed::Incomplete { cause: gone() },
        launch_templates: Observed::Incomplete { cause: gone() },
        instances: Observed::Incomplete { cause: gone() },
        subnets: Observed::Incomplete { cause: gone() },
        security_groups: Observed::Incomplete { cause: gone() },
        offerings: Observed::Incomplete { cause: gone() },
        auto_scaling_groups: Observed::Incomplete { cause: gone() },
        adoptable: Observed::Incomplete { cause: gone() },
    }
}

/// Builds the plan for `config` against `observation`, with every finding.
pub fn build(
    config: &Config,
    observation: &Observation,
    options: &PlanOptions,
) -> (Plan, Vec<Diagnostic>) {
    // Live objects are matched by id: each gets the address its id has now.
    let readdressed = super::identity::readdress(config, observation);
    // Objects made by hand that the configuration names are adopted (import).
    let (observation, imported) = super::import::adopt(config, &readdressed);
    let observation = &*observation;
    let planned = images::resolve(config, observation, &options.pins);
    // Regions are independent: each is planned on its own core, then the
    // results are joined in the order of `fleet.regions`.
    // Bounds over all of a worker type's regions are shared out first.
    let pools = super::pool::share(config, observation, options);
    let no_pool = super::pool::PoolBounds::new();
    let regional: Vec<RegionPlan> = config
        .fleet
        .regions
        .par_iter()
        .map(|region| {
            let pool = pools.get(region).unwrap_or(&no_pool);
            plan_region(config, observation, region, &planned, pool, options)
        })
        .collect();
    let mut diags = Diagnostics::default();
    let mut actions: Vec<Action> = Vec::new();
    let mut incomplete: Vec<IncompleteRead> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut hourly = 0.0;
    let mut rollouts: BTreeMap<String, Rollout> = BTreeMap::new();
    let mut unweighed: Vec<Unweighed> = Vec::new();
    let mut key_impacts: Vec<KeyImpact> = Vec::new();
    let mut skipped_pairs: Vec<SkippedPair> = Vec::new();
    for part in regional {
        skipped_pairs.extend(part.skipped_pairs);
        unweighed.extend(part.unweighed);
        key_impacts.extend(part.key_impacts);
        actions.extend(part.actions);
        diags.extend(part.diags.sorted());
        incomplete.extend(part.incomplete);
        skipped.extend(part.skipped);
        hourly += part.hourly;
        for (address, rollout) in part.rollouts {
            rollouts
                .entry(address)
                .or_insert_with(|| Rollout {
                    address: rollout.address.clone(),
                    regions: Vec::new(),
                })
                .regions
                .extend(rollout.regions);
        }
    }
    actions.extend(imported);
    actions.retain(|a| targeted(config, a, &options.targets));
    skipped_pairs.retain(|p| {
        options.targets.is_empty()
            || options
                .targets
                .iter()
                .any(|t| covers(t, &p.address) || t == &format!("{}[\"{}\"]", p.address, p.region))
    });
    actions.sort_by(|a, b| {
        (&a.address, &a.region, a.resource, a.action)
            .cmp(&(&b.address, &b.region, b.resource, b.action))
    });
    let summary = summarize(&actions, hourly, skipped);
    blast_radius(config, &summary, &actions, options, &mut diags);
    let mut diagnostics = diags.sorted();
    super::withhold::withhold(
        config,
        &options.secrets,
        &options.sensitive_before,
        &mut actions,
        &mut diagnostics,
    );
    let plan = Plan {
        format_version: crate::formats::FORMAT_VERSION.to_string(),
        fleet: config.fleet.name.clone(),
        summary,
        actions,
        incomplete,
        diagnostics: Vec::new(),
        images: planned,
        rollouts: rollouts
            .into_values()
            .filter(|r| {
                r.regions
                    .iter()
                    .any(|x| matches!(x.status.as_str(), "canary" | "held" | "promote"))
            })
            .collect(),
        unweighed,
        key_impacts,
        skipped_pairs,
    };
    (plan, diagnostics)
}

/// The part of a plan that one region contributes.
struct RegionPlan {
    actions: Vec<Action>,
    diags: Diagnostics,
    incomplete: Vec<IncompleteRead>,
    /// The region, if it was too blind to scale in (FF005).
    skipped: Option<String>,
    hourly: f64,
    rollouts: BTreeMap<String, Rollout>,
    /// Instances of undeclared types, counted at the heaviest weight.
    unweighed: Vec<Unweighed>,
    /// Key pairs replaced or deleted here, and who uses them.
    key_impacts: Vec<KeyImpact>,
    /// Pairs launches skip here.
    skipped_pairs: Vec<SkippedPair>,
}

/// Plans one region: key pairs, images, launch templates, roll-out stages,
/// prunes and capacity.
fn plan_region(
    config: &Config,
    observation: &Observation,
    region: &str,
    planned: &[PlannedImage],
    pool: &super::pool::PoolBounds,
    options: &PlanOptions,
) -> RegionPlan {
    let mut diags = Diagnostics::default();
    let mut actions: Vec<Action> = Vec::new();
    let mut incomplete: Vec<IncompleteRead> = Vec::new();
    let mut skipped = None;
    let mut hourly = 0.0;
    let mut rollouts: BTreeMap<String, Rollout> = BTreeMap::new();
    let missing;
    let observed = match observation.regions.get(region) {
        Some(o) => o,
        None => {
            missing = incomplete_everything("this region was not observed");
            &missing
        }
    };
    for (kind, cause) in observed.incomplete() {
        incomplete.push(IncompleteRead {
            region: region.to_string(),
            kind,
            cause: cause.to_string(),
        });
    }
    // Fail closed: any kind unread makes the region blind to scaling, not only
    // instances and templates (what a launch would use may be what is unknown).
    let blind = !incomplete.is_empty();
    if blind {
        skipped = Some(region.to_string());
        let causes: Vec<String> = observed
            .incomplete()
            .into_iter()
            .map(|(kind, cause)| format!("{kind}: {cause}"))
            .collect();
        diags.push(
            Diagnostic::warning(
                Code::BlindScaling,
                format!(
                    "{region} could not be read completely ({}); fleetform launches and terminates nothing there",
                    causes.join("; ")
                ),
            )
            .at(config.fleet.origin.attribute("regions"), format!("{region} skipped"))
            .help("unknown is never zero: run plan again once EC2 answers; nothing in other regions is affected"),
        );
    }
    let mut key_impacts = Vec::new();
    key_pairs(
        config,
        region,
        observed,
        &options.recorded_key_users,
        &mut actions,
        &mut diags,
        &mut key_impacts,
    );
    verify_images(config, region, observed, planned, &mut diags);
    image_actions::copies(config, region, observed, planned, &mut actions);
    // The region's launch templates by address, looked up by three steps.
    let templates_at = observed
        .launch_templates
        .complete()
        .map(|t| templates_by_address(t));
    let templates_at = templates_at.as_ref();
    launch_templates(
        config,
        region,
        observation,
        observed,
        templates_at,
        planned,
        &mut actions,
        &mut diags,
    );
    // What EC2 does not list yet is not gone: never made twice.
    let unseen = super::visibility::unseen(
        &options.created,
        region,
        observed,
        config.fleet.consistency_grace,
        options.now,
    );
    unseen.hold_creations(&mut actions);
    unseen.warn(config, region, &mut diags);
    stage_rollouts(
        config,
        region,
        templates_at,
        options.promote,
        &mut actions,
        &mut rollouts,
    );
    image_actions::prune(
        config,
        region,
        observed,
        planned,
        &options.versions,
        options.now,
        &mut actions,
        &mut diags,
    );
    let groups = super::groups::plan(config, region, observed, blind, &mut actions, &mut diags);
    hourly += groups.hourly;
    let broken = super::network::check(config, region, observed, &mut diags);
    let offered = super::network::Offered::of(observed);
    super::network::offering_errors(config, region, &offered, &mut diags);
    let mut unweighed = Vec::new();
    let mut skipped_pairs = Vec::new();
    if !blind {
        hourly += instances(
            config,
            region,
            observed,
            templates_at,
            Scaling {
                now: options.now,
                unseen: &unseen,
                broken: &broken,
                offered: &offered,
                held: &groups.held,
                pool,
            },
            Scaled {
                actions: &mut actions,
                unweighed: &mut unweighed,
                skipped: &mut skipped_pairs,
            },
        );
        unweighed_warnings(config, &unweighed, &mut diags);
    }
    RegionPlan {
        actions,
        diags,
        incomplete,
        skipped,
        hourly,
        rollouts,
        unweighed,
        key_impacts,
        skipped_pairs,
    }
}

fn key_pairs(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    recorded: &BTreeMap<String, Vec<String>>,
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
    impacts: &mut Vec<KeyImpact>,
) {
    let Some(existing) = observed.key_pairs.complete() else {
        return;
    };
    let used: BTreeSet<&str> = config
        .worker_types
        .values()
        .filter(|wt| wt.regions.iter().any(|r| r == region))
        .filter_map(|wt| wt.key_pair.as_deref())
        .collect();
    let by_address: BTreeMap<&str, &ObservedKeyPair> = existing
        .iter()
        .filter_map(|k| Some((k.tags.get(tags::ADDRESS)?.as_str(), k)))
        .collect();
    for name in &used {
        let Some(key) = config.key_pairs.get(*name) else {
            continue;
        };
        let addr = address::key_pair(name);
        let mut tag_set = identity_tags(config, &addr, None);
        let digest = key_digest(&key.public_key);
        tag_set.insert(tags::KEY_DIGEST.to_string(), digest.clone());
        let base = Action {
            name: Some(key_pair_name(config, name)),
            public_key: Some(key.public_key.clone()),
            tags: tag_set,
            ..Action::new(
                &addr,
                region,
                ActionKind::Create,
                Resource::KeyPair,
                Reason::New,
            )
        };
        match by_address.get(addr.as_str()) {
            None => actions.push(base),
            Some(live)
                if live.tags.get(tags::KEY_DIGEST).map(Text::as_str) != Some(digest.as_str()) =>
            {
                let impact = key_impact(
                    config,
                    region,
                    observed,
                    live,
                    recorded,
                    ActionKind::Replace,
                );
                report_key_impact(config, &impact, diags);
                impacts.push(impact);
                actions.push(Action {
                    action: ActionKind::Replace,
                    reason: Reason::PublicKeyChanged,
                    ids: vec![live.id.clone()],
                    changes: vec![Change {
                        path: "public_key".into(),
                        old: live
                            .tags
                            .get(tags::KEY_DIGEST)
                            .map(|d| format!("sha256:{d}")),
                        new: Some(format!("sha256:{digest}")),
                        sensitive: false,
                    }],
                    ..base
                });
            }
            Some(_) => {}
        }
    }
    for live in existing {
        let addr = live
            .tags
            .get(tags::ADDRESS)
            .map(Text::as_str)
            .unwrap_or("(orphan)");
        let wanted = addr
            .strip_prefix("key_pair.")
            .is_some_and(|name| used.contains(name));
        if !wanted {
            let mut impact =
                key_impact(config, region, observed, live, recorded, ActionKind::Delete);
            // A rename: a worker type that used it now uses a key pair this plan creates.
            impact.replaced_by = renamed_to(config, &impact, |k| {
                !by_address.contains_key(address::key_pair(k).as_str())
            });
            report_key_impact(config, &impact, diags);
            impacts.push(impact);
            actions.push(Action {
                name: Some(live.name.clone()),
                ids: vec![live.id.clone()],
                ..Action::new(
                    addr,
                    region,
                    ActionKind::Delete,
                    Resource::KeyPair,
                    Reason::Orphan,
                )
            });
        }
    }
}

/// FF008: every worker type and instance that uses a key pair being replaced
/// or deleted, from four sources: the configuration now, the last recorded
/// version (`recorded`), the launch templates' default versions, and the
/// instances' `fleetform:worker-type` tags.
fn key_impact(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    live: &ObservedKeyPair,
    recorded: &BTreeMap<String, Vec<String>>,
    action: ActionKind,
) -> KeyImpact {
    let short = live
        .tags
        .get(tags::ADDRESS)
        .and_then(|a| a.strip_prefix("key_pair."))
        .or_else(|| live.name.strip_prefix(&format!("{}.", config.fleet.name)))
        .unwrap_or(&live.name)
        .to_string();
    let mut users: BTreeMap<String, KeyUser> = BTreeMap::new();
    let mut note = |worker_type: &str, source: &str, id: Option<&str>| {
        let user = users
            .entry(worker_type.to_string())
            .or_insert_with(|| KeyUser {
                worker_type: worker_type.to_string(),
                sources: Vec::new(),
                instances: 0,
                ids: Vec::new(),
            });
        if !user.sources.iter().any(|s| s == source) {
            user.sources.push(source.to_string());
        }
        if let Some(id) = id {
            user.instances += 1;
            user.ids.push(id.to_string());
        }
    };
    for wt in config.worker_types.values().filter(|wt| {
        wt.key_pair.as_deref() == Some(short.as_str()) && wt.regions.iter().any(|r| r == region)
    }) {
        note(&wt.name, "config", None);
    }
    for wt in recorded.get(&short).into_iter().flatten() {
        note(wt, "recorded", None);
    }
    for t in observed.launch_templates.complete().into_iter().flatten() {
        let key = t.default_data.as_ref().and_then(|d| d.key_name.as_deref());
        if key != Some(live.name.as_str()) {
            continue;
        }
        let worker_type = t.tags.get(tags::WORKER_TYPE).map(Text::as_str).or_else(|| {
            let addr = t.tags.get(tags::ADDRESS)?;
            let name = addr.strip_prefix("worker_type.")?;
            name.split('[').next()
        });
        if let Some(wt) = worker_type {
            note(wt, "launch-template", None);
        }
    }
    let mut untagged_ids = Vec::new();
    for i in observed.instances.complete().into_iter().flatten() {
        if i.key_name.as_deref() != Some(live.name.as_str()) {
            continue;
        }
        match i.tags.get(tags::WORKER_TYPE) {
            Some(wt) => note(wt, "instances", Some(&i.id)),
            None => untagged_ids.push(i.id.clone()),
        }
    }
    const ORDER: [&str; 4] = ["config", "recorded", "launch-template", "instances"];
    let mut worker_types: Vec<KeyUser> = users.into_values().collect();
    for user in &mut worker_types {
        user.sources
            .sort_by_key(|s| ORDER.iter().position(|o| o == s));
    }
    KeyImpact {
        address: address::key_pair(&short),
        region: region.to_string(),
        name: live.name.clone(),
        action,
        replaced_by: None,
        worker_types,
        untagged_ids,
    }
}

/// The key pair that replaces a deleted one: the key a worker type that used
/// it now uses, when this plan creates that key (`created`); a rename.
fn renamed_to(
    config: &Config,
    impact: &KeyImpact,
    created: impl Fn(&str) -> bool,
) -> Option<String> {
    let old = impact.address.strip_prefix("key_pair.")?;
    impact
        .worker_types
        .iter()
        .filter_map(|u| config.worker_types.get(&u.worker_type))
        .filter(|wt| wt.regions.iter().any(|r| r == &impact.region))
        .filter_map(|wt| wt.key_pair.as_deref())
        .find(|k| *k != old && config.key_pairs.contains_key(*k) && created(k))
        .map(address::key_pair)
}

/// The FF008 warning of `impact`, at the key pair block that replaces the key
/// (or, for a removal, at the first worker type of the config that used it;
/// at the fleet block when none of them is in the config).
fn report_key_impact(config: &Config, impact: &KeyImpact, diags: &mut Diagnostics) {
    let old = impact
        .address
        .strip_prefix("key_pair.")
        .unwrap_or(&impact.address);
    let key_block = |address: &str, attribute: Option<&str>| {
        let name = address.strip_prefix("key_pair.")?;
        let origin = &config.key_pairs.get(name)?.origin;
        match attribute {
            Some(attribute) => origin.attribute(attribute),
            None => origin.block.clone(),
        }
    };
    let switched = impact
        .worker_types
        .iter()
        .find_map(|u| config.worker_types.get(&u.worker_type));
    let (what, at, label) = match (&impact.action, &impact.replaced_by, switched) {
        (ActionKind::Replace, _, _) => (
            "replaced".to_string(),
            key_block(&impact.address, Some("public_key")),
            "key pair replaced".to_string(),
        ),
        (_, Some(new), _) => (
            format!("deleted (its worker types move to {new})"),
            key_block(new, None),
            format!("replaces key pair {old}"),
        ),
        (_, None, Some(wt)) => (
            "deleted".to_string(),
            wt.origin.attribute("key_pair"),
            format!("no longer uses key pair {old}"),
        ),
        (_, None, None) => ("deleted".to_string(), None, "key pair deleted".to_string()),
    };
    let at = at.or_else(|| config.fleet.origin.block.clone());
    let mut ids: Vec<&str> = impact
        .worker_types
        .iter()
        .flat_map(|u| u.ids.iter().map(String::as_str))
        .chain(impact.untagged_ids.iter().map(String::as_str))
        .collect();
    ids.sort_unstable();
    let shown: Vec<&str> = ids.iter().take(10).copied().collect();
    let more = ids.len().saturating_sub(shown.len());
    let names: Vec<&str> = impact
        .worker_types
        .iter()
        .map(|u| u.worker_type.as_str())
        .collect();
    let mut per_worker_type: Vec<String> = impact
        .worker_types
        .iter()
        .map(|u| format!("{} {}", u.worker_type, u.instances))
        .collect();
    if !impact.untagged_ids.is_empty() {
        per_worker_type.push(format!(
            "without a worker type tag {}",
            impact.untagged_ids.len()
        ));
    }
    diags.push(
        Diagnostic::warning(
            Code::KeyReplace,
            format!(
                "key pair {} in {} will be {what}: used by worker types [{}] and {} running instance{} [{}{}]{}",
                impact.name,
                impact.region,
                names.join(", "),
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if more > 0 { format!(", and {more} more") } else { String::new() },
                if per_worker_type.is_empty() {
                    String::new()
                } else {
                    format!("; instances per worker type: {}", per_worker_type.join(", "))
                }
            ),
        )
        .at(at, label)
        .help("running instances keep the old key, and anything that derives a worker's identity from the key pair name breaks; roll the listed worker types to the new key before removing the old one"),
    );
}

/// FF002/FF003 against the real images: every planned image of the region
/// exists, is available, and has the declared virtualization and architecture.
fn verify_images(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    planned: &[PlannedImage],
    diags: &mut Diagnostics,
) {
    let Some(found) = observed.images.complete() else {
        return;
    };
    for p in planned.iter().filter(|p| p.region == region) {
        let Some(set) = config.ami_sets.get(&p.ami_set) else {
            continue;
        };
        let at = match p.via {
            ImageVia::Images => set.origin.attribute(&format!("images.{region}")),
            ImageVia::Lookup => set.origin.attribute("lookup.name"),
            ImageVia::Source => set.origin.attribute("source.image"),
            ImageVia::Copy => set
                .origin
                .attributes
                .get("source.copy_to")
                .cloned()
                .or_else(|| set.origin.attribute("copy_to")),
            ImageVia::Pinned => set.origin.block.clone(),
        };
        // Only a diagnostic names them: listing them for every image of a
        // fleet of thousands of worker types is a pass over all of them.
        let users = || {
            config
                .worker_types
                .values()
                .filter(|w| w.ami_set == set.name && w.regions.iter().any(|r| r == region))
                .map(|w| w.name.as_str())
                .collect::<Vec<&str>>()
                .join(", ")
        };
        let Some(id) = &p.image_id else {
            if let (ImageVia::Lookup, Some(lookup)) = (p.via, &set.lookup) {
                diags.push(
                    Diagnostic::error(
                        Code::ImageMissing,
                        format!(
                            "no available image named like \"{}\" (owners [{}]) in {region} for ami_set \"{}\"; worker types [{}] could not launch",
                            lookup.name,
                            lookup.owners.join(", "),
                            set.name,
                            users()
                        ),
                    )
                    .at(at, "nothing matches here")
                    .help("publish a matching image in this region, or drop the region from the worker types"),
                );
            }
            continue;
        };
        match found.iter().find(|i| &i.id == id) {
            None => diags.push(
                Diagnostic::error(
                    Code::ImageMissing,
                    format!(
                        "image {id} of ami_set \"{}\" does not exist in {region} (or is not visible to this account); worker types [{}] could not launch",
                        set.name,
                        users()
                    ),
                )
                .at(at, "no such image")
                .help("point the AMI set at an image that exists in this region, or take the region out of these worker types; never remove an image a worker type still uses"),
            ),
            // A copy on its way: apply waits for it before any template uses it.
            Some(image) if p.via == ImageVia::Copy && image.state == "pending" => {}
            Some(image) if image.state != "available" => diags.push(
                Diagnostic::error(
                    Code::ImageMissing,
                    format!("image {id} of ami_set \"{}\" in {region} is {}, not available", set.name, image.state),
                )
                .at(at, format!("image is {}", image.state))
                .help("wait for the image to become available, or use another"),
            ),
            Some(image) => {
                let declared = match set.virtualization {
                    crate::model::Virtualization::Hvm => "hvm",
                    crate::model::Virtualization::Pv => "paravirtual",
                };
                if image.virtualization != declared {
                    diags.push(
                        Diagnostic::error(
                            Code::ImageCompat,
                            format!(
                                "image {id} in {region} is {}, but ami_set \"{}\" declares {}",
                                image.virtualization, set.name, set.virtualization
                            ),
                        )
                        .at(at.clone(), format!("{} image", image.virtualization))
                        .help("fix the AMI set's virtualization or use an image of the declared kind"),
                    );
                }
                if image.architecture != set.architecture.to_string() {
                    diags.push(
                        Diagnostic::error(
                            Code::ImageCompat,
                            format!(
                                "image {id} in {region} is {}, but ami_set \"{}\" declares {}",
                                image.architecture, set.name, set.architecture
                            ),
                        )
                        .at(at, format!("{} image", image.architecture))
                        .help("fix the AMI set's architecture or use an image of the declared kind"),
                    );
                }
            }
        }
    }
}

/// Holds back image changes outside the canary regions of a staged roll-out
/// (unless `promote`), marks the rest with their stage, and records where
/// each region of such a worker type stands.
fn stage_rollouts(
    config: &Config,
    region: &str,
    templates: Option<&TemplatesAt<'_>>,
    promote: bool,
    actions: &mut Vec<Action>,
    rollouts: &mut BTreeMap<String, Rollout>,
) {
    let Some(templates) = templates else {
        return;
    };
    // The template updates of each worker type in this region (its own
    // template's first, then its instance types'), by worker type address.
    let mut updates: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in actions.iter().enumerate().filter(|(_, a)| {
        a.resource == Resource::LaunchTemplate
            && a.action == ActionKind::Update
            && a.region == region
    }) {
        let list = updates
            .entry(owner_address(&a.address).to_string())
            .or_default();
        if a.address == owner_address(&a.address) {
            list.insert(0, i);
        } else {
            list.push(i);
        }
    }
    // Held updates left with no change; removed after the loop so that the
    // indices above stay valid.
    let mut emptied: BTreeSet<usize> = BTreeSet::new();
    for wt in config
        .worker_types
        .values()
        .filter(|wt| wt.regions.iter().any(|r| r == region))
    {
        let canaries = wt.canary_regions(&config.fleet);
        if canaries.is_empty() {
            continue;
        }
        let addr = address::worker_type(&wt.name);
        let regional = address::worker_type_in(&wt.name, region);
        let current = templates
            .get(regional.as_str())
            .and_then(|t| t.default_data.as_ref())
            .and_then(|d| d.image_id.clone());
        // Only the updates that change the image are staged.
        let staged: Vec<usize> = updates
            .get(&addr)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| actions[i].changes.iter().any(|c| c.path == "image_id"))
            .collect();
        let target = match staged.first() {
            Some(&i) => actions[i]
                .launch_template
                .as_ref()
                .and_then(|t| t.image_id.clone())
                .or_else(|| {
                    actions[i]
                        .image_copy
                        .as_ref()
                        .map(|_| "(copy, known after apply)".to_string())
                }),
            None => current.clone(),
        };
        let canary = canaries.contains(&region);
        let status = if staged.is_empty() {
            if current.is_none() {
                "new"
            } else {
                "on-target"
            }
        } else if canary {
            for &i in &staged {
                actions[i].stage = Some(Stage::Canary);
            }
            "canary"
        } else if promote {
            for &i in &staged {
                actions[i].stage = Some(Stage::Promote);
            }
            "promote"
        } else {
            for &i in &staged {
                let action = &mut actions[i];
                // Each template keeps the image it has now.
                let live_image = action
                    .changes
                    .iter()
                    .find(|c| c.path == "image_id")
                    .and_then(|c| c.old.clone());
                action.changes.retain(|c| c.path != "image_id");
                action.image_copy = None;
                if let Some(data) = action.launch_template.as_mut() {
                    data.image_id = live_image;
                }
                if action.changes.is_empty() {
                    emptied.insert(i);
                }
            }
            "held"
        };
        rollouts
            .entry(addr.clone())
            .or_insert_with(|| Rollout {
                address: addr.clone(),
                regions: Vec::new(),
            })
            .regions
            .push(RolloutRegion {
                region: region.to_string(),
                canary,
                current,
                target,
                status: status.to_string(),
            });
    }
    let mut index = 0;
    actions.retain(|_| {
        let keep = !emptied.contains(&index);
        index += 1;
        keep
    });
}

/// Launch templates by their `fleetform:address` tag: one lookup per worker
/// type instead of a scan of the region's templates.
/// A region's launch templates by the address they are tagged with.
type TemplatesAt<'o> = BTreeMap<&'o str, &'o ObservedLaunchTemplate>;

fn templates_by_address(templates: &[ObservedLaunchTemplate]) -> TemplatesAt<'_> {
    templates
        .iter()
        .filter_map(|t| Some((t.tags.get(tags::ADDRESS)?.as_str(), t)))
        .collect()
}

/// The root device name of `image` (planned in `region`) as observed: the
/// image's own, or for a copy still to be made, its source's (CopyImage
/// keeps the block device mapping).
fn root_device<'a>(
    config: &Config,
    observation: &'a Observation,
    region: &str,
    image: &PlannedImage,
) -> Option<&'a str> {
    let find = |region: &str, id: &str| {
        observation
            .regions
            .get(region)?
            .images
            .complete()?
            .iter()
            .find(|i| i.id == id)?
            .root_device_name
            .as_deref()
    };
    match (&image.image_id, &image.copy_of) {
        (Some(id), _) => find(region, id),
        (None, Some(source)) => {
            let from = config.ami_sets.get(&image.ami_set)?.source.as_ref()?;
            find(&from.region, source)
        }
        (None, None) => None,
    }
}

/// The launch templates `wt` wants in `region`: its own, then one per
/// instance type that needs its own, in declared order. Each with its
/// action address, regional tag address, EC2 name and what it is of.
pub fn wanted_templates<'a>(
    config: &Config,
    wt: &'a WorkerType,
    region: &'a str,
) -> Vec<(String, String, String, TemplateOf<'a>)> {
    let mut out = vec![(
        address::worker_type(&wt.name),
        address::worker_type_in(&wt.name, region),
        launch_template_name(config, wt),
        TemplateOf::WorkerType,
    )];
    for it in wt
        .instance_types_in(region)
        .filter(|it| wt.has_own_template(it, region))
    {
        let addr = instance_type_address(&wt.name, &it.name);
        out.push((
            addr.clone(),
            format!("{addr}[\"{region}\"]"),
            instance_type_template_name(config, wt.id(), &it.name),
            TemplateOf::InstanceType(it),
        ));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn launch_templates(
    config: &Config,
    region: &str,
    observation: &Observation,
    observed: &RegionObservation,
    by_address: Option<&TemplatesAt<'_>>,
    planned: &[PlannedImage],
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
) {
    let (Some(existing), Some(by_address)) = (observed.launch_templates.complete(), by_address)
    else {
        return;
    };
    // Each worker type's templates on every core (a region's plan is one
    // task of its own, and there are fewer regions than worker types);
    // their actions and diagnostics are taken in the worker types' order.
    let of_worker_type = |wt: &WorkerType| {
        let mut tags_wanted: Vec<String> = Vec::new();
        let mut actions: Vec<Action> = Vec::new();
        let mut diags = Diagnostics::default();
        let image = images::planned(planned, &wt.ami_set, region);
        // A copy this plan makes: its id is known once apply made it.
        // Unknown when the region's images could not be read: then no copy is
        // planned either, and the template stays as it is.
        let copying = image.filter(|p| {
            p.via == ImageVia::Copy && p.image_id.is_none() && observed.images.complete().is_some()
        });
        let templates = wanted_templates(config, wt, region);
        tags_wanted.extend(templates.iter().map(|(_, tag, _, _)| tag.clone()));
        if image.is_some_and(|p| p.image_id.is_none()) && copying.is_none() {
            // No image could be chosen (FF002 says why, or the read was
            // incomplete): leave the template as it is.
            return (tags_wanted, actions, diags);
        }
        let root = image.and_then(|p| root_device(config, observation, region, p));
        if wt.root_volume.is_some() && root.is_none() && image.is_some() {
            // Without the image's root device, root_volume cannot be mapped:
            // a template without it would launch with the image's small root
            // disk. Fail closed: leave the templates as they are.
            if observed.images.complete().is_some() {
                diags.push(
                    Diagnostic::warning(
                        Code::ImageMissing,
                        format!(
                            "the root device of the image of worker type {} in {region} is unknown, so its root_volume cannot be mapped; its launch templates there stay as they are",
                            wt.name
                        ),
                    )
                    .at(wt.origin.attribute("root_volume"), "root device unknown")
                    .help("run plan again once the image is listed with its root device"),
                );
            }
            return (tags_wanted, actions, diags);
        }
        for (addr, tag, name, of) in templates {
            let desired = template_for(
                config,
                wt,
                of,
                region,
                image.and_then(|p| p.image_id.clone()),
                root,
            );
            let live = by_address.get(tag.as_str());
            let live_changes =
                live.map(|live| template_changes(live.default_data.as_ref(), &desired, root));
            if live_changes.as_ref().is_some_and(Vec::is_empty) && copying.is_none() {
                // Up to date: nothing to build.
                continue;
            }
            let mark_copy = |mut changes: Vec<Change>| {
                if let Some(p) = copying {
                    let copy = format!(
                        "(copy of {}, known after apply)",
                        p.copy_of.as_deref().unwrap_or("the source")
                    );
                    for c in changes.iter_mut().filter(|c| c.path == "image_id") {
                        c.new = Some(copy.clone());
                    }
                    if !changes.iter().any(|c| c.path == "image_id") {
                        changes.insert(0, change("image_id", None, Some(copy)));
                    }
                }
                changes
            };
            let base = Action {
                name: Some(name),
                changes: mark_copy(template_changes(None, &desired, root)),
                launch_template: Some(desired),
                image_copy: copying.map(|p| address::ami_set(&p.ami_set)),
                tags: identity_tags(config, &tag, Some(wt.id())),
                ..Action::new(
                    &addr,
                    region,
                    ActionKind::Create,
                    Resource::LaunchTemplate,
                    Reason::New,
                )
            };
            match (live, live_changes) {
                (Some(live), Some(changes)) => actions.push(Action {
                    action: ActionKind::Update,
                    reason: Reason::ConfigChanged,
                    ids: vec![live.id.clone()],
                    changes: mark_copy(changes),
                    ..base
                }),
                _ => actions.push(base),
            }
        }
        (tags_wanted, actions, diags)
    };
    let per_worker_type: Vec<(Vec<String>, Vec<Action>, Diagnostics)> = config
        .worker_types
        .par_iter()
        .filter(|(_, wt)| wt.regions.iter().any(|r| r == region))
        .map(|(_, wt)| of_worker_type(wt))
        .collect();
    let mut wanted = BTreeSet::new();
    for (tags_wanted, made, found) in per_worker_type {
        wanted.extend(tags_wanted);
        actions.extend(made);
        diags.extend(found);
    }
    for live in existing {
        let addr = live
            .tags
            .get(tags::ADDRESS)
            .map(ToString::to_string)
            .unwrap_or_else(|| "(orphan)".into());
        if !wanted.contains(&addr) {
            actions.push(Action {
                name: Some(live.name.clone()),
                ids: vec![live.id.clone()],
                ..Action::new(
                    &action_address(&addr, region),
                    region,
                    ActionKind::Delete,
                    Resource::LaunchTemplate,
                    Reason::Orphan,
                )
            });
        }
    }
}

/// Capacity actions in one region; returns the estimated hourly cost after
/// apply. Instances of types their worker type does not declare go to `unweighed`.
/// What [`instances`] needs besides the region's observation.
struct Scaling<'a, 'b> {
    now: i64,
    unseen: &'a super::visibility::Unseen<'b>,
    /// Networks broken in this region (FF012): nothing launches into them.
    broken: &'a BTreeSet<String>,
    /// What EC2 offers in this region.
    offered: &'a super::network::Offered<'b>,
    /// Instances an Auto Scaling group holds, or a deleted group terminates.
    held: &'a BTreeSet<String>,
    /// The bounds of worker types with `scope = "worker_type"` in this region.
    pool: &'a super::pool::PoolBounds,
}

/// What [`instances`] adds to the region's plan.
struct Scaled<'a> {
    actions: &'a mut Vec<Action>,
    unweighed: &'a mut Vec<Unweighed>,
    skipped: &'a mut Vec<SkippedPair>,
}

fn instances(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    templates: Option<&TemplatesAt<'_>>,
    scaling: Scaling<'_, '_>,
    out: Scaled<'_>,
) -> f64 {
    let Scaling {
        now,
        unseen,
        broken,
        offered,
        held,
        pool,
    } = scaling;
    let Scaled {
        actions,
        unweighed,
        skipped,
    } = out;
    let (Some(found), Some(templates)) = (observed.instances.complete(), templates) else {
        return 0.0;
    };
    let mut hourly = 0.0;
    // Worker types whose template in this region changes: their instances are
    // on an older version. A set, not a scan of the actions per worker type.
    let changing: BTreeSet<String> = actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate && a.region == region)
        .map(|a| a.address.clone())
        .collect();
    let mut by_address: BTreeMap<&str, Vec<&ObservedInstance>> = BTreeMap::new();
    // What an Auto Scaling group holds (or a deleted one terminates) is not
    // scaled here.
    for i in found.iter().filter(|i| !held.contains(&i.id)) {
        by_address
            .entry(
                i.tags
                    .get(tags::ADDRESS)
                    .map(Text::as_str)
                    .unwrap_or("(orphan)"),
            )
            .or_default()
            .push(i);
    }
    for wt in config
        .worker_types
        .values()
        .filter(|wt| wt.regions.iter().any(|r| r == region))
    {
        let addr = address::worker_type_in(&wt.name, region);
        let live = by_address.remove(addr.as_str()).unwrap_or_default();
        if wt.scaling == crate::model::Scaling::Asg {
            continue;
        }
        let template = templates.get(addr.as_str()).copied();
        // Instances are on the current version only if they run the default
        // version of one of the worker type's templates, and it will not change.
        let wanted = wanted_templates(config, wt, region);
        // (Template id, default version) of each: a worker type has a few.
        let current: Vec<(&str, String)> = wanted
            .iter()
            .filter(|(action, _, _, _)| !changing.contains(action))
            .filter_map(|(_, tag, _, _)| templates.get(tag.as_str()))
            .map(|t| (t.id.as_str(), t.default_version.to_string()))
            .collect();
        // Bounds over all regions are shared out before the regions are
        // planned; a worker type blind in one of its regions is not scaled.
        let (min, max) = match pool.get(&wt.name) {
            Some(super::pool::Share::Bounds { min, max }) => (*min, *max),
            Some(super::pool::Share::Blind) => continue,
            None => (wt.capacity.min, wt.capacity.max),
        };
        let bounds = Bounds {
            min,
            max,
            max_lifetime: wt.max_lifetime.map(|d| d.as_secs()),
            types: wt
                .instance_types
                .iter()
                .map(|t| (t.name.clone(), t.capacity))
                .collect(),
        };
        let running = |i: &ObservedInstance| i.state == "pending" || i.state == "running";
        // Fail closed: what fleetform cannot weigh counts at the heaviest declared weight.
        let mut undeclared: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for i in live.iter().filter(|i| running(i)) {
            if let Weight::Undeclared(_) = bounds.weigh(&i.instance_type) {
                undeclared
                    .entry(i.instance_type.as_str())
                    .or_default()
                    .push(i.id.clone());
            }
        }
        unweighed.extend(
            undeclared
                .into_iter()
                .map(|(instance_type, ids)| Unweighed {
                    address: address::worker_type(&wt.name),
                    region: region.to_string(),
                    instance_type: instance_type.to_string(),
                    counted_weight: bounds.heaviest(),
                    ids,
                }),
        );
        let units: Vec<Unit> = live
            .iter()
            .map(|i| Unit {
                id: i.id.clone(),
                weight: bounds.weigh(&i.instance_type).units(),
                launched: i.launch_time,
                current_version: i.launch_template.as_ref().is_some_and(|(id, version)| {
                    current.iter().any(|(i, v)| i == id && v == version)
                }),
                running: running(i),
            })
            .collect();
        // Launched but not listed yet: running, at their type's weight.
        let unseen_here = unseen.instances(&address::worker_type(&wt.name));
        let unseen_units = unseen_here
            .iter()
            .map(|c| super::visibility::weight(wt, c.instance_type.as_deref()))
            .sum();
        hourly += unseen_here
            .iter()
            .filter_map(|c| hourly_price(c.instance_type.as_deref()?))
            .sum::<f64>();
        // Weighed by every declared type; launched only as the types used in
        // this region (an instance type's `regions`).
        let in_region = Bounds {
            types: wt
                .instance_types_in(region)
                .map(|t| (t.name.clone(), t.capacity))
                .collect(),
            ..bounds.clone()
        };
        let mut decision = capacity::decide_with_unseen(&units, unseen_units, &in_region, now);
        let leaving: BTreeSet<&str> = decision
            .terminate
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        hourly += live
            .iter()
            .filter(|i| {
                (i.state == "pending" || i.state == "running") && !leaving.contains(i.id.as_str())
            })
            .filter_map(|i| hourly_price(&i.instance_type))
            .sum::<f64>();
        // The templates of instance types that have their own, by plan address:
        // their ids, or those not listed yet, to launch from.
        let template_id = |action_address: &str, tag: &str| {
            templates
                .get(tag)
                .map(|t| t.id.clone())
                .or_else(|| unseen.template(action_address).map(str::to_string))
        };
        let own: BTreeMap<&str, (String, String, String)> = wanted
            .iter()
            .filter_map(|(action, tag, name, of)| match of {
                TemplateOf::InstanceType(it) => Some((
                    it.name.as_str(),
                    (action.clone(), tag.clone(), name.clone()),
                )),
                TemplateOf::WorkerType => None,
            })
            .collect();
        let network = wt.network.as_deref().and_then(|n| config.networks.get(n));
        let placement = if network.is_some() {
            // Zone-aware: the capacity each zone runs after the terminations.
            let mut per_zone: BTreeMap<String, u32> = BTreeMap::new();
            for i in live
                .iter()
                .filter(|i| running(i) && !leaving.contains(i.id.as_str()))
            {
                if let Some(zone) = &i.zone {
                    *per_zone.entry(zone.clone()).or_default() +=
                        bounds.weigh(&i.instance_type).units();
                }
            }
            let template_of = |it: &InstanceType| {
                own.get(it.name.as_str())
                    .map(|(action, _, name)| (action.clone(), name.clone()))
            };
            let mut pairs = super::placement::order(
                super::network::pairs(config, wt, region, offered, &template_of, skipped),
                &per_zone,
            );
            for pair in &mut pairs {
                if let Some((action, tag, _)) = own.get(pair.instance_type.as_str()) {
                    pair.template_id = template_id(action, tag);
                }
            }
            let launched = decision.launch.as_ref().map_or(0, |(_, w, n)| w * n);
            let kept = decision.running_after - launched;
            let usable = !wt.network.as_ref().is_some_and(|n| broken.contains(n));
            let split = if usable && kept < bounds.min {
                super::placement::split(
                    bounds.min - kept,
                    bounds.max.saturating_sub(kept),
                    &pairs,
                    &per_zone,
                )
            } else {
                Vec::new()
            };
            decision.running_after = kept + super::placement::units(&split, &pairs);
            decision.launch = None;
            (!split.is_empty()).then(|| LaunchPlacement {
                split,
                pairs,
                security_group_ids: network
                    .and_then(|n| n.security_groups.get(region))
                    .cloned()
                    .unwrap_or_default(),
                assign_public_ip: network.and_then(|n| n.assign_public_ip),
            })
        } else if !own.is_empty() {
            // No network, but instance types with templates of their own: the
            // launch uses its type's template, and may fall through to the
            // other types (EC2 picks the zone).
            decision.launch.as_ref().map(|(instance_type, _, count)| {
                let pairs: Vec<LaunchPair> = wt
                    .instance_types_in(region)
                    .map(|it| {
                        let mine = own.get(it.name.as_str());
                        LaunchPair {
                            zone: None,
                            subnet_id: None,
                            instance_type: it.name.clone(),
                            weight: it.capacity.max(1),
                            template: mine.map(|(a, _, _)| a.clone()),
                            template_id: mine.and_then(|(a, t, _)| template_id(a, t)),
                            template_name: mine.map(|(_, _, n)| n.clone()),
                        }
                    })
                    .collect();
                LaunchPlacement {
                    split: vec![Placement {
                        zone: None,
                        subnet_id: None,
                        instance_type: instance_type.clone(),
                        count: *count,
                    }],
                    pairs,
                    security_group_ids: Vec::new(),
                    assign_public_ip: None,
                }
            })
        } else {
            None
        };
        for reason in [TerminateReason::MaxLifetime, TerminateReason::AboveMax] {
            let ids: Vec<String> = decision
                .terminate
                .iter()
                .filter(|(_, r)| *r == reason)
                .map(|(id, _)| id.clone())
                .collect();
            if !ids.is_empty() {
                actions.push(instances_action(
                    &wt.name,
                    region,
                    ActionKind::Terminate,
                    reason_of(reason),
                    ids,
                    &decision,
                    &bounds,
                ));
            }
        }
        let launch_template_id = template
            .map(|t| t.id.as_str())
            .or_else(|| unseen.template(&address::worker_type(&wt.name)))
            .map(|id| vec![id.to_string()])
            .unwrap_or_default();
        // A split over zones, or (without a network) one type and count.
        let launch = match placement {
            Some(placement) => {
                let count: u32 = placement.split.iter().map(|p| p.count).sum();
                hourly += placement
                    .split
                    .iter()
                    .map(|p| hourly_price(&p.instance_type).unwrap_or(0.0) * f64::from(p.count))
                    .sum::<f64>();
                let first = placement.split.first().map(|p| p.instance_type.clone());
                let uniform = placement
                    .split
                    .iter()
                    .all(|p| Some(&p.instance_type) == first.as_ref());
                Some((count, first.filter(|_| uniform), Some(placement)))
            }
            None => decision.launch.as_ref().map(|(instance_type, _, count)| {
                hourly += hourly_price(instance_type).unwrap_or(0.0) * f64::from(*count);
                (*count, Some(instance_type.clone()), None)
            }),
        };
        if let Some((count, instance_type, placement)) = launch {
            actions.push(Action {
                count: Some(count),
                instance_type,
                name: Some(launch_template_name(config, wt)),
                ids: launch_template_id,
                tags: identity_tags(config, &addr, Some(wt.id())),
                placement,
                ..instances_action(
                    &wt.name,
                    region,
                    ActionKind::Launch,
                    Reason::BelowMin,
                    Vec::new(),
                    &decision,
                    &bounds,
                )
            });
        }
    }
    // What is left carries the fleet tag but no declared worker type in this region.
    for (addr, live) in by_address {
        let ids: Vec<String> = live.iter().map(|i| i.id.clone()).collect();
        actions.push(Action {
            ids,
            ..Action::new(
                addr.split('[').next().unwrap_or(addr),
                region,
                ActionKind::Terminate,
                Resource::Instances,
                Reason::Orphan,
            )
        });
    }
    hourly
}

/// FF004 warnings: once per worker type and region that runs instances of
/// types it does not declare, naming the types and how many of each.
fn unweighed_warnings(config: &Config, unweighed: &[Unweighed], diags: &mut Diagnostics) {
    let mut by_worker: BTreeMap<(&str, &str), Vec<&Unweighed>> = BTreeMap::new();
    for u in unweighed {
        by_worker
            .entry((u.address.as_str(), u.region.as_str()))
            .or_default()
            .push(u);
    }
    for ((addr, region), found) in by_worker {
        let name = addr.strip_prefix("worker_type.").unwrap_or(addr);
        let Some(wt) = config.worker_types.get(name) else {
            continue;
        };
        let count: usize = found.iter().map(|u| u.ids.len()).sum();
        let weight = found.first().map_or(1, |u| u.counted_weight);
        let types: Vec<String> = found
            .iter()
            .map(|u| format!("{} x {}", u.ids.len(), u.instance_type))
            .collect();
        // Point at the declared type whose weight they are counted at.
        let heaviest = wt
            .instance_types
            .iter()
            .filter(|t| t.capacity == weight)
            .map(|t| format!("instance_type.{}", t.name))
            .next();
        let at = heaviest
            .and_then(|key| wt.origin.attributes.get(&key).cloned())
            .or_else(|| wt.origin.block.clone());
        diags.push(
            Diagnostic::warning(
                Code::CapacityBound,
                format!(
                    "worker type {name} in {region} runs {count} instance{} of instance types it does not declare ({}); fleetform cannot weigh them, so each counts as {weight} capacity unit{}, the heaviest weight declared",
                    if count == 1 { "" } else { "s" },
                    types.join(", "),
                    if weight == 1 { "" } else { "s" },
                ),
            )
            .at(at, format!("undeclared types counted at this weight ({weight})"))
            .help(format!(
                "declare each type with its weight (instance_type \"{}\" {{ capacity = N }}), or launch only declared types; the instance ids are in plan --json under \"unweighed\"",
                found.first().map_or("TYPE", |u| u.instance_type.as_str())
            )),
        );
    }
}

fn reason_of(reason: TerminateReason) -> Reason {
    match reason {
        TerminateReason::MaxLifetime => Reason::MaxLifetime,
        TerminateReason::AboveMax => Reason::AboveMax,
        TerminateReason::Orphan => Reason::Orphan,
    }
}

fn instances_action(
    worker_type: &str,
    region: &str,
    action: ActionKind,
    reason: Reason,
    ids: Vec<String>,
    decision: &capacity::Decision,
    bounds: &Bounds,
) -> Action {
    Action {
        ids,
        changes: vec![Change {
            path: "capacity".into(),
            old: Some(decision.running_before.to_string()),
            new: Some(format!(
                "{} (min {}, max {})",
                decision.running_after, bounds.min, bounds.max
            )),
            sensitive: false,
        }],
        ..Action::new(
            &address::worker_type(worker_type),
            region,
            action,
            Resource::Instances,
            reason,
        )
    }
}

fn summarize(actions: &[Action], hourly: f64, skipped_regions: Vec<String>) -> Summary {
    let mut s = Summary {
        hourly_usd: (hourly * 100.0).round() / 100.0,
        skipped_regions,
        ..Summary::default()
    };
    for a in actions {
        // What Auto Scaling terminates because of a group's change (a lowered
        // max, a deleted group) counts as terminations.
        if a.resource == Resource::AutoScalingGroup {
            s.terminate += a.count.unwrap_or(0);
        }
        match a.action {
            ActionKind::Create => s.add += 1,
            ActionKind::Update | ActionKind::Refresh => s.change += 1,
            ActionKind::Attach | ActionKind::Detach => {}
            ActionKind::Delete => s.destroy += 1,
            ActionKind::Replace => {
                s.add += 1;
                s.destroy += 1;
            }
            ActionKind::Launch => s.launch += a.count.unwrap_or(0),
            ActionKind::Terminate => s.terminate += a.ids.len() as u32,
            ActionKind::Adopt => s.adopt += 1,
            ActionKind::Copy => {
                s.add += 1;
                s.copy += 1;
            }
            ActionKind::Prune => {
                s.destroy += 1;
                s.prune += 1;
            }
        }
    }
    s
}

/// FF006: launches, terminations and deletions within `fleet.limits` unless a flag allows more.
fn blast_radius(
    config: &Config,
    summary: &Summary,
    actions: &[Action],
    options: &PlanOptions,
    diags: &mut Diagnostics,
) {
    let limits = &config.fleet.limits;
    let origin = &config.fleet.origin;
    let max_launches = options.max_launches.unwrap_or(limits.max_launches);
    if summary.launch > max_launches {
        diags.push(
            Diagnostic::error(
                Code::BlastRadius,
                format!(
                    "the plan launches {} instances; the limit is {max_launches}",
                    summary.launch
                ),
            )
            .at(origin.attribute("limits.max_launches"), "launch limit")
            .help(format!(
                "review the plan, then pass --max-launches {} to allow it",
                summary.launch
            )),
        );
    }
    let max_terminations = options.max_terminations.unwrap_or(limits.max_terminations);
    if summary.terminate > max_terminations && !options.allow_destroy {
        diags.push(
            Diagnostic::error(
                Code::BlastRadius,
                format!(
                    "the plan terminates {} instances; the limit is {max_terminations}",
                    summary.terminate
                ),
            )
            .at(
                origin.attribute("limits.max_terminations"),
                "termination limit",
            )
            .help(format!(
                "review the plan, then pass --max-terminations {} (or --allow-destroy) to allow it",
                summary.terminate
            )),
        );
    }
    let deletions = actions
        .iter()
        .filter(|a| {
            matches!(
                a.action,
                ActionKind::Delete | ActionKind::Replace | ActionKind::Prune
            )
        })
        .count() as u32;
    if deletions > limits.max_deletions && !options.allow_destroy {
        diags.push(
            Diagnostic::error(
                Code::BlastRadius,
                format!(
                    "the plan deletes {deletions} objects; the limit is {}",
                    limits.max_deletions
                ),
            )
            .at(origin.attribute("limits.max_deletions"), "deletion limit")
            .help("review the plan, then pass --allow-destroy to allow it"),
        );
    }
}

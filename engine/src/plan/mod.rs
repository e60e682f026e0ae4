//! A plan: the changes that would make live EC2 match the configuration, and
//! what is unsafe about them. Built by [`build`] from a model, an
//! observation and what the state recorded ([`PlanOptions`]); rendered by
//! [`render`]; saved bound to its inputs by [`saved`]; carried out by
//! [`crate::apply`].
//!
//! The plan is plain, serializable data (it is the JSON of `plan --json`);
//! renderers and apply read it and never reach back into the model or the
//! observation. The one thing apply takes from the model besides it is what
//! the plan withholds: sensitive user data ([`crate::sensitive::Withheld`]).

pub mod build;
pub mod capacity;
pub mod dry_run;
pub mod groups;
pub mod identity;
pub mod image_actions;
pub mod import;
pub mod network;
mod payload;
pub mod placement;
pub mod pool;
pub mod render;
pub mod saved;
pub mod visibility;
mod withhold;

pub use build::{build, PlanOptions};
pub use payload::{LaunchTarget, Malformed, Payload};

use crate::diagnostic::JsonDiagnostic;
use crate::inventory::ObjectKind;
use crate::provider::{Kind, LaunchTemplateData};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What an action does.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// Create an object (`+`).
    Create,
    /// Change an object in place: a new launch template version made default (`~`).
    Update,
    /// Delete and create again (`-/+`).
    Replace,
    /// Delete an object (`-`).
    Delete,
    /// Launch instances (`+`).
    Launch,
    /// Terminate instances (`-`).
    Terminate,
    /// Record an object fleetform's tags identify but its state does not know (`<=`);
    /// no cloud call. Left by an apply that crashed before recording what it made.
    /// With reason `import`: tag an object made by hand with fleetform's tags
    /// (CreateTags), the one way such an object comes under management.
    Adopt,
    /// Copy an image into this region (CopyImage) and wait until it is available (`+`).
    Copy,
    /// Deregister an image past its set's `retain` and delete its snapshots (`-`).
    Prune,
    /// Start an instance refresh of an Auto Scaling group (`~`): it replaces
    /// the group's instances with ones of the template's new default version.
    Refresh,
    /// Attach running instances to their worker type's new Auto Scaling group (`<=`).
    Attach,
    /// Detach running instances from an Auto Scaling group being removed (`=>`),
    /// so that they keep running under direct scaling.
    Detach,
}

impl ActionKind {
    /// The marker shown before the action: `+ ~ - -/+`.
    pub fn marker(self) -> &'static str {
        match self {
            ActionKind::Create | ActionKind::Launch | ActionKind::Copy => "+",
            ActionKind::Update | ActionKind::Refresh => "~",
            ActionKind::Delete | ActionKind::Terminate | ActionKind::Prune => "-",
            ActionKind::Replace => "-/+",
            ActionKind::Adopt | ActionKind::Attach => "<=",
            ActionKind::Detach => "=>",
        }
    }

    /// The action's name as plan JSON spells it (`create`, `launch`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::Update => "update",
            ActionKind::Replace => "replace",
            ActionKind::Delete => "delete",
            ActionKind::Launch => "launch",
            ActionKind::Terminate => "terminate",
            ActionKind::Adopt => "adopt",
            ActionKind::Copy => "copy",
            ActionKind::Prune => "prune",
            ActionKind::Refresh => "refresh",
            ActionKind::Attach => "attach",
            ActionKind::Detach => "detach",
        }
    }
}

/// The kind of EC2 object an action touches.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// An EC2 key pair.
    KeyPair,
    /// A launch template.
    LaunchTemplate,
    /// Instances of a worker type.
    Instances,
    /// An AMI of an AMI set.
    Image,
    /// An Auto Scaling group of a worker type with `scaling = "asg"`.
    AutoScalingGroup,
}

/// Why an action is planned. Plans write it as its kebab-case name
/// (`below-min`); the set is part of the plan format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The configuration declares an object EC2 does not hold.
    New,
    /// What the configuration declares differs from what EC2 holds.
    ConfigChanged,
    /// A key pair's public key changed: it is replaced.
    PublicKeyChanged,
    /// Running capacity is below `min`.
    BelowMin,
    /// Running capacity is above `max`.
    AboveMax,
    /// Instances are older than `max_lifetime`.
    MaxLifetime,
    /// An object carries the fleet's tag but nothing declares it any more.
    Orphan,
    /// EC2 holds an object of the fleet that the last recorded version does not list.
    NotInState,
    /// An AMI set copies its source image to this region.
    CopyTo,
    /// A copy of the source image is already under way in this region.
    CopyPending,
    /// A tagged image is older than its set's `retain` and nothing holds it.
    PastRetain,
    /// A worker type's `scaling` changed between `direct` and `asg`.
    ScalingChanged,
    /// A launch template's default version changes under an Auto Scaling group.
    TemplateChanged,
    /// An object made by hand that the configuration declares (written by
    /// `fleetform import`): tagged with fleetform's tags, and, for a launch
    /// template, given a version that only adds fleetform's tag specifications.
    Import,
}

impl Reason {
    /// The name plans write (`below-min`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::New => "new",
            Reason::ConfigChanged => "config-changed",
            Reason::PublicKeyChanged => "public-key-changed",
            Reason::BelowMin => "below-min",
            Reason::AboveMax => "above-max",
            Reason::MaxLifetime => "max-lifetime",
            Reason::Orphan => "orphan",
            Reason::NotInState => "not-in-state",
            Reason::CopyTo => "copy-to",
            Reason::CopyPending => "copy-pending",
            Reason::PastRetain => "past-retain",
            Reason::ScalingChanged => "scaling-changed",
            Reason::TemplateChanged => "template-changed",
            Reason::Import => "import",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attribute that changes: old and new value (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// Attribute path, e.g. `image_id`.
    pub path: String,
    /// Value now.
    pub old: Option<String>,
    /// Value after apply.
    pub new: Option<String>,
    /// The values derive from a sensitive variable: `old` and `new` only
    /// describe them (`(sensitive: 12 lines)`), and the values differ.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// One change to one object (or group of instances) in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Action {
    /// `key_pair.NAME`, `worker_type.NAME`, or `(orphan)`.
    pub address: String,
    /// Region.
    pub region: String,
    /// What happens.
    pub action: ActionKind,
    /// What it happens to.
    pub resource: Resource,
    /// Why it happens.
    pub reason: Reason,
    /// EC2 name of the object (key pair or launch template name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Existing cloud ids the action acts on (template id, instance ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    /// Instances to launch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Instance type to launch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Attribute changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// For launch templates: the version to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_template: Option<LaunchTemplateData>,
    /// For key pairs: the public key to import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Tags to set at creation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// For copies: the region of the source image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_region: Option<String>,
    /// For copies: the source image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image: Option<String>,
    /// For launch templates whose image is a copy this plan makes: the address
    /// of that copy (`ami_set.NAME`, same region); apply fills in its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_copy: Option<String>,
    /// For image changes of a staged roll-out: `canary` (goes first) or
    /// `promote` (runs only once every canary of its worker type succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// Attributes whose values the plan withholds because they derive from
    /// a sensitive variable (`user_data`): apply takes them from the
    /// configuration, loaded with the sensitive variables supplied again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive: Vec<String>,
    /// For launches of a worker type with a network or with instance types
    /// that have launch templates of their own: the planned split over
    /// (zone, instance type) pairs and the pairs to fall through to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<LaunchPlacement>,
    /// For Auto Scaling groups: the group as it should be after the action
    /// (create, update), or whose instances are attached or detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling_group: Option<PlannedGroup>,
}

/// An Auto Scaling group as a plan makes it. Bounds are in capacity units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedGroup {
    /// Group name (`<fleet>.<id>`).
    pub name: String,
    /// The worker type's launch template, when it exists before the apply
    /// (else apply takes the one it creates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_template_id: Option<String>,
    /// The instance types, weighted by capacity.
    pub overrides: Vec<PlannedOverride>,
    /// Subnets instances launch into.
    pub subnet_ids: Vec<String>,
    /// The region's share of `min`.
    pub min: u32,
    /// The region's share of `max`.
    pub max: u32,
    /// MaxSize: `max` less the heaviest weight but one, so that Auto
    /// Scaling's weighted overshoot never passes `max`.
    pub max_size: u32,
    /// The desired capacity to set: at creation, or to clamp one outside
    /// new bounds into them; unset leaves it to the provisioner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_capacity: Option<u32>,
    /// MaxInstanceLifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instance_lifetime_secs: Option<u64>,
    /// Spot instances, at most this price (`Some(None)`: the on-demand
    /// price); unset: on-demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<GroupSpotPlan>,
    /// Tags on the group, propagated to its instances at launch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// For updates: the propagated tags the group has now.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub old_tags: BTreeMap<String, String>,
    /// For refreshes: the share of capacity kept in service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_healthy_percentage: Option<u8>,
}

/// The spot part of a planned group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GroupSpotPlan {
    /// Most paid per instance-hour in USD (unset: the on-demand price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
}

/// One instance type of a planned group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedOverride {
    /// Instance type.
    pub instance_type: String,
    /// Capacity units one instance provides.
    pub weight: u32,
    /// The address of the instance type's own launch template, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// That template's id, when it exists before the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
}

/// Where a launch goes: its planned split, and every pair it may use, in
/// the order apply tries them when a pair fails for lack of capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchPlacement {
    /// The planned split: how many instances go to which pair.
    pub split: Vec<Placement>,
    /// Every usable pair, in fall-through order (zones with the least
    /// running capacity first, instance types in declared order).
    pub pairs: Vec<LaunchPair>,
    /// Security groups of the launches' network interface (the network's, for the region).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Whether the launches get a public IPv4 address (unset: the subnet's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<bool>,
}

/// One part of a launch's planned split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Placement {
    /// Availability zone (unset: EC2 picks; a worker type without a network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Subnet of that zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Instance type.
    pub instance_type: String,
    /// Instances.
    pub count: u32,
}

/// A (subnet, instance type) pair a launch may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LaunchPair {
    /// Availability zone (unset: EC2 picks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Subnet of that zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// Instance type.
    pub instance_type: String,
    /// Capacity units one instance of the type provides.
    pub weight: u32,
    /// The address of the instance type's own launch template
    /// (`worker_type.NAME.instance_type["TYPE"]`), when it has one; unset:
    /// the worker type's template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// That template's id, when it exists already (else apply takes the one it creates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    /// That template's EC2 name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_name: Option<String>,
}

impl LaunchPair {
    /// Whether `placement` is this pair's.
    pub fn holds(&self, placement: &Placement) -> bool {
        self.zone == placement.zone
            && self.subnet_id == placement.subnet_id
            && self.instance_type == placement.instance_type
    }
}

/// Why a (zone, instance type) pair is never launched into.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    /// The network's `exclude` names the type or its family in the zone.
    Excluded,
    /// EC2 does not offer the type in the zone (FF013).
    NotOffered,
}

/// A (zone, instance type) pair of a worker type that launches skip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SkippedPair {
    /// `worker_type.NAME`.
    pub address: String,
    /// Region.
    pub region: String,
    /// Availability zone.
    pub zone: String,
    /// Instance type.
    pub instance_type: String,
    /// Why.
    pub reason: SkipReason,
}

/// The stage of an image change in a staged roll-out.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// A canary region: takes the new image first.
    Canary,
    /// A promoted region: follows only when the canaries succeeded.
    Promote,
}

impl Action {
    /// An action with nothing but its identity; fill in the rest with struct update syntax.
    pub fn new(
        address: &str,
        region: &str,
        action: ActionKind,
        resource: Resource,
        reason: Reason,
    ) -> Action {
        Action {
            address: address.to_string(),
            region: region.to_string(),
            action,
            resource,
            reason,
            name: None,
            ids: Vec::new(),
            count: None,
            instance_type: None,
            changes: Vec::new(),
            launch_template: None,
            public_key: None,
            tags: BTreeMap::new(),
            source_region: None,
            source_image: None,
            image_copy: None,
            stage: None,
            sensitive: Vec::new(),
            placement: None,
            auto_scaling_group: None,
        }
    }
}

/// Counts of a plan, as the summary line shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Objects created (replacements included).
    pub add: u32,
    /// Objects changed in place.
    pub change: u32,
    /// Objects deleted (replacements included).
    pub destroy: u32,
    /// Instances launched.
    pub launch: u32,
    /// Instances terminated.
    pub terminate: u32,
    /// Objects adopted into state.
    #[serde(default)]
    pub adopt: u32,
    /// Images copied into a region (also counted in `add`).
    #[serde(default)]
    pub copy: u32,
    /// Images pruned (also counted in `destroy`).
    #[serde(default)]
    pub prune: u32,
    /// Estimated on-demand cost per hour of the instances running after apply.
    pub hourly_usd: f64,
    /// Regions where scaling was skipped because the observation was incomplete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_regions: Vec<String>,
}

/// A read that did not complete; nothing is launched or terminated there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IncompleteRead {
    /// Region.
    pub region: String,
    /// Kind of object.
    pub kind: Kind,
    /// Why.
    pub cause: String,
}

/// A whole plan (the `plan --json` document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Format of this document.
    pub format_version: String,
    /// Fleet name.
    pub fleet: String,
    /// Counts.
    pub summary: Summary,
    /// Every change, grouped by address and region.
    pub actions: Vec<Action>,
    /// Reads that did not complete.
    #[serde(default)]
    pub incomplete: Vec<IncompleteRead>,
    /// Safety findings and warnings (filled in for JSON output).
    #[serde(default)]
    pub diagnostics: Vec<JsonDiagnostic>,
    /// The image each AMI set provides in each region it serves.
    #[serde(default)]
    pub images: Vec<crate::images::PlannedImage>,
    /// Staged roll-outs: per worker type with canary regions, which region is on which image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<Rollout>,
    /// Instances of a type their worker type does not declare, each counted
    /// at the heaviest declared weight (FF004 warning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unweighed: Vec<Unweighed>,
    /// Key pairs replaced or deleted, with every worker type and running
    /// instance that uses them (FF008).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_impacts: Vec<KeyImpact>,
    /// (zone, instance type) pairs launches skip: excluded by the network,
    /// or not offered by EC2 there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_pairs: Vec<SkippedPair>,
}

/// One key pair this plan replaces or deletes in one region, and who uses it (FF008).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyImpact {
    /// `key_pair.NAME` of the live key pair.
    pub address: String,
    /// Region.
    pub region: String,
    /// EC2 name of the key pair.
    pub name: String,
    /// `replace` (same name, new public key) or `delete`.
    pub action: ActionKind,
    /// For a deletion: `key_pair.NAME` the worker types that used it now use
    /// instead, when this plan creates that key pair (a rename).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<String>,
    /// Every worker type that uses the key pair, by name.
    pub worker_types: Vec<KeyUser>,
    /// Instances that use the key pair but carry no `fleetform:worker-type` tag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untagged_ids: Vec<String>,
}

/// One worker type using a key pair, and how fleetform knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct KeyUser {
    /// Worker type name.
    pub worker_type: String,
    /// Where the use was found: `config` (the configuration now),
    /// `recorded` (the last recorded version), `launch-template` (its
    /// template's default version), `instances` (its running instances' tags).
    pub sources: Vec<String>,
    /// Instances of the worker type (by their `fleetform:worker-type` tag) launched with the key.
    pub instances: u32,
    /// Their ids.
    pub ids: Vec<String>,
}

/// Instances of one worker type in one region whose instance type the worker
/// type does not declare: fleetform cannot weigh them, so each counts at the
/// heaviest weight the worker type declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Unweighed {
    /// `worker_type.NAME`.
    pub address: String,
    /// Region.
    pub region: String,
    /// The undeclared instance type.
    pub instance_type: String,
    /// Capacity units each of these instances counts for.
    pub counted_weight: u32,
    /// The pending and running instances of that type.
    pub ids: Vec<String>,
}

/// Where a staged image roll-out of one worker type stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Rollout {
    /// `worker_type.NAME`.
    pub address: String,
    /// Each region of the worker type.
    pub regions: Vec<RolloutRegion>,
}

/// One region of a staged roll-out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RolloutRegion {
    /// Region.
    pub region: String,
    /// True for a canary region.
    pub canary: bool,
    /// Image its launch template uses now (`None`: no template yet).
    pub current: Option<String>,
    /// Image the configuration wants.
    pub target: Option<String>,
    /// `on-target`, `new` (no template yet), `canary` (changes now), `held`
    /// (waits for `--promote`), `promote` (changes now, after the canaries).
    pub status: String,
}

impl Plan {
    /// True when the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Adds an adopt action for every key pair and launch template found by
    /// tag (`found`) whose id the last recorded version does not list
    /// (`recorded`). Instances are capacity, not recorded one by one.
    pub fn adopt_unrecorded(
        &mut self,
        found: &[crate::inventory::Object],
        recorded: &[crate::inventory::Object],
    ) {
        let known: std::collections::BTreeSet<&str> =
            recorded.iter().map(|e| e.id.as_str()).collect();
        for entry in found {
            let resource = match entry.kind {
                ObjectKind::KeyPair => Resource::KeyPair,
                ObjectKind::LaunchTemplate => Resource::LaunchTemplate,
                // Groups are found by name, which makes them again a no-op.
                ObjectKind::Image | ObjectKind::Instance | ObjectKind::AutoScalingGroup => continue,
            };
            if entry.address == "(orphan)" || known.contains(entry.id.as_str()) {
                continue;
            }
            let address = crate::plan::build::action_address(&entry.address, &entry.region);
            self.actions.push(Action {
                ids: vec![entry.id.clone()],
                name: entry.name().map(str::to_string),
                ..Action::new(
                    &address,
                    &entry.region,
                    ActionKind::Adopt,
                    resource,
                    Reason::NotInState,
                )
            });
            self.summary.adopt += 1;
        }
        self.actions.sort_by(|a, b| {
            (&a.address, &a.region, a.resource, a.action)
                .cmp(&(&b.address, &b.region, b.resource, b.action))
        });
    }
}

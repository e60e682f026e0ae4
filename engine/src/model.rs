//! The typed, validated model of a fleet: what the configuration declares.
//!
//! This is what every later stage (observe, plan, apply, state) works on. It is
//! plain data: no HCL, no AWS types. Each object keeps an [`Origin`] so that
//! checks run long after loading can still point at the HCL that declared it;
//! origins are not part of the serialized model, so a reformatted file yields
//! an equal model.

use crate::source::SourceRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Where an object was declared: its block, and each attribute by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The whole block (or, failing that, its header).
    pub block: Option<SourceRef>,
    /// Each attribute or nested block by name (nested: `capacity.max`, `instance_type.c5.metal`).
    pub attributes: Spans,
}

/// Locations by name, in name order (see [`crate::sorted_map::SortedMap`]).
pub type Spans = crate::sorted_map::SortedMap<SourceRef>;

impl Origin {
    /// The location of an attribute, falling back to the block.
    pub fn attribute(&self, name: &str) -> Option<SourceRef> {
        self.attributes
            .get(name)
            .cloned()
            .or_else(|| self.block.clone())
    }
}

/// A whole configuration: one fleet and everything it declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Config {
    /// The fleet block.
    pub fleet: Fleet,
    /// Key pairs by name.
    pub key_pairs: BTreeMap<String, KeyPair>,
    /// AMI sets by name.
    pub ami_sets: BTreeMap<String, AmiSet>,
    /// Worker types by name.
    pub worker_types: BTreeMap<String, WorkerType>,
    /// Networks (subnets and security groups) by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub networks: BTreeMap<String, Network>,
    /// Names of variables marked `sensitive`; their values are redacted in output.
    pub sensitive_variables: Vec<String>,
    /// Where state lives (`backend "local" { path = ... }`); default `.fleetform/` beside the config.
    #[serde(default)]
    pub backend: Option<Backend>,
}

/// The `backend` block: `backend "local" { path = ".fleetform" }` or
/// `backend "s3" { bucket = "..." key = "fleet/state" region = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Backend {
    /// `local` or `s3`.
    pub kind: String,
    /// `local`: directory of the state, relative to the config directory.
    pub path: Option<String>,
    /// `s3`: the bucket holding the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// `s3`: the key prefix under which every state object lives (e.g. `fleet/state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `s3`: the bucket's region; when absent, the standard AWS region resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// The `fleet` block: identity, regions and fleet-wide bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fleet {
    /// The fleet's name; tagged on every object as `fleetform:fleet`.
    pub name: String,
    /// The only AWS account apply may change (FF009).
    pub account_id: Option<String>,
    /// Regions the fleet runs in.
    pub regions: Vec<String>,
    /// Hourly budget at max capacity (FF007).
    pub budget: Option<Budget>,
    /// Per-apply blast-radius limits (FF006).
    pub limits: Limits,
    /// Images referenced by state versions this young are protected (FF001).
    pub rollback_window: Duration,
    /// Default staged roll-out of image changes for every worker type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// How long after its creation an object fleetform created may still be
    /// missing from a complete read and count as present (EC2 is eventually
    /// consistent); default 10 minutes.
    #[serde(default = "Fleet::default_consistency_grace")]
    pub consistency_grace: Duration,
    #[serde(skip)]
    #[schemars(skip)]
    /// Where the fleet was declared.
    pub origin: Origin,
}

impl Fleet {
    /// `consistency_grace` when the fleet block does not set it: 10 minutes.
    pub fn default_consistency_grace() -> Duration {
        Duration::from_secs(600)
    }
}

/// The `budget` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Budget {
    /// Most the whole fleet may cost per hour with every worker type at max capacity.
    pub max_hourly_usd: f64,
}

/// The `limits` block: how much one apply may change unless a flag allows more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Most instances one apply may launch.
    pub max_launches: u32,
    /// Most instances one apply may terminate.
    pub max_terminations: u32,
    /// Most managed objects (key pairs, templates, images) one apply may delete.
    pub max_deletions: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_launches: 50,
            max_terminations: 20,
            max_deletions: 10,
        }
    }
}

/// A `key_pair` block: an EC2 key pair imported from a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KeyPair {
    /// Name of the block (`LABEL`, or `LABEL["KEY"]` for an instance of a
    /// `for_each`): its key in [`Config::key_pairs`] and its address.
    pub name: String,
    /// Its id when that is not `name`: the `name` attribute, or
    /// `<label>-<key>` under `for_each`. The EC2 key pair is `<fleet>.<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// OpenSSH public key text.
    pub public_key: String,
    #[serde(skip)]
    #[schemars(skip)]
    /// Where it was declared.
    pub origin: Origin,
    /// The EC2 key pair's name when it is not `<fleet>.<id>` (a key pair
    /// made by hand and imported keeps its name): what the key pair is
    /// created as and matched by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_name: Option<String>,
}

impl KeyPair {
    /// The key pair's id: what its EC2 name (`<fleet>.<id>`) is made of.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }

    /// The EC2 name of the key pair in fleet `fleet`: `ec2_name` when set,
    /// else `<fleet>.<id>`.
    pub fn ec2_name_in(&self, fleet: &str) -> String {
        self.ec2_name
            .clone()
            .unwrap_or_else(|| format!("{fleet}.{}", self.id()))
    }
}

/// Hardware virtualization of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Virtualization {
    /// Hardware virtual machine: every current instance family.
    Hvm,
    /// Paravirtual: previous-generation families only.
    Pv,
}

/// CPU architecture of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Intel and AMD.
    X86_64,
    /// AWS Graviton.
    Arm64,
}

impl fmt::Display for Virtualization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Virtualization::Hvm => "hvm",
            Virtualization::Pv => "pv",
        })
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        })
    }
}

/// An `ami_set` block: one image per region with the same properties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AmiSet {
    /// Name of the block; tagged on images as `fleetform:ami-set`.
    pub name: String,
    /// Declared virtualization of every image.
    pub virtualization: Virtualization,
    /// Declared architecture of every image.
    pub architecture: Architecture,
    /// Region -> AMI id, when the set names its images explicitly.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// Or: the newest available image matching a name pattern, per region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup: Option<ImageLookup>,
    /// Or: one image in one region, copied by fleetform to other regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ImageSource>,
    /// Tagged images older than this may be pruned unless referenced.
    pub retain: Option<Duration>,
    #[serde(skip)]
    #[schemars(skip)]
    /// Where it was declared.
    pub origin: Origin,
}

impl AmiSet {
    /// Whether the set can provide an image in `region` (before any cloud call:
    /// a lookup covers every region; whether it matches is known at plan time).
    pub fn covers(&self, region: &str) -> bool {
        self.lookup.is_some()
            || self.images.contains_key(region)
            || self
                .source
                .as_ref()
                .is_some_and(|s| s.region == region || s.copy_to.iter().any(|r| r == region))
    }
}

/// A `lookup` block: pick, per region, the newest available image whose name
/// matches `name` (`*` and `?` wildcards) among images owned by `owners`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageLookup {
    /// Name pattern, e.g. `docker-worker-*`.
    pub name: String,
    /// Owners: `self`, an account id, or an alias such as `amazon`.
    pub owners: Vec<String>,
}

/// A `source` block: an image in one region, and the regions fleetform copies it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImageSource {
    /// Region of the source image.
    pub region: String,
    /// AMI id of the source image.
    pub image: String,
    /// Regions that get a copy (CopyImage), tagged with the set and the source id.
    pub copy_to: Vec<String>,
}

/// A `rollout` block: which regions take a new image first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Rollout {
    /// Regions that take an image change at once; the others wait for `apply --promote`.
    pub canary_regions: Vec<String>,
}

/// Spot or on-demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    /// Spot instances.
    Spot,
    /// On-demand instances.
    OnDemand,
}

/// One `instance_type` block of a worker type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceType {
    /// EC2 instance type, e.g. `m5.xlarge`.
    pub name: String,
    /// Capacity units one instance of this type provides (>= 1).
    pub capacity: u32,
    /// The only regions this instance type is used in (default: all of the worker type's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<String>>,
    /// User data of this instance type, replacing the worker type's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Whether this instance type's `user_data` derives from a sensitive variable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_data_sensitive: bool,
    /// Volumes by device name that replace or add to the worker type's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
}

impl InstanceType {
    /// Whether this instance type is used in `region`.
    pub fn used_in(&self, region: &str) -> bool {
        self.regions
            .as_ref()
            .is_none_or(|regions| regions.iter().any(|r| r == region))
    }
}

/// A `network` block: the subnets and security groups a worker type launches
/// into. fleetform reads and verifies them; it never creates or changes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Network {
    /// Name of the block.
    pub name: String,
    /// Availability zone -> subnet id.
    pub subnets: BTreeMap<String, String>,
    /// Region -> security group ids.
    pub security_groups: BTreeMap<String, Vec<String>>,
    /// Availability zone -> instance families (`r5ad`) or types (`m5dn.large`) never launched there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exclude: BTreeMap<String, Vec<String>>,
    /// Whether instances get a public IPv4 address (default: the subnet's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<bool>,
    #[serde(skip)]
    #[schemars(skip)]
    /// Where it was declared.
    pub origin: Origin,
}

impl Network {
    /// The zones of `region` this network has subnets in, with their subnet ids,
    /// in zone order. A zone belongs to a region when its name is the region's
    /// name followed by one lowercase letter (or a local-zone suffix).
    pub fn subnets_in<'a>(&'a self, region: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.subnets
            .iter()
            .filter(move |(zone, _)| zone_in_region(zone, region))
            .map(|(zone, subnet)| (zone.as_str(), subnet.as_str()))
    }

    /// Whether `exclude` names `instance_type` or its family in `zone`.
    pub fn excludes(&self, zone: &str, instance_type: &str) -> bool {
        let family = instance_type.split('.').next().unwrap_or(instance_type);
        self.exclude
            .get(zone)
            .is_some_and(|names| names.iter().any(|n| n == instance_type || n == family))
    }
}

/// Whether availability zone `zone` (e.g. `us-east-1a`) is in `region` (`us-east-1`).
pub fn zone_in_region(zone: &str, region: &str) -> bool {
    zone.strip_prefix(region).is_some_and(|rest| {
        let mut chars = rest.chars();
        match chars.next() {
            // us-east-1a
            Some(c) if c.is_ascii_lowercase() => chars.as_str().is_empty(),
            // us-east-1-bos-1a (Local Zones)
            Some('-') => !chars.as_str().is_empty(),
            _ => false,
        }
    })
}

/// EBS volume types.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    /// General purpose SSD, burstable.
    Gp2,
    /// General purpose SSD, provisioned baseline.
    Gp3,
    /// Provisioned IOPS SSD.
    Io1,
    /// Provisioned IOPS SSD, higher durability.
    Io2,
    /// Throughput optimized HDD.
    St1,
    /// Cold HDD.
    Sc1,
    /// Magnetic (previous generation).
    Standard,
}

impl VolumeType {
    /// Every volume type, in EC2's order.
    pub const ALL: [VolumeType; 7] = [
        VolumeType::Gp2,
        VolumeType::Gp3,
        VolumeType::Io1,
        VolumeType::Io2,
        VolumeType::St1,
        VolumeType::Sc1,
        VolumeType::Standard,
    ];

    /// EC2's name of the type (`gp3`).
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Gp2 => "gp2",
            VolumeType::Gp3 => "gp3",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
            VolumeType::Standard => "standard",
        }
    }

    /// The type EC2 calls `name`, if any.
    pub fn parse(name: &str) -> Option<VolumeType> {
        VolumeType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for VolumeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `root_volume` or `volume "DEVICE"` block: one EBS volume created with each instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Volume {
    /// Size in GiB.
    pub size_gb: u32,
    /// EBS volume type.
    #[serde(rename = "type")]
    pub volume_type: VolumeType,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Provisioned throughput in MiB/s (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// Whether the volume is encrypted (default: the account's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

/// The `spot` block: options of spot requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct Spot {
    /// Most paid per instance-hour in USD, as written (e.g. `0.68`); default: the on-demand price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
}

/// Whether instances may use IMDSv1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv2 only: every metadata request needs a session token.
    #[default]
    Required,
    /// IMDSv1 allowed too.
    Optional,
}

impl HttpTokens {
    /// EC2's name of the setting.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpTokens::Required => "required",
            HttpTokens::Optional => "optional",
        }
    }
}

/// The `metadata` block: instance metadata service options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    /// IMDSv2 required (default) or optional.
    pub http_tokens: HttpTokens,
    /// Network hops a metadata response may travel (1 to 64; default 1, containers need 2).
    pub hop_limit: u8,
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata {
            http_tokens: HttpTokens::Required,
            hop_limit: 1,
        }
    }
}

/// The `capacity` block: bounds in capacity units, per region or over the
/// worker type's regions ([`CapacityScope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    /// Fewest units running (per region, or in all regions together).
    pub min: u32,
    /// Most units running (per region, or in all regions together); never
    /// exceeded (FF004).
    pub max: u32,
    /// What the bounds hold over.
    #[serde(default, skip_serializing_if = "CapacityScope::is_region")]
    pub scope: CapacityScope,
}

impl Capacity {
    /// Per-region bounds `min`..`max`.
    pub fn per_region(min: u32, max: u32) -> Capacity {
        Capacity {
            min,
            max,
            scope: CapacityScope::Region,
        }
    }
}

/// What a worker type's `capacity` bounds hold over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacityScope {
    /// Each region on its own (the default).
    #[default]
    Region,
    /// All the worker type's regions together.
    WorkerType,
}

impl CapacityScope {
    /// Whether this is the default, per-region scope.
    pub fn is_region(&self) -> bool {
        *self == CapacityScope::Region
    }
}

/// Who keeps a worker type's capacity inside its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// fleetform: each apply launches up to `min` and terminates above `max`.
    #[default]
    Direct,
    /// An Auto Scaling group per region, which holds the bounds between applies.
    Asg,
}

impl Scaling {
    /// Whether this is the default, direct scaling.
    pub fn is_direct(&self) -> bool {
        *self == Scaling::Direct
    }
}

/// The `instance_refresh` block of an `asg` worker type: after a template
/// change, replace the running instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceRefresh {
    /// Share of capacity (percent) that stays in service during the refresh.
    pub min_healthy_percentage: u8,
}

/// A `worker_type` block: a launch template per region and the instances launched from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkerType {
    /// Name of the block (`LABEL`, or `LABEL["KEY"]` for an instance of a
    /// `for_each`): its key in [`Config::worker_types`] and its address.
    pub name: String,
    /// Its id when that is not `name`: the `name` attribute, or
    /// `<label>-<key>` under `for_each`. See [`WorkerType::id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name of the AMI set its images come from.
    pub ami_set: String,
    /// Name of the key pair, if instances get one.
    pub key_pair: Option<String>,
    /// Regions it runs in (default: the fleet's).
    pub regions: Vec<String>,
    /// Instance types with their capacity weights, in declaration order.
    pub instance_types: Vec<InstanceType>,
    /// Capacity bounds.
    pub capacity: Capacity,
    /// Who holds the bounds: fleetform's applies, or an Auto Scaling group.
    #[serde(default, skip_serializing_if = "Scaling::is_direct")]
    pub scaling: Scaling,
    /// With `asg`: replace running instances after a template change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_refresh: Option<InstanceRefresh>,
    /// Spot or on-demand.
    pub market: Market,
    /// Instances older than this are terminated.
    pub max_lifetime: Option<Duration>,
    /// User data passed to instances (in memory only when sensitive: plans
    /// and state never hold it then).
    pub user_data: Option<String>,
    /// Whether `user_data` derives from a sensitive variable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub user_data_sensitive: bool,
    /// Extra tags on the launch template and instances.
    pub tags: crate::provider::Tags,
    /// Staged roll-out of image changes (overrides the fleet's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// Name of the network it launches into; without one EC2's defaults apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Instance profile (name or ARN) instances run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// Size and type of the image's root device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_volume: Option<Volume>,
    /// Further volumes by device name (`/dev/xvdb`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, Volume>,
    /// Spot options (only with `market = "spot"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot: Option<Spot>,
    /// Instance metadata options (default: IMDSv2 required, hop limit 1).
    #[serde(default)]
    pub metadata: Metadata,
    /// Per region, the values of attributes that use `region` (the region a
    /// template is for); empty when none does. Read through the `*_in`
    /// accessors, never directly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regional: BTreeMap<String, RegionalValues>,
    #[serde(skip)]
    #[schemars(skip)]
    /// Where it was declared.
    pub origin: Origin,
    /// The EC2 name of its launch templates when it is not `<fleet>.<id>`
    /// (a template made by hand and imported keeps its name): what its
    /// templates are created as and matched by, in every region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec2_name: Option<String>,
}

/// The values a worker type's attributes take in one region, where they use
/// `region` and so differ from region to region.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RegionalValues {
    /// `user_data` in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// `tags` in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<crate::provider::Tags>,
    /// `iam_instance_profile` in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// Instance type name -> its `user_data` in this region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_user_data: BTreeMap<String, String>,
}

impl WorkerType {
    /// The worker type's id: what EC2 names (`<fleet>.<id>`) and the
    /// `fleetform:worker-type` tag carry, and what live objects are matched by.
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }

    /// The EC2 name of the worker type's launch template in fleet `fleet`:
    /// `ec2_name` when set, else `<fleet>.<id>`.
    pub fn ec2_name_in(&self, fleet: &str) -> String {
        self.ec2_name
            .clone()
            .unwrap_or_else(|| format!("{fleet}.{}", self.id()))
    }

    /// The user data of the worker type's launch template in `region`.
    pub fn user_data_in(&self, region: &str) -> Option<&str> {
        self.regional
            .get(region)
            .and_then(|r| r.user_data.as_deref())
            .or(self.user_data.as_deref())
    }

    /// The extra tags of the worker type's objects in `region`.
    pub fn tags_in(&self, region: &str) -> &crate::provider::Tags {
        self.regional
            .get(region)
            .and_then(|r| r.tags.as_ref())
            .unwrap_or(&self.tags)
    }

    /// The instance profile instances run with in `region`.
    pub fn iam_instance_profile_in(&self, region: &str) -> Option<&str> {
        self.regional
            .get(region)
            .and_then(|r| r.iam_instance_profile.as_deref())
            .or(self.iam_instance_profile.as_deref())
    }

    /// The instance types used in `region`, in declared order.
    pub fn instance_types_in<'a>(
        &'a self,
        region: &'a str,
    ) -> impl Iterator<Item = &'a InstanceType> {
        self.instance_types
            .iter()
            .filter(move |t| t.used_in(region))
    }

    /// The user data instances of `instance_type` get in `region`: its own, else the worker type's.
    pub fn instance_user_data_in<'a>(
        &'a self,
        instance_type: &'a InstanceType,
        region: &str,
    ) -> Option<&'a str> {
        self.regional
            .get(region)
            .and_then(|r| r.instance_user_data.get(&instance_type.name))
            .map(String::as_str)
            .or(instance_type.user_data.as_deref())
            .or_else(|| self.user_data_in(region))
    }

    /// Whether `instance_type`'s user data derives from a sensitive variable.
    pub fn instance_user_data_sensitive(&self, instance_type: &InstanceType) -> bool {
        if instance_type.user_data.is_some() {
            instance_type.user_data_sensitive
        } else {
            self.user_data_sensitive
        }
    }

    /// Whether any user data of this worker type (its own, per region, or
    /// an instance type's) derives from a sensitive variable.
    pub fn has_sensitive_user_data(&self) -> bool {
        self.user_data_sensitive || self.instance_types.iter().any(|t| t.user_data_sensitive)
    }

    /// Replaces every user data that derives from a sensitive variable by
    /// `replace(data)`: the worker type's own and its values per region when
    /// it is sensitive, and each sensitive instance type's own and per
    /// region. What masks or withholds user data must go through this (or
    /// cover the same places): a secret may sit in any of them.
    pub fn map_sensitive_user_data(&mut self, mut replace: impl FnMut(&str) -> String) {
        if self.user_data_sensitive {
            if let Some(data) = self.user_data.as_mut() {
                *data = replace(data);
            }
            for values in self.regional.values_mut() {
                if let Some(data) = values.user_data.as_mut() {
                    *data = replace(data);
                }
            }
        }
        for it in self
            .instance_types
            .iter_mut()
            .filter(|t| t.user_data_sensitive)
        {
            if let Some(data) = it.user_data.as_mut() {
                *data = replace(data);
            }
            for values in self.regional.values_mut() {
                if let Some(data) = values.instance_user_data.get_mut(&it.name) {
                    *data = replace(data);
                }
            }
        }
    }

    /// The bounds an Auto Scaling group of this worker type holds in
    /// `region`: the worker type's own per region, or with `scope =
    /// "worker_type"` an even share of them over its regions, the remainder
    /// going one unit each to the first regions in `fleet_regions` order.
    pub fn group_bounds_in(&self, region: &str, fleet_regions: &[String]) -> (u32, u32) {
        let c = self.capacity;
        if c.scope == CapacityScope::Region {
            return (c.min, c.max);
        }
        let ordered: Vec<&String> = fleet_regions
            .iter()
            .filter(|r| self.regions.contains(r))
            .collect();
        let Some(index) = ordered.iter().position(|r| *r == region) else {
            return (0, 0);
        };
        let n = ordered.len() as u32;
        let share = |total: u32| total / n + u32::from((index as u32) < total % n);
        (share(c.min), share(c.max))
    }

    /// The volumes instances of `instance_type` get, by device name: the
    /// worker type's, each replaced or added to by the instance type's own.
    pub fn volumes_of(&self, instance_type: &InstanceType) -> BTreeMap<String, Volume> {
        let mut volumes = self.volumes.clone();
        volumes.extend(
            instance_type
                .volumes
                .iter()
                .map(|(device, v)| (device.clone(), v.clone())),
        );
        volumes
    }

    /// Whether `instance_type` needs a launch template of its own in
    /// `region`: its volumes or its user data differ from the worker type's.
    pub fn has_own_template(&self, instance_type: &InstanceType, region: &str) -> bool {
        instance_type
            .volumes
            .iter()
            .any(|(device, v)| self.volumes.get(device) != Some(v))
            || self.instance_user_data_in(instance_type, region) != self.user_data_in(region)
    }

    /// The canary regions of this worker type's image roll-outs (its own
    /// `rollout`, else the fleet's), limited to regions it runs in; empty: no staging.
    pub fn canary_regions<'a>(&'a self, fleet: &'a Fleet) -> Vec<&'a str> {
        self.rollout
            .as_ref()
            .or(fleet.rollout.as_ref())
            .map(|r| {
                r.canary_regions
                    .iter()
                    .filter(|c| self.regions.contains(c))
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A span of time written like `96h`, `30d` or `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[schemars(with = "String")]
pub struct Duration {
    seconds: u64,
}

impl Duration {
    /// A duration of this many seconds.
    pub fn from_secs(seconds: u64) -> Self {
        Duration { seconds }
    }

    /// Length in seconds.
    pub fn as_secs(self) -> u64 {
        self.seconds
    }

    /// Parses `<number><unit>` pairs (units `s`, `m`, `h`, `d`, `w`), e.g. `1d12h`.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a duration cannot be empty".into());
        }
        let mut seconds: u64 = 0;
        let mut digits = String::new();
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let unit: u64 = match ch {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                _ => {
                    return Err(format!(
                        "`{ch}` is not a duration unit (use s, m, h, d or w)"
                    ))
                }
            };
            if digits.is_empty() {
                return Err(format!("unit `{ch}` has no number before it"));
            }
            let n: u64 = digits
                .parse()
                .map_err(|_| format!("`{digits}` is too large"))?;
            seconds = n
                .checked_mul(unit)
                .and_then(|s| seconds.checked_add(s))
                .ok_or_else(|| "the duration is too large".to_string())?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(format!(
                "`{digits}` has no unit (write e.g. `{digits}h` or `{digits}d`)"
            ));
        }
        Ok(Duration { seconds })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.seconds;
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Stable addresses of declared objects, as plans and state name them.
pub mod address {
    /// `worker_type.NAME`.
    pub fn worker_type(name: &str) -> String {
        format!("worker_type.{name}")
    }

    /// `LABEL["KEY"]`: the name of the instance `KEY` of a block with
    /// `for_each` (its key in the model, and its address after `KIND.`).
    pub fn instance(label: &str, key: &str) -> String {
        format!("{label}[\"{key}\"]")
    }

    /// The block label of an address or model name: `worker_type.b["k"]["r"]`
    /// -> `b`, `b["k"]` -> `b` (labels never hold `[` or `.`).
    pub fn label(name: &str) -> &str {
        let name = ["worker_type.", "key_pair.", "ami_set.", "network."]
            .iter()
            .find_map(|kind| name.strip_prefix(kind))
            .unwrap_or(name);
        name.split('[').next().unwrap_or(name)
    }

    /// `worker_type.NAME["REGION"]`: one worker type in one region.
    pub fn worker_type_in(name: &str, region: &str) -> String {
        format!("worker_type.{name}[\"{region}\"]")
    }

    /// `ami_set.NAME`.
    pub fn ami_set(name: &str) -> String {
        format!("ami_set.{name}")
    }

    /// `key_pair.NAME`.
    pub fn key_pair(name: &str) -> String {
        format!("key_pair.{name}")
    }

    /// `network.NAME`.
    pub fn network(name: &str) -> String {
        format!("network.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_found_by_name_and_kept_in_name_order() {
        let at = |start: usize| SourceRef {
            file: 0,
            span: start..start + 1,
        };
        let mut spans = Spans::default();
        for (name, start) in [("max", 3), ("capacity", 1), ("min", 2), ("max", 4)] {
            spans.insert(name.to_string(), at(start));
        }
        assert_eq!(spans.len(), 3);
        assert_eq!(spans.get("max"), Some(&at(4)));
        assert!(spans.contains_key("capacity") && !spans.contains_key("market"));
        let names: Vec<&str> = spans.keys().collect();
        assert_eq!(names, ["capacity", "max", "min"]);
    }

    #[test]
    fn durations_parse_and_print_canonically() {
        assert_eq!(Duration::parse("96h").map(|d| d.as_secs()), Ok(96 * 3600));
        assert_eq!(
            Duration::parse("30d").map(|d| d.to_string()),
            Ok("30d".into())
        );
        assert_eq!(Duration::parse("1h30m").map(|d| d.as_secs()), Ok(5400));
        assert_eq!(
            Duration::parse("96h").map(|d| d.to_string()),
            Ok("4d".into())
        );
    }

    #[test]
    fn bad_durations_say_why() {
        assert!(Duration::parse("").is_err());
        assert!(Duration::parse("10").unwrap_err().contains("no unit"));
        assert!(Duration::parse("3y")
            .unwrap_err()
            .contains("not a duration unit"));
        assert!(Duration::parse("h").unwrap_err().contains("no number"));
        assert!(Duration::parse("99999999999999999999d").is_err());
    }

    #[test]
    fn zones_belong_to_their_region_only() {
        assert!(zone_in_region("us-east-1a", "us-east-1"));
        assert!(zone_in_region("us-east-1-bos-1a", "us-east-1"));
        assert!(!zone_in_region("us-east-1a", "us-east-2"));
        assert!(!zone_in_region("us-east-12a", "us-east-1"));
        assert!(!zone_in_region("us-east-1", "us-east-1"));
        assert!(!zone_in_region("us-east-1ab", "us-east-1"));
    }

    #[test]
    fn exclude_matches_types_and_families() {
        let network = Network {
            name: "n".into(),
            subnets: BTreeMap::new(),
            security_groups: BTreeMap::new(),
            exclude: BTreeMap::from([(
                "us-east-1b".into(),
                vec!["r5ad".into(), "m5dn.large".into()],
            )]),
            assign_public_ip: None,
            origin: Origin::default(),
        };
        assert!(network.excludes("us-east-1b", "r5ad.xlarge"));
        assert!(network.excludes("us-east-1b", "m5dn.large"));
        assert!(!network.excludes("us-east-1b", "m5dn.xlarge"));
        assert!(!network.excludes("us-east-1a", "r5ad.xlarge"));
    }

    #[test]
    fn addresses_are_stable() {
        assert_eq!(address::worker_type("gecko"), "worker_type.gecko");
        assert_eq!(
            address::worker_type_in("gecko", "us-east-1"),
            "worker_type.gecko[\"us-east-1\"]"
        );
        let instance = address::instance("b-linux", "gecko-1");
        assert_eq!(
            address::worker_type_in(&instance, "us-east-1"),
            "worker_type.b-linux[\"gecko-1\"][\"us-east-1\"]"
        );
        assert_eq!(address::label(&address::worker_type(&instance)), "b-linux");
        assert_eq!(address::label("b-linux"), "b-linux");
    }
}

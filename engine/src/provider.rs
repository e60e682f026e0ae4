//! The boundary between the engine and a cloud: the [`Provider`] trait and the
//! plain data that crosses it. The engine owns these types; a provider (today
//! `providers/aws`) translates its SDK's types into them, so no AWS type ever
//! reaches the engine.
//!
//! An observation is never silently partial: each (region, kind) is either
//! [`Observed::Complete`] or [`Observed::Incomplete`] with its cause. Unknown is
//! never zero: a scan that saw no workers because it failed must not read as
//! an empty fleet and launch a full one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// The tags of one EC2 object, by key (see [`crate::sorted_map::SortedMap`]).
pub type Tags = crate::sorted_map::SortedMap<crate::sorted_map::Text>;

/// Tag keys fleetform sets at creation on everything it manages.
pub mod tags {
    /// The fleet an object belongs to; the filter every observation uses.
    pub const FLEET: &str = "fleetform:fleet";
    /// The object's address, e.g. `worker_type.gecko["us-east-1"]`.
    pub const ADDRESS: &str = "fleetform:address";
    /// The worker type of a launch template or instance.
    pub const WORKER_TYPE: &str = "fleetform:worker-type";
    /// The AMI set of an image.
    pub const AMI_SET: &str = "fleetform:ami-set";
    /// SHA-256 (hex) of a key pair's public key, so a changed key is seen.
    pub const KEY_DIGEST: &str = "fleetform:key-digest";
    /// On a copied image: the id of the image it was copied from.
    pub const SOURCE_IMAGE: &str = "fleetform:source-image";
    /// On a copied image: the region of the image it was copied from.
    pub const SOURCE_REGION: &str = "fleetform:source-region";
}

/// Who is calling the cloud (STS GetCallerIdentity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// 12-digit account id.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
}

/// What to observe: one fleet's managed objects in some regions.
#[derive(Debug, Clone, Default)]
pub struct ObserveRequest {
    /// Value of the `fleetform:fleet` tag to filter by.
    pub fleet: String,
    /// Regions to read, concurrently.
    pub regions: Vec<String>,
    /// Per region, image ids the configuration names (looked up even if untagged).
    pub image_ids: BTreeMap<String, Vec<String>>,
    /// Image lookups of the configuration, read in every region: the images
    /// whose name matches one of the patterns, owned by one of the owners.
    pub lookups: Vec<crate::model::ImageLookup>,
    /// Per region, subnet ids the configuration names (read with a `subnet-id` filter).
    #[doc(alias = "DescribeSubnets")]
    pub subnet_ids: BTreeMap<String, Vec<String>>,
    /// Per region, security group ids the configuration names (read with a `group-id` filter).
    pub security_group_ids: BTreeMap<String, Vec<String>>,
    /// Per region, the instance types whose zone offerings to read.
    pub instance_types: BTreeMap<String, Vec<String>>,
    /// Read the fleet's Auto Scaling groups in every region (one paged,
    /// tag-filtered DescribeAutoScalingGroups per region). Unset, nothing is
    /// read and the groups are complete and empty.
    pub auto_scaling_groups: bool,
    /// Per region, the groups whose instance refreshes to read (those with
    /// `instance_refresh`): one DescribeInstanceRefreshes per group named.
    pub refresh_groups: BTreeMap<String, Vec<String>>,
    /// Per region, the EC2 names of the launch templates and key pairs the
    /// configuration declares, read whatever their tags (objects made by
    /// hand and imported carry no fleet tag until a plan adopts them).
    /// Empty: nothing is read and [`RegionObservation::adoptable`] is
    /// complete and empty.
    pub adoptable: BTreeMap<String, AdoptNames>,
}

/// The EC2 names of the objects to read in one region for adoption.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptNames {
    /// Launch template names.
    pub launch_templates: Vec<String>,
    /// Key pair names.
    pub key_pairs: Vec<String>,
}

/// The kinds of object read per region; each is complete or not on its own.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// EC2 key pairs.
    KeyPairs,
    /// AMIs (tagged, plus those the config names).
    Images,
    /// Launch templates and their default versions.
    LaunchTemplates,
    /// Instances in pending, running, stopping or stopped state.
    Instances,
    /// Subnets the configuration names.
    Subnets,
    /// Security groups the configuration names.
    SecurityGroups,
    /// Which instance types EC2 offers in which availability zones.
    Offerings,
    /// The fleet's Auto Scaling groups, their instances and refreshes.
    AutoScalingGroups,
    /// Launch templates and key pairs the configuration names, whatever
    /// their tags, and the instances launched from those templates.
    Adoptable,
}

impl Kind {
    /// Every kind, in dependency order.
    pub const ALL: [Kind; 9] = [
        Kind::KeyPairs,
        Kind::Images,
        Kind::LaunchTemplates,
        Kind::Instances,
        Kind::Subnets,
        Kind::SecurityGroups,
        Kind::Offerings,
        Kind::AutoScalingGroups,
        Kind::Adoptable,
    ];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::KeyPairs => "key pairs",
            Kind::Images => "images",
            Kind::LaunchTemplates => "launch templates",
            Kind::Instances => "instances",
            Kind::Subnets => "subnets",
            Kind::SecurityGroups => "security groups",
            Kind::Offerings => "instance type offerings",
            Kind::AutoScalingGroups => "Auto Scaling groups",
            Kind::Adoptable => "objects to adopt",
        })
    }
}

/// A read that either saw everything or says why it did not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// Externally tagged: an internally tagged enum makes serde buffer the whole
// read before decoding it, and an observation of a large fleet is tens of MB.
#[serde(rename_all = "snake_case")]
pub enum Observed<T> {
    /// Every page was read.
    Complete {
        /// What was found.
        items: T,
    },
    /// Something failed after retries; nothing may be concluded from this read.
    Incomplete {
        /// What went wrong, for the user.
        cause: String,
    },
}

impl<T: Default> Observed<T> {
    /// A complete read that found nothing: what a kind the configuration does
    /// not need reads as, without a call.
    pub fn nothing() -> Self {
        Observed::Complete {
            items: T::default(),
        }
    }
}

impl<T> Observed<T> {
    /// The items if complete.
    pub fn complete(&self) -> Option<&T> {
        match self {
            Observed::Complete { items } => Some(items),
            Observed::Incomplete { .. } => None,
        }
    }

    /// The cause if incomplete.
    pub fn cause(&self) -> Option<&str> {
        match self {
            Observed::Complete { .. } => None,
            Observed::Incomplete { cause } => Some(cause),
        }
    }
}

/// An EC2 key pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedKeyPair {
    /// Key pair name.
    pub name: String,
    /// `key-...` id.
    pub id: String,
    /// Fingerprint as EC2 reports it.
    pub fingerprint: String,
    /// All tags.
    pub tags: Tags,
}

/// An AMI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedImage {
    /// `ami-...` id.
    pub id: String,
    /// Image name.
    pub name: String,
    /// `available`, `pending`, `failed`, ...
    pub state: String,
    /// `hvm` or `paravirtual`.
    pub virtualization: String,
    /// `x86_64`, `arm64`, ...
    pub architecture: String,
    /// Creation time as EC2 reports it (ISO 8601).
    pub creation_date: String,
    /// Owner account.
    pub owner: String,
    /// EBS snapshots behind the image.
    pub snapshot_ids: Vec<String>,
    /// All tags.
    pub tags: BTreeMap<String, String>,
    /// Device name of the root volume (`/dev/xvda`), which `root_volume` sizes.
    #[serde(default)]
    pub root_device_name: Option<String>,
}

/// What a launch template version launches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LaunchTemplateData {
    /// AMI id.
    pub image_id: Option<String>,
    /// Default instance type, if the template sets one.
    pub instance_type: Option<String>,
    /// Key pair name.
    pub key_name: Option<String>,
    /// User data, decoded from base64.
    pub user_data: Option<String>,
    /// `spot` or `on-demand`.
    pub market: Option<String>,
    /// Tags applied to launched instances.
    pub instance_tags: Tags,
    /// Security groups of the instances' network interface.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_group_ids: Vec<String>,
    /// Whether the primary network interface gets a public IPv4 address
    /// (unset: the subnet's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<bool>,
    /// EBS volumes created with each instance, by device name in name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<BlockDevice>,
    /// Spot: most paid per instance-hour in USD (unset: the on-demand price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spot_max_price: Option<String>,
    /// Instance profile, by name or ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_instance_profile: Option<String>,
    /// Instance metadata options (unset: EC2's defaults, which allow IMDSv1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataOptions>,
    /// Tags applied to volumes at their creation.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub volume_tags: Tags,
}

/// A price in its shortest decimal form (`0.680` is `0.68`, `1.0` is `1`),
/// the form the read-back reports too, so that EC2 writing it back with
/// other trailing zeros is not a change. Text that is not a plain decimal
/// is left as it is (EC2 refuses it).
pub fn canonical_price(price: &str) -> String {
    let price = price.trim();
    let plain = !price.is_empty()
        && price.chars().all(|c| c.is_ascii_digit() || c == '.')
        && price.chars().filter(|&c| c == '.').count() <= 1
        && price.chars().any(|c| c.is_ascii_digit());
    if !plain || !price.contains('.') {
        return price.to_string();
    }
    let trimmed = price.trim_end_matches('0').trim_end_matches('.');
    let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
    if trimmed.starts_with('.') {
        format!("0{trimmed}")
    } else {
        trimmed.to_string()
    }
}

/// One EBS volume of a launch template's block device mappings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BlockDevice {
    /// Device name, e.g. `/dev/xvdb`, or the image's root device name.
    pub device_name: String,
    /// Size in GiB.
    pub size_gb: u32,
    /// EBS volume type (`gp3`).
    pub volume_type: String,
    /// Provisioned IOPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<u32>,
    /// Provisioned throughput, MiB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<u32>,
    /// Whether the volume is encrypted (unset: the account's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
}

/// Instance metadata service options of a launch template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional`.
    pub http_tokens: String,
    /// PUT response hop limit.
    pub hop_limit: u32,
}

/// Where one launch goes: a subnet, with the network's security groups and
/// public address setting (which EC2 takes together on the network interface).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchSubnet {
    /// Subnet id.
    pub subnet_id: String,
    /// Security group ids.
    pub security_group_ids: Vec<String>,
    /// Whether to assign a public IPv4 address (unset: the subnet's default).
    pub assign_public_ip: Option<bool>,
}

/// A subnet as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSubnet {
    /// Subnet id.
    pub id: String,
    /// Availability zone it is in.
    pub zone: String,
    /// VPC it belongs to.
    pub vpc_id: String,
}

/// A security group as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedSecurityGroup {
    /// Group id.
    pub id: String,
    /// Group name.
    pub name: String,
    /// VPC it belongs to.
    pub vpc_id: String,
}

/// That EC2 offers an instance type in an availability zone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Offering {
    /// Instance type.
    pub instance_type: String,
    /// Availability zone.
    pub zone: String,
}

/// A launch template with its default version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedLaunchTemplate {
    /// `lt-...` id.
    pub id: String,
    /// Template name (`<fleet>.<worker_type>`).
    pub name: String,
    /// Default version number.
    pub default_version: i64,
    /// Latest version number.
    pub latest_version: i64,
    /// What the default version launches, if it could be read.
    pub default_data: Option<LaunchTemplateData>,
    /// All tags.
    pub tags: Tags,
}

/// An instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedInstance {
    /// `i-...` id.
    pub id: String,
    /// `pending`, `running`, `stopping` or `stopped`.
    pub state: String,
    /// Instance type.
    pub instance_type: String,
    /// Launch time, seconds since the Unix epoch.
    pub launch_time: i64,
    /// AMI it was launched from.
    pub image_id: String,
    /// Key pair it was launched with.
    pub key_name: Option<String>,
    /// Launch template id and version, when launched from one.
    pub launch_template: Option<(String, String)>,
    /// All tags.
    pub tags: Tags,
    /// Availability zone it runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Subnet it was launched into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
}

/// An Auto Scaling group as fleetform makes it: a MixedInstancesPolicy over
/// launch templates' default versions (`$Default`), in capacity units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpec {
    /// Group name (`<fleet>.<id>`).
    pub name: String,
    /// The worker type's launch template, launched at its default version.
    pub launch_template_id: String,
    /// One override per instance type, weighted by capacity.
    pub overrides: Vec<GroupOverride>,
    /// Subnets to launch into (VPCZoneIdentifier), in name order.
    pub subnet_ids: Vec<String>,
    /// MinSize, in capacity units.
    pub min_size: i64,
    /// MaxSize, in capacity units.
    pub max_size: i64,
    /// DesiredCapacity: set at creation, and on update only to clamp one
    /// outside new bounds into them; `None` leaves it as it is.
    pub desired_capacity: Option<i64>,
    /// MaxInstanceLifetime in seconds (unset: none).
    pub max_instance_lifetime_secs: Option<i64>,
    /// Spot: on-demand percentage 0 above base capacity 0, allocation
    /// `price-capacity-optimized`, SpotMaxPrice from `max_price` (unset:
    /// the on-demand price). `None` is on-demand only.
    pub spot: Option<GroupSpot>,
    /// Tags on the group, every one propagated to launched instances.
    pub tags: BTreeMap<String, String>,
}

/// One instance type of a group's MixedInstancesPolicy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GroupOverride {
    /// Instance type.
    pub instance_type: String,
    /// WeightedCapacity: the instance type's `capacity`.
    pub weight: u32,
    /// The instance type's own launch template, when it has one (launched at
    /// its default version); unset, the group's template.
    pub launch_template_id: Option<String>,
}

/// The spot part of a group's instances distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSpot {
    /// SpotMaxPrice in USD per instance-hour (unset: the on-demand price).
    pub max_price: Option<String>,
}

/// An Auto Scaling group as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedGroup {
    /// What the group is set to, read back into fleetform's terms (a
    /// setting fleetform does not make, e.g. a fixed template version, reads
    /// as a difference: the template id is then empty).
    pub spec: GroupSpec,
    /// The desired capacity now, in capacity units.
    pub desired_capacity: i64,
    /// Its instances.
    pub instances: Vec<GroupInstance>,
    /// The newest instance refresh, when it was read and is still in flight
    /// (Pending, InProgress, Cancelling, RollbackInProgress, Baking).
    pub refresh_in_flight: Option<InstanceRefresh>,
    /// All tags of the group (`spec.tags` holds the propagated ones).
    pub tags: BTreeMap<String, String>,
}

/// An instance as its group reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInstance {
    /// `i-...` id.
    pub id: String,
    /// Instance type.
    pub instance_type: String,
    /// Lifecycle state (`InService`, `Pending`, `Terminating`, ...).
    pub lifecycle_state: String,
    /// Launch template version it was launched from, when reported.
    pub launch_template_version: Option<String>,
}

/// An instance refresh of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRefresh {
    /// Refresh id.
    pub id: String,
    /// Status as Auto Scaling reports it (`InProgress`, ...).
    pub status: String,
    /// Percentage complete, when reported.
    pub percentage_complete: Option<i64>,
}

/// Everything read in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionObservation {
    /// Key pairs tagged with the fleet.
    pub key_pairs: Observed<Vec<ObservedKeyPair>>,
    /// Images tagged with the fleet, plus the images the config names.
    pub images: Observed<Vec<ObservedImage>>,
    /// Launch templates tagged with the fleet.
    pub launch_templates: Observed<Vec<ObservedLaunchTemplate>>,
    /// Instances tagged with the fleet.
    pub instances: Observed<Vec<ObservedInstance>>,
    /// The subnets the configuration names in this region (complete and
    /// empty when it names none: nothing is read then).
    #[serde(default = "Observed::nothing")]
    pub subnets: Observed<Vec<ObservedSubnet>>,
    /// The security groups the configuration names in this region.
    #[serde(default = "Observed::nothing")]
    pub security_groups: Observed<Vec<ObservedSecurityGroup>>,
    /// Per availability zone, which of the configuration's instance types EC2 offers.
    #[serde(default = "Observed::nothing")]
    pub offerings: Observed<Vec<Offering>>,
    /// The Auto Scaling groups tagged with the fleet (complete and empty
    /// when the request did not ask for them).
    #[serde(default = "Observed::nothing")]
    pub auto_scaling_groups: Observed<Vec<ObservedGroup>>,
    /// The launch templates and key pairs the request named by EC2 name,
    /// whatever their tags, and the live instances launched from those
    /// templates (complete and empty when it named none).
    #[serde(default = "Observed::nothing")]
    pub adoptable: Observed<Adoptable>,
}

/// Objects read by EC2 name for adoption, as EC2 reports them: the engine
/// decides which of them (those without the fleet tag) a plan adopts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adoptable {
    /// Launch templates with the names asked for, with their default versions.
    pub launch_templates: Vec<ObservedLaunchTemplate>,
    /// Key pairs with the names asked for, with their public keys.
    pub key_pairs: Vec<AdoptableKeyPair>,
    /// Pending and running instances launched from those templates
    /// (`aws:ec2launchtemplate:id`), whatever their other tags.
    pub instances: Vec<ObservedInstance>,
}

/// A key pair with the public key EC2 holds for it (DescribeKeyPairs with
/// IncludePublicKey).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptableKeyPair {
    /// The key pair.
    pub key_pair: ObservedKeyPair,
    /// Its OpenSSH public key, when EC2 returned it.
    pub public_key: Option<String>,
}

/// What `fleetform import` looks for: launch templates without the fleet
/// tag in some regions, by name prefix or by tags (every filter must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoverRequest {
    /// Regions to read.
    pub regions: Vec<String>,
    /// Only templates whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only templates carrying each of these tags (key, value).
    pub tags: Vec<(String, String)>,
}

/// A launch template found by discovery, with what it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredTemplate {
    /// The template, with its default version's data.
    pub template: ObservedLaunchTemplate,
    /// The subnet of its network interface 0, if it names one.
    pub subnet_id: Option<String>,
    /// Settings of the default version that [`LaunchTemplateData`] does not
    /// carry, by EC2's name (`Placement`, `CpuOptions`, ...), each with
    /// what it is set to.
    pub unexpressed: Vec<(String, String)>,
}

/// Everything discovery found in one region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredRegion {
    /// Matching launch templates without the fleet tag, by name.
    pub templates: Vec<DiscoveredTemplate>,
    /// The key pairs the templates name, with their public keys.
    pub key_pairs: Vec<AdoptableKeyPair>,
    /// The images the templates name.
    pub images: Vec<ObservedImage>,
    /// The subnets the templates (and their instances) name.
    pub subnets: Vec<ObservedSubnet>,
    /// The security groups the templates name.
    pub security_groups: Vec<ObservedSecurityGroup>,
    /// Pending and running instances launched from the templates.
    pub instances: Vec<ObservedInstance>,
}

impl RegionObservation {
    /// (kind, cause) of every incomplete read.
    pub fn incomplete(&self) -> Vec<(Kind, &str)> {
        [
            (Kind::KeyPairs, self.key_pairs.cause()),
            (Kind::Images, self.images.cause()),
            (Kind::LaunchTemplates, self.launch_templates.cause()),
            (Kind::Instances, self.instances.cause()),
            (Kind::Subnets, self.subnets.cause()),
            (Kind::SecurityGroups, self.security_groups.cause()),
            (Kind::Offerings, self.offerings.cause()),
            (Kind::AutoScalingGroups, self.auto_scaling_groups.cause()),
            (Kind::Adoptable, self.adoptable.cause()),
        ]
        .into_iter()
        .filter_map(|(kind, cause)| Some((kind, cause?)))
        .collect()
    }
}

/// A whole observation: every region, and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Per region.
    pub regions: BTreeMap<String, RegionObservation>,
    /// HTTP requests made, retries included.
    pub api_calls: u64,
}

/// Why a call to the cloud failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    /// The broad class, which decides what the engine may do next.
    pub kind: ErrorKind,
    /// The cloud's error code, e.g. `UnauthorizedOperation`.
    pub code: Option<String>,
    /// What happened, for the user.
    pub message: String,
}

/// Classes of provider failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No usable credentials, or the endpoint is unreachable at start.
    Setup,
    /// Throttled even after retries.
    Throttled,
    /// Permission denied.
    Unauthorized,
    /// The object does not exist.
    NotFound,
    /// A dry run would have failed (permission or parameter).
    DryRunFailed,
    /// The request was invalid.
    InvalidRequest,
    /// Network failure, timeout or 5xx after retries.
    Unavailable,
}

/// One mutating call; every variant is idempotent under retry (client tokens,
/// tags set at creation, deletes that accept "already gone").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// ImportKeyPair, tagged at creation.
    ImportKeyPair {
        /// Key pair name.
        name: String,
        /// OpenSSH public key.
        public_key: String,
        /// Tags (fleetform:* included).
        tags: BTreeMap<String, String>,
    },
    /// DeleteKeyPair.
    DeleteKeyPair {
        /// Key pair name.
        name: String,
    },
    /// CreateLaunchTemplate with its first version, tagged at creation.
    CreateLaunchTemplate {
        /// Template name.
        name: String,
        /// First version.
        data: LaunchTemplateData,
        /// Tags on the template.
        tags: BTreeMap<String, String>,
        /// Idempotency token.
        client_token: String,
    },
    /// CreateLaunchTemplateVersion.
    CreateLaunchTemplateVersion {
        /// Template id.
        template_id: String,
        /// The new version.
        data: LaunchTemplateData,
        /// Idempotency token.
        client_token: String,
    },
    /// ModifyLaunchTemplate: set the default version.
    SetDefaultVersion {
        /// Template id.
        template_id: String,
        /// Version to make default.
        version: i64,
    },
    /// DeleteLaunchTemplate.
    DeleteLaunchTemplate {
        /// Template id.
        template_id: String,
    },
    /// RunInstances from a launch template.
    RunInstances {
        /// Template id.
        template_id: String,
        /// Template version; 0 means the default version (`$Default`).
        version: i64,
        /// Instance type to launch.
        instance_type: String,
        /// How many.
        count: i32,
        /// Tags on the instances (fleetform:* included).
        tags: BTreeMap<String, String>,
        /// Idempotency token.
        client_token: String,
        /// Only check permissions and parameters (DryRun=true).
        dry_run: bool,
        /// The subnet to launch into (unset: the template's or EC2's default).
        subnet: Option<LaunchSubnet>,
    },
    /// RunInstances with DryRun=true straight from an image, for launches whose
    /// launch template does not exist yet (it is created by the same plan).
    DryRunFromImage {
        /// AMI id.
        image_id: String,
        /// Instance type.
        instance_type: String,
        /// The subnet and groups the launch would use.
        subnet: Option<LaunchSubnet>,
        /// The instance profile the launch would use.
        iam_instance_profile: Option<String>,
    },
    /// TerminateInstances.
    TerminateInstances {
        /// Instance ids.
        ids: Vec<String>,
    },
    /// CopyImage into this region.
    CopyImage {
        /// Region of the source image.
        source_region: String,
        /// Source image id.
        source_image: String,
        /// Name of the copy.
        name: String,
        /// Tags on the copy (set at creation).
        tags: BTreeMap<String, String>,
        /// Idempotency token.
        client_token: String,
    },
    /// Waits until an image is `available`: polls DescribeImages with backoff;
    /// fails when it turns `failed` or `timeout_secs` pass.
    WaitForImage {
        /// Image id.
        image_id: String,
        /// Most seconds to wait.
        timeout_secs: u64,
    },
    /// DeregisterImage, then DeleteSnapshot for each of its snapshots.
    DeregisterImage {
        /// Image id.
        image_id: String,
        /// Snapshots to delete after deregistering.
        snapshot_ids: Vec<String>,
    },
    /// CreateTags: adopt an object found by tag search.
    CreateTags {
        /// Resource ids.
        resource_ids: Vec<String>,
        /// Tags to add.
        tags: BTreeMap<String, String>,
    },
    /// CreateAutoScalingGroup with its tags; a group of that name that
    /// already exists (a retry) is done.
    CreateAutoScalingGroup {
        /// The group.
        spec: GroupSpec,
    },
    /// UpdateAutoScalingGroup, always with the whole MixedInstancesPolicy;
    /// then CreateOrUpdateTags / DeleteTags for the tags that differ from
    /// `old_tags`.
    UpdateAutoScalingGroup {
        /// The group as it should be.
        spec: GroupSpec,
        /// Its propagated tags as observed.
        old_tags: BTreeMap<String, String>,
    },
    /// DeleteAutoScalingGroup with ForceDelete (its instances are
    /// terminated); a group already gone is done.
    DeleteAutoScalingGroup {
        /// Group name.
        name: String,
    },
    /// StartInstanceRefresh; a refresh already in flight is done (never a
    /// second one).
    StartInstanceRefresh {
        /// Group name.
        name: String,
        /// MinHealthyPercentage.
        min_healthy_percentage: u8,
    },
    /// AttachInstances (at most 20 per call; more are split).
    AttachInstances {
        /// Group name.
        name: String,
        /// Instance ids.
        ids: Vec<String>,
    },
    /// DetachInstances with ShouldDecrementDesiredCapacity (at most 20 per
    /// call; more are split); instances no longer in the group are done.
    DetachInstances {
        /// Group name.
        name: String,
        /// Instance ids.
        ids: Vec<String>,
    },
    /// CreateLaunchTemplateVersion from `source_version` (SourceVersion)
    /// with only the tag specifications replaced, so every other setting of
    /// the source is kept as it is, including those fleetform has no
    /// attribute for; outcome: the template id and the new version.
    CreateTagOnlyVersion {
        /// Template id.
        template_id: String,
        /// The version the new one is made from.
        source_version: i64,
        /// Tags of launched instances (the source's with fleetform's added).
        instance_tags: Tags,
        /// Tags of volumes created at launch.
        volume_tags: Tags,
        /// Idempotency token.
        client_token: String,
    },
}

/// What a successful mutation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationOutcome {
    /// A key pair id.
    KeyPair {
        /// `key-...`.
        id: String,
    },
    /// A launch template id and version number.
    LaunchTemplate {
        /// `lt-...`.
        id: String,
        /// Version created.
        version: i64,
    },
    /// Launched instance ids.
    Instances {
        /// `i-...` ids.
        ids: Vec<String>,
    },
    /// A new image id.
    Image {
        /// `ami-...`.
        id: String,
    },
    /// An instance refresh started.
    Refresh {
        /// Refresh id.
        id: String,
    },
    /// A dry run that EC2 says would succeed.
    DryRunOk,
    /// Done; nothing to report.
    Done,
}

/// A cloud fleetform can observe and change. Implemented by `providers/aws`.
pub trait Provider: Send + Sync {
    /// Who the credentials belong to.
    fn caller(&self) -> impl Future<Output = Result<Caller, ProviderError>> + Send;

    /// Reads the fleet's managed objects in every requested region, concurrently.
    fn observe(&self, request: &ObserveRequest) -> impl Future<Output = Observation> + Send;

    /// Carries out one mutating call in `region`.
    fn mutate(
        &self,
        region: &str,
        mutation: Mutation,
    ) -> impl Future<Output = Result<MutationOutcome, ProviderError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_round_trips_through_json_and_reads_are_externally_tagged() {
        let region = RegionObservation {
            key_pairs: Observed::Complete { items: Vec::new() },
            images: Observed::Incomplete {
                cause: "throttled".into(),
            },
            launch_templates: Observed::Complete { items: Vec::new() },
            instances: Observed::Incomplete {
                cause: "page cut off".into(),
            },
            subnets: Observed::nothing(),
            security_groups: Observed::nothing(),
            offerings: Observed::nothing(),
            auto_scaling_groups: Observed::nothing(),
            adoptable: Observed::nothing(),
        };
        let observation = Observation {
            regions: BTreeMap::from([("us-east-1".to_string(), region)]),
            api_calls: 7,
        };
        let text = serde_json::to_string(&observation).expect("encodes");
        assert!(
            text.contains(r#""images":{"incomplete":{"cause":"throttled"}}"#),
            "{text}"
        );
        let back: Observation = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, observation);
    }
}

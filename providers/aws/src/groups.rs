//! Auto Scaling groups: reading a region's groups of the fleet (one paged,
//! tag-filtered DescribeAutoScalingGroups, plus one DescribeInstanceRefreshes
//! per group the request names) and carrying out the group mutations. Like
//! the EC2 side it decides nothing: it writes what the engine asks and reads
//! back what Auto Scaling says, in the engine's terms.

use crate::error;
use crate::paging::{listing, Page};
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, Filter, InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, MixedInstancesPolicy, RefreshPreferences, Tag,
};
use fleetform_engine::provider::{
    canonical_price, tags, ErrorKind, GroupInstance, GroupOverride, GroupSpec, GroupSpot,
    InstanceRefresh, Mutation, MutationOutcome, Observed, ObservedGroup, ProviderError,
};
use std::collections::BTreeMap;

/// The launch template version fleetform's groups launch.
const DEFAULT_VERSION: &str = "$Default";

/// Most instance ids AttachInstances and DetachInstances take per call.
const INSTANCES_PER_CALL: usize = 20;

/// Refresh statuses that mean a refresh is still in flight.
const IN_FLIGHT: [&str; 5] = [
    "Pending",
    "InProgress",
    "Cancelling",
    "RollbackInProgress",
    "Baking",
];

/// The spot allocation strategy fleetform's spot groups use.
const SPOT_ALLOCATION: &str = "price-capacity-optimized";

/// The resource type of a group's tags.
const GROUP_RESOURCE: &str = "auto-scaling-group";

/// A count Auto Scaling takes as a 32-bit integer; values past it (which the
/// engine's checks refuse long before) are sent as the nearest, for Auto
/// Scaling to refuse.
fn clamped(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

/// Reads the fleet's groups in one region, when `wanted`; otherwise complete
/// and empty without a call. A failed or cut-off listing, or a failed read
/// of a named group's refreshes, is `Incomplete` with the cause.
pub(crate) async fn observe(
    client: &aws_sdk_autoscaling::Client,
    wanted: bool,
    size: i32,
    fleet: &str,
    refresh_groups: &[String],
) -> Observed<Vec<ObservedGroup>> {
    if !wanted {
        return Observed::nothing();
    }
    match read(client, size, fleet, refresh_groups).await {
        Ok(items) => Observed::Complete { items },
        Err(cause) => Observed::Incomplete { cause },
    }
}

async fn read(
    client: &aws_sdk_autoscaling::Client,
    size: i32,
    fleet: &str,
    refresh_groups: &[String],
) -> Result<Vec<ObservedGroup>, String> {
    let mut groups = listing("Auto Scaling groups", size, |token, size| {
        group_page(client, fleet, token, size)
    })
    .await?;
    groups.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    groups.dedup_by(|a, b| a.spec.name == b.spec.name);
    // The named groups' refreshes, all at once: one call per group.
    let mut reads = tokio::task::JoinSet::new();
    for (at, group) in groups.iter().enumerate() {
        if refresh_groups.contains(&group.spec.name) {
            let client = client.clone();
            let name = group.spec.name.clone();
            reads.spawn(async move { (at, newest_refresh(&client, &name).await) });
        }
    }
    while let Some(joined) = reads.join_next().await {
        let (at, refresh) = joined
            .map_err(|e| format!("the instance refresh read of a group did not finish ({e})"))?;
        if let Some(group) = groups.get_mut(at) {
            group.refresh_in_flight = refresh?;
        }
    }
    Ok(groups)
}

/// One page of the fleet's groups.
async fn group_page(
    client: &aws_sdk_autoscaling::Client,
    fleet: &str,
    token: Option<String>,
    size: i32,
) -> Result<Page<ObservedGroup>, String> {
    let page = client
        .describe_auto_scaling_groups()
        .filters(
            Filter::builder()
                .name(format!("tag:{}", tags::FLEET))
                .values(fleet)
                .build(),
        )
        .max_records(size)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    let items = page
        .auto_scaling_groups()
        .iter()
        .map(convert_group)
        .collect();
    Ok(Page::of(items, page.next_token().map(str::to_string)))
}

/// The newest refresh of a group when it is in flight.
async fn newest_refresh(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<Option<InstanceRefresh>, String> {
    let out = client
        .describe_instance_refreshes()
        .auto_scaling_group_name(name)
        .max_records(1)
        .send()
        .await
        .map_err(|e| {
            format!(
                "instance refreshes of {name}: {}",
                error::from_sdk(e).message
            )
        })?;
    Ok(out.instance_refreshes().first().and_then(|refresh| {
        let status = refresh.status()?.as_str().to_string();
        IN_FLIGHT
            .contains(&status.as_str())
            .then(|| InstanceRefresh {
                id: refresh
                    .instance_refresh_id()
                    .unwrap_or_default()
                    .to_string(),
                status,
                percentage_complete: refresh.percentage_complete().map(i64::from),
            })
    }))
}

/// A template specification in fleetform's terms: the id when it launches
/// the default version, else an empty id (a fixed version, `$Latest`, or a
/// template by name only), which reads as a difference.
fn default_template_id(spec: &LaunchTemplateSpecification) -> String {
    match (spec.launch_template_id(), spec.version()) {
        (Some(id), Some(DEFAULT_VERSION)) => id.to_string(),
        _ => String::new(),
    }
}

/// Whether an instances distribution is one fleetform writes ([`policy`]):
/// spot (no on-demand above a base capacity of 0, `price-capacity-optimized`)
/// or on-demand (100 % above a base capacity of 0). Auto Scaling fills in
/// defaults fleetform does not set (a spot allocation strategy on an
/// on-demand group, spot pools); those are not looked at.
fn written_by_fleetform(distribution: &InstancesDistribution) -> bool {
    let base_zero = distribution.on_demand_base_capacity().unwrap_or(0) == 0;
    match distribution.on_demand_percentage_above_base_capacity() {
        Some(0) => base_zero && distribution.spot_allocation_strategy() == Some(SPOT_ALLOCATION),
        None | Some(100) => base_zero,
        Some(_) => false,
    }
}

/// A group as Auto Scaling reports it, read back into fleetform's terms (see
/// [`ObservedGroup`]): the policy's template id only when it launches
/// `$Default` and its instances distribution is one fleetform writes (a
/// base capacity, a mixed percentage or another spot allocation strategy,
/// which [`GroupSpot`] cannot say, empty the id so the group reads as
/// different and is written again whole); each override's weight (unset: 1; unreadable: 0) and its own
/// template id; the subnets of VPCZoneIdentifier sorted; the lifetime when
/// set above 0; spot when the on-demand percentage above base capacity is 0,
/// with SpotMaxPrice in its shortest form; the propagated tags in the spec
/// and every tag beside it. The spec's desired capacity is `None`: the
/// group's desired capacity is [`ObservedGroup::desired_capacity`].
pub(crate) fn convert_group(group: &AutoScalingGroup) -> ObservedGroup {
    let policy = group.mixed_instances_policy();
    let template = policy.and_then(|p| p.launch_template());
    let distribution = policy.and_then(|p| p.instances_distribution());
    let launch_template_id = template
        .and_then(|t| t.launch_template_specification())
        .map(default_template_id)
        .filter(|_| distribution.is_none_or(written_by_fleetform))
        .unwrap_or_default();
    let overrides = template
        .map(|t| t.overrides())
        .unwrap_or_default()
        .iter()
        .map(|o| GroupOverride {
            instance_type: o.instance_type().unwrap_or_default().to_string(),
            weight: o
                .weighted_capacity()
                .map_or(1, |w| w.trim().parse().unwrap_or(0)),
            launch_template_id: o.launch_template_specification().map(default_template_id),
        })
        .collect();
    let mut subnet_ids: Vec<String> = group
        .vpc_zone_identifier()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    subnet_ids.sort();
    let spot = distribution
        .filter(|d| d.on_demand_percentage_above_base_capacity() == Some(0))
        .map(|d| GroupSpot {
            max_price: d
                .spot_max_price()
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(canonical_price),
        });
    let mut all_tags = BTreeMap::new();
    let mut propagated = BTreeMap::new();
    for tag in group.tags() {
        let Some(key) = tag.key() else { continue };
        let value = tag.value().unwrap_or_default().to_string();
        if tag.propagate_at_launch() == Some(true) {
            propagated.insert(key.to_string(), value.clone());
        }
        all_tags.insert(key.to_string(), value);
    }
    let instances = group
        .instances()
        .iter()
        .map(|i| GroupInstance {
            id: i.instance_id().unwrap_or_default().to_string(),
            instance_type: i.instance_type().unwrap_or_default().to_string(),
            lifecycle_state: i
                .lifecycle_state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            launch_template_version: i
                .launch_template()
                .and_then(|t| t.version())
                .map(str::to_string),
        })
        .collect();
    ObservedGroup {
        spec: GroupSpec {
            name: group
                .auto_scaling_group_name()
                .unwrap_or_default()
                .to_string(),
            launch_template_id,
            overrides,
            subnet_ids,
            min_size: group.min_size().map_or(0, i64::from),
            max_size: group.max_size().map_or(0, i64::from),
            desired_capacity: None,
            max_instance_lifetime_secs: group
                .max_instance_lifetime()
                .filter(|&l| l > 0)
                .map(i64::from),
            spot,
            tags: propagated,
        },
        desired_capacity: group.desired_capacity().map_or(0, i64::from),
        instances,
        refresh_in_flight: None,
        tags: all_tags,
    }
}

fn template_spec(id: &str) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .launch_template_id(id)
        .version(DEFAULT_VERSION)
        .build()
}

/// The whole MixedInstancesPolicy of `spec`: its template at `$Default`,
/// one override per instance type (weight as text, its own template when it
/// has one), and the instances distribution: for spot, no on-demand
/// capacity, `price-capacity-optimized`, and SpotMaxPrice (an empty one,
/// which clears a price set before, when unset); for on-demand, 100 %
/// on-demand above base capacity.
pub(crate) fn policy(spec: &GroupSpec) -> MixedInstancesPolicy {
    let overrides = spec
        .overrides
        .iter()
        .map(|o| {
            LaunchTemplateOverrides::builder()
                .instance_type(&o.instance_type)
                .weighted_capacity(o.weight.to_string())
                .set_launch_template_specification(
                    o.launch_template_id.as_deref().map(template_spec),
                )
                .build()
        })
        .collect();
    let distribution = match &spec.spot {
        Some(spot) => InstancesDistribution::builder()
            .on_demand_base_capacity(0)
            .on_demand_percentage_above_base_capacity(0)
            .spot_allocation_strategy(SPOT_ALLOCATION)
            .spot_max_price(
                spot.max_price
                    .as_deref()
                    .map(canonical_price)
                    .unwrap_or_default(),
            )
            .build(),
        None => InstancesDistribution::builder()
            .on_demand_percentage_above_base_capacity(100)
            .build(),
    };
    MixedInstancesPolicy::builder()
        .launch_template(
            LaunchTemplate::builder()
                .launch_template_specification(template_spec(&spec.launch_template_id))
                .set_overrides(Some(overrides))
                .build(),
        )
        .instances_distribution(distribution)
        .build()
}

/// Group tags, each propagated to launched instances.
fn group_tags(name: &str, tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .resource_id(name)
                .resource_type(GROUP_RESOURCE)
                .key(key)
                .value(value)
                .propagate_at_launch(true)
                .build()
        })
        .collect()
}

/// Treats "already gone" as success.
fn gone_is_done(
    result: Result<MutationOutcome, ProviderError>,
) -> Result<MutationOutcome, ProviderError> {
    match result {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(MutationOutcome::Done),
        other => other,
    }
}

/// Whether `err` says an instance is not part of the group (DetachInstances).
fn not_in_group(err: &ProviderError) -> bool {
    err.code.as_deref() == Some("ValidationError") && err.message.contains("not part of")
}

/// Carries out one group mutation with `client` (bound to its region). Any
/// other mutation is refused (the EC2 side carries those out).
pub(crate) async fn mutate(
    client: &aws_sdk_autoscaling::Client,
    mutation: Mutation,
) -> Result<MutationOutcome, ProviderError> {
    match mutation {
        Mutation::CreateAutoScalingGroup { spec } => {
            let result = client
                .create_auto_scaling_group()
                .auto_scaling_group_name(&spec.name)
                .mixed_instances_policy(policy(&spec))
                .vpc_zone_identifier(spec.subnet_ids.join(","))
                .min_size(clamped(spec.min_size))
                .max_size(clamped(spec.max_size))
                .set_desired_capacity(spec.desired_capacity.map(clamped))
                .set_max_instance_lifetime(spec.max_instance_lifetime_secs.map(clamped))
                .set_tags(Some(group_tags(&spec.name, &spec.tags)))
                .send()
                .await
                .map_err(error::from_sdk);
            match result {
                Ok(_) => Ok(MutationOutcome::Done),
                // A retry of a create that happened.
                Err(e) if e.code.as_deref() == Some("AlreadyExists") => Ok(MutationOutcome::Done),
                Err(e) => Err(e),
            }
        }
        Mutation::UpdateAutoScalingGroup { spec, old_tags } => {
            client
                .update_auto_scaling_group()
                .auto_scaling_group_name(&spec.name)
                .mixed_instances_policy(policy(&spec))
                .vpc_zone_identifier(spec.subnet_ids.join(","))
                .min_size(clamped(spec.min_size))
                .max_size(clamped(spec.max_size))
                .set_desired_capacity(spec.desired_capacity.map(clamped))
                // 0 removes a lifetime set before.
                .max_instance_lifetime(spec.max_instance_lifetime_secs.map_or(0, clamped))
                .send()
                .await
                .map_err(error::from_sdk)?;
            let changed: BTreeMap<String, String> = spec
                .tags
                .iter()
                .filter(|(key, value)| old_tags.get(*key) != Some(*value))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if !changed.is_empty() {
                client
                    .create_or_update_tags()
                    .set_tags(Some(group_tags(&spec.name, &changed)))
                    .send()
                    .await
                    .map_err(error::from_sdk)?;
            }
            let gone: Vec<Tag> = old_tags
                .iter()
                .filter(|(key, _)| !spec.tags.contains_key(*key))
                .map(|(key, value)| {
                    Tag::builder()
                        .resource_id(&spec.name)
                        .resource_type(GROUP_RESOURCE)
                        .key(key)
                        .value(value)
                        .build()
                })
                .collect();
            if !gone.is_empty() {
                client
                    .delete_tags()
                    .set_tags(Some(gone))
                    .send()
                    .await
                    .map_err(error::from_sdk)?;
            }
            Ok(MutationOutcome::Done)
        }
        Mutation::DeleteAutoScalingGroup { name } => gone_is_done(
            client
                .delete_auto_scaling_group()
                .auto_scaling_group_name(name)
                .force_delete(true)
                .send()
                .await
                .map(|_| MutationOutcome::Done)
                .map_err(error::from_sdk),
        ),
        Mutation::StartInstanceRefresh {
            name,
            min_healthy_percentage,
        } => {
            let result = client
                .start_instance_refresh()
                .auto_scaling_group_name(name)
                .preferences(
                    RefreshPreferences::builder()
                        .min_healthy_percentage(i32::from(min_healthy_percentage))
                        .build(),
                )
                .send()
                .await
                .map_err(error::from_sdk);
            match result {
                Ok(out) => Ok(MutationOutcome::Refresh {
                    id: out.instance_refresh_id().unwrap_or_default().to_string(),
                }),
                // One already in flight: never a second.
                Err(e) if e.code.as_deref() == Some("InstanceRefreshInProgress") => {
                    Ok(MutationOutcome::Done)
                }
                Err(e) => Err(e),
            }
        }
        Mutation::AttachInstances { name, ids } => {
            for chunk in ids.chunks(INSTANCES_PER_CALL) {
                client
                    .attach_instances()
                    .auto_scaling_group_name(&name)
                    .set_instance_ids(Some(chunk.to_vec()))
                    .send()
                    .await
                    .map_err(error::from_sdk)?;
            }
            Ok(MutationOutcome::Done)
        }
        Mutation::DetachInstances { name, ids } => {
            for chunk in ids.chunks(INSTANCES_PER_CALL) {
                match detach(client, &name, chunk.to_vec()).await {
                    Err(e) if not_in_group(&e) => {
                        // Some are detached already (a retry): detach the rest.
                        let members = members(client, &name).await?;
                        let rest: Vec<String> = chunk
                            .iter()
                            .filter(|id| members.contains(*id))
                            .cloned()
                            .collect();
                        if !rest.is_empty() {
                            gone_is_done(detach(client, &name, rest).await)?;
                        }
                    }
                    other => {
                        gone_is_done(other)?;
                    }
                }
            }
            Ok(MutationOutcome::Done)
        }
        other => Err(ProviderError {
            kind: ErrorKind::InvalidRequest,
            code: None,
            message: format!("not an Auto Scaling mutation: {other:?}"),
        }),
    }
}

async fn detach(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
    ids: Vec<String>,
) -> Result<MutationOutcome, ProviderError> {
    client
        .detach_instances()
        .auto_scaling_group_name(name)
        .set_instance_ids(Some(ids))
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .map(|_| MutationOutcome::Done)
        .map_err(error::from_sdk)
}

/// The instance ids of a group now (none when it is gone).
async fn members(
    client: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<Vec<String>, ProviderError> {
    let out = client
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(error::from_sdk)?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .flat_map(|g| g.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::types::{Instance, LifecycleState, TagDescription};

    fn spec() -> GroupSpec {
        GroupSpec {
            name: "f.linux".into(),
            launch_template_id: "lt-1".into(),
            overrides: vec![
                GroupOverride {
                    instance_type: "m5.large".into(),
                    weight: 1,
                    launch_template_id: None,
                },
                GroupOverride {
                    instance_type: "m5.2xlarge".into(),
                    weight: 4,
                    launch_template_id: Some("lt-2".into()),
                },
            ],
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            min_size: 0,
            max_size: 8,
            desired_capacity: Some(2),
            max_instance_lifetime_secs: Some(86_400),
            spot: Some(GroupSpot {
                max_price: Some("0.500".into()),
            }),
            tags: BTreeMap::from([("fleetform:fleet".into(), "f".into())]),
        }
    }

    /// A group as Auto Scaling would answer for `spec` (subnets in another order).
    fn answered(spec: &GroupSpec) -> AutoScalingGroup {
        AutoScalingGroup::builder()
            .auto_scaling_group_name(&spec.name)
            .mixed_instances_policy(policy(spec))
            .vpc_zone_identifier("subnet-b,subnet-a")
            .min_size(0)
            .max_size(8)
            .desired_capacity(2)
            .max_instance_lifetime(86_400)
            .tags(
                TagDescription::builder()
                    .key("fleetform:fleet")
                    .value("f")
                    .propagate_at_launch(true)
                    .build(),
            )
            .tags(
                TagDescription::builder()
                    .key("by-hand")
                    .value("x")
                    .propagate_at_launch(false)
                    .build(),
            )
            .instances(
                Instance::builder()
                    .instance_id("i-1")
                    .instance_type("m5.large")
                    .lifecycle_state(LifecycleState::InService)
                    .launch_template(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id("lt-1")
                            .version("3")
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_policy_carries_every_setting_and_reads_back_as_written() {
        let spec = spec();
        let written = policy(&spec);
        let template = written.launch_template().expect("template");
        let main = template.launch_template_specification().expect("spec");
        assert_eq!(
            (main.launch_template_id(), main.version()),
            (Some("lt-1"), Some("$Default"))
        );
        let weights: Vec<_> = template
            .overrides()
            .iter()
            .map(|o| o.weighted_capacity())
            .collect();
        assert_eq!(weights, [Some("1"), Some("4")]);
        assert!(template.overrides()[0]
            .launch_template_specification()
            .is_none());
        let distribution = written.instances_distribution().expect("distribution");
        assert_eq!(distribution.on_demand_base_capacity(), Some(0));
        assert_eq!(
            distribution.on_demand_percentage_above_base_capacity(),
            Some(0)
        );
        assert_eq!(
            distribution.spot_allocation_strategy(),
            Some(SPOT_ALLOCATION)
        );
        assert_eq!(distribution.spot_max_price(), Some("0.5"));

        let read = convert_group(&answered(&spec));
        assert_eq!(
            read.spec,
            GroupSpec {
                desired_capacity: None,
                spot: Some(GroupSpot {
                    max_price: Some("0.5".into())
                }),
                ..spec.clone()
            }
        );
        assert_eq!(read.desired_capacity, 2);
        assert_eq!(
            read.tags.len(),
            2,
            "every tag, the propagated ones in the spec"
        );
        assert_eq!(
            read.instances,
            vec![GroupInstance {
                id: "i-1".into(),
                instance_type: "m5.large".into(),
                lifecycle_state: "InService".into(),
                launch_template_version: Some("3".into()),
            }]
        );
    }

    #[test]
    fn on_demand_writes_no_spot_settings_and_a_spot_group_without_a_price_clears_it() {
        let on_demand = policy(&GroupSpec {
            spot: None,
            ..spec()
        });
        let distribution = on_demand.instances_distribution().expect("distribution");
        assert_eq!(
            distribution.on_demand_percentage_above_base_capacity(),
            Some(100)
        );
        assert_eq!(distribution.spot_max_price(), None);
        let unpriced = policy(&GroupSpec {
            spot: Some(GroupSpot { max_price: None }),
            ..spec()
        });
        assert_eq!(
            unpriced
                .instances_distribution()
                .and_then(|d| d.spot_max_price()),
            Some(""),
            "an empty price removes one set before"
        );
        let read = convert_group(
            &AutoScalingGroup::builder()
                .mixed_instances_policy(unpriced)
                .build(),
        );
        assert_eq!(read.spec.spot, Some(GroupSpot { max_price: None }));
    }

    #[test]
    fn settings_fleetform_does_not_make_read_as_differences() {
        let fixed = MixedInstancesPolicy::builder()
            .launch_template(
                LaunchTemplate::builder()
                    .launch_template_specification(
                        LaunchTemplateSpecification::builder()
                            .launch_template_id("lt-1")
                            .version("$Latest")
                            .build(),
                    )
                    .overrides(
                        LaunchTemplateOverrides::builder()
                            .instance_type("m5.large")
                            .weighted_capacity("heavy")
                            .launch_template_specification(
                                LaunchTemplateSpecification::builder()
                                    .launch_template_id("lt-2")
                                    .version("7")
                                    .build(),
                            )
                            .build(),
                    )
                    .overrides(
                        LaunchTemplateOverrides::builder()
                            .instance_type("c5.large")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let read = convert_group(
            &AutoScalingGroup::builder()
                .mixed_instances_policy(fixed)
                .max_instance_lifetime(0)
                .build(),
        );
        assert_eq!(read.spec.launch_template_id, "", "not the default version");
        assert_eq!(read.spec.overrides[0].weight, 0, "an unreadable weight");
        assert_eq!(
            read.spec.overrides[0].launch_template_id.as_deref(),
            Some("")
        );
        assert_eq!(read.spec.overrides[1].weight, 1, "no weight is 1");
        assert_eq!(read.spec.max_instance_lifetime_secs, None);
        assert_eq!(read.spec.spot, None);
        let plain = convert_group(&AutoScalingGroup::builder().build());
        assert_eq!(plain.spec.launch_template_id, "", "no policy at all");
        assert!(plain.spec.overrides.is_empty() && plain.spec.subnet_ids.is_empty());
    }

    #[test]
    fn a_distribution_fleetform_does_not_write_empties_the_template_id() {
        let with = |distribution: InstancesDistribution| {
            let mut written = policy(&spec());
            written.instances_distribution = Some(distribution);
            convert_group(
                &AutoScalingGroup::builder()
                    .mixed_instances_policy(written)
                    .build(),
            )
            .spec
            .launch_template_id
        };
        let spot = || {
            InstancesDistribution::builder()
                .on_demand_percentage_above_base_capacity(0)
                .spot_allocation_strategy(SPOT_ALLOCATION)
        };
        assert_eq!(with(spot().build()), "lt-1");
        assert_eq!(with(spot().on_demand_base_capacity(2).build()), "");
        assert_eq!(
            with(spot().spot_allocation_strategy("lowest-price").build()),
            ""
        );
        assert_eq!(
            with(
                InstancesDistribution::builder()
                    .on_demand_percentage_above_base_capacity(50)
                    .build()
            ),
            ""
        );
        // AWS's defaults on an on-demand group are not fleetform's doing.
        assert_eq!(
            with(
                InstancesDistribution::builder()
                    .on_demand_base_capacity(0)
                    .on_demand_percentage_above_base_capacity(100)
                    .spot_allocation_strategy("lowest-price")
                    .spot_instance_pools(2)
                    .build()
            ),
            "lt-1"
        );
    }

    #[test]
    fn counts_past_32_bits_are_sent_as_the_nearest() {
        assert_eq!(clamped(5), 5);
        assert_eq!(clamped(i64::MAX), i32::MAX);
        assert_eq!(clamped(i64::MIN), i32::MIN);
    }
}

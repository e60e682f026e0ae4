//! Auto Scaling groups of the worker types with `scaling = "asg"`: one
//! group `<fleet>.<id>` per region, over the launch templates' default
//! versions, holding the region's bounds between applies.
//!
//! A plan creates, updates and deletes groups with attribute diffs; it sets
//! the desired capacity only at creation and to clamp one outside changed
//! bounds into them (what Auto Scaling then terminates counts in FF006);
//! after a template change it starts one instance refresh where the worker
//! type asks for it, never a second one while one is in flight. Switching a
//! worker type from `direct` to `asg` attaches its running instances to the
//! new group; switching back detaches them before the group goes, so the
//! switch terminates nothing. A region not read completely gets no group
//! action at all (FF005).

use super::build::{instance_type_address, launch_template_name, wanted_templates, TemplateOf};
use super::{Action, ActionKind, Change, GroupSpotPlan, PlannedGroup, PlannedOverride, Reason};
use super::{Resource, Stage};
use crate::catalog::hourly_price;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{address, Config, Market, Scaling, WorkerType};
use crate::provider::{tags, ObservedGroup, ObservedInstance, RegionObservation};
use std::collections::{BTreeMap, BTreeSet};

/// The tag Auto Scaling puts on the instances it launches or attaches.
pub const GROUP_NAME_TAG: &str = "aws:autoscaling:groupName";

/// What the group planning of one region leaves for the direct scaling of
/// instances.
#[derive(Debug, Default)]
pub struct GroupsPlanned {
    /// Instances whose capacity a group holds, or that a deleted group
    /// terminates: direct scaling leaves them alone (never counted twice,
    /// never terminated twice).
    pub held: BTreeSet<String>,
    /// The hourly cost of the instances running in groups.
    pub hourly: f64,
}

/// The group `wt` should have in `region`, from the configuration and the
/// templates observed (`None` ids: the ones this plan creates).
pub fn planned_group(
    config: &Config,
    wt: &WorkerType,
    region: &str,
    template_ids: &BTreeMap<String, String>,
) -> PlannedGroup {
    let (min, max) = wt.group_bounds_in(region, &config.fleet.regions);
    let heaviest = wt
        .instance_types_in(region)
        .map(|t| t.capacity)
        .max()
        .unwrap_or(1);
    let own: BTreeSet<String> = wanted_templates(config, wt, region)
        .into_iter()
        .filter_map(|(_, _, _, of)| match of {
            TemplateOf::InstanceType(it) => Some(it.name.clone()),
            TemplateOf::WorkerType => None,
        })
        .collect();
    let overrides = wt
        .instance_types_in(region)
        .map(|t| {
            let template = own
                .contains(&t.name)
                .then(|| instance_type_address(&wt.name, &t.name));
            PlannedOverride {
                instance_type: t.name.clone(),
                weight: t.capacity,
                template_id: template.as_ref().and_then(|a| template_ids.get(a).cloned()),
                template,
            }
        })
        .collect();
    let mut subnet_ids: Vec<String> = wt
        .network
        .as_deref()
        .and_then(|n| config.networks.get(n))
        .map(|n| n.subnets_in(region).map(|(_, s)| s.to_string()).collect())
        .unwrap_or_default();
    subnet_ids.sort();
    subnet_ids.dedup();
    let mut group_tags: BTreeMap<String, String> = wt.tags_in(region).clone().into();
    group_tags.insert(tags::FLEET.to_string(), config.fleet.name.clone());
    group_tags.insert(
        tags::ADDRESS.to_string(),
        address::worker_type_in(&wt.name, region),
    );
    group_tags.insert(tags::WORKER_TYPE.to_string(), wt.id().to_string());
    PlannedGroup {
        name: launch_template_name(config, wt),
        launch_template_id: template_ids.get(&address::worker_type(&wt.name)).cloned(),
        overrides,
        subnet_ids,
        min,
        max,
        max_size: max.saturating_sub(heaviest.saturating_sub(1)),
        desired_capacity: None,
        max_instance_lifetime_secs: wt.max_lifetime.map(|d| d.as_secs()),
        spot: (wt.market == Market::Spot).then(|| GroupSpotPlan {
            max_price: wt
                .spot
                .as_ref()
                .and_then(|s| s.max_price.as_deref())
                .map(crate::provider::canonical_price),
        }),
        tags: group_tags,
        old_tags: BTreeMap::new(),
        min_healthy_percentage: None,
    }
}

/// The differences between a group as observed and as planned, attribute by
/// attribute, in the terms a user writes.
pub fn group_changes(observed: &ObservedGroup, planned: &PlannedGroup) -> Vec<Change> {
    let spec = &observed.spec;
    let mut changes = Vec::new();
    let mut field = |path: &str, old: Option<String>, new: Option<String>| {
        if old != new {
            changes.push(Change {
                path: path.to_string(),
                old,
                new,
                sensitive: false,
            });
        }
    };
    let template = |id: &str| Some(id.to_string()).filter(|id| !id.is_empty());
    field(
        "launch_template",
        template(&spec.launch_template_id).map(|id| format!("{id} ($Default)")),
        Some(match &planned.launch_template_id {
            Some(id) => format!("{id} ($Default)"),
            None => "(the template this apply creates) ($Default)".to_string(),
        }),
    );
    let overrides = |items: Vec<(String, u32, Option<String>)>| {
        Some(
            items
                .into_iter()
                .map(|(t, w, own)| match own {
                    Some(own) => format!("{t}={w} ({own})"),
                    None => format!("{t}={w}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let mut old_overrides: Vec<(String, u32, Option<String>)> = spec
        .overrides
        .iter()
        .map(|o| {
            (
                o.instance_type.clone(),
                o.weight,
                o.launch_template_id.clone(),
            )
        })
        .collect();
    let mut new_overrides: Vec<(String, u32, Option<String>)> = planned
        .overrides
        .iter()
        .map(|o| {
            (
                o.instance_type.clone(),
                o.weight,
                o.template.as_ref().map(|t| {
                    o.template_id
                        .clone()
                        .unwrap_or_else(|| format!("(new template of {t})"))
                }),
            )
        })
        .collect();
    old_overrides.sort();
    new_overrides.sort();
    field(
        "instance_types",
        overrides(old_overrides),
        overrides(new_overrides),
    );
    field(
        "subnets",
        Some(spec.subnet_ids.join(", ")),
        Some(planned.subnet_ids.join(", ")),
    );
    field(
        "min_size",
        Some(spec.min_size.to_string()),
        Some(planned.min.to_string()),
    );
    field(
        "max_size",
        Some(spec.max_size.to_string()),
        Some(planned.max_size.to_string()),
    );
    field(
        "max_instance_lifetime",
        spec.max_instance_lifetime_secs.map(|s| format!("{s}s")),
        planned.max_instance_lifetime_secs.map(|s| format!("{s}s")),
    );
    let market = |spot: bool| Some(if spot { "spot" } else { "on-demand" }.to_string());
    field(
        "market",
        market(spec.spot.is_some()),
        market(planned.spot.is_some()),
    );
    field(
        "spot_max_price",
        spec.spot.as_ref().and_then(|s| s.max_price.clone()),
        planned.spot.as_ref().and_then(|s| s.max_price.clone()),
    );
    let keys: BTreeSet<&String> = spec.tags.keys().chain(planned.tags.keys()).collect();
    for key in keys {
        field(
            &format!("tags.{key}"),
            spec.tags.get(key).cloned(),
            planned.tags.get(key).cloned(),
        );
    }
    changes
}

/// How many of `group`'s instances Auto Scaling terminates when its desired
/// capacity comes down to `desired`: at most one per unit of the excess,
/// and never more than it has (an upper bound, so FF006 errs on the safe
/// side: which instances go is Auto Scaling's choice).
fn terminated_by_lower_desired(group: &ObservedGroup, desired: u32) -> u32 {
    let excess = group
        .desired_capacity
        .saturating_sub(i64::from(desired))
        .max(0);
    let in_service = group
        .instances
        .iter()
        .filter(|i| !i.lifecycle_state.starts_with("Terminat"))
        .count() as i64;
    u32::try_from(excess.min(in_service)).unwrap_or(u32::MAX)
}

fn running(i: &ObservedInstance) -> bool {
    i.state == "pending" || i.state == "running"
}

fn group_action(
    wt_address: &str,
    region: &str,
    action: ActionKind,
    resource: Resource,
    reason: Reason,
    group: PlannedGroup,
) -> Action {
    let mut a = Action::new(wt_address, region, action, resource, reason);
    a.name = Some(group.name.clone());
    a.auto_scaling_group = Some(group);
    a
}

/// Plans the groups of `region` and returns what direct scaling must leave
/// alone. `blind` regions get no group action; `actions` holds the region's
/// template actions so far (a template made by this plan is referred to by
/// address, a changed one may start a refresh).
pub fn plan(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    blind: bool,
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
) -> GroupsPlanned {
    let mut out = GroupsPlanned::default();
    let (Some(groups), Some(instances), Some(templates)) = (
        observed.auto_scaling_groups.complete(),
        observed.instances.complete(),
        observed.launch_templates.complete(),
    ) else {
        return out;
    };
    // No group here and none wanted: nothing below applies (most fleets
    // scale directly, and the indexes below cost a pass over every
    // template and instance of the region).
    let wanted_here = config
        .worker_types
        .values()
        .any(|wt| wt.scaling == Scaling::Asg && wt.regions.iter().any(|r| r == region));
    if groups.is_empty() && !wanted_here {
        return out;
    }
    // Template ids by action address, except those this plan replaces or makes.
    let remade: BTreeSet<&str> = actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate && a.region == region)
        .filter(|a| matches!(a.action, ActionKind::Create | ActionKind::Replace))
        .map(|a| a.address.as_str())
        .collect();
    let template_ids: BTreeMap<String, String> = templates
        .iter()
        .filter_map(|t| {
            let address = super::build::action_address(t.tags.get(tags::ADDRESS)?, region);
            (!remade.contains(address.as_str())).then(|| (address, t.id.clone()))
        })
        .collect();
    // Templates whose default version this plan changes, with the stage of the change.
    let changed: BTreeMap<String, Option<Stage>> = actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate && a.region == region)
        .filter(|a| a.action == ActionKind::Update)
        .map(|a| (super::build::owner_address(&a.address).to_string(), a.stage))
        .collect();
    let by_address: BTreeMap<&str, &ObservedGroup> = groups
        .iter()
        .filter_map(|g| Some((g.tags.get(tags::ADDRESS)?.as_str(), g)))
        .collect();
    let mut instances_of: BTreeMap<&str, Vec<&ObservedInstance>> = BTreeMap::new();
    for i in instances.iter().filter(|i| running(i)) {
        if let Some(address) = i.tags.get(tags::ADDRESS) {
            instances_of.entry(address.as_str()).or_default().push(i);
        }
    }
    let mut planned_here: BTreeSet<String> = BTreeSet::new();
    for wt in config
        .worker_types
        .values()
        .filter(|wt| wt.scaling == Scaling::Asg && wt.regions.iter().any(|r| r == region))
    {
        let tagged = address::worker_type_in(&wt.name, region);
        let wt_address = address::worker_type(&wt.name);
        planned_here.insert(tagged.clone());
        let live = instances_of
            .get(tagged.as_str())
            .cloned()
            .unwrap_or_default();
        // The group holds this worker type's capacity: direct scaling keeps off.
        out.held.extend(live.iter().map(|i| i.id.clone()));
        out.hourly += live
            .iter()
            .filter_map(|i| hourly_price(&i.instance_type))
            .sum::<f64>();
        if blind {
            continue;
        }
        let mut group = planned_group(config, wt, region, &template_ids);
        let weight = |instance_type: &str| {
            wt.instance_types
                .iter()
                .find(|t| t.name == instance_type)
                .map_or_else(
                    || {
                        wt.instance_types
                            .iter()
                            .map(|t| t.capacity)
                            .max()
                            .unwrap_or(1)
                    },
                    |t| t.capacity,
                )
        };
        let outside: Vec<&ObservedInstance> = live
            .iter()
            .copied()
            .filter(|i| !i.tags.contains_key(GROUP_NAME_TAG))
            .collect();
        match by_address.get(tagged.as_str()) {
            None => {
                let mut create = group.clone();
                create.desired_capacity = Some(group.min);
                if outside.is_empty() {
                    actions.push(group_action(
                        &wt_address,
                        region,
                        ActionKind::Create,
                        Resource::AutoScalingGroup,
                        Reason::New,
                        create,
                    ));
                } else {
                    // Switched from direct: the group starts empty and takes
                    // the running instances (attaching raises its desired
                    // capacity by their weight), then gets its bounds.
                    create.min = 0;
                    create.desired_capacity = Some(0);
                    actions.push(group_action(
                        &wt_address,
                        region,
                        ActionKind::Create,
                        Resource::AutoScalingGroup,
                        Reason::ScalingChanged,
                        create,
                    ));
                    let attached = attach(
                        &wt_address,
                        region,
                        &group,
                        &outside,
                        0,
                        weight,
                        actions,
                        diags,
                    );
                    // With min 0 the group already has its bounds.
                    if group.min == 0 {
                        continue;
                    }
                    let mut bounds = group.clone();
                    bounds.desired_capacity = (attached < group.min).then_some(group.min);
                    let mut update = group_action(
                        &wt_address,
                        region,
                        ActionKind::Update,
                        Resource::AutoScalingGroup,
                        Reason::ScalingChanged,
                        bounds,
                    );
                    update.changes = vec![Change {
                        path: "min_size".to_string(),
                        old: Some("0".to_string()),
                        new: Some(group.min.to_string()),
                        sensitive: false,
                    }];
                    actions.push(update);
                }
            }
            Some(observed_group) => {
                group.old_tags = observed_group.spec.tags.clone();
                let mut changes = group_changes(observed_group, &group);
                let desired = observed_group.desired_capacity.max(0);
                let clamped = u32::try_from(desired)
                    .unwrap_or(u32::MAX)
                    .clamp(group.min, group.max_size.max(group.min));
                let mut terminated = 0;
                if i64::from(clamped) != desired {
                    group.desired_capacity = Some(clamped);
                    terminated = terminated_by_lower_desired(observed_group, clamped);
                    changes.push(Change {
                        path: "desired_capacity".to_string(),
                        old: Some(desired.to_string()),
                        new: Some(clamped.to_string()),
                        sensitive: false,
                    });
                }
                if !changes.is_empty() {
                    let mut update = group_action(
                        &wt_address,
                        region,
                        ActionKind::Update,
                        Resource::AutoScalingGroup,
                        Reason::ConfigChanged,
                        group.clone(),
                    );
                    update.changes = changes;
                    update.count = (terminated > 0).then_some(terminated);
                    actions.push(update);
                }
                if !outside.is_empty() {
                    attach(
                        &wt_address,
                        region,
                        &group,
                        &outside,
                        clamped,
                        weight,
                        actions,
                        diags,
                    );
                }
                refresh(
                    wt,
                    region,
                    observed_group,
                    &group,
                    changed.get(&wt_address),
                    actions,
                    diags,
                );
            }
        }
    }
    // Groups no asg worker type wants here: switched back to direct (their
    // instances are detached and kept), or gone (deleted with them).
    for (tagged, observed_group) in &by_address {
        if planned_here.contains(*tagged) {
            continue;
        }
        let wt_address = super::build::action_address(tagged, region);
        let direct = config.worker_types.values().find(|wt| {
            address::worker_type(&wt.name) == wt_address && wt.regions.iter().any(|r| r == region)
        });
        let members: Vec<String> = observed_group
            .instances
            .iter()
            .filter(|i| !i.lifecycle_state.starts_with("Terminat"))
            .map(|i| i.id.clone())
            .collect();
        if blind {
            out.held.extend(members);
            continue;
        }
        let name = observed_group.spec.name.clone();
        let mut kept = PlannedGroup {
            name: name.clone(),
            launch_template_id: Some(observed_group.spec.launch_template_id.clone())
                .filter(|id| !id.is_empty()),
            overrides: Vec::new(),
            subnet_ids: observed_group.spec.subnet_ids.clone(),
            min: 0,
            max: u32::try_from(observed_group.spec.max_size).unwrap_or(0),
            max_size: u32::try_from(observed_group.spec.max_size).unwrap_or(0),
            desired_capacity: None,
            max_instance_lifetime_secs: None,
            spot: None,
            tags: BTreeMap::new(),
            old_tags: BTreeMap::new(),
            min_healthy_percentage: None,
        };
        let mut delete = Action::new(
            &wt_address,
            region,
            ActionKind::Delete,
            Resource::AutoScalingGroup,
            Reason::Orphan,
        );
        delete.name = Some(name.clone());
        match direct {
            Some(_) if !members.is_empty() => {
                // Detaching lowers the desired capacity, which may not go
                // below MinSize: the group's min comes down first. The
                // update keeps everything else as it is (observed spec).
                if observed_group.spec.min_size > 0 && !observed_group.spec.overrides.is_empty() {
                    let mut lower = observed_group.spec.clone();
                    lower.min_size = 0;
                    let spec_plan = from_spec(&lower, &observed_group.spec.tags);
                    let mut update = group_action(
                        &wt_address,
                        region,
                        ActionKind::Update,
                        Resource::AutoScalingGroup,
                        Reason::ScalingChanged,
                        spec_plan,
                    );
                    update.changes = vec![Change {
                        path: "min_size".to_string(),
                        old: Some(observed_group.spec.min_size.to_string()),
                        new: Some("0".to_string()),
                        sensitive: false,
                    }];
                    actions.push(update);
                }
                kept.desired_capacity = None;
                let mut detach = group_action(
                    &wt_address,
                    region,
                    ActionKind::Detach,
                    Resource::Instances,
                    Reason::ScalingChanged,
                    kept,
                );
                detach.ids = members;
                actions.push(detach);
                delete.reason = Reason::ScalingChanged;
                delete.count = None;
            }
            Some(_) => delete.reason = Reason::ScalingChanged,
            None => {
                // Deleting the group terminates its instances: counted here,
                // and kept from direct scaling's orphan terminations.
                delete.count = Some(members.len() as u32);
                delete.ids = members.clone();
                out.held.extend(members);
            }
        }
        actions.push(delete);
    }
    out
}

/// A planned group that sets `spec` as it is (for an update that changes
/// one field of a group no worker type declares any more).
fn from_spec(spec: &crate::provider::GroupSpec, tags: &BTreeMap<String, String>) -> PlannedGroup {
    PlannedGroup {
        name: spec.name.clone(),
        launch_template_id: Some(spec.launch_template_id.clone()).filter(|id| !id.is_empty()),
        overrides: spec
            .overrides
            .iter()
            .map(|o| PlannedOverride {
                instance_type: o.instance_type.clone(),
                weight: o.weight,
                // A live group names its templates by id only.
                template: None,
                template_id: o.launch_template_id.clone(),
            })
            .collect(),
        subnet_ids: spec.subnet_ids.clone(),
        min: u32::try_from(spec.min_size).unwrap_or(0),
        max: u32::try_from(spec.max_size).unwrap_or(0),
        max_size: u32::try_from(spec.max_size).unwrap_or(0),
        desired_capacity: None,
        max_instance_lifetime_secs: spec
            .max_instance_lifetime_secs
            .and_then(|s| u64::try_from(s).ok()),
        spot: spec.spot.as_ref().map(|s| GroupSpotPlan {
            max_price: s.max_price.clone(),
        }),
        tags: tags.clone(),
        old_tags: tags.clone(),
        min_healthy_percentage: None,
    }
}

/// Attaches the running instances outside the group, as many as fit under
/// its MaxSize on top of `desired`; returns the units attached. What does
/// not fit keeps running outside the group, with a warning.
#[allow(clippy::too_many_arguments)]
fn attach(
    wt_address: &str,
    region: &str,
    group: &PlannedGroup,
    outside: &[&ObservedInstance],
    desired: u32,
    weight: impl Fn(&str) -> u32,
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
) -> u32 {
    let mut units = desired;
    let mut ids = Vec::new();
    let mut left = Vec::new();
    let mut oldest_first: Vec<&&ObservedInstance> = outside.iter().collect();
    oldest_first.sort_by(|a, b| (b.launch_time, &a.id).cmp(&(a.launch_time, &b.id)));
    for i in oldest_first {
        let w = weight(&i.instance_type);
        if units.saturating_add(w) <= group.max_size {
            units += w;
            ids.push(i.id.clone());
        } else {
            left.push(i.id.clone());
        }
    }
    if !left.is_empty() {
        diags.push(
            Diagnostic::warning(
                Code::AutoScaling,
                format!(
                    "{wt_address} in {region}: {} running instance{} do not fit under the group's MaxSize {} and stay outside it: {}",
                    left.len(),
                    if left.len() == 1 { "" } else { "s" },
                    group.max_size,
                    left.join(", ")
                ),
            )
            .help("raise capacity max, or terminate them; the group does not count them"),
        );
    }
    if !ids.is_empty() {
        let mut a = group_action(
            wt_address,
            region,
            ActionKind::Attach,
            Resource::Instances,
            Reason::ScalingChanged,
            group.clone(),
        );
        a.ids = ids;
        actions.push(a);
    }
    units - desired
}

/// After a change of the worker type's template (`changed`, with its
/// roll-out stage), one instance refresh where `instance_refresh` asks for
/// it; none while one is in flight (shown as a warning instead).
#[allow(clippy::too_many_arguments)]
fn refresh(
    wt: &WorkerType,
    region: &str,
    observed: &ObservedGroup,
    group: &PlannedGroup,
    changed: Option<&Option<Stage>>,
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
) {
    let wt_address = address::worker_type(&wt.name);
    if let Some(flight) = &observed.refresh_in_flight {
        diags.push(
            Diagnostic::warning(
                Code::AutoScaling,
                format!(
                    "{wt_address} in {region}: instance refresh {} of group {} is {}{}; no other one is started until it ends",
                    flight.id,
                    group.name,
                    flight.status,
                    flight
                        .percentage_complete
                        .map(|p| format!(" ({p}% done)"))
                        .unwrap_or_default()
                ),
            )
            .at(wt.origin.attribute("instance_refresh"), "refresh in flight")
            .help("run plan again once it has finished to refresh onto the newest template version"),
        );
        return;
    }
    let (Some(settings), Some(stage)) = (wt.instance_refresh, changed) else {
        return;
    };
    let mut planned = group.clone();
    planned.min_healthy_percentage = Some(settings.min_healthy_percentage);
    let mut a = group_action(
        &wt_address,
        region,
        ActionKind::Refresh,
        Resource::AutoScalingGroup,
        Reason::TemplateChanged,
        planned,
    );
    a.stage = *stage;
    actions.push(a);
}

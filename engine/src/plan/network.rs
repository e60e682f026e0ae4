//! The live checks of networks and offerings in one region, and the
//! (zone, instance type) pairs a worker type may launch into there.
//!
//! FF012: every subnet a network names for the region exists and lies in
//! the zone it is listed under; every security group exists and belongs to
//! the VPC of the network's subnets. A network that fails is *broken* in
//! the region: nothing launches for the worker types that use it there.
//! FF013: an instance type that no zone of the region offers is an error;
//! a pair that is not offered, or that `exclude` names, is skipped and
//! listed. Only complete reads are judged: an incomplete one makes the
//! region blind (FF005) instead.

use super::{LaunchPair, SkipReason, SkippedPair};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{address, Config, Network, WorkerType};
use crate::provider::RegionObservation;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The networks used in `region` by a worker type that runs there.
fn used_in<'a>(config: &'a Config, region: &str) -> BTreeMap<&'a str, &'a Network> {
    config
        .worker_types
        .values()
        .filter(|wt| wt.regions.iter().any(|r| r == region))
        .filter_map(|wt| wt.network.as_deref())
        .filter_map(|name| Some((name, config.networks.get(name)?)))
        .collect()
}

/// FF012 for every network used in `region`; returns the names of the
/// networks that are broken there.
pub fn check(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    diags: &mut Diagnostics,
) -> BTreeSet<String> {
    let mut broken = BTreeSet::new();
    let (Some(subnets), Some(groups)) = (
        observed.subnets.complete(),
        observed.security_groups.complete(),
    ) else {
        return broken;
    };
    for (name, network) in used_in(config, region) {
        // Named only in an error (a fleet's network has thousands of users).
        let consequence = || {
            let users: Vec<&str> = config
                .worker_types
                .values()
                .filter(|wt| wt.network.as_deref() == Some(name))
                .filter(|wt| wt.regions.iter().any(|r| r == region))
                .map(|wt| wt.name.as_str())
                .collect();
            format!(
                "nothing launches for worker types [{}] in {region}",
                users.join(", ")
            )
        };
        let mut vpcs: BTreeSet<&str> = BTreeSet::new();
        for (zone, id) in network.subnets_in(region) {
            let at = network.origin.attribute(&format!("subnets.{zone}"));
            match subnets.iter().find(|s| s.id == id) {
                None => {
                    broken.insert(name.to_string());
                    diags.push(
                        Diagnostic::error(
                            Code::Network,
                            format!(
                                "subnet {id} of {} ({zone}) does not exist in {region}; {}",
                                address::network(name),
                                consequence()
                            ),
                        )
                        .at(at, "no such subnet")
                        .help("point the zone at a subnet that exists (aws ec2 describe-subnets), or remove the zone from the network; see `fleetform explain FF012`"),
                    );
                }
                Some(subnet) if subnet.zone != zone => {
                    broken.insert(name.to_string());
                    diags.push(
                        Diagnostic::error(
                            Code::Network,
                            format!(
                                "subnet {id} of {} is in {}, not in {zone} where it is listed; {}",
                                address::network(name),
                                subnet.zone,
                                consequence()
                            ),
                        )
                        .at(at, format!("subnet is in {}", subnet.zone))
                        .help(format!("list the subnet under \"{}\", or name a subnet of {zone}; see `fleetform explain FF012`", subnet.zone)),
                    );
                }
                Some(subnet) => {
                    vpcs.insert(subnet.vpc_id.as_str());
                }
            }
        }
        let at = network
            .origin
            .attribute(&format!("security_groups.{region}"));
        for id in network.security_groups.get(region).into_iter().flatten() {
            match groups.iter().find(|g| &g.id == id) {
                None => {
                    broken.insert(name.to_string());
                    diags.push(
                        Diagnostic::error(
                            Code::Network,
                            format!(
                                "security group {id} of {} does not exist in {region}; {}",
                                address::network(name),
                                consequence()
                            ),
                        )
                        .at(at.clone(), "no such security group")
                        .help("name a security group that exists in this region (aws ec2 describe-security-groups); see `fleetform explain FF012`"),
                    );
                }
                Some(group) if !vpcs.is_empty() && !vpcs.contains(group.vpc_id.as_str()) => {
                    broken.insert(name.to_string());
                    diags.push(
                        Diagnostic::error(
                            Code::Network,
                            format!(
                                "security group {id} of {} is in {}, but its subnets in {region} are in [{}]; {}",
                                address::network(name),
                                group.vpc_id,
                                vpcs.iter().copied().collect::<Vec<_>>().join(", "),
                                consequence()
                            ),
                        )
                        .at(at.clone(), format!("group of {}", group.vpc_id))
                        .help("use security groups of the subnets' VPC; EC2 refuses a launch that mixes VPCs; see `fleetform explain FF012`"),
                    );
                }
                Some(_) => {}
            }
        }
    }
    broken
}

/// What EC2 offers in one region, indexed: a fleet asks once per worker
/// type, zone and instance type, and a region lists thousands of offerings.
pub struct Offered<'o> {
    /// (zone, instance type) pairs offered; `None` when the offerings were
    /// not read completely.
    pairs: Option<HashSet<(&'o str, &'o str)>>,
    /// The instance types offered in some zone.
    types: HashSet<&'o str>,
}

impl<'o> Offered<'o> {
    /// The offerings of `observed`.
    pub fn of(observed: &'o RegionObservation) -> Offered<'o> {
        let offerings = observed.offerings.complete();
        Offered {
            pairs: offerings.map(|all| {
                all.iter()
                    .map(|o| (o.zone.as_str(), o.instance_type.as_str()))
                    .collect()
            }),
            types: offerings
                .into_iter()
                .flatten()
                .map(|o| o.instance_type.as_str())
                .collect(),
        }
    }

    /// Whether EC2 offers `instance_type` in `zone`, when the offerings
    /// were read completely; `None` when they were not.
    fn in_zone(&self, zone: &str, instance_type: &str) -> Option<bool> {
        Some(self.pairs.as_ref()?.contains(&(zone, instance_type)))
    }
}

/// The (zone, instance type) pairs `wt` may launch into in `region`, zones
/// in name order and instance types in declared order (the caller orders
/// them by capacity); pairs `exclude` names or EC2 does not offer go to
/// `skipped`. Empty without a network. `template` names the launch template
/// of an instance type that has its own (address, EC2 name).
pub fn pairs(
    config: &Config,
    wt: &WorkerType,
    region: &str,
    offered: &Offered<'_>,
    template: &dyn Fn(&crate::model::InstanceType) -> Option<(String, String)>,
    skipped: &mut Vec<SkippedPair>,
) -> Vec<LaunchPair> {
    let Some(network) = wt.network.as_deref().and_then(|n| config.networks.get(n)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (zone, subnet) in network.subnets_in(region) {
        for it in wt.instance_types_in(region) {
            let reason = if network.excludes(zone, &it.name) {
                Some(SkipReason::Excluded)
            } else if offered.in_zone(zone, &it.name) != Some(true) {
                // Unknown offerings never reach here: the region is blind then.
                Some(SkipReason::NotOffered)
            } else {
                None
            };
            if let Some(reason) = reason {
                skipped.push(SkippedPair {
                    address: address::worker_type(&wt.name),
                    region: region.to_string(),
                    zone: zone.to_string(),
                    instance_type: it.name.clone(),
                    reason,
                });
                continue;
            }
            let own = template(it);
            out.push(LaunchPair {
                zone: Some(zone.to_string()),
                subnet_id: Some(subnet.to_string()),
                instance_type: it.name.clone(),
                weight: it.capacity.max(1),
                template: own.as_ref().map(|(a, _)| a.clone()),
                template_id: None,
                template_name: own.map(|(_, n)| n),
            });
        }
    }
    out
}

/// FF013 errors: each instance type of a worker type with a network that
/// no zone of `region` offers, at its `instance_type` block.
pub fn offering_errors(
    config: &Config,
    region: &str,
    offered: &Offered<'_>,
    diags: &mut Diagnostics,
) {
    if offered.pairs.is_none() {
        return;
    }
    for wt in config
        .worker_types
        .values()
        .filter(|wt| wt.network.is_some() && wt.regions.iter().any(|r| r == region))
    {
        let Some(network) = wt.network.as_deref().and_then(|n| config.networks.get(n)) else {
            continue;
        };
        let mut offered_somewhere = false;
        let usable = network.subnets_in(region).any(|(zone, _)| {
            wt.instance_types_in(region).any(|it| {
                !network.excludes(zone, &it.name) && offered.in_zone(zone, &it.name) == Some(true)
            })
        });
        for it in wt.instance_types_in(region) {
            if offered.types.contains(it.name.as_str()) {
                offered_somewhere = true;
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::Offering,
                    format!(
                        "EC2 offers {} in no availability zone of {region}; worker type {} cannot launch it there",
                        it.name, wt.name
                    ),
                )
                .at(
                    wt.origin.attribute(&format!("instance_type.{}", it.name)),
                    format!("not offered in {region}"),
                )
                .help("use the type only where it is offered (regions = [...] in its instance_type block), or replace it; see `fleetform explain FF013`"),
            );
        }
        // Offered in the region, but in no zone of the network that
        // `exclude` leaves: nothing can launch, which must not pass silently.
        if offered_somewhere && !usable && network.subnets_in(region).next().is_some() {
            diags.push(
                Diagnostic::warning(
                    Code::Offering,
                    format!(
                        "worker type {} has no (zone, instance type) pair in {region} that {} allows and EC2 offers; nothing launches for it there",
                        wt.name,
                        address::network(&network.name)
                    ),
                )
                .at(wt.origin.attribute("network"), "no usable pair")
                .help("add a subnet in a zone that offers one of its instance types, or narrow the network's exclude; the plan lists the skipped pairs"),
            );
        }
    }
}

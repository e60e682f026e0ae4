//! Static checks of launch configurations: networks, volumes, spot options.
//!
//! What is wrong with a `network`, a `root_volume`/`volume` or a `spot` block
//! can mostly be told from the configuration alone: a worker type region its
//! network has no subnet or security group in (FF012), zones outside the
//! fleet's regions (FF012), volumes EC2 would refuse (sizes, IOPS and
//! throughput against [`crate::ebs`], device names, two volumes on one
//! device), spot options on an on-demand worker type, and `exclude` entries
//! that name nothing the network's worker types use (FF013, a warning).
//! Whether the subnets and groups exist is the plan's check.

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::ebs;
use crate::model::{zone_in_region, Config, Market, Network, Origin, Volume, WorkerType};
use std::collections::BTreeMap;

/// Runs every launch configuration check.
pub fn check(config: &Config, diags: &mut Diagnostics) {
    for network in config.networks.values() {
        zones_in_fleet(config, network, diags);
        unused_excludes(config, network, diags);
    }
    for wt in config.worker_types.values() {
        network_covers_regions(config, wt, diags);
        volumes(wt, diags);
        spot_needs_spot(wt, diags);
        regions_have_instance_types(wt, diags);
    }
}

/// FF012: every region of a worker type has a subnet and security groups in its network.
fn network_covers_regions(config: &Config, wt: &WorkerType, diags: &mut Diagnostics) {
    let Some(network) = wt.network.as_ref().and_then(|n| config.networks.get(n)) else {
        return;
    };
    let at = wt.origin.attribute("network");
    for region in &wt.regions {
        if network.subnets_in(region).next().is_none() {
            diags.push(
                Diagnostic::error(
                    Code::Network,
                    format!(
                        "worker_type \"{}\" runs in {region}, but network \"{}\" has no subnet there",
                        wt.name, network.name
                    ),
                )
                .at(at.clone(), format!("no subnet in {region}"))
                .help(format!(
                    "add a subnet of a zone of {region} to `subnets` of network \"{}\" (e.g. `\"{region}a\" = \"subnet-...\"`), or drop {region} from this worker type",
                    network.name
                )),
            );
        }
        if !network.security_groups.contains_key(region) {
            diags.push(
                Diagnostic::error(
                    Code::Network,
                    format!(
                        "worker_type \"{}\" runs in {region}, but network \"{}\" has no security groups for it",
                        wt.name, network.name
                    ),
                )
                .at(at.clone(), format!("no security groups for {region}"))
                .help(format!(
                    "add `\"{region}\" = [\"sg-...\"]` to `security_groups` of network \"{}\"",
                    network.name
                )),
            );
        }
    }
}

/// FF012: every zone a network names (in `subnets` and `exclude`) is a zone of a fleet region.
fn zones_in_fleet(config: &Config, network: &Network, diags: &mut Diagnostics) {
    let regions = &config.fleet.regions;
    for (attribute, zones) in [
        ("subnets", network.subnets.keys().collect::<Vec<_>>()),
        ("exclude", network.exclude.keys().collect()),
    ] {
        for zone in zones {
            if regions.iter().any(|r| zone_in_region(zone, r)) {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::Network,
                    format!(
                        "network \"{}\": `{zone}` in `{attribute}` is not an availability zone of a fleet region",
                        network.name
                    ),
                )
                .at(
                    network.origin.attribute(&format!("{attribute}.{zone}")),
                    "not a zone of fleet.regions",
                )
                .help(format!(
                    "zones are a fleet region's name and a letter, e.g. `{}a`; the fleet's regions are {}",
                    regions.first().map_or("us-east-1", String::as_str),
                    regions.join(", ")
                )),
            );
        }
    }
}

/// FF013 (warning): `exclude` names only families and types the network's worker types use.
fn unused_excludes(config: &Config, network: &Network, diags: &mut Diagnostics) {
    let users: Vec<&WorkerType> = config
        .worker_types
        .values()
        .filter(|wt| wt.network.as_deref() == Some(network.name.as_str()))
        .collect();
    // A network nothing uses has nothing to exclude from.
    if users.is_empty() {
        return;
    }
    let used = |name: &str| {
        users
            .iter()
            .flat_map(|wt| &wt.instance_types)
            .any(|it| it.name == name || it.name.split('.').next() == Some(name))
    };
    for (zone, names) in &network.exclude {
        for name in names.iter().filter(|n| !used(n)) {
            let kind = if name.contains('.') { "type" } else { "family" };
            diags.push(
                Diagnostic::warning(
                    Code::Offering,
                    format!(
                        "network \"{}\" excludes {kind} `{name}` in {zone}, which no worker type using the network has",
                        network.name
                    ),
                )
                .at(network.origin.attribute(&format!("exclude.{zone}")), format!("`{name}` is not used"))
                .help("check the spelling against the worker types' instance types, or remove the entry"),
            );
        }
    }
}

/// A spot block only with `market = "spot"`.
fn spot_needs_spot(wt: &WorkerType, diags: &mut Diagnostics) {
    if wt.spot.is_some() && wt.market == Market::OnDemand {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!(
                    "worker_type \"{}\" has a `spot` block but runs on-demand instances",
                    wt.name
                ),
            )
            .at(
                wt.origin.attribute("spot"),
                "spot options on an on-demand worker type",
            )
            .help("set `market = \"spot\"`, or remove the `spot` block"),
        );
    }
}

/// Every region of a worker type has an instance type used there.
fn regions_have_instance_types(wt: &WorkerType, diags: &mut Diagnostics) {
    // Without instance types at all, decoding already said so.
    if wt.instance_types.is_empty() {
        return;
    }
    for region in &wt.regions {
        if wt.instance_types_in(region).next().is_none() {
            diags.push(
                Diagnostic::error(
                    Code::Region,
                    format!(
                        "worker_type \"{}\" runs in {region}, but none of its instance types is used there",
                        wt.name
                    ),
                )
                .at(wt.origin.attribute("regions"), format!("no instance type for {region}"))
                .help(format!(
                    "add {region} to the `regions` of an instance type, or drop it from the worker type"
                )),
            );
        }
    }
}

/// Volumes: device names, one volume per device, and EBS's limits.
fn volumes(wt: &WorkerType, diags: &mut Diagnostics) {
    if let Some(root) = &wt.root_volume {
        volume_limits(wt, root, "root_volume", "root_volume", diags);
        if !ebs::limits(root.volume_type).boot {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!(
                        "worker_type \"{}\": {} volumes cannot be root volumes",
                        wt.name, root.volume_type
                    ),
                )
                .at(wt.origin.attribute("root_volume.type"), "not a boot volume type")
                .help("HDD volumes (st1, sc1) cannot boot; use gp3 for the root volume and put an st1 or sc1 `volume` beside it"),
            );
        }
    }
    for (device, volume) in &wt.volumes {
        let key = format!("volume.{device}");
        device_name(wt, device, &key, diags);
        volume_limits(wt, volume, &key, &format!("volume \"{device}\""), diags);
    }
    same_device(wt, &wt.volumes, "", diags);
    for it in &wt.instance_types {
        let prefix = format!("instance_type.{}.", it.name);
        for (device, volume) in &it.volumes {
            let key = format!("{prefix}volume.{device}");
            device_name(wt, device, &key, diags);
            let what = format!("volume \"{device}\" of instance type {}", it.name);
            volume_limits(wt, volume, &key, &what, diags);
        }
        // What its instances get: the worker type's volumes and its own.
        same_device(wt, &wt.volumes_of(it), &prefix, diags);
    }
}

/// The letter of a device name EC2 attaches EBS volumes at: `/dev/sd[b-z]`,
/// `/dev/xvd[b-z]` or `xvd[b-z]`; `None` for any other name.
pub fn device_letter(device: &str) -> Option<char> {
    let rest = device
        .strip_prefix("/dev/sd")
        .or_else(|| device.strip_prefix("/dev/xvd"))
        .or_else(|| device.strip_prefix("xvd"))?;
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if ('b'..='z').contains(&c) => Some(c),
        _ => None,
    }
}

fn device_name(wt: &WorkerType, device: &str, key: &str, diags: &mut Diagnostics) {
    if device_letter(device).is_none() {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!(
                    "worker_type \"{}\": `{device}` is not a device name for an EBS volume",
                    wt.name
                ),
            )
            .at(wt.origin.attribute(key), "expected /dev/sd[b-z], /dev/xvd[b-z] or xvd[b-z]")
            .help("name the device `/dev/xvdb` through `/dev/xvdz` (or `/dev/sdb`..`/dev/sdz`); `a` is the root device, which `root_volume` sets"),
        );
    }
}

/// Two names for one device (`/dev/sdb` and `/dev/xvdb` are the same disk).
fn same_device(
    wt: &WorkerType,
    volumes: &BTreeMap<String, Volume>,
    prefix: &str,
    diags: &mut Diagnostics,
) {
    let mut by_letter: BTreeMap<char, &str> = BTreeMap::new();
    for device in volumes.keys() {
        let Some(letter) = device_letter(device) else {
            continue;
        };
        let Some(first) = by_letter.insert(letter, device) else {
            continue;
        };
        // Point at the instance type's own block when one of the two is
        // its: that block adds the second name.
        let own = |d: &str| format!("{prefix}volume.{d}");
        let key = [device, first]
            .into_iter()
            .map(own)
            .find(|k| !prefix.is_empty() && wt.origin.attributes.contains_key(k))
            .unwrap_or_else(|| format!("volume.{device}"));
        let at = wt.origin.attribute(&key);
        diags.push(
            Diagnostic::error(
                Code::Duplicate,
                format!(
                    "worker_type \"{}\": `{first}` and `{device}` are the same device",
                    wt.name
                ),
            )
            .at(at, format!("`{first}` and `{device}` are one device"))
            .help(format!(
                "EC2 attaches both at device {letter}; use one name (to override a worker type's volume in an instance type, repeat its device name exactly)"
            )),
        );
    }
}

/// Sizes, IOPS and throughput within what EC2 accepts for the volume's type.
fn volume_limits(wt: &WorkerType, volume: &Volume, key: &str, what: &str, diags: &mut Diagnostics) {
    let limits = ebs::limits(volume.volume_type);
    let t = volume.volume_type;
    let origin = &wt.origin;
    let mut push = |attribute: &str, message: String, label: String, help: String| {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("worker_type \"{}\": {what}: {message}", wt.name),
            )
            .at(attribute_or_block(origin, key, attribute), label)
            .help(help),
        );
    };
    let range = |r: &std::ops::RangeInclusive<u32>| format!("{} to {}", r.start(), r.end());
    if !limits.size_gib.contains(&volume.size_gb) {
        push(
            "size_gb",
            format!(
                "{t} volumes are {} GiB, not {}",
                range(&limits.size_gib),
                volume.size_gb
            ),
            format!("{t}: {} GiB", range(&limits.size_gib)),
            "choose a size in the range, or another volume type".into(),
        );
    }
    match (&limits.iops, volume.iops) {
        (None, Some(_)) => push(
            "iops",
            format!("{t} volumes take no `iops`"),
            "not for this type".into(),
            "IOPS are provisioned for gp3, io1 and io2 only; remove `iops` or change the type"
                .into(),
        ),
        (Some(_), None) if limits.iops_required => push(
            "type",
            format!("{t} volumes need `iops`"),
            format!("{t} without iops"),
            format!(
                "add `iops = N` ({}) to the block",
                limits.iops.as_ref().map(range).unwrap_or_default()
            ),
        ),
        (Some(allowed), Some(iops)) => {
            if !allowed.contains(&iops) {
                push(
                    "iops",
                    format!("{t} volumes have {} IOPS, not {iops}", range(allowed)),
                    format!("{t}: {} IOPS", range(allowed)),
                    "choose IOPS in the range, or another volume type".into(),
                );
            } else if let Some(per_gib) = limits.max_iops_per_gib {
                let most = u64::from(per_gib) * u64::from(volume.size_gb);
                if u64::from(iops) > most {
                    push(
                        "iops",
                        format!(
                            "{iops} IOPS on {} GiB is more than {per_gib} IOPS per GiB",
                            volume.size_gb
                        ),
                        format!("at most {most} IOPS at this size"),
                        format!(
                            "lower `iops`, or make the volume at least {} GiB",
                            u64::from(iops).div_ceil(u64::from(per_gib))
                        ),
                    );
                }
            }
        }
        (_, None) => {}
    }
    match (&limits.throughput, volume.throughput) {
        (None, Some(_)) => push(
            "throughput",
            format!("{t} volumes take no `throughput`"),
            "not for this type".into(),
            "throughput is provisioned for gp3 only; remove `throughput` or change the type".into(),
        ),
        (Some(allowed), Some(mibs)) => {
            if !allowed.contains(&mibs) {
                push(
                    "throughput",
                    format!("{t} volumes have {} MiB/s, not {mibs}", range(allowed)),
                    format!("{t}: {} MiB/s", range(allowed)),
                    "choose throughput in the range".into(),
                );
            } else if let Some(per) = limits.iops_per_throughput {
                let iops = volume.iops.or(limits.default_iops).unwrap_or(0);
                let needed = u64::from(mibs) * u64::from(per);
                if needed > u64::from(iops) {
                    push(
                        "throughput",
                        format!("{mibs} MiB/s needs at least {needed} IOPS, the volume has {iops}"),
                        format!("needs {needed} IOPS"),
                        format!(
                            "raise `iops` to {needed} or more, or lower `throughput` to {} MiB/s",
                            u64::from(iops) / u64::from(per)
                        ),
                    );
                }
            }
        }
        (_, None) => {}
    }
}

/// The span of `key.attribute`, else of the block `key`, else of the worker type.
fn attribute_or_block(
    origin: &Origin,
    key: &str,
    attribute: &str,
) -> Option<crate::source::SourceRef> {
    origin
        .attributes
        .get(&format!("{key}.{attribute}"))
        .cloned()
        .or_else(|| origin.attribute(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_ec2_attaches_volumes_at() {
        for ok in ["/dev/sdb", "/dev/xvdz", "xvdc"] {
            assert!(device_letter(ok).is_some(), "{ok}");
        }
        for bad in [
            "/dev/sda",
            "/dev/sda1",
            "/dev/xvdaa",
            "sdb",
            "/dev/nvme1n1",
            "xvd",
        ] {
            assert_eq!(device_letter(bad), None, "{bad}");
        }
        assert_eq!(device_letter("/dev/sdb"), device_letter("xvdb"));
    }
}

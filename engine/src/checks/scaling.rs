//! Static checks of Auto Scaling groups (FF014): what a worker type with
//! `scaling = "asg"` needs (a network, a lifetime Auto Scaling accepts,
//! bounds that leave room for the heaviest weight), `instance_refresh` only
//! where a group refreshes, and `exclude` entries a group cannot express.

use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Config, Scaling, WorkerType};

/// Auto Scaling's least MaxInstanceLifetime: one day.
pub const MIN_GROUP_LIFETIME_SECS: u64 = 86_400;

/// Runs every Auto Scaling check.
pub fn check(config: &Config, diags: &mut Diagnostics) {
    for wt in config.worker_types.values() {
        match wt.scaling {
            Scaling::Asg => group(config, wt, diags),
            Scaling::Direct => {
                if wt.instance_refresh.is_some() {
                    diags.push(
                        Diagnostic::error(
                            Code::AutoScaling,
                            format!(
                                "worker_type \"{}\" has `instance_refresh` but scales directly",
                                wt.name
                            ),
                        )
                        .at(
                            wt.origin.attribute("instance_refresh"),
                            "only for scaling = \"asg\"",
                        )
                        .help("set `scaling = \"asg\"`, or remove the `instance_refresh` block"),
                    );
                }
            }
        }
    }
}

fn group(config: &Config, wt: &WorkerType, diags: &mut Diagnostics) {
    let scaling = wt.origin.attribute("scaling");
    match wt.network.as_deref().and_then(|n| config.networks.get(n)) {
        None if wt.network.is_none() => diags.push(
            Diagnostic::error(
                Code::AutoScaling,
                format!(
                    "worker_type \"{}\" has scaling = \"asg\" but no network",
                    wt.name
                ),
            )
            .at(scaling.clone(), "a group needs subnets")
            .help("add `network = network.NAME`: the group launches into its subnets"),
        ),
        Some(network) if !network.exclude.is_empty() => {
            diags.push(
                    Diagnostic::warning(
                        Code::AutoScaling,
                        format!(
                            "network \"{}\" has `exclude`, which the Auto Scaling group of worker_type \"{}\" cannot follow",
                            network.name, wt.name
                        ),
                    )
                    .at(network.origin.attribute("exclude"), "not expressible in a group")
                    .help("Auto Scaling picks the types per zone and skips what a zone does not offer; drop `exclude`, or scale this worker type directly"),
                );
        }
        _ => {}
    }
    if let Some(lifetime) = wt.max_lifetime {
        if lifetime.as_secs() < MIN_GROUP_LIFETIME_SECS {
            diags.push(
                Diagnostic::error(
                    Code::AutoScaling,
                    format!(
                        "worker_type \"{}\": max_lifetime of an Auto Scaling group must be at least one day",
                        wt.name
                    ),
                )
                .at(wt.origin.attribute("max_lifetime"), "under one day")
                .help("set `max_lifetime = \"1d\"` or more, or scale this worker type directly"),
            );
        }
    }
    // MaxSize is `max - (heaviest - 1)` in every region: it must hold `min`.
    for region in &wt.regions {
        let heaviest = wt
            .instance_types_in(region)
            .map(|t| t.capacity)
            .max()
            .unwrap_or(1);
        let (min, max) = wt.group_bounds_in(region, &config.fleet.regions);
        let max_size = max.saturating_sub(heaviest.saturating_sub(1));
        if max_size < min || (max > 0 && max_size == 0) {
            diags.push(
                Diagnostic::error(
                    Code::AutoScaling,
                    format!(
                        "worker_type \"{}\" in {region}: with instance weights up to {heaviest}, a group can hold at most {} units under max {max} (MaxSize = max - (heaviest - 1)), below min {min}",
                        wt.name, max_size,
                    ),
                )
                .at(wt.origin.attribute("capacity.max"), "no room for the heaviest weight")
                .help(format!(
                    "raise max to at least {}, or use lighter instance weights",
                    min.max(1).saturating_add(heaviest - 1)
                )),
            );
            break;
        }
    }
}

//! Safety checks over the model that read nothing from the cloud.
//!
//! [`static_checks`] is what can be known to be wrong from the configuration
//! alone, run by every load: capacity bounds that cannot hold
//! (`capacity-range`), regions outside the fleet (`region`), a region without
//! an image (FF002), images that do not suit the instance types (FF003) and
//! the budget (FF007). Two more take one fact from outside: [`account_guard`]
//! (FF009) the caller's account, [`image_in_use`] (FF001 for one image) the
//! images recorded versions used ([`VersionImages`]); the plan's pruning
//! applies the same FF001 rule in [`crate::plan::image_actions::prune`].
//!
//! Launch configurations (networks, volumes, spot options: FF012, the
//! EBS limits of [`crate::ebs`], FF013 warnings) are checked in [`launch`].
//!
//! Each check is a plain function over the model that reports at the HCL
//! span of the offending declaration.

pub mod launch;
pub mod scaling;

use crate::catalog::{hourly_price, InstanceTypeInfo};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::images::VersionImages;
use crate::model::{Config, WorkerType};

/// Runs every static check on a decoded configuration.
pub fn static_checks(config: &Config, diags: &mut Diagnostics) {
    for wt in config.worker_types.values() {
        capacity_bounds(wt, diags);
        regions_in_fleet(config, wt, diags);
        image_missing(config, wt, diags);
        image_compat(config, wt, diags);
    }
    launch::check(config, diags);
    scaling::check(config, diags);
    budget(config, diags);
}

/// min <= max, and some mix of instance weights lands between them.
fn capacity_bounds(wt: &WorkerType, diags: &mut Diagnostics) {
    let c = wt.capacity;
    if c.min > c.max {
        diags.push(
            Diagnostic::error(
                Code::CapacityRange,
                format!(
                    "worker_type \"{}\": capacity min ({}) is above max ({})",
                    wt.name, c.min, c.max
                ),
            )
            .at(wt.origin.attribute("capacity.min"), "min above max")
            .help(match wt.capacity.scope {
                crate::model::CapacityScope::Region => {
                    "lower min or raise max; both count capacity units per region"
                }
                crate::model::CapacityScope::WorkerType => {
                    "lower min or raise max; both count capacity units over all the worker type's regions"
                }
            }),
        );
        return;
    }
    let weights: Vec<u32> = wt.instance_types.iter().map(|t| t.capacity).collect();
    if c.min > 0 && !reachable_between(&weights, c.min, c.max) {
        diags.push(
            Diagnostic::error(
                Code::CapacityRange,
                format!(
                    "worker_type \"{}\": no mix of instance types (weights {:?}) gives between {} and {} capacity units",
                    wt.name, weights, c.min, c.max
                ),
            )
            .at(wt.origin.attribute("capacity.max"), "unreachable bounds")
            .help("raise max, or add an instance type with a smaller capacity weight"),
        );
    }
}

/// Whether sums of `weights` (each used any number of times) can land in `min..=max`.
fn reachable_between(weights: &[u32], min: u32, max: u32) -> bool {
    const LIMIT: u32 = 1_000_000;
    if max > LIMIT || weights.contains(&1) {
        return weights.iter().any(|&w| w <= max);
    }
    let mut reachable = vec![false; max as usize + 1];
    reachable[0] = true;
    for total in 1..=max as usize {
        reachable[total] = weights
            .iter()
            .any(|&w| (w as usize) <= total && reachable[total - w as usize]);
        if reachable[total] && total >= min as usize {
            return true;
        }
    }
    false
}

fn regions_in_fleet(config: &Config, wt: &WorkerType, diags: &mut Diagnostics) {
    for region in &wt.regions {
        if !config.fleet.regions.contains(region) {
            diags.push(
                Diagnostic::error(
                    Code::Region,
                    format!(
                        "worker_type \"{}\" runs in `{region}`, which is not a fleet region",
                        wt.name
                    ),
                )
                .at(wt.origin.attribute("regions"), "not in fleet.regions")
                .help(format!(
                    "add \"{region}\" to fleet.regions ({}), or remove it here",
                    config.fleet.regions.join(", ")
                )),
            );
        }
    }
}

/// FF002: every region a worker type runs in has an image in its AMI set.
fn image_missing(config: &Config, wt: &WorkerType, diags: &mut Diagnostics) {
    let Some(set) = config.ami_sets.get(&wt.ami_set) else {
        return;
    };
    for region in &wt.regions {
        if !set.covers(region) {
            diags.push(
                Diagnostic::error(
                    Code::ImageMissing,
                    format!(
                        "worker_type \"{}\" runs in {region}, but ami_set \"{}\" has no image there",
                        wt.name, set.name
                    ),
                )
                .at(wt.origin.attribute("ami_set"), format!("no image for {region}"))
                .help(if set.source.is_some() {
                    format!(
                        "add \"{region}\" to `copy_to` of ami_set \"{}\", or drop {region} from this worker type",
                        set.name
                    )
                } else {
                    format!(
                        "add `\"{region}\" = \"ami-...\"` to the images of ami_set \"{}\", or drop {region} from this worker type",
                        set.name
                    )
                }),
            );
        }
    }
}

/// FF003: the AMI set's virtualization and architecture suit every instance type.
fn image_compat(config: &Config, wt: &WorkerType, diags: &mut Diagnostics) {
    let Some(set) = config.ami_sets.get(&wt.ami_set) else {
        return;
    };
    for it in &wt.instance_types {
        let Some(info) = InstanceTypeInfo::parse(&it.name) else {
            continue;
        };
        let at = wt.origin.attribute(&format!("instance_type.{}", it.name));
        if !info.supports(set.virtualization) {
            diags.push(
                Diagnostic::error(
                    Code::ImageCompat,
                    format!(
                        "worker_type \"{}\": {} images of ami_set \"{}\" cannot boot on {} (a current-generation, HVM-only family)",
                        wt.name, set.virtualization, set.name, it.name
                    ),
                )
                .at(at.clone(), "HVM-only instance type")
                .help("use an hvm AMI set, or a previous-generation type that takes pv (m3, c3, m1, m2, c1, t1, hs1)"),
            );
        }
        if info.architecture() != set.architecture {
            diags.push(
                Diagnostic::error(
                    Code::ImageCompat,
                    format!(
                        "worker_type \"{}\": {} images of ami_set \"{}\" cannot run on {}, which is {}",
                        wt.name,
                        set.architecture,
                        set.name,
                        it.name,
                        info.architecture()
                    ),
                )
                .at(at, format!("{} instance type", info.architecture()))
                .help(if info.graviton {
                    "Graviton types (m6g, c7g, t4g, ...) need an arm64 AMI set"
                } else {
                    "arm64 images need a Graviton type (m6g, c7g, t4g, ...)"
                }),
            );
        }
    }
}

/// What a worker type costs per hour at max capacity in every region it runs
/// in (or, with bounds over all its regions, at max capacity once).
#[derive(Debug, Clone, PartialEq)]
pub struct MaxCost {
    /// USD per hour, counting each region at `max` units of the dearest type per unit.
    pub hourly_usd: f64,
    /// Instance types not in the price table (left out of the figure).
    pub unpriced: Vec<String>,
}

/// The worst-case hourly cost of `wt`: `max` units per region, filled with the
/// instance type that costs most per capacity unit.
pub fn max_hourly_cost(wt: &WorkerType) -> MaxCost {
    let mut unpriced = Vec::new();
    let mut per_unit: f64 = 0.0;
    for it in &wt.instance_types {
        match hourly_price(&it.name) {
            Some(price) => per_unit = per_unit.max(price / f64::from(it.capacity.max(1))),
            None => unpriced.push(it.name.clone()),
        }
    }
    // Bounds over all regions hold `max` once, not once per region.
    let regions = match wt.capacity.scope {
        crate::model::CapacityScope::Region => wt.regions.len() as f64,
        crate::model::CapacityScope::WorkerType => 1.0,
    };
    MaxCost {
        hourly_usd: per_unit * f64::from(wt.capacity.max) * regions,
        unpriced,
    }
}

/// FF007: the fleet at max capacity stays within the budget.
fn budget(config: &Config, diags: &mut Diagnostics) {
    let Some(budget) = &config.fleet.budget else {
        return;
    };
    let mut costs: Vec<(&str, f64)> = Vec::new();
    let mut unpriced: Vec<String> = Vec::new();
    for wt in config.worker_types.values() {
        let cost = max_hourly_cost(wt);
        costs.push((&wt.name, cost.hourly_usd));
        unpriced.extend(cost.unpriced);
    }
    unpriced.sort();
    unpriced.dedup();
    let total: f64 = costs.iter().map(|(_, c)| c).sum();
    let at = config.fleet.origin.attribute("budget.max_hourly_usd");
    if !unpriced.is_empty() {
        diags.push(
            Diagnostic::warning(
                Code::Budget,
                format!(
                    "no price known for {}; the budget check leaves them out",
                    unpriced.join(", ")
                ),
            )
            .at(at.clone(), "estimate is incomplete")
            .help("add their on-demand prices to engine/data/prices.tsv"),
        );
    }
    if total > budget.max_hourly_usd {
        costs.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = costs
            .iter()
            .filter(|(_, cost)| *cost > 0.0)
            .take(3)
            .map(|(name, cost)| format!("{name} ${cost:.2}/h"))
            .collect();
        diags.push(
            Diagnostic::error(
                Code::Budget,
                format!(
                    "at max capacity the fleet costs ${total:.2}/h, above the budget of ${:.2}/h",
                    budget.max_hourly_usd
                ),
            )
            .at(at, "budget exceeded at max capacity")
            .help(format!(
                "lower capacity max or raise the budget; largest: {} (on-demand, dearest type per unit)",
                top.join(", ")
            )),
        );
    }
}

/// FF009: the caller's account must be the one the fleet names.
pub fn account_guard(config: &Config, caller_account: &str) -> Option<Diagnostic> {
    let expected = config.fleet.account_id.as_deref()?;
    if expected == caller_account {
        return None;
    }
    Some(
        Diagnostic::error(
            Code::AccountGuard,
            format!(
                "the credentials belong to account {caller_account}, but fleet \"{}\" is in account {expected}",
                config.fleet.name
            ),
        )
        .at(config.fleet.origin.attribute("account_id"), format!("expected {expected}"))
        .help("switch credentials (AWS_PROFILE, aws sso login) to the fleet's account, or fix account_id"),
    )
}

/// FF001: deregistering `image` in `region` is refused while the configuration
/// names it, or a version younger than `fleet.rollback_window` does (so that
/// version can still be rolled back to).
pub fn image_in_use(
    config: &Config,
    region: &str,
    image: &str,
    versions: &[VersionImages],
    now: i64,
) -> Option<Diagnostic> {
    let users: Vec<&str> = config
        .worker_types
        .values()
        .filter(|wt| {
            wt.regions.iter().any(|r| r == region)
                && config
                    .ami_sets
                    .get(&wt.ami_set)
                    .and_then(|s| s.images.get(region))
                    .map(String::as_str)
                    == Some(image)
        })
        .map(|wt| wt.name.as_str())
        .collect();
    let window = config.fleet.rollback_window.as_secs() as i64;
    let protecting: Vec<u64> = versions
        .iter()
        .filter(|v| now - v.time <= window)
        .filter(|v| {
            v.images
                .get(region)
                .is_some_and(|ids| ids.iter().any(|i| i == image))
        })
        .map(|v| v.number)
        .collect();
    if users.is_empty() && protecting.is_empty() {
        return None;
    }
    let mut why = Vec::new();
    if !users.is_empty() {
        why.push(format!("worker types [{}] use it", users.join(", ")));
    }
    if !protecting.is_empty() {
        let list: Vec<String> = protecting.iter().map(u64::to_string).collect();
        why.push(format!(
            "versions [{}] reference it within the rollback window of {}",
            list.join(", "),
            config.fleet.rollback_window
        ));
    }
    Some(
        Diagnostic::error(
            Code::ImageInUse,
            format!("image {image} in {region} must not be deregistered: {}", why.join("; ")),
        )
        .at(config.fleet.origin.attribute("rollback_window"), "images are protected this long")
        .help("move the worker types to another image first, and wait until no version inside the rollback window needs it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_image(image: &str) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let hcl = format!(
            "fleet \"f\" {{\n  regions = [\"us-east-1\"]\n  rollback_window = \"30d\"\n}}\nami_set \"a\" {{\n  images = {{\n    \"us-east-1\" = \"{image}\"\n  }}\n}}\nworker_type \"w\" {{\n  ami_set = ami_set.a\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{\n    max = 1\n  }}\n}}\n"
        );
        std::fs::write(dir.path().join("f.hcl"), hcl).expect("write");
        crate::load_dir(dir.path(), &crate::Inputs::default())
            .config
            .expect("valid")
    }

    #[test]
    fn seed_001_an_image_the_config_uses_is_never_deregistered() {
        let config = config_with_image("ami-11111111");
        let d = image_in_use(&config, "us-east-1", "ami-11111111", &[], 0).expect("refused");
        assert_eq!(d.code, Code::ImageInUse);
        assert!(d.message.contains("worker types [w]"), "{}", d.message);
        assert_eq!(
            image_in_use(&config, "us-west-2", "ami-11111111", &[], 0),
            None,
            "other region"
        );
    }

    #[test]
    fn an_image_of_a_version_inside_the_rollback_window_is_kept_outside_it_not() {
        let config = config_with_image("ami-22222222");
        let day = 86_400;
        let old = VersionImages {
            number: 4,
            time: 0,
            images: [("us-east-1".to_string(), vec!["ami-11111111".to_string()])].into(),
        };
        let inside = image_in_use(
            &config,
            "us-east-1",
            "ami-11111111",
            std::slice::from_ref(&old),
            29 * day,
        );
        assert!(inside.is_some_and(|d| d.message.contains("versions [4]")));
        assert_eq!(
            image_in_use(&config, "us-east-1", "ami-11111111", &[old], 31 * day),
            None
        );
    }

    #[test]
    fn reachable_between_finds_a_mix_that_fits() {
        assert!(reachable_between(&[4], 1, 4));
        assert!(!reachable_between(&[4], 1, 3));
        assert!(reachable_between(&[4, 6], 5, 6));
        assert!(!reachable_between(&[4, 6], 7, 7));
        assert!(reachable_between(&[3, 5], 8, 8));
    }
}

//! Bounds over all of a worker type's regions (`capacity { scope =
//! "worker_type" }`) for direct scaling, shared out into per-region bounds
//! before the regions are planned, each on its own.
//!
//! The running capacity of every region is counted; when the total is below
//! `min`, the missing units go first to the regions that run the least, and
//! when it is above `max`, the excess comes first from the regions that run
//! the most (ties in fleet region order). A region's bounds are then what it
//! should run (its min) and that plus its share of the room left under `max`
//! (its max), so the regions' maxima add up to `max` and FF004 holds over
//! the worker type. A worker type with a region that was not read completely
//! is blind everywhere: unknown is never zero, so no region may make up for
//! it.

use super::build::PlanOptions;
use crate::model::{address, CapacityScope, Config, Scaling, WorkerType};
use crate::provider::{tags, Observation};
use std::collections::BTreeMap;

/// What one worker type with bounds over its regions may do in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Scale between these bounds here.
    Bounds {
        /// Units this region should run at least.
        min: u32,
        /// Units this region may run at most.
        max: u32,
    },
    /// One of its regions could not be read: nothing is launched or
    /// terminated anywhere.
    Blind,
}

/// Per worker type name, its share in one region.
pub type PoolBounds = BTreeMap<String, Share>;

/// Per region, the shares of every directly scaled worker type whose bounds
/// hold over all its regions.
pub fn share(
    config: &Config,
    observation: &Observation,
    options: &PlanOptions,
) -> BTreeMap<String, PoolBounds> {
    let mut out: BTreeMap<String, PoolBounds> = BTreeMap::new();
    for wt in config.worker_types.values().filter(|wt| {
        wt.capacity.scope == CapacityScope::WorkerType && wt.scaling == Scaling::Direct
    }) {
        let regions: Vec<&String> = config
            .fleet
            .regions
            .iter()
            .filter(|r| wt.regions.contains(r))
            .collect();
        let running = regions
            .iter()
            .map(|region| running_units(config, wt, region, observation, options))
            .collect::<Option<Vec<u32>>>();
        let shares: Vec<Share> = match running {
            None => vec![Share::Blind; regions.len()],
            Some(running) => divide(&running, wt.capacity.min, wt.capacity.max)
                .into_iter()
                .map(|(min, max)| Share::Bounds { min, max })
                .collect(),
        };
        for (region, share) in regions.into_iter().zip(shares) {
            out.entry(region.clone())
                .or_default()
                .insert(wt.name.clone(), share);
        }
    }
    out
}

/// The units `wt` runs in `region` that stay (pending and running, not past
/// `max_lifetime`, weighed as capacity counts them, launched but not listed
/// yet included); `None` when the region was not read completely.
fn running_units(
    config: &Config,
    wt: &WorkerType,
    region: &str,
    observation: &Observation,
    options: &PlanOptions,
) -> Option<u32> {
    let observed = observation.regions.get(region)?;
    if !observed.incomplete().is_empty() {
        return None;
    }
    let instances = observed.instances.complete()?;
    let tagged = address::worker_type_in(&wt.name, region);
    let heaviest = wt
        .instance_types
        .iter()
        .map(|t| t.capacity)
        .max()
        .unwrap_or(1);
    let weight = |instance_type: Option<&str>| {
        wt.instance_types
            .iter()
            .find(|t| Some(t.name.as_str()) == instance_type)
            .map_or(heaviest, |t| t.capacity)
    };
    let expired = |launched: i64| {
        wt.max_lifetime.is_some_and(|d| {
            options.now.saturating_sub(launched) >= i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
        })
    };
    let listed: u32 = instances
        .iter()
        .filter(|i| i.tags.get(tags::ADDRESS).is_some_and(|t| *t == tagged))
        .filter(|i| i.state == "pending" || i.state == "running")
        .filter(|i| !expired(i.launch_time))
        .map(|i| weight(Some(&i.instance_type)))
        .sum();
    let unseen = super::visibility::unseen(
        &options.created,
        region,
        observed,
        config.fleet.consistency_grace,
        options.now,
    );
    let not_listed: u32 = unseen
        .instances(&address::worker_type(&wt.name))
        .iter()
        .map(|c| weight(c.instance_type.as_deref()))
        .sum();
    Some(listed + not_listed)
}

/// Per region (in fleet order), the bounds that bring `running` into
/// `min..=max` over all regions: launches go where the least runs,
/// terminations come from where the most runs, and the room left under
/// `max` goes to the regions that run the least.
pub fn divide(running: &[u32], min: u32, max: u32) -> Vec<(u32, u32)> {
    let total: u64 = running.iter().map(|&r| u64::from(r)).sum();
    let target = total.clamp(u64::from(min), u64::from(max.max(min)));
    let mut want: Vec<u64> = running.iter().map(|&r| u64::from(r)).collect();
    if want.is_empty() {
        return Vec::new();
    }
    if target > total {
        fill(&mut want, target - total);
    }
    if target < total {
        drain(&mut want, total - target);
    }
    let mut room: Vec<u64> = want.clone();
    fill(&mut room, u64::from(max).saturating_sub(target));
    want.iter()
        .zip(room)
        .map(|(&w, r)| {
            (
                u32::try_from(w).unwrap_or(u32::MAX),
                u32::try_from(r).unwrap_or(u32::MAX),
            )
        })
        .collect()
}

/// Adds `units` to `levels`, each to the lowest level (ties in index
/// order), in whole steps per level rather than one unit at a time, so that
/// bounds in the millions cost no more than small ones.
fn fill(levels: &mut [u64], mut units: u64) {
    while units > 0 {
        let Some(low) = levels.iter().copied().min() else {
            return;
        };
        let at_low: Vec<usize> = (0..levels.len()).filter(|&i| levels[i] == low).collect();
        let next = levels.iter().copied().filter(|&l| l > low).min();
        let n = at_low.len() as u64;
        // Raise every lowest level together as far as the next level, or as
        // far as the units go evenly; what is left goes one each, in order.
        let step = match next {
            Some(next) => (next - low).min(units / n),
            None => units / n,
        };
        if step == 0 {
            for &i in at_low.iter().take(units as usize) {
                levels[i] += 1;
            }
            return;
        }
        for &i in &at_low {
            levels[i] += step;
        }
        units -= step * n;
    }
}

/// Takes `units` from `levels`, each from the highest level (ties in index
/// order), in whole steps per level; never below zero.
fn drain(levels: &mut [u64], mut units: u64) {
    while units > 0 {
        let Some(high) = levels.iter().copied().max() else {
            return;
        };
        if high == 0 {
            return;
        }
        let at_high: Vec<usize> = (0..levels.len()).filter(|&i| levels[i] == high).collect();
        let next = levels
            .iter()
            .copied()
            .filter(|&l| l < high)
            .max()
            .unwrap_or(0);
        let n = at_high.len() as u64;
        let step = (high - next).min(units / n);
        if step == 0 {
            for &i in at_high.iter().take(units as usize) {
                levels[i] -= 1;
            }
            return;
        }
        for &i in &at_high {
            levels[i] -= step;
        }
        units -= step * n;
    }
}

#[cfg(test)]
mod tests {
    use super::divide;

    #[test]
    fn below_min_launches_go_first_where_the_least_runs() {
        // 10 needed over three regions running 4, 0 and 1: 5 more units,
        // to the second region until it catches up, then in fleet order.
        let shares = divide(&[4, 0, 1], 10, 12);
        let mins: Vec<u32> = shares.iter().map(|s| s.0).collect();
        assert_eq!(mins, vec![4, 3, 3]);
        assert_eq!(mins.iter().sum::<u32>(), 10);
        assert_eq!(shares.iter().map(|s| s.1).sum::<u32>(), 12);
    }

    #[test]
    fn above_max_terminations_come_first_from_where_the_most_runs() {
        let shares = divide(&[9, 2, 9], 0, 12);
        // 8 too many: from the two nines alike (first region first on a tie).
        assert_eq!(shares, vec![(5, 5), (2, 2), (5, 5)]);
    }

    #[test]
    fn between_the_bounds_nothing_moves_and_the_room_goes_to_the_least() {
        let shares = divide(&[3, 1, 0], 0, 10);
        let mins: Vec<u32> = shares.iter().map(|s| s.0).collect();
        assert_eq!(mins, vec![3, 1, 0]);
        // 6 units of room: 3 to the third, 2 to the second, 1 to the first...
        assert_eq!(shares.iter().map(|s| s.1).sum::<u32>(), 10);
        assert!(shares.iter().all(|(min, max)| min <= max));
    }

    #[test]
    fn bounds_in_the_billions_are_shared_out_at_once() {
        let shares = divide(&[3, 0, 1], 4_000_000_000, u32::MAX);
        let minima: u64 = shares.iter().map(|s| u64::from(s.0)).sum();
        let maxima: u64 = shares.iter().map(|s| u64::from(s.1)).sum();
        assert_eq!(minima, 4_000_000_000);
        assert_eq!(maxima, u64::from(u32::MAX));
        assert_eq!(shares[0].0, 1_333_333_334, "{shares:?}");
    }

    #[test]
    fn the_maxima_never_add_up_past_max() {
        for running in [[0u32, 0, 0], [100, 0, 0], [5, 5, 5], [1, 50, 2]] {
            for (min, max) in [(0, 0), (0, 7), (6, 6), (3, 40)] {
                let shares = divide(&running, min, max);
                let maxima: u32 = shares.iter().map(|s| s.1).sum();
                let minima: u32 = shares.iter().map(|s| s.0).sum();
                assert!(maxima <= max, "{running:?} {min}..{max}: {shares:?}");
                assert!(
                    minima >= min.min(max),
                    "{running:?} {min}..{max}: {shares:?}"
                );
            }
        }
    }
}

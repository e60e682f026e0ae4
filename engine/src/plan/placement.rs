//! Where a launch goes: the (zone, instance type) pairs of a worker type's
//! network in one region, in the order launches prefer them, and the split
//! of a launch over them, balanced by running capacity per zone. Pure:
//! pairs and capacities in, a split out.
//!
//! Order: zones with the least running capacity first (ties by zone name),
//! within a zone the instance types in declared order. A pair the network's
//! `exclude` names, or that EC2 does not offer in its zone, is never a pair
//! (the plan lists it as skipped). FF004 holds here too: a split never adds
//! more than the room under `max` it is given (property test below).

use super::{LaunchPair, Placement};
use std::collections::BTreeMap;

/// `pairs` ordered for launching: zones by running capacity (`capacity`,
/// per zone; absent: none), then zone name; within a zone, the order given
/// (the declared order of instance types). Stable.
pub fn order(mut pairs: Vec<LaunchPair>, capacity: &BTreeMap<String, u32>) -> Vec<LaunchPair> {
    let load = |p: &LaunchPair| {
        p.zone
            .as_ref()
            .map_or(0, |z| capacity.get(z).copied().unwrap_or(0))
    };
    pairs.sort_by(|a, b| (load(a), &a.zone).cmp(&(load(b), &b.zone)));
    pairs
}

/// Splits a launch of at least `deficit` capacity units (as far as `room`
/// allows, never more than `room`) over `pairs`, one instance at a time:
/// each goes to the zone with the least capacity so far (running, from
/// `capacity`, plus what this split put there; ties in `pairs` order), as
/// the first of the zone's pairs in `pairs` order whose weight still fits.
/// Parts come out in the order they were first chosen.
pub fn split(
    deficit: u32,
    room: u32,
    pairs: &[LaunchPair],
    capacity: &BTreeMap<String, u32>,
) -> Vec<Placement> {
    // Zones in the order of `pairs`, each with its pairs.
    let mut zones: Vec<(Option<&str>, Vec<&LaunchPair>)> = Vec::new();
    for pair in pairs {
        let zone = pair.zone.as_deref();
        match zones.iter_mut().find(|(z, _)| *z == zone) {
            Some((_, list)) => list.push(pair),
            None => zones.push((zone, vec![pair])),
        }
    }
    let mut load: Vec<u32> = zones
        .iter()
        .map(|(z, _)| z.map_or(0, |z| capacity.get(z).copied().unwrap_or(0)))
        .collect();
    let (mut deficit, mut room) = (deficit, room);
    let mut parts: Vec<Placement> = Vec::new();
    while deficit > 0 {
        // The least loaded zone that has a pair fitting in the room left.
        let choice = zones
            .iter()
            .enumerate()
            .filter_map(|(i, (_, list))| {
                let pair = list.iter().find(|p| p.weight.max(1) <= room)?;
                Some((load[i], i, *pair))
            })
            .min_by_key(|(load, i, _)| (*load, *i));
        let Some((_, zone, pair)) = choice else { break };
        let weight = pair.weight.max(1);
        load[zone] = load[zone].saturating_add(weight);
        room -= weight;
        deficit = deficit.saturating_sub(weight);
        match parts.iter_mut().find(|p| pair.holds(p)) {
            Some(part) => part.count += 1,
            None => parts.push(Placement {
                zone: pair.zone.clone(),
                subnet_id: pair.subnet_id.clone(),
                instance_type: pair.instance_type.clone(),
                count: 1,
            }),
        }
    }
    parts
}

/// Capacity units a split adds, weighed by its pairs.
pub fn units(parts: &[Placement], pairs: &[LaunchPair]) -> u32 {
    parts
        .iter()
        .map(|part| {
            let weight = pairs
                .iter()
                .find(|p| p.holds(part))
                .map_or(1, |p| p.weight.max(1));
            part.count.saturating_mul(weight)
        })
        .fold(0, u32::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pair(zone: &str, instance_type: &str, weight: u32) -> LaunchPair {
        LaunchPair {
            zone: Some(zone.to_string()),
            subnet_id: Some(format!("subnet-{zone}")),
            instance_type: instance_type.to_string(),
            weight,
            template: None,
            template_id: None,
            template_name: None,
        }
    }

    fn counts(parts: &[Placement]) -> Vec<(String, String, u32)> {
        parts
            .iter()
            .map(|p| {
                (
                    p.zone.clone().unwrap_or_default(),
                    p.instance_type.clone(),
                    p.count,
                )
            })
            .collect()
    }

    #[test]
    fn zones_with_the_least_capacity_come_first_and_types_keep_their_order() {
        let pairs = vec![
            pair("us-east-1a", "m5.large", 1),
            pair("us-east-1a", "c5.large", 1),
            pair("us-east-1b", "m5.large", 1),
            pair("us-east-1c", "m5.large", 1),
        ];
        let capacity = BTreeMap::from([("us-east-1a".to_string(), 3), ("us-east-1b".into(), 1)]);
        let ordered: Vec<(String, String)> = order(pairs, &capacity)
            .into_iter()
            .map(|p| (p.zone.unwrap_or_default(), p.instance_type))
            .collect();
        assert_eq!(
            ordered,
            [
                ("us-east-1c".to_string(), "m5.large".to_string()),
                ("us-east-1b".into(), "m5.large".into()),
                ("us-east-1a".into(), "m5.large".into()),
                ("us-east-1a".into(), "c5.large".into()),
            ]
        );
    }

    #[test]
    fn a_launch_fills_the_emptiest_zones_until_they_are_level() {
        let pairs = vec![
            pair("us-east-1a", "m5.large", 1),
            pair("us-east-1b", "m5.large", 1),
            pair("us-east-1c", "m5.large", 1),
        ];
        // 1a runs 4, 1b 1, 1c none: 6 more level them at 1a 4, 1b 3.5, 1c 3.5.
        let capacity = BTreeMap::from([("us-east-1a".to_string(), 4), ("us-east-1b".into(), 1)]);
        let parts = split(6, 10, &pairs, &capacity);
        assert_eq!(
            counts(&parts),
            [
                ("us-east-1c".to_string(), "m5.large".to_string(), 3),
                ("us-east-1b".into(), "m5.large".into(), 3),
            ]
        );
        assert_eq!(units(&parts, &pairs), 6);
    }

    #[test]
    fn a_type_too_heavy_for_the_room_left_gives_way_to_the_next_declared_one() {
        let pairs = vec![
            pair("us-east-1a", "c5.metal", 4),
            pair("us-east-1a", "m5.large", 1),
            pair("us-east-1b", "c5.metal", 4),
            pair("us-east-1b", "m5.large", 1),
        ];
        let parts = split(5, 6, &pairs, &BTreeMap::new());
        // One metal in 1a (room 2 left), then m5.large in 1b: 5 units, within 6.
        assert_eq!(
            counts(&parts),
            [
                ("us-east-1a".to_string(), "c5.metal".to_string(), 1),
                ("us-east-1b".into(), "m5.large".into(), 1),
            ]
        );
        assert_eq!(units(&parts, &pairs), 5);
    }

    #[test]
    fn no_pair_no_launch() {
        assert!(split(3, 5, &[], &BTreeMap::new()).is_empty());
        assert!(split(3, 0, &[pair("us-east-1a", "m5.large", 1)], &BTreeMap::new()).is_empty());
    }

    proptest! {
        /// FF004 end to end: the capacity decision's terminations, then a
        /// split into the room they leave under max, never end above max.
        #[test]
        fn a_decision_and_its_split_never_end_above_max(
            running in prop::collection::vec((0usize..3, 1u32..5, any::<bool>()), 0..30),
            min in 0u32..30,
            extra in 0u32..20,
            weights in prop::collection::vec(1u32..5, 2),
        ) {
            use crate::plan::capacity::{decide, Bounds, Unit};
            let max = min + extra;
            let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
            let live: Vec<Unit> = running
                .iter()
                .enumerate()
                .map(|(i, (_, w, current))| Unit {
                    id: format!("i-{i:03}"),
                    weight: *w,
                    launched: i as i64,
                    current_version: *current,
                    running: true,
                })
                .collect();
            let types: Vec<(String, u32)> = weights.iter().enumerate().map(|(i, w)| (format!("t{i}.large"), *w)).collect();
            let bounds = Bounds { min, max, max_lifetime: None, types: types.clone() };
            let d = decide(&live, &bounds, 0);
            let gone: std::collections::BTreeSet<&str> = d.terminate.iter().map(|(id, _)| id.as_str()).collect();
            let mut per_zone: BTreeMap<String, u32> = BTreeMap::new();
            let mut kept = 0;
            for ((z, w, _), u) in running.iter().zip(&live) {
                if !gone.contains(u.id.as_str()) {
                    kept += w;
                    *per_zone.entry(zones[*z].to_string()).or_default() += w;
                }
            }
            let pairs: Vec<LaunchPair> = zones
                .iter()
                .flat_map(|z| types.iter().map(move |(t, w)| pair(z, t, *w)))
                .collect();
            let parts = if kept < min {
                split(min - kept, max.saturating_sub(kept), &order(pairs.clone(), &per_zone), &per_zone)
            } else {
                Vec::new()
            };
            prop_assert!(kept + units(&parts, &pairs) <= max, "{} + {} > {}", kept, units(&parts, &pairs), max);
        }

        /// FF004 for a split: whatever the pairs, weights and zone
        /// capacities, a split never adds more units than the room it is
        /// given, and it covers the deficit whenever the lightest pair fits
        /// each step (it stops short only when nothing fits the room left).
        #[test]
        fn a_split_never_adds_more_than_the_room_under_max(
            pairs in prop::collection::btree_set((0usize..4, 0usize..3), 0..10),
            weights in prop::collection::vec(1u32..6, 3),
            running in prop::collection::vec(0u32..20, 4),
            deficit in 0u32..60,
            extra in 0u32..30,
        ) {
            let room = deficit + extra;
            let zones = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"];
            let pairs: Vec<LaunchPair> = pairs
                .iter()
                // One weight per instance type, as a worker type declares it.
                .map(|(z, t)| pair(zones[*z], &format!("t{t}.large"), weights[*t]))
                .collect();
            let capacity: BTreeMap<String, u32> = zones
                .iter()
                .zip(&running)
                .map(|(z, r)| (z.to_string(), *r))
                .collect();
            let parts = split(deficit, room, &pairs, &capacity);
            // Recomputed from the parts and the pairs' weights alone.
            let added: u32 = parts
                .iter()
                .map(|p| {
                    let w = pairs.iter().find(|x| x.holds(p)).map(|x| x.weight).unwrap_or(u32::MAX);
                    p.count * w
                })
                .sum();
            prop_assert!(added <= room, "{} > {}", added, room);
            prop_assert!(parts.iter().all(|p| p.count > 0 && pairs.iter().any(|x| x.holds(p))));
            if added < deficit {
                let lightest = pairs.iter().map(|p| p.weight).min();
                prop_assert!(lightest.is_none_or(|w| w > room - added), "stopped short with room left");
            }
        }
    }
}

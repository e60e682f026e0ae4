//! Which declared object a live one is: matched by id, not by address.
//!
//! A worker type's id (`WorkerType::id`) is on its launch templates and
//! instances as `fleetform:worker-type`; a key pair's is in its EC2 name
//! (`<fleet>.<id>`). The `fleetform:address` tag records the address at
//! creation and is informational: writing a worker type out, or as an
//! instance of a `for_each` with the same `name`, moves its address but not
//! its id, and must change nothing in EC2. The plan matches live objects by
//! address, so [`readdress`] first gives every live object the address its
//! id has in the configuration now.

use super::build::owner_address;
use crate::model::{address, Config};
use crate::provider::{tags, Observation, Observed, Tags};
use std::borrow::Cow;
use std::collections::HashMap;

/// `observation` with the address tag of every live object fleetform made
/// replaced by the address its id has in `config` (borrowed when nothing
/// moved). An object whose id the configuration no longer has but whose
/// address it still uses (an id changed by `name`) gets an address of its
/// own, so it is deleted, not taken for the new one.
pub fn readdress<'o>(config: &Config, observation: &'o Observation) -> Cow<'o, Observation> {
    let by_id: HashMap<&str, &str> = config
        .worker_types
        .values()
        .map(|wt| (wt.id(), wt.name.as_str()))
        .collect();
    let key_by_name: HashMap<String, &str> = config
        .key_pairs
        .values()
        .map(|k| (k.ec2_name_in(&config.fleet.name), k.name.as_str()))
        .collect();
    let worker_address = |region: &str, tags_of: &Tags| -> Option<String> {
        let id = tags_of.get(tags::WORKER_TYPE)?;
        let tagged = tags_of.get(tags::ADDRESS)?;
        // `BASE["REGION"]`, taken apart without building the suffix.
        let base = tagged
            .strip_suffix("\"]")?
            .strip_suffix(region)?
            .strip_suffix("[\"")?;
        let owner = owner_address(base);
        let rest = &base[owner.len()..];
        let owner_now = match by_id.get(id.as_str()) {
            // Still where it was tagged (nearly every object): the address
            // would be rebuilt as it is, so nothing is built.
            Some(name) if owner.strip_prefix("worker_type.") == Some(*name) => return None,
            Some(name) => address::worker_type(name),
            None => {
                let name = owner.strip_prefix("worker_type.")?;
                let declared = config.worker_types.get(name)?;
                if declared.id() == id {
                    return None;
                }
                format!("{owner} (id {id})")
            }
        };
        let now = format!("{owner_now}{rest}[\"{region}\"]");
        (now != *tagged).then_some(now)
    };
    let key_address = |name: &str, tags_of: &Tags| -> Option<String> {
        let tagged = tags_of.get(tags::ADDRESS)?;
        let now = match key_by_name.get(name) {
            Some(key) if tagged.strip_prefix("key_pair.") == Some(*key) => return None,
            Some(key) => address::key_pair(key),
            None => {
                let key = tagged.strip_prefix("key_pair.")?;
                config.key_pairs.get(key)?;
                format!("{tagged} (name {name})")
            }
        };
        (now != *tagged).then_some(now)
    };

    let mut moved: Vec<(String, Moved)> = Vec::new();
    for (region, observed) in &observation.regions {
        if let Observed::Complete { items } = &observed.launch_templates {
            for (i, t) in items.iter().enumerate() {
                if let Some(now) = worker_address(region, &t.tags) {
                    moved.push((region.clone(), Moved::Template(i, now)));
                }
            }
        }
        if let Observed::Complete { items } = &observed.instances {
            for (i, o) in items.iter().enumerate() {
                if let Some(now) = worker_address(region, &o.tags) {
                    moved.push((region.clone(), Moved::Instance(i, now)));
                }
            }
        }
        if let Observed::Complete { items } = &observed.key_pairs {
            for (i, k) in items.iter().enumerate() {
                if let Some(now) = key_address(&k.name, &k.tags) {
                    moved.push((region.clone(), Moved::KeyPair(i, now)));
                }
            }
        }
    }
    if moved.is_empty() {
        return Cow::Borrowed(observation);
    }
    let mut observation = observation.clone();
    for (region, m) in moved {
        let Some(observed) = observation.regions.get_mut(&region) else {
            continue;
        };
        let tags_of = match (
            m,
            &mut observed.launch_templates,
            &mut observed.instances,
            &mut observed.key_pairs,
        ) {
            (Moved::Template(i, now), Observed::Complete { items }, _, _) => {
                items.get_mut(i).map(|t| (&mut t.tags, now))
            }
            (Moved::Instance(i, now), _, Observed::Complete { items }, _) => {
                items.get_mut(i).map(|o| (&mut o.tags, now))
            }
            (Moved::KeyPair(i, now), _, _, Observed::Complete { items }) => {
                items.get_mut(i).map(|k| (&mut k.tags, now))
            }
            _ => None,
        };
        if let Some((tags_of, now)) = tags_of {
            tags_of.insert(tags::ADDRESS.to_string(), now.into());
        }
    }
    Cow::Owned(observation)
}

/// One live object whose address moves: its index in its listing, and the new address.
enum Moved {
    Template(usize, String),
    Instance(usize, String),
    KeyPair(usize, String),
}

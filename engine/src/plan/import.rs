//! The plan's side of `fleetform import`: adopting objects made by hand.
//!
//! A launch template or key pair the configuration declares (by its EC2
//! name, `ec2_name` or `<fleet>.<id>`) that EC2 holds without the
//! `fleetform:fleet` tag, and the live instances launched from such a
//! template, are adopted: an `adopt` action with reason `import` tags each
//! with fleetform's tags (CreateTags). Each adopted template also gets one
//! new default version that only adds fleetform's tag specifications (so
//! what a provisioner launches from it is counted), when what the
//! configuration declares for it is what the template already launches;
//! otherwise the plan's ordinary update writes fleetform's whole version.
//!
//! [`adopt`] returns the observation as it will be after those actions
//! (the objects carrying the tags), so the rest of the plan counts the
//! adopted instances and creates, launches and terminates nothing for
//! them. Objects that carry any `fleetform:fleet` tag are never adopted: one
//! a concurrent apply already tagged is the plan's as usual.

use super::build::{desired_template, key_digest, template_changes};
use super::{Action, ActionKind, Change, Reason, Resource};
use crate::model::{address, Config, WorkerType};
use crate::provider::{tags, LaunchTemplateData, Observation, Observed, RegionObservation, Tags};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The observation with every object adopted by import carrying the tags the
/// plan gives it, and the actions that tag them (borrowed, and no actions,
/// when there is nothing to adopt).
pub fn adopt<'o>(
    config: &Config,
    observation: &'o Observation,
) -> (Cow<'o, Observation>, Vec<Action>) {
    // Only what lacks the fleet's tag is adopted: a fleet with nothing to
    // adopt is planned on the observation as it is, without a copy.
    let untagged = |t: &Tags| !t.contains_key(tags::FLEET);
    let adoptable = observation.regions.values().any(|r| {
        r.adoptable.complete().is_some_and(|a| {
            a.launch_templates.iter().any(|t| untagged(&t.tags))
                || a.key_pairs.iter().any(|k| untagged(&k.key_pair.tags))
        })
    });
    if !adoptable {
        return (Cow::Borrowed(observation), Vec::new());
    }
    let mut after = observation.clone();
    let mut actions = Vec::new();
    for (region, observed) in after.regions.iter_mut() {
        adopt_region(config, region, observed, &mut actions);
    }
    (Cow::Owned(after), actions)
}

fn fleet_tags(
    config: &Config,
    address: &str,
    worker_type: Option<&str>,
) -> BTreeMap<String, String> {
    let mut t = BTreeMap::from([
        (tags::FLEET.to_string(), config.fleet.name.clone()),
        (tags::ADDRESS.to_string(), address.to_string()),
    ]);
    if let Some(id) = worker_type {
        t.insert(tags::WORKER_TYPE.to_string(), id.to_string());
    }
    t
}

/// The image a worker type's template should launch in `region`, as far as
/// the configuration alone says (an explicit image id), else what the
/// template launches now.
fn image_of(config: &Config, wt: &WorkerType, region: &str, now: Option<&str>) -> Option<String> {
    config
        .ami_sets
        .get(&wt.ami_set)
        .and_then(|set| set.images.get(region).cloned())
        .or_else(|| now.map(str::to_string))
}

fn adopt_region(
    config: &Config,
    region: &str,
    observed: &mut RegionObservation,
    actions: &mut Vec<Action>,
) {
    let Observed::Complete { items: found } = &observed.adoptable else {
        return;
    };
    let found = found.clone();
    let untagged = |t: &Tags| !t.contains_key(tags::FLEET);
    // Templates: by EC2 name, for each worker type of this region.
    if let (Observed::Complete { items: templates }, Observed::Complete { items: instances }) =
        (&mut observed.launch_templates, &mut observed.instances)
    {
        for wt in config
            .worker_types
            .values()
            .filter(|wt| wt.regions.iter().any(|r| r == region))
        {
            let name = wt.ec2_name_in(&config.fleet.name);
            let Some(template) = found
                .launch_templates
                .iter()
                .find(|t| t.name == name && untagged(&t.tags))
            else {
                continue;
            };
            let addr = address::worker_type(&wt.name);
            let tagged_as = address::worker_type_in(&wt.name, region);
            let identity = fleet_tags(config, &tagged_as, Some(wt.id()));
            actions.push(Action {
                ids: vec![template.id.clone()],
                name: Some(name.clone()),
                tags: identity.clone(),
                ..Action::new(
                    &addr,
                    region,
                    ActionKind::Adopt,
                    Resource::LaunchTemplate,
                    Reason::Import,
                )
            });
            let now = template.default_data.clone().unwrap_or_default();
            let mut tagged = LaunchTemplateData {
                instance_tags: now.instance_tags.clone(),
                volume_tags: now.volume_tags.clone(),
                ..now.clone()
            };
            tagged.instance_tags.extend(identity.clone());
            tagged.volume_tags.extend(identity.clone());
            let desired = desired_template(
                config,
                wt,
                region,
                image_of(config, wt, region, now.image_id.as_deref()),
            );
            let mut adopted = template.clone();
            adopted.tags.extend(identity.clone());
            // A tag-only version only when nothing else differs; otherwise the
            // plan's ordinary update writes fleetform's version (one new
            // version either way, never two racing for the default).
            if template_changes(Some(&tagged), &desired, None).is_empty() {
                let changes = identity
                    .iter()
                    .flat_map(|(k, v)| {
                        ["tags", "volume_tags"].map(|prefix| Change {
                            path: format!("{prefix}.{k}"),
                            old: None,
                            new: Some(v.clone()),
                            sensitive: false,
                        })
                    })
                    .collect();
                actions.push(Action {
                    ids: vec![template.id.clone(), template.default_version.to_string()],
                    name: Some(name.clone()),
                    changes,
                    // Only what the new version sets: the source version's
                    // other settings (its user data too) stay out of the plan.
                    launch_template: Some(LaunchTemplateData {
                        instance_tags: tagged.instance_tags.clone(),
                        volume_tags: tagged.volume_tags.clone(),
                        ..LaunchTemplateData::default()
                    }),
                    ..Action::new(
                        &addr,
                        region,
                        ActionKind::Update,
                        Resource::LaunchTemplate,
                        Reason::Import,
                    )
                });
                adopted.latest_version += 1;
                adopted.default_version = adopted.latest_version;
                adopted.default_data = Some(tagged);
            }
            templates.retain(|t| t.id != template.id);
            templates.push(adopted);
            // Instances launched from it, without the fleet's tag.
            let launched: Vec<usize> = instances_of(&found.instances, &template.id)
                .filter(|i| untagged(&found.instances[*i].tags))
                .collect();
            if launched.is_empty() {
                continue;
            }
            let ids: Vec<String> = launched
                .iter()
                .map(|i| found.instances[*i].id.clone())
                .collect();
            for i in &launched {
                let mut instance = found.instances[*i].clone();
                instance.tags.extend(identity.clone());
                instances.retain(|o| o.id != instance.id);
                instances.push(instance);
            }
            actions.push(Action {
                count: Some(u32::try_from(ids.len()).unwrap_or(u32::MAX)),
                ids,
                name: Some(name.clone()),
                tags: identity,
                ..Action::new(
                    &addr,
                    region,
                    ActionKind::Adopt,
                    Resource::Instances,
                    Reason::Import,
                )
            });
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
    }
    // Key pairs: by EC2 name, every key pair a worker type of this region uses.
    if let Observed::Complete { items: key_pairs } = &mut observed.key_pairs {
        let used: std::collections::BTreeSet<&str> = config
            .worker_types
            .values()
            .filter(|wt| wt.regions.iter().any(|r| r == region))
            .filter_map(|wt| wt.key_pair.as_deref())
            .collect();
        for name in used {
            let Some(key) = config.key_pairs.get(name) else {
                continue;
            };
            let ec2_name = key.ec2_name_in(&config.fleet.name);
            let Some(live) = found
                .key_pairs
                .iter()
                .find(|k| k.key_pair.name == ec2_name && untagged(&k.key_pair.tags))
            else {
                continue;
            };
            // The digest of the key EC2 holds: a configuration whose key
            // differs then plans the replacement it needs, never a silent match.
            let digest = match &live.public_key {
                Some(held) if same_key(held, &key.public_key) => key_digest(&key.public_key),
                Some(held) => key_digest(held),
                None => key_digest(&key.public_key),
            };
            let addr = address::key_pair(name);
            let mut tag_set = fleet_tags(config, &addr, None);
            tag_set.insert(tags::KEY_DIGEST.to_string(), digest);
            actions.push(Action {
                ids: vec![live.key_pair.id.clone()],
                name: Some(ec2_name.clone()),
                tags: tag_set.clone(),
                ..Action::new(
                    &addr,
                    region,
                    ActionKind::Adopt,
                    Resource::KeyPair,
                    Reason::Import,
                )
            });
            let mut adopted = live.key_pair.clone();
            adopted.tags.extend(tag_set);
            key_pairs.retain(|k| k.id != adopted.id);
            key_pairs.push(adopted);
        }
        key_pairs.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

fn instances_of<'a>(
    instances: &'a [crate::provider::ObservedInstance],
    template_id: &'a str,
) -> impl Iterator<Item = usize> + 'a {
    instances.iter().enumerate().filter_map(move |(i, o)| {
        o.launch_template
            .as_ref()
            .is_some_and(|(id, _)| id == template_id)
            .then_some(i)
    })
}

/// Whether two OpenSSH public keys are the same key (type and base64 body;
/// the comment does not count, and EC2 may not return it).
pub fn same_key(a: &str, b: &str) -> bool {
    let parts = |k: &str| {
        let mut words = k.split_whitespace();
        (
            words.next().map(str::to_string),
            words.next().map(str::to_string),
        )
    };
    parts(a) == parts(b) && parts(a).1.is_some()
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn keys_compare_without_their_comments() {
        assert!(same_key("ssh-ed25519 AAAAC3 me@host", "ssh-ed25519 AAAAC3"));
        assert!(!same_key("ssh-ed25519 AAAAC3", "ssh-ed25519 AAAAC4"));
        assert!(!same_key("", ""));
    }
}

//! A flat listing of what an observation found, by address ([`Object`]): what
//! `fleetform state list` and `state show` print, what a version records as
//! the objects observed after its apply ([`carry_over`] keeps the last record
//! of what could not be read), and what `plan --refresh-only` compares with
//! that record ([`drift`]). Objects are named by their `fleetform:address`
//! tag; tagged objects with no address, or whose address the configuration
//! no longer declares, are listed as orphans.
//!
//! Also here: what to observe for a configuration
//! ([`ObserveRequest::for_config`]).

use crate::model::Config;
use crate::provider::{tags, Kind, Observation, ObserveRequest};
use serde::Serialize;
use std::collections::BTreeMap;

impl ObserveRequest {
    /// What to read for `config`: its fleet tag, its regions, and per region the
    /// image ids its AMI sets name.
    pub fn for_config(config: &Config) -> ObserveRequest {
        let mut image_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for set in config.ami_sets.values() {
            for (region, id) in &set.images {
                let ids = image_ids.entry(region.clone()).or_default();
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        for set in config.ami_sets.values() {
            if let Some(source) = &set.source {
                let ids = image_ids.entry(source.region.clone()).or_default();
                if !ids.contains(&source.image) {
                    ids.push(source.image.clone());
                }
            }
        }
        let mut lookups: Vec<crate::model::ImageLookup> = config
            .ami_sets
            .values()
            .filter_map(|s| s.lookup.clone())
            .collect();
        lookups.sort_by(|a, b| (&a.name, &a.owners).cmp(&(&b.name, &b.owners)));
        lookups.dedup();
        // Subnets, groups and the offerings of instance types as the worker
        // types with a network use them in each region: a region reads only
        // what it needs, and nothing when it needs nothing.
        let mut subnet_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut security_group_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut instance_types: BTreeMap<String, Vec<String>> = BTreeMap::new();
        fn add(ids: &mut Vec<String>, id: &str) {
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
        }
        for wt in config.worker_types.values() {
            // Offerings decide where a worker type's launches go, which
            // only a network names: without one EC2 picks the zone.
            let Some(network) = wt.network.as_ref().and_then(|n| config.networks.get(n)) else {
                continue;
            };
            for region in &wt.regions {
                for t in wt.instance_types.iter().filter(|t| t.used_in(region)) {
                    add(instance_types.entry(region.clone()).or_default(), &t.name);
                }
                for (_, subnet) in network.subnets_in(region) {
                    add(subnet_ids.entry(region.clone()).or_default(), subnet);
                }
                for group in network.security_groups.get(region).into_iter().flatten() {
                    add(security_group_ids.entry(region.clone()).or_default(), group);
                }
            }
        }
        // Groups are always read (one paged call per region): a group whose
        // worker type was removed or switched back to direct scaling must be
        // found to be deleted, and unknown is never "none".
        let auto_scaling_groups = true;
        let mut refresh_groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for wt in config
            .worker_types
            .values()
            .filter(|wt| wt.scaling == crate::model::Scaling::Asg && wt.instance_refresh.is_some())
        {
            for region in &wt.regions {
                refresh_groups
                    .entry(region.clone())
                    .or_default()
                    .push(crate::plan::build::launch_template_name(config, wt));
            }
        }
        for ids in subnet_ids
            .values_mut()
            .chain(security_group_ids.values_mut())
            .chain(instance_types.values_mut())
        {
            ids.sort();
        }
        ObserveRequest {
            fleet: config.fleet.name.clone(),
            regions: config.fleet.regions.clone(),
            image_ids,
            lookups,
            subnet_ids,
            security_group_ids,
            instance_types,
            auto_scaling_groups,
            refresh_groups,
            adoptable: crate::import::adopt_names(config),
        }
    }
}

/// What kind of object a [`Object`] is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// An EC2 key pair.
    KeyPair,
    /// An AMI.
    Image,
    /// A launch template.
    LaunchTemplate,
    /// An instance.
    Instance,
    /// An Auto Scaling group.
    AutoScalingGroup,
}

impl ObjectKind {
    /// The kind of the objects an observed [`Kind`] lists; `None` for what
    /// fleetform reads but never owns (subnets, groups, offerings).
    pub fn of(kind: Kind) -> Option<ObjectKind> {
        match kind {
            Kind::KeyPairs => Some(ObjectKind::KeyPair),
            Kind::Images => Some(ObjectKind::Image),
            Kind::LaunchTemplates => Some(ObjectKind::LaunchTemplate),
            Kind::Instances => Some(ObjectKind::Instance),
            Kind::Subnets
            | Kind::SecurityGroups
            | Kind::Offerings
            | Kind::AutoScalingGroups
            | Kind::Adoptable => None,
        }
    }

    /// The name `state list` shows and versions record (`launch_template`).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::KeyPair => "key_pair",
            ObjectKind::Image => "image",
            ObjectKind::LaunchTemplate => "launch_template",
            ObjectKind::Instance => "instance",
            ObjectKind::AutoScalingGroup => "auto_scaling_group",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One live object of the fleet, as observed and as a version records it
/// (its `observed` list). Versions recorded before `name` existed decode
/// too: [`Object::name`] reads their names where they kept them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Object {
    /// `key_pair.NAME`, `worker_type.NAME["REGION"]`, `ami_set.NAME`, or `(orphan)`.
    pub address: String,
    /// Region it lives in.
    pub region: String,
    /// What kind of object.
    pub kind: ObjectKind,
    /// Cloud id.
    pub id: String,
    /// Its EC2 name (key pairs, launch templates, images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// One line of state (name, version, type), compared for drift.
    pub detail: String,
    /// True when fleetform created it (it carries the fleet tag).
    pub managed: bool,
    /// A launch template's default version (what `fleetform output` hands
    /// to provisioners); absent for other kinds and in versions recorded
    /// before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_version: Option<i64>,
}

impl Object {
    /// Its EC2 name: recorded, or for key pairs and launch templates of
    /// versions recorded before names were, the first word of `detail`,
    /// where those versions wrote it.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref().or_else(|| match self.kind {
            ObjectKind::KeyPair | ObjectKind::LaunchTemplate => self.detail.split(' ').next(),
            ObjectKind::Image | ObjectKind::Instance | ObjectKind::AutoScalingGroup => None,
        })
    }
}

/// One row of `state list` and `state show`: what a user reads of an [`Object`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// Address.
    pub address: &'a str,
    /// Region.
    pub region: &'a str,
    /// Kind, as text.
    pub kind: &'static str,
    /// Cloud id.
    pub id: &'a str,
    /// State, name, type, version.
    pub detail: &'a str,
}

impl<'a> From<&'a Object> for Row<'a> {
    fn from(object: &'a Object) -> Row<'a> {
        Row {
            address: &object.address,
            region: &object.region,
            kind: object.kind.as_str(),
            id: &object.id,
            detail: &object.detail,
        }
    }
}

/// Lists every object of `observation`, sorted by address, region, kind and id,
/// plus (region, kind, cause) for each read that was incomplete.
pub fn entries(
    config: &Config,
    observation: &Observation,
) -> (Vec<Object>, Vec<(String, Kind, String)>) {
    // Live objects are the configuration's by id, whatever address they were made at.
    let observation = &*crate::plan::identity::readdress(config, observation);
    let declared = |address: &str, region: &str| {
        let base = address
            .strip_suffix(&format!("[\"{region}\"]"))
            .unwrap_or(address);
        if let Some(name) = base.strip_prefix("key_pair.") {
            return config.key_pairs.contains_key(name);
        }
        if let Some(name) = base.strip_prefix("ami_set.") {
            return config.ami_sets.contains_key(name);
        }
        // An instance type's own template: `worker_type.NAME.instance_type["TYPE"]["REGION"]`.
        crate::plan::build::owner_address(base)
            .strip_prefix("worker_type.")
            .is_some_and(|name| config.worker_types.contains_key(name))
    };
    let mut out = Vec::new();
    let mut incomplete = Vec::new();
    for (region, observed) in &observation.regions {
        // The address an object's `fleetform:address` tag gives, if declared.
        let address_of = |tagged: Option<&str>| match tagged {
            Some(address) if declared(address, region) => address.to_string(),
            _ => "(orphan)".to_string(),
        };
        for (kind, cause) in observed.incomplete() {
            incomplete.push((region.clone(), kind, cause.to_string()));
        }
        for k in observed.key_pairs.complete().into_iter().flatten() {
            out.push(Object {
                address: address_of(k.tags.get(tags::ADDRESS).map(|t| t.as_str())),
                region: region.clone(),
                kind: ObjectKind::KeyPair,
                id: k.id.clone(),
                name: Some(k.name.clone()),
                detail: k.name.clone(),
                managed: true,
                default_version: None,
            });
        }
        for image in observed.images.complete().into_iter().flatten() {
            let managed = image.tags.get(tags::FLEET) == Some(&config.fleet.name);
            let address = if managed {
                address_of(image.tags.get(tags::ADDRESS).map(|t| t.as_str()))
            } else {
                config
                    .ami_sets
                    .values()
                    .find(|set| set.images.get(region) == Some(&image.id))
                    .map(|set| crate::model::address::ami_set(&set.name))
                    .unwrap_or_else(|| "(orphan)".to_string())
            };
            out.push(Object {
                address,
                region: region.clone(),
                kind: ObjectKind::Image,
                id: image.id.clone(),
                name: Some(image.name.clone()),
                detail: format!(
                    "{} {} {} {}{}",
                    image.state,
                    image.virtualization,
                    image.architecture,
                    image.name,
                    if managed {
                        ""
                    } else {
                        " (named by the config, not managed)"
                    }
                ),
                managed,
                default_version: None,
            });
        }
        for t in observed.launch_templates.complete().into_iter().flatten() {
            out.push(Object {
                address: address_of(t.tags.get(tags::ADDRESS).map(|t| t.as_str())),
                region: region.clone(),
                kind: ObjectKind::LaunchTemplate,
                id: t.id.clone(),
                name: Some(t.name.clone()),
                detail: format!(
                    "{} default v{} of {}{}",
                    t.name,
                    t.default_version,
                    t.latest_version,
                    t.default_data
                        .as_ref()
                        .and_then(|d| d.image_id.as_ref())
                        .map(|i| format!(", image {i}"))
                        .unwrap_or_default()
                ),
                managed: true,
                default_version: Some(t.default_version),
            });
        }
        for g in observed
            .auto_scaling_groups
            .complete()
            .into_iter()
            .flatten()
        {
            out.push(Object {
                address: address_of(g.tags.get(tags::ADDRESS).map(|t| t.as_str())),
                region: region.clone(),
                kind: ObjectKind::AutoScalingGroup,
                // A group's name is its identity in a region.
                id: g.spec.name.clone(),
                name: Some(g.spec.name.clone()),
                // Its settings only: the desired capacity and the members
                // are the provisioner's to move (each member is listed as an
                // instance), not drift of the group.
                detail: format!(
                    "{} min {} max {}",
                    g.spec.name, g.spec.min_size, g.spec.max_size
                ),
                managed: true,
                default_version: None,
            });
        }
        for i in observed.instances.complete().into_iter().flatten() {
            out.push(Object {
                address: address_of(i.tags.get(tags::ADDRESS).map(|t| t.as_str())),
                region: region.clone(),
                kind: ObjectKind::Instance,
                id: i.id.clone(),
                name: None,
                detail: format!("{} {}", i.state, i.instance_type),
                managed: true,
                default_version: None,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.address, &a.region, a.kind.as_str(), &a.id).cmp(&(
            &b.address,
            &b.region,
            b.kind.as_str(),
            &b.id,
        ))
    });
    (out, incomplete)
}

/// `found`, plus what `before` recorded for every (region, kind) that could
/// not be read now (`unread`, as [`entries`] returns it). A failed read says
/// nothing about its objects, so they keep their last record rather than
/// vanish from state (the next plan would offer to adopt them all again).
pub fn carry_over(
    mut found: Vec<Object>,
    unread: &[(String, Kind, String)],
    before: &[Object],
) -> Vec<Object> {
    for (region, kind, _) in unread {
        let Some(kind) = ObjectKind::of(*kind) else {
            continue;
        };
        found.extend(
            before
                .iter()
                .filter(|e| &e.region == region && e.kind == kind)
                .cloned(),
        );
    }
    found.sort_by(|a, b| {
        (&a.address, &a.region, a.kind.as_str(), &a.id).cmp(&(
            &b.address,
            &b.region,
            b.kind.as_str(),
            &b.id,
        ))
    });
    found.dedup_by(|a, b| (&a.region, &a.kind, &a.id) == (&b.region, &b.kind, &b.id));
    found
}

/// How one object differs from what the last version recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    /// `appeared`, `disappeared` or `changed`.
    pub change: &'static str,
    /// The object as it is now (or, when it disappeared, as it was).
    pub entry: Object,
    /// What the recorded version said, for `changed`.
    pub was: Option<String>,
}

/// Managed objects that appeared, disappeared or changed since `recorded`
/// (the objects a version recorded after its apply), compared by cloud id.
pub fn drift(recorded: &[Object], now: &[Object]) -> Vec<Drift> {
    let managed = |entries: &[Object]| -> BTreeMap<String, Object> {
        entries
            .iter()
            .filter(|e| e.managed)
            .map(|e| (e.id.clone(), e.clone()))
            .collect()
    };
    let (before, after) = (managed(recorded), managed(now));
    let mut out = Vec::new();
    for (id, entry) in &after {
        match before.get(id) {
            None => out.push(Drift {
                change: "appeared",
                entry: entry.clone(),
                was: None,
            }),
            Some(old) if old.detail != entry.detail => out.push(Drift {
                change: "changed",
                entry: entry.clone(),
                was: Some(old.detail.clone()),
            }),
            Some(_) => {}
        }
    }
    for (id, entry) in &before {
        if !after.contains_key(id) {
            out.push(Drift {
                change: "disappeared",
                entry: entry.clone(),
                was: None,
            });
        }
    }
    out.sort_by(|a, b| {
        (&a.entry.address, &a.entry.region, &a.entry.id).cmp(&(
            &b.entry.address,
            &b.entry.region,
            &b.entry.id,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(region: &str, kind: ObjectKind, id: &str) -> Object {
        Object {
            address: format!("worker_type.w[\"{region}\"]"),
            region: region.into(),
            kind,
            id: id.into(),
            name: None,
            detail: String::new(),
            managed: true,
            default_version: None,
        }
    }

    #[test]
    fn an_unread_kind_keeps_its_last_record_and_nothing_else_is_carried() {
        let before = vec![
            entry("us-east-1", ObjectKind::LaunchTemplate, "lt-old"),
            entry("us-east-1", ObjectKind::Instance, "i-gone"),
            entry("us-west-2", ObjectKind::LaunchTemplate, "lt-west"),
        ];
        let found = vec![
            entry("us-east-1", ObjectKind::Instance, "i-new"),
            entry("us-west-2", ObjectKind::LaunchTemplate, "lt-west"),
        ];
        let unread = vec![(
            "us-east-1".to_string(),
            Kind::LaunchTemplates,
            "timed out".to_string(),
        )];
        let ids: Vec<String> = carry_over(found, &unread, &before)
            .into_iter()
            .map(|e| e.id)
            .collect();
        // lt-old is carried over; i-gone was read (and is gone); lt-west once.
        assert_eq!(ids, ["i-new", "lt-old", "lt-west"]);
    }

    #[test]
    fn objects_recorded_before_names_were_still_decode_and_name_themselves() {
        let old = serde_json::json!([
            {"address": "key_pair.k", "region": "us-east-1", "kind": "key_pair", "id": "key-1",
             "detail": "f.k", "managed": true},
            {"address": "worker_type.w[\"us-east-1\"]", "region": "us-east-1",
             "kind": "launch_template", "id": "lt-1", "detail": "f.w default v2 of 3, image ami-1",
             "managed": true},
            {"address": "worker_type.w[\"us-east-1\"]", "region": "us-east-1",
             "kind": "instance", "id": "i-1", "detail": "running m5.large", "managed": true}
        ]);
        let objects: Vec<Object> = serde_json::from_value(old).expect("decodes");
        let names: Vec<Option<&str>> = objects.iter().map(Object::name).collect();
        assert_eq!(names, [Some("f.k"), Some("f.w"), None]);
        assert_eq!(objects[1].kind, ObjectKind::LaunchTemplate);
        let unknown = serde_json::json!([{"address": "a", "region": "r", "kind": "volume",
            "id": "v", "detail": "", "managed": true}]);
        assert!(serde_json::from_value::<Vec<Object>>(unknown).is_err());
    }
}

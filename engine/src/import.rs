//! `fleetform import`: the configuration of a fleet made by hand.
//!
//! [`write`] turns what discovery found ([`DiscoveredRegion`] per region)
//! into HCL files: a `worker_type` per launch template name (the regions it
//! is found in become its `regions`; templates of one name that launch
//! different things in different regions become one worker type per
//! region), an `ami_set` naming its images per region, the `key_pair`s the
//! templates use (their public keys as EC2 holds them), a `network` from the
//! subnets and security groups, user data as files under `userdata/`, and
//! a `fleet` block when the directory has none. The document is built with
//! hcl-rs and formatted by [`crate::fmt`], so it is `fmt` clean. What a
//! template sets that the language cannot say is returned as a [`Note`]
//! with its reason, never dropped silently.
//!
//! [`adopt_names`] is what a plan reads for adoption: the EC2 names of the
//! configuration's launch templates and key pairs.

use crate::model::Config;
use crate::provider::{
    AdoptNames, DiscoveredRegion, DiscoveredTemplate, LaunchTemplateData, ObservedImage,
};
use hcl::expr::{Expression, FuncCall, Object, ObjectKey, Traversal, Variable};
use hcl::{Block, Body};
use std::collections::{BTreeMap, BTreeSet};

/// Per region, the EC2 names of the launch templates of the worker types
/// of that region and of every key pair, for the plan to read whatever
/// their tags ([`crate::provider::ObserveRequest::adoptable`]).
pub fn adopt_names(config: &Config) -> BTreeMap<String, AdoptNames> {
    let mut out: BTreeMap<String, AdoptNames> = BTreeMap::new();
    for wt in config.worker_types.values() {
        for region in &wt.regions {
            let names = out.entry(region.clone()).or_default();
            names
                .launch_templates
                .push(wt.ec2_name_in(&config.fleet.name));
            if let Some(key) = wt.key_pair.as_deref().and_then(|k| config.key_pairs.get(k)) {
                let name = key.ec2_name_in(&config.fleet.name);
                if !names.key_pairs.contains(&name) {
                    names.key_pairs.push(name);
                }
            }
        }
    }
    for names in out.values_mut() {
        names.launch_templates.sort();
        names.launch_templates.dedup();
        names.key_pairs.sort();
    }
    out
}

/// What to write the configuration for.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The fleet's name (EC2 names `<fleet>.<id>` need no `ec2_name`).
    pub fleet: String,
    /// The regions read, in the order given.
    pub regions: Vec<String>,
    /// Whether to write a `fleet` block (the directory has none yet).
    pub write_fleet: bool,
    /// Labels already declared in the directory, per kind
    /// (`worker_type`, `ami_set`, `key_pair`, `network`), never reused.
    pub taken: BTreeSet<(String, String)>,
}

/// Something a template sets that the written configuration does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The object: `launch template NAME (lt-..., REGION)`.
    pub object: String,
    /// The setting, with its value where it is not a secret.
    pub setting: String,
    /// Why it is not written, and what the plan will do about it.
    pub reason: String,
}

/// The files of an import, relative to the configuration directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Path (`import.hcl`, `userdata/NAME.sh`) -> contents, in path order.
    pub files: BTreeMap<String, String>,
    /// What could not be expressed.
    pub notes: Vec<Note>,
    /// Worker types written, by label, with the template names they adopt.
    pub worker_types: Vec<(String, String)>,
}

/// A name usable as a block label: letters, digits, `-` and `_`, starting
/// with a letter; other characters become `-`.
fn label_of(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !label.starts_with(|c: char| c.is_ascii_alphabetic()) {
        label.insert_str(0, "t-");
    }
    // Labels are at most 64 characters; leave room for a `-N` suffix.
    label.truncate(60);
    label
}

/// Whether `name` can be a block label (a fleet's name included): at most
/// 64 letters, digits, `-` and `_`, starting with a letter.
pub fn valid_label(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn unique(kind: &str, wanted: String, taken: &mut BTreeSet<(String, String)>) -> String {
    let mut label = wanted.clone();
    let mut n = 2;
    while !taken.insert((kind.to_string(), label.clone())) {
        label = format!("{wanted}-{n}");
        n += 1;
    }
    label
}

fn string(s: &str) -> Expression {
    Expression::String(s.to_string())
}

fn reference(kind: &str, label: &str) -> Expression {
    Expression::from(
        Traversal::builder(Variable::unchecked(kind))
            .attr(label)
            .build(),
    )
}

fn string_map<'a>(pairs: impl IntoIterator<Item = (&'a str, Expression)>) -> Expression {
    let mut object: Object<ObjectKey, Expression> = Object::new();
    for (k, v) in pairs {
        object.insert(ObjectKey::Expression(string(k)), v);
    }
    Expression::Object(object)
}

fn string_list<'a>(items: impl IntoIterator<Item = &'a String>) -> Expression {
    Expression::Array(items.into_iter().map(|s| string(s)).collect())
}

/// What two regions' templates of one name must share to be one worker type.
fn shape(data: &LaunchTemplateData) -> LaunchTemplateData {
    LaunchTemplateData {
        image_id: None,
        security_group_ids: Vec::new(),
        ..data.clone()
    }
}

fn is_fleetform_or_aws(key: &str) -> bool {
    key.starts_with("aws:") || key.starts_with("fleetform:")
}

/// Writes the configuration of `found` (region -> what discovery read).
pub fn write(found: &BTreeMap<String, DiscoveredRegion>, options: &ImportOptions) -> Written {
    let mut taken = options.taken.clone();
    let mut notes = Vec::new();
    let mut files = BTreeMap::new();
    let mut body = Body::builder();
    if options.write_fleet {
        body = body.add_block(
            Block::builder("fleet")
                .add_label(options.fleet.as_str())
                .add_attribute(("regions", string_list(&options.regions)))
                .build(),
        );
    }
    // Templates by name, in region order.
    let mut by_name: BTreeMap<&str, Vec<(&str, &DiscoveredTemplate)>> = BTreeMap::new();
    for region in &options.regions {
        let Some(r) = found.get(region) else { continue };
        for t in &r.templates {
            by_name
                .entry(t.template.name.as_str())
                .or_default()
                .push((region.as_str(), t));
        }
    }
    // Key pairs: one block per EC2 name, written once.
    let mut key_labels: BTreeMap<String, String> = BTreeMap::new();
    let mut key_blocks: Vec<Block> = Vec::new();
    let mut wt_blocks: Vec<Block> = Vec::new();
    let mut other_blocks: Vec<Block> = Vec::new();
    let mut worker_types = Vec::new();
    for (name, all) in by_name {
        // Group the regions that launch the same thing.
        let mut groups: Vec<Vec<(&str, &DiscoveredTemplate)>> = Vec::new();
        for (region, t) in all {
            let data = t.template.default_data.clone().unwrap_or_default();
            match groups.iter_mut().find(|g| {
                shape(&g[0].1.template.default_data.clone().unwrap_or_default()) == shape(&data)
            }) {
                Some(g) => g.push((region, t)),
                None => groups.push(vec![(region, t)]),
            }
        }
        let split = groups.len() > 1;
        let base = name
            .strip_prefix(&format!("{}.", options.fleet))
            .unwrap_or(name);
        for group in groups {
            let wanted = if split {
                format!("{}-{}", label_of(base), group[0].0)
            } else {
                label_of(base)
            };
            let label = unique("worker_type", wanted, &mut taken);
            let ami_label = unique("ami_set", label.clone(), &mut taken);
            worker_types.push((label.clone(), name.to_string()));
            let blocks = worker_type(
                name,
                &label,
                &ami_label,
                &group,
                found,
                options,
                &mut taken,
                &mut key_labels,
                &mut key_blocks,
                &mut files,
                &mut notes,
            );
            wt_blocks.push(blocks.0);
            other_blocks.extend(blocks.1);
        }
    }
    for b in key_blocks.into_iter().chain(other_blocks).chain(wt_blocks) {
        body = body.add_block(b);
    }
    let text = hcl::format::to_string(&body.build()).unwrap_or_default();
    let text = crate::fmt::format_source(&text).unwrap_or(text);
    files.insert("import.hcl".to_string(), text);
    Written {
        files,
        notes,
        worker_types,
    }
}

#[allow(clippy::too_many_arguments)]
fn worker_type(
    name: &str,
    label: &str,
    ami_label: &str,
    group: &[(&str, &DiscoveredTemplate)],
    found: &BTreeMap<String, DiscoveredRegion>,
    options: &ImportOptions,
    taken: &mut BTreeSet<(String, String)>,
    key_labels: &mut BTreeMap<String, String>,
    key_blocks: &mut Vec<Block>,
    files: &mut BTreeMap<String, String>,
    notes: &mut Vec<Note>,
) -> (Block, Vec<Block>) {
    let mut others = Vec::new();
    let (first_region, first) = group[0];
    let data = first.template.default_data.clone().unwrap_or_default();
    let object = |region: &str, t: &DiscoveredTemplate| {
        format!(
            "launch template {} ({}, {region})",
            t.template.name, t.template.id
        )
    };
    let mut note = |region: &str, t: &DiscoveredTemplate, setting: String, reason: &str| {
        notes.push(Note {
            object: object(region, t),
            setting,
            reason: reason.to_string(),
        });
    };
    for (region, t) in group {
        for (setting, value) in &t.unexpressed {
            note(
                region,
                t,
                format!("{setting} = {value}"),
                "fleetform has no attribute for it; a tag-only version keeps it, a version fleetform writes (the plan shows one when the template differs from its configuration, or after a change) does not",
            );
        }
        if t.template.default_data.is_none() {
            note(
                region,
                t,
                "default version".into(),
                "its default version could not be read; the worker type is written without its settings",
            );
        }
    }
    let regions: Vec<String> = group.iter().map(|(r, _)| r.to_string()).collect();
    // Attributes first, then the nested blocks, in the order the README shows them.
    let mut attrs: Vec<hcl::Attribute> = Vec::new();
    let mut blocks: Vec<Block> = Vec::new();
    if name != format!("{}.{label}", options.fleet) {
        attrs.push(("ec2_name", string(name)).into());
    }
    attrs.push(("ami_set", reference("ami_set", ami_label)).into());
    attrs.push(("regions", string_list(&regions)).into());

    // The AMI set: the image of each region.
    let mut images = Vec::new();
    let mut image_of: Option<&ObservedImage> = None;
    for (region, t) in group {
        let Some(id) = t
            .template
            .default_data
            .as_ref()
            .and_then(|d| d.image_id.clone())
        else {
            note(region, t, "ImageId".into(), "the template names no image; the AMI set has none for this region, so validate reports it (FF002) until one is added");
            continue;
        };
        let observed = found
            .get(*region)
            .and_then(|r| r.images.iter().find(|i| i.id == id));
        if observed.is_none() {
            note(region, t, format!("ImageId = {id}"), "the image could not be read (deregistered, or not shared with this account); it is written as named and the plan checks it (FF002)");
        }
        image_of = image_of.or(observed);
        images.push((region.to_string(), id));
    }
    let mut ami = Block::builder("ami_set").add_label(ami_label);
    if let Some(image) = image_of {
        let virtualization = if image.virtualization == "paravirtual" {
            "pv"
        } else {
            "hvm"
        };
        let architecture = if image.architecture == "arm64" {
            "arm64"
        } else {
            "x86_64"
        };
        ami = ami
            .add_attribute(("virtualization", string(virtualization)))
            .add_attribute(("architecture", string(architecture)));
    }
    ami = ami.add_attribute((
        "images",
        string_map(images.iter().map(|(r, id)| (r.as_str(), string(id)))),
    ));
    others.push(ami.build());

    // Key pair.
    if let Some(key_name) = &data.key_name {
        let held = found
            .get(first_region)
            .and_then(|r| r.key_pairs.iter().find(|k| &k.key_pair.name == key_name));
        match held.and_then(|k| k.public_key.as_deref()) {
            Some(public_key) => {
                for (region, t) in &group[1..] {
                    let other = found.get(*region).and_then(|r| {
                        r.key_pairs
                            .iter()
                            .find(|k| &k.key_pair.name == key_name)
                            .and_then(|k| k.public_key.as_deref())
                    });
                    if other.is_some_and(|o| {
                        !crate::plan::import::same_key(o, public_key)
                    }) {
                        note(region, t, format!("KeyName = {key_name}"), "the key pair of this name holds another public key here than in the first region; the key_pair is written with the first region's, so the plan replaces this region's key pair (FF008 lists who uses it)");
                    }
                }
                let key_label = match key_labels.get(key_name) {
                    Some(l) => l.clone(),
                    None => {
                        let base = key_name
                            .strip_prefix(&format!("{}.", options.fleet))
                            .unwrap_or(key_name);
                        let l = unique("key_pair", label_of(base), taken);
                        let mut kb = Block::builder("key_pair").add_label(l.as_str());
                        if *key_name != format!("{}.{l}", options.fleet) {
                            kb = kb.add_attribute(("ec2_name", string(key_name)));
                        }
                        kb = kb.add_attribute(("public_key", string(public_key.trim())));
                        key_blocks.push(kb.build());
                        key_labels.insert(key_name.clone(), l.clone());
                        l
                    }
                };
                attrs.push(("key_pair", reference("key_pair", &key_label)).into());
            }
            None => note(
                first_region,
                first,
                format!("KeyName = {key_name}"),
                "EC2 did not return the key pair's public key (it is missing, or of a kind EC2 keeps no public key for), so no key_pair is written; the plan's first version launches without a key",
            ),
        }
    }

    // Instance types: the template's, then those its instances run.
    let mut types: Vec<String> = data.instance_type.iter().cloned().collect();
    let mut running: BTreeMap<&str, u32> = BTreeMap::new();
    for (region, t) in group {
        let count = found
            .get(*region)
            .map(|r| {
                r.instances
                    .iter()
                    .filter(|i| {
                        i.launch_template
                            .as_ref()
                            .is_some_and(|(id, _)| id == &t.template.id)
                    })
                    .inspect(|i| {
                        if !types.contains(&i.instance_type) && !i.instance_type.is_empty() {
                            types.push(i.instance_type.clone());
                        }
                    })
                    .count()
            })
            .unwrap_or(0);
        running.insert(region, u32::try_from(count).unwrap_or(u32::MAX));
    }
    if let [_, rest @ ..] = types.as_mut_slice() {
        rest.sort();
    }
    if let (Some(own), true) = (&data.instance_type, types.len() > 1) {
        note(
            first_region,
            first,
            format!("InstanceType = {own}"),
            "its instances run other types too, so the worker type declares them all, and a template of a worker type with several instance types names none (each launch names its type): the plan writes fleetform's version without it instead of a tag-only one",
        );
    }
    if types.is_empty() {
        note(first_region, first, "InstanceType".into(), "neither the template nor a running instance names an instance type; add an instance_type block before planning");
    }
    for t in &types {
        blocks.push(
            Block::builder("instance_type")
                .add_label(t.as_str())
                .add_attribute(("capacity", 1))
                .build(),
        );
    }
    let most = running.values().copied().max().unwrap_or(0).max(1);
    blocks.push(
        Block::builder("capacity")
            .add_attribute(("min", 0))
            .add_attribute(("max", most))
            .build(),
    );
    if data.market.as_deref() == Some("spot") {
        attrs.push(("market", string("spot")).into());
        if let Some(price) = &data.spot_max_price {
            blocks.push(
                Block::builder("spot")
                    .add_attribute((
                        "max_price",
                        price
                            .parse::<f64>()
                            .map_or_else(|_| string(price), Expression::from),
                    ))
                    .build(),
            );
        }
    }
    if let Some(user_data) = &data.user_data {
        let path = format!("userdata/{label}.sh");
        files.insert(path.clone(), user_data.clone());
        attrs.push(
            (
                "user_data",
                Expression::from(FuncCall::builder("file").arg(path.as_str()).build()),
            )
                .into(),
        );
    }
    if let Some(profile) = &data.iam_instance_profile {
        attrs.push(("iam_instance_profile", string(profile)).into());
    }
    let tags: BTreeMap<&str, &str> = data
        .instance_tags
        .iter()
        .filter(|(k, _)| !is_fleetform_or_aws(k))
        .map(|(k, v)| (k, v.as_str()))
        .collect();
    if !tags.is_empty() {
        attrs.push(
            (
                "tags",
                string_map(tags.iter().map(|(k, v)| (*k, string(v)))),
            )
                .into(),
        );
    }
    for (k, _) in data
        .volume_tags
        .iter()
        .filter(|(k, _)| !is_fleetform_or_aws(k))
    {
        note(first_region, first, format!("volume tag {k}"), "fleetform tags volumes with its own tags only; the plan's first version drops this tag from new volumes");
    }
    // Volumes.
    for device in &data.block_devices {
        if device.size_gb == 0 || model_volume_type(&device.volume_type).is_none() {
            note(first_region, first, format!("BlockDeviceMapping {} ({})", device.device_name, if device.volume_type.is_empty() { "EBS without size or type" } else { device.volume_type.as_str() }), "only EBS volumes with a size and type can be declared; a tag-only version keeps the mapping, a version fleetform writes does not");
            continue;
        }
        let mut v = Block::builder("volume")
            .add_label(device.device_name.as_str())
            .add_attribute(("size_gb", device.size_gb))
            .add_attribute(("type", string(&device.volume_type)));
        if let Some(iops) = device.iops {
            v = v.add_attribute(("iops", iops));
        }
        if let Some(throughput) = device.throughput {
            v = v.add_attribute(("throughput", throughput));
        }
        if let Some(encrypted) = device.encrypted {
            v = v.add_attribute(("encrypted", encrypted));
        }
        blocks.push(v.build());
    }
    match &data.metadata {
        Some(m) if m.http_tokens == "disabled" => note(first_region, first, "MetadataOptions.HttpEndpoint = disabled".into(), "fleetform always enables the metadata endpoint; the plan's first version enables it (IMDSv2 only)"),
        Some(m) => {
            blocks.push(
                Block::builder("metadata")
                    .add_attribute(("http_tokens", string(&m.http_tokens)))
                    .add_attribute(("hop_limit", m.hop_limit))
                    .build(),
            );
        }
        None => {
            note(first_region, first, "MetadataOptions (unset: EC2's defaults, IMDSv1 allowed)".into(), "fleetform always sets metadata options; written as http_tokens = \"optional\", hop_limit = 1 (what EC2 does now), which the plan writes in fleetform's own version instead of a tag-only one");
            blocks.push(
                Block::builder("metadata")
                    .add_attribute(("http_tokens", string("optional")))
                    .add_attribute(("hop_limit", 1))
                    .build(),
            );
        }
    }

    // Network: the groups of each region, the subnets of the template and its instances.
    let mut subnets: BTreeMap<String, String> = BTreeMap::new();
    let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (region, t) in group {
        let Some(r) = found.get(*region) else {
            continue;
        };
        let d = t.template.default_data.clone().unwrap_or_default();
        if !d.security_group_ids.is_empty() {
            groups.insert(region, d.security_group_ids.clone());
        }
        let named: BTreeSet<&str> = t
            .subnet_id
            .iter()
            .map(String::as_str)
            .chain(
                r.instances
                    .iter()
                    .filter(|i| {
                        i.launch_template
                            .as_ref()
                            .is_some_and(|(id, _)| id == &t.template.id)
                    })
                    .filter_map(|i| i.subnet_id.as_deref()),
            )
            .collect();
        for id in named {
            match r.subnets.iter().find(|s| s.id == id) {
                Some(s) => {
                    subnets
                        .entry(s.zone.clone())
                        .or_insert_with(|| s.id.clone());
                }
                None => note(
                    region,
                    t,
                    format!("subnet {id}"),
                    "the subnet could not be read, so it is not part of the network",
                ),
            }
        }
    }
    let covered = group.iter().all(|(region, _)| {
        groups.contains_key(region)
            && subnets
                .keys()
                .any(|z| crate::model::zone_in_region(z, region))
    });
    if !groups.is_empty() || data.assign_public_ip.is_some() {
        if covered {
            let net_label = unique("network", label.to_string(), taken);
            let mut n = Block::builder("network")
                .add_label(net_label.as_str())
                .add_attribute((
                    "subnets",
                    string_map(subnets.iter().map(|(z, s)| (z.as_str(), string(s)))),
                ))
                .add_attribute((
                    "security_groups",
                    string_map(groups.iter().map(|(r, g)| (*r, string_list(g)))),
                ));
            if let Some(public) = data.assign_public_ip {
                n = n.add_attribute(("assign_public_ip", public));
            }
            others.push(n.build());
            attrs.push(("network", reference("network", &net_label)).into());
        } else {
            note(first_region, first, "security groups / network interface".into(), "a network needs a subnet and security groups in every region of the worker type, and no subnet is known for one (the template names none and no instance runs); add a network block, else the plan's first version launches into EC2's defaults");
        }
    }
    let wt = Block::builder("worker_type")
        .add_label(label)
        .add_attributes(attrs)
        .add_blocks(blocks)
        .build();
    (wt, others)
}

fn model_volume_type(name: &str) -> Option<crate::model::VolumeType> {
    crate::model::VolumeType::parse(name)
}

#[cfg(test)]
mod tests {
    use super::{label_of, valid_label};

    #[test]
    fn labels_are_valid_names_whatever_the_ec2_name() {
        for name in [
            "ci/linux large",
            "1st",
            "a".repeat(128).as_str(),
            "ok-name_1",
        ] {
            let label = label_of(name);
            assert!(valid_label(&label), "{name} -> {label}");
        }
        assert_eq!(label_of("ci/linux"), "ci-linux");
        assert!(!valid_label("1st") && !valid_label("a b") && !valid_label(""));
    }
}

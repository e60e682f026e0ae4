//! The image lifecycle of AMI sets: which image each region uses (explicit,
//! looked up, or copied from a source), which copies exist, what recorded
//! versions claim ([`VersionImages`]), and what keeps a tagged image from
//! being pruned: being younger than the set's `retain`, held by the
//! configuration, a copy source, a launch template, or a state version
//! inside `fleet.rollback_window` (FF001), or being the newest of its set in
//! a region. Time decides, never a count: how many images were made since
//! says nothing about whether a rollback still needs one. The plan's copy
//! and prune actions are built from these in `plan::image_actions`; this
//! module knows nothing of plans.

use crate::model::{AmiSet, Config};
use crate::provider::{tags, ObservedImage, RegionObservation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A recorded version's claim on images: its number, time, and region -> AMI ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionImages {
    /// Version number.
    pub number: u64,
    /// When it was recorded, seconds since the epoch.
    pub time: i64,
    /// Region -> AMI ids its configuration referenced.
    pub images: BTreeMap<String, Vec<String>>,
}

/// How the image of a region was chosen.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ImageVia {
    /// Named in the set's `images` map.
    Images,
    /// The newest available match of the set's `lookup`.
    Lookup,
    /// The set's `source` image, in its own region.
    Source,
    /// A copy of the source image made by fleetform (or to be made by this apply).
    Copy,
    /// Fixed by the version a rollback returns to.
    Pinned,
}

/// The image one AMI set provides in one region, as the plan uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedImage {
    /// AMI set name.
    pub ami_set: String,
    /// Region.
    pub region: String,
    /// How it was chosen.
    pub via: ImageVia,
    /// AMI id; `None` while a copy is still to be made, or when nothing matched.
    pub image_id: Option<String>,
    /// Image name, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Creation date as EC2 reports it, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// `available`, `pending`, ... when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// For copies: the source image id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<String>,
}

/// Whether `name` matches `pattern`, where `*` is any run of characters and
/// `?` any one character (the wildcards of EC2's `name` filter).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Seconds since the epoch of an EC2 timestamp (`2026-11-23T20:16:53.000Z`).
pub fn parse_time(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// The regions an AMI set must provide an image in: where worker types using it
/// run, plus the source region and the copy targets, all within the fleet.
pub fn regions_of(config: &Config, set: &AmiSet) -> BTreeSet<String> {
    // Borrowed first: thousands of worker types name the same few regions.
    let named: BTreeSet<&str> = config
        .worker_types
        .values()
        .filter(|wt| wt.ami_set == set.name)
        .flat_map(|wt| wt.regions.iter().map(String::as_str))
        .collect();
    let mut regions: BTreeSet<String> = named.into_iter().map(str::to_string).collect();
    if let Some(source) = &set.source {
        regions.insert(source.region.clone());
        regions.extend(source.copy_to.iter().cloned());
    }
    regions.retain(|r| config.fleet.regions.contains(r));
    regions
}

/// Copies of `source_image` made for `set` that are usable or on their way
/// (`available` before `pending`, then newest first).
pub fn copies_of<'a>(
    config: &Config,
    set: &str,
    source_image: &str,
    found: &'a [ObservedImage],
) -> Vec<&'a ObservedImage> {
    let mut copies: Vec<&ObservedImage> = found
        .iter()
        .filter(|i| {
            i.tags.get(tags::FLEET) == Some(&config.fleet.name)
                && i.tags.get(tags::AMI_SET).map(String::as_str) == Some(set)
                && i.tags.get(tags::SOURCE_IMAGE).map(String::as_str) == Some(source_image)
                && (i.state == "available" || i.state == "pending")
        })
        .collect();
    copies.sort_by(|a, b| {
        (b.state == "available", &b.creation_date).cmp(&(a.state == "available", &a.creation_date))
    });
    copies
}

/// Chooses, for every AMI set and region it must serve, the image to use.
/// `pins` (set -> region -> AMI id) override everything: a rollback returns
/// to exactly the images its version used. Regions whose images could not be
/// read get `image_id: None` unless the id is known without reading.
pub fn resolve(
    config: &Config,
    observation: &crate::provider::Observation,
    pins: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<PlannedImage> {
    let mut out = Vec::new();
    for set in config.ami_sets.values() {
        for region in regions_of(config, set) {
            let found = observation
                .regions
                .get(&region)
                .and_then(|o| o.images.complete())
                .map(Vec::as_slice);
            let mut planned = PlannedImage {
                ami_set: set.name.clone(),
                region: region.clone(),
                via: ImageVia::Images,
                image_id: None,
                name: None,
                creation_date: None,
                state: None,
                copy_of: None,
            };
            let pinned = pins.get(&set.name).and_then(|p| p.get(&region));
            if let Some(id) = pinned {
                planned.via = ImageVia::Pinned;
                planned.image_id = Some(id.clone());
            } else if let Some(id) = set.images.get(&region) {
                planned.image_id = Some(id.clone());
            } else if let Some(source) = &set.source {
                if source.region == region {
                    planned.via = ImageVia::Source;
                    planned.image_id = Some(source.image.clone());
                } else {
                    planned.via = ImageVia::Copy;
                    planned.copy_of = Some(source.image.clone());
                    planned.image_id = found
                        .and_then(|f| {
                            copies_of(config, &set.name, &source.image, f)
                                .first()
                                .copied()
                        })
                        .map(|i| i.id.clone());
                }
            } else if let Some(lookup) = &set.lookup {
                planned.via = ImageVia::Lookup;
                let accounts: Vec<&String> = lookup
                    .owners
                    .iter()
                    .filter(|o| o.len() == 12 && o.chars().all(|c| c.is_ascii_digit()))
                    .collect();
                // Only account ids can be checked here; aliases (`self`, `amazon`)
                // were applied by EC2 when it answered the lookup.
                let owner_ok = |i: &ObservedImage| {
                    accounts.len() < lookup.owners.len() || accounts.contains(&&i.owner)
                };
                planned.image_id = found
                    .into_iter()
                    .flatten()
                    .filter(|i| {
                        i.state == "available" && glob_match(&lookup.name, &i.name) && owner_ok(i)
                    })
                    .max_by(|a, b| (&a.creation_date, &a.id).cmp(&(&b.creation_date, &b.id)))
                    .map(|i| i.id.clone());
            }
            if let (Some(id), Some(found)) = (&planned.image_id, found) {
                if let Some(image) = found.iter().find(|i| &i.id == id) {
                    planned.name = Some(image.name.clone());
                    planned.creation_date = Some(image.creation_date.clone());
                    planned.state = Some(image.state.clone());
                }
            }
            out.push(planned);
        }
    }
    out
}

/// The planned image of `set` in `region`, if any.
pub fn planned<'a>(
    images: &'a [PlannedImage],
    set: &str,
    region: &str,
) -> Option<&'a PlannedImage> {
    images
        .iter()
        .find(|p| p.ami_set == set && p.region == region)
}

/// EC2 name of a copy: the set and the source id, so one source is copied once per region.
pub fn copy_name(set: &str, source_image: &str) -> String {
    format!("{set}-{source_image}")
}

/// Everything that holds an image in a region: worker types through the
/// planned images, copy sources, live launch templates, and recent versions.
struct References<'a> {
    worker_types: Vec<&'a str>,
    other: Vec<String>,
}

fn references<'a>(
    config: &'a Config,
    region: &str,
    image: &str,
    images: &[PlannedImage],
    observed: &RegionObservation,
) -> References<'a> {
    let worker_types = config
        .worker_types
        .values()
        .filter(|wt| wt.regions.iter().any(|r| r == region))
        .filter(|wt| {
            planned(images, &wt.ami_set, region).and_then(|p| p.image_id.as_deref()) == Some(image)
        })
        .map(|wt| wt.name.as_str())
        .collect();
    let mut other = Vec::new();
    for p in images.iter().filter(|p| p.region == region) {
        if p.image_id.as_deref() == Some(image) {
            other.push(format!("ami_set \"{}\"", p.ami_set));
        }
    }
    for set in config.ami_sets.values() {
        if set
            .source
            .as_ref()
            .is_some_and(|s| s.region == region && s.image == image)
        {
            other.push(format!("the source of ami_set \"{}\"", set.name));
        }
    }
    for t in observed.launch_templates.complete().into_iter().flatten() {
        if t.default_data.as_ref().and_then(|d| d.image_id.as_deref()) == Some(image) {
            other.push(format!("launch template {}", t.name));
        }
    }
    other.sort();
    other.dedup();
    References {
        worker_types,
        other,
    }
}

/// When an image of `set` becomes prunable, and what holds it until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Prunability {
    /// Unix seconds from which age no longer protects it (creation + retain); `None`: no `retain`.
    pub past_retain_at: Option<i64>,
    /// True when it is the newest image of its set in its region (never pruned).
    pub newest: bool,
    /// Worker types whose configured image it is.
    pub worker_types: Vec<String>,
    /// Other holders: AMI sets, copy sources, live launch templates.
    pub holders: Vec<String>,
    /// Versions inside the rollback window that reference it.
    pub versions: Vec<u64>,
    /// Unix seconds when the last of those versions leaves the rollback window.
    pub versions_release_at: Option<i64>,
}

impl Prunability {
    /// Whether nothing protects it at `now`.
    pub fn prunable(&self, now: i64) -> bool {
        self.past_retain_at.is_some_and(|t| now > t)
            && !self.newest
            && self.worker_types.is_empty()
            && self.holders.is_empty()
            && self.versions.is_empty()
    }
}

/// What protects `image` of `set` in `region` at `now`.
#[allow(clippy::too_many_arguments)]
pub fn prunability(
    config: &Config,
    set: &AmiSet,
    region: &str,
    image: &ObservedImage,
    newest: bool,
    images: &[PlannedImage],
    observed: &RegionObservation,
    versions: &[VersionImages],
    now: i64,
) -> Prunability {
    let refs = references(config, region, &image.id, images, observed);
    let window = config.fleet.rollback_window.as_secs() as i64;
    let holding: Vec<&VersionImages> = versions
        .iter()
        .filter(|v| now - v.time <= window)
        .filter(|v| {
            v.images
                .get(region)
                .is_some_and(|ids| ids.iter().any(|i| i == &image.id))
        })
        .collect();
    Prunability {
        past_retain_at: set
            .retain
            .zip(parse_time(&image.creation_date))
            .map(|(retain, created)| created + retain.as_secs() as i64),
        newest,
        worker_types: refs.worker_types.iter().map(|s| s.to_string()).collect(),
        holders: refs.other,
        versions: holding.iter().map(|v| v.number).collect(),
        versions_release_at: holding.iter().map(|v| v.time + window).max(),
    }
}

/// The images tagged as belonging to `set` in a region's observation, and the
/// newest creation date among them (ties are all newest).
pub fn tagged_images<'a>(
    config: &Config,
    set: &str,
    found: &'a [ObservedImage],
) -> (Vec<&'a ObservedImage>, Option<&'a str>) {
    let tagged: Vec<&ObservedImage> = found
        .iter()
        .filter(|i| {
            i.tags.get(tags::FLEET) == Some(&config.fleet.name)
                && i.tags.get(tags::AMI_SET).map(String::as_str) == Some(set)
        })
        .collect();
    let newest = tagged
        .iter()
        .filter(|i| i.state == "available")
        .map(|i| i.creation_date.as_str())
        .max();
    (tagged, newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_ec2_name_filter() {
        assert!(glob_match("docker-worker-*", "docker-worker-2026-11-01"));
        assert!(glob_match("docker-worker-*", "docker-worker-"));
        assert!(!glob_match("docker-worker-*", "docker-worker"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*-x-*", "a-x-b-x-c"));
        assert!(!glob_match("gecko", "gecko-t"));
    }

    #[test]
    fn ec2_timestamps_parse_to_unix_seconds() {
        assert_eq!(parse_time("1970-01-02T00:00:00.000Z"), Some(86_400));
        assert_eq!(parse_time("2026-11-23T20:16:53.000Z"), Some(1_795_465_013));
        assert_eq!(parse_time("yesterday"), None);
    }
}

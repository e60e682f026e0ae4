//! `fleetform images`, and what plan, apply and rollback need to know about
//! images from the state: which images recent versions reference (FF001),
//! and which images a version used (rollback pins them).

use crate::VarArgs;
use clap::Args;
use fleetform_engine::checks::VersionImages;
use fleetform_engine::images::{self, PlannedImage, Prunability};
use fleetform_engine::model::Config;
use fleetform_engine::provider::Observation;
use fleetform_state::{Backend, StateError, Version, VersionSummary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The clock fleetform judges ages by (image retain, rollback window,
/// max_lifetime) and stamps versions with: now, unless `FLEETFORM_NOW` gives
/// unix seconds or an RFC 3339 time (to rehearse a prune, or in tests).
pub(crate) fn clock() -> i64 {
    std::env::var("FLEETFORM_NOW")
        .ok()
        .and_then(|text| {
            text.trim().parse::<i64>().ok().or_else(|| {
                humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z'))
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
            })
        })
        .unwrap_or_else(fleetform_state::now)
}

/// The index entries of every version young enough to protect images at `now`.
fn summaries_in_window(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<VersionSummary>, StateError> {
    let window = config.fleet.rollback_window.as_secs() as i64;
    Ok(store
        .list()?
        .into_iter()
        .filter(|summary| now - summary.time <= window)
        .collect())
}

/// Every version young enough to protect images at `now` (only those version
/// files are read).
fn versions_in_window(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<Version>, StateError> {
    summaries_in_window(store, config, now)?
        .into_iter()
        .map(|summary| store.read(summary.number))
        .collect()
}

/// The image claim of a version: its number, time and region -> AMI ids.
fn claim(version: &Version) -> VersionImages {
    VersionImages {
        number: version.number,
        time: version.time,
        images: version.images.clone(),
    }
}

/// The image claims of every version young enough to protect images at `now`.
/// They come from the index; a version file is read only for an index entry
/// written before the index held images.
pub(crate) fn version_images(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<VersionImages>, StateError> {
    summaries_in_window(store, config, now)?
        .into_iter()
        .map(|summary| match summary.images {
            Some(images) => Ok(VersionImages {
                number: summary.number,
                time: summary.time,
                images,
            }),
            None => store.read(summary.number).map(|v| claim(&v)),
        })
        .collect()
}

/// AMI set -> region -> image that `version` planned: a rollback to it uses
/// exactly these, even when a lookup would now pick a newer image.
pub(crate) fn pins_of(version: &Version) -> BTreeMap<String, BTreeMap<String, String>> {
    let planned: Vec<PlannedImage> = version
        .plan
        .get("images")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let mut pins: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for p in planned {
        if let Some(id) = p.image_id {
            pins.entry(p.ami_set).or_default().insert(p.region, id);
        }
    }
    // Copies made by that apply: the plan did not know their ids yet.
    let actions = version.plan.get("actions").and_then(|a| a.as_array());
    for outcome in version.outcomes.iter().filter(|o| o.ok) {
        let Some(action) = actions.and_then(|a| a.get(outcome.action)) else {
            continue;
        };
        let field = |name: &str| action.get(name).and_then(|v| v.as_str());
        if field("action") == Some("copy") {
            if let (Some(set), Some(region), Some(id)) = (
                field("address").and_then(|a| a.strip_prefix("ami_set.")),
                field("region"),
                outcome.ids.first(),
            ) {
                pins.entry(set.to_string())
                    .or_default()
                    .insert(region.to_string(), id.clone());
            }
        }
    }
    pins
}

/// Region -> image ids a new version references: the images the plan chose,
/// the copies it made, and what every launch template launches after the
/// apply (a region held by a staged roll-out keeps its old image in use).
pub(crate) fn referenced_images(
    plan_images: &[PlannedImage],
    copies: &[(String, String)],
    after: &Observation,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |region: &str, id: &str| {
        let ids = out.entry(region.to_string()).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    };
    for p in plan_images {
        if let Some(id) = &p.image_id {
            add(&p.region, id);
        }
    }
    for (region, id) in copies {
        add(region, id);
    }
    for (region, observed) in &after.regions {
        for t in observed.launch_templates.complete().into_iter().flatten() {
            if let Some(id) = t.default_data.as_ref().and_then(|d| d.image_id.as_deref()) {
                add(region, id);
            }
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    out
}

#[derive(Args)]
pub(crate) struct ImagesArgs {
    /// Configuration directory
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Print as JSON
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    vars: VarArgs,
}

/// One image as `fleetform images` lists it.
#[derive(Serialize)]
struct ImageRow {
    ami_set: String,
    region: String,
    id: String,
    name: String,
    state: String,
    creation_date: String,
    /// True when the configuration uses it now (via images, lookup, source or copy).
    configured: bool,
    /// True when it carries the set's tag (fleetform may prune it).
    tagged: bool,
    #[serde(flatten)]
    protection: Prunability,
    /// `now`, a time (RFC 3339), or `never` with the reason.
    prunable: String,
}

pub(crate) fn run(args: &ImagesArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let loaded = fleetform_engine::load_dir(&args.dir, &args.vars.inputs());
    let Some(config) = &loaded.config else {
        eprint!(
            "{}",
            fleetform_engine::diagnostic::render_human(&loaded.diagnostics, &loaded.sources, color)
        );
        return 1;
    };
    let now = clock();
    let store = match crate::store::open(&args.dir, &loaded, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    // The images versions inside the rollback window used, by set: listed even
    // when the configuration moved on.
    let (versions, recorded) = match versions_in_window(&*store, config, now).map(|window| {
        let mut recorded: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for v in &window {
            for (set, regions) in pins_of(v) {
                for (region, id) in regions {
                    let ids = recorded
                        .entry(set.clone())
                        .or_default()
                        .entry(region)
                        .or_default();
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        (window.iter().map(claim).collect::<Vec<_>>(), recorded)
    }) {
        Ok(found) => found,
        Err(e) => {
            crate::store::state_error(&e, color);
            return 1;
        }
    };
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for regions in recorded.values() {
        for (region, ids) in regions {
            extra
                .entry(region.clone())
                .or_default()
                .extend(ids.iter().cloned());
        }
    }
    let Some(observed) = crate::cloud::observe_with(&loaded, endpoint_url, color, &extra) else {
        return 1;
    };
    let planned = images::resolve(config, &observed.observation, &BTreeMap::new());
    let mut rows = Vec::new();
    let mut incomplete = Vec::new();
    for (region, regional) in &observed.observation.regions {
        let Some(found) = regional.images.complete() else {
            incomplete.push(region.clone());
            continue;
        };
        for set in config.ami_sets.values() {
            let (tagged, newest) = images::tagged_images(config, &set.name, found);
            let mut listed: Vec<&fleetform_engine::provider::ObservedImage> = tagged.clone();
            let wanted = planned
                .iter()
                .filter(|p| p.ami_set == set.name && &p.region == region)
                .filter_map(|p| p.image_id.clone())
                .chain(
                    recorded
                        .get(&set.name)
                        .and_then(|r| r.get(region))
                        .cloned()
                        .unwrap_or_default(),
                );
            for id in wanted {
                if let Some(image) = found.iter().find(|i| i.id == id) {
                    if !listed.iter().any(|l| l.id == image.id) {
                        listed.push(image);
                    }
                }
            }
            listed.sort_by(|a, b| (&b.creation_date, &b.id).cmp(&(&a.creation_date, &a.id)));
            for image in listed {
                let is_tagged = tagged.iter().any(|t| t.id == image.id);
                let is_newest = is_tagged && Some(image.creation_date.as_str()) == newest;
                let protection = images::prunability(
                    config, set, region, image, is_newest, &planned, regional, &versions, now,
                );
                let prunable = if !is_tagged {
                    "never: not tagged with this set (fleetform prunes only its own images)"
                        .to_string()
                } else if set.retain.is_none() {
                    "never: the set has no retain".to_string()
                } else if protection.newest {
                    "not while it is the newest of its set here".to_string()
                } else if !protection.worker_types.is_empty() || !protection.holders.is_empty() {
                    "not while the configuration or a launch template uses it".to_string()
                } else if protection.prunable(now) {
                    "now (the next apply prunes it)".to_string()
                } else {
                    let at = protection
                        .past_retain_at
                        .unwrap_or(now)
                        .max(protection.versions_release_at.unwrap_or(now));
                    crate::record::rfc3339(at)
                };
                rows.push(ImageRow {
                    ami_set: set.name.clone(),
                    region: region.clone(),
                    id: image.id.clone(),
                    name: image.name.clone(),
                    state: image.state.clone(),
                    creation_date: image.creation_date.clone(),
                    configured: planned.iter().any(|p| {
                        p.ami_set == set.name
                            && &p.region == region
                            && p.image_id.as_ref() == Some(&image.id)
                    }),
                    tagged: is_tagged,
                    protection,
                    prunable,
                });
            }
        }
    }
    rows.sort_by(|a, b| {
        (&a.ami_set, &a.region, &b.creation_date).cmp(&(&b.ami_set, &b.region, &a.creation_date))
    });
    if args.json {
        let out = serde_json::json!({
            "format_version": "1",
            "now": crate::record::rfc3339(now),
            "images": rows,
            "incomplete_regions": incomplete,
        });
        match serde_json::to_string_pretty(&out) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("fleetform: cannot encode the images as JSON: {e}");
                return 1;
            }
        }
    } else {
        let mut current: Option<(&str, &str)> = None;
        for row in &rows {
            if current != Some((&row.ami_set, &row.region)) {
                println!("\nami_set.{} in {}:", row.ami_set, row.region);
                current = Some((&row.ami_set, &row.region));
            }
            let mut used = Vec::new();
            if row.configured {
                used.push("configured".to_string());
            }
            if !row.protection.worker_types.is_empty() {
                used.push(format!(
                    "worker types [{}]",
                    row.protection.worker_types.join(", ")
                ));
            }
            used.extend(
                row.protection
                    .holders
                    .iter()
                    .filter(|h| h.starts_with("launch template"))
                    .cloned(),
            );
            if !row.protection.versions.is_empty() {
                let list: Vec<String> =
                    row.protection.versions.iter().map(u64::to_string).collect();
                used.push(format!("versions [{}]", list.join(", ")));
            }
            println!(
                "  {} {:?} {} created {}\n      used by: {}\n      prunable: {}",
                row.id,
                row.name,
                row.state,
                row.creation_date,
                if used.is_empty() {
                    "nothing".to_string()
                } else {
                    used.join("; ")
                },
                row.prunable
            );
        }
        if rows.is_empty() {
            println!("No images: no AMI set names or tags an image in the fleet's regions.");
        }
        for region in &incomplete {
            eprintln!("warning: the images of {region} could not be read; they are not listed");
        }
    }
    if incomplete.is_empty() {
        0
    } else {
        1
    }
}

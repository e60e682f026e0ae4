//! `fleetform images`: every image of every AMI set, per region, with who
//! holds it (the versions' claims come from `fleetform_ops`).

use crate::args::{ConfigArgs, JsonFlag};
use clap::Args;
use fleetform_engine::images::{self, Prunability};
use fleetform_ops::clock;
use fleetform_ops::{claim, pins_of, versions_in_window};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Args)]
pub(crate) struct ImagesArgs {
    #[command(flatten)]
    output: JsonFlag,

    #[command(flatten)]
    config: ConfigArgs,
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
    let loaded = fleetform_engine::load_dir(&args.config.dir, &args.config.vars.inputs());
    let Some(config) = &loaded.config else {
        eprint!(
            "{}",
            fleetform_engine::diagnostic::render_human(&loaded.diagnostics, &loaded.sources, color)
        );
        return 1;
    };
    let now = clock();
    let store = match crate::store::open(&args.config.dir, &loaded, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    // The images versions inside the rollback window used, by set: listed even
    // when the configuration moved on.
    let (versions, recorded) = match versions_in_window(&*store, config, now).and_then(|window| {
        let mut recorded: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for v in &window {
            for (set, regions) in pins_of(v)? {
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
        Ok((window.iter().map(claim).collect::<Vec<_>>(), recorded))
    }) {
        Ok(found) => found,
        Err(e) => return crate::store::ops_error(&e, color),
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
                    crate::clock::rfc3339(at)
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
    if args.output.json {
        let out = serde_json::json!({
            "format_version": "1",
            "now": crate::clock::rfc3339(now),
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

//! The image actions of a plan, built from the images [`crate::images`]
//! resolved: the copies a region still needs (`+ copy`), and the prunes of
//! tagged images that nothing holds any more (`- prune`), with an FF001
//! warning for each image past `retain` that something still holds.

use super::{Action, ActionKind, Change, Reason, Resource};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::images::{
    copies_of, copy_name, prunability, tagged_images, ImageVia, PlannedImage, VersionImages,
};
use crate::model::{address, Config};
use crate::provider::{tags, RegionObservation};
use std::collections::BTreeMap;

/// CopyImage actions for `region`: every copy target whose copy does not
/// exist yet, and every copy still `pending` (apply waits for it). Nothing is
/// copied where the images could not be read: a copy that exists unseen would
/// be made twice.
pub fn copies(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    images: &[PlannedImage],
    actions: &mut Vec<Action>,
) {
    let Some(found) = observed.images.complete() else {
        return;
    };
    for p in images
        .iter()
        .filter(|p| p.region == region && p.via == ImageVia::Copy)
    {
        let (Some(set), Some(source_image)) = (config.ami_sets.get(&p.ami_set), &p.copy_of) else {
            continue;
        };
        let Some(source) = &set.source else { continue };
        let existing = copies_of(config, &set.name, source_image, found);
        if existing.first().is_some_and(|i| i.state == "available") {
            continue;
        }
        let addr = address::ami_set(&set.name);
        let tag_set = BTreeMap::from([
            (tags::FLEET.to_string(), config.fleet.name.clone()),
            (tags::ADDRESS.to_string(), addr.clone()),
            (tags::AMI_SET.to_string(), set.name.clone()),
            (tags::SOURCE_IMAGE.to_string(), source_image.clone()),
            (tags::SOURCE_REGION.to_string(), source.region.clone()),
        ]);
        actions.push(Action {
            name: Some(copy_name(&set.name, source_image)),
            ids: existing
                .first()
                .map(|i| vec![i.id.clone()])
                .unwrap_or_default(),
            source_region: Some(source.region.clone()),
            source_image: Some(source_image.clone()),
            tags: tag_set,
            ..Action::new(
                &addr,
                region,
                ActionKind::Copy,
                Resource::Image,
                if existing.is_empty() {
                    Reason::CopyTo
                } else {
                    Reason::CopyPending
                },
            )
        });
    }
}

/// Prune actions for `region`: tagged images past `retain` that nothing
/// holds. An image past `retain` that something does hold is kept, with an
/// FF001 warning naming what holds it. Nothing is pruned where images or
/// launch templates could not be read.
#[allow(clippy::too_many_arguments)]
pub fn prune(
    config: &Config,
    region: &str,
    observed: &RegionObservation,
    images: &[PlannedImage],
    versions: &[VersionImages],
    now: i64,
    actions: &mut Vec<Action>,
    diags: &mut Diagnostics,
) {
    let (Some(found), Some(_)) = (
        observed.images.complete(),
        observed.launch_templates.complete(),
    ) else {
        return;
    };
    for set in config.ami_sets.values().filter(|s| s.retain.is_some()) {
        let (tagged, newest) = tagged_images(config, &set.name, found);
        for image in tagged {
            let is_newest = Some(image.creation_date.as_str()) == newest;
            let p = prunability(
                config, set, region, image, is_newest, images, observed, versions, now,
            );
            if p.past_retain_at.is_none_or(|t| now <= t) || p.newest {
                continue;
            }
            if p.prunable(now) {
                let mut ids = vec![image.id.clone()];
                ids.extend(image.snapshot_ids.iter().cloned());
                actions.push(Action {
                    name: Some(image.name.clone()),
                    ids,
                    changes: vec![Change {
                        path: "created".into(),
                        old: Some(image.creation_date.clone()),
                        new: None,
                        sensitive: false,
                    }],
                    ..Action::new(
                        &address::ami_set(&set.name),
                        region,
                        ActionKind::Prune,
                        Resource::Image,
                        Reason::PastRetain,
                    )
                });
                continue;
            }
            let mut why = Vec::new();
            if !p.worker_types.is_empty() {
                why.push(format!(
                    "worker types [{}] use it",
                    p.worker_types.join(", ")
                ));
            }
            if !p.holders.is_empty() {
                why.push(format!("{} use it", p.holders.join(", ")));
            }
            if !p.versions.is_empty() {
                let list: Vec<String> = p.versions.iter().map(u64::to_string).collect();
                why.push(format!(
                    "versions [{}] reference it within the rollback window of {}",
                    list.join(", "),
                    config.fleet.rollback_window
                ));
            }
            diags.push(
                Diagnostic::warning(
                    Code::ImageInUse,
                    format!(
                        "image {} ({}) of ami_set \"{}\" in {region} is past its retain of {} but is not pruned: {}",
                        image.id,
                        image.name,
                        set.name,
                        set.retain.map(|r| r.to_string()).unwrap_or_default(),
                        why.join("; ")
                    ),
                )
                .at(set.origin.attribute("retain"), "kept: still referenced")
                .help("an image is pruned only once no worker type, launch template or version inside the rollback window needs it; `fleetform images` shows what holds it"),
            );
        }
    }
}

//! The images recorded versions hold: which images the versions inside
//! `fleet.rollback_window` reference (FF001 keeps them), and which images
//! one version used (a rollback to it pins them).

use crate::Error;
use fleetform_engine::images::PlannedImage;
use fleetform_engine::images::VersionImages;
use fleetform_engine::model::Config;
use fleetform_engine::plan::ActionKind;
use fleetform_state::{Backend, Version, VersionSummary};
use std::collections::BTreeMap;

/// The index entries of every version young enough to protect images at `now`.
fn summaries_in_window(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<VersionSummary>, Error> {
    let window = config.fleet.rollback_window.as_secs() as i64;
    Ok(store
        .list()?
        .into_iter()
        .filter(|summary| now - summary.time <= window)
        .collect())
}

/// Every version young enough to protect images at `now` (only those version
/// files are read).
pub fn versions_in_window(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<Version>, Error> {
    summaries_in_window(store, config, now)?
        .into_iter()
        .map(|summary| Ok(store.read(summary.number)?))
        .collect()
}

/// The image claim of a version: its number, time and region -> AMI ids.
pub fn claim(version: &Version) -> VersionImages {
    VersionImages {
        number: version.number,
        time: version.time,
        images: version.images.clone(),
    }
}

/// The image claims of every version young enough to protect images at `now`.
/// They come from the index; a version file is read only for an index entry
/// written before the index held images.
pub fn version_images(
    store: &dyn Backend,
    config: &Config,
    now: i64,
) -> Result<Vec<VersionImages>, Error> {
    summaries_in_window(store, config, now)?
        .into_iter()
        .map(|summary| match summary.images {
            Some(images) => Ok(VersionImages {
                number: summary.number,
                time: summary.time,
                images,
            }),
            None => Ok(claim(&store.read(summary.number)?)),
        })
        .collect()
}

/// AMI set -> region -> image that `version` planned: a rollback to it uses
/// exactly these, even when a lookup would now pick a newer image. A plan
/// whose images do not decode is [`Error::Damaged`] (a plan recorded before
/// plans listed images has none).
pub fn pins_of(version: &Version) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
    let planned: Vec<PlannedImage> = match version.plan.get("images") {
        Some(images) => serde_json::from_value(images.clone()).map_err(|e| Error::Damaged {
            version: version.number,
            what: format!("the images of its plan do not decode ({e})"),
        })?,
        None => Vec::new(),
    };
    let mut pins: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for p in planned {
        if let Some(id) = p.image_id {
            pins.entry(p.ami_set).or_default().insert(p.region, id);
        }
    }
    // Copies made by that apply: the plan did not know their ids yet.
    let actions = crate::record::recorded_actions(version)?;
    for outcome in version.outcomes.iter().filter(|o| o.ok) {
        let Some(action) = actions.get(outcome.action) else {
            continue;
        };
        if action.action == ActionKind::Copy {
            if let (Some(set), Some(id)) =
                (action.address.strip_prefix("ami_set."), outcome.ids.first())
            {
                pins.entry(set.to_string())
                    .or_default()
                    .insert(action.region.clone(), id.clone());
            }
        }
    }
    Ok(pins)
}

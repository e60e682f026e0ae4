//! Reading one region: one tag-filtered, paged call per kind, the kinds
//! concurrently. A read that fails after retries is `Incomplete` with the
//! cause; partial pages are discarded, never returned as if complete.

use crate::error;
use aws_sdk_ec2::types::{Filter, Tag};
use fleetform_engine::model::ImageLookup;
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Observed, ObservedImage, ObservedInstance, ObservedKeyPair,
    ObservedLaunchTemplate, RegionObservation,
};
use std::collections::{BTreeMap, HashMap};

/// Instance states that count as existing (terminated and shutting-down do not).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// Page size for DescribeInstances (EC2's maximum).
const INSTANCE_PAGE: i32 = 1000;

/// Page size for images and launch templates (EC2's maximum for both).
const TEMPLATE_PAGE: i32 = 200;

fn fleet_filter(fleet: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", tags::FLEET))
        .values(fleet)
        .build()
}

pub(crate) fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Everything incomplete with one cause (e.g. the region's task died).
pub(crate) fn all_incomplete(cause: &str) -> RegionObservation {
    RegionObservation {
        key_pairs: Observed::Incomplete {
            cause: cause.to_string(),
        },
        images: Observed::Incomplete {
            cause: cause.to_string(),
        },
        launch_templates: Observed::Incomplete {
            cause: cause.to_string(),
        },
        instances: Observed::Incomplete {
            cause: cause.to_string(),
        },
    }
}

fn settle<T>(result: Result<T, String>) -> Observed<T> {
    match result {
        Ok(items) => Observed::Complete { items },
        Err(cause) => Observed::Incomplete { cause },
    }
}

/// Reads every kind in one region, concurrently.
pub(crate) async fn region(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
    image_ids: &[String],
    lookups: &[ImageLookup],
) -> RegionObservation {
    let (key_pairs, images, launch_templates, instances) = tokio::join!(
        key_pairs(client, fleet),
        images(client, fleet, image_ids, lookups),
        launch_templates(client, fleet),
        instances(client, fleet),
    );
    RegionObservation {
        key_pairs: settle(key_pairs),
        images: settle(images),
        launch_templates: settle(launch_templates),
        instances: settle(instances),
    }
}

async fn key_pairs(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<Vec<ObservedKeyPair>, String> {
    // DescribeKeyPairs is not paged: one call returns every match.
    let out = client
        .describe_key_pairs()
        .filters(fleet_filter(fleet))
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    let mut found: Vec<ObservedKeyPair> = out
        .key_pairs()
        .iter()
        .map(|k| ObservedKeyPair {
            name: k.key_name().unwrap_or_default().to_string(),
            id: k.key_pair_id().unwrap_or_default().to_string(),
            fingerprint: k.key_fingerprint().unwrap_or_default().to_string(),
            tags: tag_map(k.tags()),
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

async fn images(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
    named: &[String],
    lookups: &[ImageLookup],
) -> Result<Vec<ObservedImage>, String> {
    let mut found: BTreeMap<String, ObservedImage> = BTreeMap::new();
    let mut tagged = client
        .describe_images()
        .owners("self")
        .filters(fleet_filter(fleet))
        .max_results(TEMPLATE_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = tagged.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        for image in page.images() {
            let image = convert_image(image);
            found.insert(image.id.clone(), image);
        }
    }
    if !named.is_empty() {
        // A filter, not ImageIds: ImageIds fails the whole call when one id does not
        // exist, and a missing image is exactly what FF002 must be able to report.
        let mut by_id = client
            .describe_images()
            .filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(named.to_vec()))
                    .build(),
            )
            .max_results(TEMPLATE_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = by_id.next().await {
            let page = page.map_err(|e| error::from_sdk(e).message)?;
            for image in page.images() {
                let image = convert_image(image);
                found.insert(image.id.clone(), image);
            }
        }
    }
    // Lookups with the same owners share one paged call: EC2 ORs the name patterns.
    let mut by_owners: BTreeMap<&[String], Vec<String>> = BTreeMap::new();
    for lookup in lookups {
        by_owners
            .entry(lookup.owners.as_slice())
            .or_default()
            .push(lookup.name.clone());
    }
    for (owners, names) in by_owners {
        let mut matching = client
            .describe_images()
            .set_owners(Some(owners.to_vec()))
            .filters(
                Filter::builder()
                    .name("name")
                    .set_values(Some(names))
                    .build(),
            )
            .max_results(TEMPLATE_PAGE)
            .into_paginator()
            .send();
        while let Some(page) = matching.next().await {
            let page = page.map_err(|e| error::from_sdk(e).message)?;
            for image in page.images() {
                let image = convert_image(image);
                found.insert(image.id.clone(), image);
            }
        }
    }
    Ok(found.into_values().collect())
}

fn convert_image(image: &aws_sdk_ec2::types::Image) -> ObservedImage {
    ObservedImage {
        id: image.image_id().unwrap_or_default().to_string(),
        name: image.name().unwrap_or_default().to_string(),
        state: image
            .state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        virtualization: image
            .virtualization_type()
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        architecture: image
            .architecture()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        creation_date: image.creation_date().unwrap_or_default().to_string(),
        owner: image.owner_id().unwrap_or_default().to_string(),
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| Some(m.ebs()?.snapshot_id()?.to_string()))
            .collect(),
        tags: tag_map(image.tags()),
    }
}

async fn launch_templates(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<Vec<ObservedLaunchTemplate>, String> {
    // The templates and their default versions are read at the same time: the
    // two paged reads are independent, and chaining them would double the
    // region's slowest path.
    let (templates, defaults) =
        tokio::join!(tagged_templates(client, fleet), default_versions(client));
    let templates = templates?;
    if templates.is_empty() {
        return Ok(Vec::new());
    }
    // Without the default versions nothing can be said about what the
    // templates launch: the read is incomplete, not "no data".
    let mut defaults = defaults?;
    Ok(templates
        .into_values()
        .map(|mut t| {
            t.default_data = defaults.remove(&t.id);
            t
        })
        .collect())
}

/// Launch templates tagged with the fleet, by id, without their data.
async fn tagged_templates(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<BTreeMap<String, ObservedLaunchTemplate>, String> {
    let mut templates = BTreeMap::new();
    let mut pages = client
        .describe_launch_templates()
        .filters(fleet_filter(fleet))
        .max_results(TEMPLATE_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        for t in page.launch_templates() {
            let id = t.launch_template_id().unwrap_or_default().to_string();
            templates.insert(
                id.clone(),
                ObservedLaunchTemplate {
                    id,
                    name: t.launch_template_name().unwrap_or_default().to_string(),
                    default_version: t.default_version_number().unwrap_or_default(),
                    latest_version: t.latest_version_number().unwrap_or_default(),
                    default_data: None,
                    tags: tag_map(t.tags()),
                },
            );
        }
    }
    Ok(templates)
}

/// What the default version of every launch template in the region launches,
/// by template id: with no template named, `$Default` describes them all in
/// pages, not one call per template.
async fn default_versions(
    client: &aws_sdk_ec2::Client,
) -> Result<HashMap<String, LaunchTemplateData>, String> {
    let mut defaults = HashMap::new();
    let mut pages = client
        .describe_launch_template_versions()
        .versions("$Default")
        .max_results(TEMPLATE_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        for version in page.launch_template_versions() {
            let (Some(id), Some(data)) =
                (version.launch_template_id(), version.launch_template_data())
            else {
                continue;
            };
            defaults.insert(id.to_string(), convert_template_data(data));
        }
    }
    Ok(defaults)
}

fn convert_template_data(
    data: &aws_sdk_ec2::types::ResponseLaunchTemplateData,
) -> LaunchTemplateData {
    let user_data = data.user_data().map(|encoded| {
        aws_smithy_types::base64::decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| encoded.to_string())
    });
    let instance_tags = data
        .tag_specifications()
        .iter()
        .filter(|spec| {
            spec.resource_type()
                .is_some_and(|r| r.as_str() == "instance")
        })
        .flat_map(|spec| tag_map(spec.tags()))
        .collect();
    LaunchTemplateData {
        image_id: data.image_id().map(str::to_string),
        instance_type: data.instance_type().map(|t| t.as_str().to_string()),
        key_name: data.key_name().map(str::to_string),
        user_data,
        market: data
            .instance_market_options()
            .and_then(|m| m.market_type())
            .map(|m| m.as_str().to_string()),
        instance_tags,
    }
}

async fn instances(
    client: &aws_sdk_ec2::Client,
    fleet: &str,
) -> Result<Vec<ObservedInstance>, String> {
    let mut found = Vec::new();
    let mut pages = client
        .describe_instances()
        .filters(fleet_filter(fleet))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .max_results(INSTANCE_PAGE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        for reservation in page.reservations() {
            for i in reservation.instances() {
                let tags = tag_map(i.tags());
                let launch_template = match (
                    tags.get("aws:ec2launchtemplate:id"),
                    tags.get("aws:ec2launchtemplate:version"),
                ) {
                    (Some(id), Some(version)) => Some((id.clone(), version.clone())),
                    _ => None,
                };
                found.push(ObservedInstance {
                    id: i.instance_id().unwrap_or_default().to_string(),
                    state: i
                        .state()
                        .and_then(|s| s.name())
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_default(),
                    instance_type: i
                        .instance_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    launch_time: i.launch_time().map(|t| t.secs()).unwrap_or_default(),
                    image_id: i.image_id().unwrap_or_default().to_string(),
                    key_name: i.key_name().map(str::to_string),
                    launch_template,
                    tags,
                });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

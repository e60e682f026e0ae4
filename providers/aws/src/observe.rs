//! Reading one region: one tag-filtered, paged call per kind, the kinds
//! concurrently. A read that fails after retries is `Incomplete` with the
//! cause; partial pages are discarded, never returned as if complete. A
//! listing whose last page is full but carries no continuation token may have
//! been cut short (a dropped NextToken); it is read again with other page
//! sizes, and stays `Incomplete` if every read ends that way.

use crate::error;
use aws_sdk_ec2::types::{Filter, Tag};
use fleetform_engine::model::ImageLookup;
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Observed, ObservedImage, ObservedInstance, ObservedKeyPair,
    ObservedLaunchTemplate, RegionObservation,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

/// Instance states that count as existing (terminated and shutting-down do not).
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// Page size for DescribeInstances (EC2's maximum).
const INSTANCE_PAGE: i32 = 1000;

/// Page size for images and launch templates (EC2's maximum for both).
const TEMPLATE_PAGE: i32 = 200;

/// The smallest page every paged read accepts (DescribeInstances and
/// DescribeImages refuse fewer than 5).
const MIN_PAGE: i32 = 5;

/// Items asked for per page of each paged read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSizes {
    instances: i32,
    templates: i32,
}

impl PageSizes {
    /// EC2's maximum page sizes, or `limit` where that is smaller (never
    /// below what EC2 accepts).
    pub(crate) fn at_most(limit: Option<u32>) -> PageSizes {
        let cap = |max: i32| {
            limit.map_or(max, |l| {
                i32::try_from(l).unwrap_or(max).clamp(MIN_PAGE, max)
            })
        };
        PageSizes {
            instances: cap(INSTANCE_PAGE),
            templates: cap(TEMPLATE_PAGE),
        }
    }
}

/// Whether the last page seen so far could hide more items: it held as many
/// as were asked for and no token to go on. EC2 sends a token whenever more
/// remain, so a full last page without one is where a dropped token hides.
#[derive(Debug, Default)]
struct LastPage {
    suspect: bool,
}

impl LastPage {
    fn saw(&mut self, items: usize, size: i32, token: Option<&str>) {
        let full = usize::try_from(size).is_ok_and(|size| items >= size);
        self.suspect = full && token.is_none_or(str::is_empty);
    }
}

/// Page sizes for reading one listing up to three times: `size` first, then
/// two neighbours. A listing of T items ends on a full page for all three
/// only if T is a multiple of all three sizes, which for T below their least
/// common multiple (60 for 3, 4, 5; ~10^9 for 998..1000) means T = 0.
fn confirming_sizes(size: i32) -> [i32; 3] {
    if size - 2 >= MIN_PAGE {
        [size, size - 1, size - 2]
    } else {
        [size, size + 1, size + 2]
    }
}

/// Reads a listing with `read(page_size)` (which returns the items and
/// whether its last page was suspect) until a read ends on a page that is not
/// full; if every read ends full and without a token, the listing may be cut
/// short and is an error, never a guess.
async fn confirmed<T, F, Fut>(what: &str, size: i32, read: F) -> Result<T, String>
where
    F: Fn(i32) -> Fut,
    Fut: Future<Output = Result<(T, LastPage), String>>,
{
    let sizes = confirming_sizes(size);
    for size in sizes {
        let (items, last) = read(size).await?;
        if !last.suspect {
            return Ok(items);
        }
    }
    Err(format!(
        "{what}: each of {} reads (page sizes {sizes:?}) ended on a full page without a NextToken, so the listing may have been cut short",
        sizes.len()
    ))
}

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
        subnets: Observed::Incomplete {
            cause: cause.to_string(),
        },
        security_groups: Observed::Incomplete {
            cause: cause.to_string(),
        },
        offerings: Observed::Incomplete {
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
    pages: PageSizes,
    fleet: &str,
    image_ids: &[String],
    lookups: &[ImageLookup],
) -> RegionObservation {
    let (key_pairs, images, launch_templates, instances) = tokio::join!(
        key_pairs(client, fleet),
        images(client, pages.templates, fleet, image_ids, lookups),
        launch_templates(client, pages.templates, fleet),
        confirmed("instances", pages.instances, |size| instances(
            client, size, fleet
        )),
    );
    RegionObservation {
        key_pairs: settle(key_pairs),
        images: settle(images),
        launch_templates: settle(launch_templates),
        instances: settle(instances),
        subnets: Observed::nothing(),
        security_groups: Observed::nothing(),
        offerings: Observed::nothing(),
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
    size: i32,
    fleet: &str,
    named: &[String],
    lookups: &[ImageLookup],
) -> Result<Vec<ObservedImage>, String> {
    let mut found: BTreeMap<String, ObservedImage> = BTreeMap::new();
    let tagged = confirmed("images tagged with the fleet", size, |size| {
        image_pages(
            client
                .describe_images()
                .owners("self")
                .filters(fleet_filter(fleet))
                .max_results(size),
            size,
        )
    })
    .await?;
    found.extend(tagged.into_iter().map(|i| (i.id.clone(), i)));
    if !named.is_empty() {
        // A filter, not ImageIds: ImageIds fails the whole call when one id does not
        // exist, and a missing image is exactly what FF002 must be able to report.
        let by_id = confirmed("images named in the config", size, |size| {
            image_pages(
                client
                    .describe_images()
                    .filters(
                        Filter::builder()
                            .name("image-id")
                            .set_values(Some(named.to_vec()))
                            .build(),
                    )
                    .max_results(size),
                size,
            )
        })
        .await?;
        found.extend(by_id.into_iter().map(|i| (i.id.clone(), i)));
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
        let matching = confirmed("images matching a lookup", size, |size| {
            image_pages(
                client
                    .describe_images()
                    .set_owners(Some(owners.to_vec()))
                    .filters(
                        Filter::builder()
                            .name("name")
                            .set_values(Some(names.clone()))
                            .build(),
                    )
                    .max_results(size),
                size,
            )
        })
        .await?;
        found.extend(matching.into_iter().map(|i| (i.id.clone(), i)));
    }
    Ok(found.into_values().collect())
}

/// Every page of one DescribeImages request.
async fn image_pages(
    request: aws_sdk_ec2::operation::describe_images::builders::DescribeImagesFluentBuilder,
    size: i32,
) -> Result<(Vec<ObservedImage>, LastPage), String> {
    let mut found = Vec::new();
    let mut last = LastPage::default();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        last.saw(page.images().len(), size, page.next_token());
        found.extend(page.images().iter().map(convert_image));
    }
    Ok((found, last))
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
        root_device_name: None,
    }
}

async fn launch_templates(
    client: &aws_sdk_ec2::Client,
    size: i32,
    fleet: &str,
) -> Result<Vec<ObservedLaunchTemplate>, String> {
    // The templates and their default versions are read at the same time: the
    // two paged reads are independent, and chaining them would double the
    // region's slowest path.
    let (templates, defaults) = tokio::join!(
        confirmed("launch templates", size, |size| tagged_templates(
            client, size, fleet
        )),
        confirmed("launch template default versions", size, |size| {
            default_versions(client, size)
        }),
    );
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
    size: i32,
    fleet: &str,
) -> Result<(BTreeMap<String, ObservedLaunchTemplate>, LastPage), String> {
    let mut templates = BTreeMap::new();
    let mut last = LastPage::default();
    let mut pages = client
        .describe_launch_templates()
        .filters(fleet_filter(fleet))
        .max_results(size)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        last.saw(page.launch_templates().len(), size, page.next_token());
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
    Ok((templates, last))
}

/// What the default version of every launch template in the region launches,
/// by template id: with no template named, `$Default` describes them all in
/// pages, not one call per template.
async fn default_versions(
    client: &aws_sdk_ec2::Client,
    size: i32,
) -> Result<(HashMap<String, LaunchTemplateData>, LastPage), String> {
    let mut defaults = HashMap::new();
    let mut last = LastPage::default();
    let mut pages = client
        .describe_launch_template_versions()
        .versions("$Default")
        .max_results(size)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        last.saw(
            page.launch_template_versions().len(),
            size,
            page.next_token(),
        );
        for version in page.launch_template_versions() {
            let (Some(id), Some(data)) =
                (version.launch_template_id(), version.launch_template_data())
            else {
                continue;
            };
            defaults.insert(id.to_string(), convert_template_data(data));
        }
    }
    Ok((defaults, last))
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
        ..Default::default()
    }
}

async fn instances(
    client: &aws_sdk_ec2::Client,
    size: i32,
    fleet: &str,
) -> Result<(Vec<ObservedInstance>, LastPage), String> {
    let mut found = Vec::new();
    let mut last = LastPage::default();
    let mut pages = client
        .describe_instances()
        .filters(fleet_filter(fleet))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .max_results(size)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| error::from_sdk(e).message)?;
        // Pages hold whole reservations: a page is full when it holds `size` of
        // them (counting instances would call every page of multi-instance
        // reservations full, and no read could ever be trusted).
        last.saw(page.reservations().len(), size, page.next_token());
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
                    zone: None,
                    subnet_id: None,
                });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((found, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// A listing of `total` items read through pages of `size`, whose last
    /// token is dropped when `drop_last_token` says so for that read.
    fn listing(total: usize, size: i32, drop_token: bool) -> (usize, LastPage) {
        let size_items = usize::try_from(size).unwrap_or(1);
        let mut last = LastPage::default();
        let mut seen = 0;
        loop {
            let page = (total - seen).min(size_items);
            seen += page;
            let more = seen < total;
            if more && drop_token {
                last.saw(page, size, None);
                return (seen, last);
            }
            last.saw(page, size, more.then_some("next"));
            if !more {
                return (seen, last);
            }
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_dropped_token_on_the_first_read_is_caught_by_the_second() {
        let reads = RefCell::new(Vec::new());
        let result = run(confirmed("instances", 5, |size| {
            reads.borrow_mut().push(size);
            let first = reads.borrow().len() == 1;
            async move { Ok(listing(13, size, first)) }
        }));
        assert_eq!(result, Ok(13), "the second, whole read is the answer");
        assert_eq!(*reads.borrow(), vec![5, 6]);
    }

    #[test]
    fn a_listing_cut_short_on_every_read_is_an_error_not_a_count() {
        let result = run(confirmed("instances", 5, |size| async move {
            Ok(listing(40, size, true))
        }));
        let cause = result.expect_err("never a guess");
        assert!(cause.contains("cut short"), "{cause}");
    }

    #[test]
    fn an_exact_multiple_of_the_page_is_read_again_and_then_trusted() {
        // 10 items in pages of 5 end on a full page with no token: read again with 6.
        let reads = RefCell::new(0);
        let result = run(confirmed("templates", 5, |size| {
            *reads.borrow_mut() += 1;
            async move { Ok(listing(10, size, false)) }
        }));
        assert_eq!(result, Ok(10));
        assert_eq!(*reads.borrow(), 2);
        // A short last page is trusted at once.
        let once = RefCell::new(0);
        let result = run(confirmed("templates", 200, |size| {
            *once.borrow_mut() += 1;
            async move { Ok(listing(7, size, false)) }
        }));
        assert_eq!((result, *once.borrow()), (Ok(7), 1));
    }

    #[test]
    fn page_sizes_stay_within_what_ec2_accepts() {
        let default = PageSizes::at_most(None);
        assert_eq!((default.instances, default.templates), (1000, 200));
        let small = PageSizes::at_most(Some(1));
        assert_eq!((small.instances, small.templates), (5, 5));
        let mid = PageSizes::at_most(Some(500));
        assert_eq!((mid.instances, mid.templates), (500, 200));
        assert!(confirming_sizes(5).iter().all(|&s| s >= MIN_PAGE));
        assert_eq!(confirming_sizes(1000), [1000, 999, 998]);
    }
}

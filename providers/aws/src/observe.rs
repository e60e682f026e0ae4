//! Reading one region: one tag-filtered, paged call per kind, the kinds
//! concurrently. A read that fails after retries is `Incomplete` with the
//! cause; partial pages are discarded, never returned as if complete. A
//! listing whose last page is full but carries no continuation token may have
//! been cut short (a dropped NextToken); it is confirmed as [`crate::paging`]
//! says, and stays `Incomplete` if that fails.

use crate::error;
use crate::paging::{self, confirm, listing, read_from, Page, MIN_PAGE};
use aws_sdk_ec2::types::{Filter, Tag};
use fleetform_engine::model::ImageLookup;
use fleetform_engine::provider::{
    tags, BlockDevice, LaunchTemplateData, MetadataOptions, Observed, ObservedImage,
    ObservedInstance, ObservedKeyPair, ObservedLaunchTemplate, ObservedSecurityGroup,
    ObservedSubnet, Offering, RegionObservation, Tags,
};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

/// Instance states that count as existing (terminated and shutting-down do not).
pub(crate) const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// Page size for DescribeInstances (EC2's maximum).
const INSTANCE_PAGE: i32 = 1000;

/// Page size for images and launch templates (EC2's maximum for both).
const TEMPLATE_PAGE: i32 = 200;

/// Page size for subnets, security groups and offerings (EC2's maximum for
/// all three).
const NETWORK_PAGE: i32 = 1000;

/// Page size for DescribeAutoScalingGroups (MaxRecords: Auto Scaling's maximum).
const GROUP_PAGE: i32 = 100;

/// Items asked for per page of each paged read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSizes {
    pub(crate) instances: i32,
    pub(crate) templates: i32,
    pub(crate) network: i32,
    pub(crate) groups: i32,
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
            network: cap(NETWORK_PAGE),
            groups: cap(GROUP_PAGE),
        }
    }

    /// Items per page of DescribeAutoScalingGroups.
    pub(crate) fn groups(self) -> i32 {
        self.groups
    }
}

/// What the configuration names in one region, beside its fleet's tagged objects.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Named<'a> {
    /// Image ids (looked up even if untagged).
    pub(crate) image_ids: &'a [String],
    /// Image lookups.
    pub(crate) lookups: &'a [ImageLookup],
    /// Subnet ids.
    pub(crate) subnet_ids: &'a [String],
    /// Security group ids.
    pub(crate) security_group_ids: &'a [String],
    /// Instance types whose offerings per zone are read.
    pub(crate) instance_types: &'a [String],
}

fn fleet_filter(fleet: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", tags::FLEET))
        .values(fleet)
        .build()
}

/// The tags of an SDK object, as a map or a [`fleetform_engine::provider::Tags`].
pub(crate) fn tag_map<T: FromIterator<(String, String)>>(tags: &[Tag]) -> T {
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
        auto_scaling_groups: Observed::Incomplete {
            cause: cause.to_string(),
        },
        adoptable: Observed::Incomplete {
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

/// Reads every kind in one region, concurrently. Subnets, security groups
/// and offerings are read only when the configuration names some in this
/// region: otherwise they are complete and empty without a call.
pub(crate) async fn region(
    client: &aws_sdk_ec2::Client,
    pages: PageSizes,
    fleet: &str,
    named: Named<'_>,
) -> RegionObservation {
    let size = pages.network;
    let (key_pairs, images, launch_templates, instances, subnets, security_groups, offerings) = tokio::join!(
        key_pairs(client, fleet),
        images(
            client,
            pages.templates,
            fleet,
            named.image_ids,
            named.lookups
        ),
        launch_templates(client, pages.templates, fleet),
        instances("instances", client, pages.instances, fleet_filter(fleet)),
        when_named(named.subnet_ids, || subnets(client, size, named.subnet_ids)),
        when_named(named.security_group_ids, || security_groups(
            client,
            size,
            named.security_group_ids
        )),
        when_named(named.instance_types, || offerings(
            client,
            size,
            named.instance_types
        )),
    );
    RegionObservation {
        key_pairs: settle(key_pairs),
        images: settle(images),
        launch_templates: settle(launch_templates),
        instances: settle(instances),
        subnets: settle(subnets),
        security_groups: settle(security_groups),
        offerings: settle(offerings),
        // Read by the Auto Scaling client; filled in where the regions are joined.
        auto_scaling_groups: Observed::nothing(),
        // Read beside this by `discover::adoptable`.
        adoptable: Observed::nothing(),
    }
}

/// `read()` when the configuration names something for it; nothing (and no
/// call) otherwise.
async fn when_named<T: Default, F, Fut>(named: &[String], read: F) -> Result<T, String>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    if named.is_empty() {
        Ok(T::default())
    } else {
        read().await
    }
}

/// A filter on `name` matching any of `values`, which one missing value
/// cannot fail (an id list would fail the whole call).
pub(crate) fn any_of(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// The subnets among `ids` that exist, by id.
pub(crate) async fn subnets(
    client: &aws_sdk_ec2::Client,
    size: i32,
    ids: &[String],
) -> Result<Vec<ObservedSubnet>, String> {
    let mut found = listing("subnets", size, |token, size| async move {
        let page = client
            .describe_subnets()
            .filters(any_of("subnet-id", ids))
            .max_results(size)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::from_sdk(e).message)?;
        let items = page
            .subnets()
            .iter()
            .map(|s| ObservedSubnet {
                id: s.subnet_id().unwrap_or_default().to_string(),
                zone: s.availability_zone().unwrap_or_default().to_string(),
                vpc_id: s.vpc_id().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(Page::of(items, page.next_token().map(str::to_string)))
    })
    .await?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok(found)
}

/// The security groups among `ids` that exist, by id.
pub(crate) async fn security_groups(
    client: &aws_sdk_ec2::Client,
    size: i32,
    ids: &[String],
) -> Result<Vec<ObservedSecurityGroup>, String> {
    let mut found = listing("security groups", size, |token, size| async move {
        let page = client
            .describe_security_groups()
            .filters(any_of("group-id", ids))
            .max_results(size)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::from_sdk(e).message)?;
        let items = page
            .security_groups()
            .iter()
            .map(|g| ObservedSecurityGroup {
                id: g.group_id().unwrap_or_default().to_string(),
                name: g.group_name().unwrap_or_default().to_string(),
                vpc_id: g.vpc_id().unwrap_or_default().to_string(),
            })
            .collect();
        Ok(Page::of(items, page.next_token().map(str::to_string)))
    })
    .await?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok(found)
}

/// The availability zones that offer each of `types`, as sorted pairs.
async fn offerings(
    client: &aws_sdk_ec2::Client,
    size: i32,
    types: &[String],
) -> Result<Vec<Offering>, String> {
    let mut found = listing("instance type offerings", size, |token, size| async move {
        let page = client
            .describe_instance_type_offerings()
            .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
            .filters(any_of("instance-type", types))
            .max_results(size)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| error::from_sdk(e).message)?;
        let items = page
            .instance_type_offerings()
            .iter()
            .filter_map(|o| {
                Some(Offering {
                    instance_type: o.instance_type()?.as_str().to_string(),
                    zone: o.location()?.to_string(),
                })
            })
            .collect();
        Ok(Page::of(items, page.next_token().map(str::to_string)))
    })
    .await?;
    found.sort();
    found.dedup();
    Ok(found)
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
    let tagged = image_listing(
        "images tagged with the fleet",
        client
            .describe_images()
            .owners("self")
            .filters(fleet_filter(fleet)),
        size,
    )
    .await?;
    found.extend(tagged.into_iter().map(|i| (i.id.clone(), i)));
    if !named.is_empty() {
        // A filter, not ImageIds: ImageIds fails the whole call when one id does not
        // exist, and a missing image is exactly what FF002 must be able to report.
        let by_id = image_listing(
            "images named in the config",
            client.describe_images().filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(named.to_vec()))
                    .build(),
            ),
            size,
        )
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
        let matching = image_listing(
            "images matching a lookup",
            client
                .describe_images()
                .set_owners(Some(owners.to_vec()))
                .filters(
                    Filter::builder()
                        .name("name")
                        .set_values(Some(names.clone()))
                        .build(),
                ),
            size,
        )
        .await?;
        found.extend(matching.into_iter().map(|i| (i.id.clone(), i)));
    }
    Ok(found.into_values().collect())
}

/// Every image one DescribeImages request lists, at `size` per page.
pub(crate) async fn image_listing(
    what: &str,
    request: aws_sdk_ec2::operation::describe_images::builders::DescribeImagesFluentBuilder,
    size: i32,
) -> Result<Vec<ObservedImage>, String> {
    listing(what, size, |token, size| {
        let request = request.clone().max_results(size).set_next_token(token);
        async move {
            let page = request
                .send()
                .await
                .map_err(|e| error::from_sdk(e).message)?;
            let items = page.images().iter().map(convert_image).collect();
            Ok(Page::of(items, page.next_token().map(str::to_string)))
        }
    })
    .await
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
        root_device_name: image.root_device_name().map(str::to_string),
    }
}

async fn launch_templates(
    client: &aws_sdk_ec2::Client,
    size: i32,
    fleet: &str,
) -> Result<Vec<ObservedLaunchTemplate>, String> {
    // The templates and their default versions are read at the same time: the
    // two paged reads are independent, and chaining them would double the
    // region's slowest path. The versions are read at another page size, so
    // that the two listings never both end on a full page for the same
    // count, and each can vouch for the other (below).
    let versions_size = paging::confirming_sizes(size)[1];
    let filter = fleet_filter(fleet);
    let fetch = |token, size| template_page(client, Some(&filter), token, size);
    let (templates, defaults) = tokio::join!(
        read_from("launch templates", size, None, &fetch),
        listing(
            "launch template default versions",
            versions_size,
            |token, size| default_version_page(client, token, size)
        ),
    );
    let read = templates?;
    let defaults: Result<HashMap<String, LaunchTemplateData>, String> =
        defaults.map(|d| d.into_iter().collect());
    let templates: BTreeMap<String, ObservedLaunchTemplate> =
        if read.suspect && !vouched(&read.items, defaults.as_ref().ok(), fleet) {
            // A dropped token may hide templates: confirm the listing, as
            // every listing is.
            confirm("launch templates", size, read, &fetch).await?
        } else {
            read.items
        }
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
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
/// Whether a complete read of every template's default version vouches for
/// a listing of the fleet's templates whose last page was full (where a
/// dropped NextToken hides): every default version that launches with the
/// fleet's tag (as every template fleetform writes does) belongs to a
/// listed template. Confirming the listing is saved then; a cut listing
/// misses templates the versions name, and is confirmed.
fn vouched(
    templates: &[ObservedLaunchTemplate],
    defaults: Option<&HashMap<String, LaunchTemplateData>>,
    fleet: &str,
) -> bool {
    defaults.is_some_and(|defaults| {
        let listed: std::collections::HashSet<&str> =
            templates.iter().map(|t| t.id.as_str()).collect();
        defaults
            .iter()
            .filter(|(_, data)| {
                data.instance_tags.get(tags::FLEET).map(|t| t.as_str()) == Some(fleet)
            })
            .all(|(id, _)| listed.contains(id.as_str()))
    })
}

/// One page of the launch templates `filter` matches (all of them without
/// one), without their data.
pub(crate) async fn template_page(
    client: &aws_sdk_ec2::Client,
    filter: Option<&Filter>,
    token: Option<String>,
    size: i32,
) -> Result<Page<ObservedLaunchTemplate>, String> {
    let page = client
        .describe_launch_templates()
        .set_filters(filter.map(|f| vec![f.clone()]))
        .max_results(size)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    let items = page
        .launch_templates()
        .iter()
        .map(|t| ObservedLaunchTemplate {
            id: t.launch_template_id().unwrap_or_default().to_string(),
            name: t.launch_template_name().unwrap_or_default().to_string(),
            default_version: t.default_version_number().unwrap_or_default(),
            latest_version: t.latest_version_number().unwrap_or_default(),
            default_data: None,
            tags: tag_map(t.tags()),
        })
        .collect();
    Ok(Page::of(items, page.next_token().map(str::to_string)))
}

/// One page of what the default version of every launch template in the
/// region launches, by template id: with no template named, `$Default`
/// describes them all in pages, not one call per template.
async fn default_version_page(
    client: &aws_sdk_ec2::Client,
    token: Option<String>,
    size: i32,
) -> Result<Page<(String, LaunchTemplateData)>, String> {
    let page = client
        .describe_launch_template_versions()
        .versions("$Default")
        .max_results(size)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    let versions = page.launch_template_versions();
    let items = versions
        .iter()
        .filter_map(|version| {
            Some((
                version.launch_template_id()?.to_string(),
                convert_template_data(version.launch_template_data()?),
            ))
        })
        .collect();
    // Every version counts toward the page being full, data or not.
    Ok(Page {
        items,
        entries: versions.len(),
        next: page.next_token().map(str::to_string),
    })
}

/// What a launch template version launches, field by field, so that a
/// template changed by hand differs from what fleetform would write. EC2
/// stores a template's data as it was given and echoes only what was set, so
/// each field reads back as fleetform's write (`mutate::template_data`)
/// produced it:
///
/// - `security_group_ids`: the top-level `SecurityGroupIds`, or else the
///   `Groups` of network interface 0, in EC2's order;
/// - `assign_public_ip`: `AssociatePublicIpAddress` of network interface 0;
///   `None` without a network interface or when it is unset;
/// - `block_devices`: every mapping, sorted by device name; an EBS mapping
///   with its size, type, IOPS, throughput and encryption as set (unset
///   size 0 and type "", which fleetform never writes); a mapping without
///   EBS (an instance store or `NoDevice`) as a device of size 0 whose type
///   is `ephemeral` or `no-device`, so it shows as a difference;
///   `DeleteOnTermination` is not part of the model and not read;
/// - `spot_max_price`: `SpotOptions.MaxPrice` in its shortest decimal form
///   (`mutate::canonical_price`);
/// - `iam_instance_profile`: the ARN when set, else the name;
/// - `metadata`: `None` when EC2 returns no metadata options (a template
///   written without them); otherwise the tokens setting and the hop limit,
///   EC2's defaults (`optional`, 1) for the one missing; an endpoint turned
///   off reads as tokens `disabled`, a value fleetform never writes;
/// - `instance_tags` / `volume_tags`: the tag specifications for instances
///   and for volumes.
pub(crate) fn convert_template_data(
    data: &aws_sdk_ec2::types::ResponseLaunchTemplateData,
) -> LaunchTemplateData {
    let user_data = data.user_data().map(|encoded| {
        aws_smithy_types::base64::decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| encoded.to_string())
    });
    let tags_for = |resource: &str| -> Tags {
        data.tag_specifications()
            .iter()
            .filter(|spec| spec.resource_type().is_some_and(|r| r.as_str() == resource))
            .flat_map(|spec| tag_map::<Vec<(String, String)>>(spec.tags()))
            .collect()
    };
    let primary = data
        .network_interfaces()
        .iter()
        .find(|n| n.device_index().unwrap_or(0) == 0);
    let security_group_ids = if data.security_group_ids().is_empty() {
        primary.map(|n| n.groups().to_vec()).unwrap_or_default()
    } else {
        data.security_group_ids().to_vec()
    };
    let mut block_devices: Vec<BlockDevice> = data
        .block_device_mappings()
        .iter()
        .map(|m| {
            let device_name = m.device_name().unwrap_or_default().to_string();
            match m.ebs() {
                Some(ebs) => BlockDevice {
                    device_name,
                    size_gb: ebs
                        .volume_size()
                        .and_then(|s| u32::try_from(s).ok())
                        .unwrap_or(0),
                    volume_type: ebs
                        .volume_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    iops: ebs.iops().and_then(|i| u32::try_from(i).ok()),
                    throughput: ebs.throughput().and_then(|t| u32::try_from(t).ok()),
                    encrypted: ebs.encrypted(),
                },
                None => BlockDevice {
                    device_name,
                    size_gb: 0,
                    volume_type: if m.no_device().is_some() {
                        "no-device".to_string()
                    } else {
                        "ephemeral".to_string()
                    },
                    iops: None,
                    throughput: None,
                    encrypted: None,
                },
            }
        })
        .collect();
    block_devices.sort_by(|a, b| a.device_name.cmp(&b.device_name));
    let market = data.instance_market_options();
    let metadata = data.metadata_options().and_then(|m| {
        if m.http_tokens().is_none()
            && m.http_put_response_hop_limit().is_none()
            && m.http_endpoint().is_none()
        {
            return None;
        }
        let disabled = m.http_endpoint().is_some_and(|e| e.as_str() == "disabled");
        Some(MetadataOptions {
            http_tokens: if disabled {
                "disabled".to_string()
            } else {
                m.http_tokens()
                    .map_or("optional", |t| t.as_str())
                    .to_string()
            },
            hop_limit: m
                .http_put_response_hop_limit()
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(1),
        })
    });
    let profile = data.iam_instance_profile();
    LaunchTemplateData {
        image_id: data.image_id().map(str::to_string),
        instance_type: data.instance_type().map(|t| t.as_str().to_string()),
        key_name: data.key_name().map(str::to_string),
        user_data,
        market: market
            .and_then(|m| m.market_type())
            .map(|m| m.as_str().to_string()),
        instance_tags: tags_for("instance"),
        security_group_ids,
        assign_public_ip: primary.and_then(|n| n.associate_public_ip_address()),
        block_devices,
        spot_max_price: market
            .and_then(|m| m.spot_options())
            .and_then(|o| o.max_price())
            .map(fleetform_engine::provider::canonical_price),
        iam_instance_profile: profile
            .and_then(|p| p.arn().or(p.name()))
            .map(str::to_string),
        metadata,
        volume_tags: tags_for("volume"),
    }
}

/// Every live instance `filter` matches (the fleet's tag, or the templates
/// they were launched from), in id order; `what` names the listing in errors.
pub(crate) async fn instances(
    what: &str,
    client: &aws_sdk_ec2::Client,
    size: i32,
    filter: Filter,
) -> Result<Vec<ObservedInstance>, String> {
    let mut found = listing(what, size, |token, size| {
        instance_page(client, &filter, token, size)
    })
    .await?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// One page of the live instances `filter` matches.
async fn instance_page(
    client: &aws_sdk_ec2::Client,
    filter: &Filter,
    token: Option<String>,
    size: i32,
) -> Result<Page<ObservedInstance>, String> {
    let page = client
        .describe_instances()
        .filters(filter.clone())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .max_results(size)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    let mut found = Vec::new();
    for reservation in page.reservations() {
        for i in reservation.instances() {
            let tags: Tags = tag_map(i.tags());
            let launch_template = match (
                tags.get("aws:ec2launchtemplate:id"),
                tags.get("aws:ec2launchtemplate:version"),
            ) {
                (Some(id), Some(version)) => Some((id.to_string(), version.to_string())),
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
                zone: i
                    .placement()
                    .and_then(|p| p.availability_zone())
                    .map(str::to_string),
                subnet_id: i.subnet_id().map(str::to_string),
            });
        }
    }
    // Pages hold whole reservations: a page is full when it holds `size` of
    // them (counting instances would call every page of multi-instance
    // reservations full, and no read could ever be trusted).
    Ok(Page {
        items: found,
        entries: page.reservations().len(),
        next: page.next_token().map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use aws_sdk_ec2::types::{
        LaunchTemplateBlockDeviceMapping, LaunchTemplateEbsBlockDevice,
        LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecification,
        LaunchTemplateInstanceMarketOptions, LaunchTemplateInstanceMetadataEndpointState,
        LaunchTemplateInstanceMetadataOptions, LaunchTemplateInstanceNetworkInterfaceSpecification,
        LaunchTemplateSpotMarketOptions, LaunchTemplateTagSpecification, MarketType, ResourceType,
        ResponseLaunchTemplateData, VolumeType,
    };

    fn tag(key: &str, value: &str) -> Tag {
        Tag::builder().key(key).value(value).build()
    }

    #[test]
    fn template_data_reads_back_field_by_field() {
        let data = ResponseLaunchTemplateData::builder()
            .image_id("ami-1")
            .security_group_ids("sg-b")
            .security_group_ids("sg-a")
            .block_device_mappings(
                LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/xvdb")
                    .ebs(
                        LaunchTemplateEbsBlockDevice::builder()
                            .volume_size(120)
                            .volume_type(VolumeType::Io2)
                            .iops(4000)
                            .delete_on_termination(true)
                            .build(),
                    )
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/xvda")
                    .ebs(
                        LaunchTemplateEbsBlockDevice::builder()
                            .volume_size(60)
                            .volume_type(VolumeType::Gp3)
                            .throughput(250)
                            .encrypted(true)
                            .build(),
                    )
                    .build(),
            )
            .instance_market_options(
                LaunchTemplateInstanceMarketOptions::builder()
                    .market_type(MarketType::Spot)
                    .spot_options(
                        LaunchTemplateSpotMarketOptions::builder()
                            .max_price("0.680000")
                            .build(),
                    )
                    .build(),
            )
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecification::builder()
                    .arn("arn:aws:iam::1:instance-profile/w")
                    .name("w")
                    .build(),
            )
            .metadata_options(
                LaunchTemplateInstanceMetadataOptions::builder()
                    .http_tokens(LaunchTemplateHttpTokensState::Required)
                    .http_put_response_hop_limit(2)
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                    .build(),
            )
            .tag_specifications(
                LaunchTemplateTagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .tags(tag("fleetform:fleet", "f"))
                    .build(),
            )
            .tag_specifications(
                LaunchTemplateTagSpecification::builder()
                    .resource_type(ResourceType::Volume)
                    .tags(tag("fleetform:fleet", "f"))
                    .tags(tag("fleetform:address", "a"))
                    .build(),
            )
            .build();
        let read = convert_template_data(&data);
        assert_eq!(read.security_group_ids, vec!["sg-b", "sg-a"], "EC2's order");
        assert_eq!(read.assign_public_ip, None);
        assert_eq!(
            read.block_devices,
            vec![
                BlockDevice {
                    device_name: "/dev/xvda".into(),
                    size_gb: 60,
                    volume_type: "gp3".into(),
                    iops: None,
                    throughput: Some(250),
                    encrypted: Some(true),
                },
                BlockDevice {
                    device_name: "/dev/xvdb".into(),
                    size_gb: 120,
                    volume_type: "io2".into(),
                    iops: Some(4000),
                    throughput: None,
                    encrypted: None,
                },
            ],
            "sorted by device name"
        );
        assert_eq!(read.market.as_deref(), Some("spot"));
        assert_eq!(read.spot_max_price.as_deref(), Some("0.68"));
        assert_eq!(
            read.iam_instance_profile.as_deref(),
            Some("arn:aws:iam::1:instance-profile/w"),
            "the ARN when there is one"
        );
        assert_eq!(
            read.metadata,
            Some(MetadataOptions {
                http_tokens: "required".into(),
                hop_limit: 2
            })
        );
        assert_eq!(read.instance_tags.len(), 1);
        assert_eq!(read.volume_tags.len(), 2);
    }

    #[test]
    fn a_template_without_the_new_fields_reads_back_without_them() {
        let read = convert_template_data(
            &ResponseLaunchTemplateData::builder()
                .image_id("ami-1")
                .build(),
        );
        assert_eq!(
            read,
            LaunchTemplateData {
                image_id: Some("ami-1".into()),
                ..LaunchTemplateData::default()
            }
        );
        // An empty metadata element is no metadata options.
        let empty = ResponseLaunchTemplateData::builder()
            .metadata_options(LaunchTemplateInstanceMetadataOptions::builder().build())
            .build();
        assert_eq!(convert_template_data(&empty).metadata, None);
    }

    #[test]
    fn network_interface_groups_hand_made_metadata_and_odd_mappings_read_as_differences() {
        let data = ResponseLaunchTemplateData::builder()
            .network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .groups("sg-1")
                    .associate_public_ip_address(true)
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/sdc")
                    .no_device("")
                    .build(),
            )
            .block_device_mappings(
                LaunchTemplateBlockDeviceMapping::builder()
                    .device_name("/dev/sdd")
                    .virtual_name("ephemeral0")
                    .build(),
            )
            .iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecification::builder()
                    .name("workers")
                    .build(),
            )
            .metadata_options(
                LaunchTemplateInstanceMetadataOptions::builder()
                    .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Disabled)
                    .build(),
            )
            .build();
        let read = convert_template_data(&data);
        assert_eq!(read.security_group_ids, vec!["sg-1"]);
        assert_eq!(read.assign_public_ip, Some(true));
        assert_eq!(
            read.block_devices
                .iter()
                .map(|d| (d.device_name.as_str(), d.size_gb, d.volume_type.as_str()))
                .collect::<Vec<_>>(),
            vec![("/dev/sdc", 0, "no-device"), ("/dev/sdd", 0, "ephemeral")]
        );
        assert_eq!(read.iam_instance_profile.as_deref(), Some("workers"));
        assert_eq!(
            read.metadata,
            Some(MetadataOptions {
                http_tokens: "disabled".into(),
                hop_limit: 1
            }),
            "an endpoint turned off is a value fleetform never writes"
        );
        let hand_made = ResponseLaunchTemplateData::builder()
            .metadata_options(
                LaunchTemplateInstanceMetadataOptions::builder()
                    .http_put_response_hop_limit(3)
                    .build(),
            )
            .build();
        assert_eq!(
            convert_template_data(&hand_made).metadata,
            Some(MetadataOptions {
                http_tokens: "optional".into(),
                hop_limit: 3
            }),
            "EC2's default for the setting not given"
        );
    }

    #[test]
    fn page_sizes_stay_within_what_ec2_accepts() {
        let default = PageSizes::at_most(None);
        assert_eq!(
            (default.instances, default.templates, default.network),
            (1000, 200, 1000)
        );
        let small = PageSizes::at_most(Some(1));
        assert_eq!((small.instances, small.templates, small.network), (5, 5, 5));
        assert_eq!(
            (default.groups(), small.groups()),
            (100, 5),
            "MaxRecords 1..100"
        );
        let mid = PageSizes::at_most(Some(500));
        assert_eq!((mid.instances, mid.templates), (500, 200));
        assert!(paging::confirming_sizes(5).iter().all(|&s| s >= MIN_PAGE));
        assert_eq!(paging::confirming_sizes(1000), [1000, 999, 998]);
    }
}

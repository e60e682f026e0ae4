//! Reads for objects made by hand: what `fleetform import` discovers, and
//! what a plan reads by EC2 name to adopt. Reads only; which objects are
//! adopted or written is the engine's decision.
//!
//! - [`adoptable`]: the launch templates and key pairs a configuration
//!   names, by `launch-template-name` / `key-name` filters (one call each,
//!   whatever their tags), the default version of each template without the
//!   fleet tag (one call per such template; the fleet's own are read with
//!   the fleet), and the live instances launched from those templates
//!   (`tag:aws:ec2launchtemplate:id`, paged). Nothing named: no call.
//! - [`region`]: for import, every launch template without the
//!   `fleetform:fleet` tag that matches a name prefix or tag filters, with
//!   its default version and the settings of it fleetform has no attribute
//!   for; the key pairs (with their public keys), images, subnets and
//!   security groups they name; and their live instances.

use crate::error;
use crate::observe::{self, PageSizes};
use crate::paging::listing;
use aws_sdk_ec2::types::ResponseLaunchTemplateData;
use fleetform_engine::provider::{
    tags, AdoptNames, Adoptable, AdoptableKeyPair, DiscoverRequest, DiscoveredRegion,
    DiscoveredTemplate, Observed, ObservedKeyPair, ObservedLaunchTemplate,
};
use std::collections::BTreeSet;

/// Most values one EC2 filter takes.
const FILTER_VALUES: usize = 200;

/// The objects `names` names in this region (see the module doc).
pub(crate) async fn adoptable(
    client: &aws_sdk_ec2::Client,
    pages: PageSizes,
    names: &AdoptNames,
) -> Observed<Adoptable> {
    if names.launch_templates.is_empty() && names.key_pairs.is_empty() {
        return Observed::nothing();
    }
    match read_adoptable(client, pages, names).await {
        Ok(items) => Observed::Complete { items },
        Err(cause) => Observed::Incomplete { cause },
    }
}

async fn read_adoptable(
    client: &aws_sdk_ec2::Client,
    pages: PageSizes,
    names: &AdoptNames,
) -> Result<Adoptable, String> {
    let (templates, key_pairs) = tokio::join!(
        templates_named(client, pages.templates, &names.launch_templates),
        key_pairs_named(client, &names.key_pairs),
    );
    let mut templates = templates?;
    let key_pairs = key_pairs?;
    for t in templates
        .iter_mut()
        .filter(|t| !t.tags.contains_key(tags::FLEET))
    {
        t.default_data = default_version(client, &t.id)
            .await?
            .map(|d| observe::convert_template_data(&d));
    }
    let ids: Vec<String> = templates
        .iter()
        .filter(|t| !t.tags.contains_key(tags::FLEET))
        .map(|t| t.id.clone())
        .collect();
    let instances = launched_from(client, pages.instances, &ids).await?;
    Ok(Adoptable {
        launch_templates: templates,
        key_pairs,
        instances,
    })
}

/// The launch templates with these names (filters of at most 200 values).
async fn templates_named(
    client: &aws_sdk_ec2::Client,
    size: i32,
    names: &[String],
) -> Result<Vec<ObservedLaunchTemplate>, String> {
    let mut out = Vec::new();
    for chunk in names.chunks(FILTER_VALUES) {
        let filter = observe::any_of("launch-template-name", chunk);
        out.extend(
            listing(
                "launch templates named in the config",
                size,
                |token, size| observe::template_page(client, Some(&filter), token, size),
            )
            .await?,
        );
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The default version of one template (`None` when EC2 returns none).
async fn default_version(
    client: &aws_sdk_ec2::Client,
    id: &str,
) -> Result<Option<ResponseLaunchTemplateData>, String> {
    let out = client
        .describe_launch_template_versions()
        .launch_template_id(id)
        .versions("$Default")
        .send()
        .await
        .map_err(|e| error::from_sdk(e).message)?;
    Ok(out
        .launch_template_versions()
        .first()
        .and_then(|v| v.launch_template_data())
        .cloned())
}

/// The key pairs with these names, with their public keys.
async fn key_pairs_named(
    client: &aws_sdk_ec2::Client,
    names: &[String],
) -> Result<Vec<AdoptableKeyPair>, String> {
    let mut out = Vec::new();
    for chunk in names.chunks(FILTER_VALUES) {
        // DescribeKeyPairs is not paged: one call returns every match.
        let found = client
            .describe_key_pairs()
            .filters(observe::any_of("key-name", chunk))
            .include_public_key(true)
            .send()
            .await
            .map_err(|e| error::from_sdk(e).message)?;
        out.extend(found.key_pairs().iter().map(|k| AdoptableKeyPair {
            key_pair: ObservedKeyPair {
                name: k.key_name().unwrap_or_default().to_string(),
                id: k.key_pair_id().unwrap_or_default().to_string(),
                fingerprint: k.key_fingerprint().unwrap_or_default().to_string(),
                tags: observe::tag_map(k.tags()),
            },
            public_key: k.public_key().map(|p| p.trim().to_string()),
        }));
    }
    out.sort_by(|a, b| a.key_pair.name.cmp(&b.key_pair.name));
    Ok(out)
}

/// Live instances launched from these templates.
async fn launched_from(
    client: &aws_sdk_ec2::Client,
    size: i32,
    template_ids: &[String],
) -> Result<Vec<fleetform_engine::provider::ObservedInstance>, String> {
    let mut out = Vec::new();
    for chunk in template_ids.chunks(FILTER_VALUES) {
        let filter = observe::any_of("tag:aws:ec2launchtemplate:id", chunk);
        out.extend(
            observe::instances(
                "instances launched from the named templates",
                client,
                size,
                filter,
            )
            .await?,
        );
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// What import finds in one region (see the module doc); an error names
/// the read that failed: a partial discovery is never written as a config.
pub(crate) async fn region(
    client: &aws_sdk_ec2::Client,
    pages: PageSizes,
    request: &DiscoverRequest,
) -> Result<DiscoveredRegion, String> {
    // Every template, filtered here: a tag filter on the request would be
    // one more way for EC2 and the local endpoint to differ.
    let all = listing("launch templates", pages.templates, |token, size| {
        observe::template_page(client, None, token, size)
    })
    .await?;
    let matching: Vec<ObservedLaunchTemplate> = all
        .into_iter()
        .filter(|t| !t.tags.contains_key(tags::FLEET))
        .filter(|t| {
            request
                .name_prefix
                .as_deref()
                .is_none_or(|p| t.name.starts_with(p))
        })
        .filter(|t| {
            request
                .tags
                .iter()
                .all(|(k, v)| t.tags.get(k).is_some_and(|t| t == v))
        })
        .collect();
    let mut templates = Vec::new();
    for mut t in matching {
        let raw = default_version(client, &t.id).await?;
        let (subnet_id, unexpressed) = match &raw {
            Some(raw) => (subnet_of(raw), unexpressed(raw)),
            None => (None, Vec::new()),
        };
        t.default_data = raw.as_ref().map(observe::convert_template_data);
        templates.push(DiscoveredTemplate {
            template: t,
            subnet_id,
            unexpressed,
        });
    }
    templates.sort_by(|a, b| a.template.name.cmp(&b.template.name));
    let data = || {
        templates
            .iter()
            .filter_map(|t| t.template.default_data.as_ref())
    };
    let key_names: Vec<String> = data()
        .filter_map(|d| d.key_name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let image_ids: Vec<String> = data()
        .filter_map(|d| d.image_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let group_ids: Vec<String> = data()
        .flat_map(|d| d.security_group_ids.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<String> = templates.iter().map(|t| t.template.id.clone()).collect();
    let instances = launched_from(client, pages.instances, &ids).await?;
    let subnet_ids: Vec<String> = templates
        .iter()
        .filter_map(|t| t.subnet_id.clone())
        .chain(instances.iter().filter_map(|i| i.subnet_id.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let key_pairs = key_pairs_named(client, &key_names).await?;
    let images = if image_ids.is_empty() {
        Vec::new()
    } else {
        let filter = observe::any_of("image-id", &image_ids);
        observe::image_listing(
            "images the templates name",
            client.describe_images().filters(filter),
            pages.templates,
        )
        .await?
    };
    let subnets = if subnet_ids.is_empty() {
        Vec::new()
    } else {
        observe::subnets(client, pages.network, &subnet_ids).await?
    };
    let security_groups = if group_ids.is_empty() {
        Vec::new()
    } else {
        observe::security_groups(client, pages.network, &group_ids).await?
    };
    Ok(DiscoveredRegion {
        templates,
        key_pairs,
        images,
        subnets,
        security_groups,
        instances,
    })
}

/// The subnet of network interface 0, if the template names one.
fn subnet_of(data: &ResponseLaunchTemplateData) -> Option<String> {
    data.network_interfaces()
        .iter()
        .find(|n| n.device_index().unwrap_or(0) == 0)
        .and_then(|n| n.subnet_id())
        .map(str::to_string)
}

/// The settings of a template version that fleetform's launch template
/// data does not carry, by EC2's name, with their values (never user data).
pub(crate) fn unexpressed(data: &ResponseLaunchTemplateData) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: String| out.push((name.to_string(), value));
    if let Some(v) = data.placement() {
        set("Placement", format!("{v:?}"));
    }
    if let Some(v) = data.cpu_options() {
        set("CpuOptions", format!("{v:?}"));
    }
    if let Some(v) = data.credit_specification() {
        set("CreditSpecification", format!("{v:?}"));
    }
    if let Some(v) = data.capacity_reservation_specification() {
        set("CapacityReservationSpecification", format!("{v:?}"));
    }
    if let Some(v) = data.hibernation_options() {
        set("HibernationOptions", format!("{v:?}"));
    }
    if !data.license_specifications().is_empty() {
        set(
            "LicenseSpecifications",
            format!("{:?}", data.license_specifications()),
        );
    }
    if let Some(v) = data.enclave_options() {
        set("EnclaveOptions", format!("{v:?}"));
    }
    if let Some(v) = data.instance_requirements() {
        set("InstanceRequirements", format!("{v:?}"));
    }
    if let Some(v) = data.private_dns_name_options() {
        set("PrivateDnsNameOptions", format!("{v:?}"));
    }
    if let Some(v) = data.maintenance_options() {
        set("MaintenanceOptions", format!("{v:?}"));
    }
    if let Some(v) = data.disable_api_termination() {
        set("DisableApiTermination", v.to_string());
    }
    if let Some(v) = data.disable_api_stop() {
        set("DisableApiStop", v.to_string());
    }
    if let Some(v) = data.instance_initiated_shutdown_behavior() {
        set("InstanceInitiatedShutdownBehavior", v.as_str().to_string());
    }
    if let Some(v) = data.kernel_id() {
        set("KernelId", v.to_string());
    }
    if let Some(v) = data.ram_disk_id() {
        set("RamDiskId", v.to_string());
    }
    if let Some(v) = data.ebs_optimized() {
        set("EbsOptimized", v.to_string());
    }
    if let Some(v) = data.monitoring() {
        set("Monitoring", format!("{v:?}"));
    }
    if !data.security_groups().is_empty() {
        set(
            "SecurityGroups (by name)",
            data.security_groups().join(", "),
        );
    }
    for n in data.network_interfaces() {
        if n.device_index().unwrap_or(0) != 0 {
            set(
                "NetworkInterfaces",
                format!("device {}", n.device_index().unwrap_or(0)),
            );
        } else if n.subnet_id().is_some() {
            set(
                "NetworkInterfaces[0].SubnetId",
                format!(
                    "{} (a worker type names subnets in its network; fleetform's launches pass the subnet)",
                    n.subnet_id().unwrap_or_default()
                ),
            );
        }
    }
    for spec in data.tag_specifications() {
        let kind = spec.resource_type().map(|r| r.as_str()).unwrap_or("");
        if kind != "instance" && kind != "volume" {
            set("TagSpecifications", format!("for {kind}"));
        }
    }
    if let Some(spot) = data
        .instance_market_options()
        .and_then(|m| m.spot_options())
    {
        if spot.spot_instance_type().is_some()
            || spot.instance_interruption_behavior().is_some()
            || spot.block_duration_minutes().is_some()
            || spot.valid_until().is_some()
        {
            set("InstanceMarketOptions.SpotOptions", format!("{spot:?}"));
        }
    }
    for m in data.block_device_mappings() {
        if let Some(ebs) = m.ebs() {
            if ebs.snapshot_id().is_some()
                || ebs.kms_key_id().is_some()
                || ebs.delete_on_termination() == Some(false)
            {
                set(
                    "BlockDeviceMappings",
                    format!(
                        "{}: snapshot {:?}, KMS key {:?}, delete on termination {:?}",
                        m.device_name().unwrap_or_default(),
                        ebs.snapshot_id(),
                        ebs.kms_key_id(),
                        ebs.delete_on_termination()
                    ),
                );
            }
        }
    }
    if let Some(m) = data.metadata_options() {
        if m.http_protocol_ipv6().is_some() || m.instance_metadata_tags().is_some() {
            set("MetadataOptions", format!("{m:?}"));
        }
    }
    out
}

/// Every region of `request`, concurrently; the first failure is the error.
pub async fn discover(
    provider: &crate::AwsProvider,
    request: &DiscoverRequest,
) -> Result<std::collections::BTreeMap<String, DiscoveredRegion>, (String, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    for region in &request.regions {
        let client = provider.ec2(region);
        let pages = provider.pages;
        let request = request.clone();
        let name = region.clone();
        tasks.spawn(async move {
            let found = self::region(&client, pages, &request).await;
            (name, found)
        });
    }
    let mut out = std::collections::BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((region, found)) = joined else {
            return Err((String::new(), "a discovery task failed".into()));
        };
        out.insert(region.clone(), found.map_err(|cause| (region, cause))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        LaunchTemplateInstanceNetworkInterfaceSpecification, LaunchTemplatePlacement,
    };

    #[test]
    fn settings_fleetform_cannot_say_are_named_and_those_it_can_are_not() {
        let data = ResponseLaunchTemplateData::builder()
            .image_id("ami-0aaaaaaaaaaaaaaa1")
            .user_data("c2VjcmV0")
            .placement(
                LaunchTemplatePlacement::builder()
                    .tenancy("dedicated".into())
                    .build(),
            )
            .disable_api_termination(true)
            .network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecification::builder()
                    .device_index(0)
                    .subnet_id("subnet-0aaaaaaaaaaaaaaa1")
                    .groups("sg-0aaaaaaaaaaaaaaa1")
                    .build(),
            )
            .build();
        let names: Vec<String> = unexpressed(&data).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Placement",
                "DisableApiTermination",
                "NetworkInterfaces[0].SubnetId"
            ]
        );
        assert_eq!(
            subnet_of(&data).as_deref(),
            Some("subnet-0aaaaaaaaaaaaaaa1")
        );
        assert!(unexpressed(&data)
            .iter()
            .all(|(_, v)| !v.contains("c2VjcmV0")));
        let plain = ResponseLaunchTemplateData::builder()
            .image_id("ami-0aaaaaaaaaaaaaaa1")
            .build();
        assert!(unexpressed(&plain).is_empty());
    }
}

//! Mutating calls. Each is idempotent under retry: creations carry a client
//! token where EC2 has one and set tags at creation (TagSpecifications), and
//! deletions of something already gone succeed.

use crate::error;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    IamInstanceProfileSpecification, InstanceNetworkInterfaceSpecification, InstanceType,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateIamInstanceProfileSpecificationRequest,
    LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateInstanceNetworkInterfaceSpecificationRequest, LaunchTemplateSpecification,
    LaunchTemplateSpotMarketOptionsRequest, LaunchTemplateTagSpecificationRequest, MarketType,
    RequestLaunchTemplateData, ResourceType, Tag, TagSpecification, VolumeType,
};
use fleetform_engine::provider::{
    ErrorKind, LaunchSubnet, LaunchTemplateData, Mutation, MutationOutcome, ProviderError,
};
use std::collections::BTreeMap;

fn sdk_tags<K: AsRef<str>, V: AsRef<str>>(tags: impl IntoIterator<Item = (K, V)>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k.as_ref()).value(v.as_ref()).build())
        .collect()
}

/// Tags to set at creation; `None` for no tags (EC2 rejects an empty specification).
fn tagged(
    resource: ResourceType,
    tags: &BTreeMap<String, String>,
) -> Option<Vec<TagSpecification>> {
    (!tags.is_empty()).then(|| {
        vec![TagSpecification::builder()
            .resource_type(resource)
            .set_tags(Some(sdk_tags(tags)))
            .build()]
    })
}

/// The launch template data fleetform writes. Each field maps as the
/// provider's read-back (`observe::convert_template_data`) expects it, so an
/// unchanged template reads back equal:
///
/// - security groups go on the template's top level (`SecurityGroupIds`),
///   unless `assign_public_ip` is set: EC2 takes a public address only on a
///   network interface, and refuses instance-level groups beside one
///   (InvalidParameterCombination), so the groups then go on network
///   interface 0 with the address setting, and nowhere else;
/// - every block device is EBS, deleted with its instance;
/// - the spot maximum price is written in its shortest decimal form;
/// - an instance profile starting with `arn:` is an ARN, anything else a name;
/// - metadata options always enable the endpoint (fleetform never turns it off);
/// - instance and volume tags are two tag specifications.
fn template_data(data: &LaunchTemplateData) -> RequestLaunchTemplateData {
    let mut builder = RequestLaunchTemplateData::builder()
        .set_image_id(data.image_id.clone())
        .set_key_name(data.key_name.clone())
        .set_instance_type(data.instance_type.as_deref().map(InstanceType::from))
        .set_user_data(
            data.user_data
                .as_ref()
                .map(aws_smithy_types::base64::encode),
        );
    match data.assign_public_ip {
        Some(public) => {
            builder = builder.network_interfaces(
                LaunchTemplateInstanceNetworkInterfaceSpecificationRequest::builder()
                    .device_index(0)
                    .associate_public_ip_address(public)
                    .set_groups(
                        (!data.security_group_ids.is_empty())
                            .then(|| data.security_group_ids.clone()),
                    )
                    .build(),
            );
        }
        None if !data.security_group_ids.is_empty() => {
            builder = builder.set_security_group_ids(Some(data.security_group_ids.clone()));
        }
        None => {}
    }
    for device in &data.block_devices {
        builder = builder.block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&device.device_name)
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(clamped(device.size_gb))
                        .volume_type(VolumeType::from(device.volume_type.as_str()))
                        .set_iops(device.iops.map(clamped))
                        .set_throughput(device.throughput.map(clamped))
                        .set_encrypted(device.encrypted)
                        .delete_on_termination(true)
                        .build(),
                )
                .build(),
        );
    }
    if data.market.as_deref() == Some("spot") {
        builder = builder.instance_market_options(
            LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .set_spot_options(data.spot_max_price.as_deref().map(|price| {
                    LaunchTemplateSpotMarketOptionsRequest::builder()
                        .max_price(fleetform_engine::provider::canonical_price(price))
                        .build()
                }))
                .build(),
        );
    }
    if let Some(profile) = &data.iam_instance_profile {
        builder = builder.iam_instance_profile(template_profile(profile));
    }
    if let Some(metadata) = &data.metadata {
        builder = builder.metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(LaunchTemplateHttpTokensState::from(
                    metadata.http_tokens.as_str(),
                ))
                .http_put_response_hop_limit(clamped(metadata.hop_limit))
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::Enabled)
                .build(),
        );
    }
    for (resource, tags) in [
        (ResourceType::Instance, &data.instance_tags),
        (ResourceType::Volume, &data.volume_tags),
    ] {
        if !tags.is_empty() {
            builder = builder.tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(resource)
                    .set_tags(Some(sdk_tags(tags)))
                    .build(),
            );
        }
    }
    builder.build()
}

/// A count EC2 takes as a 32-bit integer; values past it (which the engine's
/// checks refuse long before) are sent as the largest, for EC2 to refuse.
fn clamped(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// An instance profile by ARN when it is one, else by name.
fn template_profile(profile: &str) -> LaunchTemplateIamInstanceProfileSpecificationRequest {
    let builder = LaunchTemplateIamInstanceProfileSpecificationRequest::builder();
    if profile.starts_with("arn:") {
        builder.arn(profile).build()
    } else {
        builder.name(profile).build()
    }
}

/// The same for RunInstances (a dry run straight from an image).
fn launch_profile(profile: &str) -> IamInstanceProfileSpecification {
    let builder = IamInstanceProfileSpecification::builder();
    if profile.starts_with("arn:") {
        builder.arn(profile).build()
    } else {
        builder.name(profile).build()
    }
}

/// Where a RunInstances call puts its instance: with a public address
/// setting, a network interface 0 carrying the subnet, the groups and the
/// setting (the template then holds a network interface too, and EC2 refuses
/// an instance-level subnet or groups beside one); otherwise the subnet and
/// groups at the instance level, which override the template's.
fn placed(
    mut request: aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder,
    subnet: Option<&LaunchSubnet>,
) -> aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder {
    let Some(subnet) = subnet else {
        return request;
    };
    let groups = (!subnet.security_group_ids.is_empty()).then(|| subnet.security_group_ids.clone());
    match subnet.assign_public_ip {
        Some(public) => request.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .subnet_id(&subnet.subnet_id)
                .set_groups(groups)
                .associate_public_ip_address(public)
                .build(),
        ),
        None => {
            request = request.subnet_id(&subnet.subnet_id);
            request.set_security_group_ids(groups)
        }
    }
}

/// Treats "already gone" as success for deletions.
fn gone_is_done(
    result: Result<MutationOutcome, ProviderError>,
) -> Result<MutationOutcome, ProviderError> {
    match result {
        Err(e) if e.kind == ErrorKind::NotFound => Ok(MutationOutcome::Done),
        other => other,
    }
}

/// Carries out one mutation with `client` (already bound to its region).
pub(crate) async fn run(
    client: &aws_sdk_ec2::Client,
    mutation: Mutation,
) -> Result<MutationOutcome, ProviderError> {
    match mutation {
        Mutation::ImportKeyPair {
            name,
            public_key,
            tags,
        } => {
            let out = client
                .import_key_pair()
                .key_name(name)
                .public_key_material(Blob::new(public_key.into_bytes()))
                .set_tag_specifications(tagged(ResourceType::KeyPair, &tags))
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::KeyPair {
                id: out.key_pair_id().unwrap_or_default().to_string(),
            })
        }
        Mutation::DeleteKeyPair { name } => gone_is_done(
            client
                .delete_key_pair()
                .key_name(name)
                .send()
                .await
                .map(|_| MutationOutcome::Done)
                .map_err(error::from_sdk),
        ),
        Mutation::CreateLaunchTemplate {
            name,
            data,
            tags,
            client_token,
        } => {
            let out = client
                .create_launch_template()
                .launch_template_name(name)
                .client_token(client_token)
                .launch_template_data(template_data(&data))
                .set_tag_specifications(tagged(ResourceType::LaunchTemplate, &tags))
                .send()
                .await
                .map_err(error::from_sdk)?;
            let template = out.launch_template();
            Ok(MutationOutcome::LaunchTemplate {
                id: template
                    .and_then(|t| t.launch_template_id())
                    .unwrap_or_default()
                    .to_string(),
                version: template
                    .and_then(|t| t.latest_version_number())
                    .unwrap_or(1),
            })
        }
        Mutation::CreateLaunchTemplateVersion {
            template_id,
            data,
            client_token,
        } => {
            let out = client
                .create_launch_template_version()
                .launch_template_id(&template_id)
                .client_token(client_token)
                .launch_template_data(template_data(&data))
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::LaunchTemplate {
                id: template_id,
                version: out
                    .launch_template_version()
                    .and_then(|v| v.version_number())
                    .unwrap_or_default(),
            })
        }
        Mutation::CreateTagOnlyVersion {
            template_id,
            source_version,
            instance_tags,
            volume_tags,
            client_token,
        } => {
            // SourceVersion: EC2 keeps every setting of the source and
            // replaces only what the request sets, here the tag specifications.
            let tags_only = LaunchTemplateData {
                instance_tags,
                volume_tags,
                ..LaunchTemplateData::default()
            };
            let out = client
                .create_launch_template_version()
                .launch_template_id(&template_id)
                .source_version(source_version.to_string())
                .client_token(client_token)
                .launch_template_data(template_data(&tags_only))
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::LaunchTemplate {
                id: template_id,
                version: out
                    .launch_template_version()
                    .and_then(|v| v.version_number())
                    .unwrap_or_default(),
            })
        }
        Mutation::SetDefaultVersion {
            template_id,
            version,
        } => {
            client
                .modify_launch_template()
                .launch_template_id(template_id)
                .default_version(version.to_string())
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::Done)
        }
        Mutation::DeleteLaunchTemplate { template_id } => gone_is_done(
            client
                .delete_launch_template()
                .launch_template_id(template_id)
                .send()
                .await
                .map(|_| MutationOutcome::Done)
                .map_err(error::from_sdk),
        ),
        Mutation::RunInstances {
            template_id,
            version,
            instance_type,
            count,
            tags,
            client_token,
            dry_run,
            subnet,
        } => {
            let request = placed(client.run_instances(), subnet.as_ref());
            let result = request
                .launch_template(
                    LaunchTemplateSpecification::builder()
                        .launch_template_id(template_id)
                        .version(if version > 0 {
                            version.to_string()
                        } else {
                            "$Default".to_string()
                        })
                        .build(),
                )
                .instance_type(InstanceType::from(instance_type.as_str()))
                .min_count(count)
                .max_count(count)
                .client_token(client_token)
                .dry_run(dry_run)
                .set_tag_specifications(tagged(ResourceType::Instance, &tags))
                .send()
                .await
                .map_err(error::from_sdk);
            match result {
                // EC2 answers a dry run that would succeed with the DryRunOperation error.
                Err(e) if dry_run && e.code.as_deref() == Some("DryRunOperation") => {
                    Ok(MutationOutcome::DryRunOk)
                }
                Err(e) if dry_run => Err(ProviderError {
                    kind: ErrorKind::DryRunFailed,
                    ..e
                }),
                Err(e) => Err(e),
                Ok(_) if dry_run => Ok(MutationOutcome::DryRunOk),
                Ok(out) => Ok(MutationOutcome::Instances {
                    ids: out
                        .instances()
                        .iter()
                        .filter_map(|i| i.instance_id().map(str::to_string))
                        .collect(),
                }),
            }
        }
        Mutation::DryRunFromImage {
            image_id,
            instance_type,
            subnet,
            iam_instance_profile,
        } => {
            let request = placed(client.run_instances(), subnet.as_ref());
            let result = request
                .image_id(image_id)
                .set_iam_instance_profile(iam_instance_profile.as_deref().map(launch_profile))
                .instance_type(InstanceType::from(instance_type.as_str()))
                .min_count(1)
                .max_count(1)
                .dry_run(true)
                .send()
                .await
                .map_err(error::from_sdk);
            match result {
                Err(e) if e.code.as_deref() == Some("DryRunOperation") => {
                    Ok(MutationOutcome::DryRunOk)
                }
                Err(e) => Err(ProviderError {
                    kind: ErrorKind::DryRunFailed,
                    ..e
                }),
                Ok(_) => Ok(MutationOutcome::DryRunOk),
            }
        }
        Mutation::TerminateInstances { ids } => {
            if ids.is_empty() {
                return Ok(MutationOutcome::Done);
            }
            gone_is_done(
                client
                    .terminate_instances()
                    .set_instance_ids(Some(ids))
                    .send()
                    .await
                    .map(|_| MutationOutcome::Done)
                    .map_err(error::from_sdk),
            )
        }
        Mutation::CopyImage {
            source_region,
            source_image,
            name,
            tags,
            client_token,
        } => {
            let out = client
                .copy_image()
                .source_region(source_region)
                .source_image_id(source_image)
                .name(name)
                .client_token(client_token)
                .set_tag_specifications(tagged(ResourceType::Image, &tags))
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::Image {
                id: out.image_id().unwrap_or_default().to_string(),
            })
        }
        Mutation::WaitForImage {
            image_id,
            timeout_secs,
        } => wait_for_image(client, &image_id, timeout_secs).await,
        Mutation::DeregisterImage {
            image_id,
            snapshot_ids,
        } => {
            gone_is_done(
                client
                    .deregister_image()
                    .image_id(image_id)
                    .send()
                    .await
                    .map(|_| MutationOutcome::Done)
                    .map_err(error::from_sdk),
            )?;
            for snapshot in snapshot_ids {
                gone_is_done(
                    client
                        .delete_snapshot()
                        .snapshot_id(snapshot)
                        .send()
                        .await
                        .map(|_| MutationOutcome::Done)
                        .map_err(error::from_sdk),
                )?;
            }
            Ok(MutationOutcome::Done)
        }
        Mutation::CreateTags { resource_ids, tags } => {
            client
                .create_tags()
                .set_resources(Some(resource_ids))
                .set_tags(Some(sdk_tags(&tags)))
                .send()
                .await
                .map_err(error::from_sdk)?;
            Ok(MutationOutcome::Done)
        }
        Mutation::CreateAutoScalingGroup { .. }
        | Mutation::UpdateAutoScalingGroup { .. }
        | Mutation::DeleteAutoScalingGroup { .. }
        | Mutation::StartInstanceRefresh { .. }
        | Mutation::AttachInstances { .. }
        | Mutation::DetachInstances { .. } => Err(ProviderError {
            kind: ErrorKind::InvalidRequest,
            code: None,
            message: "Auto Scaling is not wired into this provider yet".to_string(),
        }),
    }
}

/// Polls DescribeImages until `image_id` is `available` (backoff from 1 s to
/// 15 s), failing when it turns `failed`/`invalid`/`error`, or after `timeout_secs`.
async fn wait_for_image(
    client: &aws_sdk_ec2::Client,
    image_id: &str,
    timeout_secs: u64,
) -> Result<MutationOutcome, ProviderError> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout_secs);
    let mut pause = std::time::Duration::from_secs(1);
    let mut last = String::from("not visible yet");
    loop {
        let out = client
            .describe_images()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("image-id")
                    .values(image_id)
                    .build(),
            )
            .send()
            .await
            .map_err(error::from_sdk)?;
        if let Some(image) = out.images().first() {
            last = image
                .state()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            match last.as_str() {
                "available" => {
                    return Ok(MutationOutcome::Image {
                        id: image_id.to_string(),
                    })
                }
                "failed" | "invalid" | "error" | "deregistered" => {
                    return Err(ProviderError {
                        kind: ErrorKind::Unavailable,
                        code: None,
                        message: format!(
                            "image {image_id} became {last}: {}",
                            image
                                .state_reason()
                                .and_then(|r| r.message())
                                .unwrap_or("no reason given")
                        ),
                    })
                }
                _ => {}
            }
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(ProviderError {
                kind: ErrorKind::Unavailable,
                code: None,
                message: format!(
                    "image {image_id} was still {last} after {timeout_secs}s; run apply again to keep waiting (the copy is found by its tags, not made twice)"
                ),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetform_engine::provider::{BlockDevice, MetadataOptions};

    #[test]
    fn prices_take_their_shortest_decimal_form() {
        for (given, canonical) in [
            ("0.68", "0.68"),
            ("0.680000", "0.68"),
            ("1.0", "1"),
            ("2", "2"),
            (".5", "0.5"),
            ("0.000", "0"),
            (" 0.5 ", "0.5"),
            ("abc", "abc"),
            ("1.2.3", "1.2.3"),
        ] {
            assert_eq!(
                fleetform_engine::provider::canonical_price(given),
                canonical,
                "{given}"
            );
        }
    }

    fn data() -> LaunchTemplateData {
        LaunchTemplateData {
            image_id: Some("ami-1".into()),
            market: Some("spot".into()),
            security_group_ids: vec!["sg-1".into(), "sg-2".into()],
            block_devices: vec![BlockDevice {
                device_name: "/dev/xvdb".into(),
                size_gb: 120,
                volume_type: "io1".into(),
                iops: Some(500),
                throughput: None,
                encrypted: Some(true),
            }],
            spot_max_price: Some("0.680".into()),
            iam_instance_profile: Some("arn:aws:iam::1:instance-profile/w".into()),
            metadata: Some(MetadataOptions {
                http_tokens: "required".into(),
                hop_limit: 2,
            }),
            instance_tags: fleetform_engine::provider::Tags::from([("a".to_string(), "1")]),
            volume_tags: fleetform_engine::provider::Tags::from([("v".to_string(), "2")]),
            ..LaunchTemplateData::default()
        }
    }

    #[test]
    fn template_data_carries_every_field() {
        let request = template_data(&data());
        assert_eq!(request.security_group_ids(), ["sg-1", "sg-2"]);
        assert!(request.network_interfaces().is_empty());
        let mapping = &request.block_device_mappings()[0];
        let ebs = mapping.ebs().expect("ebs");
        assert_eq!(mapping.device_name(), Some("/dev/xvdb"));
        assert_eq!(
            (
                ebs.volume_size(),
                ebs.iops(),
                ebs.throughput(),
                ebs.encrypted()
            ),
            (Some(120), Some(500), None, Some(true))
        );
        assert_eq!(ebs.volume_type().map(|t| t.as_str()), Some("io1"));
        assert_eq!(ebs.delete_on_termination(), Some(true));
        let market = request.instance_market_options().expect("market");
        assert_eq!(market.market_type(), Some(&MarketType::Spot));
        assert_eq!(
            market.spot_options().and_then(|o| o.max_price()),
            Some("0.68")
        );
        let profile = request.iam_instance_profile().expect("profile");
        assert_eq!(
            (profile.arn(), profile.name()),
            (Some("arn:aws:iam::1:instance-profile/w"), None)
        );
        let metadata = request.metadata_options().expect("metadata");
        assert_eq!(metadata.http_tokens().map(|t| t.as_str()), Some("required"));
        assert_eq!(metadata.http_put_response_hop_limit(), Some(2));
        assert_eq!(
            metadata.http_endpoint().map(|e| e.as_str()),
            Some("enabled")
        );
        let kinds: Vec<&str> = request
            .tag_specifications()
            .iter()
            .filter_map(|t| t.resource_type().map(|r| r.as_str()))
            .collect();
        assert_eq!(kinds, ["instance", "volume"]);
    }

    #[test]
    fn a_public_address_puts_the_groups_on_network_interface_0_only() {
        let request = template_data(&LaunchTemplateData {
            assign_public_ip: Some(false),
            iam_instance_profile: Some("workers".into()),
            ..data()
        });
        assert!(
            request.security_group_ids().is_empty(),
            "EC2 refuses instance-level groups beside a network interface"
        );
        let interface = &request.network_interfaces()[0];
        assert_eq!(interface.device_index(), Some(0));
        assert_eq!(interface.groups(), ["sg-1", "sg-2"]);
        assert_eq!(interface.associate_public_ip_address(), Some(false));
        let profile = request.iam_instance_profile().expect("profile");
        assert_eq!((profile.arn(), profile.name()), (None, Some("workers")));
    }

    #[test]
    fn on_demand_and_nothing_set_write_no_options() {
        let request = template_data(&LaunchTemplateData {
            image_id: Some("ami-1".into()),
            spot_max_price: Some("0.5".into()),
            market: Some("on-demand".into()),
            ..LaunchTemplateData::default()
        });
        assert!(request.instance_market_options().is_none());
        assert!(request.metadata_options().is_none());
        assert!(request.iam_instance_profile().is_none());
        assert!(request.tag_specifications().is_empty());
        assert!(request.block_device_mappings().is_empty());
        assert!(request.security_group_ids().is_empty() && request.network_interfaces().is_empty());
    }
}

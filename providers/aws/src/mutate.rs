//! Mutating calls. Each is idempotent under retry: creations carry a client
//! token where EC2 has one and set tags at creation (TagSpecifications), and
//! deletions of something already gone succeed.

use crate::error;
use aws_sdk_ec2::primitives::Blob;
use aws_sdk_ec2::types::{
    InstanceType, LaunchTemplateInstanceMarketOptionsRequest, LaunchTemplateSpecification,
    LaunchTemplateTagSpecificationRequest, MarketType, RequestLaunchTemplateData, ResourceType,
    Tag, TagSpecification,
};
use fleetform_engine::provider::{
    ErrorKind, LaunchTemplateData, Mutation, MutationOutcome, ProviderError,
};
use std::collections::BTreeMap;

fn sdk_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
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
    if data.market.as_deref() == Some("spot") {
        builder = builder.instance_market_options(
            LaunchTemplateInstanceMarketOptionsRequest::builder()
                .market_type(MarketType::Spot)
                .build(),
        );
    }
    if !data.instance_tags.is_empty() {
        builder = builder.tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .set_tags(Some(sdk_tags(&data.instance_tags)))
                .build(),
        );
    }
    builder.build()
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
            subnet: _,
        } => {
            let result = client
                .run_instances()
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
            subnet: _,
            iam_instance_profile: _,
        } => {
            let result = client
                .run_instances()
                .image_id(image_id)
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

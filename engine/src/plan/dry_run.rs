//! FF011: every launch of a plan tried with DryRun=true, so permission and
//! parameter errors (such as an image that does not suit the instance type,
//! a subnet or security group EC2 refuses, or a missing instance profile)
//! surface in the plan, before apply changes anything.

use super::{Action, ActionKind, Plan, Resource};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::provider::{LaunchSubnet, Mutation, Provider};

/// One launch to try: the template it launches from (plan address and id,
/// when it exists), the instance type, and where.
struct Attempt<'a> {
    template: &'a str,
    template_id: Option<&'a str>,
    instance_type: &'a str,
    subnet: Option<LaunchSubnet>,
}

/// The attempts of `launch`: one per part of its split (from its pair), or
/// the launch itself when it has no placement.
fn attempts(launch: &Action) -> Vec<Attempt<'_>> {
    let Some(placement) = &launch.placement else {
        return launch
            .instance_type
            .as_deref()
            .map(|instance_type| Attempt {
                template: &launch.address,
                template_id: launch.ids.first().map(String::as_str),
                instance_type,
                subnet: None,
            })
            .into_iter()
            .collect();
    };
    placement
        .split
        .iter()
        .filter_map(|part| placement.pairs.iter().find(|p| p.holds(part)))
        .map(|pair| Attempt {
            template: pair.template.as_deref().unwrap_or(&launch.address),
            template_id: match &pair.template {
                Some(_) => pair.template_id.as_deref(),
                None => launch.ids.first().map(String::as_str),
            },
            instance_type: &pair.instance_type,
            subnet: pair.subnet_id.as_ref().map(|subnet_id| LaunchSubnet {
                subnet_id: subnet_id.clone(),
                security_group_ids: placement.security_group_ids.clone(),
                assign_public_ip: placement.assign_public_ip,
            }),
        })
        .collect()
}

/// Dry-runs each launch (each part of its split, with its subnet, security
/// groups and instance profile): from its launch template when it exists,
/// else from the image and profile the template will have. Returns a
/// diagnostic per refusal.
pub async fn dry_run(plan: &Plan, config: &Config, provider: &impl Provider) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for launch in plan
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Launch)
    {
        for attempt in attempts(launch) {
            let instance_type = attempt.instance_type.to_string();
            let mutation = match attempt.template_id {
                Some(template_id) => Mutation::RunInstances {
                    template_id: template_id.to_string(),
                    version: 0,
                    instance_type: instance_type.clone(),
                    count: 1,
                    tags: launch.tags.clone(),
                    client_token: String::new(),
                    dry_run: true,
                    subnet: attempt.subnet.clone(),
                },
                None => {
                    let data = plan
                        .actions
                        .iter()
                        .find(|a| {
                            a.resource == Resource::LaunchTemplate
                                && a.address == attempt.template
                                && a.region == launch.region
                        })
                        .and_then(|a| a.launch_template.as_ref());
                    let Some(image_id) = data.and_then(|t| t.image_id.clone()) else {
                        continue;
                    };
                    Mutation::DryRunFromImage {
                        image_id,
                        instance_type: instance_type.clone(),
                        subnet: attempt.subnet.clone(),
                        iam_instance_profile: data.and_then(|t| t.iam_instance_profile.clone()),
                    }
                }
            };
            if let Err(e) = provider.mutate(&launch.region, mutation).await {
                let name = launch
                    .address
                    .strip_prefix("worker_type.")
                    .unwrap_or(&launch.address);
                let at = config.worker_types.get(name).and_then(|wt| {
                    wt.origin
                        .attribute(&format!("instance_type.{instance_type}"))
                        .or_else(|| wt.origin.block.clone())
                });
                let into = attempt
                    .subnet
                    .as_ref()
                    .map(|s| format!(" into {}", s.subnet_id))
                    .unwrap_or_default();
                found.push(
                    Diagnostic::error(
                        Code::DryRun,
                        format!(
                            "EC2 would refuse to launch {instance_type}{into} for {} in {}: {}",
                            launch.address, launch.region, e.message
                        ),
                    )
                    .at(at, "dry run refused")
                    .help("fix the permission or parameter EC2 names before applying (DryRun=true changed nothing)"),
                );
            }
        }
    }
    found
}

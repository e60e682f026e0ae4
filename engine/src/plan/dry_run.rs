//! FF011: every launch of a plan tried with DryRun=true, so permission and
//! parameter errors (such as an image that does not suit the instance type)
//! surface in the plan, before apply changes anything.

use super::{ActionKind, Plan, Resource};
use crate::diagnostic::{Code, Diagnostic};
use crate::model::Config;
use crate::provider::{Mutation, MutationOutcome, Provider};

/// Dry-runs each launch: from its launch template when it exists, else from
/// the image the template will have. Returns a diagnostic per refusal.
pub async fn dry_run(plan: &Plan, config: &Config, provider: &impl Provider) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for launch in plan
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Launch)
    {
        let Some(instance_type) = launch.instance_type.clone() else {
            continue;
        };
        let mutation = match launch.ids.first() {
            Some(template_id) => Mutation::RunInstances {
                template_id: template_id.clone(),
                version: 0,
                instance_type: instance_type.clone(),
                count: 1,
                tags: launch.tags.clone(),
                client_token: String::new(),
                dry_run: true,
                subnet: None,
            },
            None => {
                let image = plan
                    .actions
                    .iter()
                    .find(|a| {
                        a.resource == Resource::LaunchTemplate
                            && a.address == launch.address
                            && a.region == launch.region
                    })
                    .and_then(|a| a.launch_template.as_ref())
                    .and_then(|t| t.image_id.clone());
                let Some(image_id) = image else { continue };
                Mutation::DryRunFromImage {
                    image_id,
                    instance_type: instance_type.clone(),
                    subnet: None,
                    iam_instance_profile: None,
                }
            }
        };
        match provider.mutate(&launch.region, mutation).await {
            Ok(MutationOutcome::DryRunOk) | Ok(_) => {}
            Err(e) => {
                let name = launch
                    .address
                    .strip_prefix("worker_type.")
                    .unwrap_or(&launch.address);
                let at = config.worker_types.get(name).and_then(|wt| {
                    wt.origin
                        .attribute(&format!("instance_type.{instance_type}"))
                        .or_else(|| wt.origin.block.clone())
                });
                found.push(
                    Diagnostic::error(
                        Code::DryRun,
                        format!(
                            "EC2 would refuse to launch {instance_type} for {} in {}: {}",
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

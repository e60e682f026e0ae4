//! Carrying out a plan through a [`Provider`], in dependency order: key pairs
//! and image copies, then launch templates (the promoted regions of a staged
//! roll-out after the others), then launches; terminations and deletions in
//! reverse, image prunes last. Every creation carries a client token derived
//! from the plan and the action, so running the same plan again after an
//! interruption converges instead of duplicating.
//!
//! Within a phase, actions run with bounded concurrency, interleaved
//! round-robin across worker types so that one slow or failing worker type
//! never starves the others; a failure stays with its action. Before each
//! mutating call the [`Journal`] records an intent and after it the outcome
//! (write-ahead): when the intent cannot be recorded, the call is not made.
//!
//! A launch with a placement (a worker type with a network, or instance
//! types with templates of their own) makes one call per part of its split;
//! a part whose pair fails for capacity, support or its subnet
//! ([`falls_through`]) goes to the next pair, each attempt with its own
//! intent and client token ([`attempt_token`]). The launch fails only when
//! nothing could be launched; an error that every pair would meet stops it
//! (as any action), and what earlier parts launched is still its result, so
//! that it is recorded and counted, never launched twice.

use crate::plan::{Action, ActionKind, LaunchTarget, Payload, Plan, Resource, Stage};
use crate::provider::{Mutation, MutationOutcome, Provider, ProviderError};
use crate::sensitive::Withheld;
use futures::stream::{self, StreamExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where intents and outcomes are recorded (the state store's journal).
/// Both calls are awaited, so a journal kept on the network does not hold
/// up the actions running beside the one it records.
pub trait Journal: Sync {
    /// Called before action `index` is carried out; an error means "do not run it".
    fn intent(
        &self,
        index: usize,
        action: &Action,
        client_token: &str,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
    /// Called after action `index` finished, with what happened.
    fn outcome(
        &self,
        index: usize,
        result: &Result<Vec<String>, ProviderError>,
    ) -> impl std::future::Future<Output = ()> + Send;
    /// Told, without waiting, of actions whose [`Journal::intent`] the
    /// executor will ask for soon, in the order it will ask: a journal may
    /// start recording their intents now, so that each is durable by the
    /// time its action's turn comes. The executor promises that every
    /// action announced is asked for later with the same index and token
    /// (unless the process stops first), that it announces each at most
    /// once per run, and that it announces nothing it will not ask for
    /// (a promotion skipped for a failed canary, a launch split over pairs,
    /// whose tokens depend on what earlier attempts met). The call is still
    /// made only once `intent` returned `Ok`: announcing changes when an
    /// intent is written, never whether the call waits for it. By default,
    /// nothing.
    fn intents_ahead(&self, ahead: &[Ahead<'_>]) {
        let _ = ahead;
    }
}

/// An action announced to [`Journal::intents_ahead`]: its index in the
/// plan, the action and the client token its intent will carry.
#[derive(Debug, Clone, Copy)]
pub struct Ahead<'a> {
    /// Index of the action in the plan.
    pub index: usize,
    /// The action.
    pub action: &'a Action,
    /// The client token `intent` will be asked with.
    pub client_token: &'a str,
}

/// How many actions beyond those in flight the executor announces to
/// [`Journal::intents_ahead`], in multiples of the parallelism: enough that
/// a journal whose write takes two or three calls' time keeps ahead of the
/// slots as they free, few enough that a phase's last calls still follow a
/// recent lease check.
pub const INTENTS_AHEAD_ROUNDS: usize = 4;

/// A journal that records nothing (tests, dry tooling).
pub struct NoJournal;

impl Journal for NoJournal {
    async fn intent(&self, _: usize, _: &Action, _: &str) -> Result<(), String> {
        Ok(())
    }
    async fn outcome(&self, _: usize, _: &Result<Vec<String>, ProviderError>) {}
}

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Index of the action in the plan.
    pub action: usize,
    /// `Ok` with what was created, or the error.
    pub result: Result<Vec<String>, ProviderError>,
}

/// A short stable id of a plan: SHA-256 of its JSON, first 16 hex digits.
pub fn plan_id(plan: &Plan) -> String {
    let json = serde_json::to_vec(plan).unwrap_or_default();
    crate::hex(&Sha256::digest(&json)[..8])
}

/// Seconds apply waits for a copied image to become available.
pub const COPY_TIMEOUT_SECS: u64 = 45 * 60;

/// The order actions run in: key pairs and images, launch templates (the
/// promoted regions of a staged roll-out after the rest), Auto Scaling
/// groups, instances (launches, attachments, refreshes); then detachments,
/// terminations and deletions in reverse.
fn phase(a: &Action) -> u8 {
    let creating = !matches!(
        a.action,
        ActionKind::Delete | ActionKind::Terminate | ActionKind::Prune | ActionKind::Detach
    );
    match (creating, a.resource) {
        (true, Resource::KeyPair | Resource::Image) => 0,
        (true, Resource::LaunchTemplate) if a.stage == Some(Stage::Promote) => 2,
        // An imported template is tagged after its tag-only version is made:
        // a crash between them leaves it untagged, adopted again next time.
        (true, Resource::LaunchTemplate)
            if a.action == ActionKind::Adopt && a.reason == crate::plan::Reason::Import =>
        {
            2
        }
        (true, Resource::LaunchTemplate) => 1,
        // A refresh replaces instances with the template's new version:
        // after every template change, with the launches.
        (true, Resource::AutoScalingGroup) if a.action == ActionKind::Refresh => 4,
        // A group switched from direct scaling gets its min once it holds
        // the attached instances (a group's min being lowered before its
        // instances are detached has min 0 and goes first).
        (true, Resource::AutoScalingGroup)
            if a.reason == crate::plan::Reason::ScalingChanged
                && a.action == ActionKind::Update
                && a.auto_scaling_group.as_ref().is_some_and(|g| g.min > 0) =>
        {
            5
        }
        (true, Resource::AutoScalingGroup) => 3,
        (true, Resource::Instances) => 4,
        (false, Resource::Instances) => 5,
        (false, Resource::AutoScalingGroup) => 6,
        (false, Resource::LaunchTemplate) => 7,
        (false, Resource::KeyPair) => 8,
        (false, Resource::Image) => 9,
    }
}

/// The phases in order.
const PHASES: std::ops::RangeInclusive<u8> = 0..=9;

/// Orders the actions of one phase round-robin by address (worker type), so a
/// worker type with many actions cannot hold the front of the queue.
fn interleaved(plan: &Plan, indices: Vec<usize>) -> Vec<usize> {
    let mut queues: BTreeMap<&str, std::collections::VecDeque<usize>> = BTreeMap::new();
    for i in indices {
        queues
            .entry(plan.actions[i].address.as_str())
            .or_default()
            .push_back(i);
    }
    let mut out = Vec::new();
    while queues.values().any(|q| !q.is_empty()) {
        for queue in queues.values_mut() {
            if let Some(i) = queue.pop_front() {
                out.push(i);
            }
        }
    }
    out
}

/// Called as each action finishes (progress output).
pub type Progress<'a> = &'a (dyn Fn(&Action, &Result<Vec<String>, ProviderError>) + Sync);

/// Carries out `plan` with at most `parallelism` calls in flight; one failed
/// action does not stop the others (launches whose template could not be
/// created fail with it). `done` is called as each action finishes.
pub async fn execute(
    plan: &Plan,
    withheld: &Withheld,
    provider: &impl Provider,
    parallelism: usize,
    journal: &impl Journal,
    done: Progress<'_>,
) -> Vec<Outcome> {
    let id = plan_id(plan);
    // Launch templates and image copies made by this run, by (address, region).
    let mut made = Made::default();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for current in PHASES {
        let indices: Vec<usize> = (0..plan.actions.len())
            .filter(|&i| phase(&plan.actions[i]) == current)
            .collect();
        // A promotion follows only when every canary of its worker type succeeded.
        let failed_canaries: std::collections::BTreeSet<&str> = outcomes
            .iter()
            .filter(|o| o.result.is_err())
            .map(|o| &plan.actions[o.action])
            .filter(|a| a.stage == Some(Stage::Canary))
            .map(|a| a.address.as_str())
            .collect();
        let known = &made;
        let failed_canaries = &failed_canaries;
        let skipped = |action: &Action| {
            action.stage == Some(Stage::Promote)
                && failed_canaries.contains(action.address.as_str())
        };
        let skipped = &skipped;
        let order = interleaved(plan, indices);
        let tokens: Vec<String> = order
            .iter()
            .map(|&index| client_token(&id, index, &plan.actions[index], withheld))
            .collect();
        // The intents of the actions in flight and of the next rounds are
        // announced as slots open, so the journal writes them ahead.
        let ahead = parallelism
            .max(1)
            .saturating_mul(INTENTS_AHEAD_ROUNDS.saturating_add(1));
        let mut announced = 0;
        let (order, tokens) = (&order, &tokens);
        let finished: Vec<Outcome> = stream::iter(order.iter().copied().enumerate())
            .map(|(position, index)| {
                let until = position.saturating_add(ahead).min(order.len());
                if announced < until {
                    let next: Vec<Ahead<'_>> = (announced..until)
                        .map(|p| Ahead {
                            index: order[p],
                            action: &plan.actions[order[p]],
                            client_token: tokens[p].as_str(),
                        })
                        .filter(|a| {
                            // A split launch's attempts announce nothing:
                            // their tokens depend on what earlier ones met.
                            let split = a.action.placement.is_some()
                                && a.action.action == ActionKind::Launch;
                            !skipped(a.action) && !split
                        })
                        .collect();
                    if !next.is_empty() {
                        journal.intents_ahead(&next);
                    }
                    announced = until;
                }
                let token = &tokens[position];
                async move {
                let action = &plan.actions[index];
                if skipped(action) {
                    let result = Err(ProviderError {
                        kind: crate::provider::ErrorKind::InvalidRequest,
                        code: None,
                        message: "not promoted: a canary region of this worker type failed, so the other regions keep their image".into(),
                    });
                    done(action, &result);
                    return Outcome {
                        action: index,
                        result,
                    };
                }
                let result = match &action.placement {
                    // Each attempt journals itself: one intent and token per pair tried.
                    Some(placement) if action.action == ActionKind::Launch => {
                        launch_placed(action, placement, index, token, known, provider, journal)
                            .await
                    }
                    _ => {
                        let result = match journal.intent(index, action, token).await {
                            Ok(()) => run_one(action, token, known, withheld, provider).await,
                            Err(why) => Err(not_started(&why)),
                        };
                        journal.outcome(index, &result).await;
                        result
                    }
                };
                done(action, &result);
                Outcome {
                    action: index,
                    result,
                }
            }})
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        for outcome in &finished {
            let action = &plan.actions[outcome.action];
            let key = (action.address.clone(), action.region.clone());
            match (&outcome.result, action.resource, action.action) {
                (Ok(created), Resource::LaunchTemplate, _) => {
                    if let Some(template) = created.first() {
                        made.templates.insert(key, template.clone());
                    }
                }
                (Ok(created), Resource::Image, ActionKind::Copy) => {
                    if let Some(image) = created.first() {
                        made.images.insert(key, image.clone());
                    }
                }
                _ => {}
            }
        }
        outcomes.extend(finished);
    }
    outcomes
}

/// The client token of action `index` of the plan `id`: its sensitive
/// inputs' digest joins it, so a changed secret is a new call.
fn client_token(id: &str, index: usize, action: &Action, withheld: &Withheld) -> String {
    match withheld.token_part(&action.address, &action.region) {
        Some(part) if !action.sensitive.is_empty() => format!("ff-{id}-{index}-{part}"),
        _ => format!("ff-{id}-{index}"),
    }
}

/// What earlier phases of this run created, by (address, region).
#[derive(Default)]
struct Made {
    templates: BTreeMap<(String, String), String>,
    images: BTreeMap<(String, String), String>,
}

/// The launch template data of `a`, with the id of the image copy it waits
/// for and the values the plan withholds filled in.
fn template_data(
    a: &Action,
    data: &crate::provider::LaunchTemplateData,
    made: &Made,
    withheld: &Withheld,
) -> Result<crate::provider::LaunchTemplateData, ProviderError> {
    let mut data = data.clone();
    if a.sensitive.iter().any(|s| s == "user_data") {
        // Never sent without it: a template without its user data would
        // launch workers that cannot start.
        let user_data = withheld.user_data(&a.address, &a.region).ok_or_else(|| ProviderError {
            kind: crate::provider::ErrorKind::InvalidRequest,
            code: None,
            message: "its sensitive user data was not supplied; load the configuration with the sensitive variables set".into(),
        })?;
        data.user_data = Some(user_data.to_string());
    }
    if let Some(copy) = &a.image_copy {
        let image = made
            .images
            .get(&(copy.clone(), a.region.clone()))
            .ok_or_else(|| missing("the image copy it uses (the copy failed?)"))?;
        data.image_id = Some(image.clone());
    }
    Ok(data)
}

fn not_started(why: &str) -> ProviderError {
    ProviderError {
        kind: crate::provider::ErrorKind::InvalidRequest,
        code: None,
        message: format!("not started: {why}"),
    }
}

/// Whether a launch that failed with `error` may go to the next pair: EC2
/// lacks capacity for the type in that zone, does not support it there, or
/// the subnet is unusable. Anything else (permissions, a bad template) would
/// fail the same way in every pair.
pub fn falls_through(error: &ProviderError) -> bool {
    error.code.as_deref().is_some_and(|code| {
        matches!(
            code,
            "InsufficientInstanceCapacity"
                | "Unsupported"
                | "InsufficientFreeAddressesInSubnet"
                | "InvalidSubnet"
        ) || code.starts_with("InvalidSubnetID")
            || code.starts_with("InvalidSubnet.")
    })
}

/// The client token of one launch attempt: the action's token, the part of
/// the split and the pair (EC2 answers a token reused with other
/// parameters with IdempotentParameterMismatch, so each attempt has its own;
/// the same plan run again repeats them, so a rerun converges).
pub fn attempt_token(action_token: &str, part: usize, pair: usize) -> String {
    format!("{action_token}-{part}.{pair}")
}

/// Carries out a launch with a planned split: each part tries its own pair
/// first, then the other pairs in order, for what is still to launch
/// (weighed in capacity units, never more than the part's); a pair that
/// failed for capacity, support or its subnet is not tried again by the
/// action. Every attempt records its own intent and outcome. The action
/// fails only when nothing could be launched, or on an error no other pair
/// would avoid.
async fn launch_placed(
    a: &Action,
    placement: &crate::plan::LaunchPlacement,
    index: usize,
    token: &str,
    made: &Made,
    provider: &impl Provider,
    journal: &impl Journal,
) -> Result<Vec<String>, ProviderError> {
    let mut launched: Vec<String> = Vec::new();
    let mut dead: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    let mut last: Option<ProviderError> = None;
    for (part_index, part) in placement.split.iter().enumerate() {
        let own = placement.pairs.iter().position(|p| p.holds(part));
        let weight = own.map_or(1, |i| placement.pairs[i].weight.max(1));
        let mut units = part.count.saturating_mul(weight);
        let order = own
            .into_iter()
            .chain((0..placement.pairs.len()).filter(|&i| Some(i) != own));
        for pair_index in order {
            if units == 0 {
                break;
            }
            if dead.contains(&pair_index) {
                continue;
            }
            let pair = &placement.pairs[pair_index];
            let count = units / pair.weight.max(1);
            if count == 0 {
                continue;
            }
            let token = attempt_token(token, part_index, pair_index);
            let result = match journal.intent(index, a, &token).await {
                Ok(()) => launch_pair(a, placement, pair, count, &token, made, provider).await,
                Err(why) => Err(not_started(&why)),
            };
            journal.outcome(index, &result).await;
            match result {
                Ok(ids) => {
                    launched.extend(ids);
                    units = units.saturating_sub(count.saturating_mul(pair.weight.max(1)));
                }
                Err(e) if falls_through(&e) => {
                    dead.insert(pair_index);
                    last = Some(e);
                }
                // Every other pair would fail the same way: stop. What earlier
                // parts launched is still reported, so that it is recorded
                // and counted (never launched twice); the next plan launches
                // the rest, and meets the error again if it persists.
                Err(e) if launched.is_empty() => return Err(e),
                Err(_) => return Ok(launched),
            }
        }
    }
    match last {
        Some(e) if launched.is_empty() => Err(ProviderError {
            message: format!(
                "every (zone, instance type) pair failed; the last: {}",
                e.message
            ),
            ..e
        }),
        _ => Ok(launched),
    }
}

/// One RunInstances of `count` instances into `pair`.
async fn launch_pair(
    a: &Action,
    placement: &crate::plan::LaunchPlacement,
    pair: &crate::plan::LaunchPair,
    count: u32,
    token: &str,
    made: &Made,
    provider: &impl Provider,
) -> Result<Vec<String>, ProviderError> {
    let key = |address: &str| (address.to_string(), a.region.clone());
    let template_id = match &pair.template {
        Some(template) => pair
            .template_id
            .clone()
            .or_else(|| made.templates.get(&key(template)).cloned()),
        None => a
            .ids
            .first()
            .cloned()
            .or_else(|| made.templates.get(&key(&a.address)).cloned()),
    }
    .ok_or_else(|| missing("a launch template (its creation failed?)"))?;
    let subnet = pair
        .subnet_id
        .as_ref()
        .map(|subnet_id| crate::provider::LaunchSubnet {
            subnet_id: subnet_id.clone(),
            security_group_ids: placement.security_group_ids.clone(),
            assign_public_ip: placement.assign_public_ip,
        });
    let outcome = provider
        .mutate(
            &a.region,
            Mutation::RunInstances {
                template_id,
                version: 0,
                instance_type: pair.instance_type.clone(),
                count: i32::try_from(count).unwrap_or(i32::MAX),
                tags: a.tags.clone(),
                client_token: token.to_string(),
                dry_run: false,
                subnet,
            },
        )
        .await?;
    match outcome {
        MutationOutcome::Instances { ids } => Ok(ids),
        _ => Ok(Vec::new()),
    }
}

fn missing(what: &str) -> ProviderError {
    ProviderError {
        kind: crate::provider::ErrorKind::InvalidRequest,
        code: None,
        message: format!("the plan lacks {what} for this action"),
    }
}

async fn run_one(
    a: &Action,
    token: &str,
    made: &Made,
    withheld: &Withheld,
    provider: &impl Provider,
) -> Result<Vec<String>, ProviderError> {
    let region = a.region.as_str();
    let ids = |outcome: MutationOutcome| match outcome {
        MutationOutcome::KeyPair { id }
        | MutationOutcome::Image { id }
        | MutationOutcome::Refresh { id } => vec![id],
        MutationOutcome::LaunchTemplate { id, version } => vec![id, version.to_string()],
        MutationOutcome::Instances { ids } => ids,
        MutationOutcome::DryRunOk | MutationOutcome::Done => Vec::new(),
    };
    // Plan files are checked when read; this refuses only what a caller built by hand.
    let payload = a.payload().map_err(|malformed| ProviderError {
        kind: crate::provider::ErrorKind::InvalidRequest,
        code: None,
        message: malformed.to_string(),
    })?;
    match payload {
        // Adoption only records what exists; EC2 is not called.
        Payload::Adopt { ids } => Ok(ids.to_vec()),
        Payload::ImportKeyPair {
            name,
            public_key,
            replace,
            tags,
        } => {
            if replace {
                provider
                    .mutate(
                        region,
                        Mutation::DeleteKeyPair {
                            name: name.to_string(),
                        },
                    )
                    .await?;
            }
            provider
                .mutate(
                    region,
                    Mutation::ImportKeyPair {
                        name: name.to_string(),
                        public_key: public_key.to_string(),
                        tags: tags.clone(),
                    },
                )
                .await
                .map(ids)
        }
        Payload::DeleteKeyPair { name } => provider
            .mutate(
                region,
                Mutation::DeleteKeyPair {
                    name: name.to_string(),
                },
            )
            .await
            .map(ids),
        Payload::CopyImage {
            under_way,
            source_region,
            source_image,
            name,
            tags,
        } => {
            // A copy already on its way (found by its tags) is waited for, not made again.
            let image_id = match under_way {
                Some(id) => id.to_string(),
                None => {
                    let made = provider
                        .mutate(
                            region,
                            Mutation::CopyImage {
                                source_region: source_region.to_string(),
                                source_image: source_image.to_string(),
                                name: name.to_string(),
                                tags: tags.clone(),
                                client_token: token.to_string(),
                            },
                        )
                        .await?;
                    let MutationOutcome::Image { id } = made else {
                        return Err(missing("the id of the copy"));
                    };
                    id
                }
            };
            provider
                .mutate(
                    region,
                    Mutation::WaitForImage {
                        image_id: image_id.clone(),
                        timeout_secs: COPY_TIMEOUT_SECS,
                    },
                )
                .await?;
            Ok(vec![image_id])
        }
        Payload::DeregisterImage {
            image_id,
            snapshot_ids,
        } => provider
            .mutate(
                region,
                Mutation::DeregisterImage {
                    image_id: image_id.to_string(),
                    snapshot_ids: snapshot_ids.to_vec(),
                },
            )
            .await
            .map(|_| a.ids.clone()),
        Payload::CreateTemplate { name, data, tags } => {
            let data = template_data(a, data, made, withheld)?;
            provider
                .mutate(
                    region,
                    Mutation::CreateLaunchTemplate {
                        name: name.to_string(),
                        data,
                        tags: tags.clone(),
                        client_token: token.to_string(),
                    },
                )
                .await
                .map(ids)
        }
        Payload::UpdateTemplate { template_id, data } => {
            let data = template_data(a, data, made, withheld)?;
            let created = provider
                .mutate(
                    region,
                    Mutation::CreateLaunchTemplateVersion {
                        template_id: template_id.to_string(),
                        data,
                        client_token: token.to_string(),
                    },
                )
                .await?;
            made_default(provider, region, template_id, created).await
        }
        Payload::Tag { ids: to_tag, tags } => provider
            .mutate(
                region,
                Mutation::CreateTags {
                    resource_ids: to_tag.to_vec(),
                    tags: tags.clone(),
                },
            )
            .await
            .map(|_| to_tag.to_vec()),
        Payload::TagTemplate {
            template_id,
            source_version,
            data,
        } => {
            let created = provider
                .mutate(
                    region,
                    Mutation::CreateTagOnlyVersion {
                        template_id: template_id.to_string(),
                        source_version,
                        instance_tags: data.instance_tags.clone(),
                        volume_tags: data.volume_tags.clone(),
                        client_token: token.to_string(),
                    },
                )
                .await?;
            made_default(provider, region, template_id, created).await
        }
        Payload::DeleteTemplate { template_id } => provider
            .mutate(
                region,
                Mutation::DeleteLaunchTemplate {
                    template_id: template_id.to_string(),
                },
            )
            .await
            .map(ids),
        // A split over zones goes through `launch_placed`; here one type, EC2's zone.
        Payload::Launch {
            template_id,
            count,
            target,
            tags,
        } => {
            let LaunchTarget::Type(instance_type) = target else {
                return Err(missing("a launch without a split over zones"));
            };
            let template_id = template_id
                .map(str::to_string)
                .or_else(|| {
                    made.templates
                        .get(&(a.address.clone(), a.region.clone()))
                        .cloned()
                })
                .ok_or_else(|| missing("a launch template (its creation failed?)"))?;
            provider
                .mutate(
                    region,
                    Mutation::RunInstances {
                        template_id,
                        // `$Default` is what the plan means; EC2 resolves it at launch.
                        version: 0,
                        instance_type: instance_type.to_string(),
                        count: i32::try_from(count).unwrap_or(i32::MAX),
                        tags: tags.clone(),
                        client_token: token.to_string(),
                        dry_run: false,
                        subnet: None,
                    },
                )
                .await
                .map(ids)
        }
        Payload::Terminate { ids: to_go } => provider
            .mutate(
                region,
                Mutation::TerminateInstances {
                    ids: to_go.to_vec(),
                },
            )
            .await
            .map(ids),
        Payload::CreateGroup { group } => provider
            .mutate(
                region,
                Mutation::CreateAutoScalingGroup {
                    spec: group_spec(a, group, made)?,
                },
            )
            .await
            .map(ids),
        Payload::UpdateGroup { group } => provider
            .mutate(
                region,
                Mutation::UpdateAutoScalingGroup {
                    spec: group_spec(a, group, made)?,
                    old_tags: group.old_tags.clone(),
                },
            )
            .await
            .map(ids),
        Payload::DeleteGroup { name } => provider
            .mutate(
                region,
                Mutation::DeleteAutoScalingGroup {
                    name: name.to_string(),
                },
            )
            .await
            .map(ids),
        Payload::Refresh {
            name,
            min_healthy_percentage,
        } => provider
            .mutate(
                region,
                Mutation::StartInstanceRefresh {
                    name: name.to_string(),
                    min_healthy_percentage,
                },
            )
            .await
            .map(ids),
        Payload::Attach { name, ids: which } => provider
            .mutate(
                region,
                Mutation::AttachInstances {
                    name: name.to_string(),
                    ids: which.to_vec(),
                },
            )
            .await
            .map(|_| which.to_vec()),
        Payload::Detach { name, ids: which } => provider
            .mutate(
                region,
                Mutation::DetachInstances {
                    name: name.to_string(),
                    ids: which.to_vec(),
                },
            )
            .await
            .map(|_| which.to_vec()),
    }
}

/// Makes the version `created` reports the default version of `template_id`;
/// the template id and that version.
async fn made_default(
    provider: &impl Provider,
    region: &str,
    template_id: &str,
    created: MutationOutcome,
) -> Result<Vec<String>, ProviderError> {
    let MutationOutcome::LaunchTemplate { version, .. } = created else {
        return Err(missing("a new version number"));
    };
    provider
        .mutate(
            region,
            Mutation::SetDefaultVersion {
                template_id: template_id.to_string(),
                version,
            },
        )
        .await?;
    Ok(vec![template_id.to_string(), version.to_string()])
}

/// The group a planned one makes, with the ids of the templates this run
/// created filled in.
fn group_spec(
    a: &Action,
    group: &crate::plan::PlannedGroup,
    made: &Made,
) -> Result<crate::provider::GroupSpec, ProviderError> {
    let made_by = |address: &str| {
        made.templates
            .get(&(address.to_string(), a.region.clone()))
            .cloned()
    };
    let launch_template_id = group
        .launch_template_id
        .clone()
        .or_else(|| made_by(&a.address))
        .ok_or_else(|| missing("a launch template (its creation failed?)"))?;
    let overrides = group
        .overrides
        .iter()
        .map(|o| {
            // An id known before the apply wins; a template made by this
            // apply is found by its address.
            let launch_template_id = match (&o.template_id, &o.template) {
                (Some(id), _) => Some(id.clone()),
                (None, Some(template)) => Some(
                    made_by(template)
                        .ok_or_else(|| missing("an instance type's launch template"))?,
                ),
                (None, None) => None,
            };
            Ok(crate::provider::GroupOverride {
                instance_type: o.instance_type.clone(),
                weight: o.weight,
                launch_template_id,
            })
        })
        .collect::<Result<Vec<_>, ProviderError>>()?;
    Ok(crate::provider::GroupSpec {
        name: group.name.clone(),
        launch_template_id,
        overrides,
        subnet_ids: group.subnet_ids.clone(),
        min_size: i64::from(group.min),
        max_size: i64::from(group.max_size),
        desired_capacity: group.desired_capacity.map(i64::from),
        max_instance_lifetime_secs: group
            .max_instance_lifetime_secs
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        spot: group.spot.as_ref().map(|s| crate::provider::GroupSpot {
            max_price: s.max_price.clone(),
        }),
        tags: group.tags.clone(),
    })
}

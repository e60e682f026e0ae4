//! `plan::build` on synthetic observations: the cases a live endpoint cannot
//! stage (old launch times, a region that was never read), without a network.

use fleetform_engine::model::Config;
use fleetform_engine::plan::{self, ActionKind, PlanOptions, Reason, Resource};
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Observation, Observed, ObservedInstance, ObservedLaunchTemplate,
    RegionObservation,
};
use std::collections::BTreeMap;

const HCL: &str = r#"
fleet "synthetic" {
  regions = ["us-east-1"]
}

ami_set "linux" {
  images = {
    "us-east-1" = "ami-785db401"
  }
}

worker_type "w" {
  ami_set      = ami_set.linux
  max_lifetime = "1h"

  instance_type "m5.large" { capacity = 1 }

  capacity {
    min = 1
    max = 3
  }
}
"#;

fn config() -> Config {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), HCL).expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    loaded.config.expect("valid")
}

fn address() -> String {
    "worker_type.w[\"us-east-1\"]".to_string()
}

fn instance(id: &str, launched: i64, version: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        state: "running".into(),
        instance_type: "m5.large".into(),
        launch_time: launched,
        image_id: "ami-785db401".into(),
        key_name: None,
        launch_template: Some(("lt-1".into(), version.into())),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "synthetic".to_string()),
            (tags::ADDRESS.to_string(), address()),
        ]),
        zone: None,
        subnet_id: None,
    }
}

/// The launch template exactly as the config wants it (so it is not updated).
fn template(config: &Config, extra: Option<(&str, &str)>) -> ObservedLaunchTemplate {
    let wt = &config.worker_types["w"];
    let mut data: LaunchTemplateData =
        plan::build::desired_template(config, wt, "us-east-1", Some("ami-785db401".to_string()));
    let mut tag_set = BTreeMap::from([
        (tags::FLEET.to_string(), "synthetic".to_string()),
        (tags::ADDRESS.to_string(), address()),
    ]);
    if let Some((addr, image)) = extra {
        tag_set.insert(tags::ADDRESS.to_string(), addr.to_string());
        data.image_id = Some(image.to_string());
    }
    ObservedLaunchTemplate {
        id: if extra.is_some() {
            "lt-orphan".into()
        } else {
            "lt-1".into()
        },
        name: "synthetic.w".into(),
        default_version: 1,
        latest_version: 1,
        default_data: Some(data),
        tags: tag_set.into(),
    }
}

fn observed(
    instances: Vec<ObservedInstance>,
    templates: Vec<ObservedLaunchTemplate>,
) -> Observation {
    let image = fleetform_engine::provider::ObservedImage {
        id: "ami-785db401".into(),
        name: "ubuntu".into(),
        state: "available".into(),
        virtualization: "hvm".into(),
        architecture: "x86_64".into(),
        creation_date: String::new(),
        owner: String::new(),
        snapshot_ids: Vec::new(),
        tags: BTreeMap::new(),
        root_device_name: None,
    };
    Observation {
        regions: BTreeMap::from([(
            "us-east-1".to_string(),
            RegionObservation {
                key_pairs: Observed::Complete { items: Vec::new() },
                images: Observed::Complete { items: vec![image] },
                launch_templates: Observed::Complete { items: templates },
                instances: Observed::Complete { items: instances },
                subnets: Observed::nothing(),
                security_groups: Observed::nothing(),
                offerings: Observed::nothing(),
                auto_scaling_groups: Observed::nothing(),
                adoptable: Observed::nothing(),
            },
        )]),
        api_calls: 0,
    }
}

const NOW: i64 = 100_000;

/// The plan of `config` against `obs` at [`NOW`], with default options.
fn build_at_now(
    config: &Config,
    obs: &Observation,
) -> (plan::Plan, Vec<fleetform_engine::Diagnostic>) {
    plan::build(
        config,
        obs,
        &PlanOptions {
            now: NOW,
            ..PlanOptions::default()
        },
    )
}

#[test]
fn instances_past_max_lifetime_are_terminated_and_replaced_up_to_min() {
    let config = config();
    let obs = observed(
        vec![instance("i-old", NOW - 7200, "1")],
        vec![template(&config, None)],
    );
    let (plan, diags) = build_at_now(&config, &obs);
    assert!(diags.is_empty(), "{diags:?}");
    let kinds: Vec<(ActionKind, &str)> = plan
        .actions
        .iter()
        .map(|a| (a.action, a.reason.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::Launch, "below-min"),
            (ActionKind::Terminate, "max-lifetime")
        ]
    );
    assert_eq!(plan.summary.launch, 1);
    assert_eq!(plan.summary.terminate, 1);
}

#[test]
fn young_instances_within_bounds_change_nothing() {
    let config = config();
    let obs = observed(
        vec![
            instance("i-a", NOW - 60, "1"),
            instance("i-b", NOW - 30, "1"),
        ],
        vec![template(&config, None)],
    );
    let (plan, diags) = build_at_now(&config, &obs);
    assert!(plan.is_empty(), "{:?}", plan.actions);
    assert!(diags.is_empty());
}

#[test]
fn above_max_after_a_template_change_terminates_the_old_version_first() {
    let config = config();
    let mut instances: Vec<ObservedInstance> = (0..5)
        .map(|i| instance(&format!("i-{i}"), NOW - 100 + i, "1"))
        .collect();
    instances[4].launch_template = Some(("lt-1".into(), "0".into()));
    let obs = observed(instances, vec![template(&config, None)]);
    let (plan, _) = build_at_now(&config, &obs);
    let terminate = plan
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Terminate)
        .expect("terminate");
    // i-4 is on another version; then the oldest current one.
    assert_eq!(terminate.ids, vec!["i-4".to_string(), "i-0".to_string()]);
    assert_eq!(terminate.reason, Reason::AboveMax);
}

#[test]
fn a_region_that_was_not_observed_is_skipped_with_ff005() {
    let config = config();
    let obs = Observation {
        regions: BTreeMap::new(),
        api_calls: 0,
    };
    let (plan, diags) = build_at_now(&config, &obs);
    assert!(
        plan.actions
            .iter()
            .all(|a| a.resource != Resource::Instances),
        "{:?}",
        plan.actions
    );
    assert_eq!(plan.summary.skipped_regions, vec!["us-east-1".to_string()]);
    assert!(diags.iter().any(|d| d.code.as_str() == "FF005"));
    let text = plan::render::human(&plan, false);
    assert!(
        !text.contains("EC2 matches"),
        "an unread region is never called a match: {text}"
    );
    assert!(
        text.contains("us-east-1 could not be read completely"),
        "{text}"
    );
}

#[test]
fn a_launch_template_of_a_removed_worker_type_is_deleted_within_limits() {
    let config = config();
    let obs = observed(
        vec![instance("i-a", NOW, "1")],
        vec![
            template(&config, None),
            template(
                &config,
                Some(("worker_type.gone[\"us-east-1\"]", "ami-785db401")),
            ),
        ],
    );
    let (plan, diags) = build_at_now(&config, &obs);
    let delete = plan
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Delete)
        .expect("delete");
    assert_eq!(
        (delete.resource, delete.reason.as_str()),
        (Resource::LaunchTemplate, "orphan")
    );
    assert_eq!(delete.ids, vec!["lt-orphan".to_string()]);
    assert!(
        diags.is_empty(),
        "one deletion is within the default limit of 10: {diags:?}"
    );
}

#[test]
fn a_target_keeps_only_its_address() {
    let config = config();
    let obs = observed(
        vec![instance("i-old", NOW - 7200, "1")],
        vec![
            template(&config, None),
            template(
                &config,
                Some(("worker_type.gone[\"us-east-1\"]", "ami-785db401")),
            ),
        ],
    );
    let all = build_at_now(&config, &obs).0;
    assert!(all.actions.iter().any(|a| a.address == "worker_type.gone"));
    let options = PlanOptions {
        now: NOW,
        targets: vec!["worker_type.w".into()],
        ..PlanOptions::default()
    };
    let only = plan::build(&config, &obs, &options).0;
    assert!(!only.actions.is_empty());
    assert!(
        only.actions.iter().all(|a| a.address == "worker_type.w"),
        "{:?}",
        only.actions
    );
    assert_eq!(
        only.summary.destroy, 0,
        "the summary counts only targeted actions"
    );
}

#[test]
fn any_kind_left_unread_makes_the_region_blind_to_scaling() {
    // Found by the chaos test: with only the images (or key pairs) unread, a
    // region below min used to get launches.
    let config = config();
    let unread = |obs: &mut Observation, kind: &str| {
        let region = obs.regions.get_mut("us-east-1").expect("region");
        let cause = "throttled after retries".to_string();
        match kind {
            "images" => region.images = Observed::Incomplete { cause },
            _ => region.key_pairs = Observed::Incomplete { cause },
        }
    };
    for kind in ["images", "key_pairs"] {
        let mut obs = observed(vec![], vec![template(&config, None)]);
        let (whole, _) = build_at_now(&config, &obs);
        assert!(
            whole.actions.iter().any(|a| a.action == ActionKind::Launch),
            "below min, read whole: a launch"
        );
        unread(&mut obs, kind);
        let (plan, diags) = build_at_now(&config, &obs);
        assert!(
            plan.actions
                .iter()
                .all(|a| a.action != ActionKind::Launch && a.action != ActionKind::Terminate),
            "{kind} unread: {:?}",
            plan.actions
        );
        assert_eq!(plan.summary.skipped_regions, vec!["us-east-1".to_string()]);
        assert!(diags.iter().any(|d| d.code.as_str() == "FF005"), "{kind}");
    }
}

/// A plan of `worker_types` worker types over three regions, each updating a
/// launch template with a user data diff of `lines` lines and launching two.
fn big_plan(worker_types: usize, lines: usize) -> plan::Plan {
    use fleetform_engine::plan::{Action, Change};
    let old: String = (0..lines).map(|n| format!("echo step {n}\n")).collect();
    let new: String = (0..lines)
        .map(|n| format!("echo step {n} again\n"))
        .collect();
    let mut actions = Vec::new();
    for w in 0..worker_types {
        for region in ["us-east-1", "us-west-2", "eu-central-1"] {
            let address = format!("worker_type.gecko-t-linux-{w:05}");
            let mut update = Action::new(
                &address,
                region,
                ActionKind::Update,
                Resource::LaunchTemplate,
                Reason::ConfigChanged,
            );
            update.changes = vec![Change {
                path: "user_data".into(),
                old: Some(old.clone()),
                new: Some(new.clone()),
                sensitive: false,
            }];
            let mut launch = Action::new(
                &address,
                region,
                ActionKind::Launch,
                Resource::Instances,
                Reason::BelowMin,
            );
            launch.count = Some(2);
            actions.extend([update, launch]);
        }
    }
    plan::Plan {
        format_version: "1".into(),
        fleet: "big".into(),
        summary: Default::default(),
        actions,
        incomplete: Vec::new(),
        diagnostics: Vec::new(),
        images: Vec::new(),
        rollouts: Vec::new(),
        unweighed: Vec::new(),
        key_impacts: Vec::new(),
        skipped_pairs: Vec::new(),
    }
}

#[test]
fn markdown_fits_a_github_comment_by_folding_detail_step_by_step() {
    use fleetform_engine::plan::render::{markdown, MARKDOWN_LIMIT};
    // Small: every change shown.
    let small = markdown(&big_plan(2, 3));
    assert!(small.contains("#### Details"), "{small}");
    assert!(small.contains("echo step 1 again"));
    // Details too long, table fits: the table, one row per region.
    let medium = markdown(&big_plan(60, 40));
    assert!(medium.chars().count() <= MARKDOWN_LIMIT);
    assert!(!medium.contains("#### Details"));
    assert!(
        medium.contains("| `worker_type.gecko-t-linux-00059` | eu-central-1 |"),
        "{medium}"
    );
    assert!(medium.contains("Details left out to fit"));
    // Thousands of worker types: one row per address, then a count of the rest.
    let large = markdown(&big_plan(3_000, 40));
    let size = large.chars().count();
    assert!(size <= MARKDOWN_LIMIT, "{size}");
    assert!(size > MARKDOWN_LIMIT / 2, "uses the room it has: {size}");
    assert!(
        large.contains("| `worker_type.gecko-t-linux-00000` | 3 | launch ×3 update ×3 |"),
        "{}",
        &large[..2000]
    );
    assert!(large.contains("more addresses |"), "the rest is counted");
}

/// The observation with one more key pair, `synthetic.NAME`, tagged as `key_pair.NAME`.
fn with_key_pair(mut obs: Observation, name: &str) -> Observation {
    let key = fleetform_engine::provider::ObservedKeyPair {
        name: format!("synthetic.{name}"),
        id: "key-1".into(),
        fingerprint: String::new(),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "synthetic".to_string()),
            (tags::ADDRESS.to_string(), format!("key_pair.{name}")),
        ]),
    };
    if let Some(region) = obs.regions.get_mut("us-east-1") {
        region.key_pairs = Observed::Complete { items: vec![key] };
    }
    obs
}

/// The plan with `recorded` as the last version's key pair users.
fn build_with_recorded(
    config: &Config,
    obs: &Observation,
    recorded: &[(&str, &[&str])],
) -> (plan::Plan, Vec<fleetform_engine::Diagnostic>) {
    plan::build(
        config,
        obs,
        &PlanOptions {
            now: NOW,
            recorded_key_users: recorded
                .iter()
                .map(|(k, users)| (k.to_string(), users.iter().map(|u| u.to_string()).collect()))
                .collect(),
            ..PlanOptions::default()
        },
    )
}

#[test]
fn a_deleted_key_pair_names_the_worker_types_the_last_version_recorded() {
    let config = config();
    // Nothing live uses the key any more: only the recorded version knows.
    let obs = with_key_pair(observed(Vec::new(), vec![template(&config, None)]), "old");
    let (plan, diags) = build_with_recorded(&config, &obs, &[("old", &["retired", "w"])]);
    let impact = &plan.key_impacts[0];
    assert_eq!(impact.address, "key_pair.old");
    assert_eq!(impact.action, ActionKind::Delete);
    let users: Vec<(&str, &[String])> = impact
        .worker_types
        .iter()
        .map(|u| (u.worker_type.as_str(), u.sources.as_slice()))
        .collect();
    let recorded = ["recorded".to_string()];
    assert_eq!(
        users,
        vec![("retired", &recorded[..]), ("w", &recorded[..])]
    );
    let finding = diags
        .iter()
        .find(|d| d.code.as_str() == "FF008")
        .expect("FF008");
    assert!(
        finding.message.contains("[retired, w]"),
        "{}",
        finding.message
    );
    // At the worker type of the config that switched away from the key.
    assert_eq!(finding.location, config.worker_types["w"].origin.block);
}

#[test]
fn a_deleted_key_pair_no_worker_type_of_the_config_used_points_at_the_fleet() {
    let config = config();
    let obs = with_key_pair(observed(Vec::new(), vec![template(&config, None)]), "old");
    let (plan, diags) = build_with_recorded(&config, &obs, &[("old", &["retired"])]);
    assert_eq!(plan.key_impacts[0].worker_types[0].worker_type, "retired");
    let finding = diags
        .iter()
        .find(|d| d.code.as_str() == "FF008")
        .expect("FF008");
    assert!(finding.location.is_some());
    assert_eq!(finding.location, config.fleet.origin.block);
}

//! The AMI-set lifecycle as pure engine logic, on synthetic observations:
//! how images are declared and resolved, which copies are planned, what is
//! pruned, and how a staged roll-out holds regions back. No network.

use fleetform_engine::images::{self, ImageVia};
use fleetform_engine::model::Config;
use fleetform_engine::plan::{self, ActionKind, PlanOptions, Resource, Stage};
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Observation, Observed, ObservedImage, ObservedLaunchTemplate,
    RegionObservation,
};
use std::collections::BTreeMap;

fn load(hcl: &str) -> fleetform_engine::Loaded {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default())
}

fn config(hcl: &str) -> Config {
    let loaded = load(hcl);
    let messages: Vec<String> = loaded
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    loaded
        .config
        .unwrap_or_else(|| panic!("valid: {messages:?}"))
}

fn fleet(regions: &str, set: &str, worker_extra: &str) -> String {
    format!(
        "fleet \"f\" {{\n  regions = [{regions}]\n}}\n\nami_set \"s\" {{\n{set}\n}}\n\nworker_type \"w\" {{\n  ami_set = ami_set.s\n{worker_extra}\n  instance_type \"m5.large\" {{ capacity = 1 }}\n  capacity {{\n    max = 2\n  }}\n}}\n"
    )
}

fn image(id: &str, name: &str, created: &str, state: &str, tag: &[(&str, &str)]) -> ObservedImage {
    ObservedImage {
        id: id.into(),
        name: name.into(),
        state: state.into(),
        virtualization: "hvm".into(),
        architecture: "x86_64".into(),
        creation_date: created.into(),
        owner: "123456789012".into(),
        snapshot_ids: vec![format!("snap-{}", &id[4..])],
        tags: tag
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        root_device_name: None,
    }
}

/// The template of `w` in `region` exactly as `c` wants it, but launching `image`.
fn template(c: &Config, region: &str, image: &str) -> ObservedLaunchTemplate {
    let data: LaunchTemplateData =
        plan::build::desired_template(c, &c.worker_types["w"], region, Some(image.to_string()));
    ObservedLaunchTemplate {
        id: format!("lt-{region}"),
        name: "f.w".into(),
        default_version: 1,
        latest_version: 1,
        default_data: Some(data),
        tags: fleetform_engine::provider::Tags::from([
            (tags::FLEET.to_string(), "f".to_string()),
            (
                tags::ADDRESS.to_string(),
                format!("worker_type.w[\"{region}\"]"),
            ),
        ]),
    }
}

fn region(images: Vec<ObservedImage>, templates: Vec<ObservedLaunchTemplate>) -> RegionObservation {
    RegionObservation {
        key_pairs: Observed::Complete { items: vec![] },
        images: Observed::Complete { items: images },
        launch_templates: Observed::Complete { items: templates },
        instances: Observed::Complete { items: vec![] },
        subnets: Observed::nothing(),
        security_groups: Observed::nothing(),
        offerings: Observed::nothing(),
        auto_scaling_groups: Observed::nothing(),
        adoptable: Observed::nothing(),
    }
}

fn observation(regions: Vec<(&str, RegionObservation)>) -> Observation {
    Observation {
        regions: regions
            .into_iter()
            .map(|(r, o)| (r.to_string(), o))
            .collect(),
        api_calls: 0,
    }
}

#[test]
fn an_ami_set_declares_its_images_in_exactly_one_way() {
    let none = load(&fleet("\"us-east-1\"", "  retain = \"30d\"", ""));
    assert!(none.config.is_none());
    assert!(
        none.diagnostics
            .iter()
            .any(|d| d.message.contains("has no images")),
        "{:?}",
        none.diagnostics
    );
    let two = load(&fleet(
        "\"us-east-1\"",
        "  images = { \"us-east-1\" = \"ami-785db401\" }\n  lookup {\n    name = \"x-*\"\n  }",
        "",
    ));
    assert!(two
        .diagnostics
        .iter()
        .any(|d| d.message.contains("in 2 ways (images, lookup)")));
    let stray = load(&fleet(
        "\"us-east-1\"",
        "  images = { \"us-east-1\" = \"ami-785db401\" }\n  copy_to = [\"us-west-2\"]",
        "",
    ));
    assert!(stray
        .diagnostics
        .iter()
        .any(|d| d.message.contains("`copy_to` needs a `source` block")));
    // copy_to may sit inside the source block or beside it.
    for set in [
        "  source {\n    region  = \"us-east-1\"\n    image   = \"ami-785db401\"\n    copy_to = [\"us-west-2\"]\n  }",
        "  source {\n    region = \"us-east-1\"\n    image  = \"ami-785db401\"\n  }\n  copy_to = [\"us-west-2\"]",
    ] {
        let c = config(&fleet("\"us-east-1\", \"us-west-2\"", set, ""));
        let source = c.ami_sets["s"].source.clone().expect("source");
        assert_eq!(source.copy_to, ["us-west-2"]);
    }
}

#[test]
fn ff002_a_worker_type_region_outside_the_source_and_its_copies_is_static() {
    let loaded = load(&fleet(
        "\"us-east-1\", \"us-west-2\"",
        "  source {\n    region = \"us-east-1\"\n    image  = \"ami-785db401\"\n  }",
        "",
    ));
    let ff002: Vec<&String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code.as_str() == "FF002")
        .map(|d| &d.message)
        .collect();
    assert_eq!(ff002.len(), 1, "{ff002:?}");
    assert!(ff002[0].contains("us-west-2"));
}

#[test]
fn a_lookup_resolves_to_the_newest_available_match_per_region() {
    let c = config(&fleet(
        "\"us-east-1\"",
        "  lookup {\n    name = \"dw-*\"\n  }",
        "",
    ));
    let found = vec![
        image(
            "ami-00000001",
            "dw-1",
            "2026-01-01T00:00:00.000Z",
            "available",
            &[],
        ),
        image(
            "ami-00000002",
            "dw-2",
            "2026-02-01T00:00:00.000Z",
            "available",
            &[],
        ),
        // Newer, but not usable yet, or not a match.
        image(
            "ami-00000003",
            "dw-3",
            "2026-03-01T00:00:00.000Z",
            "pending",
            &[],
        ),
        image(
            "ami-00000004",
            "other",
            "2026-04-01T00:00:00.000Z",
            "available",
            &[],
        ),
    ];
    let obs = observation(vec![("us-east-1", region(found, vec![]))]);
    let planned = images::resolve(&c, &obs, &BTreeMap::new());
    assert_eq!(planned.len(), 1);
    assert_eq!(planned[0].via, ImageVia::Lookup);
    assert_eq!(planned[0].image_id.as_deref(), Some("ami-00000002"));
    assert_eq!(planned[0].name.as_deref(), Some("dw-2"));

    // A rollback's pin wins over the newest match.
    let pins = BTreeMap::from([(
        "s".to_string(),
        BTreeMap::from([("us-east-1".to_string(), "ami-00000001".to_string())]),
    )]);
    let pinned = images::resolve(&c, &obs, &pins);
    assert_eq!(pinned[0].via, ImageVia::Pinned);
    assert_eq!(pinned[0].image_id.as_deref(), Some("ami-00000001"));
}

#[test]
fn copies_are_planned_once_and_never_where_images_could_not_be_read() {
    let c = config(&fleet(
        "\"us-east-1\", \"us-west-2\", \"eu-west-1\"",
        "  source {\n    region = \"us-east-1\"\n    image  = \"ami-785db401\"\n  }\n  copy_to = [\"us-west-2\", \"eu-west-1\"]",
        "",
    ));
    let source = image(
        "ami-785db401",
        "base",
        "2026-01-01T00:00:00.000Z",
        "available",
        &[],
    );
    let copy_tags = [
        (tags::FLEET, "f"),
        (tags::AMI_SET, "s"),
        (tags::SOURCE_IMAGE, "ami-785db401"),
    ];
    let mut blind = region(vec![], vec![]);
    blind.images = Observed::Incomplete {
        cause: "throttled".into(),
    };
    let obs = observation(vec![
        ("us-east-1", region(vec![source], vec![])),
        // A copy already made: used, not copied again.
        (
            "us-west-2",
            region(
                vec![image(
                    "ami-0000000a",
                    "s-ami-785db401",
                    "2026-01-02T00:00:00.000Z",
                    "available",
                    &copy_tags,
                )],
                vec![],
            ),
        ),
        ("eu-west-1", blind),
    ]);
    let (p, _) = plan::build(&c, &obs, &PlanOptions::default());
    let copies: Vec<&str> = p
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Copy)
        .map(|a| a.region.as_str())
        .collect();
    assert!(copies.is_empty(), "{copies:?}");
    let west = images::planned(&p.images, "s", "us-west-2").expect("planned");
    assert_eq!(west.image_id.as_deref(), Some("ami-0000000a"));
    let template = p
        .actions
        .iter()
        .find(|a| a.resource == Resource::LaunchTemplate && a.region == "us-west-2")
        .expect("template");
    assert_eq!(
        template
            .launch_template
            .as_ref()
            .and_then(|t| t.image_id.as_deref()),
        Some("ami-0000000a")
    );
    // eu-west-1 could not be read: no copy and no template there.
    assert!(
        p.actions.iter().all(|a| a.region != "eu-west-1"),
        "{:?}",
        p.actions
    );

    // Read completely and without a copy: one copy, and the template waits for it.
    let obs = observation(vec![("eu-west-1", region(vec![], vec![]))]);
    let (p, _) = plan::build(&c, &obs, &PlanOptions::default());
    let copy = p
        .actions
        .iter()
        .find(|a| a.action == ActionKind::Copy && a.region == "eu-west-1")
        .expect("a copy");
    assert_eq!(copy.source_image.as_deref(), Some("ami-785db401"));
    assert_eq!(
        copy.tags.get(tags::SOURCE_IMAGE).map(String::as_str),
        Some("ami-785db401")
    );
    let template = p
        .actions
        .iter()
        .find(|a| a.resource == Resource::LaunchTemplate && a.region == "eu-west-1")
        .expect("template");
    assert_eq!(template.image_copy.as_deref(), Some("ami_set.s"));
    assert_eq!(p.summary.copy, 1);
}

#[test]
fn prunes_are_past_retain_unreferenced_and_never_the_newest() {
    let c = config(&fleet(
        "\"us-east-1\"",
        "  images = { \"us-east-1\" = \"ami-00000002\" }\n  retain = \"7d\"",
        "",
    ));
    let t = [(tags::FLEET, "f"), (tags::AMI_SET, "s")];
    let found = vec![
        image(
            "ami-00000001",
            "a",
            "2026-01-01T00:00:00.000Z",
            "available",
            &t,
        ),
        image(
            "ami-00000002",
            "b",
            "2026-01-02T00:00:00.000Z",
            "available",
            &t,
        ), // configured
        image(
            "ami-00000003",
            "c",
            "2026-01-03T00:00:00.000Z",
            "available",
            &t,
        ), // held by a version
        image(
            "ami-00000004",
            "d",
            "2026-01-04T00:00:00.000Z",
            "available",
            &t,
        ), // newest
        image(
            "ami-00000005",
            "e",
            "2026-01-01T00:00:00.000Z",
            "available",
            &[(tags::AMI_SET, "s")],
        ), // not the fleet's
    ];
    let obs = observation(vec![(
        "us-east-1",
        region(found, vec![template(&c, "us-east-1", "ami-00000002")]),
    )]);
    let now = images::parse_time("2026-03-01T00:00:00.000Z").expect("time");
    let versions = vec![fleetform_engine::images::VersionImages {
        number: 4,
        time: now - 86_400,
        images: BTreeMap::from([("us-east-1".to_string(), vec!["ami-00000003".to_string()])]),
    }];
    let options = PlanOptions {
        now,
        versions,
        ..PlanOptions::default()
    };
    let (p, diags) = plan::build(&c, &obs, &options);
    let prunes: Vec<&Vec<String>> = p
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Prune)
        .map(|a| &a.ids)
        .collect();
    assert_eq!(
        prunes,
        [&vec![
            "ami-00000001".to_string(),
            "snap-00000001".to_string()
        ]]
    );
    let kept: Vec<&str> = diags
        .iter()
        .filter(|d| d.code.as_str() == "FF001")
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept
        .iter()
        .any(|m| m.contains("ami-00000002") && m.contains("worker types [w]")));
    assert!(kept
        .iter()
        .any(|m| m.contains("ami-00000003") && m.contains("versions [4]")));
    assert_eq!((p.summary.prune, p.summary.destroy), (1, 1));

    // Eleven deletions are past the default limit of 10 (FF006): prunes count.
    let many: Vec<ObservedImage> = (10..22)
        .map(|n| {
            image(
                &format!("ami-000000{n}"),
                "x",
                &format!("2026-01-{n}T00:00:00.000Z"),
                "available",
                &t,
            )
        })
        .collect();
    let obs = observation(vec![("us-east-1", region(many, vec![]))]);
    let (_, diags) = plan::build(&c, &obs, &options);
    assert!(diags
        .iter()
        .any(|d| d.code.as_str() == "FF006" && d.message.contains("deletes 11")));
}

#[test]
fn a_staged_roll_out_holds_other_regions_until_promoted() {
    let c = config(&fleet(
        "\"us-east-1\", \"us-west-2\"",
        "  images = {\n    \"us-east-1\" = \"ami-00000002\"\n    \"us-west-2\" = \"ami-00000002\"\n  }",
        "  rollout {\n    canary_regions = [\"us-east-1\"]\n  }",
    ));
    let obs = observation(vec![
        (
            "us-east-1",
            region(vec![], vec![template(&c, "us-east-1", "ami-00000001")]),
        ),
        (
            "us-west-2",
            region(vec![], vec![template(&c, "us-west-2", "ami-00000001")]),
        ),
    ]);
    let (held, _) = plan::build(&c, &obs, &PlanOptions::default());
    let stages: Vec<(&str, Option<Stage>)> = held
        .actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate)
        .map(|a| (a.region.as_str(), a.stage))
        .collect();
    assert_eq!(stages, [("us-east-1", Some(Stage::Canary))]);
    let statuses: Vec<(&str, &str)> = held.rollouts[0]
        .regions
        .iter()
        .map(|r| (r.region.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(statuses, [("us-east-1", "canary"), ("us-west-2", "held")]);

    let promote = PlanOptions {
        promote: true,
        ..PlanOptions::default()
    };
    let (promoted, _) = plan::build(&c, &obs, &promote);
    let stages: Vec<(&str, Option<Stage>)> = promoted
        .actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate)
        .map(|a| (a.region.as_str(), a.stage))
        .collect();
    assert_eq!(
        stages,
        [
            ("us-east-1", Some(Stage::Canary)),
            ("us-west-2", Some(Stage::Promote))
        ]
    );
}

#[test]
fn a_rollback_whose_image_vanished_is_blocked_and_never_falls_back_to_another_image() {
    // Version N used ami-00000001; it has been deregistered since. The
    // rollback pins it: the plan must refuse (FF002), never move the
    // template to an image that is gone, nor fall back to another.
    let c = config(&fleet(
        "\"us-east-1\"",
        "  lookup {\n    name = \"dw-*\"\n  }",
        "",
    ));
    let current = image(
        "ami-00000002",
        "dw-2",
        "2026-02-01T00:00:00.000Z",
        "available",
        &[],
    );
    let obs = observation(vec![(
        "us-east-1",
        region(
            vec![current],
            vec![template(&c, "us-east-1", "ami-00000002")],
        ),
    )]);
    let options = PlanOptions {
        pins: BTreeMap::from([(
            "s".to_string(),
            BTreeMap::from([("us-east-1".to_string(), "ami-00000001".to_string())]),
        )]),
        promote: true,
        ..PlanOptions::default()
    };
    let (plan, diagnostics) = plan::build(&c, &obs, &options);
    assert!(
        diagnostics
            .iter()
            .any(|d| d.is_error() && d.code.as_str() == "FF002"),
        "{diagnostics:?}"
    );
    let moved: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| a.resource == Resource::LaunchTemplate)
        .filter(|a| {
            a.launch_template
                .as_ref()
                .and_then(|t| t.image_id.as_deref())
                != Some("ami-00000001")
        })
        .collect();
    assert!(moved.is_empty(), "no other image is chosen: {moved:?}");
}

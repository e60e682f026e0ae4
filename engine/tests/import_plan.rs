//! The plan of an imported configuration, without a network: objects made by
//! hand that the configuration names by EC2 name are adopted (tagged) with
//! reason `import`, each template gets one tag-only version when nothing
//! else differs, nothing is created, launched or terminated, and an object
//! that already carries the fleet's tag is never adopted again.

use fleetform_engine::plan::{self, ActionKind, PlanOptions, Reason, Resource};
use fleetform_engine::provider::{
    Adoptable, AdoptableKeyPair, LaunchTemplateData, MetadataOptions, Observation, Observed,
    ObservedImage, ObservedInstance, ObservedKeyPair, ObservedLaunchTemplate, RegionObservation,
    Tags,
};
use std::collections::BTreeMap;

const REGION: &str = "us-east-1";
const IMAGE: &str = "ami-0aaaaaaaaaaaaaaa1";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy";

fn config(metadata_tokens: &str) -> fleetform_engine::model::Config {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("import.hcl"),
        format!(
            r#"fleet "ff" {{
  regions = ["{REGION}"]
}}

key_pair "hand" {{
  ec2_name   = "hand-key"
  public_key = "{KEY}"
}}

ami_set "linux" {{
  images = {{
    "{REGION}" = "{IMAGE}"
  }}
}}

worker_type "linux" {{
  ec2_name = "hand-linux"
  ami_set  = ami_set.linux
  key_pair = key_pair.hand
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    min = 0
    max = 3
  }}
  metadata {{
    http_tokens = "{metadata_tokens}"
    hop_limit   = 1
  }}
}}
"#
        ),
    )
    .expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    loaded
        .config
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

fn hand_template() -> ObservedLaunchTemplate {
    ObservedLaunchTemplate {
        id: "lt-0aaaaaaaaaaaaaaa1".into(),
        name: "hand-linux".into(),
        default_version: 1,
        latest_version: 2,
        default_data: Some(LaunchTemplateData {
            image_id: Some(IMAGE.into()),
            instance_type: Some("m5.large".into()),
            key_name: Some("hand-key".into()),
            metadata: Some(MetadataOptions {
                http_tokens: "optional".into(),
                hop_limit: 1,
            }),
            ..LaunchTemplateData::default()
        }),
        tags: Tags::new(),
    }
}

fn instance(id: &str, tags: BTreeMap<String, String>) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        state: "running".into(),
        instance_type: "m5.large".into(),
        launch_time: 0,
        image_id: IMAGE.into(),
        key_name: Some("hand-key".into()),
        launch_template: Some(("lt-0aaaaaaaaaaaaaaa1".into(), "1".into())),
        tags: tags.into(),
        zone: None,
        subnet_id: None,
    }
}

fn observation(adoptable: Adoptable, tagged: Vec<ObservedInstance>) -> Observation {
    let image = ObservedImage {
        id: IMAGE.into(),
        name: "linux".into(),
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
            REGION.to_string(),
            RegionObservation {
                key_pairs: Observed::Complete { items: Vec::new() },
                images: Observed::Complete { items: vec![image] },
                launch_templates: Observed::Complete { items: Vec::new() },
                instances: Observed::Complete { items: tagged },
                subnets: Observed::nothing(),
                security_groups: Observed::nothing(),
                offerings: Observed::nothing(),
                auto_scaling_groups: Observed::nothing(),
                adoptable: Observed::Complete { items: adoptable },
            },
        )]),
        api_calls: 0,
    }
}

fn hand_made(tagged_by_another_apply: bool) -> (Adoptable, Vec<ObservedInstance>) {
    let fleet_tags = BTreeMap::from([
        ("fleetform:fleet".to_string(), "ff".to_string()),
        (
            "fleetform:address".to_string(),
            format!("worker_type.linux[\"{REGION}\"]"),
        ),
        ("fleetform:worker-type".to_string(), "linux".to_string()),
    ]);
    let mut instances = vec![
        instance("i-1", BTreeMap::new()),
        instance("i-2", BTreeMap::new()),
    ];
    let mut tagged = Vec::new();
    if tagged_by_another_apply {
        instances[1].tags = fleet_tags.clone().into();
        tagged.push(instances[1].clone());
    }
    (
        Adoptable {
            launch_templates: vec![hand_template()],
            key_pairs: vec![AdoptableKeyPair {
                key_pair: ObservedKeyPair {
                    name: "hand-key".into(),
                    id: "key-0aaaaaaaaaaaaaaa1".into(),
                    fingerprint: String::new(),
                    tags: Tags::new(),
                },
                public_key: Some(format!("{KEY} comment")),
            }],
            instances,
        },
        tagged,
    )
}

fn options() -> PlanOptions {
    PlanOptions::default()
}

#[test]
fn objects_made_by_hand_are_adopted_by_tags_with_one_tag_only_version() {
    let config = config("optional");
    let (adoptable, tagged) = hand_made(false);
    let (plan, diagnostics) = plan::build(&config, &observation(adoptable, tagged), &options());
    let summary: Vec<(ActionKind, Resource, Reason, Vec<String>)> = plan
        .actions
        .iter()
        .map(|a| (a.action, a.resource, a.reason, a.ids.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                ActionKind::Adopt,
                Resource::KeyPair,
                Reason::Import,
                vec!["key-0aaaaaaaaaaaaaaa1".to_string()]
            ),
            (
                ActionKind::Update,
                Resource::LaunchTemplate,
                Reason::Import,
                vec!["lt-0aaaaaaaaaaaaaaa1".to_string(), "1".to_string()]
            ),
            (
                ActionKind::Adopt,
                Resource::LaunchTemplate,
                Reason::Import,
                vec!["lt-0aaaaaaaaaaaaaaa1".to_string()]
            ),
            (
                ActionKind::Adopt,
                Resource::Instances,
                Reason::Import,
                vec!["i-1".to_string(), "i-2".to_string()]
            ),
        ],
        "{diagnostics:?}"
    );
    // The version only adds fleetform's tags; the key pair gets the digest
    // of its key, which is the configuration's (a comment does not count).
    let version = plan.actions[1]
        .launch_template
        .as_ref()
        .expect("the new version");
    assert_eq!(version.instance_tags["fleetform:fleet"], "ff");
    assert_eq!(version.volume_tags["fleetform:fleet"], "ff");
    // The rest of the template stays out of the plan (its user data too).
    assert_eq!(version.image_id, None);
    assert_eq!(version.user_data, None);
    let key = &plan.actions[0];
    assert_eq!(key.name.as_deref(), Some("hand-key"));
    assert_eq!(
        key.tags["fleetform:key-digest"],
        plan::build::key_digest(KEY)
    );
    assert!(
        plan.actions.iter().all(|a| a.payload().is_ok()),
        "every action makes a payload"
    );
}

#[test]
fn an_object_another_apply_tagged_is_not_adopted_twice() {
    let config = config("optional");
    let (adoptable, tagged) = hand_made(true);
    let (plan, _) = plan::build(&config, &observation(adoptable, tagged), &options());
    let adopted: Vec<&String> = plan
        .actions
        .iter()
        .filter(|a| a.resource == Resource::Instances)
        .flat_map(|a| &a.ids)
        .collect();
    assert_eq!(adopted, ["i-1"]);
    assert!(plan
        .actions
        .iter()
        .all(|a| !matches!(a.action, ActionKind::Launch | ActionKind::Terminate)));
}

#[test]
fn a_template_that_differs_from_its_configuration_gets_fleetforms_version_not_a_tag_only_one() {
    // The configuration asks IMDSv2; the template allows v1.
    let config = config("required");
    let (adoptable, tagged) = hand_made(false);
    let (plan, _) = plan::build(&config, &observation(adoptable, tagged), &options());
    let updates: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Update)
        .collect();
    assert_eq!(updates.len(), 1, "{:?}", plan.actions);
    assert_eq!(updates[0].reason, Reason::ConfigChanged);
    assert!(updates[0]
        .changes
        .iter()
        .any(|c| c.path == "metadata.http_tokens"));
    assert!(plan
        .actions
        .iter()
        .any(|a| a.action == ActionKind::Adopt && a.resource == Resource::LaunchTemplate));
}

#[test]
fn ec2_name_is_what_new_templates_and_key_pairs_are_created_as() {
    let config = config("optional");
    // Nothing in EC2 yet: fleetform creates them, under their EC2 names.
    let (plan, _) = plan::build(
        &config,
        &observation(Adoptable::default(), Vec::new()),
        &options(),
    );
    let created: Vec<(Resource, Option<&str>)> = plan
        .actions
        .iter()
        .filter(|a| a.action == ActionKind::Create)
        .map(|a| (a.resource, a.name.as_deref()))
        .collect();
    assert_eq!(
        created,
        [
            (Resource::KeyPair, Some("hand-key")),
            (Resource::LaunchTemplate, Some("hand-linux")),
        ]
    );
    let template = plan
        .actions
        .iter()
        .find(|a| a.resource == Resource::LaunchTemplate)
        .and_then(|a| a.launch_template.as_ref())
        .expect("a template");
    assert_eq!(template.key_name.as_deref(), Some("hand-key"));
}

#[test]
fn an_ec2_name_ec2_would_refuse_is_an_invalid_value_at_its_span() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("f.hcl"),
        r#"fleet "ff" {
  regions = ["us-east-1"]
}
ami_set "a" {
  images = { "us-east-1" = "ami-0aaaaaaaaaaaaaaa1" }
}
worker_type "w" {
  ec2_name = "no spaces allowed"
  ami_set  = ami_set.a
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 0
    max = 1
  }
}
"#,
    )
    .expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    assert!(loaded.config.is_none());
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.message.contains("ec2_name"))
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    assert_eq!(d.code.as_str(), "invalid-value");
    assert!(d.message.contains("no spaces allowed"), "{}", d.message);
}

#[test]
fn two_worker_types_with_one_ec2_name_in_a_region_are_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wt = |label: &str| {
        format!(
            r#"worker_type "{label}" {{
  ec2_name = "hand-linux"
  ami_set  = ami_set.a
  instance_type "m5.large" {{ capacity = 1 }}
  capacity {{
    min = 0
    max = 1
  }}
}}
"#
        )
    };
    std::fs::write(
        dir.path().join("f.hcl"),
        format!(
            "fleet \"ff\" {{\n  regions = [\"us-east-1\"]\n}}\nami_set \"a\" {{\n  images = {{ \"us-east-1\" = \"ami-0aaaaaaaaaaaaaaa1\" }}\n}}\n{}{}",
            wt("one"),
            wt("two")
        ),
    )
    .expect("write");
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    assert!(loaded.config.is_none());
    assert!(
        loaded
            .diagnostics
            .iter()
            .any(|d| d.code.as_str() == "duplicate" && d.message.contains("`hand-linux`")),
        "{:?}",
        loaded.diagnostics
    );
}

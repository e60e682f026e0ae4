//! The HCL `fleetform import` writes, without a network: from what
//! discovery reports to files that are `fmt` and `validate` clean, with every
//! setting the language cannot say listed as a note.

use fleetform_engine::import::{write, ImportOptions, Written};
use fleetform_engine::provider::{
    AdoptableKeyPair, BlockDevice, DiscoveredRegion, DiscoveredTemplate, LaunchTemplateData,
    ObservedImage, ObservedInstance, ObservedKeyPair, ObservedLaunchTemplate,
    ObservedSecurityGroup, ObservedSubnet,
};
use std::collections::{BTreeMap, BTreeSet};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy";

fn image(id: &str) -> ObservedImage {
    ObservedImage {
        id: id.into(),
        name: "worker".into(),
        state: "available".into(),
        virtualization: "hvm".into(),
        architecture: "arm64".into(),
        creation_date: String::new(),
        owner: "123456789012".into(),
        snapshot_ids: Vec::new(),
        tags: BTreeMap::new(),
        root_device_name: Some("/dev/xvda".into()),
    }
}

fn instance(id: &str, template: &str, instance_type: &str, subnet: &str) -> ObservedInstance {
    ObservedInstance {
        id: id.into(),
        state: "running".into(),
        instance_type: instance_type.into(),
        launch_time: 0,
        image_id: "ami-0aaaaaaaaaaaaaaa1".into(),
        key_name: None,
        launch_template: Some((template.into(), "1".into())),
        tags: Default::default(),
        zone: None,
        subnet_id: Some(subnet.into()),
    }
}

fn template(id: &str, name: &str, data: LaunchTemplateData) -> ObservedLaunchTemplate {
    ObservedLaunchTemplate {
        id: id.into(),
        name: name.into(),
        default_version: 3,
        latest_version: 4,
        default_data: Some(data),
        tags: Default::default(),
    }
}

/// us-east-1: `ff.gecko` (a spot template named as fleetform names it, with
/// settings the language has no attribute for) and `builder/linux` (a key
/// whose public key EC2 did not return); us-west-2: `ff.gecko` again.
fn found() -> BTreeMap<String, DiscoveredRegion> {
    let gecko = LaunchTemplateData {
        image_id: Some("ami-0aaaaaaaaaaaaaaa1".into()),
        instance_type: Some("m6g.large".into()),
        key_name: Some("hand-key".into()),
        user_data: Some("#!/bin/sh\nexec worker\n".into()),
        market: Some("spot".into()),
        instance_tags: fleetform_engine::provider::Tags::from([
            ("team".to_string(), "ci".to_string()),
            ("aws:cloudformation:stack".to_string(), "x".to_string()),
        ]),
        security_group_ids: vec!["sg-0aaaaaaaaaaaaaaa1".into()],
        block_devices: vec![
            BlockDevice {
                device_name: "/dev/xvdb".into(),
                size_gb: 100,
                volume_type: "gp3".into(),
                iops: Some(3000),
                throughput: None,
                encrypted: Some(true),
            },
            BlockDevice {
                device_name: "/dev/xvdc".into(),
                size_gb: 0,
                volume_type: "ephemeral".into(),
                iops: None,
                throughput: None,
                encrypted: None,
            },
        ],
        spot_max_price: Some("0.5".into()),
        ..LaunchTemplateData::default()
    };
    let builder = LaunchTemplateData {
        image_id: Some("ami-0aaaaaaaaaaaaaaa2".into()),
        instance_type: None,
        key_name: Some("builder".into()),
        metadata: Some(fleetform_engine::provider::MetadataOptions {
            http_tokens: "required".into(),
            hop_limit: 2,
        }),
        ..LaunchTemplateData::default()
    };
    let east = DiscoveredRegion {
        templates: vec![
            DiscoveredTemplate {
                template: template("lt-1", "ff.gecko", gecko.clone()),
                subnet_id: None,
                unexpressed: vec![("CpuOptions".into(), "threads per core 1".into())],
            },
            DiscoveredTemplate {
                template: template("lt-2", "builder/linux", builder),
                subnet_id: None,
                unexpressed: Vec::new(),
            },
        ],
        key_pairs: vec![
            AdoptableKeyPair {
                key_pair: ObservedKeyPair {
                    name: "hand-key".into(),
                    id: "key-1".into(),
                    fingerprint: String::new(),
                    tags: Default::default(),
                },
                public_key: Some(format!("{KEY} \n")),
            },
            AdoptableKeyPair {
                key_pair: ObservedKeyPair {
                    name: "builder".into(),
                    id: "key-2".into(),
                    fingerprint: String::new(),
                    tags: Default::default(),
                },
                public_key: None,
            },
        ],
        images: vec![
            image("ami-0aaaaaaaaaaaaaaa1"),
            image("ami-0aaaaaaaaaaaaaaa2"),
        ],
        subnets: vec![
            ObservedSubnet {
                id: "subnet-0aaaaaaaaaaaaaaaa".into(),
                zone: "us-east-1a".into(),
                vpc_id: "vpc-1".into(),
            },
            ObservedSubnet {
                id: "subnet-0bbbbbbbbbbbbbbbb".into(),
                zone: "us-east-1b".into(),
                vpc_id: "vpc-1".into(),
            },
        ],
        security_groups: vec![ObservedSecurityGroup {
            id: "sg-0aaaaaaaaaaaaaaa1".into(),
            name: "workers".into(),
            vpc_id: "vpc-1".into(),
        }],
        instances: vec![
            instance("i-1", "lt-1", "m6g.large", "subnet-0aaaaaaaaaaaaaaaa"),
            instance("i-2", "lt-1", "m6g.xlarge", "subnet-0bbbbbbbbbbbbbbbb"),
            instance("i-3", "lt-1", "m6g.large", "subnet-0aaaaaaaaaaaaaaaa"),
            instance("i-4", "lt-2", "c6g.large", "subnet-0aaaaaaaaaaaaaaaa"),
        ],
    };
    let west = DiscoveredRegion {
        templates: vec![DiscoveredTemplate {
            template: template(
                "lt-9",
                "ff.gecko",
                LaunchTemplateData {
                    image_id: Some("ami-0aaaaaaaaaaaaaaa9".into()),
                    security_group_ids: vec!["sg-0aaaaaaaaaaaaaaa9".into()],
                    ..gecko
                },
            ),
            subnet_id: Some("subnet-0ffffffffffffffff".into()),
            unexpressed: Vec::new(),
        }],
        key_pairs: Vec::new(),
        images: vec![image("ami-0aaaaaaaaaaaaaaa9")],
        subnets: vec![ObservedSubnet {
            id: "subnet-0ffffffffffffffff".into(),
            zone: "us-west-2a".into(),
            vpc_id: "vpc-9".into(),
        }],
        security_groups: Vec::new(),
        instances: Vec::new(),
    };
    BTreeMap::from([
        ("us-east-1".to_string(), east),
        ("us-west-2".to_string(), west),
    ])
}

fn written() -> Written {
    write(
        &found(),
        &ImportOptions {
            fleet: "ff".into(),
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            write_fleet: true,
            taken: BTreeSet::new(),
        },
    )
}

#[test]
fn the_written_configuration_is_exactly_this() {
    let w = written();
    insta::assert_snapshot!("import_hcl", w.files["import.hcl"]);
    let notes: Vec<String> = w
        .notes
        .iter()
        .map(|n| format!("{} | {} | {}", n.object, n.setting, n.reason))
        .collect();
    insta::assert_snapshot!("import_notes", notes.join("\n"));
    assert_eq!(
        w.files.keys().map(String::as_str).collect::<Vec<_>>(),
        ["import.hcl", "userdata/gecko.sh"]
    );
    assert_eq!(w.files["userdata/gecko.sh"], "#!/bin/sh\nexec worker\n");
}

#[test]
fn the_written_configuration_is_fmt_and_validate_clean() {
    let w = written();
    let text = &w.files["import.hcl"];
    assert_eq!(
        &fleetform_engine::fmt::format_source(text).expect("parses"),
        text,
        "not fmt clean"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, contents) in &w.files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }
    let loaded = fleetform_engine::load_dir(dir.path(), &fleetform_engine::Inputs::default());
    let errors: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == fleetform_engine::diagnostic::Severity::Error)
        .map(|d| d.message.clone())
        .collect();
    assert!(errors.is_empty(), "{errors:?}\n{text}");
    let config = loaded.config.expect("a configuration");
    // Named as fleetform names it: no ec2_name; otherwise the EC2 name is kept.
    let gecko = &config.worker_types["gecko"];
    assert_eq!(gecko.ec2_name, None);
    assert_eq!(gecko.ec2_name_in("ff"), "ff.gecko");
    let builder = &config.worker_types["builder-linux"];
    assert_eq!(builder.ec2_name.as_deref(), Some("builder/linux"));
    // Every type seen, the template's first; bounds that hold what runs.
    let types: Vec<&str> = gecko
        .instance_types
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(types, ["m6g.large", "m6g.xlarge"]);
    assert_eq!((gecko.capacity.min, gecko.capacity.max), (0, 3));
    assert_eq!(gecko.max_lifetime, None);
    assert_eq!(
        config.key_pairs["hand-key"].ec2_name.as_deref(),
        Some("hand-key")
    );
    assert_eq!(config.key_pairs["hand-key"].public_key, KEY);
    assert_eq!(
        config.ami_sets["gecko"].images,
        BTreeMap::from([
            ("us-east-1".to_string(), "ami-0aaaaaaaaaaaaaaa1".to_string()),
            ("us-west-2".to_string(), "ami-0aaaaaaaaaaaaaaa9".to_string())
        ])
    );
}

#[test]
fn what_cannot_be_said_is_listed_with_its_reason() {
    let w = written();
    let settings: Vec<&str> = w.notes.iter().map(|n| n.setting.as_str()).collect();
    for wanted in [
        "CpuOptions = threads per core 1",
        "KeyName = builder",
        "BlockDeviceMapping /dev/xvdc (ephemeral)",
        "InstanceType = m6g.large",
    ] {
        assert!(
            settings.contains(&wanted),
            "{wanted} missing from {settings:?}"
        );
    }
    assert!(w.notes.iter().all(|n| !n.reason.is_empty()));
    // User data is never part of a note.
    assert!(w.notes.iter().all(|n| !n.setting.contains("exec worker")));
}

//! `fleetform import` end to end against the local EC2 endpoint: a fleet
//! made by hand (launch templates in two regions, key pairs, instances from
//! the templates, and unrelated objects) is imported through the binary;
//! the plan of what it wrote only adopts (tags) and adds tag-only template
//! versions; apply carries that out and the next plan is empty; instances a
//! provisioner launches afterwards from an imported template are counted;
//! a second import into the same directory refuses and writes nothing; and
//! nothing unrelated is touched. Everything is read back through EC2's API.

use aws_sdk_ec2::types::{
    Filter, LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest,
    LaunchTemplateHttpTokensState, LaunchTemplateInstanceMetadataOptionsRequest,
    LaunchTemplateSpecification, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData,
    ResourceType, Tag, VolumeType,
};
use fleetform_test_support::cli::{block_on, text};
use fleetform_test_support::network::{ec2_client, TestNetwork};
use fleetform_test_support::{endpoint, unique_fleet};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const EAST: &str = "us-east-1";
const WEST: &str = "us-west-2";
const IMAGE: &str = "ami-785db401";
const CI_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy";
const WIN_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvd6wC0mhxfT0p7FZcqsG2pYIP7Yt0W7lE1h0z9i3QO";
const USER_DATA: &str = "#!/bin/sh\necho worker-secret-token=s3cr3t\n";

fn fleetform(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetform"))
        .args(args)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint())
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build()
}

/// A launch template made by hand; its id.
async fn hand_template(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    key: &str,
    instance_type: &str,
    groups: &[&str],
    tokens: LaunchTemplateHttpTokensState,
    hops: i32,
) -> String {
    let data = RequestLaunchTemplateData::builder()
        .image_id(IMAGE)
        .instance_type(instance_type.into())
        .key_name(key)
        .user_data(aws_smithy_types::base64::encode(USER_DATA))
        .set_security_group_ids(Some(groups.iter().map(|g| g.to_string()).collect()))
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_tokens(tokens)
                .http_put_response_hop_limit(hops)
                .build(),
        )
        .block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name("/dev/xvdb")
                .ebs(
                    LaunchTemplateEbsBlockDeviceRequest::builder()
                        .volume_size(50)
                        .volume_type(VolumeType::Gp3)
                        .build(),
                )
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Instance)
                .tags(tag("team", "ci"))
                .build(),
        )
        .build();
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(data)
        .send()
        .await
        .expect("create template")
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("template id")
        .to_string()
}

/// Launches `count` instances from template `id` ($Default) into `subnet`; their ids.
async fn launch_from(ec2: &aws_sdk_ec2::Client, id: &str, count: i32, subnet: &str) -> Vec<String> {
    ec2.run_instances()
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(id)
                .version("$Default")
                .build(),
        )
        .subnet_id(subnet)
        .min_count(count)
        .max_count(count)
        .send()
        .await
        .expect("run instances")
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect()
}

async fn tags_of_instance(ec2: &aws_sdk_ec2::Client, id: &str) -> BTreeMap<String, String> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("describe instance");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .flat_map(|i| i.tags())
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

async fn template_tags(ec2: &aws_sdk_ec2::Client, id: &str) -> (BTreeMap<String, String>, i64) {
    let out = ec2
        .describe_launch_templates()
        .launch_template_ids(id)
        .send()
        .await
        .expect("describe template");
    let t = out.launch_templates().first().expect("the template");
    (
        t.tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
        t.default_version_number().unwrap_or_default(),
    )
}

async fn key_tags(ec2: &aws_sdk_ec2::Client, name: &str) -> BTreeMap<String, String> {
    let out = ec2
        .describe_key_pairs()
        .filters(Filter::builder().name("key-name").values(name).build())
        .send()
        .await
        .expect("describe key pairs");
    out.key_pairs()
        .first()
        .expect("the key pair")
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// Every file under `dir` with its contents.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(dir).expect("under dir");
                out.insert(
                    rel.display().to_string(),
                    std::fs::read(&path).expect("read"),
                );
            }
        }
    }
    out
}

fn plan_json(dir: &Path) -> Value {
    let out = fleetform(&["plan", "--json"], dir);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("plan JSON")
}

struct HandMade {
    /// Template ids: linux in each region, win in east.
    linux_east: String,
    linux_west: String,
    win_east: String,
    unrelated_template: String,
    /// Instance ids per template.
    instances: BTreeMap<String, Vec<String>>,
    unrelated_instance: String,
    east: TestNetwork,
}

fn hand_made(prefix: &str) -> HandMade {
    let east = TestNetwork::create_blocking(EAST, prefix);
    let west = TestNetwork::create_blocking(WEST, prefix);
    block_on(async {
        let (e, w) = (east.ec2(), west.ec2());
        for (client, name, key) in [
            (e, format!("{prefix}-ci-key"), CI_KEY),
            (w, format!("{prefix}-ci-key"), CI_KEY),
            (e, format!("{prefix}-win-key"), WIN_KEY),
            (e, format!("other-{prefix}-key"), WIN_KEY),
        ] {
            client
                .import_key_pair()
                .key_name(name)
                .public_key_material(aws_sdk_ec2::primitives::Blob::new(key))
                .send()
                .await
                .expect("import key pair");
        }
        let untrusted_e = east.group("untrusted").expect("group");
        let untrusted_w = west.group("untrusted").expect("group");
        let linux_east = hand_template(
            e,
            &format!("{prefix}-linux"),
            &format!("{prefix}-ci-key"),
            "t3.medium",
            &[untrusted_e],
            LaunchTemplateHttpTokensState::Required,
            2,
        )
        .await;
        let linux_west = hand_template(
            w,
            &format!("{prefix}-linux"),
            &format!("{prefix}-ci-key"),
            "t3.medium",
            &[untrusted_w],
            LaunchTemplateHttpTokensState::Required,
            2,
        )
        .await;
        let win_east = hand_template(
            e,
            &format!("{prefix}-win"),
            &format!("{prefix}-win-key"),
            "m5.large",
            &[untrusted_e],
            LaunchTemplateHttpTokensState::Optional,
            1,
        )
        .await;
        let unrelated_template = hand_template(
            e,
            &format!("other-{prefix}"),
            &format!("other-{prefix}-key"),
            "m5.large",
            &[untrusted_e],
            LaunchTemplateHttpTokensState::Required,
            1,
        )
        .await;
        for (client, id) in [(e, &linux_east), (w, &linux_west)] {
            client
                .create_tags()
                .resources(id)
                .tags(tag("pool", &format!("{prefix}-linux")))
                .send()
                .await
                .expect("tag template");
        }
        let subnet_e = &east.subnets[0].1;
        let subnet_e2 = &east.subnets[1].1;
        let subnet_w = &west.subnets[0].1;
        let mut instances = BTreeMap::new();
        let mut linux_e = launch_from(e, &linux_east, 4, subnet_e).await;
        linux_e.extend(launch_from(e, &linux_east, 4, subnet_e2).await);
        instances.insert(linux_east.clone(), linux_e);
        instances.insert(
            linux_west.clone(),
            launch_from(w, &linux_west, 6, subnet_w).await,
        );
        instances.insert(
            win_east.clone(),
            launch_from(e, &win_east, 6, subnet_e).await,
        );
        let unrelated_instance = launch_from(e, &unrelated_template, 1, subnet_e)
            .await
            .pop()
            .expect("one instance");
        HandMade {
            linux_east,
            linux_west,
            win_east,
            unrelated_template,
            instances,
            unrelated_instance,
            east,
        }
    })
}

#[test]
fn a_fleet_made_by_hand_is_imported_adopted_by_tags_only_and_then_counted() {
    let fleet = unique_fleet("imp");
    let prefix = format!("hand{}", &fleet[3..]).replace('-', "");
    let hand = hand_made(&prefix);
    let total: usize = hand.instances.values().map(Vec::len).sum();
    assert_eq!(total, 20);
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("fleet");
    let import = |dir: &Path, extra: &[&str]| {
        let mut args = vec![
            "import",
            "--region",
            EAST,
            "--region",
            WEST,
            "--fleet",
            fleet.as_str(),
            "--name-prefix",
        ];
        let p = format!("{prefix}-");
        let p: &'static str = Box::leak(p.into_boxed_str());
        args.push(p);
        args.extend_from_slice(extra);
        fleetform(&args, dir)
    };

    // --dry-run writes nothing and never prints the user data.
    let dry_dir = root.path().join("dry");
    let out = import(&dry_dir, &["--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dry_dir.exists(), "a dry run created {}", dry_dir.display());
    let shown = text(&out);
    assert!(shown.contains("worker_type"), "{shown}");
    assert!(shown.contains("userdata/"), "{shown}");
    assert!(!shown.contains("s3cr3t"), "user data printed: {shown}");

    // Tag filters select templates by their tags.
    let filtered = root.path().join("filtered");
    let out = fleetform(
        &[
            "import",
            "--region",
            EAST,
            "--region",
            WEST,
            "--fleet",
            fleet.as_str(),
            "--filter",
            &format!("tag:pool={prefix}-linux"),
            "--dry-run",
        ],
        &filtered,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains(&format!("worker_type \"{prefix}-linux\"")),
        "{shown}"
    );
    assert!(!shown.contains(&format!("{prefix}-win")), "{shown}");

    // Into a directory with a fleet block: no second one, the fleet is that one.
    let declared = root.path().join("declared");
    std::fs::create_dir_all(&declared).expect("mkdir");
    std::fs::write(
        declared.join("fleet.hcl"),
        format!("fleet \"{fleet}\" {{\n  regions = [\"{EAST}\", \"{WEST}\"]\n}}\n"),
    )
    .expect("write");
    let out = fleetform(
        &[
            "import",
            "--region",
            EAST,
            "--name-prefix",
            &format!("{prefix}-"),
            "--dry-run",
        ],
        &declared,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("fleet \""),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("declared in the directory"),
        "{}",
        text(&out)
    );

    // The import writes the configuration, fmt and validate clean.
    let out = import(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let written = files(&dir);
    let hcl = String::from_utf8_lossy(&written["import.hcl"]).to_string();
    assert!(
        hcl.contains(&format!("ec2_name = \"{prefix}-linux\"")),
        "{hcl}"
    );
    assert!(
        hcl.contains(&format!("ec2_name   = \"{prefix}-ci-key\""))
            || hcl.contains(&format!("ec2_name = \"{prefix}-ci-key\"")),
        "{hcl}"
    );
    assert!(
        !hcl.contains("other-"),
        "an unrelated object was imported: {hcl}"
    );
    assert!(!hcl.contains("max_lifetime"), "{hcl}");
    let user_data: Vec<&String> = written
        .keys()
        .filter(|p| p.starts_with("userdata/"))
        .collect();
    assert_eq!(user_data.len(), 2, "{written:?}");
    for path in user_data {
        assert_eq!(written[path], USER_DATA.as_bytes());
    }
    let out = fleetform(&["fmt", "--check"], &dir);
    assert!(out.status.success(), "not fmt clean: {}\n{hcl}", text(&out));
    let out = fleetform(&["validate"], &dir);
    assert!(out.status.success(), "not valid: {}\n{hcl}", text(&out));

    // A second import into the same directory refuses and writes nothing.
    let out = import(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("nothing was written"), "{}", text(&out));
    assert_eq!(files(&dir), written, "the refused import changed files");

    // An instance a concurrent apply already tagged is not adopted twice.
    let already = hand.instances[&hand.win_east][0].clone();
    block_on(async {
        hand.east
            .ec2()
            .create_tags()
            .resources(&already)
            .tags(tag("fleetform:fleet", &fleet))
            .tags(tag(
                "fleetform:address",
                &format!("worker_type.{prefix}-win[\"{EAST}\"]"),
            ))
            .tags(tag("fleetform:worker-type", &format!("{prefix}-win")))
            .send()
            .await
            .expect("tag")
    });

    // The plan only adopts, and adds one tag-only version per template.
    let markdown = root.path().join("plan.md");
    let out = fleetform(
        &["plan", "--markdown", markdown.to_str().expect("utf-8 path")],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    let shown = format!(
        "{}{}",
        text(&out),
        std::fs::read_to_string(&markdown).expect("markdown")
    );
    assert!(
        shown.contains("only adds fleetform's tag specifications"),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cr3t"),
        "user data shown in the plan: {shown}"
    );
    let plan = plan_json(&dir);
    assert!(
        !plan.to_string().contains("s3cr3t"),
        "user data in plan JSON: {plan}"
    );
    let actions = plan["actions"].as_array().expect("actions");
    let mut adopted_instances: BTreeSet<String> = BTreeSet::new();
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in actions {
        let (action, resource) = (
            a["action"].as_str().unwrap_or_default(),
            a["resource"].as_str().unwrap_or_default(),
        );
        assert_eq!(a["reason"], "import", "{a}");
        assert!(
            matches!(
                (action, resource),
                ("adopt", _) | ("update", "launch_template")
            ),
            "{a}"
        );
        assert!(
            a["name"].as_str().is_some_and(|n| !n.is_empty()),
            "unnamed: {a}"
        );
        if action == "update" {
            let changes = a["changes"].as_array().expect("changes");
            assert!(
                changes.iter().all(|c| c["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("tags.fleetform:")
                        || p.starts_with("volume_tags.fleetform:"))
                    && c["old"].is_null()),
                "not tag-only: {a}"
            );
        }
        if (action, resource) == ("adopt", "instances") {
            for id in a["ids"].as_array().expect("ids") {
                adopted_instances.insert(id.as_str().unwrap_or_default().to_string());
            }
        }
        *kinds.entry((action.into(), resource.into())).or_default() += 1;
    }
    assert_eq!(
        kinds.get(&("adopt".into(), "key_pair".into())),
        Some(&3),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.get(&("adopt".into(), "launch_template".into())),
        Some(&3),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.get(&("update".into(), "launch_template".into())),
        Some(&3),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.get(&("adopt".into(), "instances".into())),
        Some(&3),
        "{kinds:?}"
    );
    assert_eq!(adopted_instances.len(), 19, "{adopted_instances:?}");
    assert!(!adopted_instances.contains(&already));
    assert!(!adopted_instances.contains(&hand.unrelated_instance));
    for (action, _) in kinds.keys() {
        assert!(!matches!(
            action.as_str(),
            "create" | "replace" | "launch" | "terminate" | "delete"
        ));
    }

    // Apply; every object carries fleetform's tags, the templates a new default version.
    let out = fleetform(&["apply", "--auto-approve"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let west_ec2 = ec2_client(WEST);
    block_on(async {
        let e = hand.east.ec2();
        for (client, id) in [
            (e, &hand.linux_east),
            (&west_ec2, &hand.linux_west),
            (e, &hand.win_east),
        ] {
            let (tags, default) = template_tags(client, id).await;
            assert_eq!(tags.get("fleetform:fleet"), Some(&fleet), "{id}: {tags:?}");
            assert_eq!(default, 2, "{id}");
            let version = client
                .describe_launch_template_versions()
                .launch_template_id(id)
                .versions("$Default")
                .send()
                .await
                .expect("versions");
            let data = version.launch_template_versions()[0]
                .launch_template_data()
                .expect("data");
            assert_eq!(
                data.image_id(),
                Some(IMAGE),
                "the tag-only version lost its image"
            );
            assert_eq!(
                data.user_data(),
                Some(aws_smithy_types::base64::encode(USER_DATA).as_str()),
                "the tag-only version lost its user data"
            );
            assert_eq!(data.block_device_mappings().len(), 1);
        }
        for (id, ids) in &hand.instances {
            let client = if id == &hand.linux_west { &west_ec2 } else { e };
            for i in ids {
                let tags = tags_of_instance(client, i).await;
                assert_eq!(tags.get("fleetform:fleet"), Some(&fleet), "{i}: {tags:?}");
            }
        }
        for (client, name) in [
            (e, format!("{prefix}-ci-key")),
            (&west_ec2, format!("{prefix}-ci-key")),
            (e, format!("{prefix}-win-key")),
        ] {
            let tags = key_tags(client, &name).await;
            assert_eq!(
                tags.get("fleetform:fleet"),
                Some(&fleet),
                "{name}: {tags:?}"
            );
            assert!(
                tags.contains_key("fleetform:key-digest"),
                "{name}: {tags:?}"
            );
        }
        // Unrelated objects are untouched.
        let (tags, default) = template_tags(e, &hand.unrelated_template).await;
        assert!(!tags.contains_key("fleetform:fleet"), "{tags:?}");
        assert_eq!(default, 1);
        let tags = tags_of_instance(e, &hand.unrelated_instance).await;
        assert!(!tags.contains_key("fleetform:fleet"), "{tags:?}");
        let tags = key_tags(e, &format!("other-{prefix}-key")).await;
        assert!(!tags.contains_key("fleetform:fleet"), "{tags:?}");
    });

    // One recorded version.
    let out = fleetform(&["history", "--json"], &dir);
    assert!(out.status.success(), "{}", text(&out));
    let history: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1, "{history}");
    assert_eq!(versions[0]["version"], 1, "{history}");

    // The next plan changes nothing.
    let out = fleetform(&["plan", "--detailed-exitcode"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // A provisioner launches from an imported template: the instance carries
    // the fleet's tags and counts (8 ran already under max 8: one too many).
    let subnet = hand.east.subnets[0].1.clone();
    let launched = block_on(launch_from(hand.east.ec2(), &hand.linux_east, 1, &subnet));
    let tags = block_on(tags_of_instance(hand.east.ec2(), &launched[0]));
    assert_eq!(tags.get("fleetform:fleet"), Some(&fleet), "{tags:?}");
    assert_eq!(
        tags.get("fleetform:worker-type").map(String::as_str),
        Some(format!("{prefix}-linux").as_str()),
        "{tags:?}"
    );
    let plan = plan_json(&dir);
    let terminate: Vec<&Value> = plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] == "terminate")
        .collect();
    assert_eq!(terminate.len(), 1, "{plan}");
    assert_eq!(terminate[0]["reason"], "above-max", "{plan}");
    assert_eq!(terminate[0]["region"], EAST, "{plan}");
    assert_eq!(
        terminate[0]["ids"].as_array().map(Vec::len),
        Some(1),
        "{plan}"
    );
}

#[test]
fn import_refuses_what_it_cannot_read_or_match_and_writes_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("fleet");
    let run = |args: &[&str]| {
        let mut all = vec!["import", "--region", EAST];
        all.extend_from_slice(args);
        fleetform(&all, &dir)
    };
    // A fleet name the language refuses.
    let out = run(&["--name-prefix", "x-", "--fleet", "1 bad"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not a valid fleet name"),
        "{}",
        text(&out)
    );
    // Neither a prefix nor a filter: a usage error.
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A filter that is not tag:KEY=VALUE.
    let out = run(&["--filter", "team=ci"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("tag:KEY=VALUE"), "{}", text(&out));
    // Nothing matches.
    let out = run(&["--name-prefix", "no-such-template-prefix-"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no launch template without the fleetform:fleet tag matches"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    assert!(!dir.exists(), "a refused import created {}", dir.display());
}

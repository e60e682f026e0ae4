//! The image lifecycle of AMI sets end to end against the local EC2 endpoint:
//! copies, verification, reference-safe pruning (seed 001) and staged roll-outs.
//!
//! Ages are judged by fleetform's clock, which `FLEETFORM_NOW` moves forward,
//! so a prune "31 days later" needs no waiting. EC2 creation dates have a
//! one-second resolution: tests that need one image strictly newer than
//! another wait for the wall clock to enter the next second between them.

use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{tags, ObserveRequest, ObservedImage, Provider};
use fleetform_test_support::fault::{Fault, FaultProxy};
use fleetform_test_support::{endpoint, unique_fleet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tempfile::TempDir;

/// A stock image of the local endpoint, hvm x86_64, in every region.
const STOCK: &str = "ami-785db401";
/// Another stock image, hvm x86_64, in every region.
const OTHER: &str = "ami-760aaa0f";
const DAY: i64 = 86_400;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Returns once the wall clock is in a later second than when called, so an
/// image created next is strictly newer than one created before.
fn next_second() {
    let start = unix_now();
    while unix_now() == start {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A fleet over `regions` with one AMI set (`set_body` is its body) and one
/// worker type `w` using it (with `worker_extra` inside), min 0.
fn config(prefix: &str, regions: &[&str], set_body: &str, worker_extra: &str) -> (TempDir, String) {
    let fleet = unique_fleet(prefix);
    let dir = tempfile::tempdir().expect("tempdir");
    let quoted: Vec<String> = regions.iter().map(|r| format!("\"{r}\"")).collect();
    let hcl = format!(
        "fleet \"{fleet}\" {{\n  account_id      = \"123456789012\"\n  regions         = [{}]\n  rollback_window = \"30d\"\n}}\n\nami_set \"set\" {{\n{set_body}\n}}\n\nworker_type \"w\" {{\n  ami_set = ami_set.set\n{worker_extra}\n  instance_type \"m5.large\" {{ capacity = 1 }}\n\n  capacity {{\n    max = 2\n  }}\n}}\n",
        quoted.join(", ")
    );
    std::fs::write(dir.path().join("fleet.hcl"), hcl).expect("write");
    (dir, fleet)
}

fn explicit(images: &[(&str, &str)], retain: Option<&str>) -> String {
    let lines: Vec<String> = images
        .iter()
        .map(|(r, i)| format!("    \"{r}\" = \"{i}\""))
        .collect();
    format!(
        "  images = {{\n{}\n  }}\n{}",
        lines.join("\n"),
        retain
            .map(|r| format!("  retain = \"{r}\""))
            .unwrap_or_default()
    )
}

fn replace_in_config(dir: &Path, from: &str, to: &str) {
    let path = dir.join("fleet.hcl");
    let hcl = std::fs::read_to_string(&path).expect("read");
    assert!(hcl.contains(from), "{from} not in the config");
    std::fs::write(path, hcl.replace(from, to)).expect("write");
}

/// Runs fleetform with `args` on `dir`; with `now`, fleetform's clock reads that.
fn fleetform(args: &[&str], dir: &Path, now: Option<i64>) -> Output {
    fleetform_via(endpoint(), args, dir, now)
}

/// [`fleetform`] through another endpoint (a fault proxy).
fn fleetform_via(endpoint: &str, args: &[&str], dir: &Path, now: Option<i64>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fleetform"));
    command
        .args(args)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", endpoint)
        .env_remove("FLEETFORM_NOW")
        .stdin(Stdio::null());
    if let Some(now) = now {
        command.env("FLEETFORM_NOW", now.to_string());
    }
    command.output().expect("runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply(dir: &Path, extra: &[&str], now: Option<i64>) -> Output {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend_from_slice(extra);
    let out = fleetform(&args, dir, now);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    out
}

fn plan_json(dir: &Path, now: Option<i64>) -> (serde_json::Value, String) {
    let out = fleetform(&["plan", "--json"], dir, now);
    let (stdout, stderr) = text(&out);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (json, stderr)
}

/// (action, resource, region, first id) of every action of a JSON plan.
fn actions(plan: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let field = |a: &serde_json::Value, k: &str| a[k].as_str().unwrap_or_default().to_string();
    plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                field(a, "action"),
                field(a, "resource"),
                field(a, "region"),
                a["ids"][0].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

struct Ec2 {
    runtime: tokio::runtime::Runtime,
    provider: AwsProvider,
}

impl Ec2 {
    fn connect() -> Ec2 {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let provider = runtime
            .block_on(AwsProvider::connect(&ConnectOptions {
                endpoint_url: Some(endpoint().to_string()),
                ..ConnectOptions::default()
            }))
            .expect("connects");
        Ec2 { runtime, provider }
    }

    /// Makes an image in `region` tagged as belonging to `set` of `fleet`
    /// (as an image pipeline would), from an instance of the stock image.
    fn tagged_image(&self, region: &str, fleet: &str, set: &str, name: &str) -> String {
        let client = self.provider.ec2(region);
        self.runtime.block_on(async {
            let run = client
                .run_instances()
                .image_id(STOCK)
                .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                .min_count(1)
                .max_count(1)
                .send()
                .await
                .expect("run instance");
            let instance = run.instances()[0].instance_id().expect("id").to_string();
            let image = client
                .create_image()
                .instance_id(&instance)
                .name(name)
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Image)
                        .tags(Tag::builder().key(tags::FLEET).value(fleet).build())
                        .tags(Tag::builder().key(tags::AMI_SET).value(set).build())
                        .build(),
                )
                .send()
                .await
                .expect("create image");
            client
                .terminate_instances()
                .instance_ids(instance)
                .send()
                .await
                .expect("terminate");
            image.image_id().expect("image id").to_string()
        })
    }

    /// The images in `region` with these ids that still exist.
    fn existing(&self, region: &str, ids: &[&str]) -> Vec<String> {
        let client = self.provider.ec2(region);
        self.runtime.block_on(async {
            let out = client
                .describe_images()
                .filters(
                    Filter::builder()
                        .name("image-id")
                        .set_values(Some(ids.iter().map(|s| s.to_string()).collect()))
                        .build(),
                )
                .send()
                .await
                .expect("describe");
            let mut found: Vec<String> = out
                .images()
                .iter()
                .filter_map(|i| i.image_id().map(str::to_string))
                .collect();
            found.sort();
            found
        })
    }

    /// Every image tagged with `fleet` in `region`.
    fn fleet_images(&self, fleet: &str, region: &str) -> Vec<ObservedImage> {
        let request = ObserveRequest {
            fleet: fleet.to_string(),
            regions: vec![region.to_string()],
            ..ObserveRequest::default()
        };
        let observation = self.runtime.block_on(self.provider.observe(&request));
        observation.regions[region]
            .images
            .complete()
            .expect("images read")
            .clone()
    }

    /// The image the default version of `fleet`'s launch template for `w` launches in `region`.
    fn template_image(&self, fleet: &str, region: &str) -> Option<String> {
        let request = ObserveRequest {
            fleet: fleet.to_string(),
            regions: vec![region.to_string()],
            ..ObserveRequest::default()
        };
        let observation = self.runtime.block_on(self.provider.observe(&request));
        let templates = observation.regions[region]
            .launch_templates
            .complete()?
            .clone();
        templates.first()?.default_data.as_ref()?.image_id.clone()
    }
}

#[test]
fn a_source_image_is_copied_to_two_regions_tagged_at_creation_and_used_there() {
    let regions = ["us-east-1", "us-west-2", "eu-west-1"];
    let (dir, fleet) = config(
        "copy",
        &regions,
        &format!("  source {{\n    region = \"us-east-1\"\n    image  = \"{STOCK}\"\n  }}\n  copy_to = [\"us-west-2\", \"eu-west-1\"]"),
        "",
    );
    let (plan, _) = plan_json(dir.path(), None);
    let copies: Vec<String> = actions(&plan)
        .into_iter()
        .filter(|(a, r, _, _)| a == "copy" && r == "image")
        .map(|(_, _, region, _)| region)
        .collect();
    assert_eq!(copies, ["eu-west-1", "us-west-2"]);
    assert_eq!(plan["summary"]["copy"], 2);

    apply(dir.path(), &[], None);
    let ec2 = Ec2::connect();
    for region in ["us-west-2", "eu-west-1"] {
        let images = ec2.fleet_images(&fleet, region);
        assert_eq!(images.len(), 1, "exactly one copy in {region}: {images:?}");
        let copy = &images[0];
        assert_eq!(copy.state, "available");
        assert_eq!(copy.virtualization, "hvm");
        for (key, value) in [
            (tags::FLEET, fleet.as_str()),
            (tags::AMI_SET, "set"),
            (tags::ADDRESS, "ami_set.set"),
            (tags::SOURCE_IMAGE, STOCK),
            (tags::SOURCE_REGION, "us-east-1"),
        ] {
            assert_eq!(
                copy.tags.get(key).map(String::as_str),
                Some(value),
                "{key} in {region}"
            );
        }
        assert_eq!(
            ec2.template_image(&fleet, region).as_deref(),
            Some(copy.id.as_str()),
            "the launch template in {region} launches the copy"
        );
    }
    assert_eq!(
        ec2.template_image(&fleet, "us-east-1").as_deref(),
        Some(STOCK)
    );

    // The copies are found by their tags: nothing is copied again.
    let again = fleetform(&["plan", "--detailed-exitcode"], dir.path(), None);
    let (stdout, stderr) = text(&again);
    assert_eq!(again.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("[copy of {STOCK}]")),
        "the plan shows each region's image: {stdout}"
    );
}

#[test]
fn seed_001_a_prune_of_an_image_a_worker_type_uses_is_refused_with_ff001_naming_it() {
    let ec2 = Ec2::connect();
    let start = unix_now();
    let (dir, fleet) = config("inuse", &["us-east-1"], "", "");
    let used = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-1"));
    next_second();
    let newer = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-2"));
    replace_in_config(
        dir.path(),
        "ami_set \"set\" {\n\n}",
        &format!(
            "ami_set \"set\" {{\n{}\n}}",
            explicit(&[("us-east-1", &used)], Some("1d"))
        ),
    );

    // Two days later both are past retain; `used` is older than `newer`, so
    // only what the worker type uses protects it.
    let later = Some(start + 2 * DAY);
    let out = fleetform(&["plan"], dir.path(), later);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FF001") && stderr.contains(&used) && stderr.contains("worker types [w]"),
        "{stderr}"
    );
    let (plan, _) = plan_json(dir.path(), later);
    assert!(
        actions(&plan).iter().all(|(a, _, _, _)| a != "prune"),
        "nothing is pruned: {plan}"
    );
    apply(dir.path(), &[], later);
    assert_eq!(ec2.existing("us-east-1", &[&used, &newer]), {
        let mut both = vec![used.clone(), newer.clone()];
        both.sort();
        both
    });
}

#[test]
fn seed_001_an_image_only_a_version_in_the_rollback_window_uses_is_kept_and_pruned_after() {
    let ec2 = Ec2::connect();
    let start = unix_now();
    let (dir, fleet) = config("window", &["us-east-1"], "", "");
    let old = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-1"));
    next_second();
    let current = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-2"));
    replace_in_config(
        dir.path(),
        "ami_set \"set\" {\n\n}",
        &format!(
            "ami_set \"set\" {{\n{}\n}}",
            explicit(&[("us-east-1", &old)], Some("1d"))
        ),
    );
    apply(dir.path(), &[], None); // version 1 uses `old`
    replace_in_config(dir.path(), &old, &current);
    apply(dir.path(), &[], None); // version 2 uses `current`

    // Two days later `old` is past retain and nothing in the config uses it,
    // but version 1 (inside the 30-day window) does: kept, and FF001 says why.
    let two_days = Some(start + 2 * DAY);
    let (plan, stderr) = plan_json(dir.path(), two_days);
    assert!(
        actions(&plan).iter().all(|(a, _, _, _)| a != "prune"),
        "{plan}"
    );
    assert!(!stderr.contains("error"), "{stderr}");
    let warning = plan["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .find(|d| d["code"] == "FF001")
        .unwrap_or_else(|| panic!("an FF001 warning: {plan}"));
    let message = warning["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&old) && message.contains("versions [1]"),
        "{message}"
    );
    assert_eq!(warning["severity"], "warning");

    // Thirty-one days later version 1 is outside the window: `old` is pruned,
    // with its snapshot; `current` (configured and newest) stays.
    let month = Some(start + 31 * DAY);
    let (plan, _) = plan_json(dir.path(), month);
    let prunes: Vec<String> = actions(&plan)
        .into_iter()
        .filter(|(a, _, _, _)| a == "prune")
        .map(|(_, _, _, id)| id)
        .collect();
    assert_eq!(prunes, vec![old.clone()]);
    assert_eq!(plan["summary"]["destroy"], 1);
    apply(dir.path(), &[], month);
    assert_eq!(
        ec2.existing("us-east-1", &[&old, &current]),
        vec![current.clone()]
    );
}

#[test]
fn seed_001_the_newest_image_of_a_set_survives_even_past_retain() {
    let ec2 = Ec2::connect();
    let start = unix_now();
    // The worker type runs a stock image; the set's tagged images are unused.
    let (dir, fleet) = config(
        "newest",
        &["us-east-1"],
        &explicit(&[("us-east-1", STOCK)], Some("7d")),
        "",
    );
    let older = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-1"));
    next_second();
    let newest = ec2.tagged_image("us-east-1", &fleet, "set", &format!("{fleet}-2"));

    let (plan, _) = plan_json(dir.path(), Some(start + 3 * DAY));
    assert!(
        actions(&plan).iter().all(|(a, _, _, _)| a != "prune"),
        "younger than retain: nothing is pruned: {plan}"
    );
    let forty_days = Some(start + 40 * DAY);
    let (plan, _) = plan_json(dir.path(), forty_days);
    let prunes: Vec<String> = actions(&plan)
        .into_iter()
        .filter(|(a, _, _, _)| a == "prune")
        .map(|(_, _, _, id)| id)
        .collect();
    assert_eq!(prunes, vec![older.clone()], "only the older one: {plan}");
    apply(dir.path(), &[], forty_days);
    assert_eq!(
        ec2.existing("us-east-1", &[&older, &newest]),
        vec![newest.clone()]
    );

    // `fleetform images` says why the survivor stays.
    let out = fleetform(&["images", "--json"], dir.path(), forty_days);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let row = listed["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|r| r["id"] == newest.as_str())
        .unwrap_or_else(|| panic!("{newest} listed: {stdout}"));
    assert_eq!(row["newest"], true);
    assert!(row["prunable"]
        .as_str()
        .unwrap_or_default()
        .contains("newest"));
}

#[test]
fn a_canary_region_takes_a_new_image_first_and_promote_carries_it_to_the_rest() {
    let ec2 = Ec2::connect();
    let regions = ["us-east-1", "us-west-2"];
    let (dir, fleet) = config(
        "canary",
        &regions,
        &explicit(&[("us-east-1", STOCK), ("us-west-2", STOCK)], None),
        "  rollout {\n    canary_regions = [\"us-east-1\"]\n  }",
    );
    apply(dir.path(), &[], None); // version 1: both regions on STOCK
    replace_in_config(dir.path(), STOCK, OTHER);

    let out = fleetform(&["plan"], dir.path(), None);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains(&format!(
            "us-east-1 (canary): {STOCK} -> {OTHER} now (canary)"
        )) && stdout.contains(&format!(
            "us-west-2: stays on {STOCK}; {OTHER} waits for `apply --promote`"
        )),
        "{stdout}"
    );

    apply(dir.path(), &[], None);
    assert_eq!(
        ec2.template_image(&fleet, "us-east-1").as_deref(),
        Some(OTHER)
    );
    assert_eq!(
        ec2.template_image(&fleet, "us-west-2").as_deref(),
        Some(STOCK)
    );

    // Nothing more happens without --promote.
    let held = fleetform(&["plan", "--detailed-exitcode"], dir.path(), None);
    let (stdout, _) = text(&held);
    assert_eq!(held.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("1 region held for `apply --promote`"),
        "{stdout}"
    );

    apply(dir.path(), &["--promote"], None);
    assert_eq!(
        ec2.template_image(&fleet, "us-west-2").as_deref(),
        Some(OTHER)
    );

    // Rollback returns every region at once.
    let back = fleetform(
        &["rollback", "--to", "1", "--auto-approve"],
        dir.path(),
        None,
    );
    let (stdout, stderr) = text(&back);
    assert_eq!(back.status.code(), Some(0), "{stdout}\n{stderr}");
    for region in regions {
        assert_eq!(
            ec2.template_image(&fleet, region).as_deref(),
            Some(STOCK),
            "{region}"
        );
    }
}

#[test]
fn seed_001_a_configured_image_deleted_outside_fleetform_is_ff002_before_anything_changes() {
    let ec2 = Ec2::connect();
    let (dir, fleet) = config("deleted", &["us-east-1"], "", "");
    let image = ec2.tagged_image("us-east-1", &fleet, "other", &format!("{fleet}-1"));
    replace_in_config(
        dir.path(),
        "ami_set \"set\" {\n\n}",
        &format!(
            "ami_set \"set\" {{\n{}\n}}",
            explicit(&[("us-east-1", &image)], None)
        ),
    );
    apply(dir.path(), &[], None);
    let client = ec2.provider.ec2("us-east-1");
    ec2.runtime
        .block_on(client.deregister_image().image_id(&image).send())
        .expect("deregister");
    // A user-data change would make a new template version; the missing image blocks it.
    replace_in_config(
        dir.path(),
        "  ami_set = ami_set.set\n",
        "  ami_set = ami_set.set\n  user_data = \"changed\"\n",
    );

    let out = fleetform(&["apply", "--auto-approve"], dir.path(), None);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FF002") && stderr.contains(&image) && stderr.contains("[w]"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    let versions = fleetform(&["history", "--json"], dir.path(), None);
    let history: serde_json::Value =
        serde_json::from_slice(&versions.stdout).expect("history json");
    assert_eq!(history["versions"].as_array().map(Vec::len), Some(1));
}

#[test]
fn a_lookup_picks_the_newest_available_match_in_each_region() {
    let ec2 = Ec2::connect();
    let (dir, fleet) = config("lookup", &["us-east-1"], "", "");
    let older = ec2.tagged_image("us-east-1", &fleet, "build", &format!("{fleet}-worker-1"));
    next_second();
    let newest = ec2.tagged_image("us-east-1", &fleet, "build", &format!("{fleet}-worker-2"));
    // Same prefix, but not the pattern: never chosen.
    ec2.tagged_image("us-east-1", &fleet, "build", &format!("{fleet}-other-3"));
    replace_in_config(
        dir.path(),
        "ami_set \"set\" {\n\n}",
        &format!(
            "ami_set \"set\" {{\n  lookup {{\n    name   = \"{fleet}-worker-*\"\n    owners = [\"self\"]\n  }}\n}}"
        ),
    );
    let (plan, stderr) = plan_json(dir.path(), None);
    let chosen = &plan["images"][0];
    assert_eq!(chosen["via"], "lookup", "{plan}\n{stderr}");
    assert_eq!(chosen["image_id"], newest.as_str(), "not {older}: {plan}");
    assert_eq!(chosen["name"], format!("{fleet}-worker-2").as_str());
    apply(dir.path(), &[], None);
    assert_eq!(
        ec2.template_image(&fleet, "us-east-1").as_deref(),
        Some(newest.as_str())
    );

    // A lookup that matches nothing is FF002 at plan time.
    replace_in_config(dir.path(), "-worker-*", "-nothing-*");
    let out = fleetform(&["plan"], dir.path(), None);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("FF002") && stderr.contains("no available image named like"),
        "{stderr}"
    );
}

#[test]
fn a_failed_canary_stops_the_promotion_and_the_other_regions_keep_their_image() {
    let ec2 = Ec2::connect();
    let (dir, fleet) = config(
        "failcanary",
        &["us-east-1", "us-west-2"],
        &explicit(&[("us-east-1", STOCK), ("us-west-2", STOCK)], None),
        "  rollout {\n    canary_regions = [\"us-east-1\"]\n  }",
    );
    apply(dir.path(), &[], None);
    replace_in_config(dir.path(), STOCK, OTHER);
    // EC2 refuses the new template version in the canary region only.
    let proxy = FaultProxy::start_with(
        endpoint(),
        Arc::new(|region: &str, action: &str| {
            region == "us-east-1" && action == "CreateLaunchTemplateVersion"
        }),
        Fault {
            status: 400,
            code: "InvalidParameterValue".into(),
        },
    )
    .expect("proxy");
    let out = fleetform_via(
        &proxy.url,
        &["apply", "--auto-approve", "--promote"],
        dir.path(),
        None,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("not promoted"), "{stderr}");
    assert_eq!(
        proxy.injected(),
        1,
        "the canary was tried once; the promotion never called EC2"
    );
    assert_eq!(
        ec2.template_image(&fleet, "us-east-1").as_deref(),
        Some(STOCK)
    );
    assert_eq!(
        ec2.template_image(&fleet, "us-west-2").as_deref(),
        Some(STOCK)
    );
}

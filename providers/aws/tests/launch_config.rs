//! Launch configurations against the local EC2 endpoint (moto_server,
//! patched by scripts/moto_launcher.py): what a launch template version
//! carries and reads back, where launches land, the network reads
//! (subnets, security groups, offerings), and their cost in calls.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{
    tags, BlockDevice, ErrorKind, LaunchSubnet, LaunchTemplateData, MetadataOptions, Mutation,
    MutationOutcome, Observation, ObserveRequest, ObservedInstance, Provider,
};
use fleetform_test_support::fault::FaultProxy;
use fleetform_test_support::network::TestNetwork;
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeMap;

const REGION: &str = "us-east-1";
/// An Ubuntu image moto ships in every region (root device /dev/sda1).
const IMAGE: &str = "ami-785db401";

async fn provider_at(url: &str, page_size: Option<u32>) -> AwsProvider {
    let options = ConnectOptions {
        endpoint_url: Some(url.to_string()),
        page_size,
        ..ConnectOptions::default()
    };
    AwsProvider::connect(&options).await.expect("connects")
}

async fn provider() -> AwsProvider {
    provider_at(endpoint(), None).await
}

fn fleet_tags(fleet: &str, address: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::FLEET.to_string(), fleet.to_string()),
        (tags::ADDRESS.to_string(), address.to_string()),
    ])
}

/// A request for `fleet` in `regions` that names nothing else.
fn request(fleet: &str, regions: &[&str]) -> ObserveRequest {
    ObserveRequest {
        fleet: fleet.to_string(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        ..ObserveRequest::default()
    }
}

/// Everything a worker type can set, on `network`'s groups.
fn full_data(fleet: &str, network: &TestNetwork) -> LaunchTemplateData {
    let address = "worker_type.linux[\"us-east-1\"]";
    LaunchTemplateData {
        image_id: Some(IMAGE.to_string()),
        instance_type: Some("m5.large".to_string()),
        key_name: None,
        user_data: Some("#!/bin/sh\necho worker_type=linux\n".to_string()),
        market: Some("spot".to_string()),
        instance_tags: fleet_tags(fleet, address).into(),
        security_group_ids: vec![
            network.group("untrusted").expect("group").to_string(),
            network.group("trusted").expect("group").to_string(),
        ],
        assign_public_ip: None,
        block_devices: vec![
            BlockDevice {
                device_name: "/dev/sda1".to_string(),
                size_gb: 60,
                volume_type: "gp3".to_string(),
                iops: Some(4000),
                throughput: Some(250),
                encrypted: Some(true),
            },
            BlockDevice {
                device_name: "/dev/xvdb".to_string(),
                size_gb: 120,
                volume_type: "io2".to_string(),
                iops: Some(3000),
                throughput: None,
                encrypted: None,
            },
        ],
        spot_max_price: Some("0.68".to_string()),
        iam_instance_profile: Some("gecko-workers".to_string()),
        metadata: Some(MetadataOptions {
            http_tokens: "required".to_string(),
            hop_limit: 2,
        }),
        volume_tags: fleet_tags(fleet, address).into(),
    }
}

async fn create_template(
    provider: &AwsProvider,
    fleet: &str,
    name: &str,
    data: LaunchTemplateData,
) -> String {
    let outcome = provider
        .mutate(
            REGION,
            Mutation::CreateLaunchTemplate {
                name: format!("{fleet}.{name}"),
                data,
                tags: fleet_tags(fleet, &format!("worker_type.{name}")),
                client_token: unique_fleet("template"),
            },
        )
        .await
        .expect("template created");
    match outcome {
        MutationOutcome::LaunchTemplate { id, .. } => id,
        other => panic!("unexpected outcome {other:?}"),
    }
}

fn launch_in(template: &str, fleet: &str, subnet: Option<LaunchSubnet>, token: &str) -> Mutation {
    Mutation::RunInstances {
        template_id: template.to_string(),
        version: 0,
        instance_type: "m5.large".to_string(),
        count: 1,
        tags: fleet_tags(fleet, "worker_type.linux[\"us-east-1\"]"),
        client_token: token.to_string(),
        dry_run: false,
        subnet,
    }
}

fn subnet_of(network: &TestNetwork, index: usize, public: Option<bool>) -> LaunchSubnet {
    LaunchSubnet {
        subnet_id: network.subnets[index].1.clone(),
        security_group_ids: vec![network.group("untrusted").expect("group").to_string()],
        assign_public_ip: public,
    }
}

fn instances(observation: &Observation) -> Vec<ObservedInstance> {
    observation.regions[REGION]
        .instances
        .complete()
        .expect("instances read")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_version_reads_back_with_every_field_it_was_written_with() {
    let provider = provider().await;
    let fleet = unique_fleet("readback");
    let network = TestNetwork::create(REGION, &fleet).await;
    let first = full_data(&fleet, &network);
    let template = create_template(&provider, &fleet, "linux", first.clone()).await;
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    let read = &observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("templates read")[0];
    assert_eq!(
        read.default_data.as_ref(),
        Some(&first),
        "version 1 reads back as written"
    );

    // A second version with the other forms: groups on a network interface
    // with a public address, the profile by ARN, no spot price, one volume.
    let second = LaunchTemplateData {
        assign_public_ip: Some(true),
        iam_instance_profile: Some(
            "arn:aws:iam::123456789012:instance-profile/gecko-workers".to_string(),
        ),
        spot_max_price: None,
        block_devices: first.block_devices[1..].to_vec(),
        metadata: Some(MetadataOptions {
            http_tokens: "optional".to_string(),
            hop_limit: 1,
        }),
        ..first.clone()
    };
    let created = provider
        .mutate(
            REGION,
            Mutation::CreateLaunchTemplateVersion {
                template_id: template.clone(),
                data: second.clone(),
                client_token: unique_fleet("v2"),
            },
        )
        .await
        .expect("version created");
    assert_eq!(
        created,
        MutationOutcome::LaunchTemplate {
            id: template.clone(),
            version: 2
        }
    );
    provider
        .mutate(
            REGION,
            Mutation::SetDefaultVersion {
                template_id: template,
                version: 2,
            },
        )
        .await
        .expect("default set");
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    let read = &observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("templates read")[0];
    assert_eq!(
        read.default_data.as_ref(),
        Some(&second),
        "version 2 reads back as written"
    );
    assert_ne!(
        read.default_data.as_ref(),
        Some(&first),
        "and differs from version 1"
    );

    // A template written with none of the new fields reads back without them.
    let bare = LaunchTemplateData {
        image_id: Some(IMAGE.to_string()),
        ..LaunchTemplateData::default()
    };
    create_template(&provider, &fleet, "bare", bare.clone()).await;
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    let templates = observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("templates read");
    let read = templates
        .iter()
        .find(|t| t.name.ends_with(".bare"))
        .expect("bare template");
    assert_eq!(read.default_data.as_ref(), Some(&bare));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launches_land_in_their_subnet_and_zone_and_their_volumes_carry_the_fleet_tags() {
    let provider = provider().await;
    let fleet = unique_fleet("subnets");
    let network = TestNetwork::create(REGION, &fleet).await;
    let data = LaunchTemplateData {
        block_devices: vec![BlockDevice {
            device_name: "/dev/xvdb".to_string(),
            size_gb: 20,
            volume_type: "io1".to_string(),
            iops: Some(500),
            throughput: None,
            encrypted: None,
        }],
        ..full_data(&fleet, &network)
    };
    let template = create_template(&provider, &fleet, "linux", data).await;
    let public = create_template(
        &provider,
        &fleet,
        "public",
        LaunchTemplateData {
            assign_public_ip: Some(true),
            ..full_data(&fleet, &network)
        },
    )
    .await;
    let launched = |outcome: Result<MutationOutcome, _>| match outcome {
        Ok(MutationOutcome::Instances { ids }) if ids.len() == 1 => ids[0].clone(),
        other => panic!("unexpected outcome {other:?}"),
    };
    let in_b = launched(
        provider
            .mutate(
                REGION,
                launch_in(
                    &template,
                    &fleet,
                    Some(subnet_of(&network, 1, None)),
                    &unique_fleet("b"),
                ),
            )
            .await,
    );
    let in_c = launched(
        provider
            .mutate(
                REGION,
                launch_in(
                    &public,
                    &fleet,
                    Some(subnet_of(&network, 2, Some(true))),
                    &unique_fleet("c"),
                ),
            )
            .await,
    );
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    let found = instances(&observation);
    let placed = |id: &str| {
        let i = found
            .iter()
            .find(|i| i.id == id)
            .expect("instance observed");
        (i.zone.clone(), i.subnet_id.clone())
    };
    assert_eq!(
        placed(&in_b),
        (
            Some(network.subnets[1].0.clone()),
            Some(network.subnets[1].1.clone())
        )
    );
    assert_eq!(
        placed(&in_c),
        (
            Some(network.subnets[2].0.clone()),
            Some(network.subnets[2].1.clone())
        ),
        "through network interface 0"
    );

    let ec2 = network.ec2();
    let volumes_of = |id: String| async move {
        ec2.describe_volumes()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name("attachment.instance-id")
                    .values(id)
                    .build(),
            )
            .send()
            .await
            .expect("volumes described")
            .volumes()
            .to_vec()
    };
    let in_b_volumes = volumes_of(in_b.clone()).await;
    assert!(
        in_b_volumes.len() >= 2,
        "root and /dev/xvdb: {in_b_volumes:?}"
    );
    // The full template maps the image's root device (/dev/sda1): its root
    // volume is that mapping's, beside /dev/xvdb.
    let in_c_volumes = volumes_of(in_c.clone()).await;
    let mut devices: Vec<(String, i32, String)> = in_c_volumes
        .iter()
        .map(|v| {
            (
                v.attachments()
                    .first()
                    .and_then(|a| a.device())
                    .unwrap_or_default()
                    .to_string(),
                v.size().unwrap_or_default(),
                v.volume_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    devices.sort();
    assert_eq!(
        devices,
        vec![
            ("/dev/sda1".to_string(), 60, "gp3".to_string()),
            ("/dev/xvdb".to_string(), 120, "io2".to_string()),
        ]
    );
    for volume in in_b_volumes.iter().chain(&in_c_volumes) {
        let tags: BTreeMap<_, _> = volume
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect();
        assert_eq!(
            tags.get(tags::FLEET),
            Some(&fleet),
            "volume {:?} carries the fleet tag from creation",
            volume.volume_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subnets_groups_and_offerings_are_read_and_a_missing_id_is_simply_absent() {
    let provider = provider().await;
    let fleet = unique_fleet("network");
    let network = TestNetwork::create(REGION, &fleet).await;
    let doomed = TestNetwork::create(REGION, &format!("{fleet}-doomed")).await;
    let deleted = doomed.subnets[0].1.clone();
    doomed
        .ec2()
        .delete_subnet()
        .subnet_id(&deleted)
        .send()
        .await
        .expect("subnet deleted");
    let mut wanted = request(&fleet, &[REGION]);
    let mut subnet_ids = network.subnet_ids();
    subnet_ids.extend([deleted.clone(), "subnet-0123456789abcdef0".to_string()]);
    wanted.subnet_ids.insert(REGION.to_string(), subnet_ids);
    let mut group_ids: Vec<String> = network
        .security_groups
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
    group_ids.push("sg-0123456789abcdef0".to_string());
    wanted
        .security_group_ids
        .insert(REGION.to_string(), group_ids);
    wanted.instance_types.insert(
        REGION.to_string(),
        vec!["m5.large".to_string(), "no-such.type".to_string()],
    );
    let observation = provider.observe(&wanted).await;
    let region = &observation.regions[REGION];
    assert!(region.incomplete().is_empty(), "{:?}", region.incomplete());

    let subnets = region.subnets.complete().expect("subnets read");
    let mut expected: Vec<(String, String, String)> = network
        .subnets
        .iter()
        .map(|(zone, id)| (id.clone(), zone.clone(), network.vpc_id.clone()))
        .collect();
    expected.sort();
    assert_eq!(
        subnets
            .iter()
            .map(|s| (s.id.clone(), s.zone.clone(), s.vpc_id.clone()))
            .collect::<Vec<_>>(),
        expected,
        "the deleted and the wrong id are absent from a complete read"
    );

    let groups = region.security_groups.complete().expect("groups read");
    assert_eq!(groups.len(), 3, "{groups:?}");
    for (level, id) in &network.security_groups {
        let group = groups.iter().find(|g| &g.id == id).expect("group read");
        assert_eq!(group.name, format!("{fleet}-{level}"));
        assert_eq!(group.vpc_id, network.vpc_id);
    }

    let offerings = region.offerings.complete().expect("offerings read");
    assert!(
        offerings.iter().all(|o| o.instance_type == "m5.large"),
        "an unknown type is offered nowhere: {offerings:?}"
    );
    for (zone, _) in &network.subnets {
        assert!(
            offerings.iter().any(|o| &o.zone == zone),
            "m5.large offered in {zone}: {offerings:?}"
        );
    }
    assert!(
        offerings.iter().all(|o| o.zone.starts_with(REGION)),
        "per zone of the region: {offerings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_call_is_made_for_kinds_the_request_does_not_list_and_each_listed_kind_costs_its_pages()
{
    let fleet = unique_fleet("calls");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    // Per region: key pairs, tagged images, templates, default versions, instances.
    let bare = provider
        .observe(&request(&fleet, &[REGION, "us-west-2"]))
        .await;
    assert_eq!(
        bare.api_calls,
        2 * 5,
        "nothing read for subnets, groups or offerings"
    );
    for region in bare.regions.values() {
        assert_eq!(region.subnets.complete().map(Vec::len), Some(0));
        assert_eq!(region.security_groups.complete().map(Vec::len), Some(0));
        assert_eq!(region.offerings.complete().map(Vec::len), Some(0));
    }

    let mut wanted = request(&fleet, &[REGION, "us-west-2"]);
    wanted
        .subnet_ids
        .insert(REGION.to_string(), network.subnet_ids());
    wanted.security_group_ids.insert(
        REGION.to_string(),
        vec![network.group("trusted").expect("group").to_string()],
    );
    wanted
        .instance_types
        .insert(REGION.to_string(), vec!["m5.large".to_string()]);
    let named = provider.observe(&wanted).await;
    assert_eq!(
        named.api_calls,
        2 * 5 + 3,
        "one call per listed kind, in the one region that lists them"
    );
    assert_eq!(
        named.regions[REGION].subnets.complete().map(Vec::len),
        Some(3)
    );

    // In pages of 5, in a region where no test of this binary makes
    // templates (the default versions are read for the whole region): the
    // offerings of two types over the region's zones take their pages, a
    // last page that is full is read again with pages of 6.
    let region = "eu-west-1";
    let paged = provider_at(endpoint(), Some(5)).await;
    let mut wanted = request(&fleet, &[region]);
    wanted.instance_types.insert(
        region.to_string(),
        vec!["m5.large".to_string(), "c5.large".to_string()],
    );
    let observation = paged.observe(&wanted).await;
    let offerings = observation.regions[region]
        .offerings
        .complete()
        .expect("offerings read");
    let zones = offerings
        .iter()
        .filter(|o| o.instance_type == "m5.large")
        .count();
    assert!(zones >= 3, "{offerings:?}");
    assert_eq!(offerings.len(), 2 * zones, "{offerings:?}");
    let calls = |items: usize, size: usize| items.div_ceil(size).max(1);
    let mut expected = 5 + calls(offerings.len(), 5);
    if offerings.len() % 5 == 0 {
        expected += calls(offerings.len(), 6);
    }
    assert_eq!(
        observation.api_calls,
        u64::try_from(expected).expect("small"),
        "{} offerings in pages of 5",
        offerings.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_network_read_is_incomplete_and_the_other_kinds_are_still_read() {
    let fleet = unique_fleet("netfault");
    let network = TestNetwork::create(REGION, &fleet).await;
    let rule: fleetform_test_support::fault::Rule =
        std::sync::Arc::new(|_region: &str, action: &str| action == "DescribeSubnets");
    let proxy = FaultProxy::start(endpoint(), rule).expect("proxy starts");
    let provider = provider_at(&proxy.url, None).await;
    let mut wanted = request(&fleet, &[REGION]);
    wanted
        .subnet_ids
        .insert(REGION.to_string(), network.subnet_ids());
    wanted
        .instance_types
        .insert(REGION.to_string(), vec!["m5.large".to_string()]);
    let observation = provider.observe(&wanted).await;
    let region = &observation.regions[REGION];
    let cause = region.subnets.cause().expect("subnets incomplete");
    assert!(cause.contains("InternalError"), "{cause}");
    assert_eq!(
        region
            .incomplete()
            .into_iter()
            .map(|(kind, _)| kind)
            .collect::<Vec<_>>(),
        vec![fleetform_engine::provider::Kind::Subnets],
        "only the failed kind"
    );
    assert!(region.offerings.complete().is_some_and(|o| !o.is_empty()));
    assert!(proxy.injected() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_zone_capacity_failure_leaves_the_other_zones_launchable() {
    let fleet = unique_fleet("capacity");
    let network = TestNetwork::create(REGION, &fleet).await;
    let direct = provider().await;
    let template = create_template(&direct, &fleet, "linux", full_data(&fleet, &network)).await;
    let proxy =
        FaultProxy::out_of_capacity_in(endpoint(), &network.subnets[0].1).expect("proxy starts");
    let provider = provider_at(&proxy.url, None).await;
    let failed = provider
        .mutate(
            REGION,
            launch_in(
                &template,
                &fleet,
                Some(subnet_of(&network, 0, None)),
                &unique_fleet("a"),
            ),
        )
        .await
        .expect_err("no capacity in the first zone");
    assert_eq!(failed.code.as_deref(), Some("InsufficientInstanceCapacity"));
    let landed = provider
        .mutate(
            REGION,
            launch_in(
                &template,
                &fleet,
                Some(subnet_of(&network, 1, None)),
                &unique_fleet("b"),
            ),
        )
        .await
        .expect("the second zone launches");
    let MutationOutcome::Instances { ids } = landed else {
        panic!("unexpected {landed:?}")
    };
    let observation = direct.observe(&request(&fleet, &[REGION])).await;
    let found = instances(&observation);
    assert_eq!(
        found.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        ids,
        "only the launch in the second zone happened"
    );
    assert_eq!(
        found[0].zone.as_deref(),
        Some(network.subnets[1].0.as_str())
    );
    assert!(proxy.injected() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_token_reused_for_another_subnet_is_a_mismatch_not_a_launch() {
    let provider = provider().await;
    let fleet = unique_fleet("mismatch");
    let network = TestNetwork::create(REGION, &fleet).await;
    let template = create_template(&provider, &fleet, "linux", full_data(&fleet, &network)).await;
    let token = unique_fleet("token");
    let first = provider
        .mutate(
            REGION,
            launch_in(
                &template,
                &fleet,
                Some(subnet_of(&network, 0, None)),
                &token,
            ),
        )
        .await
        .expect("launched");
    let other = provider
        .mutate(
            REGION,
            launch_in(
                &template,
                &fleet,
                Some(subnet_of(&network, 1, None)),
                &token,
            ),
        )
        .await
        .expect_err("EC2 refuses a token reused with other parameters");
    assert_eq!(other.code.as_deref(), Some("IdempotentParameterMismatch"));
    assert_eq!(other.kind, ErrorKind::InvalidRequest);
    let again = provider
        .mutate(
            REGION,
            launch_in(
                &template,
                &fleet,
                Some(subnet_of(&network, 0, None)),
                &token,
            ),
        )
        .await
        .expect("the same call again");
    assert_eq!(again, first, "answered with the first launch");
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    assert_eq!(instances(&observation).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_from_an_image_tries_the_subnet_groups_and_instance_profile() {
    let provider = provider().await;
    let fleet = unique_fleet("dry");
    let network = TestNetwork::create(REGION, &fleet).await;
    let dry = |profile: Option<&str>, public: Option<bool>| Mutation::DryRunFromImage {
        image_id: IMAGE.to_string(),
        instance_type: "m5.large".to_string(),
        subnet: Some(subnet_of(&network, 0, public)),
        iam_instance_profile: profile.map(str::to_string),
    };
    assert_eq!(
        provider.mutate(REGION, dry(None, None)).await,
        Ok(MutationOutcome::DryRunOk)
    );
    assert_eq!(
        provider.mutate(REGION, dry(None, Some(false))).await,
        Ok(MutationOutcome::DryRunOk),
        "with the subnet on network interface 0"
    );
    let missing = provider
        .mutate(REGION, dry(Some("no-such-profile"), None))
        .await
        .expect_err("a missing instance profile is reported");
    assert_eq!(missing.kind, ErrorKind::DryRunFailed);
    assert!(
        missing.message.contains("no-such-profile"),
        "{}",
        missing.message
    );
    let observation = provider.observe(&request(&fleet, &[REGION])).await;
    assert!(instances(&observation).is_empty(), "nothing launched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_reports_its_root_device() {
    let provider = provider().await;
    let mut wanted = request(&unique_fleet("root"), &[REGION]);
    wanted
        .image_ids
        .insert(REGION.to_string(), vec![IMAGE.to_string()]);
    let observation = provider.observe(&wanted).await;
    let images = observation.regions[REGION]
        .images
        .complete()
        .expect("images read");
    let image = images.iter().find(|i| i.id == IMAGE).expect("named image");
    assert_eq!(image.root_device_name.as_deref(), Some("/dev/sda1"));
}

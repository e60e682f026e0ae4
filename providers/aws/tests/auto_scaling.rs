//! Auto Scaling groups through the provider against the local endpoint
//! (moto_server, patched by scripts/moto_launcher.py): a group written and
//! read back, updated, scaled by attaching and detaching instances,
//! refreshed, deleted; the listing paged at its cost in calls; and a failed
//! or cut-off listing reported incomplete, never empty.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{
    tags, ErrorKind, GroupOverride, GroupSpec, GroupSpot, LaunchSubnet, LaunchTemplateData,
    Mutation, MutationOutcome, Observation, ObserveRequest, ObservedGroup, Provider,
};
use fleetform_test_support::fault::{FaultProxy, Injection};
use fleetform_test_support::network::TestNetwork;
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeMap;
use std::sync::Arc;

const REGION: &str = "us-east-1";
/// An Ubuntu image moto ships in every region.
const IMAGE: &str = "ami-785db401";
/// EC2 calls of an observation that names nothing: key pairs, tagged
/// images, templates, default versions, instances.
const EC2_CALLS: u64 = 5;

async fn provider_at(url: &str, page_size: Option<u32>) -> AwsProvider {
    AwsProvider::connect(&ConnectOptions {
        endpoint_url: Some(url.to_string()),
        page_size,
        ..ConnectOptions::default()
    })
    .await
    .expect("connects")
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

/// A request for the fleet's groups in `region` (and nothing the
/// configuration names), with the refreshes of `refresh` read.
fn request(fleet: &str, region: &str, refresh: &[&str]) -> ObserveRequest {
    ObserveRequest {
        fleet: fleet.to_string(),
        regions: vec![region.to_string()],
        auto_scaling_groups: true,
        refresh_groups: BTreeMap::from([(
            region.to_string(),
            refresh.iter().map(|r| r.to_string()).collect(),
        )]),
        ..ObserveRequest::default()
    }
}

/// A launch template of `fleet` without an instance type (the group's
/// overrides name them), as fleetform writes one for a group.
async fn template(provider: &AwsProvider, region: &str, fleet: &str, name: &str) -> String {
    let outcome = provider
        .mutate(
            region,
            Mutation::CreateLaunchTemplate {
                name: format!("{fleet}.{name}"),
                data: LaunchTemplateData {
                    image_id: Some(IMAGE.to_string()),
                    instance_tags: fleet_tags(fleet, &format!("worker_type.{name}")).into(),
                    ..LaunchTemplateData::default()
                },
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

/// An on-demand group of `fleet` over every subnet of `network`: m5.large
/// (weight 1) then m5.xlarge (weight 2), 0..4, desired 0.
fn group(fleet: &str, name: &str, template: &str, network: &TestNetwork) -> GroupSpec {
    let mut subnet_ids = network.subnet_ids();
    subnet_ids.sort();
    GroupSpec {
        name: format!("{fleet}.{name}"),
        launch_template_id: template.to_string(),
        overrides: vec![
            GroupOverride {
                instance_type: "m5.large".to_string(),
                weight: 1,
                launch_template_id: None,
            },
            GroupOverride {
                instance_type: "m5.xlarge".to_string(),
                weight: 2,
                launch_template_id: None,
            },
        ],
        subnet_ids,
        min_size: 0,
        max_size: 4,
        desired_capacity: Some(0),
        max_instance_lifetime_secs: None,
        spot: None,
        tags: fleet_tags(
            fleet,
            &format!("worker_type.{name}[\"{}\"]", network.region),
        ),
    }
}

async fn create(provider: &AwsProvider, region: &str, spec: &GroupSpec) {
    let outcome = provider
        .mutate(
            region,
            Mutation::CreateAutoScalingGroup { spec: spec.clone() },
        )
        .await
        .expect("group created");
    assert_eq!(outcome, MutationOutcome::Done);
}

fn groups(observation: &Observation, region: &str) -> Vec<ObservedGroup> {
    observation.regions[region]
        .auto_scaling_groups
        .complete()
        .unwrap_or_else(|| {
            panic!(
                "groups read: {:?}",
                observation.regions[region].auto_scaling_groups
            )
        })
        .clone()
}

async fn observed(provider: &AwsProvider, fleet: &str, name: &str) -> ObservedGroup {
    let observation = provider.observe(&request(fleet, REGION, &[])).await;
    groups(&observation, REGION)
        .into_iter()
        .find(|g| g.spec.name == name)
        .unwrap_or_else(|| panic!("{name} observed"))
}

/// What the read-back of `spec` is: the same, without the desired capacity
/// (the group's own field), the price in its shortest form.
fn read_back(spec: &GroupSpec) -> GroupSpec {
    GroupSpec {
        desired_capacity: None,
        spot: spec.spot.as_ref().map(|s| GroupSpot {
            max_price: s
                .max_price
                .as_deref()
                .map(fleetform_engine::provider::canonical_price),
        }),
        ..spec.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_group_reads_back_as_it_was_created_and_launches_into_every_zone() {
    let fleet = unique_fleet("asg-create");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    let main = template(&provider, REGION, &fleet, "linux").await;
    let large = template(&provider, REGION, &fleet, "linux-large").await;
    let mut spec = group(&fleet, "linux", &main, &network);
    spec.overrides[1].launch_template_id = Some(large.clone());
    spec.desired_capacity = Some(3);
    spec.max_instance_lifetime_secs = Some(4 * 86_400);
    spec.spot = Some(GroupSpot {
        max_price: Some("0.680".to_string()),
    });
    spec.tags.insert("owner".to_string(), "releng".to_string());
    create(&provider, REGION, &spec).await;
    // A retry of the create (the group exists) is done, not an error.
    create(&provider, REGION, &spec).await;

    let observation = provider.observe(&request(&fleet, REGION, &[])).await;
    let found = groups(&observation, REGION);
    assert_eq!(found.len(), 1, "{found:?}");
    let group = &found[0];
    assert_eq!(group.spec, read_back(&spec));
    assert_eq!(
        group
            .spec
            .spot
            .as_ref()
            .and_then(|s| s.max_price.as_deref()),
        Some("0.68")
    );
    assert_eq!(group.spec.overrides[1].launch_template_id, Some(large));
    assert_eq!(group.desired_capacity, 3);
    assert_eq!(group.tags, spec.tags, "every tag, all propagated");
    assert_eq!(group.refresh_in_flight, None, "not asked for");
    assert_eq!(group.instances.len(), 3, "{:?}", group.instances);
    for instance in &group.instances {
        assert_eq!(instance.instance_type, "m5.large", "the first override");
        assert_eq!(instance.lifecycle_state, "InService");
        assert_eq!(instance.launch_template_version.as_deref(), Some("1"));
    }
    // The instances are the fleet's (the propagated fleet tag) and the
    // group's, one per zone.
    let instances = observation.regions[REGION]
        .instances
        .complete()
        .expect("instances read");
    let mut zones = Vec::new();
    for member in &group.instances {
        let instance = instances
            .iter()
            .find(|i| i.id == member.id)
            .unwrap_or_else(|| panic!("{} listed with the fleet's tag", member.id));
        assert_eq!(
            instance
                .tags
                .get("aws:autoscaling:groupName")
                .map(|t| t.as_str()),
            Some(spec.name.as_str())
        );
        assert_eq!(
            instance.tags.get("owner").map(|t| t.as_str()),
            Some("releng")
        );
        zones.extend(instance.zone.clone());
    }
    zones.sort();
    zones.dedup();
    assert_eq!(zones.len(), 3, "spread over the zones: {zones:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_changes_bounds_policy_and_tags_and_a_desired_capacity_outside_them_is_refused() {
    let fleet = unique_fleet("asg-update");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    let main = template(&provider, REGION, &fleet, "linux").await;
    let mut spec = group(&fleet, "linux", &main, &network);
    spec.desired_capacity = Some(3);
    spec.max_instance_lifetime_secs = Some(86_400);
    spec.tags.insert("owner".to_string(), "releng".to_string());
    spec.tags.insert("team".to_string(), "ci".to_string());
    create(&provider, REGION, &spec).await;
    let before = observed(&provider, &fleet, &spec.name).await;

    let mut changed = spec.clone();
    changed.max_size = 2;
    // The engine clamps the desired capacity into the new bounds.
    changed.desired_capacity = Some(2);
    changed.max_instance_lifetime_secs = None;
    changed.spot = Some(GroupSpot { max_price: None });
    changed.overrides.truncate(1);
    changed
        .tags
        .insert("owner".to_string(), "taskcluster".to_string());
    changed.tags.remove("team");
    changed.tags.insert("pool".to_string(), "b".to_string());
    let outcome = provider
        .mutate(
            REGION,
            Mutation::UpdateAutoScalingGroup {
                spec: changed.clone(),
                old_tags: before.spec.tags.clone(),
            },
        )
        .await
        .expect("updated");
    assert_eq!(outcome, MutationOutcome::Done);
    let after = observed(&provider, &fleet, &spec.name).await;
    assert_eq!(after.spec, read_back(&changed));
    assert_eq!(after.desired_capacity, 2);
    assert_eq!(after.instances.len(), 2);
    assert!(!after.tags.contains_key("team"), "{:?}", after.tags);

    // Without a desired capacity it is left as it is.
    let mut same = changed.clone();
    same.desired_capacity = None;
    same.min_size = 1;
    provider
        .mutate(
            REGION,
            Mutation::UpdateAutoScalingGroup {
                spec: same.clone(),
                old_tags: after.spec.tags.clone(),
            },
        )
        .await
        .expect("updated");
    let kept = observed(&provider, &fleet, &spec.name).await;
    assert_eq!((kept.spec.min_size, kept.desired_capacity), (1, 2));

    // The provider carries out what it is asked: a desired capacity outside
    // the bounds is Auto Scaling's ValidationError, changing nothing.
    let mut outside = same.clone();
    outside.desired_capacity = Some(5);
    let err = provider
        .mutate(
            REGION,
            Mutation::UpdateAutoScalingGroup {
                spec: outside,
                old_tags: kept.spec.tags.clone(),
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err:?}");
    assert_eq!(err.code.as_deref(), Some("ValidationError"));
    assert_eq!(
        observed(&provider, &fleet, &spec.name)
            .await
            .desired_capacity,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_attach_and_detach_in_chunks_and_a_second_detach_is_done() {
    let fleet = unique_fleet("asg-attach");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    let main = template(&provider, REGION, &fleet, "linux").await;
    let mut spec = group(&fleet, "linux", &main, &network);
    spec.max_size = 25;
    create(&provider, REGION, &spec).await;
    let launched = provider
        .mutate(
            REGION,
            Mutation::RunInstances {
                template_id: main.clone(),
                version: 0,
                instance_type: "m5.large".to_string(),
                count: 21,
                tags: fleet_tags(&fleet, "worker_type.linux"),
                client_token: unique_fleet("attach"),
                dry_run: false,
                subnet: Some(LaunchSubnet {
                    subnet_id: network.subnets[0].1.clone(),
                    security_group_ids: Vec::new(),
                    assign_public_ip: None,
                }),
            },
        )
        .await
        .expect("launched");
    let MutationOutcome::Instances { ids } = launched else {
        panic!("unexpected outcome {launched:?}");
    };
    assert_eq!(ids.len(), 21);

    let calls = provider.api_calls();
    let outcome = provider
        .mutate(
            REGION,
            Mutation::AttachInstances {
                name: spec.name.clone(),
                ids: ids.clone(),
            },
        )
        .await
        .expect("attached");
    assert_eq!(outcome, MutationOutcome::Done);
    assert_eq!(provider.api_calls() - calls, 2, "21 instances in two calls");
    let group = observed(&provider, &fleet, &spec.name).await;
    let mut members: Vec<String> = group.instances.iter().map(|i| i.id.clone()).collect();
    members.sort();
    let mut wanted = ids.clone();
    wanted.sort();
    assert_eq!(members, wanted);
    assert_eq!(group.desired_capacity, 21);

    let (first, rest) = ids.split_at(2);
    provider
        .mutate(
            REGION,
            Mutation::DetachInstances {
                name: spec.name.clone(),
                ids: first.to_vec(),
            },
        )
        .await
        .expect("detached");
    // Again with those two among the others (a retry after a partial
    // detach): the ones already out are done, the rest are detached.
    let outcome = provider
        .mutate(
            REGION,
            Mutation::DetachInstances {
                name: spec.name.clone(),
                ids: ids.clone(),
            },
        )
        .await
        .expect("detached");
    assert_eq!(outcome, MutationOutcome::Done);
    let group = observed(&provider, &fleet, &spec.name).await;
    assert!(group.instances.is_empty(), "{:?}", group.instances);
    assert_eq!(group.desired_capacity, 0, "decremented once per instance");
    assert_eq!(rest.len(), 19);
    let again = provider
        .mutate(
            REGION,
            Mutation::DetachInstances {
                name: spec.name.clone(),
                ids: first.to_vec(),
            },
        )
        .await
        .expect("no longer in the group is done");
    assert_eq!(again, MutationOutcome::Done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_starts_once_and_is_in_flight_only_where_it_is_read() {
    let fleet = unique_fleet("asg-refresh");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    let main = template(&provider, REGION, &fleet, "linux").await;
    let mut spec = group(&fleet, "linux", &main, &network);
    spec.desired_capacity = Some(2);
    create(&provider, REGION, &spec).await;
    let start = || Mutation::StartInstanceRefresh {
        name: spec.name.clone(),
        min_healthy_percentage: 90,
    };
    let first = provider.mutate(REGION, start()).await.expect("started");
    let MutationOutcome::Refresh { id } = first else {
        panic!("unexpected outcome {first:?}");
    };
    assert!(!id.is_empty());
    let second = provider.mutate(REGION, start()).await.expect("in flight");
    assert_eq!(second, MutationOutcome::Done, "never a second refresh");

    let unasked = provider.observe(&request(&fleet, REGION, &[])).await;
    assert_eq!(groups(&unasked, REGION)[0].refresh_in_flight, None);
    let asked = provider
        .observe(&request(&fleet, REGION, &[spec.name.as_str()]))
        .await;
    let refresh = groups(&asked, REGION)[0]
        .refresh_in_flight
        .clone()
        .expect("in flight");
    assert_eq!(
        (refresh.id.as_str(), refresh.status.as_str()),
        (id.as_str(), "InProgress")
    );
    assert_eq!(
        asked.api_calls,
        unasked.api_calls + 1,
        "one DescribeInstanceRefreshes for the one group named"
    );

    // The local endpoint moves a refresh one instance per read (see
    // scripts/moto_launcher.py, 13): it ends within a bounded number of reads.
    let before: Vec<String> = groups(&unasked, REGION)[0]
        .instances
        .iter()
        .map(|i| i.id.clone())
        .collect();
    let mut reads = 0;
    let ended = loop {
        let observation = provider
            .observe(&request(&fleet, REGION, &[spec.name.as_str()]))
            .await;
        let group = groups(&observation, REGION).remove(0);
        if group.refresh_in_flight.is_none() {
            break group;
        }
        reads += 1;
        assert!(reads < 10, "the refresh never ended: {group:?}");
    };
    assert_eq!(ended.instances.len(), 2);
    assert!(
        ended.instances.iter().all(|i| !before.contains(&i.id)),
        "every instance replaced: {before:?} then {:?}",
        ended.instances
    );
    let third = provider.mutate(REGION, start()).await.expect("started");
    assert!(
        matches!(&third, MutationOutcome::Refresh { id: next } if *next != id),
        "a new refresh once the first ended: {third:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_group_is_gone_with_its_instances_and_deleting_it_again_is_done() {
    let fleet = unique_fleet("asg-delete");
    let network = TestNetwork::create(REGION, &fleet).await;
    let provider = provider().await;
    let main = template(&provider, REGION, &fleet, "linux").await;
    let mut spec = group(&fleet, "linux", &main, &network);
    spec.desired_capacity = Some(2);
    create(&provider, REGION, &spec).await;
    let delete = || Mutation::DeleteAutoScalingGroup {
        name: spec.name.clone(),
    };
    assert_eq!(
        provider.mutate(REGION, delete()).await.expect("deleted"),
        MutationOutcome::Done
    );
    let observation = provider.observe(&request(&fleet, REGION, &[])).await;
    assert!(groups(&observation, REGION).is_empty());
    let instances = observation.regions[REGION]
        .instances
        .complete()
        .expect("instances read");
    assert!(
        instances.is_empty(),
        "terminated with the group: {instances:?}"
    );
    assert_eq!(
        provider
            .mutate(REGION, delete())
            .await
            .expect("gone is done"),
        MutationOutcome::Done
    );
}

/// `count` groups of `fleet` (desired 0) in `network`'s region, and one of
/// another fleet that must never be listed.
async fn many_groups(provider: &AwsProvider, fleet: &str, network: &TestNetwork, count: usize) {
    let region = network.region.as_str();
    let main = template(provider, region, fleet, "linux").await;
    for n in 0..count {
        create(
            provider,
            region,
            &group(fleet, &format!("w{n}"), &main, network),
        )
        .await;
    }
    let other = unique_fleet("asg-other");
    create(provider, region, &group(&other, "w", &main, network)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_read_across_pages_at_one_call_per_page() {
    // A region of its own: the EC2 reads there cost one page each.
    let region = "ap-southeast-2";
    let fleet = unique_fleet("asg-pages");
    let network = TestNetwork::create(region, &fleet).await;
    let setup = provider().await;
    many_groups(&setup, &fleet, &network, 12).await;

    let paged = provider_at(endpoint(), Some(5)).await;
    let without = paged
        .observe(&ObserveRequest {
            auto_scaling_groups: false,
            ..request(&fleet, region, &[])
        })
        .await;
    assert_eq!(without.api_calls, EC2_CALLS, "no Auto Scaling call unasked");
    assert_eq!(
        without.regions[region]
            .auto_scaling_groups
            .complete()
            .map(Vec::len),
        Some(0)
    );
    let observation = paged.observe(&request(&fleet, region, &[])).await;
    let found = groups(&observation, region);
    let mut names: Vec<String> = found.iter().map(|g| g.spec.name.clone()).collect();
    names.sort();
    let mut wanted: Vec<String> = (0..12).map(|n| format!("{fleet}.w{n}")).collect();
    wanted.sort();
    assert_eq!(names, wanted, "every group of the fleet, no other");
    // 12 groups in pages of 5: 5, 5, 2.
    assert_eq!(observation.api_calls, EC2_CALLS + 3);
    // A refresh asked of a group that does not exist costs no call.
    let absent = paged
        .observe(&request(&fleet, region, &["no-such-group"]))
        .await;
    assert_eq!(absent.api_calls, EC2_CALLS + 3);
    assert!(groups(&absent, region)
        .iter()
        .all(|g| g.refresh_in_flight.is_none()));

    // 10 groups end on a full page without a token: that last page alone is
    // read again from its own token, in a page of 6 (which is not full).
    let fleet = unique_fleet("asg-pages");
    many_groups(&setup, &fleet, &network, 10).await;
    let observation = paged.observe(&request(&fleet, region, &[])).await;
    assert_eq!(groups(&observation, region).len(), 10);
    assert_eq!(observation.api_calls, EC2_CALLS + 2 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_cut_off_group_listing_is_incomplete_not_empty() {
    let region = "sa-east-1";
    let fleet = unique_fleet("asg-fault");
    let network = TestNetwork::create(region, &fleet).await;
    many_groups(&provider().await, &fleet, &network, 8).await;

    let failing = FaultProxy::start(
        endpoint(),
        Arc::new(|_: &str, action: &str| action == "DescribeAutoScalingGroups"),
    )
    .expect("proxy");
    let observation = provider_at(&failing.url, Some(5))
        .await
        .observe(&request(&fleet, region, &[]))
        .await;
    let read = &observation.regions[region];
    let cause = read.auto_scaling_groups.cause().expect("incomplete");
    assert!(!cause.is_empty());
    assert!(failing.injected() > 1, "retried before giving up");
    assert!(
        read.instances.complete().is_some(),
        "the EC2 kinds are still read"
    );

    // Every page loses its NextToken: each of the three reads ends on a
    // full page, so the listing may be cut short.
    let cutting = FaultProxy::start_deciding(
        endpoint(),
        Arc::new(|_: &str, action: &str| {
            (action == "DescribeAutoScalingGroups").then_some(Injection::Truncate)
        }),
        None,
    )
    .expect("proxy");
    let observation = provider_at(&cutting.url, Some(5))
        .await
        .observe(&request(&fleet, region, &[]))
        .await;
    let cause = observation.regions[region]
        .auto_scaling_groups
        .cause()
        .expect("incomplete, not the first page as if complete");
    assert!(cause.contains("NextToken"), "{cause}");
}

//! The AWS provider against a real EC2 API over HTTP (moto_server on
//! 127.0.0.1): tag-filtered observation, paging, regions, failures that make a
//! read incomplete (never empty), and the mutations later stages need.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Mutation, MutationOutcome, Observation, ObserveRequest, Provider,
};
use fleetform_test_support::{endpoint, unique_fleet};
use std::collections::BTreeMap;
use std::io::{Read, Write};

const REGION: &str = "us-east-1";
/// An Ubuntu image moto ships in every region.
const IMAGE: &str = "ami-785db401";
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC2KbGoVctVd9DXpWAExeFEUVf/yiaYY8thCxnr+IXZy test";

async fn provider_at(url: &str) -> AwsProvider {
    let options = ConnectOptions {
        endpoint_url: Some(url.to_string()),
        ..ConnectOptions::default()
    };
    AwsProvider::connect(&options).await.expect("connects")
}

async fn provider() -> AwsProvider {
    provider_at(endpoint()).await
}

fn fleet_tags(fleet: &str, address: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::FLEET.to_string(), fleet.to_string()),
        (tags::ADDRESS.to_string(), address.to_string()),
    ])
}

async fn observe(provider: &AwsProvider, fleet: &str, regions: &[&str]) -> Observation {
    provider
        .observe(&ObserveRequest {
            fleet: fleet.to_string(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
            image_ids: regions
                .iter()
                .map(|r| (r.to_string(), vec![IMAGE.to_string()]))
                .collect(),
            lookups: Vec::new(),
            ..Default::default()
        })
        .await
}

async fn create_template(
    provider: &AwsProvider,
    region: &str,
    name: &str,
    tags: BTreeMap<String, String>,
) -> String {
    let outcome = provider
        .mutate(
            region,
            Mutation::CreateLaunchTemplate {
                name: name.to_string(),
                data: LaunchTemplateData {
                    image_id: Some(IMAGE.to_string()),
                    user_data: Some("#!/bin/sh\necho worker_type=test\n".to_string()),
                    market: Some("spot".to_string()),
                    ..LaunchTemplateData::default()
                },
                tags,
                client_token: format!("token-{name}"),
            },
        )
        .await
        .expect("template created");
    match outcome {
        MutationOutcome::LaunchTemplate { id, .. } => id,
        other => panic!("unexpected outcome {other:?}"),
    }
}

async fn launch(
    provider: &AwsProvider,
    region: &str,
    template: &str,
    count: i32,
    tags: BTreeMap<String, String>,
) -> Vec<String> {
    let outcome = provider
        .mutate(
            region,
            Mutation::RunInstances {
                template_id: template.to_string(),
                version: 1,
                instance_type: "m5.large".to_string(),
                count,
                tags,
                client_token: unique_fleet("launch"),
                dry_run: false,
                subnet: None,
            },
        )
        .await
        .expect("launched");
    match outcome {
        MutationOutcome::Instances { ids } => ids,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_is_the_local_endpoints_account() {
    let caller = provider().await.caller().await.expect("STS answers");
    assert_eq!(caller.account, "123456789012");
    assert!(caller.arn.starts_with("arn:aws:"), "{}", caller.arn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observation_finds_exactly_the_tagged_objects() {
    let provider = provider().await;
    let fleet = unique_fleet("tagged");
    let other = unique_fleet("other");
    let ours = fleet_tags(&fleet, "key_pair.workers");
    provider
        .mutate(
            REGION,
            Mutation::ImportKeyPair {
                name: format!("{fleet}-key"),
                public_key: PUBLIC_KEY.into(),
                tags: ours,
            },
        )
        .await
        .expect("key imported");
    provider
        .mutate(
            REGION,
            Mutation::ImportKeyPair {
                name: format!("{fleet}-untagged"),
                public_key: PUBLIC_KEY.into(),
                tags: BTreeMap::new(),
            },
        )
        .await
        .expect("key imported");
    let template = create_template(
        &provider,
        REGION,
        &format!("{fleet}.linux"),
        fleet_tags(&fleet, "worker_type.linux[\"us-east-1\"]"),
    )
    .await;
    let foreign = create_template(
        &provider,
        REGION,
        &format!("{other}.linux"),
        fleet_tags(&other, "worker_type.linux[\"us-east-1\"]"),
    )
    .await;
    let launched = launch(
        &provider,
        REGION,
        &template,
        2,
        fleet_tags(&fleet, "worker_type.linux[\"us-east-1\"]"),
    )
    .await;
    launch(
        &provider,
        REGION,
        &foreign,
        1,
        fleet_tags(&other, "worker_type.linux[\"us-east-1\"]"),
    )
    .await;
    launch(&provider, REGION, &template, 1, BTreeMap::new()).await;

    let observation = observe(&provider, &fleet, &[REGION]).await;
    let region = &observation.regions[REGION];
    assert!(region.incomplete().is_empty(), "{:?}", region.incomplete());

    let key_pairs = region.key_pairs.complete().expect("complete");
    assert_eq!(
        key_pairs.iter().map(|k| k.name.clone()).collect::<Vec<_>>(),
        vec![format!("{fleet}-key")]
    );

    let templates = region.launch_templates.complete().expect("complete");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].id, template);
    let data = templates[0]
        .default_data
        .as_ref()
        .expect("default version read");
    assert_eq!(data.image_id.as_deref(), Some(IMAGE));
    assert_eq!(
        data.user_data.as_deref(),
        Some("#!/bin/sh\necho worker_type=test\n"),
        "decoded from base64"
    );

    let mut instances: Vec<String> = region
        .instances
        .complete()
        .expect("complete")
        .iter()
        .map(|i| i.id.clone())
        .collect();
    instances.sort();
    let mut expected = launched.clone();
    expected.sort();
    assert_eq!(instances, expected, "only our tagged instances");

    let images = region.images.complete().expect("complete");
    assert!(
        images
            .iter()
            .any(|i| i.id == IMAGE && i.virtualization == "hvm"),
        "named image found: {images:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_returns_every_instance_past_a_thousand() {
    let provider = provider().await;
    let fleet = unique_fleet("paging");
    let tags = fleet_tags(&fleet, "worker_type.big[\"us-east-1\"]");
    let template = create_template(&provider, REGION, &format!("{fleet}.big"), tags.clone()).await;
    let mut launched = 0;
    for _ in 0..3 {
        launched += launch(&provider, REGION, &template, 350, tags.clone())
            .await
            .len();
    }
    assert_eq!(launched, 1050);
    let observation = observe(&provider, &fleet, &[REGION]).await;
    let instances = observation.regions[REGION]
        .instances
        .complete()
        .expect("complete");
    assert_eq!(instances.len(), 1050);
    // 1 key-pair call + 2 image calls + 1 template call + at least 2 instance pages.
    assert!(observation.api_calls >= 6, "{}", observation.api_calls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_templates_page_past_one_page() {
    // moto cuts DescribeLaunchTemplates(Versions) at MaxResults and returns no
    // NextToken; the launcher fixes that. We ask for pages of 200, so without the
    // fix this test sees 200 of 205 (checked with `moto_launcher.py --no-patch`).
    let provider = provider().await;
    let fleet = unique_fleet("templates");
    for n in 0..205 {
        create_template(
            &provider,
            REGION,
            &format!("{fleet}.wt{n}"),
            fleet_tags(&fleet, &format!("worker_type.wt{n}[\"us-east-1\"]")),
        )
        .await;
    }
    let observation = observe(&provider, &fleet, &[REGION]).await;
    let templates = observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("complete");
    assert_eq!(templates.len(), 205);
    assert!(
        templates.iter().all(|t| t.default_data.is_some()),
        "every default version read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_are_grouped_by_region() {
    let provider = provider().await;
    let fleet = unique_fleet("regions");
    let east = create_template(
        &provider,
        "us-east-1",
        &format!("{fleet}.w"),
        fleet_tags(&fleet, "worker_type.w[\"us-east-1\"]"),
    )
    .await;
    let west = create_template(
        &provider,
        "us-west-2",
        &format!("{fleet}.w"),
        fleet_tags(&fleet, "worker_type.w[\"us-west-2\"]"),
    )
    .await;
    launch(
        &provider,
        "us-east-1",
        &east,
        2,
        fleet_tags(&fleet, "worker_type.w[\"us-east-1\"]"),
    )
    .await;
    launch(
        &provider,
        "us-west-2",
        &west,
        3,
        fleet_tags(&fleet, "worker_type.w[\"us-west-2\"]"),
    )
    .await;
    let observation = observe(&provider, &fleet, &["us-east-1", "us-west-2"]).await;
    let count = |r: &str| observation.regions[r].instances.complete().map(Vec::len);
    assert_eq!(count("us-east-1"), Some(2));
    assert_eq!(count("us-west-2"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_makes_every_read_incomplete_with_the_cause() {
    // Bind then drop: nothing listens on this port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let provider = provider_at(&format!("http://127.0.0.1:{port}")).await;
    let observation = observe(&provider, "refused", &["us-east-1", "us-west-2"]).await;
    for (region, observed) in &observation.regions {
        let incomplete = observed.incomplete();
        assert_eq!(incomplete.len(), 4, "{region}: every kind incomplete");
        for (_, cause) in incomplete {
            assert!(cause.contains("Connection refused"), "{cause}");
        }
    }
}

/// A server on loopback that answers every request with HTTP 500, counting them.
fn always_500() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&served);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counter = std::sync::Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 65536];
                // One request per connection is enough: the response closes it.
                let _ = stream.read(&mut buf);
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let body = "<Response><Errors><Error><Code>InternalError</Code><Message>injected</Message></Error></Errors></Response>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_reported_as_incomplete() {
    let (url, served) = always_500();
    let provider = provider_at(&url).await;
    let observation = observe(&provider, "errors", &["us-east-1"]).await;
    let incomplete = observation.regions["us-east-1"].incomplete();
    assert_eq!(incomplete.len(), 4, "{incomplete:?}");
    for (_, cause) in &incomplete {
        assert!(cause.contains("InternalError"), "{cause}");
    }
    // Four kinds (images first call only), each tried several times before giving up.
    let requests = served.load(std::sync::atomic::Ordering::Relaxed);
    assert!(requests > 4, "retried: {requests} requests");
    assert_eq!(
        observation.api_calls as usize, requests,
        "every attempt counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_launch_is_checked_without_launching() {
    let provider = provider().await;
    let fleet = unique_fleet("dryrun");
    let tags = fleet_tags(&fleet, "worker_type.d[\"us-east-1\"]");
    let template = create_template(&provider, REGION, &format!("{fleet}.d"), tags.clone()).await;
    let outcome = provider
        .mutate(
            REGION,
            Mutation::RunInstances {
                template_id: template,
                version: 1,
                instance_type: "m5.large".into(),
                count: 1,
                tags,
                client_token: unique_fleet("token"),
                dry_run: true,
                subnet: None,
            },
        )
        .await;
    assert_eq!(outcome, Ok(MutationOutcome::DryRunOk));
    let observation = observe(&provider, &fleet, &[REGION]).await;
    assert_eq!(
        observation.regions[REGION]
            .instances
            .complete()
            .map(Vec::len),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_what_is_already_gone_succeeds() {
    let provider = provider().await;
    let fleet = unique_fleet("gone");
    let name = format!("{fleet}-key");
    provider
        .mutate(
            REGION,
            Mutation::ImportKeyPair {
                name: name.clone(),
                public_key: PUBLIC_KEY.into(),
                tags: fleet_tags(&fleet, "key_pair.k"),
            },
        )
        .await
        .expect("imported");
    for _ in 0..2 {
        let deleted = provider
            .mutate(REGION, Mutation::DeleteKeyPair { name: name.clone() })
            .await;
        assert_eq!(deleted, Ok(MutationOutcome::Done));
    }
    let template = create_template(
        &provider,
        REGION,
        &format!("{fleet}.t"),
        fleet_tags(&fleet, "worker_type.t"),
    )
    .await;
    for _ in 0..2 {
        let deleted = provider
            .mutate(
                REGION,
                Mutation::DeleteLaunchTemplate {
                    template_id: template.clone(),
                },
            )
            .await;
        assert_eq!(deleted, Ok(MutationOutcome::Done));
    }
    let observation = observe(&provider, &fleet, &[REGION]).await;
    assert_eq!(
        observation.regions[REGION]
            .key_pairs
            .complete()
            .map(Vec::len),
        Some(0)
    );
    assert_eq!(
        observation.regions[REGION]
            .launch_templates
            .complete()
            .map(Vec::len),
        Some(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_default_version_is_what_observation_reports() {
    let provider = provider().await;
    let fleet = unique_fleet("versions");
    let template = create_template(
        &provider,
        REGION,
        &format!("{fleet}.v"),
        fleet_tags(&fleet, "worker_type.v"),
    )
    .await;
    let newer = "ami-760aaa0f";
    let created = provider
        .mutate(
            REGION,
            Mutation::CreateLaunchTemplateVersion {
                template_id: template.clone(),
                data: LaunchTemplateData {
                    image_id: Some(newer.to_string()),
                    ..LaunchTemplateData::default()
                },
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
    let observation = observe(&provider, &fleet, &[REGION]).await;
    let t = &observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("complete")[0];
    assert_eq!((t.default_version, t.latest_version), (1, 2));
    assert_eq!(
        t.default_data.as_ref().and_then(|d| d.image_id.as_deref()),
        Some(IMAGE)
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
    let observation = observe(&provider, &fleet, &[REGION]).await;
    let t = &observation.regions[REGION]
        .launch_templates
        .complete()
        .expect("complete")[0];
    assert_eq!(t.default_version, 2);
    assert_eq!(
        t.default_data.as_ref().and_then(|d| d.image_id.as_deref()),
        Some(newer)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_an_untagged_instance_adopts_it() {
    let provider = provider().await;
    let fleet = unique_fleet("adopt");
    let template = create_template(
        &provider,
        REGION,
        &format!("{fleet}.a"),
        fleet_tags(&fleet, "worker_type.a"),
    )
    .await;
    let stray = launch(&provider, REGION, &template, 1, BTreeMap::new()).await;
    let before = observe(&provider, &fleet, &[REGION]).await;
    assert_eq!(
        before.regions[REGION].instances.complete().map(Vec::len),
        Some(0)
    );
    provider
        .mutate(
            REGION,
            Mutation::CreateTags {
                resource_ids: stray.clone(),
                tags: fleet_tags(&fleet, "worker_type.a[\"us-east-1\"]"),
            },
        )
        .await
        .expect("tagged");
    let after = observe(&provider, &fleet, &[REGION]).await;
    let instances = after.regions[REGION]
        .instances
        .complete()
        .expect("complete");
    assert_eq!(
        instances.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        stray
    );
    assert_eq!(
        instances[0]
            .launch_template
            .as_ref()
            .map(|(id, _)| id.clone()),
        Some(template)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_image_is_tagged_at_creation_and_can_be_deregistered() {
    let provider = provider().await;
    let fleet = unique_fleet("copy");
    let copied = provider
        .mutate(
            "us-west-2",
            Mutation::CopyImage {
                source_region: REGION.into(),
                source_image: IMAGE.into(),
                name: format!("{fleet}-docker-worker"),
                tags: fleet_tags(&fleet, "ami_set.docker-worker"),
                client_token: unique_fleet("copy-token"),
            },
        )
        .await
        .expect("copied");
    let MutationOutcome::Image { id } = copied else {
        panic!("unexpected {copied:?}")
    };
    let observation = observe(&provider, &fleet, &["us-west-2"]).await;
    let images = observation.regions["us-west-2"]
        .images
        .complete()
        .expect("complete");
    let copy = images
        .iter()
        .find(|i| i.id == id)
        .expect("the copy is found by its fleet tag");
    assert_eq!(
        copy.tags.get(tags::ADDRESS).map(String::as_str),
        Some("ami_set.docker-worker")
    );

    provider
        .mutate(
            "us-west-2",
            Mutation::DeregisterImage {
                image_id: id.clone(),
                snapshot_ids: copy.snapshot_ids.clone(),
            },
        )
        .await
        .expect("deregistered");
    let observation = observe(&provider, &fleet, &["us-west-2"]).await;
    let images = observation.regions["us-west-2"]
        .images
        .complete()
        .expect("complete");
    assert!(images.iter().all(|i| i.id != id), "copy gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_launch_with_the_same_client_token_launches_once() {
    let provider = provider().await;
    let fleet = unique_fleet("token");
    let tags = fleet_tags(&fleet, "worker_type.t[\"us-east-1\"]");
    let template = create_template(&provider, REGION, &format!("{fleet}.t"), tags.clone()).await;
    let run = || Mutation::RunInstances {
        template_id: template.clone(),
        version: 1,
        instance_type: "m5.large".into(),
        count: 2,
        tags: tags.clone(),
        client_token: format!("{fleet}-once"),
        dry_run: false,
        subnet: None,
    };
    let first = provider.mutate(REGION, run()).await.expect("first");
    let second = provider.mutate(REGION, run()).await.expect("second");
    assert_eq!(first, second, "same instances returned");
    let observation = observe(&provider, &fleet, &[REGION]).await;
    assert_eq!(
        observation.regions[REGION]
            .instances
            .complete()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_whose_default_versions_cannot_be_read_are_incomplete_not_empty() {
    // Templates and their default versions are read at the same time; when
    // only the versions fail, the templates must not come back without data
    // (a plan would then "update" every one of them).
    let provider = provider().await;
    let fleet = unique_fleet("defaults");
    create_template(
        &provider,
        REGION,
        &format!("{fleet}.wt"),
        fleet_tags(&fleet, "worker_type.wt[\"us-east-1\"]"),
    )
    .await;
    let rule: fleetform_test_support::fault::Rule =
        std::sync::Arc::new(|_region: &str, action: &str| {
            action == "DescribeLaunchTemplateVersions"
        });
    let proxy =
        fleetform_test_support::fault::FaultProxy::start(endpoint(), rule).expect("proxy starts");
    let through_proxy = provider_at(&proxy.url).await;
    let observation = observe(&through_proxy, &fleet, &[REGION]).await;
    let region = &observation.regions[REGION];
    let cause = region
        .launch_templates
        .cause()
        .expect("launch templates are incomplete");
    assert!(
        cause.contains("InternalError"),
        "cause names the error: {cause}"
    );
    assert!(proxy.injected() >= 1, "the fault was injected");
    assert!(
        region.instances.complete().is_some() && region.key_pairs.complete().is_some(),
        "the other kinds are still read"
    );
}

/// Counts each EC2 action that passes through a proxy, and drops the
/// NextToken of the first `DescribeLaunchTemplates` page when `cut_first`.
/// A proxy counting calls by action; with `cut_at = Some(n)`, the n-th
/// DescribeLaunchTemplates call (from 1) loses its NextToken.
fn counting_proxy(
    cut_at: Option<usize>,
) -> (
    fleetform_test_support::fault::FaultProxy,
    std::sync::Arc<std::sync::Mutex<BTreeMap<String, usize>>>,
) {
    use fleetform_test_support::fault::{FaultProxy, Injection};
    let counts = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, usize>::new()));
    let seen = std::sync::Arc::clone(&counts);
    let proxy = FaultProxy::start_deciding(
        endpoint(),
        std::sync::Arc::new(move |_region: &str, action: &str| {
            let mut counts = seen.lock().unwrap_or_else(|p| p.into_inner());
            let n = counts.entry(action.to_string()).or_insert(0);
            *n += 1;
            (action == "DescribeLaunchTemplates" && cut_at == Some(*n))
                .then_some(Injection::Truncate)
        }),
        None,
    )
    .expect("proxy");
    (proxy, counts)
}

/// `count` templates of `fleet` in `region`, each launching with the fleet's tag as fleetform's do.
async fn fleet_templates(provider: &AwsProvider, region: &str, fleet: &str, count: usize) {
    for n in 0..count {
        let address = format!("worker_type.w{n}[\"{region}\"]");
        provider
            .mutate(
                region,
                Mutation::CreateLaunchTemplate {
                    name: format!("{fleet}.w{n}"),
                    data: LaunchTemplateData {
                        image_id: Some(IMAGE.to_string()),
                        instance_tags: fleet_tags(fleet, &address).into(),
                        ..LaunchTemplateData::default()
                    },
                    tags: fleet_tags(fleet, &address),
                    client_token: format!("token-{fleet}-{n}"),
                },
            )
            .await
            .expect("template created");
    }
}

async fn paged_provider(url: &str, page_size: u32) -> AwsProvider {
    AwsProvider::connect(&ConnectOptions {
        endpoint_url: Some(url.to_string()),
        page_size: Some(page_size),
        ..ConnectOptions::default()
    })
    .await
    .expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_last_page_of_templates_is_vouched_for_by_their_versions_not_read_again() {
    // A region no other test of this binary uses: its versions listing holds
    // only these templates.
    let region = "eu-west-3";
    let fleet = unique_fleet("vouch");
    fleet_templates(&provider().await, region, &fleet, 10).await;
    let (proxy, counts) = counting_proxy(None);
    let provider = paged_provider(&proxy.url, 5).await;
    let observation = observe(&provider, &fleet, &[region]).await;
    let templates = observation.regions[region]
        .launch_templates
        .complete()
        .expect("complete");
    assert_eq!(templates.len(), 10);
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Two pages of 5, the last full: the versions (read at 6 a page, so
    // never full at the same count: 6 and 4) vouch for it; no re-read.
    assert_eq!(
        counts.get("DescribeLaunchTemplates"),
        Some(&2),
        "{counts:?}"
    );
    assert_eq!(
        counts.get("DescribeLaunchTemplateVersions"),
        Some(&2),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_listing_cut_by_a_dropped_token_is_read_again_in_full() {
    let region = "eu-west-2";
    let fleet = unique_fleet("cut");
    fleet_templates(&provider().await, region, &fleet, 10).await;
    let (proxy, counts) = counting_proxy(Some(1));
    let provider = paged_provider(&proxy.url, 5).await;
    let observation = observe(&provider, &fleet, &[region]).await;
    let templates = observation.regions[region]
        .launch_templates
        .complete()
        .expect("complete");
    // The first read stopped after 5 (its token dropped); the versions name
    // 10 of the fleet's templates, so the listing was read again.
    assert_eq!(templates.len(), 10, "{templates:?}");
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        counts
            .get("DescribeLaunchTemplates")
            .is_some_and(|n| *n > 1),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_cut_after_its_first_page_is_read_on_from_its_last_page_only() {
    let region = "ca-central-1";
    let fleet = unique_fleet("tail");
    fleet_templates(&provider().await, region, &fleet, 15).await;
    // The second page (templates 6 to 10) loses its token: the read ends
    // there, on a full page, with 10 of the 15.
    let (proxy, counts) = counting_proxy(Some(2));
    let provider = paged_provider(&proxy.url, 5).await;
    let observation = observe(&provider, &fleet, &[region]).await;
    let templates = observation.regions[region]
        .launch_templates
        .complete()
        .expect("complete");
    let mut names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    let mut wanted: Vec<String> = (0..15).map(|n| format!("{fleet}.w{n}")).collect();
    wanted.sort();
    assert_eq!(names, wanted, "every template once");
    let counts = counts.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // The versions name five templates the listing lacks, so it is
    // confirmed: the cut page again from its own token, in pages of 6
    // (templates 6 to 11, then 12 to 15), not the whole listing.
    assert_eq!(
        counts.get("DescribeLaunchTemplates"),
        Some(&4),
        "{counts:?}"
    );
}

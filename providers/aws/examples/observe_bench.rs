//! Observation cost for a FirefoxCI-scale fleet against a local EC2 endpoint:
//! fleetform's provider next to a baseline that makes the same Describe calls
//! with plain aws-sdk-ec2 (same concurrency, no conversion, no engine).
//!
//! `cargo run -p fleetform-aws --example observe_bench -- ENDPOINT [CONFIG_DIR] [INSTANCES] [RUNS]`
//! Seeds the config's fleet (launch templates per worker type and region, and
//! INSTANCES instances spread over them) under a fresh fleet name, then times
//! RUNS observations of each kind, interleaved, and prints medians.

use aws_sdk_ec2::types::Filter;
use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{
    tags, LaunchTemplateData, Mutation, MutationOutcome, ObserveRequest, Provider,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(endpoint) = args.first().cloned() else {
        eprintln!("usage: observe_bench ENDPOINT [CONFIG_DIR] [INSTANCES] [RUNS]");
        std::process::exit(2);
    };
    let dir = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "examples/firefox-ci".into());
    let instances: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(15);

    let loaded = fleetform_engine::load_dir(
        std::path::Path::new(&dir),
        &fleetform_engine::Inputs::default(),
    );
    let Some(mut config) = loaded.config else {
        eprintln!("{dir} is not valid; run `fleetform validate {dir}`");
        std::process::exit(1);
    };
    // A fresh fleet name per run, so earlier runs against the same server do not count.
    config.fleet.name = format!("{}-bench-{}", config.fleet.name, std::process::id());
    let options = ConnectOptions {
        endpoint_url: Some(endpoint.clone()),
        ..ConnectOptions::default()
    };
    let provider = match AwsProvider::connect(&options).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot connect to {endpoint}: {e}");
            std::process::exit(1);
        }
    };

    let seed_start = Instant::now();
    let slots: Vec<(String, String)> = config
        .worker_types
        .values()
        .flat_map(|wt| wt.regions.iter().map(move |r| (wt.name.clone(), r.clone())))
        .collect();
    let mut templates = Vec::new();
    for (name, region) in &slots {
        let address = format!("worker_type.{name}[\"{region}\"]");
        let tag_set = BTreeMap::from([
            (tags::FLEET.to_string(), config.fleet.name.clone()),
            (tags::ADDRESS.to_string(), address),
            (tags::WORKER_TYPE.to_string(), name.clone()),
        ]);
        let wt = &config.worker_types[name];
        let image = config.ami_sets[&wt.ami_set].images.get(region).cloned();
        let outcome = provider
            .mutate(
                region,
                Mutation::CreateLaunchTemplate {
                    name: format!("{}.{name}", config.fleet.name),
                    data: LaunchTemplateData {
                        image_id: image,
                        user_data: wt.user_data.clone(),
                        ..LaunchTemplateData::default()
                    },
                    tags: tag_set.clone(),
                    client_token: format!("{}-{name}-{region}", config.fleet.name),
                },
            )
            .await;
        match outcome {
            Ok(MutationOutcome::LaunchTemplate { id, .. }) => templates.push((
                region.clone(),
                id,
                tag_set,
                wt.instance_types[0].name.clone(),
            )),
            other => {
                eprintln!("seeding failed: {other:?}");
                std::process::exit(1);
            }
        }
    }
    let per_slot = instances.div_ceil(templates.len().max(1));
    let mut launched = 0;
    for (region, id, tag_set, instance_type) in &templates {
        let count = per_slot.min(instances - launched);
        if count == 0 {
            break;
        }
        let outcome = provider
            .mutate(
                region,
                Mutation::RunInstances {
                    template_id: id.clone(),
                    version: 1,
                    instance_type: instance_type.clone(),
                    count: count as i32,
                    tags: tag_set.clone(),
                    client_token: format!("{id}-seed"),
                    dry_run: false,
                },
            )
            .await;
        if let Err(e) = outcome {
            eprintln!("seeding failed: {e}");
            std::process::exit(1);
        }
        launched += count;
    }
    eprintln!(
        "seeded {} launch templates and {launched} instances in {:.1}s",
        templates.len(),
        seed_start.elapsed().as_secs_f64()
    );

    let request = ObserveRequest::for_config(&config);
    let clients: Vec<(String, aws_sdk_ec2::Client)> = {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_ec2::config::Credentials::new(
                "bench", "bench", None, None, "bench",
            ))
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        request
            .regions
            .iter()
            .map(|r| {
                let conf = aws_sdk_ec2::config::Builder::from(&sdk)
                    .region(aws_config::Region::new(r.clone()))
                    .build();
                (r.clone(), aws_sdk_ec2::Client::from_conf(conf))
            })
            .collect()
    };

    let mut ours = Vec::new();
    let mut floor = Vec::new();
    let mut last = None;
    let mut calls = 0;
    let mut floor_calls = 0;
    let mut found = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let observation = provider.observe(&request).await;
        ours.push(start.elapsed());
        calls = observation.api_calls;
        found = observation
            .regions
            .values()
            .filter_map(|r| r.instances.complete())
            .map(Vec::len)
            .sum::<usize>();
        let incomplete: usize = observation
            .regions
            .values()
            .map(|r| r.incomplete().len())
            .sum();
        if incomplete > 0 {
            eprintln!(
                "observation incomplete: {:?}",
                observation
                    .regions
                    .values()
                    .map(|r| r.incomplete())
                    .collect::<Vec<_>>()
            );
        }
        last = Some(observation);
        let start = Instant::now();
        floor_calls = baseline(&clients, &request).await;
        floor.push(start.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1000.0
    };
    let (ours_ms, floor_ms) = (median(&mut ours), median(&mut floor));
    let ratio = ours_ms / floor_ms;
    println!("| what | median ms | API calls |");
    println!("|---|---|---|");
    println!("| fleetform observe ({} regions, {found} instances, {} templates) | {ours_ms:.1} | {calls} |", request.regions.len(), templates.len());
    println!("| plain aws-sdk-ec2, same calls | {floor_ms:.1} | {floor_calls} |");
    println!(
        "ratio {ratio:.2}x (target <= 1.25x: {})",
        if ratio <= 1.25 { "PASS" } else { "FAIL" }
    );

    // Engine work on the last observation: load + evaluate + diff + checks + render.
    let Some(observation) = last else { return };
    let mut engine = Vec::new();
    let mut actions = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let loaded = fleetform_engine::load_dir(
            std::path::Path::new(&dir),
            &fleetform_engine::Inputs::default(),
        );
        let Some(mut fresh) = loaded.config else {
            return;
        };
        fresh.fleet.name = config.fleet.name.clone();
        let options = fleetform_engine::plan::PlanOptions {
            now: 0,
            ..Default::default()
        };
        let (plan, diags) = fleetform_engine::plan::build(&fresh, &observation, &options);
        let human = fleetform_engine::plan::render::human(&plan, false);
        let json = serde_json::to_string(&plan).unwrap_or_default();
        let rendered = fleetform_engine::diagnostic::render_human(&diags, &loaded.sources, false);
        std::hint::black_box((human.len(), json.len(), rendered.len()));
        actions = plan.actions.len();
        engine.push(start.elapsed());
    }
    let engine_ms = median(&mut engine);
    println!("| engine: load + diff + checks + render ({actions} actions) | {engine_ms:.1} | 0 |");
    let share = engine_ms / ours_ms * 100.0;
    println!(
        "engine adds {share:.1}% to the observation (target < 10%: {})",
        if share < 10.0 { "PASS" } else { "FAIL" }
    );
}

/// The same Describe calls as the provider, doing nothing with the answers.
async fn baseline(clients: &[(String, aws_sdk_ec2::Client)], request: &ObserveRequest) -> u64 {
    let fleet_filter = || {
        Filter::builder()
            .name(format!("tag:{}", tags::FLEET))
            .values(&request.fleet)
            .build()
    };
    let mut set = tokio::task::JoinSet::new();
    for (region, client) in clients {
        let client = client.clone();
        let ids = request.image_ids.get(region).cloned().unwrap_or_default();
        let (f1, f2, f3, f4) = (
            fleet_filter(),
            fleet_filter(),
            fleet_filter(),
            fleet_filter(),
        );
        set.spawn(async move {
            let keys = async {
                let _ = client.describe_key_pairs().filters(f1).send().await;
                1u64
            };
            let images = async {
                let mut n = 0;
                let mut p = client
                    .describe_images()
                    .owners("self")
                    .filters(f2)
                    .max_results(200)
                    .into_paginator()
                    .send();
                while let Some(page) = p.next().await {
                    n += 1;
                    if page.is_err() {
                        break;
                    }
                }
                let mut p = client
                    .describe_images()
                    .filters(
                        Filter::builder()
                            .name("image-id")
                            .set_values(Some(ids))
                            .build(),
                    )
                    .max_results(200)
                    .into_paginator()
                    .send();
                while let Some(page) = p.next().await {
                    n += 1;
                    if page.is_err() {
                        break;
                    }
                }
                n
            };
            let templates = async {
                let mut n = 0;
                let mut p = client
                    .describe_launch_templates()
                    .filters(f3)
                    .max_results(200)
                    .into_paginator()
                    .send();
                while let Some(page) = p.next().await {
                    n += 1;
                    if page.is_err() {
                        break;
                    }
                }
                let mut p = client
                    .describe_launch_template_versions()
                    .versions("$Default")
                    .max_results(200)
                    .into_paginator()
                    .send();
                while let Some(page) = p.next().await {
                    n += 1;
                    if page.is_err() {
                        break;
                    }
                }
                n
            };
            let instances = async {
                let mut n = 0;
                let mut p = client
                    .describe_instances()
                    .filters(f4)
                    .filters(
                        Filter::builder()
                            .name("instance-state-name")
                            .values("pending")
                            .values("running")
                            .values("stopping")
                            .values("stopped")
                            .build(),
                    )
                    .max_results(1000)
                    .into_paginator()
                    .send();
                while let Some(page) = p.next().await {
                    n += 1;
                    if page.is_err() {
                        break;
                    }
                }
                n
            };
            let (a, b, c, d) = tokio::join!(keys, images, templates, instances);
            a + b + c + d
        });
    }
    let mut total = 0;
    while let Some(n) = set.join_next().await {
        total += n.unwrap_or(0);
    }
    total
}

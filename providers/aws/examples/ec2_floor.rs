//! The floor of an observation: the Describe calls fleetform's plan needs,
//! made by plain aws-sdk-ec2 code with the same concurrency (regions at once,
//! kinds at once within a region, pages in sequence) and nothing else: no
//! engine, no conversion, no state. The bench times this whole process next to
//! a whole `fleetform plan` process.
//!
//! `ec2_floor ENDPOINT FLEET REGION=AMI,AMI... [REGION=...]`, or
//! `ec2_floor ENDPOINT FLEET --request REQUEST.json` with what fleetform's
//! observation asks for per region (written by `observe_record`): image ids
//! and, when the configuration has networks, the subnets, security groups
//! and instance types whose offerings it reads (one paged call per kind, only
//! where something is named, as fleetform does).
//! With `auto_scaling_groups` in the request, also the paged
//! DescribeAutoScalingGroups of the fleet and the newest refresh of each group
//! in `refresh_groups`.
//! Prints one JSON line: `{"calls": N, "ms": T}` (T from process start).

use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;
use std::time::Instant;

const FLEET_TAG: &str = "fleetform:fleet";

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: ec2_floor ENDPOINT FLEET (REGION=AMI,AMI... [REGION=...] | --request REQUEST.json)");
        std::process::exit(2);
    }
    let (endpoint, fleet) = (&args[0], &args[1]);
    let regions: Vec<(String, Named)> = if args[2] == "--request" {
        match args.get(3).map(|path| named_in(path)) {
            Some(Ok(regions)) => regions,
            Some(Err(why)) => {
                eprintln!("ec2_floor: {why}");
                std::process::exit(2);
            }
            None => {
                eprintln!("ec2_floor: --request needs a file");
                std::process::exit(2);
            }
        }
    } else {
        args[2..]
            .iter()
            .map(|a| {
                let (region, ids) = a.split_once('=').unwrap_or((a.as_str(), ""));
                let image_ids = ids
                    .split(',')
                    .filter(|i| !i.is_empty())
                    .map(str::to_string)
                    .collect();
                (
                    region.to_string(),
                    Named {
                        image_ids,
                        ..Named::default()
                    },
                )
            })
            .collect()
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let mut set = tokio::task::JoinSet::new();
    for (region, named) in regions {
        let conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_config::Region::new(region.clone()))
            .build();
        let client = Client::from_conf(conf);
        let scaling = aws_sdk_autoscaling::Client::from_conf(
            aws_sdk_autoscaling::config::Builder::from(&sdk)
                .region(aws_config::Region::new(region.clone()))
                .build(),
        );
        let fleet = fleet.clone();
        set.spawn(async move { region_calls(&client, &scaling, &fleet, named).await });
    }
    let mut calls = 0u64;
    let mut failed = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(n)) => calls += n,
            Ok(Err(e)) => failed = Some(e),
            Err(e) => failed = Some(e.to_string()),
        }
    }
    println!(
        "{{\"calls\":{calls},\"ms\":{:.1}}}",
        start.elapsed().as_secs_f64() * 1000.0
    );
    if let Some(why) = failed {
        eprintln!("ec2_floor: a call failed: {why}");
        std::process::exit(1);
    }
}

/// What the observation names in one region.
#[derive(Debug, Default)]
struct Named {
    image_ids: Vec<String>,
    subnet_ids: Vec<String>,
    security_group_ids: Vec<String>,
    instance_types: Vec<String>,
    /// Whether the fleet's Auto Scaling groups are read.
    auto_scaling_groups: bool,
    /// Groups whose newest instance refresh is read.
    refresh_groups: Vec<String>,
}

/// The regions of a request file written by `observe_record`.
fn named_in(path: &str) -> Result<Vec<(String, Named)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let request: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{path} is not JSON: {e}"))?;
    let regions = request
        .get("regions")
        .and_then(|r| r.as_object())
        .ok_or_else(|| format!("{path} has no regions"))?;
    let list = |region: &serde_json::Value, key: &str| -> Vec<String> {
        region
            .get(key)
            .and_then(|v| v.as_array())
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(regions
        .iter()
        .map(|(name, region)| {
            (
                name.clone(),
                Named {
                    image_ids: list(region, "image_ids"),
                    subnet_ids: list(region, "subnet_ids"),
                    security_group_ids: list(region, "security_group_ids"),
                    instance_types: list(region, "instance_types"),
                    auto_scaling_groups: region
                        .get("auto_scaling_groups")
                        .and_then(|v| v.as_bool())
                        .unwrap_or(false),
                    refresh_groups: list(region, "refresh_groups"),
                },
            )
        })
        .collect())
}

fn any_of(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn tagged(fleet: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{FLEET_TAG}"))
        .values(fleet)
        .build()
}

/// Drains a paginator; the number of pages (calls) it took.
macro_rules! pages {
    ($paginator:expr) => {{
        let mut pages = $paginator.into_paginator().send();
        let mut n = 0u64;
        while let Some(page) = pages.next().await {
            page.map_err(|e| format!("{e:?}"))?;
            n += 1;
        }
        Ok::<u64, String>(n)
    }};
}

/// Every Describe call of one region, kinds concurrently; the number of calls made.
async fn region_calls(
    client: &Client,
    scaling: &aws_sdk_autoscaling::Client,
    fleet: &str,
    named: Named,
) -> Result<u64, String> {
    let ids = named.image_ids.clone();
    let keys = async {
        client
            .describe_key_pairs()
            .filters(tagged(fleet))
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok::<u64, String>(1)
    };
    let images = async {
        let tagged_images = pages!(client
            .describe_images()
            .owners("self")
            .filters(tagged(fleet))
            .max_results(200))?;
        let named = pages!(client
            .describe_images()
            .filters(
                Filter::builder()
                    .name("image-id")
                    .set_values(Some(ids))
                    .build()
            )
            .max_results(200))?;
        Ok::<u64, String>(tagged_images + named)
    };
    let templates = async {
        pages!(client
            .describe_launch_templates()
            .filters(tagged(fleet))
            .max_results(200))
    };
    let defaults = async {
        pages!(client
            .describe_launch_template_versions()
            .versions("$Default")
            .max_results(200))
    };
    let instances = async {
        pages!(client
            .describe_instances()
            .filters(tagged(fleet))
            .filters(
                Filter::builder()
                    .name("instance-state-name")
                    .values("pending")
                    .values("running")
                    .values("stopping")
                    .values("stopped")
                    .build(),
            )
            .max_results(1000))
    };
    // The network reads, each only where the observation names something.
    let subnets = async {
        if named.subnet_ids.is_empty() {
            return Ok(0);
        }
        pages!(client
            .describe_subnets()
            .filters(any_of("subnet-id", &named.subnet_ids))
            .max_results(1000))
    };
    let groups = async {
        if named.security_group_ids.is_empty() {
            return Ok(0);
        }
        pages!(client
            .describe_security_groups()
            .filters(any_of("group-id", &named.security_group_ids))
            .max_results(1000))
    };
    let offerings = async {
        if named.instance_types.is_empty() {
            return Ok(0);
        }
        pages!(client
            .describe_instance_type_offerings()
            .location_type(aws_sdk_ec2::types::LocationType::AvailabilityZone)
            .filters(any_of("instance-type", &named.instance_types))
            .max_results(1000))
    };
    // Auto Scaling: the fleet's groups in pages of 100, then the newest
    // refresh of each group named.
    let auto_scaling = async {
        if !named.auto_scaling_groups {
            return Ok(0);
        }
        let mut calls = pages!(scaling
            .describe_auto_scaling_groups()
            .filters(
                aws_sdk_autoscaling::types::Filter::builder()
                    .name(format!("tag:{FLEET_TAG}"))
                    .values(fleet)
                    .build()
            )
            .max_records(100))?;
        for name in &named.refresh_groups {
            scaling
                .describe_instance_refreshes()
                .auto_scaling_group_name(name)
                .max_records(1)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            calls += 1;
        }
        Ok::<u64, String>(calls)
    };
    let (a, b, c, d, e, f, g, h, i) = tokio::join!(
        keys,
        images,
        templates,
        defaults,
        instances,
        subnets,
        groups,
        offerings,
        auto_scaling
    );
    Ok(a? + b? + c? + d? + e? + f? + g? + h? + i?)
}

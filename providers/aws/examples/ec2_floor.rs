//! The floor of an observation: the Describe calls fleetform's plan needs,
//! made by plain aws-sdk-ec2 code with the same concurrency (regions at once,
//! kinds at once within a region, pages in sequence) and nothing else: no
//! engine, no conversion, no state. The bench times this whole process next to
//! a whole `fleetform plan` process.
//!
//! `ec2_floor ENDPOINT FLEET REGION=AMI,AMI... [REGION=...]`
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
        eprintln!("usage: ec2_floor ENDPOINT FLEET REGION=AMI,AMI... [REGION=...]");
        std::process::exit(2);
    }
    let (endpoint, fleet) = (&args[0], &args[1]);
    let regions: Vec<(String, Vec<String>)> = args[2..]
        .iter()
        .map(|a| {
            let (region, ids) = a.split_once('=').unwrap_or((a.as_str(), ""));
            let ids = ids
                .split(',')
                .filter(|i| !i.is_empty())
                .map(str::to_string)
                .collect();
            (region.to_string(), ids)
        })
        .collect();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ec2::config::Credentials::new(
            "bench", "bench", None, None, "bench",
        ))
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let mut set = tokio::task::JoinSet::new();
    for (region, ids) in regions {
        let conf = aws_sdk_ec2::config::Builder::from(&sdk)
            .region(aws_config::Region::new(region))
            .build();
        let client = Client::from_conf(conf);
        let fleet = fleet.clone();
        set.spawn(async move { region_calls(&client, &fleet, ids).await });
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
async fn region_calls(client: &Client, fleet: &str, ids: Vec<String>) -> Result<u64, String> {
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
    let (a, b, c, d, e) = tokio::join!(keys, images, templates, defaults, instances);
    Ok(a? + b? + c? + d? + e?)
}

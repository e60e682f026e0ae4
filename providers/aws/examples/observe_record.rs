//! Records one observation of a configuration's fleet, as fleetform's plan
//! makes it, to a JSON file: the input of the engine-alone benchmark
//! (`engine_bench --observation FILE` in fleetform-engine).
//!
//! `observe_record ENDPOINT CONFIG_DIR OUT.json [REQUEST.json]`
//!
//! With REQUEST.json it also writes what the observation asked for, per
//! region (`{"regions": {REGION: {"image_ids": [..], "subnet_ids": [..],
//! "security_group_ids": [..], "instance_types": [..], "auto_scaling_groups":
//! bool, "refresh_groups": [..]}}}`): the bench's floor
//! (`ec2_floor --request REQUEST.json`) makes the same Describe calls from it.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{ObserveRequest, Provider};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (endpoint, dir, out, request_out) = match args.as_slice() {
        [endpoint, dir, out] => (endpoint, dir, out, None),
        [endpoint, dir, out, request] => (endpoint, dir, out, Some(request)),
        _ => {
            eprintln!("usage: observe_record ENDPOINT CONFIG_DIR OUT.json [REQUEST.json]");
            std::process::exit(2);
        }
    };
    let loaded = fleetform_engine::load_dir(
        std::path::Path::new(dir),
        &fleetform_engine::Inputs::default(),
    );
    let Some(config) = loaded.config else {
        eprintln!("{dir} is not valid; run `fleetform validate {dir}`");
        std::process::exit(1);
    };
    // The timeouts the binary uses for this endpoint (longer on this
    // machine's local endpoint, which answers one request at a time).
    let options = ConnectOptions::for_endpoint(Some(endpoint.clone()));
    let provider = match AwsProvider::connect(&options).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot connect to {endpoint}: {e}");
            std::process::exit(1);
        }
    };
    let request = ObserveRequest::for_config(&config);
    if let Some(path) = request_out {
        let written = std::fs::write(path, request_json(&request).to_string());
        if let Err(e) = written {
            eprintln!("cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
    let observation = provider.observe(&request).await;
    let incomplete: Vec<_> = observation
        .regions
        .iter()
        .flat_map(|(region, r)| r.incomplete().into_iter().map(move |i| (region, i)))
        .collect();
    if !incomplete.is_empty() {
        eprintln!("the observation is incomplete: {incomplete:?}");
        std::process::exit(1);
    }
    let written = serde_json::to_vec(&observation)
        .map_err(|e| e.to_string())
        .and_then(|bytes| std::fs::write(out, bytes).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("cannot write {out}: {e}");
        std::process::exit(1);
    }
    eprintln!(
        "recorded {} regions, {} API calls, to {out}",
        observation.regions.len(),
        observation.api_calls
    );
}

/// What `request` names per region, for the floor.
fn request_json(request: &ObserveRequest) -> serde_json::Value {
    let of = |by_region: &std::collections::BTreeMap<String, Vec<String>>, region: &str| {
        serde_json::json!(by_region.get(region).cloned().unwrap_or_default())
    };
    let regions: serde_json::Map<String, serde_json::Value> = request
        .regions
        .iter()
        .map(|region| {
            (
                region.clone(),
                serde_json::json!({
                    "image_ids": of(&request.image_ids, region),
                    "subnet_ids": of(&request.subnet_ids, region),
                    "security_group_ids": of(&request.security_group_ids, region),
                    "instance_types": of(&request.instance_types, region),
                    "auto_scaling_groups": request.auto_scaling_groups,
                    "refresh_groups": of(&request.refresh_groups, region),
                }),
            )
        })
        .collect();
    serde_json::json!({ "fleet": request.fleet, "regions": regions })
}

//! Records one observation of a configuration's fleet, as fleetform's plan
//! makes it, to a JSON file: the input of the engine-alone benchmark
//! (`engine_bench --observation FILE` in fleetform-engine).
//!
//! `observe_record ENDPOINT CONFIG_DIR OUT.json`

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::provider::{ObserveRequest, Provider};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [endpoint, dir, out] = args.as_slice() else {
        eprintln!("usage: observe_record ENDPOINT CONFIG_DIR OUT.json");
        std::process::exit(2);
    };
    let loaded = fleetform_engine::load_dir(
        std::path::Path::new(dir),
        &fleetform_engine::Inputs::default(),
    );
    let Some(config) = loaded.config else {
        eprintln!("{dir} is not valid; run `fleetform validate {dir}`");
        std::process::exit(1);
    };
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
    let observation = provider.observe(&ObserveRequest::for_config(&config)).await;
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

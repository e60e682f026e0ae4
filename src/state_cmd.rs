//! `fleetform state list` and `state show`: what EC2 holds for the fleet now.

use crate::VarArgs;
use clap::{Args, Subcommand};
use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::inventory::{self, Entry};
use fleetform_engine::provider::{Observation, ObserveRequest, Provider};
use fleetform_engine::{checks, Code, Diagnostic, Loaded};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Subcommand)]
pub(crate) enum StateCommand {
    /// List every object of the fleet found in EC2, by address.
    ///
    /// Reads each fleet region with one tag-filtered, paged call per kind. A
    /// region or kind that could not be read completely is named on stderr and
    /// the exit code is 1: unknown is never shown as empty.
    List(ListArgs),
    /// Show the objects at one address, e.g. `worker_type.gecko-t-linux-large`.
    Show(ShowArgs),
}

#[derive(Args)]
pub(crate) struct ListArgs {
    /// Configuration directory
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Print the whole observation as JSON
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    vars: VarArgs,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Address: `key_pair.NAME`, `ami_set.NAME`, `worker_type.NAME` or `worker_type.NAME["REGION"]`
    address: String,

    /// Configuration directory
    #[arg(default_value = ".")]
    dir: PathBuf,

    #[command(flatten)]
    vars: VarArgs,
}

pub(crate) fn run(command: &StateCommand, endpoint_url: Option<String>, color: bool) -> u8 {
    let (dir, vars) = match command {
        StateCommand::List(a) => (&a.dir, &a.vars),
        StateCommand::Show(a) => (&a.dir, &a.vars),
    };
    let loaded = fleetform_engine::load_dir(dir, &vars.inputs());
    let Some(observed) = observe(&loaded, endpoint_url, color) else {
        return 1;
    };
    let Some(config) = &loaded.config else {
        return 1;
    };
    let (entries, incomplete) = inventory::entries(config, &observed.observation);
    for (region, kind, cause) in &incomplete {
        eprintln!("warning: {region}: {kind} could not be read completely: {cause}");
    }
    match command {
        StateCommand::List(args) if args.json => {
            match serde_json::to_string_pretty(&observed.observation) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("fleetform: cannot encode the observation as JSON: {e}");
                    return 1;
                }
            }
        }
        StateCommand::List(_) => print_entries(&entries),
        StateCommand::Show(args) => {
            let wanted = &args.address;
            let matching: Vec<Entry> = entries
                .into_iter()
                .filter(|e| {
                    &e.address == wanted || e.address.split('[').next() == Some(wanted.as_str())
                })
                .collect();
            if matching.is_empty() && incomplete.is_empty() {
                eprintln!(
                    "no object found at {wanted}; `fleetform state list` shows every address"
                );
                return 1;
            }
            print_entries(&matching);
        }
    }
    eprintln!(
        "observed {} region{} in {:.2}s with {} API calls",
        observed.observation.regions.len(),
        crate::plural(observed.observation.regions.len()),
        observed.seconds,
        observed.observation.api_calls
    );
    u8::from(!incomplete.is_empty())
}

fn print_entries(entries: &[Entry]) {
    let width = entries.iter().map(|e| e.address.len()).max().unwrap_or(0);
    for e in entries {
        println!(
            "{:<width$}  {:<14}  {:<15}  {:<22}  {}",
            e.address, e.region, e.kind, e.id, e.detail
        );
    }
}

struct Observed {
    observation: Observation,
    seconds: f64,
}

/// Loads nothing itself: takes a loaded config, checks the account, observes.
fn observe(loaded: &Loaded, endpoint_url: Option<String>, color: bool) -> Option<Observed> {
    eprint!(
        "{}",
        render_human(&loaded.diagnostics, &loaded.sources, color)
    );
    let config = loaded.config.as_ref()?;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetform: cannot start the async runtime: {e}");
            return None;
        }
    };
    runtime.block_on(async {
        let options = ConnectOptions {
            endpoint_url,
            ..ConnectOptions::default()
        };
        let provider = match AwsProvider::connect(&options).await {
            Ok(p) => p,
            Err(e) => {
                let d = Diagnostic::error(Code::Cloud, format!("cannot connect to AWS: {e}"))
                    .help("for the local EC2 endpoint pass --endpoint-url (see scripts/dev-ec2)");
                eprint!("{}", render_human(&[d], &loaded.sources, color));
                return None;
            }
        };
        let caller = match provider.caller().await {
            Ok(c) => c,
            Err(e) => {
                let d = Diagnostic::error(
                    Code::Cloud,
                    format!("cannot identify the caller (STS GetCallerIdentity): {e}"),
                )
                .help("check the credentials and that the endpoint answers; `aws sts get-caller-identity` shows the same");
                eprint!("{}", render_human(&[d], &loaded.sources, color));
                return None;
            }
        };
        if let Some(diagnostic) = checks::account_guard(config, &caller.account) {
            eprint!("{}", render_human(&[diagnostic], &loaded.sources, color));
            return None;
        }
        let start = Instant::now();
        let observation = provider.observe(&ObserveRequest::for_config(config)).await;
        Some(Observed {
            observation,
            seconds: start.elapsed().as_secs_f64(),
        })
    })
}

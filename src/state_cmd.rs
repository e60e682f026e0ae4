//! `fleetform state list` and `state show`: what EC2 holds for the fleet now.

use crate::cloud::observe;
use crate::VarArgs;
use clap::{Args, Subcommand};
use fleetform_engine::inventory::{self, Entry};
use std::path::PathBuf;

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

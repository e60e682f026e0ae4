//! `fleetform state list` and `state show`: what EC2 holds for the fleet
//! now; `state migrate`: move the recorded versions between the local
//! directory and S3.

use crate::args::{ConfigArgs, DirArg, JsonFlag};
use crate::cloud::observe;
use crate::report::Warnings;
use crate::store::{self, ops_error, state_error, Store};
use clap::{Args, Subcommand, ValueEnum};
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::inventory::{self, Object, Row};
use fleetform_engine::{Code, Diagnostic, Inputs, StateLocation};
use fleetform_state::LocalBackend;
use std::sync::Arc;

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
    /// Copy every recorded version between the local state directory and
    /// the configuration's `backend "s3"`, verified by hashes.
    ///
    /// `--to s3` copies from the local directory (`.fleetform/` beside the
    /// configuration, or --local-path) to the bucket and key of the
    /// configuration's `backend "s3"` block: add the block first. `--to local`
    /// copies back; remove the block afterwards to use the local copy.
    ///
    /// Both states are locked while copying, and refused if either holds an
    /// unfinished apply (a journal that is not empty). A destination holding
    /// other versions is refused before anything is written. Each version
    /// is read back from the destination and its SHA-256 compared with the
    /// source's. Run again after an interruption, it copies only what is
    /// missing. The source is left as it was. Exit 0 when every version is
    /// in both, 1 on error, 3 when a lock is held.
    Migrate(MigrateArgs),
}

/// Where `state migrate` copies the versions to.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MigrateTo {
    /// From the local directory to the configuration's `backend "s3"`
    S3,
    /// From the configuration's `backend "s3"` to the local directory
    Local,
}

#[derive(Args)]
pub(crate) struct MigrateArgs {
    /// Where to copy the versions to
    #[arg(long, value_enum)]
    to: MigrateTo,

    /// The local state directory, relative to the configuration directory
    #[arg(long, value_name = "DIR", default_value = store::DEFAULT_LOCAL_PATH)]
    local_path: String,

    #[command(flatten)]
    dir: DirArg,
}

#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print the whole observation as JSON")))]
pub(crate) struct ListArgs {
    #[command(flatten)]
    output: JsonFlag,

    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    /// Address: `key_pair.NAME`, `ami_set.NAME`, `worker_type.NAME` (every
    /// key and region), `worker_type.NAME["KEY"]`, or one region of either:
    /// `worker_type.NAME["REGION"]`, `worker_type.NAME["KEY"]["REGION"]`
    address: String,

    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run(command: &StateCommand, endpoint_url: Option<String>, color: bool) -> u8 {
    let (dir, vars) = match command {
        StateCommand::List(a) => (&a.config.dir, &a.config.vars),
        StateCommand::Show(a) => (&a.config.dir, &a.config.vars),
        StateCommand::Migrate(args) => return migrate(args, color),
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
        StateCommand::List(args) if args.output.json => {
            // User data may hold secrets, of this configuration or an earlier one.
            let mut shown = observed.observation.clone();
            fleetform_engine::sensitive::describe_live_user_data(&mut shown);
            match serde_json::to_string_pretty(&shown) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("fleetform: cannot encode the observation as JSON: {e}");
                    return 1;
                }
            }
        }
        StateCommand::List(_) => print_entries(&entries),
        StateCommand::Migrate(_) => {}
        StateCommand::Show(args) => {
            let wanted = &args.address;
            let matching: Vec<Object> = entries
                .into_iter()
                .filter(|e| {
                    &e.address == wanted
                        // `worker_type.b` shows every key and region, `worker_type.b["k"]` every region.
                        || e.address.strip_prefix(wanted.as_str()).is_some_and(|rest| rest.starts_with("[\""))
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

fn print_entries(entries: &[Object]) {
    let width = entries.iter().map(|e| e.address.len()).max().unwrap_or(0);
    for e in entries.iter().map(Row::from) {
        println!(
            "{:<width$}  {:<14}  {:<15}  {:<22}  {}",
            e.address, e.region, e.kind, e.id, e.detail
        );
    }
}

/// `fleetform state migrate --to s3|local [--local-path DIR] [DIR]`.
fn migrate(args: &MigrateArgs, color: bool) -> u8 {
    let loaded = fleetform_engine::load_dir(
        &args.dir.dir,
        &Inputs {
            env: Inputs::env_from_process(),
            ..Inputs::default()
        },
    );
    let location = match &loaded.state_location {
        StateLocation::Declared(block) => store::s3_location(block),
        StateLocation::Unknown => {
            // Prints why the backend cannot be told.
            return store::open(&args.dir.dir, &loaded, color)
                .err()
                .unwrap_or(1);
        }
        StateLocation::Default => None,
    };
    let Some(location) = location else {
        let d = Diagnostic::error(
            Code::Missing,
            "state migrate copies between the local directory and S3, and the configuration has no `backend \"s3\"` block",
        )
        .help("add `backend \"s3\" { bucket = \"...\" key = \"fleet/state\" region = \"...\" }` to the configuration, then run `fleetform state migrate --to s3`");
        eprint!("{}", render_human(&[d], &loaded.sources, color));
        return 1;
    };
    let url = location.url();
    let s3: Store = match store::open_s3(location) {
        Ok(s3) => Arc::new(s3),
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    let local_dir = store::local_path(&args.dir.dir, Some(&args.local_path));
    let local: Store = Arc::new(LocalBackend::new(&local_dir));
    let local_name = local_dir.display().to_string();
    let (from, to, from_name, to_name) = match args.to {
        MigrateTo::S3 => (local, s3, local_name, url),
        MigrateTo::Local => (s3, local, url, local_name),
    };
    match from.latest() {
        Ok(Some(_)) => {}
        Ok(None) => {
            let d = Diagnostic::error(
                Code::Missing,
                format!("no versions at {from_name}: nothing to migrate"),
            )
            .help(match args.to {
                MigrateTo::S3 => "pass the local state directory with --local-path if it is not .fleetform beside the configuration",
                MigrateTo::Local => "check the bucket and key of the configuration's `backend \"s3\"` block",
            });
            eprint!("{}", render_human(&[d], &loaded.sources, color));
            return 1;
        }
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    }
    let mut started = false;
    let copied = fleetform_ops::migrate(&from, &to, Arc::new(Warnings), |done| {
        if !std::mem::replace(&mut started, true) {
            eprintln!("copying the versions of {from_name} to {to_name}");
        }
        println!(
            "version {:>6}  sha256 {}  {}",
            done.number,
            done.sha256,
            if done.already_there {
                "already there"
            } else {
                "copied, read back, matches"
            }
        );
    });
    let copied = match copied {
        Ok(copied) => copied,
        Err(fleetform_ops::Error::JournalNotEmpty { side, records }) => {
            let name = match side {
                fleetform_ops::Side::Source => &from_name,
                fleetform_ops::Side::Destination => &to_name,
            };
            let d = Diagnostic::error(
                Code::Io,
                format!(
                    "the journal at {name} holds {records} record{} of an apply that was not recorded",
                    crate::plural(records)
                ),
            )
            .help("run `fleetform apply` on that state first: it records what the interrupted apply did; migrate then moves a complete history");
            eprint!("{}", render_human(&[d], &loaded.sources, color));
            return 1;
        }
        Err(e) => return ops_error(&e, color),
    };
    let fresh = copied.iter().filter(|c| !c.already_there).count();
    println!(
        "migrated {} version{} from {from_name} to {to_name} ({fresh} copied, {} already there); every SHA-256 read back matches the source",
        copied.len(),
        crate::plural(copied.len()),
        copied.len() - fresh,
    );
    match args.to {
        MigrateTo::S3 => eprintln!(
            "the configuration's backend \"s3\" block now names this state; {from_name} was left as it was: remove it once you trust the copy"
        ),
        MigrateTo::Local => eprintln!(
            "to use the local copy, replace the backend \"s3\" block with backend \"local\" {{ path = \"{}\" }} (or remove it for .fleetform); {from_name} was left as it was",
            args.local_path
        ),
    }
    0
}

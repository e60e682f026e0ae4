//! `fleetform output`: the provisioner contract, from the configuration and
//! the objects the latest recorded version observed after its apply. No
//! cloud call.

use crate::args::{ConfigArgs, JsonFlag};
use crate::store::{self, state_error};
use clap::Args;
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::inventory::Object;
use fleetform_engine::source::SourceSet;
use fleetform_engine::{Code, Diagnostic};
use std::collections::BTreeMap;

#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print the contract as JSON (schemas/output.schema.json)")))]
pub(crate) struct OutputArgs {
    #[command(flatten)]
    output: JsonFlag,

    #[command(flatten)]
    config: ConfigArgs,
}

fn error(d: Diagnostic, color: bool) -> u8 {
    eprint!("{}", render_human(&[d], &SourceSet::new(), color));
    1
}

/// Whether the `*.hcl` files loaded differ from those of a version's
/// configuration snapshot (`recorded`: relative path -> text).
fn differs(loaded: &fleetform_engine::Loaded, recorded: &BTreeMap<String, String>) -> bool {
    let now: BTreeMap<&str, &str> = loaded
        .sources
        .files()
        .iter()
        .filter(|f| !f.var_file)
        .map(|f| (f.name.as_str(), &*f.text))
        .collect();
    let then: BTreeMap<&str, &str> = recorded
        .iter()
        .filter(|(name, _)| name.ends_with(".hcl") && !name.contains('/'))
        .map(|(name, text)| (name.as_str(), text.as_str()))
        .collect();
    now.iter()
        .any(|(name, text)| recorded.get(*name).map(String::as_str) != Some(*text))
        || then.keys().any(|name| !now.contains_key(name))
}

pub(crate) fn run(args: &OutputArgs, color: bool) -> u8 {
    let loaded = fleetform_engine::load_dir(&args.config.dir, &args.config.vars.inputs());
    let config = match &loaded.config {
        Some(config) if !loaded.has_errors() => config,
        _ => {
            eprint!(
                "{}",
                render_human(&loaded.diagnostics, &loaded.sources, color)
            );
            return 1;
        }
    };
    let store = match store::open(&args.config.dir, &loaded, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let latest = match store.latest() {
        Ok(Some(n)) => n,
        Ok(None) => {
            return error(
                Diagnostic::error(
                    Code::NotApplied,
                    format!(
                        "nothing applied yet: the state of {} holds no recorded version",
                        args.config.dir.display()
                    ),
                )
                .help(
                    "run `fleetform apply` first: output prints what the last apply recorded, and reads no cloud",
                ),
                color,
            );
        }
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    let version = match store.read(latest) {
        Ok(version) => version,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    let observed: Vec<Object> = match serde_json::from_value(version.observed.clone()) {
        Ok(objects) => objects,
        Err(e) => {
            return error(
                Diagnostic::error(
                    Code::Io,
                    format!(
                        "state: version {latest}'s observed objects are not a list of objects ({e})"
                    ),
                )
                .help(
                    "it was left untouched; restore the version from a backup, or run `fleetform apply` to record a new one",
                ),
                color,
            );
        }
    };
    if differs(&loaded, &version.sources) {
        eprintln!(
            "warning: the configuration differs from the one version {latest} applied: the ids are \
             those version {latest} recorded, and what it did not make is null; run `fleetform apply` \
             to bring them together"
        );
    }
    let contract = fleetform_engine::output::build(config, &observed, latest);
    if args.output.json {
        match serde_json::to_string_pretty(&contract) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("fleetform: cannot encode the output as JSON: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", fleetform_engine::output::human(&contract));
    }
    0
}

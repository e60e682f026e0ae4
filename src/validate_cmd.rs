//! `fleetform validate`: load and check a configuration without the cloud.

use crate::args::{ConfigArgs, JsonFlag};
use clap::Args;
use fleetform_engine::schema::{ValidateReport, FORMAT_VERSION};
use fleetform_engine::{checks, diagnostic};

#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print the result as JSON (schemas/validate.schema.json)")))]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    output: JsonFlag,

    #[command(flatten)]
    config: ConfigArgs,
}

pub(crate) fn run(args: &ValidateArgs, color: bool, quiet: bool) -> u8 {
    let loaded = fleetform_engine::load_dir(&args.config.dir, &args.config.vars.inputs());
    let valid = !loaded.has_errors();
    if args.output.json {
        let report = ValidateReport {
            format_version: FORMAT_VERSION,
            valid,
            diagnostics: loaded
                .diagnostics
                .iter()
                .map(|d| d.to_json(&loaded.sources))
                .collect(),
        };
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("fleetform: cannot encode the report as JSON: {e}"),
        }
        return u8::from(!valid);
    }
    let shown: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| !quiet || d.is_error())
        .cloned()
        .collect();
    eprint!(
        "{}",
        diagnostic::render_human(&shown, &loaded.sources, color)
    );
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    match &loaded.config {
        Some(config) if valid => {
            if !quiet {
                let cost: f64 = config
                    .worker_types
                    .values()
                    .map(|wt| checks::max_hourly_cost(wt).hourly_usd)
                    .sum();
                println!(
                    "{} is valid: fleet \"{}\", {} regions, {} worker types, {} AMI sets, {} key pairs; \
                     at max capacity ~${cost:.2}/h on demand{}",
                    args.config.dir.display(),
                    config.fleet.name,
                    config.fleet.regions.len(),
                    config.worker_types.len(),
                    config.ami_sets.len(),
                    config.key_pairs.len(),
                    if warnings > 0 { format!(" ({warnings} warnings)") } else { String::new() },
                );
            }
            0
        }
        _ => {
            eprintln!(
                "{} is not valid: {errors} error{}, {warnings} warning{}",
                args.config.dir.display(),
                crate::plural(errors),
                crate::plural(warnings)
            );
            1
        }
    }
}

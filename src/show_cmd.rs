//! `fleetform show`: render a saved plan, or a recorded version.

use crate::args::JsonFlag;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
#[command(mut_arg("json", |a| a.help("Print the plan as JSON (schemas/plan.schema.json)")))]
pub(crate) struct ShowArgs {
    /// A plan file written by `fleetform plan -out FILE`; with --version, the config directory
    #[arg(default_value = ".")]
    plan_file: PathBuf,

    /// Show recorded version N instead of a plan file
    #[arg(long = "version", value_name = "N")]
    version: Option<u64>,

    #[command(flatten)]
    output: JsonFlag,
}

pub(crate) fn run(args: &ShowArgs, color: bool) -> u8 {
    if let Some(n) = args.version {
        return crate::history_cmd::show_version(&args.plan_file, n, args.output.json, color);
    }
    match fleetform_engine::plan::saved::SavedPlan::read(&args.plan_file) {
        Ok(saved) if args.output.json => match serde_json::to_string_pretty(&saved.plan) {
            Ok(text) => {
                println!("{text}");
                0
            }
            Err(e) => {
                eprintln!("fleetform: cannot encode the plan as JSON: {e}");
                1
            }
        },
        Ok(saved) => {
            print!(
                "{}",
                fleetform_engine::plan::render::human(&saved.plan, color)
            );
            0
        }
        Err(diagnostic) => {
            let none = fleetform_engine::source::SourceSet::new();
            eprint!(
                "{}",
                fleetform_engine::diagnostic::render_human(&[diagnostic], &none, color)
            );
            1
        }
    }
}

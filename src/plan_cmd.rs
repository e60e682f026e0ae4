//! `fleetform plan`: observe, diff, check, render.

use crate::args::{ConfigArgs, JsonFlag};
use crate::cloud::observe;
use crate::SafetyArgs;
use clap::Args;
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::plan::saved::{Bindings, SavedPlan, SensitiveInputs};
use fleetform_engine::plan::{self, render, PlanOptions};
use std::path::PathBuf;

#[derive(Args)]
#[command(
    mut_arg("max_launches", |a| a.help("Allow up to N launches in this plan (FF006)")),
    mut_arg("max_terminations", |a| a.help("Allow up to N terminations in this plan (FF006)")),
    mut_arg("json", |a| a.help("Print the plan as JSON (schemas/plan.schema.json) instead of text"))
)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) output: JsonFlag,

    /// Save the plan, bound to this config, its variables and this observation, for
    /// `fleetform show` and a later apply (also spelled `-out FILE`)
    #[arg(long = "out", value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,

    /// Also write the plan as a Markdown pull-request comment to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) markdown: Option<PathBuf>,

    /// Exit 0 when nothing changes, 2 when something would (1 on errors)
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,

    #[command(flatten)]
    pub(crate) safety: SafetyArgs,

    /// Report drift since the last recorded version (objects that appeared,
    /// disappeared or changed outside fleetform) and propose nothing
    #[arg(long)]
    pub(crate) refresh_only: bool,

    /// Try every launch with DryRun=true and report what EC2 would refuse (FF011)
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Plan image changes of staged roll-outs in every region, not only the
    /// canary regions (what `apply --promote` does)
    #[arg(long)]
    pub(crate) promote: bool,

    /// Plan only this address and what it needs (repeatable): `worker_type.NAME`,
    /// `worker_type.NAME["REGION"]`, `key_pair.NAME`
    #[arg(long, value_name = "ADDR")]
    pub(crate) target: Vec<String>,

    #[command(flatten)]
    pub(crate) config: ConfigArgs,
}

pub(crate) fn run(args: &PlanArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let loaded = fleetform_engine::load_dir(&args.config.dir, &args.config.vars.inputs());
    let store = match crate::store::open(&args.config.dir, &loaded, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    if let Err(e) = crate::apply_cmd::report_interrupted(&*store) {
        return crate::store::ops_error(&e, color);
    }
    let Some(observed) = observe(&loaded, endpoint_url, color) else {
        return 1;
    };
    let Some(config) = &loaded.config else {
        return 1;
    };
    let now = fleetform_ops::clock();
    if args.refresh_only {
        let recorded = match fleetform_ops::recorded_entries(&*store) {
            Ok(recorded) => recorded,
            Err(e) => return crate::store::ops_error(&e, color),
        };
        let found = fleetform_engine::inventory::entries(config, &observed.observation).0;
        return refresh_only(&*store, &recorded, &found, args, color);
    }
    let options = PlanOptions {
        allow_destroy: args.safety.destroy.allow_destroy,
        max_launches: args.safety.max_launches,
        max_terminations: args.safety.max_terminations,
        now,
        targets: args.target.clone(),
        promote: args.promote,
        ..PlanOptions::default()
    };
    let (mut plan, mut diagnostics) = match fleetform_ops::plan(
        &*store,
        config,
        &observed.observation,
        &loaded.secrets,
        options,
    ) {
        Ok(built) => built,
        Err(e) => return crate::store::ops_error(&e, color),
    };
    if args.dry_run {
        let refused =
            observed
                .runtime
                .block_on(plan::dry_run::dry_run(&plan, config, &observed.provider));
        diagnostics.extend(refused);
    }
    plan.diagnostics = diagnostics
        .iter()
        .map(|d| d.to_json(&loaded.sources))
        .collect();
    let blocked = diagnostics.iter().any(|d| d.is_error());
    if args.output.json {
        match serde_json::to_string_pretty(&plan) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("fleetform: cannot encode the plan as JSON: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", render::human(&plan, color));
        eprint!("{}", render_human(&diagnostics, &loaded.sources, color));
        eprintln!(
            "observed {} regions in {:.2}s with {} API calls",
            observed.observation.regions.len(),
            observed.seconds,
            observed.observation.api_calls
        );
    }
    if let (Some(path), true) = (&args.out, blocked) {
        eprintln!(
            "not saving the plan to {}: the findings above block it, so it could never be applied",
            path.display()
        );
    }
    if let (Some(path), false) = (&args.out, blocked) {
        let base = match store.latest() {
            Ok(base) => base,
            Err(e) => {
                crate::store::state_error(&e, color);
                return 1;
            }
        };
        let binding = match crate::secrets::bind(&loaded.secrets) {
            Ok(binding) => binding,
            Err(e) => {
                eprintln!("fleetform: {e}; the plan was not saved");
                return 1;
            }
        };
        let saved = SavedPlan::new(
            plan.clone(),
            Bindings {
                sources: &loaded.sources,
                config,
                observation: &observed.observation,
                created: now,
                config_dir: &args.config.dir,
                base_state_version: base,
                sensitive: binding
                    .as_ref()
                    .map(|(binding, mask)| SensitiveInputs { binding, mask }),
            },
        );
        if let Err(e) = saved.write(path) {
            eprintln!(
                "fleetform: cannot write the plan to {}: {e}",
                path.display()
            );
            return 1;
        }
        if !args.output.json {
            eprintln!(
                "saved the plan to {}; `fleetform show {}` renders it",
                path.display(),
                path.display()
            );
        }
    }
    if let Some(path) = &args.markdown {
        if let Err(e) = fleetform_engine::fmt::write_atomically(path, &render::markdown(&plan)) {
            eprintln!("fleetform: cannot write {}: {e}", path.display());
            return 1;
        }
    }
    if blocked {
        if !args.output.json {
            eprintln!("plan blocked by the findings above");
        }
        1
    } else if args.detailed_exitcode && !plan.is_empty() {
        2
    } else {
        0
    }
}

/// `plan --refresh-only`: drift since the last recorded version; no changes proposed.
fn refresh_only(
    store: &dyn fleetform_state::Backend,
    recorded: &[fleetform_engine::inventory::Object],
    found: &[fleetform_engine::inventory::Object],
    args: &PlanArgs,
    color: bool,
) -> u8 {
    let latest = match store.latest() {
        Ok(Some(latest)) => latest,
        Ok(None) => {
            println!(
                "No recorded version to compare with: nothing has been applied from {} yet.",
                args.config.dir.display()
            );
            return 0;
        }
        Err(e) => {
            crate::store::state_error(&e, color);
            return 1;
        }
    };
    let drift = fleetform_engine::inventory::drift(recorded, found);
    if args.output.json {
        let out = serde_json::json!({"format_version": "1", "base_state_version": latest, "drift": drift});
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else if drift.is_empty() {
        println!("No drift: EC2 holds what version {latest} recorded.");
    } else {
        for d in &drift {
            let marker = match d.change {
                "appeared" => "+",
                "disappeared" => "-",
                _ => "~",
            };
            println!(
                "  {marker} {} {} {} in {} {}: {}{}",
                d.entry.kind,
                d.entry.id,
                d.entry.address,
                d.entry.region,
                d.change,
                d.entry.detail,
                d.was
                    .as_ref()
                    .map(|w| format!(" (was: {w})"))
                    .unwrap_or_default()
            );
        }
        println!(
            "\nDrift since version {latest}: {} object{} differ; nothing will be changed.",
            drift.len(),
            if drift.len() == 1 { "" } else { "s" }
        );
    }
    if args.detailed_exitcode && !drift.is_empty() {
        2
    } else {
        0
    }
}

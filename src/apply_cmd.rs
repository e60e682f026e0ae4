//! `fleetform apply` and `fleetform rollback`: the arguments, the config to
//! apply, approval and what the user sees. The transaction itself (lock,
//! journal, execute, record) is `fleetform_ops`'.

use crate::clock::rfc3339;
use crate::cloud::connect;
use crate::report::{Progress, Warnings};
use crate::store::{ops_error, state_error, Store};
use crate::{AllowDestroy, SafetyArgs, VarArgs};
use clap::Args;
use fleetform_engine::apply;
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::plan::saved::SavedPlan;
use fleetform_engine::plan::{render, Plan, PlanOptions};
use fleetform_engine::{Code, Diagnostic, Inputs, Loaded};
use fleetform_ops::{Applied, ApplyRequest, Cloud, OpenApply, PlanSource, Reporter, Review};
use fleetform_state::{Backend, Version};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
// `--promote` is listed between the two limits, where `apply --help` has always shown it.
#[command(
    mut_arg("promote", |a| a.display_order(4)),
    mut_arg("max_terminations", |a| a.display_order(5))
)]
pub(crate) struct ApplyArgs {
    /// A plan file from `plan -out FILE`, or a configuration directory to plan now
    #[arg(default_value = ".")]
    target: PathBuf,

    /// Apply without asking (required when there is no terminal to ask on)
    #[arg(long)]
    auto_approve: bool,

    /// How many EC2 calls may be in flight at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,

    #[command(flatten)]
    safety: SafetyArgs,

    /// Carry image changes of staged roll-outs to every region: the canary
    /// regions first, the others only if every canary succeeded
    #[arg(long)]
    promote: bool,

    #[command(flatten)]
    vars: VarArgs,
}

#[derive(Args)]
pub(crate) struct RollbackArgs {
    /// Version to return to (see `fleetform history`)
    #[arg(long = "to", value_name = "N")]
    to: u64,

    /// Configuration directory (whose state holds the versions)
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Apply without asking
    #[arg(long)]
    auto_approve: bool,

    /// How many EC2 calls may be in flight at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,

    #[command(flatten)]
    destroy: AllowDestroy,

    /// Values of the sensitive variables version N used (never recorded):
    /// -var NAME=VALUE, -var-file FILE, or FLEETFORM_VAR_NAME
    #[command(flatten)]
    vars: VarArgs,
}

/// What `apply` and `rollback` share once the config is chosen.
struct Run<'a> {
    /// Where the state lives (the config directory the user named).
    dir: &'a Path,
    /// Where the config being applied lives (for rollback: version N restored).
    source_dir: &'a Path,
    loaded: &'a Loaded,
    /// The state store, when already opened (rollback: from the current
    /// configuration, not version N's); else the one `loaded` names.
    store: Option<Store>,
    inputs: &'a Inputs,
    auto_approve: bool,
    parallelism: usize,
    options: PlanOptions,
    saved: Option<SavedPlan>,
    rollback_of: Option<u64>,
}

pub(crate) fn apply(args: &ApplyArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let (dir, saved) = if args.target.is_file() {
        match SavedPlan::read(&args.target) {
            Ok(saved) => (PathBuf::from(&saved.config_dir), Some(saved)),
            Err(d) => {
                eprint!(
                    "{}",
                    render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
                );
                return 1;
            }
        }
    } else {
        (args.target.clone(), None)
    };
    let inputs = args.vars.inputs();
    let loaded = fleetform_engine::load_dir(&dir, &inputs);
    if let Some(binding) = saved.as_ref().and_then(|s| s.sensitive.as_ref()) {
        let unsupplied = crate::secrets::unsupplied(binding.variables.keys(), &loaded.secrets);
        if !unsupplied.is_empty() {
            let d =
                crate::secrets::needed_again(Code::StalePlan, "the saved plan needs", &unsupplied);
            eprint!("{}", render_human(&[d], &loaded.sources, color));
            return 1;
        }
    }
    let run = Run {
        dir: &dir,
        source_dir: &dir,
        loaded: &loaded,
        store: None,
        inputs: &inputs,
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        options: PlanOptions {
            allow_destroy: args.safety.destroy.allow_destroy,
            max_launches: args.safety.max_launches,
            max_terminations: args.safety.max_terminations,
            promote: args.promote,
            ..PlanOptions::default()
        },
        saved,
        rollback_of: None,
    };
    carry_out(run, endpoint_url, color)
}

pub(crate) fn rollback(args: &RollbackArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let store = match crate::store::open_dir(&args.dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let version = match store.read(args.to) {
        Ok(v) => v,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    // A rollback returns every region at once, to exactly the images version N used.
    let pins = match fleetform_ops::pins_of(&version) {
        Ok(pins) => pins,
        Err(e) => return ops_error(&e, color),
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fleetform: cannot make a scratch directory: {e}");
            return 1;
        }
    };
    if let Err(e) = fleetform_ops::restore_sources(&version.sources, scratch.path()) {
        eprintln!(
            "fleetform: cannot restore the config of version {}: {e}",
            args.to
        );
        return 1;
    }
    eprintln!(
        "rolling back to version {} ({}, {})",
        version.number,
        rfc3339(version.time),
        version.git_commit.as_deref().unwrap_or("no git commit")
    );
    let (inputs, withheld) = fleetform_ops::rollback_inputs(&version, &args.vars.inputs());
    let loaded = fleetform_engine::load_dir(scratch.path(), &inputs);
    let unsupplied = crate::secrets::unsupplied(&withheld, &loaded.secrets);
    if !unsupplied.is_empty() {
        let d = crate::secrets::needed_again(
            Code::VariableUnset,
            &format!("rolling back to version {} needs", args.to),
            &unsupplied,
        );
        eprint!("{}", render_human(&[d], &loaded.sources, color));
        return 1;
    }
    if let Some(record) = &version.sensitive {
        let mismatches =
            fleetform_engine::sensitive::check_digests(&record.variables, &loaded.secrets);
        let (_, differs) = crate::secrets::split(&mismatches);
        if !differs.is_empty() {
            eprintln!(
                "warning: the value of sensitive variable{} {} differs from the one version {} used; the rollback uses the value given now",
                if differs.len() == 1 { "" } else { "s" },
                crate::secrets::names(&differs),
                args.to
            );
        }
    }
    let run = Run {
        dir: &args.dir,
        source_dir: scratch.path(),
        loaded: &loaded,
        store: Some(store),
        inputs: &inputs,
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        options: PlanOptions {
            allow_destroy: args.destroy.allow_destroy,
            promote: true,
            pins,
            ..PlanOptions::default()
        },
        saved: None,
        rollback_of: Some(args.to),
    };
    carry_out(run, endpoint_url, color)
}

/// The binary's side of an apply: it shows the plan, asks on the terminal,
/// and shows progress and warnings.
struct Terminal<'a> {
    loaded: &'a Loaded,
    fleet: &'a str,
    auto_approve: bool,
    color: bool,
    progress: std::sync::OnceLock<Progress>,
}

impl Reporter for Terminal<'_> {
    fn warning(&self, message: &str) {
        Warnings.warning(message);
    }

    fn action_finished(
        &self,
        action: &fleetform_engine::plan::Action,
        result: &Result<Vec<String>, fleetform_engine::provider::ProviderError>,
    ) {
        if let Some(progress) = self.progress.get() {
            progress.action_finished(action, result);
        }
    }
}

impl Review for Terminal<'_> {
    fn interrupted(&self, open: &OpenApply) {
        report_open(open);
    }

    fn planned(&self, plan: &Plan, diagnostics: &[Diagnostic]) {
        print!("{}", render::human(plan, self.color));
        eprint!(
            "{}",
            render_human(diagnostics, &self.loaded.sources, self.color)
        );
    }

    fn approve(&self, _plan: &Plan) -> bool {
        if self.auto_approve {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            eprintln!("error: refusing to apply without approval: there is no terminal to ask on; review the plan and pass --auto-approve");
            return false;
        }
        eprint!(
            "Apply these changes to fleet \"{}\"? Only 'yes' or 'y' is accepted: ",
            self.fleet
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() {
            return false;
        }
        let yes = matches!(answer.trim(), "yes" | "y");
        if !yes {
            eprintln!("Apply cancelled; nothing was changed.");
        }
        yes
    }

    fn executing(&self, actions: usize) {
        let _ = self.progress.set(Progress::new(actions));
    }

    fn executed(&self) {
        if let Some(progress) = self.progress.get() {
            progress.finish();
        }
    }
}

fn carry_out(run: Run<'_>, endpoint_url: Option<String>, color: bool) -> u8 {
    let Some(config) = &run.loaded.config else {
        eprint!(
            "{}",
            render_human(&run.loaded.diagnostics, &run.loaded.sources, color)
        );
        return 1;
    };
    let store = match &run.store {
        Some(store) => Arc::clone(store),
        None => match crate::store::open(run.dir, run.loaded, color) {
            Ok(store) => store,
            Err(code) => return code,
        },
    };
    let Some(connected) = connect(run.loaded, endpoint_url, color) else {
        return 1;
    };
    let terminal = Terminal {
        loaded: run.loaded,
        fleet: &config.fleet.name,
        auto_approve: run.auto_approve,
        color,
        progress: std::sync::OnceLock::new(),
    };
    let applied = fleetform_ops::apply(
        ApplyRequest {
            store: &store,
            dir: run.dir,
            source_dir: run.source_dir,
            loaded: run.loaded,
            config,
            inputs: run.inputs,
            plan: match &run.saved {
                Some(saved) => PlanSource::Saved(saved),
                None => PlanSource::Fresh(Box::new(run.options)),
            },
            parallelism: run.parallelism,
            rollback_of: run.rollback_of,
        },
        &Cloud {
            provider: &connected.provider,
            runtime: &connected.runtime,
            caller: &connected.caller,
        },
        &terminal,
        Arc::new(Warnings),
    );
    match applied {
        Ok(Applied::Unchanged) => {
            println!("No changes to apply.");
            0
        }
        Ok(Applied::Recorded(recorded)) => {
            if let Some(why) = &recorded.refresh {
                println!("No changes to apply; recording a version because {why}.");
            }
            report_recorded(
                &recorded.version,
                &recorded.plan,
                &recorded.outcomes,
                &connected,
            )
        }
        Err(e) => ops_error(&e, color),
    }
}

/// Says which version was recorded and what failed; the exit code.
fn report_recorded(
    version: &Version,
    plan: &Plan,
    outcomes: &[apply::Outcome],
    connected: &crate::cloud::Connected,
) -> u8 {
    let total = plan.actions.len();
    let failures: Vec<&apply::Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    println!(
        "Recorded version {}{}: {} of {total} actions succeeded.",
        version.number,
        version
            .rollback_of
            .map(|n| format!(" (rollback to {n})"))
            .unwrap_or_default(),
        total - failures.len()
    );
    eprintln!(
        "{} API calls in all (observations included)",
        connected.provider.api_calls()
    );
    if failures.is_empty() {
        return 0;
    }
    eprintln!(
        "{} action{} failed:",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for failure in failures {
        let action = &plan.actions[failure.action];
        if let Err(e) = &failure.result {
            eprintln!(
                "  {} in {}: {}: {}",
                action.address,
                action.region,
                render::headline(action),
                e.message
            );
        }
    }
    1
}

/// Says so when the journal holds an apply that never finished.
pub(crate) fn report_interrupted(backend: &dyn Backend) -> Result<(), fleetform_ops::Error> {
    if let Some(open) = fleetform_ops::interrupted(backend)? {
        report_open(&open);
    }
    Ok(())
}

/// The warning about an apply that never finished.
fn report_open(open: &OpenApply) {
    {
        eprintln!(
            "warning: an earlier apply ({}, by {} at {}) was interrupted after {} of {} actions; \
             what it created carries fleetform's tags, so this plan adopts it instead of creating it again",
            open.apply_id,
            open.holder,
            rfc3339(open.time),
            open.done,
            open.actions
        );
    }
}

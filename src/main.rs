//! The `fleetform` command line: the global flags, the commands, and the
//! dispatch to one module per command (`*_cmd`). The argument groups several
//! commands share (configuration directory and variables, safety flags,
//! `--json`) are defined once in `args` and flattened. A command's function
//! returns its exit code, and `main` exits with it.
//!
//! The command modules are wiring: arguments -> engine, providers and
//! `fleetform_ops` -> render. They connect to the cloud (`cloud`), open the
//! state store a configuration names (`store`, which also prints state and
//! transaction errors as diagnostics with their exit codes), review a plan
//! (ask for approval, show progress: `report`, `apply_cmd`). The safety
//! checks live in the engine; the transaction (lock, journal, execute,
//! record) in `fleetform_ops`.

mod apply_cmd;
mod args;
mod clock;
mod cloud;
mod explain_cmd;
mod fmt_cmd;
mod history_cmd;
mod images_cmd;
mod import_cmd;
mod lsp_cmd;
mod output_cmd;
mod plan_cmd;
mod report;
mod secrets;
mod show_cmd;
mod state_cmd;
mod store;
mod validate_cmd;

pub(crate) use args::{AllowDestroy, SafetyArgs, VarArgs};

use args::{DirArg, JsonFlag};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: loading and planning a fleet
/// of thousands of worker types is mostly small allocations, and mimalloc
/// makes them in about three quarters of the time (see bench/results.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Declarative infrastructure-as-code for CI worker fleets on AWS EC2.
///
/// Worker types, AMI sets, key pairs and capacity bounds are declared in HCL
/// (every *.hcl file of a directory). `validate` checks a configuration
/// without the cloud; `plan` compares it with live EC2 and says what would
/// change and what is unsafe; `apply` carries a reviewed plan out and records
/// a version; `history` and `rollback --to N` return to any recorded version.
///
/// Typical CI: `fleetform plan -out plan.bin --markdown plan.md --detailed-exitcode`
/// on a pull request, `fleetform apply plan.bin` on merge.
///
/// Exit codes: 0 success, 1 error or blocking safety check, 2 changes present
/// (with --detailed-exitcode), 3 lock held.
#[derive(Parser)]
#[command(name = "fleetform", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Never colour output (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    no_color: bool,

    /// Print only errors
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Send EC2, STS and Auto Scaling requests to this endpoint (a local EC2 endpoint,
    /// e.g. from scripts/dev-ec2), whatever AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL or
    /// the profile say
    #[arg(
        long,
        global = true,
        env = "FLEETFORM_EC2_ENDPOINT",
        value_name = "URL"
    )]
    endpoint_url: Option<String>,

    /// Send the S3 requests of a `backend "s3"` state here (default: what
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the profile name; else the
    /// --endpoint-url when it is on this machine, as a local endpoint serves
    /// every service; else AWS)
    #[arg(long, global = true, env = "FLEETFORM_S3_ENDPOINT", value_name = "URL")]
    s3_endpoint_url: Option<String>,

    /// Seconds one attempt of one EC2, STS or S3 call may take before it is cut
    /// off and retried (default: 20 for AWS, 180 for a local endpoint, which
    /// answers one request at a time). A call with its retries is cut off
    /// after four times this plus backoff, so no command waits on the network
    /// without a bound.
    #[arg(
        long,
        global = true,
        env = "FLEETFORM_CALL_TIMEOUT",
        value_name = "SECS",
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    call_timeout: Option<u64>,

    /// Items per page of EC2 reads (default and maximum: EC2's; for tests
    /// that read across pages)
    #[arg(long, global = true, env = "FLEETFORM_EC2_PAGE_SIZE", hide = true)]
    ec2_page_size: Option<u32>,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, evaluate and check a configuration; no cloud calls.
    ///
    /// Reports every problem in one run: syntax, unknown or mistyped attributes,
    /// dangling references, capacity bounds, and the static safety checks
    /// FF002 (image missing), FF003 (image/instance compatibility) and FF007
    /// (budget at max capacity). Exit 0 when valid, 1 when not.
    Validate(validate_cmd::ValidateArgs),
    /// Rewrite *.hcl files in canonical style, keeping every comment.
    ///
    /// Two-space indentation, aligned `=`, one blank line at most. With
    /// --check nothing is written: the files that would change are listed and
    /// the exit code is 1 if there are any.
    Fmt(fmt_cmd::FmtArgs),
    /// Run the language server (LSP 3.17 on stdin and stdout) for editors.
    ///
    /// Diagnostics as `validate` reports them on every change (unsaved
    /// buffers over the files of their directory; unset variables are not
    /// errors while editing), completion, hover, go to definition, references,
    /// rename, document symbols and formatting as `fmt` does. No cloud calls.
    /// See README.md "Editor support" for Neovim, Helix and VS Code.
    Lsp(lsp_cmd::LspArgs),
    /// Compare the configuration with live EC2 and print what would change.
    ///
    /// Observes every fleet region, diffs key pairs, launch templates and
    /// capacity, and runs the safety checks. Blocking findings make the exit
    /// code 1 after the whole plan is printed.
    Plan(plan_cmd::PlanArgs),
    /// Carry out a saved plan (refused if stale), or plan a directory, show it, ask, and apply.
    ///
    /// Takes the state lock (a lease; a second apply exits 3 naming the
    /// holder), journals every call before and after it is made, and records
    /// a version (config snapshot, plan, outcomes, diff) at the end.
    Apply(apply_cmd::ApplyArgs),
    /// What provisioners launch with: per worker type and region, the launch
    /// template, subnets, security groups, instance types and bounds.
    ///
    /// Prints, per worker type and region: the launch template (id, name,
    /// default version), the subnets per zone, the security groups, the
    /// instance types with their weights (and their own templates), the
    /// bounds, and the Auto Scaling group where one is used. With --json, a
    /// versioned document (schemas/output.schema.json) for provisioners such
    /// as Taskcluster's worker manager (see examples/provisioners/).
    ///
    /// Reads the configuration and the last recorded state version, not EC2:
    /// the ids are those the last apply observed (`null` for what no apply
    /// made yet). Exit 1 when nothing has been applied yet.
    Output(output_cmd::OutputArgs),
    /// Return the fleet to the configuration of a recorded version.
    Rollback(apply_cmd::RollbackArgs),
    /// Recorded versions: number, time, git commit, who, changes.
    History {
        #[command(flatten)]
        dir: DirArg,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// The configuration diff between two recorded versions.
    Diff {
        /// Older version
        a: u64,
        /// Newer version
        b: u64,
        #[command(flatten)]
        dir: DirArg,
    },
    /// Break an expired state lock (any lock with --force), naming its holder.
    Unlock {
        #[command(flatten)]
        dir: DirArg,
        /// Break the lock even if its lease is live
        #[arg(long)]
        force: bool,
    },
    /// Render a plan saved with `plan -out FILE`, or a recorded version (`--version N DIR`).
    Show(show_cmd::ShowArgs),
    /// Managed objects as observed in EC2 now (tag search, every fleet region).
    #[command(subcommand)]
    State(state_cmd::StateCommand),
    /// Every image of every AMI set, per region: who references it, and when it becomes prunable.
    ///
    /// Lists the images the configuration uses and every image tagged with an
    /// AMI set, with the worker types, launch templates and state versions
    /// (inside fleet.rollback_window) that hold it. An image is pruned by the
    /// next apply once it is older than its set's `retain`, nothing holds it,
    /// and it is not the newest image of its set in its region.
    Images(images_cmd::ImagesArgs),
    /// Write the configuration of a fleet made by hand, for a plan that adopts it.
    ///
    /// Reads, in each --region, the launch templates without the
    /// fleetform:fleet tag that match --name-prefix or every --filter
    /// tag:KEY=VALUE, with their default versions, the key pairs (with their
    /// public keys), images, subnets and security groups they name, and the
    /// instances launched from them. Writes into DIR only new files
    /// (import.hcl, userdata/*.sh): a worker_type per template name (its EC2
    /// name kept with `ec2_name` when it is not <fleet>.<id>), an ami_set per
    /// worker type naming its images (never tagged, never pruned), the
    /// key_pairs, a network from the subnets and groups, bounds that hold
    /// what runs (min 0, max the running count), and a fleet block when DIR
    /// has none (named by --fleet, else after DIR; regions: those given).
    /// It refuses before writing anything when one of those files exists.
    /// Every template setting fleetform has no attribute for is listed with
    /// the reason. `fleetform plan DIR` then shows only adopt actions
    /// (reason import: fleetform's tags on templates, key pairs and
    /// instances) and one new version per template that only adds
    /// fleetform's tag specifications; `apply` carries them out as always.
    Import(import_cmd::ImportArgs),
    /// The long explanation of a diagnostic code: what it checks, what it prevents, how to resolve it.
    ///
    /// Every diagnostic names its code (FF001-FF0xx for safety checks, a
    /// name such as `unknown-attribute` for configuration mistakes) and ends
    /// with `see: fleetform explain CODE`. Codes are accepted in any case
    /// (`ff003`, `FF003`). Without a code, lists every code with one line each.
    Explain {
        /// A diagnostic code, e.g. FF006 or unknown-attribute
        code: Option<String>,
    },
}

/// Terraform spells some long flags with one dash (`-var`, `-var-file`, `-out`); accept both.
fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    args.map(|arg| {
        for flag in ["-var-file", "-var", "-out"] {
            if arg == flag || arg.starts_with(&format!("{flag}=")) {
                return format!("-{arg}");
            }
        }
        arg
    })
    .collect()
}

/// Whether this runs in CI (`CI` set, and not to `false` or `0`, as GitHub
/// Actions, GitLab CI and most others do): output is for logs and review, so
/// no colour and no progress bars, even on a pseudo-terminal.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(normalize_args(std::env::args())) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // Usage errors exit 1: 2 means "changes present" to scripts.
            return ExitCode::from(u8::from(error.use_stderr()));
        }
    };
    cloud::tune(cloud::Tuning {
        call_timeout: cli.call_timeout.map(std::time::Duration::from_secs),
        page_size: cli.ec2_page_size,
    });
    store::set_s3_endpoint(cli.s3_endpoint_url.clone(), cli.endpoint_url.clone());
    let color = !cli.no_color
        && std::env::var_os("NO_COLOR").is_none()
        && !in_ci()
        && std::io::stderr().is_terminal();
    let code = match &cli.command {
        Command::Validate(args) => validate_cmd::run(args, color, cli.quiet),
        Command::Fmt(args) => fmt_cmd::run(args, color),
        Command::Lsp(args) => lsp_cmd::run(args),
        Command::Show(args) => show_cmd::run(args, color),
        Command::Apply(args) => apply_cmd::apply(args, cli.endpoint_url.clone(), color),
        Command::Output(args) => output_cmd::run(args, color),
        Command::Rollback(args) => apply_cmd::rollback(args, cli.endpoint_url.clone(), color),
        Command::History { dir, output } => history_cmd::history(&dir.dir, output.json, color),
        Command::Diff { a, b, dir } => history_cmd::diff(&dir.dir, *a, *b, color),
        Command::Unlock { dir, force } => history_cmd::unlock(&dir.dir, *force, color),
        Command::Plan(args) => plan_cmd::run(args, cli.endpoint_url.clone(), color),
        Command::Images(args) => images_cmd::run(args, cli.endpoint_url.clone(), color),
        Command::Import(args) => import_cmd::run(args, cli.endpoint_url.clone(), color),
        Command::State(command) => state_cmd::run(command, cli.endpoint_url.clone(), color),
        Command::Explain { code } => explain_cmd::run(code.as_deref()),
    };
    ExitCode::from(code)
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    fn help(command: &str) -> String {
        let mut cli = Cli::command();
        cli.find_subcommand_mut(command)
            .expect("a subcommand")
            .render_long_help()
            .to_string()
    }

    #[test]
    fn import_help_says_what_it_writes_and_where_the_fleet_name_comes_from() {
        // Lines wrap with the terminal's width: compare word by word.
        let import = help("import")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for wanted in [
            "--region",
            "--name-prefix",
            "--filter",
            "--dry-run",
            "default: the name of DIR",
            "never overwritten",
            "ec2_name",
            "adopt",
        ] {
            assert!(import.contains(wanted), "{wanted} missing:\n{import}");
        }
    }

    #[test]
    fn the_shared_safety_flags_keep_each_commands_texts_and_order() {
        let plan = help("plan");
        assert!(plan.contains("Allow up to N launches in this plan (FF006)"));
        assert!(plan.contains("Allow up to N terminations in this plan (FF006)"));
        let apply = help("apply");
        let at = |flag: &str| apply.find(flag).expect(flag);
        assert!(at("--allow-destroy") < at("--max-launches"));
        assert!(at("--max-launches") < at("--promote"));
        assert!(at("--promote") < at("--max-terminations"));
        assert!(at("--max-terminations") < at("--var "));
        assert!(apply.contains("Allow up to N launches (FF006)"));
        let rollback = help("rollback");
        assert!(rollback.contains("--allow-destroy"));
        assert!(!rollback.contains("--max-launches") && !rollback.contains("--max-terminations"));
    }
}

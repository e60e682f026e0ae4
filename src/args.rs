//! The argument groups several commands share, defined once and flattened
//! into each: the configuration (directory and variables), the safety flags
//! that lift FF006's limits, and `--json`.

use clap::Args;
use fleetform_engine::Inputs;
use std::path::PathBuf;

/// A configuration directory and the variables it is loaded with.
#[derive(Args)]
pub(crate) struct ConfigArgs {
    /// Configuration directory (every *.hcl file in it is loaded)
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,

    #[command(flatten)]
    pub(crate) vars: VarArgs,
}

/// A configuration directory, for commands that load no variables.
#[derive(Args)]
pub(crate) struct DirArg {
    /// Configuration directory
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
}

/// `--json`: print the result as data instead of text.
#[derive(Args)]
pub(crate) struct JsonFlag {
    /// Print as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

/// `-var` and `-var-file`.
#[derive(Args)]
pub(crate) struct VarArgs {
    /// Set a variable: -var NAME=VALUE (repeatable; later wins)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,

    /// Read variables from an HCL file of `name = value` lines (repeatable)
    #[arg(long = "var-file", value_name = "FILE")]
    var_files: Vec<PathBuf>,
}

impl VarArgs {
    /// The inputs a configuration is loaded with: these flags, then `FLEETFORM_VAR_*`.
    pub(crate) fn inputs(&self) -> Inputs {
        Inputs {
            vars: self.vars.clone(),
            var_files: self.var_files.clone(),
            env: Inputs::env_from_process(),
        }
    }
}

/// `--allow-destroy`, the one safety flag every command that changes the
/// fleet takes (`plan`, `apply`, `rollback`).
#[derive(Args)]
pub(crate) struct AllowDestroy {
    /// Allow terminations and deletions beyond fleet.limits (FF006)
    #[arg(long)]
    pub(crate) allow_destroy: bool,
}

/// The safety flags that lift FF006's limits on one plan: `--allow-destroy`,
/// `--max-launches N`, `--max-terminations N` (`plan`, `apply`; `rollback`
/// takes only [`AllowDestroy`]).
#[derive(Args)]
pub(crate) struct SafetyArgs {
    #[command(flatten)]
    pub(crate) destroy: AllowDestroy,

    /// Allow up to N launches (FF006)
    #[arg(long, value_name = "N")]
    pub(crate) max_launches: Option<u32>,

    /// Allow up to N terminations (FF006)
    #[arg(long, value_name = "N")]
    pub(crate) max_terminations: Option<u32>,
}

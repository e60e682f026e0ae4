//! `fleetform lsp`: the language server of the `fleetform-lsp` crate on stdio.

use clap::Args;

#[derive(Args)]
pub(crate) struct LspArgs {
    /// Accepted and ignored: editors pass it by habit; stdio is the only transport
    #[arg(long, hide = true)]
    stdio: bool,
}

pub(crate) fn run(_args: &LspArgs) -> u8 {
    fleetform_lsp::run_stdio().exit_code()
}

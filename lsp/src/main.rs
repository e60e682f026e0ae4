//! `fleetform-lsp`: the language server on stdio, without the rest of the
//! CLI (the crate's tests and benchmark run it; users run `fleetform lsp`).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(fleetform_lsp::run_stdio().exit_code())
}

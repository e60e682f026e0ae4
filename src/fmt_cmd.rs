//! `fleetform fmt`: rewrite *.hcl files in canonical style.

use crate::args::DirArg;
use clap::Args;
use fleetform_engine::{diagnostic, fmt};
use std::io::Write;

#[derive(Args)]
pub(crate) struct FmtArgs {
    #[command(flatten)]
    dir: DirArg,

    /// Write nothing; list files that are not formatted and exit 1 if any
    #[arg(long)]
    check: bool,

    /// Show the changes as unified diffs
    #[arg(long)]
    diff: bool,
}

pub(crate) fn run(args: &FmtArgs, color: bool) -> u8 {
    let (files, sources, diagnostics) = fmt::format_dir(&args.dir.dir);
    eprint!(
        "{}",
        diagnostic::render_human(&diagnostics, &sources, color)
    );
    let mut failed = !diagnostics.is_empty();
    let mut changed = 0;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for file in files.iter().filter(|f| f.changed()) {
        changed += 1;
        let _ = writeln!(out, "{}", file.path.display());
        if args.diff {
            let _ = write!(out, "{}", file.diff());
        }
        if !args.check {
            if let Err(e) = fmt::write_atomically(&file.path, &file.formatted) {
                eprintln!("fleetform: cannot write {}: {e}", file.path.display());
                failed = true;
            }
        }
    }
    if args.check && changed > 0 {
        eprintln!(
            "{changed} file{} not formatted; run `fleetform fmt {}`",
            crate::plural(changed),
            args.dir.dir.display()
        );
        return 1;
    }
    u8::from(failed)
}

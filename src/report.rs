//! How the transactions of `fleetform_ops` are shown while they run:
//! warnings on stderr; the progress of an apply as a bar on a terminal, one
//! plain line per finished action in CI and logs.

use fleetform_engine::plan::{render, Action};
use fleetform_engine::provider::ProviderError;
use fleetform_ops::Reporter;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Prints warnings on stderr (`warning: ...`).
pub(crate) struct Warnings;

impl Reporter for Warnings {
    fn warning(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Shows the progress of an apply of `total` actions.
pub(crate) struct Progress {
    total: usize,
    finished: AtomicUsize,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// A bar on a terminal outside CI; plain lines otherwise.
    pub(crate) fn new(total: usize) -> Progress {
        let bar = (std::io::stderr().is_terminal() && !crate::in_ci()).then(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            total,
            finished: AtomicUsize::new(0),
            bar,
        }
    }

    /// Clears the bar, if there is one.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Reporter for Progress {
    fn warning(&self, message: &str) {
        Warnings.warning(message);
    }

    fn action_finished(&self, action: &Action, result: &Result<Vec<String>, ProviderError>) {
        let n = self.finished.fetch_add(1, Ordering::Relaxed) + 1;
        let status = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("FAILED: {}", e.message),
        };
        let line = format!(
            "[{n}/{}] {} {} {}: {}",
            self.total,
            action.action.marker(),
            action.region,
            render::headline(action),
            status
        );
        match &self.bar {
            Some(bar) => {
                if result.is_err() {
                    bar.println(&line);
                }
                bar.set_message(format!("{} {}", action.address, action.region));
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }
}

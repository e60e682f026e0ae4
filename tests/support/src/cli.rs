//! Running the `fleetform` binary under test and reading what it said.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Runs `binary args dir` (the binary cargo built for the calling test,
/// `env!("CARGO_BIN_EXE_fleetform")`) against the EC2 endpoint at `url`,
/// as CI would (`CI=true`, no stdin), and waits for it.
///
/// # Panics
/// When the binary cannot be started at all.
pub fn run_at(binary: &str, url: &str, args: &[&str], dir: &Path) -> Output {
    Command::new(binary)
        .args(args)
        .arg(dir)
        .env("FLEETFORM_EC2_ENDPOINT", url)
        .env("CI", "true")
        .stdin(Stdio::null())
        .output()
        .expect("runs")
}

/// Both streams of a finished command, labelled, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `future` to completion on a runtime of its own (for the SDK calls
/// a synchronous test makes to check what EC2 holds).
///
/// # Panics
/// When no runtime can be built.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

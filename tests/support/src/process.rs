//! Waiting on and reading child `fleetform` processes, for tests that run
//! several at once.

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits (bounded) for `child` to exit: its status, or `None` if it is still
/// running after `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything `child` wrote to its piped stderr (empty if it was not piped
/// or was read already).
pub fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut text);
    }
    text
}

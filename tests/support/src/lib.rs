//! Shared helpers for tests that talk to the local EC2 endpoint.
//!
//! [`endpoint`] starts one `moto_server` (through `scripts/moto_launcher.py`,
//! which patches moto where it differs from EC2, such as launch-template
//! paging) per test binary, on a free port on 127.0.0.1. The launcher is given
//! this process's pid and exits when the test binary does, so no server
//! outlives its tests. Tests share the server and keep out of each other's way
//! by using [`unique_fleet`] names.
//!
//! Beside it: [`fault`], a seeded fault-injecting proxy in front of the
//! endpoint; [`s3`], buckets on the endpoint's S3 for the S3 state backend;
//! [`network`], a VPC with subnets in three zones and security groups of
//! three trust levels on the endpoint's EC2; [`process`], waiting on several
//! `fleetform` processes at once; [`cli`], running the binary under test.

#![deny(missing_docs)]

pub mod cli;
pub mod fault;
pub mod network;
pub mod process;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The repository root (where `scripts/` lives): found from the package under
/// test, which cargo names at run time. The path this crate was compiled at
/// is only the fallback: cargo does not rebuild a crate whose checkout moved,
/// so that path can name a clone that no longer exists.
pub fn repo_root() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|dir| {
            dir.ancestors()
                .find(|d| d.join("scripts").join("dev-ec2").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or(compiled)
}

struct Server {
    url: String,
    // Kept so the child is not reaped early and its files stay until exit.
    _child: Option<Mutex<Child>>,
    _dir: tempfile::TempDir,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// URL of this test binary's local EC2 endpoint, started on first use
/// (`FLEETFORM_TEST_EC2_ENDPOINT` overrides it with a server you run yourself).
///
/// # Panics
/// When the endpoint cannot be started; the message says why (a test cannot
/// run without it).
pub fn endpoint() -> &'static str {
    match SERVER.get_or_init(start) {
        Ok(server) => &server.url,
        Err(why) => panic!("cannot start the local EC2 endpoint: {why}"),
    }
}

/// A fleet name no other test (or earlier run against the same server) uses.
pub fn unique_fleet(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Fixed width, so names (and the diagnostics that quote them) wrap the same way every run.
    format!(
        "{prefix}-{:07}-{:03}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("FLEETFORM_TEST_EC2_ENDPOINT") {
        return Ok(Server {
            url,
            _child: None,
            _dir: tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?,
        });
    }
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/dev-ec2"))
        .arg("python")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scripts/dev-ec2: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`scripts/dev-ec2 python` failed with {}",
            out.status
        ));
    }
    let python = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let port_file = dir.path().join("port");
    let log =
        std::fs::File::create(dir.path().join("moto.log")).map_err(|e| format!("log file: {e}"))?;
    let mut child = Command::new(&python)
        .arg(root.join("scripts/moto_launcher.py"))
        .args(["--host", "127.0.0.1", "--port", "0", "--port-file"])
        .arg(&port_file)
        .args(["--parent-pid", &std::process::id().to_string(), "--quiet"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {python}: {e}"))?;
    // Wait for the launcher to report its port: a bounded wait on a condition.
    let deadline = Instant::now() + Duration::from_secs(90);
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            if let Ok(port) = text.trim().parse::<u16>() {
                break port;
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default();
            return Err(format!("the launcher exited with {status}:\n{log}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the launcher did not report a port within 90 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if std::env::var_os("FLEETFORM_TEST_DEBUG").is_some() {
        eprintln!(
            "local EC2 endpoint {port}, log: {}",
            dir.path().join("moto.log").display()
        );
    }
    Ok(Server {
        url: format!("http://127.0.0.1:{port}"),
        _child: Some(Mutex::new(child)),
        _dir: dir,
    })
}

//! Opening the state store a configuration names (`backend "local"`, the
//! default, or `backend "s3"`), and showing state and transaction errors as
//! diagnostics, with their exit codes.

use fleetform_engine::diagnostic::render_human;
use fleetform_engine::model::Backend as BackendBlock;
use fleetform_engine::{Code, Diagnostic, Inputs, Loaded, StateLocation};
use fleetform_state::{LocalBackend, S3Backend, S3Location, StateError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub(crate) use fleetform_ops::Store;

/// The local state directory when the configuration names none.
pub(crate) const DEFAULT_LOCAL_PATH: &str = ".fleetform";

/// The S3 endpoint flag, and fleetform's default for S3.
static S3_ENDPOINT: OnceLock<(Option<String>, Option<String>)> = OnceLock::new();

/// Sets where S3 requests go: `s3_endpoint_url` (`--s3-endpoint-url`), else
/// what the SDK's own settings name for S3 (`AWS_ENDPOINT_URL_S3`,
/// `AWS_ENDPOINT_URL`, the profile), else the EC2 `endpoint_url` when it is
/// on this machine (a local endpoint serves every service on one port), else
/// AWS. An EC2 endpoint elsewhere (a VPC or FIPS endpoint) is never sent the
/// state. The first call wins.
pub(crate) fn set_s3_endpoint(s3_endpoint_url: Option<String>, endpoint_url: Option<String>) {
    let local = endpoint_url.filter(|url| fleetform_aws::is_loopback(url));
    let _ = S3_ENDPOINT.set((s3_endpoint_url, local));
}

/// The store the configuration in `dir` names, loaded with `FLEETFORM_VAR_*`
/// only (for commands without `-var`). Prints a diagnostic on failure.
pub(crate) fn open_dir(dir: &Path, color: bool) -> Result<Store, u8> {
    let loaded = fleetform_engine::load_dir(
        dir,
        &Inputs {
            env: Inputs::env_from_process(),
            ..Inputs::default()
        },
    );
    open(dir, &loaded, color)
}

/// The store `loaded` (the configuration in `dir`) names: its `backend`
/// block, else `.fleetform/` beside it. A configuration whose backend cannot
/// be told (a broken `backend` block, a file that does not parse) is an
/// error, never a silent fall back to the local default: that would show
/// another state. Prints a diagnostic on failure.
pub(crate) fn open(dir: &Path, loaded: &Loaded, color: bool) -> Result<Store, u8> {
    match &loaded.state_location {
        StateLocation::Default => Ok(Arc::new(LocalBackend::new(dir.join(DEFAULT_LOCAL_PATH)))),
        StateLocation::Declared(block) => open_block(dir, block).map_err(|e| {
            state_error(&e, color);
            1
        }),
        StateLocation::Unknown => {
            let errors: Vec<Diagnostic> = loaded
                .diagnostics
                .iter()
                .filter(|d| d.is_error())
                .cloned()
                .collect();
            eprint!("{}", render_human(&errors, &loaded.sources, color));
            let d = Diagnostic::error(
                Code::Io,
                "cannot tell where the state is: the configuration's `backend` block, or a file that may hold it, has errors",
            )
            .help("fix the errors above; fleetform never guesses which state to read or change");
            eprint!("{}", render_human(&[d], &loaded.sources, color));
            Err(1)
        }
    }
}

/// The local directory a `backend "local"` block names (relative to `dir`).
pub(crate) fn local_path(dir: &Path, path: Option<&str>) -> PathBuf {
    dir.join(path.unwrap_or(DEFAULT_LOCAL_PATH))
}

/// The S3 location of a `backend "s3"` block, `None` for another kind.
pub(crate) fn s3_location(block: &BackendBlock) -> Option<S3Location> {
    match (block.kind.as_str(), &block.bucket, &block.key) {
        ("s3", Some(bucket), Some(key)) => Some(S3Location {
            bucket: bucket.clone(),
            key: key.clone(),
            region: block.region.clone(),
        }),
        _ => None,
    }
}

/// Opens the store of a valid `backend` block. A block of another kind, or
/// an `s3` block without bucket or key, is an error: never the local default.
pub(crate) fn open_block(dir: &Path, block: &BackendBlock) -> Result<Store, StateError> {
    match block.kind.as_str() {
        "local" => Ok(Arc::new(LocalBackend::new(local_path(
            dir,
            block.path.as_deref(),
        )))),
        "s3" => match s3_location(block) {
            Some(location) => Ok(Arc::new(open_s3(location)?)),
            None => Err(StateError::Io {
                path: PathBuf::from("backend \"s3\""),
                source: std::io::Error::other("the block has no bucket or no key"),
            }),
        },
        other => Err(StateError::Io {
            path: PathBuf::from(format!("backend \"{other}\"")),
            source: std::io::Error::other("this fleetform knows no such backend"),
        }),
    }
}

/// Connects to an S3 state with the command line's endpoint and time limits
/// (the same SDK configuration as EC2's, but for the endpoint).
pub(crate) fn open_s3(location: S3Location) -> Result<S3Backend, StateError> {
    let (flag, default) = S3_ENDPOINT.get().cloned().unwrap_or_default();
    // Time limits as for the endpoint S3 is likely to use; the SDK's settings may still move it.
    let mut options = crate::cloud::connect_options(flag.clone().or(default.clone()));
    options.endpoint_url = flag;
    options.default_endpoint_url = default;
    options.services = &[fleetform_aws::Service::S3];
    S3Backend::connect(location, async move {
        fleetform_aws::sdk_config(&options)
            .await
            .map(|config| fleetform_aws::pin_endpoint(config, fleetform_aws::Service::S3))
            .map_err(|e| e.message)
    })
}

/// Prints a state error as a diagnostic naming its file or object.
pub(crate) fn state_error(error: &StateError, color: bool) {
    let in_s3 = error.is_remote();
    let name = error
        .path()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let aside = if in_s3 {
        "copy it to another key and delete it"
    } else {
        "rename it"
    };
    let help: String = match (error, name) {
        (StateError::Corrupt { .. } | StateError::NewerFormat { .. }, "lock.json") => {
            "it was left untouched; no fleetform can tell whether this lock is held: if none is running on this state, `fleetform unlock --force` moves it aside (it is kept)".into()
        }
        (StateError::NewerFormat { .. }, _) => {
            "it was left untouched; use a fleetform that understands its format (the one that wrote it, or newer)".into()
        }
        (StateError::Corrupt { .. }, "index.json") => format!(
            "it was left untouched; move it aside ({aside}, e.g. to index.json.damaged): fleetform then rebuilds the index from the versions"
        ),
        (StateError::Corrupt { .. }, "journal.jsonl") => {
            "the file was left untouched; it records the EC2 calls of an apply: keep a copy, then move it aside (rename it, e.g. to journal.jsonl.damaged) to go on; what an interrupted apply created carries fleetform's tags, and the next plan adopts it".into()
        }
        (StateError::Corrupt { path, .. }, _)
            if in_s3 && path.to_string_lossy().contains("/journal/") =>
        {
            "it was left untouched; it is one record of the EC2 calls of an apply: keep a copy, then delete it to go on; what an interrupted apply created carries fleetform's tags, and the next plan adopts it".into()
        }
        (StateError::Corrupt { .. }, _) => {
            "it was left untouched; restore it from a backup (or an earlier object version, if the bucket keeps them): it is the only record of this version".into()
        }
        (StateError::ReadOnly { .. }, _) => {
            "nothing was written; reading commands (history, show, plan) work on a read-only state: make it writable again (chmod u+w) for fleetform to record changes".into()
        }
        (StateError::Locked(_), _) => "see `fleetform unlock`".into(),
        _ if in_s3 => {
            "check that the bucket exists, the credentials, and that they may list the bucket and get, put and delete objects under the key".into()
        }
        _ => "check the state directory's permissions and free space".into(),
    };
    let d = Diagnostic::error(Code::Io, format!("state: {error}")).help(help);
    eprint!(
        "{}",
        render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
    );
}

/// Prints an error of a transaction (`fleetform_ops`) and gives the exit
/// code: 3 for a state locked by another run, 1 otherwise.
pub(crate) fn ops_error(error: &fleetform_ops::Error, color: bool) -> u8 {
    use fleetform_ops::Error;
    match error {
        Error::Locked { .. } => {
            eprintln!("error: {error}");
            3
        }
        Error::State(e) => {
            state_error(e, color);
            1
        }
        Error::Damaged { .. } => {
            damaged(error, color);
            1
        }
        Error::Unrecorded(cause) => {
            match &**cause {
                Error::State(e) => {
                    state_error(e, color);
                    eprintln!("the changes were made but not recorded; the journal keeps them");
                }
                Error::Damaged { .. } => {
                    damaged(cause, color);
                    eprintln!("the changes were made but not recorded; the journal keeps them");
                }
                _ => eprintln!("fleetform: {error}"),
            }
            1
        }
        Error::Digest(_) => {
            eprintln!("fleetform: {error}; nothing was changed");
            1
        }
        Error::Stale { .. } => {
            let d = Diagnostic::error(Code::StalePlan, error.to_string())
                .help("run `fleetform plan -out FILE` again and review the new plan");
            eprint!(
                "{}",
                render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
            );
            1
        }
        Error::SavedPlanBlocked { .. } => {
            eprintln!("error: {error}");
            1
        }
        Error::Blocked => {
            eprintln!("{error}");
            1
        }
        // The review said why.
        Error::NotApproved => 1,
        Error::JournalNotEmpty { .. } => {
            let d = Diagnostic::error(Code::Io, error.to_string()).help(
                "run `fleetform apply` on that state first: it records what the interrupted apply did; migrate then moves a complete history",
            );
            eprint!(
                "{}",
                render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
            );
            1
        }
        Error::Copy(fleetform_state::CopyError::State(e)) => {
            state_error(e, color);
            1
        }
        Error::Copy(e) => {
            let d = Diagnostic::error(Code::Io, format!("state migrate: {e}")).help(
                "nothing in the source was changed; versions already copied stay in the destination, and running migrate again copies only what is missing",
            );
            eprint!(
                "{}",
                render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
            );
            1
        }
    }
}

/// Prints a recorded version that reads but does not decode
/// ([`fleetform_ops::Error::Damaged`]) as a diagnostic naming it, with what
/// to do, as [`state_error`] does for a damaged file.
fn damaged(error: &fleetform_ops::Error, color: bool) {
    let d = Diagnostic::error(Code::Io, format!("state: {error}")).help(
        "it was left untouched; restore the version from a backup (or an earlier object version, if the bucket keeps them): it is the only record of this version, and nothing is planned or recorded on a guess in its place",
    );
    eprint!(
        "{}",
        render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
    );
}

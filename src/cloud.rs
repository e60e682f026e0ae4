//! Talking to the cloud on behalf of a command: connect, check the account
//! (FF009), observe. Failures are printed as diagnostics.

use fleetform_aws::{AwsProvider, ConnectOptions};
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::provider::{Observation, ObserveRequest, Provider};
use fleetform_engine::{checks, Code, Diagnostic, Loaded};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Connection settings given on the command line, for every connection the
/// command makes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tuning {
    /// `--call-timeout`: limit for one attempt of one call.
    pub(crate) call_timeout: Option<Duration>,
    /// `--ec2-page-size`: items per page of the paged reads.
    pub(crate) page_size: Option<u32>,
}

static TUNING: OnceLock<Tuning> = OnceLock::new();

/// Sets the command's [`Tuning`]; the first call wins.
pub(crate) fn tune(tuning: Tuning) {
    let _ = TUNING.set(tuning);
}

/// The options for `endpoint_url` with the command line's tuning applied.
pub(crate) fn connect_options(endpoint_url: Option<String>) -> ConnectOptions {
    let tuning = TUNING.get().copied().unwrap_or_default();
    let mut options = ConnectOptions::for_endpoint(endpoint_url);
    if let Some(attempt) = tuning.call_timeout {
        options.attempt_timeout = attempt;
        // Every attempt may use its whole limit; backoff between them is at most 5 s each.
        options.operation_timeout =
            attempt * options.max_attempts + Duration::from_secs(5) * options.max_attempts;
    }
    options.page_size = tuning.page_size;
    options
}

/// An observation, how long it took, and the connection it was made with.
pub(crate) struct Observed {
    pub(crate) observation: Observation,
    pub(crate) seconds: f64,
    pub(crate) provider: AwsProvider,
    pub(crate) runtime: tokio::runtime::Runtime,
}

/// Loads nothing itself: takes a loaded config, checks the account, observes.
pub(crate) fn observe(
    loaded: &Loaded,
    endpoint_url: Option<String>,
    color: bool,
) -> Option<Observed> {
    observe_with(loaded, endpoint_url, color, &BTreeMap::new())
}

/// A connection to the cloud whose account the configuration allows.
pub(crate) struct Connected {
    pub(crate) provider: AwsProvider,
    pub(crate) runtime: tokio::runtime::Runtime,
    /// ARN of the caller, recorded in versions.
    pub(crate) caller: String,
}

/// Prints the configuration's diagnostics, connects, identifies the caller
/// and checks its account (FF009); reads nothing else. `None` (with the
/// reason printed) when any of it fails or the configuration has errors.
pub(crate) fn connect(
    loaded: &Loaded,
    endpoint_url: Option<String>,
    color: bool,
) -> Option<Connected> {
    eprint!(
        "{}",
        render_human(&loaded.diagnostics, &loaded.sources, color)
    );
    let config = loaded.config.as_ref()?;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fleetform: cannot start the async runtime: {e}");
            return None;
        }
    };
    let connected = runtime.block_on(async {
        let options = connect_options(endpoint_url);
        let provider = match AwsProvider::connect(&options).await {
            Ok(p) => p,
            Err(e) => {
                let d = Diagnostic::error(Code::Cloud, format!("cannot connect to AWS: {e}"))
                    .help("for the local EC2 endpoint pass --endpoint-url (see scripts/dev-ec2)");
                eprint!("{}", render_human(&[d], &loaded.sources, color));
                return None;
            }
        };
        let caller = match provider.caller().await {
            Ok(c) => c,
            Err(e) => {
                let d = Diagnostic::error(
                    Code::Cloud,
                    format!("cannot identify the caller (STS GetCallerIdentity): {e}"),
                )
                .help("check the credentials and that the endpoint answers; `aws sts get-caller-identity` shows the same");
                eprint!("{}", render_human(&[d], &loaded.sources, color));
                return None;
            }
        };
        if let Some(diagnostic) = checks::account_guard(config, &caller.account) {
            eprint!("{}", render_human(&[diagnostic], &loaded.sources, color));
            return None;
        }
        Some((provider, caller.arn))
    });
    let (provider, caller) = connected?;
    Some(Connected {
        provider,
        runtime,
        caller,
    })
}

/// [`observe`], also reading these images (region -> ids) beyond those the
/// configuration names.
pub(crate) fn observe_with(
    loaded: &Loaded,
    endpoint_url: Option<String>,
    color: bool,
    extra_images: &BTreeMap<String, Vec<String>>,
) -> Option<Observed> {
    let Connected {
        provider, runtime, ..
    } = connect(loaded, endpoint_url, color)?;
    let config = loaded.config.as_ref()?;
    let start = Instant::now();
    let mut request = ObserveRequest::for_config(config);
    for (region, ids) in extra_images {
        let known = request.image_ids.entry(region.clone()).or_default();
        for id in ids {
            if !known.contains(id) {
                known.push(id.clone());
            }
        }
    }
    let observation = runtime.block_on(provider.observe(&request));
    Some(Observed {
        observation,
        seconds: start.elapsed().as_secs_f64(),
        provider,
        runtime,
    })
}

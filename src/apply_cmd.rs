//! `fleetform apply` and `fleetform rollback`: lock, check, carry out, record.
//!
//! Every path that takes the lock releases it (a [`LockGuard`]); a process
//! killed mid-apply leaves a lease that expires and a journal that explains.

use crate::cloud::observe;
use crate::record;
use crate::store::{state_error, Store};
use crate::VarArgs;
use clap::Args;
use fleetform_engine::apply::{self, Journal};
use fleetform_engine::diagnostic::render_human;
use fleetform_engine::inventory;
use fleetform_engine::plan::saved::{self, SavedPlan};
use fleetform_engine::plan::{self, render, Action, Plan, PlanOptions};
use fleetform_engine::provider::ProviderError;
use fleetform_engine::{Code, Diagnostic, Inputs, Loaded};
use fleetform_state::{Backend, JournalRecord, Lease, StateError, Version};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

/// Seconds a lease lasts without renewal by default; renewed every third of it.
const LEASE_SECS: i64 = 60;

/// Seconds a lease lasts without renewal: `FLEETFORM_LOCK_LEASE_SECS` (at
/// least 3, so that renewing every third of it is at least once a second),
/// else [`LEASE_SECS`]. A shorter lease frees the state sooner after a crash.
pub(crate) fn lease_secs() -> i64 {
    std::env::var("FLEETFORM_LOCK_LEASE_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(LEASE_SECS, |secs| secs.clamp(3, 24 * 3600))
}

#[derive(Args)]
pub(crate) struct ApplyArgs {
    /// A plan file from `plan -out FILE`, or a configuration directory to plan now
    #[arg(default_value = ".")]
    target: PathBuf,

    /// Apply without asking (required when there is no terminal to ask on)
    #[arg(long)]
    auto_approve: bool,

    /// How many EC2 calls may be in flight at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,

    /// Allow terminations and deletions beyond fleet.limits (FF006)
    #[arg(long)]
    allow_destroy: bool,

    /// Allow up to N launches (FF006)
    #[arg(long, value_name = "N")]
    max_launches: Option<u32>,

    /// Carry image changes of staged roll-outs to every region: the canary
    /// regions first, the others only if every canary succeeded
    #[arg(long)]
    promote: bool,

    /// Allow up to N terminations (FF006)
    #[arg(long, value_name = "N")]
    max_terminations: Option<u32>,

    #[command(flatten)]
    vars: VarArgs,
}

#[derive(Args)]
pub(crate) struct RollbackArgs {
    /// Version to return to (see `fleetform history`)
    #[arg(long = "to", value_name = "N")]
    to: u64,

    /// Configuration directory (whose state holds the versions)
    #[arg(default_value = ".")]
    dir: PathBuf,

    /// Apply without asking
    #[arg(long)]
    auto_approve: bool,

    /// How many EC2 calls may be in flight at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    parallelism: usize,

    /// Allow terminations and deletions beyond fleet.limits (FF006)
    #[arg(long)]
    allow_destroy: bool,

    /// Values of the sensitive variables version N used (never recorded):
    /// -var NAME=VALUE, -var-file FILE, or FLEETFORM_VAR_NAME
    #[command(flatten)]
    vars: VarArgs,
}

/// The objects the latest recorded version saw after its apply (empty before the first).
pub(crate) fn recorded_entries(
    store: &dyn Backend,
) -> Result<Vec<fleetform_engine::inventory::Entry>, StateError> {
    let Some(latest) = store.latest()? else {
        return Ok(Vec::new());
    };
    let version = store.read(latest)?;
    Ok(serde_json::from_value(version.observed).unwrap_or_default())
}

/// Key pair -> worker types that used it, as the latest recorded version says (FF008).
pub(crate) fn recorded_key_users(
    store: &dyn Backend,
) -> Result<BTreeMap<String, Vec<String>>, StateError> {
    let Some(latest) = store.latest()? else {
        return Ok(BTreeMap::new());
    };
    Ok(store.read(latest)?.key_pair_users)
}

/// Holds the lease for the length of a command, renewing it in the background.
pub(crate) struct LockGuard<'a> {
    backend: &'a dyn Backend,
    lease: Arc<Mutex<Option<Lease>>>,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl<'a> LockGuard<'a> {
    /// Takes the lock or says who holds it (exit code 3).
    pub(crate) fn take(backend: &'a dyn Backend, color: bool) -> Result<LockGuard<'a>, u8> {
        let now = fleetform_state::now();
        match backend.lock(&fleetform_state::holder_id(), lease_secs(), now) {
            Ok(lease) => Ok(LockGuard {
                backend,
                lease: Arc::new(Mutex::new(Some(lease))),
                stop: None,
                renewer: None,
            }),
            Err(StateError::Locked(info)) => {
                let age = now - info.started;
                let state = if info.expired(now) {
                    format!(
                        "expired {}s ago; if {} is gone, `fleetform unlock` breaks it",
                        now - info.expires,
                        info.holder
                    )
                } else {
                    format!(
                        "live for {}s more; nothing waits for it",
                        info.expires - now
                    )
                };
                eprintln!(
                    "error: the state is locked by {} (taken {age}s ago, lease {state})",
                    info.holder
                );
                Err(3)
            }
            Err(e) => {
                state_error(&e, color);
                Err(1)
            }
        }
    }

    /// Renews the lease every third of its length until dropped. The thread
    /// waits on a channel with a timeout: a timer, not synchronisation.
    pub(crate) fn keep_alive(&mut self, backend: Store) {
        let (stop, stopped) = mpsc::channel::<()>();
        let lease = Arc::clone(&self.lease);
        self.stop = Some(stop);
        let secs = lease_secs();
        self.renewer = Some(std::thread::spawn(move || {
            let every = std::time::Duration::from_secs((secs / 3).max(1) as u64);
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let mut guard = lease.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(held) = guard.as_mut() {
                    if let Err(e) = backend.renew(held, secs, fleetform_state::now()) {
                        eprintln!("warning: cannot renew the state lock: {e}");
                    }
                }
            }
        }));
    }

    /// Why no further change may be made under this lease, if it is no longer
    /// certainly held (see [`lease_lost`]).
    pub(crate) fn lost(&self) -> Option<String> {
        lease_lost(self.backend, &self.lease)
    }

    /// The same check as [`LockGuard::lost`], for another thread: `store`
    /// must be the store this guard locked.
    fn watch(&self, store: &Store) -> LeaseWatch {
        LeaseWatch {
            store: Arc::clone(store),
            lease: Arc::clone(&self.lease),
        }
    }
}

/// Why no further change may be made under `lease`, if it is no longer
/// certainly held: it ran out (this process was stalled past its expiry, so
/// another run may have broken it), or the lock is no longer it.
fn lease_lost(backend: &dyn Backend, lease: &Mutex<Option<Lease>>) -> Option<String> {
    // Copied out: the lock is not held across the read of the store, which
    // every action of an apply makes at once.
    let held = lease
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|lease| lease.info().clone());
    let now = fleetform_state::now();
    let Some(held) = held else {
        return Some("the state lock is no longer held".into());
    };
    if held.expires <= now {
        return Some(format!(
            "the state lock's lease ran out {}s ago without being renewed",
            now - held.expires
        ));
    }
    // The same lease, whatever its expiry: a renewal whose answer was lost
    // extended it without this process learning the new expiry.
    match backend.lease() {
        Ok(Some(current)) if current.holder == held.holder && current.started == held.started => {
            None
        }
        Ok(Some(current)) => Some(format!("the state lock is now held by {}", current.holder)),
        Ok(None) => Some("the state lock was broken".into()),
        Err(e) => Some(format!("the state lock cannot be read: {e}")),
    }
}

/// A lock guard's lease check, owned, for the journal's blocking threads.
#[derive(Clone)]
struct LeaseWatch {
    store: Store,
    lease: Arc<Mutex<Option<Lease>>>,
}

impl LeaseWatch {
    fn lost(&self) -> Option<String> {
        lease_lost(&*self.store, &self.lease)
    }
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let lease = self.lease.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(lease) = lease {
            if let Err(e) = self.backend.release(lease) {
                eprintln!("warning: cannot release the state lock: {e}; `fleetform unlock` breaks it once expired");
            }
        }
    }
}

/// The journal of the state store, as the executor sees it. Each record is
/// written on a blocking thread: the executor runs every action in one
/// task, and a store on the network (S3) would otherwise hold all of them
/// up for each record's round trip.
struct StateJournal<'a> {
    store: Store,
    apply_id: String,
    plan: &'a Plan,
    /// Checked before every call: nothing is changed without the lock.
    watch: LeaseWatch,
}

/// Runs `work` (store I/O) on tokio's blocking pool and waits for it.
async fn off_the_executor<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the journal writer stopped ({e})"))
}

impl Journal for StateJournal<'_> {
    async fn intent(
        &self,
        index: usize,
        action: &Action,
        client_token: &str,
    ) -> Result<(), String> {
        let record = JournalRecord::Intent {
            apply_id: self.apply_id.clone(),
            action: index,
            address: action.address.clone(),
            region: action.region.clone(),
            client_token: client_token.to_string(),
            time: fleetform_state::now(),
        };
        let (watch, store) = (self.watch.clone(), Arc::clone(&self.store));
        off_the_executor(move || {
            if let Some(why) = watch.lost() {
                return Err(why);
            }
            store
                .append_journal(&record)
                .map_err(|e| format!("the journal could not record the intent ({e})"))
        })
        .await?
    }

    async fn outcome(&self, index: usize, result: &Result<Vec<String>, ProviderError>) {
        let record = JournalRecord::Outcome {
            apply_id: self.apply_id.clone(),
            action: index,
            ok: result.is_ok(),
            error: result.as_ref().err().map(|e| e.message.clone()),
            ids: result.clone().unwrap_or_default(),
            time: fleetform_state::now(),
        };
        let store = Arc::clone(&self.store);
        let written =
            off_the_executor(move || store.append_journal(&record).map_err(|e| e.to_string()))
                .await
                .and_then(|written| written);
        if let Err(e) = written {
            eprintln!(
                "warning: cannot record the outcome of {} in the journal: {e}",
                self.plan
                    .actions
                    .get(index)
                    .map_or("?", |a| a.address.as_str())
            );
        }
    }
}

/// An apply the journal holds a beginning of but no end: who began it and
/// when, how many actions it planned and how many finished.
struct OpenApply {
    apply_id: String,
    holder: String,
    time: i64,
    actions: usize,
    done: usize,
}

/// The last apply of `records` that never ended, if any.
fn open_apply(records: &[JournalRecord]) -> Option<OpenApply> {
    let mut open: Option<OpenApply> = None;
    for record in records {
        match record {
            JournalRecord::Begin {
                apply_id,
                holder,
                time,
                actions,
            } => {
                open = Some(OpenApply {
                    apply_id: apply_id.clone(),
                    holder: holder.clone(),
                    time: *time,
                    actions: *actions,
                    done: 0,
                })
            }
            JournalRecord::Outcome { .. } => {
                if let Some(open) = open.as_mut() {
                    open.done += 1;
                }
            }
            JournalRecord::End { .. } => open = None,
            JournalRecord::Intent { .. } => {}
        }
    }
    open
}

/// Says so when the journal holds an apply that never finished.
pub(crate) fn report_interrupted(backend: &dyn Backend) -> Result<(), StateError> {
    if let Some(open) = open_apply(&backend.journal()?) {
        eprintln!(
            "warning: an earlier apply ({}, by {} at {}) was interrupted after {} of {} actions; \
             what it created carries fleetform's tags, so this plan adopts it instead of creating it again",
            open.apply_id,
            open.holder,
            record::rfc3339(open.time),
            open.done,
            open.actions
        );
    }
    Ok(())
}

/// What `apply` and `rollback` share once the config is chosen.
struct Run<'a> {
    /// Where the state lives (the config directory the user named).
    dir: &'a Path,
    /// Where the config being applied lives (for rollback: version N restored).
    source_dir: &'a Path,
    loaded: &'a Loaded,
    /// The state store, when already opened (rollback: from the current
    /// configuration, not version N's); else the one `loaded` names.
    store: Option<Store>,
    inputs: &'a Inputs,
    auto_approve: bool,
    parallelism: usize,
    options: PlanOptions,
    saved: Option<SavedPlan>,
    rollback_of: Option<u64>,
}

pub(crate) fn apply(args: &ApplyArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let (dir, saved) = if args.target.is_file() {
        match SavedPlan::read(&args.target) {
            Ok(saved) => (PathBuf::from(&saved.config_dir), Some(saved)),
            Err(d) => {
                eprint!(
                    "{}",
                    render_human(&[d], &fleetform_engine::source::SourceSet::new(), color)
                );
                return 1;
            }
        }
    } else {
        (args.target.clone(), None)
    };
    let inputs = args.vars.inputs();
    let loaded = fleetform_engine::load_dir(&dir, &inputs);
    if let Some(binding) = saved.as_ref().and_then(|s| s.sensitive.as_ref()) {
        let unsupplied: Vec<&str> = binding
            .variables
            .keys()
            .map(String::as_str)
            .filter(|name| loaded.secrets.value(name).is_none())
            .collect();
        if !unsupplied.is_empty() {
            let d = Diagnostic::error(
                Code::StalePlan,
                format!(
                    "the saved plan needs the sensitive variable{} {} supplied again",
                    if unsupplied.len() == 1 { "" } else { "s" },
                    crate::secrets::names(&unsupplied)
                ),
            )
            .help(crate::secrets::how_to_supply(&unsupplied));
            eprint!("{}", render_human(&[d], &loaded.sources, color));
            return 1;
        }
    }
    let run = Run {
        dir: &dir,
        source_dir: &dir,
        loaded: &loaded,
        store: None,
        inputs: &inputs,
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        options: PlanOptions {
            allow_destroy: args.allow_destroy,
            max_launches: args.max_launches,
            max_terminations: args.max_terminations,
            promote: args.promote,
            ..PlanOptions::default()
        },
        saved,
        rollback_of: None,
    };
    carry_out(run, endpoint_url, color)
}

pub(crate) fn rollback(args: &RollbackArgs, endpoint_url: Option<String>, color: bool) -> u8 {
    let store = match crate::store::open_dir(&args.dir, color) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let version = match store.read(args.to) {
        Ok(v) => v,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("fleetform: cannot make a scratch directory: {e}");
            return 1;
        }
    };
    if let Err(e) = record::restore_sources(&version.sources, scratch.path()) {
        eprintln!(
            "fleetform: cannot restore the config of version {}: {e}",
            args.to
        );
        return 1;
    }
    eprintln!(
        "rolling back to version {} ({}, {})",
        version.number,
        record::rfc3339(version.time),
        version.git_commit.as_deref().unwrap_or("no git commit")
    );
    // Version N's recorded variables, and the sensitive ones (never
    // recorded) from this command line and environment. Versions written
    // before sensitive values were withheld recorded `(sensitive)` for them.
    let supplied = args.vars.inputs();
    let mut withheld: BTreeSet<String> = version
        .sensitive
        .as_ref()
        .map(|s| s.variables.keys().cloned().collect())
        .unwrap_or_default();
    let mut vars: Vec<String> = Vec::new();
    for (name, value) in &version.variables {
        if value == fleetform_engine::sensitive::SHOWN {
            withheld.insert(name.clone());
        } else {
            vars.push(format!("{name}={value}"));
        }
    }
    vars.extend(supplied.vars.iter().cloned());
    let inputs = Inputs {
        vars,
        var_files: supplied.var_files.clone(),
        env: supplied.env.clone(),
    };
    let loaded = fleetform_engine::load_dir(scratch.path(), &inputs);
    let unsupplied: Vec<&str> = withheld
        .iter()
        .map(String::as_str)
        .filter(|name| loaded.secrets.value(name).is_none())
        .collect();
    if !unsupplied.is_empty() {
        let d = Diagnostic::error(
            Code::VariableUnset,
            format!(
                "rolling back to version {} needs the sensitive variable{} {} supplied again",
                args.to,
                if unsupplied.len() == 1 { "" } else { "s" },
                crate::secrets::names(&unsupplied)
            ),
        )
        .help(crate::secrets::how_to_supply(&unsupplied));
        eprint!("{}", render_human(&[d], &loaded.sources, color));
        return 1;
    }
    if let Some(record) = &version.sensitive {
        let mismatches =
            fleetform_engine::sensitive::check_digests(&record.variables, &loaded.secrets);
        let (_, differs) = crate::secrets::split(&mismatches);
        if !differs.is_empty() {
            eprintln!(
                "warning: the value of sensitive variable{} {} differs from the one version {} used; the rollback uses the value given now",
                if differs.len() == 1 { "" } else { "s" },
                crate::secrets::names(&differs),
                args.to
            );
        }
    }
    let run = Run {
        dir: &args.dir,
        source_dir: scratch.path(),
        loaded: &loaded,
        store: Some(store),
        inputs: &inputs,
        auto_approve: args.auto_approve,
        parallelism: args.parallelism,
        // A rollback returns every region at once, to exactly the images version N used.
        options: PlanOptions {
            allow_destroy: args.allow_destroy,
            promote: true,
            pins: crate::images_cmd::pins_of(&version),
            ..PlanOptions::default()
        },
        saved: None,
        rollback_of: Some(args.to),
    };
    carry_out(run, endpoint_url, color)
}

/// FF010: what moved since a saved plan was made.
fn staleness(
    saved: &SavedPlan,
    loaded: &Loaded,
    observed: &fleetform_engine::provider::Observation,
    latest: Option<u64>,
) -> Vec<String> {
    let mut moved = Vec::new();
    if saved::config_hash(&loaded.sources) != saved.config_hash {
        moved.push("the configuration files changed".to_string());
    }
    // The values of sensitive variables are told apart by their digests,
    // and enter the hashes only through the plan's mask.
    let mask = match &saved.sensitive {
        Some(binding) => {
            let mismatches = binding.check(&loaded.secrets);
            let (missing, differs) = crate::secrets::split(&mismatches);
            let changed: Vec<&str> = missing.into_iter().chain(differs).collect();
            if !changed.is_empty() {
                moved.push(format!(
                    "the value of sensitive variable{} {} differs from the plan's",
                    if changed.len() == 1 { "" } else { "s" },
                    crate::secrets::names(&changed)
                ));
                return moved;
            }
            match binding.mask(&loaded.secrets) {
                Ok(mask) => Some(mask),
                Err(e) => {
                    moved.push(e.to_string());
                    return moved;
                }
            }
        }
        None if !loaded.secrets.is_empty() => {
            moved.push("the configuration now has sensitive variables".to_string());
            return moved;
        }
        None => None,
    };
    let model_hash = loaded
        .config
        .as_ref()
        .map(|config| saved::model_hash(config, mask.as_ref()));
    if model_hash.as_deref() != Some(saved.model_hash.as_str()) {
        moved.push("the resolved configuration (variables, file contents) changed".to_string());
    }
    if latest != saved.base_state_version {
        moved.push(format!(
            "the state moved from version {} to {}",
            saved
                .base_state_version
                .map_or("none".into(), |v| v.to_string()),
            latest.map_or("none".into(), |v| v.to_string())
        ));
    }
    if saved::fingerprint(observed, mask.as_ref()) != saved.observation_fingerprint {
        moved.push("EC2 changed since the plan was made".to_string());
    }
    moved
}

fn ask(fleet: &str) -> bool {
    eprint!("Apply these changes to fleet \"{fleet}\"? Only 'yes' or 'y' is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "yes" | "y")
}

fn carry_out(run: Run<'_>, endpoint_url: Option<String>, color: bool) -> u8 {
    let Some(config) = &run.loaded.config else {
        eprint!(
            "{}",
            render_human(&run.loaded.diagnostics, &run.loaded.sources, color)
        );
        return 1;
    };
    let store = match &run.store {
        Some(store) => Arc::clone(store),
        None => match crate::store::open(run.dir, run.loaded, color) {
            Ok(store) => store,
            Err(code) => return code,
        },
    };
    let mut lock = match LockGuard::take(&*store, color) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    lock.keep_alive(Arc::clone(&store));
    if let Err(e) = report_interrupted(&*store) {
        state_error(&e, color);
        return 1;
    }
    let latest = match store.latest() {
        Ok(latest) => latest,
        Err(e) => {
            state_error(&e, color);
            return 1;
        }
    };
    let Some(observed) = observe(run.loaded, endpoint_url, color) else {
        return 1;
    };
    let plan = match &run.saved {
        Some(saved) => {
            let moved = staleness(saved, run.loaded, &observed.observation, latest);
            if !moved.is_empty() {
                let d = Diagnostic::error(
                    Code::StalePlan,
                    format!("the saved plan is stale: {}", moved.join("; ")),
                )
                .help("run `fleetform plan -out FILE` again and review the new plan");
                eprint!("{}", render_human(&[d], &run.loaded.sources, color));
                return 1;
            }
            // A plan file written before this check existed, or edited by hand.
            let blocking: Vec<&str> = saved
                .plan
                .diagnostics
                .iter()
                .filter(|d| d.severity == fleetform_engine::Severity::Error)
                .map(|d| d.code.as_str())
                .collect();
            if !blocking.is_empty() {
                eprintln!(
                    "error: the saved plan has blocking findings ({}); nothing was changed",
                    blocking.join(", ")
                );
                return 1;
            }
            saved.plan.clone()
        }
        None => {
            let now = crate::images_cmd::clock();
            let versions = match crate::images_cmd::version_images(&*store, config, now) {
                Ok(versions) => versions,
                Err(e) => {
                    state_error(&e, color);
                    return 1;
                }
            };
            let sensitive_before = match crate::secrets::sensitive_before(&*store) {
                Ok(names) => names,
                Err(e) => {
                    state_error(&e, color);
                    return 1;
                }
            };
            let recorded_key_users = match recorded_key_users(&*store) {
                Ok(users) => users,
                Err(e) => {
                    state_error(&e, color);
                    return 1;
                }
            };
            let created = match crate::recent::created(&*store, config, now) {
                Ok(created) => created,
                Err(e) => {
                    state_error(&e, color);
                    return 1;
                }
            };
            let options = PlanOptions {
                now,
                versions,
                secrets: run.loaded.secrets.clone(),
                sensitive_before,
                recorded_key_users,
                created,
                ..run.options.clone()
            };
            let (mut plan, diagnostics) = plan::build(config, &observed.observation, &options);
            match recorded_entries(&*store) {
                Ok(recorded) => plan.adopt_unrecorded(
                    &inventory::entries(config, &observed.observation).0,
                    &recorded,
                ),
                Err(e) => {
                    state_error(&e, color);
                    return 1;
                }
            }
            print!("{}", render::human(&plan, color));
            eprint!("{}", render_human(&diagnostics, &run.loaded.sources, color));
            if diagnostics.iter().any(Diagnostic::is_error) {
                eprintln!("nothing was changed: the findings above block this apply");
                return 1;
            }
            if !plan.is_empty() && !run.auto_approve {
                if !std::io::stdin().is_terminal() {
                    eprintln!("error: refusing to apply without approval: there is no terminal to ask on; review the plan and pass --auto-approve");
                    return 1;
                }
                if !ask(&config.fleet.name) {
                    eprintln!("Apply cancelled; nothing was changed.");
                    return 1;
                }
            }
            plan
        }
    };
    // Nothing to change is not always nothing to record: a crash or an
    // unreadable kind can leave objects in EC2 that no version lists.
    let refresh = plan.is_empty();
    if refresh {
        let previous = latest.and_then(|n| store.read(n).ok());
        match unrecorded(&*store, previous.as_ref(), config, &observed.observation) {
            Some(why) => println!("No changes to apply; recording a version because {why}."),
            None => {
                println!("No changes to apply.");
                return 0;
            }
        }
    }

    let apply_id = apply::plan_id(&plan);
    let outcomes = if refresh {
        Vec::new()
    } else {
        match execute(&run, &store, &lock, &observed, &plan, &apply_id, color) {
            Ok(outcomes) => outcomes,
            Err(code) => return code,
        }
    };
    // Record what was done and what EC2 holds now (a refresh just observed it).
    let after = if refresh {
        observed.observation.clone()
    } else {
        observed
            .runtime
            .block_on(fleetform_engine::provider::Provider::observe(
                &observed.provider,
                &fleetform_engine::provider::ObserveRequest::for_config(config),
            ))
    };
    record_version(RecordArgs {
        run: &run,
        store: &*store,
        config,
        observed: &observed,
        plan: &plan,
        apply_id,
        latest,
        outcomes,
        after,
        color,
    })
}

/// Why a no-op apply must still record a version, if it must: EC2 holds
/// fleet objects the latest version does not list (every kind was read), or
/// the journal still holds an apply that never ended.
fn unrecorded(
    store: &dyn Backend,
    latest: Option<&Version>,
    config: &fleetform_engine::model::Config,
    observation: &fleetform_engine::provider::Observation,
) -> Option<String> {
    let open = store
        .journal()
        .ok()
        .is_some_and(|records| open_apply(&records).is_some());
    if open {
        return Some("the journal holds an apply that never ended".into());
    }
    let (entries, unread) = inventory::entries(config, observation);
    if !unread.is_empty() {
        return None;
    }
    let recorded: std::collections::BTreeSet<String> = latest
        .and_then(|v| serde_json::from_value::<Vec<inventory::Entry>>(v.observed.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.id)
        .collect();
    let missing = entries
        .iter()
        .filter(|e| e.managed && !recorded.contains(&e.id))
        .count();
    (missing > 0).then(|| {
        format!(
            "EC2 holds {missing} object{} of this fleet that the last version does not record",
            if missing == 1 { "" } else { "s" }
        )
    })
}

/// Journals and carries out `plan`; the outcome of every action.
fn execute(
    run: &Run<'_>,
    store: &Store,
    lock: &LockGuard<'_>,
    observed: &crate::cloud::Observed,
    plan: &Plan,
    apply_id: &str,
    color: bool,
) -> Result<Vec<apply::Outcome>, u8> {
    if let Err(e) = store.append_journal(&JournalRecord::Begin {
        apply_id: apply_id.to_string(),
        time: fleetform_state::now(),
        holder: fleetform_state::holder_id(),
        actions: plan.actions.len(),
    }) {
        state_error(&e, color);
        return Err(1);
    }
    let journal = StateJournal {
        watch: lock.watch(store),
        store: Arc::clone(store),
        apply_id: apply_id.to_string(),
        plan,
    };
    let total = plan.actions.len();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    // A bar on a terminal; one plain line per finished action in CI and logs.
    let bar = (std::io::stderr().is_terminal() && !crate::in_ci()).then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar
    });
    let progress = |action: &Action, result: &Result<Vec<String>, ProviderError>| {
        let n = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let status = match result {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("FAILED: {}", e.message),
        };
        let line = format!(
            "[{n}/{total}] {} {} {}: {}",
            action.action.marker(),
            action.region,
            render::headline(action),
            status
        );
        match &bar {
            Some(bar) => {
                if result.is_err() {
                    bar.println(&line);
                }
                bar.set_message(format!("{} {}", action.address, action.region));
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    };
    let withheld = match &run.loaded.config {
        Some(config) => {
            match fleetform_engine::sensitive::Withheld::of(config, &run.loaded.secrets) {
                Ok(withheld) => withheld,
                Err(e) => {
                    eprintln!("fleetform: {e}; nothing was changed");
                    return Err(1);
                }
            }
        }
        None => fleetform_engine::sensitive::Withheld::default(),
    };
    let outcomes = observed.runtime.block_on(apply::execute(
        plan,
        &withheld,
        &observed.provider,
        run.parallelism,
        &journal,
        &progress,
    ));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(outcomes)
}

/// What [`record_version`] records.
struct RecordArgs<'a> {
    run: &'a Run<'a>,
    store: &'a dyn Backend,
    config: &'a fleetform_engine::model::Config,
    observed: &'a crate::cloud::Observed,
    plan: &'a Plan,
    apply_id: String,
    latest: Option<u64>,
    outcomes: Vec<apply::Outcome>,
    after: fleetform_engine::provider::Observation,
    color: bool,
}

/// Writes the version of an apply (or refresh), closes its journal, and
/// reports; the exit code.
fn record_version(args: RecordArgs<'_>) -> u8 {
    let RecordArgs {
        run,
        store,
        config,
        observed,
        plan,
        apply_id,
        latest,
        outcomes,
        after,
        color,
    } = args;
    let total = plan.actions.len();
    let (entries, unread) = inventory::entries(config, &after);
    let sources = record::snapshot_sources(run.source_dir, run.loaded);
    let previous = latest.and_then(|n| store.read(n).ok());
    for (region, kind, cause) in &unread {
        eprintln!(
            "warning: {kind} in {region} could not be read after the apply ({cause}); the new version keeps what the last one recorded of them, and the next plan adopts what this apply made there"
        );
    }
    let before: Vec<inventory::Entry> = previous
        .as_ref()
        .and_then(|v| serde_json::from_value(v.observed.clone()).ok())
        .unwrap_or_default();
    let entries = inventory::carry_over(entries, &unread, &before);
    let (git_commit, git_dirty) = record::git_info(run.dir);
    // Sensitive variables are never recorded: the version keeps a digest
    // of each (below), and rollback asks for them again.
    let sensitive = &config.sensitive_variables;
    let variables: BTreeMap<String, String> = run
        .inputs
        .vars
        .iter()
        .filter_map(|v| v.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .chain(run.inputs.env.iter().cloned())
        .filter(|(k, _)| !sensitive.contains(k))
        .collect();
    let sensitive_record = match crate::secrets::record(
        config,
        &run.loaded.secrets,
        previous.as_ref().and_then(|p| p.sensitive.as_ref()),
    ) {
        Ok(record) => record,
        Err(e) => {
            eprintln!(
                "fleetform: {e}; the changes were made but not recorded; the journal keeps them"
            );
            return 1;
        }
    };
    let copies: Vec<(String, String)> = outcomes
        .iter()
        .filter(|o| plan.actions[o.action].action == plan::ActionKind::Copy)
        .filter_map(|o| {
            let id = o.result.as_ref().ok()?.first()?;
            Some((plan.actions[o.action].region.clone(), id.clone()))
        })
        .collect();
    let images = crate::images_cmd::referenced_images(&plan.images, &copies, &after);
    let number = latest.unwrap_or(0) + 1;
    let version = Version {
        format_version: fleetform_state::FORMAT_VERSION,
        number,
        time: crate::images_cmd::clock(),
        git_commit,
        git_dirty,
        caller: observed.caller.clone(),
        rollback_of: run.rollback_of,
        diff: record::sources_diff(
            previous.as_ref().map_or(&BTreeMap::new(), |p| &p.sources),
            &sources,
        ),
        sources,
        variables,
        plan: serde_json::to_value(plan).unwrap_or_default(),
        outcomes: outcomes
            .iter()
            .map(|o| fleetform_state::ActionOutcome {
                action: o.action,
                ok: o.result.is_ok(),
                error: o.result.as_ref().err().map(|e| e.message.clone()),
                ids: o.result.clone().unwrap_or_default(),
            })
            .collect(),
        observed: serde_json::to_value(&entries).unwrap_or_default(),
        summary: serde_json::to_value(&plan.summary).unwrap_or_default(),
        images,
        sensitive: sensitive_record,
        key_pair_users: plan::build::key_pair_users(config),
    };
    if let Err(e) = store.write(&version) {
        state_error(&e, color);
        eprintln!("the changes were made but not recorded; the journal keeps them");
        return 1;
    }
    let _ = store.append_journal(&JournalRecord::End {
        apply_id,
        time: fleetform_state::now(),
        version: Some(number),
    });
    if let Err(e) = store.clear_journal() {
        eprintln!("warning: cannot clear the journal: {e}");
    }
    let failures: Vec<&apply::Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    println!(
        "Recorded version {number}{}: {} of {total} actions succeeded.",
        run.rollback_of
            .map(|n| format!(" (rollback to {n})"))
            .unwrap_or_default(),
        total - failures.len()
    );
    eprintln!(
        "{} API calls in all (observations included)",
        observed.provider.api_calls()
    );
    if failures.is_empty() {
        return 0;
    }
    eprintln!(
        "{} action{} failed:",
        failures.len(),
        if failures.len() == 1 { "" } else { "s" }
    );
    for failure in failures {
        let action = &plan.actions[failure.action];
        if let Err(e) = &failure.result {
            eprintln!(
                "  {} in {}: {}: {}",
                action.address,
                action.region,
                render::headline(action),
                e.message
            );
        }
    }
    1
}

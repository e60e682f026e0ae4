//! The transactions as one call each: [`apply`] (lock, FF010 or a fresh plan,
//! review, journal, execute, observe, record) and [`migrate`] (both states
//! locked, journals empty, versions copied and read back). The binary
//! connects to the cloud, loads the configuration and renders; everything
//! between taking the lock and releasing it happens here, in this order.

use crate::{Error, LockGuard, OpenApply, Reporter, Store, VersionInputs};
use fleetform_engine::apply::{self, Outcome};
use fleetform_engine::model::Config;
use fleetform_engine::plan::saved::SavedPlan;
use fleetform_engine::plan::{Plan, PlanOptions};
use fleetform_engine::provider::{ObserveRequest, Provider};
use fleetform_engine::sensitive::Withheld;
use fleetform_engine::{Diagnostic, Inputs, Loaded, Severity};
use fleetform_state::{CopiedVersion, Version};
use std::path::Path;
use std::sync::Arc;

/// The cloud a transaction changes: a provider, the runtime its calls run
/// on, and the caller's identity (recorded in the version).
pub struct Cloud<'a, P> {
    /// The provider, already connected (and its account checked).
    pub provider: &'a P,
    /// The runtime the provider's calls run on.
    pub runtime: &'a tokio::runtime::Runtime,
    /// ARN of the caller.
    pub caller: &'a str,
}

/// Where the plan an apply carries out comes from.
pub enum PlanSource<'a> {
    /// A plan saved by `plan -out`, carried out only if nothing it was made
    /// from has moved (FF010) and it holds no blocking finding.
    Saved(&'a SavedPlan),
    /// A plan built under the lock against what EC2 holds then, with these
    /// options (their `now` is set when the plan is built).
    Fresh(Box<PlanOptions>),
}

/// What an apply carries out, and for whom.
pub struct ApplyRequest<'a> {
    /// The state store (locked for the length of the apply).
    pub store: &'a Store,
    /// The configuration directory the user named (its git commit is recorded).
    pub dir: &'a Path,
    /// Where the applied configuration lives (for a rollback: the version restored).
    pub source_dir: &'a Path,
    /// The configuration as loaded.
    pub loaded: &'a Loaded,
    /// Its evaluated model.
    pub config: &'a Config,
    /// The variables given (sensitive ones are never recorded).
    pub inputs: &'a Inputs,
    /// The plan to carry out.
    pub plan: PlanSource<'a>,
    /// How many provider calls may be in flight at once.
    pub parallelism: usize,
    /// The version a rollback returns to.
    pub rollback_of: Option<u64>,
}

/// Whoever runs an apply: sees what it found and decides whether it goes on.
pub trait Review: Reporter {
    /// An earlier apply never ended; this one adopts what it created.
    fn interrupted(&self, open: &OpenApply);

    /// A fresh plan was built (before any check or question): show it.
    fn planned(&self, plan: &Plan, diagnostics: &[Diagnostic]);

    /// Whether to carry out `plan` (a fresh plan that changes something and
    /// has no blocking finding). A refusal is [`Error::NotApproved`]; say why
    /// here.
    fn approve(&self, plan: &Plan) -> bool;

    /// The plan's `actions` are about to be carried out.
    fn executing(&self, actions: usize) {
        let _ = actions;
    }

    /// Every action was carried out (or failed); the journal's last
    /// records may still be being written.
    fn executed(&self) {}
}

/// What an apply did.
#[derive(Debug)]
pub enum Applied {
    /// Nothing to change, and nothing EC2 holds that the state does not record.
    Unchanged,
    /// A version was recorded.
    Recorded(Box<Recorded>),
}

/// An apply that recorded a version.
#[derive(Debug)]
pub struct Recorded {
    /// The version.
    pub version: Version,
    /// The plan carried out.
    pub plan: Plan,
    /// What happened to each action (by index into the plan).
    pub outcomes: Vec<Outcome>,
    /// For a plan that changed nothing: why a version was recorded anyway.
    pub refresh: Option<String>,
}

/// Carries out an apply: takes the lock (renewed until the end), observes
/// EC2 under the lock while it reads the state (an interrupted apply found
/// there is reported once both are done; from then on the state's version
/// list, versions and journal are each read once, kept true by the apply's
/// own writes), then either checks the saved plan (FF010, blocking
/// findings) or builds a fresh one and has it reviewed; journals and
/// executes it, observes again and records the version. A plan that
/// changes nothing records a version only when EC2 or the journal holds
/// what no version records.
pub fn apply<P: Provider>(
    request: ApplyRequest<'_>,
    cloud: &Cloud<'_, P>,
    review: &dyn Review,
    reporter: Arc<dyn Reporter>,
) -> Result<Applied, Error> {
    let ApplyRequest {
        store,
        dir,
        source_dir,
        loaded,
        config,
        inputs,
        plan,
        parallelism,
        rollback_of,
    } = request;
    let mut lock = LockGuard::take(&**store, reporter)?;
    lock.keep_alive(Arc::clone(store));
    // Under the lock, what the state holds changes only by this apply:
    // the version list, the versions and the journal are read once.
    let cached = crate::cached::Cached::over(Arc::clone(store));
    let store: &Store = &(Arc::clone(&cached) as Store);
    let request = ObserveRequest::for_config(config);
    // The state is read while EC2 is observed: neither waits for the other.
    let (read, observation) = std::thread::scope(|scope| {
        let read = scope.spawn(|| read_state(&**store));
        let observation = cloud.runtime.block_on(cloud.provider.observe(&request));
        (read.join(), observation)
    });
    let (open, latest) = read.unwrap_or_else(|panicked| std::panic::resume_unwind(panicked))?;
    if let Some(open) = open {
        review.interrupted(&open);
    }
    let plan = match plan {
        PlanSource::Saved(saved) => {
            let moved = crate::staleness(saved, loaded, &observation, latest);
            if !moved.is_empty() {
                return Err(Error::Stale { moved });
            }
            // A plan file written before this check existed, or edited by hand.
            let blocking: Vec<String> = saved
                .plan
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .map(|d| d.code.clone())
                .collect();
            if !blocking.is_empty() {
                return Err(Error::SavedPlanBlocked { codes: blocking });
            }
            saved.plan.clone()
        }
        PlanSource::Fresh(options) => {
            let options = PlanOptions {
                now: crate::clock(),
                ..*options
            };
            let (plan, diagnostics) =
                crate::plan(&**store, config, &observation, &loaded.secrets, options)?;
            review.planned(&plan, &diagnostics);
            if diagnostics.iter().any(Diagnostic::is_error) {
                return Err(Error::Blocked);
            }
            if !plan.is_empty() && !review.approve(&plan) {
                return Err(Error::NotApproved);
            }
            plan
        }
    };
    // Nothing to change is not always nothing to record: a crash or an
    // unreadable kind can leave objects in EC2 that no version lists.
    let refresh = if plan.is_empty() {
        match crate::unrecorded(&**store, latest, config, &observation)? {
            Some(why) => Some(why),
            None => return Ok(Applied::Unchanged),
        }
    } else {
        None
    };
    let apply_id = apply::plan_id(&plan);
    let (outcomes, after) = if refresh.is_some() {
        // The version write's read of the index, again after the plan.
        cached.read_list_again();
        (Vec::new(), observation)
    } else {
        let withheld = Withheld::of(config, &loaded.secrets)?;
        review.executing(plan.actions.len());
        // Once every call has ended: what EC2 holds now, to record, and
        // the version list again for the version write (the index read
        // after the changes, not before them), each beside the other and
        // beside the journal's last records.
        let executed = crate::execute_then(
            cloud.runtime,
            store,
            &lock,
            cloud.provider,
            crate::Execution {
                plan: &plan,
                apply_id: &apply_id,
                withheld: &withheld,
                parallelism,
            },
            review,
            || {
                review.executed();
                std::thread::scope(|scope| {
                    scope.spawn(|| cached.read_list_again());
                    cloud.runtime.block_on(cloud.provider.observe(&request))
                })
            },
        );
        executed?
    };
    let version = crate::build_version(
        VersionInputs {
            store: &**store,
            dir,
            source_dir,
            loaded,
            config,
            inputs,
            caller: cloud.caller,
            rollback_of,
            plan: &plan,
            latest,
            outcomes: &outcomes,
            after: &after,
            time: crate::clock(),
        },
        review,
    )?;
    crate::record_version(&**store, &version, apply_id, review)?;
    Ok(Applied::Recorded(Box::new(Recorded {
        version,
        plan,
        outcomes,
        refresh,
    })))
}

/// What an apply reads of the state before it plans: an apply that never
/// ended, and the latest version number; the latest version itself is read
/// too, into `store`'s cache, for the plan and the version to record.
fn read_state(
    store: &dyn fleetform_state::Backend,
) -> Result<(Option<OpenApply>, Option<u64>), Error> {
    let open = crate::interrupted(store)?;
    let latest = store.latest()?;
    if let Some(number) = latest {
        // An error here is met again, and reported, where the version is used.
        let _ = store.read(number);
    }
    Ok((open, latest))
}

/// Which side of a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The store versions are copied from.
    Source,
    /// The store versions are copied to.
    Destination,
}

/// Copies every version of `from` to `to` with both locked (renewed until
/// the end): refused while either journal holds an unfinished apply, and
/// stopped after the version in flight once either lease is lost. `each`
/// hears of every version copied (or found already there). The source is
/// never written.
pub fn migrate(
    from: &Store,
    to: &Store,
    reporter: Arc<dyn Reporter>,
    mut each: impl FnMut(&CopiedVersion),
) -> Result<Vec<CopiedVersion>, Error> {
    let mut from_lock = LockGuard::take(&**from, Arc::clone(&reporter))?;
    from_lock.keep_alive(Arc::clone(from));
    let mut to_lock = LockGuard::take(&**to, reporter)?;
    to_lock.keep_alive(Arc::clone(to));
    for (store, side) in [(from, Side::Source), (to, Side::Destination)] {
        let records = store.journal()?;
        if !records.is_empty() {
            return Err(Error::JournalNotEmpty {
                side,
                records: records.len(),
            });
        }
    }
    Ok(fleetform_state::copy_versions(&**from, &**to, |done| {
        each(done);
        match from_lock.lost().or_else(|| to_lock.lost()) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    })?)
}

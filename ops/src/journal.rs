//! The write-ahead journal of an apply: the engine's [`Journal`] kept in the
//! state store (an intent before every call, only while the lease is held;
//! an outcome after it), carrying a plan out under it ([`execute`]), and
//! reading back an apply that never ended ([`interrupted`]).

use crate::lock::{LeaseWatch, LockGuard};
use crate::{Error, Reporter, Store};
use fleetform_engine::apply::{self, Journal};
use fleetform_engine::plan::{Action, Plan};
use fleetform_engine::provider::{Provider, ProviderError};
use fleetform_engine::sensitive::Withheld;
use fleetform_state::{Backend, JournalRecord};
use std::sync::Arc;

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
    reporter: &'a dyn Reporter,
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
            time: crate::clock(),
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
            time: crate::clock(),
        };
        let store = Arc::clone(&self.store);
        let written =
            off_the_executor(move || store.append_journal(&record).map_err(|e| e.to_string()))
                .await
                .and_then(|written| written);
        if let Err(e) = written {
            self.reporter.warning(&format!(
                "cannot record the outcome of {} in the journal: {e}",
                self.plan
                    .actions
                    .get(index)
                    .map_or("?", |a| a.address.as_str())
            ));
        }
    }
}

/// What [`execute`] carries out, and how.
pub struct Execution<'a> {
    /// The plan to carry out.
    pub plan: &'a Plan,
    /// Its id in the journal ([`apply::plan_id`]).
    pub apply_id: &'a str,
    /// What the plan withheld (sensitive user data), to put back in the calls.
    pub withheld: &'a Withheld,
    /// How many provider calls may be in flight at once.
    pub parallelism: usize,
}

/// Journals and carries out a plan under `lock` (taken on `store`): writes
/// the journal's beginning, then runs the engine's executor on `runtime`
/// with an intent recorded before every call (none is made once the lease is
/// lost or the intent cannot be written) and an outcome after it. Each
/// finished action is reported; the outcome of every action.
pub fn execute(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    lock: &LockGuard<'_>,
    provider: &impl Provider,
    run: Execution<'_>,
    reporter: &dyn Reporter,
) -> Result<Vec<apply::Outcome>, Error> {
    let Execution {
        plan,
        apply_id,
        withheld,
        parallelism,
    } = run;
    store.append_journal(&JournalRecord::Begin {
        apply_id: apply_id.to_string(),
        time: crate::clock(),
        holder: fleetform_state::holder_id(),
        actions: plan.actions.len(),
    })?;
    let journal = StateJournal {
        watch: lock.watch(store),
        store: Arc::clone(store),
        apply_id: apply_id.to_string(),
        plan,
        reporter,
    };
    let progress = |action: &Action, result: &Result<Vec<String>, ProviderError>| {
        reporter.action_finished(action, result)
    };
    Ok(runtime.block_on(apply::execute(
        plan,
        withheld,
        provider,
        parallelism,
        &journal,
        &progress,
    )))
}

/// An apply the journal holds a beginning of but no end: who began it and
/// when, how many actions it planned and how many finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApply {
    /// The apply's id ([`apply::plan_id`] of its plan).
    pub apply_id: String,
    /// Who ran it (`user@host:pid`).
    pub holder: String,
    /// When it began, in unix seconds.
    pub time: i64,
    /// How many actions its plan had.
    pub actions: usize,
    /// How many of them finished (an outcome was recorded).
    pub done: usize,
}

/// The last apply of `records` that never ended, if any. An action counts
/// as finished once; a launch that falls through from pair to pair records
/// an outcome per attempt.
fn open_apply(records: &[JournalRecord]) -> Option<OpenApply> {
    let mut open: Option<OpenApply> = None;
    let mut finished: std::collections::BTreeSet<usize> = std::collections::BTreeSet::new();
    for record in records {
        match record {
            JournalRecord::Begin {
                apply_id,
                holder,
                time,
                actions,
            } => {
                finished.clear();
                open = Some(OpenApply {
                    apply_id: apply_id.clone(),
                    holder: holder.clone(),
                    time: *time,
                    actions: *actions,
                    done: 0,
                })
            }
            JournalRecord::Outcome { action, .. } => {
                if let Some(open) = open.as_mut() {
                    if finished.insert(*action) {
                        open.done += 1;
                    }
                }
            }
            JournalRecord::End { .. } => open = None,
            JournalRecord::Intent { .. } => {}
        }
    }
    open
}

/// The apply the journal of `backend` holds that never finished, if any.
pub fn interrupted(backend: &dyn Backend) -> Result<Option<OpenApply>, Error> {
    Ok(open_apply(&backend.journal()?))
}

/// Whether the journal of `backend` holds an apply that never ended.
pub(crate) fn holds_open_apply(backend: &dyn Backend) -> Result<bool, Error> {
    Ok(open_apply(&backend.journal()?).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_with_several_attempts_counts_as_finished_once() {
        let outcome = |action: usize, ok: bool| JournalRecord::Outcome {
            apply_id: "a".into(),
            action,
            ok,
            error: None,
            ids: Vec::new(),
            time: 2,
        };
        let records = vec![
            JournalRecord::Begin {
                apply_id: "a".into(),
                time: 1,
                holder: "me".into(),
                actions: 3,
            },
            // Action 0 fell through twice before it launched.
            outcome(0, false),
            outcome(0, false),
            outcome(0, true),
            outcome(1, true),
        ];
        let open = open_apply(&records).expect("open");
        assert_eq!((open.done, open.actions), (2, 3));
    }
}

//! The write-ahead journal of an apply: the engine's [`Journal`] kept in the
//! state store (an intent before every call, only while the lease is held;
//! an outcome after it), carrying a plan out under it ([`execute`]), and
//! reading back an apply that never ended ([`interrupted`]).

use crate::lock::{LeaseWatch, LockGuard};
use crate::{Error, Reporter, Store};
use fleetform_engine::apply::{self, Ahead, Journal};
use fleetform_engine::plan::{Action, Plan};
use fleetform_engine::provider::{Provider, ProviderError};
use fleetform_engine::sensitive::Withheld;
use fleetform_state::{Backend, JournalRecord};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// An intent's answer from the writer: once its batch is written, `Ok`
/// with the number of the lease check that batch made (see
/// [`Queue::checks`]).
type Answer = tokio::sync::oneshot::Receiver<Result<u64, String>>;

/// The journal of the state store, as the executor sees it: every record
/// goes through one [`GroupCommit`] writer, so the records of the actions
/// in flight are written together; the intents the executor announces
/// ([`Journal::intents_ahead`]) are queued at once, and their actions wait
/// for those answers instead of queueing their intents again.
struct StateJournal<'a> {
    writer: Arc<GroupCommit>,
    apply_id: String,
    plan: &'a Plan,
    /// Intents queued ahead, by (action, client token), not yet asked for.
    ahead: Mutex<HashMap<(usize, String), Answer>>,
}

/// A record waiting for the next write.
struct Queued {
    record: JournalRecord,
    /// An intent's caller, who waits for the batch (lease checked, written)
    /// before making its call; `None` for an outcome, which nobody waits for.
    intent: Option<tokio::sync::oneshot::Sender<Result<u64, String>>>,
    /// The action an outcome is of, named in a warning if it is not written.
    action: usize,
}

impl Queued {
    /// Whether this is the apply's beginning.
    fn is_begin(&self) -> bool {
        matches!(self.record, JournalRecord::Begin { .. })
    }
}

/// What the writer holds between writes.
#[derive(Default)]
struct Queue {
    /// Records that arrived since the write in progress began, in order.
    waiting: Vec<Queued>,
    /// Whether a write (a thread draining `waiting`) is under way.
    writing: bool,
    /// Batches written (or tried) so far.
    batches: usize,
    /// Outcomes that could not be written: (action, why).
    lost_outcomes: Vec<(usize, String)>,
    /// Why the lease is lost, once a check found it so: every later batch
    /// and call goes by it (a lease is never found again).
    lost: Option<String>,
    /// Lease checks begun so far (a batch's or a turn's): the number of
    /// the last one begun. A check numbered above what this was when an
    /// intent was asked for began after it.
    checks: u64,
    /// `checks` when the last outcome was queued: a check numbered above
    /// it began after every call that has ended.
    ended: u64,
    /// Actions whose turn came, waiting for a lease check begun after it.
    turns: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// Whether a turn check is started that has not yet taken `turns`.
    checking: bool,
    /// Why the batch holding the apply's beginning was not written: no
    /// later intent is written and no call made, as after a lost lease.
    begin_failed: Option<fleetform_state::StateError>,
    /// Whether the beginning was left unwritten (lease lost, or its append
    /// failed): then nothing of this apply is written, not even outcomes
    /// (of calls never made), which would read as another apply's.
    unbegun: bool,
}

/// Group commit of the journal: one write at a time, on a blocking thread;
/// the records that arrive while it is under way wait, and the next write
/// takes all of them at once. A batch holding an intent checks the lease
/// first, once for the batch (after every record of it was queued): when
/// it is lost, the batch's intents fail, so their calls are never made,
/// and only its outcomes are written. Then the batch is one
/// [`Backend::append_journal_records`] (one fsync, or one S3 object), and
/// an intent of it succeeds only once that returned `Ok`.
///
/// An intent's caller waits for its batch; an outcome's does not (an
/// outcome only says what happened, after the fact; losing it in a crash is
/// what a crash between a call and its outcome does anyway). [`flush`]
/// waits for every record queued, so that nothing is written after the
/// journal's end.
///
/// [`flush`]: GroupCommit::flush
struct GroupCommit {
    store: Store,
    /// Checked before every batch holding an intent: nothing is changed
    /// without the lock.
    watch: LeaseWatch,
    queue: Mutex<Queue>,
    /// Signalled whenever the writer goes idle.
    idle: Condvar,
}

impl GroupCommit {
    fn new(store: Store, watch: LeaseWatch) -> Arc<GroupCommit> {
        Arc::new(GroupCommit {
            store,
            watch,
            queue: Mutex::new(Queue::default()),
            idle: Condvar::new(),
        })
    }

    /// Queues the apply's beginning without starting a write: it goes in
    /// the first batch, ahead of the first intents (one object, one fsync),
    /// so that no intent and no call comes before it is durable. Written by
    /// [`GroupCommit::flush`] if nothing else ever is.
    fn begin(&self, record: JournalRecord) {
        self.queue().waiting.insert(
            0,
            Queued {
                record,
                intent: None,
                action: usize::MAX,
            },
        );
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `queued` and starts a writer if none is under way. Must be
    /// called inside a tokio runtime (the writer is a blocking task of it).
    fn submit(self: &Arc<Self>, queued: Queued) {
        self.submit_all(vec![queued]);
    }

    /// Queues every record of `queued` at once, in order (a write under
    /// way takes all of them or none), and starts a writer if none is.
    fn submit_all(self: &Arc<Self>, queued: Vec<Queued>) {
        let start = {
            let mut queue = self.queue();
            queue.waiting.extend(queued);
            !std::mem::replace(&mut queue.writing, true)
        };
        if start {
            let writer = Arc::clone(self);
            // Not awaited: the writer hands each record's answer back itself.
            drop(tokio::task::spawn_blocking(move || writer.drain()));
        }
    }

    /// Queues an intent; its answer arrives once its batch is written (or
    /// refused).
    fn intent(self: &Arc<Self>, record: JournalRecord, action: usize) -> Answer {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.submit(Queued {
            record,
            intent: Some(answer),
            action,
        });
        answered
    }

    /// Writes batches until nothing waits, then goes idle. Should a write
    /// panic, the writer still goes idle (so [`GroupCommit::flush`] returns):
    /// the intents waiting are answered "stopped" as their senders drop.
    fn drain(&self) {
        /// Marks the writer idle if the thread unwinds.
        struct Unwinding<'a>(&'a GroupCommit);
        impl Drop for Unwinding<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let mut queue = self.0.queue();
                    queue.writing = false;
                    let stopped: Vec<Queued> = std::mem::take(&mut queue.waiting);
                    queue.lost_outcomes.extend(
                        stopped
                            .iter()
                            .filter(|q| q.intent.is_none() && !q.is_begin())
                            .map(|q| (q.action, "the journal writer stopped".to_string())),
                    );
                    self.0.idle.notify_all();
                }
            }
        }
        let _unwinding = Unwinding(self);
        loop {
            let batch = {
                let mut queue = self.queue();
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    self.idle.notify_all();
                    return;
                }
                queue.batches += 1;
                std::mem::take(&mut queue.waiting)
            };
            self.write(batch);
        }
    }

    /// One batch: the lease check (if it holds an intent), one append, and
    /// every intent's answer. A batch that holds the apply's beginning and
    /// is not written (lease lost, or the append failed) leaves the lease
    /// as good as lost, and nothing of the apply is written after it: no
    /// intent could be explained by the journal, and an outcome (of a call
    /// never made) would follow another apply's beginning.
    fn write(&self, batch: Vec<Queued>) {
        let begins = batch.iter().any(Queued::is_begin);
        let (check, lost) = if begins || batch.iter().any(|q| q.intent.is_some()) {
            self.check()
        } else {
            (0, None)
        };
        // A lost lease writes no intent: only the batch's outcomes; and
        // nothing at all without the beginning.
        let unbegun = self.queue().unbegun || (begins && lost.is_some());
        let records: Vec<JournalRecord> = batch
            .iter()
            .filter(|q| !unbegun && (lost.is_none() || q.intent.is_none()))
            .map(|q| q.record.clone())
            .collect();
        // A batch of refused intents alone writes nothing.
        let appended = if records.is_empty() {
            Ok(())
        } else {
            self.store.append_journal_records(&records)
        };
        let written = appended.as_ref().copied().map_err(|e| e.to_string());
        if unbegun {
            self.queue().unbegun = true;
        }
        if let (true, Err(e)) = (begins, appended) {
            let mut queue = self.queue();
            queue.unbegun = true;
            queue.lost.get_or_insert_with(|| {
                format!("the journal could not record the apply's beginning ({e})")
            });
            queue.begin_failed.get_or_insert(e);
        }
        let mut lost_outcomes = Vec::new();
        for queued in batch {
            let begin = queued.is_begin();
            match (queued.intent, &lost, &written) {
                (Some(answer), Some(why), _) => drop(answer.send(Err(why.clone()))),
                (Some(answer), None, Err(e)) => drop(answer.send(Err(format!(
                    "the journal could not record the intent ({e})"
                )))),
                (Some(answer), None, Ok(())) => drop(answer.send(Ok(check))),
                (None, _, Err(e)) if !begin => lost_outcomes.push((queued.action, e.clone())),
                (None, _, _) => {}
            }
        }
        if !lost_outcomes.is_empty() {
            self.queue().lost_outcomes.extend(lost_outcomes);
        }
    }

    /// One lease check: its number and why the lease is lost, if it is
    /// (kept: every later check answers the same without a read).
    fn check(&self) -> (u64, Option<String>) {
        let (number, known) = {
            let mut queue = self.queue();
            queue.checks += 1;
            (queue.checks, queue.lost.clone())
        };
        let lost = known.or_else(|| self.watch.lost());
        if let Some(why) = &lost {
            self.queue().lost.get_or_insert_with(|| why.clone());
        }
        (number, lost)
    }

    /// The number of the last lease check begun when the last outcome was
    /// queued (0 before any).
    fn ended(&self) -> u64 {
        self.queue().ended
    }

    /// Queues an outcome, after noting that its call has ended.
    fn outcome(self: &Arc<Self>, queued: Queued) {
        {
            let mut queue = self.queue();
            queue.ended = queue.checks;
        }
        self.submit(queued);
    }

    /// Queues intents at once, in order; each answer arrives once its
    /// batch is written (or refused).
    fn intents(self: &Arc<Self>, intents: Vec<(JournalRecord, usize)>) -> Vec<Answer> {
        let (queued, answers): (Vec<Queued>, Vec<Answer>) = intents
            .into_iter()
            .map(|(record, action)| {
                let (answer, answered) = tokio::sync::oneshot::channel();
                let queued = Queued {
                    record,
                    intent: Some(answer),
                    action,
                };
                (queued, answered)
            })
            .unzip();
        self.submit_all(queued);
        answers
    }

    /// Asks for a lease check begun after now: `Ok` once one found the
    /// lease held, else why it is lost. Turns asked for before a check has
    /// begun share it; one asked for while checks are under way starts
    /// another at once, beside them, so no turn waits for more than one
    /// read of the lock.
    fn turn(self: &Arc<Self>) -> tokio::sync::oneshot::Receiver<Result<(), String>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.turns.push(answer);
            !std::mem::replace(&mut queue.checking, true)
        };
        if start {
            let checker = Arc::clone(self);
            // Not awaited: the check answers its turns itself; a check that
            // panics drops them, and they read as "stopped".
            drop(tokio::task::spawn_blocking(move || checker.check_turns()));
        }
        answered
    }

    /// One lease check for every turn asked for before it began.
    fn check_turns(&self) {
        let turns = {
            let mut queue = self.queue();
            queue.checking = false;
            std::mem::take(&mut queue.turns)
        };
        let (_, lost) = self.check();
        for turn in turns {
            drop(turn.send(lost.clone().map_or(Ok(()), Err)));
        }
    }

    /// Why no call may be made any more, known without a read of the
    /// store: a batch's check found the lease lost, or this process's lease
    /// was released or ran out. An intent written ahead answers by it when
    /// its action's turn comes, since its own batch's check may be older
    /// than a later one.
    fn known_lost(&self) -> Option<String> {
        let known = self.queue().lost.clone();
        known.or_else(|| self.watch.lost_here())
    }

    /// Waits until every record queued so far is written (or failed), and
    /// returns the outcomes that could not be written: (action, why).
    fn flush(&self) -> Vec<(usize, String)> {
        let lone_begin = {
            let mut queue = self.queue();
            !queue.waiting.is_empty() && !std::mem::replace(&mut queue.writing, true)
        };
        if lone_begin {
            // Nothing was queued after the beginning: no call was made.
            self.drain();
        }
        let mut queue = self.queue();
        while queue.writing || !queue.waiting.is_empty() {
            queue = self.idle.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        std::mem::take(&mut queue.lost_outcomes)
    }
}

impl Journal for StateJournal<'_> {
    async fn intent(
        &self,
        index: usize,
        action: &Action,
        client_token: &str,
    ) -> Result<(), String> {
        let queued = self
            .ahead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(index, client_token.to_string()));
        let stopped = |_| "the journal writer stopped".to_string();
        let ended = self.writer.ended();
        let answer = match queued {
            Some(answer) => answer,
            None => self
                .writer
                .intent(self.intent_record(index, action, client_token), index),
        };
        let checked = answer.await.map_err(stopped)??;
        // Written ahead, its batch's lease check may be older than the calls
        // that ended since (the lease may have been lost during one): the
        // call waits for a check begun after every call that has ended.
        if checked <= ended {
            self.writer.turn().await.map_err(stopped)??;
        }
        // A check of another batch or turn may have found it lost since,
        // or the lease may have run out.
        match self.writer.known_lost() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Queues the announced intents at once, in order: they go in the next
    /// batch (after its lease check), and each action waits for its answer.
    fn intents_ahead(&self, ahead: &[Ahead<'_>]) {
        let mut queued = self.ahead.lock().unwrap_or_else(|p| p.into_inner());
        let new: Vec<&Ahead<'_>> = ahead
            .iter()
            .filter(|a| !queued.contains_key(&(a.index, a.client_token.to_string())))
            .collect();
        let records = new
            .iter()
            .map(|a| {
                (
                    self.intent_record(a.index, a.action, a.client_token),
                    a.index,
                )
            })
            .collect();
        for (a, answer) in new.iter().zip(self.writer.intents(records)) {
            queued.insert((a.index, a.client_token.to_string()), answer);
        }
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
        self.writer.outcome(Queued {
            record,
            intent: None,
            action: index,
        });
    }
}

impl StateJournal<'_> {
    /// The intent record of action `index` with `client_token`.
    fn intent_record(&self, index: usize, action: &Action, client_token: &str) -> JournalRecord {
        JournalRecord::Intent {
            apply_id: self.apply_id.clone(),
            action: index,
            address: action.address.clone(),
            region: action.region.clone(),
            client_token: client_token.to_string(),
            time: crate::clock(),
        }
    }

    /// [`StateJournal::finish`] on another thread while `then` runs on
    /// this one; returns once both are done.
    fn finish_beside<T>(&self, reporter: &dyn Reporter, then: impl FnOnce() -> T) -> T {
        std::thread::scope(|scope| {
            let finished = scope.spawn(|| self.finish(reporter));
            let then = then();
            finished
                .join()
                .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked));
            then
        })
    }

    /// Waits for every record queued, and warns of each outcome that could
    /// not be written.
    fn finish(&self, reporter: &dyn Reporter) {
        for (index, e) in self.writer.flush() {
            reporter.warning(&format!(
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

/// Journals and carries out a plan under `lock` (taken on `store`): runs
/// the engine's executor on `runtime` with an intent recorded before every
/// call (none is made once the lease is lost or the intent cannot be
/// written) and an outcome after it; the journal's beginning goes in the
/// first batch, before every intent. Records of actions in flight together
/// are written together (group commit: one lease check and one append per
/// batch); every record is written, or reported as a warning, before this
/// returns. Each finished action is reported; the outcome of every action.
/// A beginning that could not be written is the error (no call was made).
pub fn execute(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    lock: &LockGuard<'_>,
    provider: &impl Provider,
    run: Execution<'_>,
    reporter: &dyn Reporter,
) -> Result<Vec<apply::Outcome>, Error> {
    execute_then(runtime, store, lock, provider, run, reporter, || ())
        .map(|(outcomes, ())| outcomes)
}

/// [`execute`], and `then` once the executor has returned (every call has
/// ended), run beside the writing of the journal's last records: what an
/// apply does next that needs no journal record (observing EC2 again) does
/// not wait for them. Returns once both are done.
pub fn execute_then<T>(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    lock: &LockGuard<'_>,
    provider: &impl Provider,
    run: Execution<'_>,
    reporter: &dyn Reporter,
    then: impl FnOnce() -> T,
) -> Result<(Vec<apply::Outcome>, T), Error> {
    let Execution {
        plan,
        apply_id,
        withheld,
        parallelism,
    } = run;
    let writer = GroupCommit::new(Arc::clone(store), lock.watch(store));
    writer.begin(JournalRecord::Begin {
        apply_id: apply_id.to_string(),
        time: crate::clock(),
        holder: fleetform_state::holder_id(),
        actions: plan.actions.len(),
    });
    let journal = StateJournal {
        writer,
        apply_id: apply_id.to_string(),
        plan,
        ahead: Mutex::new(HashMap::new()),
    };
    let progress = |action: &Action, result: &Result<Vec<String>, ProviderError>| {
        reporter.action_finished(action, result)
    };
    let outcomes = runtime.block_on(apply::execute(
        plan,
        withheld,
        provider,
        parallelism,
        &journal,
        &progress,
    ));
    let then = journal.finish_beside(reporter, then);
    if let Some(e) = journal.writer.queue().begin_failed.take() {
        return Err(e.into());
    }
    Ok((outcomes, then))
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
    use crate::test_store::TestStore;
    use std::future::Future;
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::time::Duration;

    struct Quiet;
    impl Reporter for Quiet {
        fn warning(&self, _: &str) {}
    }

    /// A gated store in a new directory, what its appends report, and its gate.
    fn gated() -> (
        tempfile::TempDir,
        Arc<TestStore>,
        mpsc::Receiver<usize>,
        mpsc::Sender<()>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, entries, gate) = TestStore::gated(dir.path());
        (dir, Arc::new(store), entries, gate)
    }

    fn intent(action: usize) -> JournalRecord {
        JournalRecord::Intent {
            apply_id: "a".into(),
            action,
            address: format!("w{action}"),
            region: "us-east-1".into(),
            client_token: format!("ff-a-{action}"),
            time: 1,
        }
    }

    fn outcome(action: usize) -> Queued {
        Queued {
            record: JournalRecord::Outcome {
                apply_id: "a".into(),
                action,
                ok: true,
                error: None,
                ids: Vec::new(),
                time: 2,
            },
            intent: None,
            action,
        }
    }

    fn entered(entries: &mpsc::Receiver<usize>) -> usize {
        entries
            .recv_timeout(Duration::from_secs(60))
            .expect("a write began")
    }

    /// While one write is under way, what arrives queues, and the next
    /// write takes all of it at once, in order; every intent is answered
    /// only once its batch is written.
    #[test]
    fn records_that_arrive_during_a_write_go_together_in_the_next_one() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let writer = writer_of(&store, &lock);
        let mut first = writer.intent(intent(0), 0);
        assert_eq!(entered(&entries), 1, "the first intent is written at once");
        let mut answers: Vec<_> = (1..16).map(|i| writer.intent(intent(i), i)).collect();
        for i in 0..5 {
            writer.submit(outcome(i));
        }
        assert!(first.try_recv().is_err(), "not answered before written");
        gate.send(()).expect("open");
        assert_eq!(runtime.block_on(first), Ok(Ok(1)));
        assert_eq!(entered(&entries), 20, "15 intents and 5 outcomes at once");
        assert!(answers.iter_mut().all(|a| a.try_recv().is_err()));
        gate.send(()).expect("open");
        for answer in answers {
            assert_eq!(runtime.block_on(answer), Ok(Ok(2)));
        }
        assert_eq!(writer.flush(), Vec::new());
        assert_eq!(writer.queue().batches, 2);
        let mut expected: Vec<JournalRecord> = (0..16).map(intent).collect();
        expected.extend((0..5).map(|i| outcome(i).record));
        assert_eq!(store.journal().expect("journal"), expected);
    }

    /// A batch whose lease is lost answers its intents with why (so their
    /// calls are never made) and writes only its outcomes; a batch whose
    /// append fails answers its intents with the error and returns its
    /// outcomes from `flush`.
    #[test]
    fn a_lost_lease_or_a_failed_append_fails_every_intent_of_the_batch() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let writer = writer_of(&store, &lock);
        // An outcome alone holds the writer while the lock changes hands.
        writer.submit(outcome(9));
        assert_eq!(entered(&entries), 1);
        let now = fleetform_state::now();
        store.break_lock(true, now).expect("broken");
        let other = store.lock("other@host:1", 60, now).expect("taken");
        let refused = writer.intent(intent(0), 0);
        writer.submit(outcome(1));
        gate.send(()).expect("open");
        assert_eq!(entered(&entries), 1, "only the outcome is written");
        gate.send(()).expect("open");
        let why = runtime
            .block_on(refused)
            .expect("answered")
            .expect_err("lost");
        assert!(why.contains("other@host:1"), "{why}");
        assert_eq!(writer.flush(), Vec::new());
        assert_eq!(
            store.journal().expect("journal"),
            vec![outcome(9).record, outcome(1).record]
        );
        store.release(other).expect("released");

        let (_dir, gated, entries, gate) = self::gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let writer = writer_of(&store, &lock);
        gated.fail.store(true, Ordering::SeqCst);
        let failed = writer.intent(intent(0), 0);
        assert_eq!(entered(&entries), 1);
        writer.submit(outcome(3));
        gate.send(()).expect("open");
        assert_eq!(entered(&entries), 1, "the outcome, after the intent");
        gate.send(()).expect("open");
        let why = runtime
            .block_on(failed)
            .expect("answered")
            .expect_err("failed");
        assert!(why.contains("could not record the intent"), "{why}");
        let lost = writer.flush();
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].0, 3);
        assert!(lost[0].1.contains("disk full"), "{lost:?}");
        assert_eq!(store.journal().expect("journal"), Vec::new());
    }

    /// Intents written ahead before any call ended need no check of their
    /// own: their batch's began after every call that had ended.
    #[test]
    fn intents_written_ahead_before_any_call_ended_go_without_another_check() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let plan = plan_of(3);
        let tokens = tokens_of(3);
        let journal = journal_of(writer_of(&store, &lock), &plan);
        journal.intents_ahead(&ahead_of(&plan, &tokens));
        assert_eq!(entered(&entries), 3);
        gate.send(()).expect("open");
        for (i, (action, token)) in plan.actions.iter().zip(&tokens).enumerate() {
            assert_eq!(runtime.block_on(journal.intent(i, action, token)), Ok(()));
        }
        assert_eq!(journal.writer.queue().checks, 1, "the batch's check alone");
    }

    /// A plan of `n` key pair creations, one per worker type.
    fn plan_of(n: usize) -> Plan {
        let actions: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "address": format!("w{i}"),
                    "region": "us-east-1",
                    "action": "create",
                    "resource": "key_pair",
                    "reason": "new",
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "format_version": "1",
            "fleet": "f",
            "summary": {
                "add": n, "change": 0, "destroy": 0, "launch": 0, "terminate": 0,
                "hourly_usd": 0.0,
            },
            "actions": actions,
        }))
        .expect("a plan")
    }

    /// The group-commit writer of `store`, under `lock`'s lease.
    fn writer_of(store: &Store, lock: &LockGuard<'_>) -> Arc<GroupCommit> {
        GroupCommit::new(Arc::clone(store), lock.watch(store))
    }

    /// The client tokens of the first `n` actions of apply `a`.
    fn tokens_of(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ff-a-{i}")).collect()
    }

    fn journal_of<'a>(writer: Arc<GroupCommit>, plan: &'a Plan) -> StateJournal<'a> {
        StateJournal {
            writer,
            apply_id: "a".into(),
            plan,
            ahead: Mutex::new(HashMap::new()),
        }
    }

    fn ahead_of<'a>(plan: &'a Plan, tokens: &'a [String]) -> Vec<Ahead<'a>> {
        plan.actions
            .iter()
            .zip(tokens)
            .enumerate()
            .map(|(index, (action, client_token))| Ahead {
                index,
                action,
                client_token,
            })
            .collect()
    }

    /// Intents announced ahead are queued at once, in the order announced,
    /// and written as one batch; asking for one afterwards waits for that
    /// batch and writes nothing more. An intent asked for that was not
    /// announced (another token: a launch's attempt) is queued as before.
    #[test]
    fn intents_announced_ahead_are_one_batch_written_before_they_are_asked_for() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let plan = plan_of(5);
        let tokens = tokens_of(5);
        let journal = journal_of(writer_of(&store, &lock), &plan);
        journal.intents_ahead(&ahead_of(&plan, &tokens));
        // Announcing twice queues nothing more.
        journal.intents_ahead(&ahead_of(&plan, &tokens)[..2]);
        assert_eq!(entered(&entries), 5, "the five intents, in one write");
        let mut asked = Box::pin(journal.intent(0, &plan.actions[0], &tokens[0]));
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(
            asked.as_mut().poll(&mut context).is_pending(),
            "not answered before its batch is written"
        );
        gate.send(()).expect("open");
        assert_eq!(runtime.block_on(asked), Ok(()));
        for (i, (action, token)) in plan.actions.iter().zip(&tokens).enumerate().skip(1) {
            assert_eq!(runtime.block_on(journal.intent(i, action, token)), Ok(()));
        }
        assert_eq!(journal.writer.queue().batches, 1, "asking wrote nothing");
        let mut attempt = Box::pin(journal.intent(1, &plan.actions[1], "ff-a-1-0.1"));
        assert!(attempt.as_mut().poll(&mut context).is_pending());
        assert_eq!(entered(&entries), 1, "an intent not announced, on its own");
        gate.send(()).expect("open");
        assert_eq!(runtime.block_on(attempt), Ok(()));
        let written: Vec<String> = store
            .journal()
            .expect("journal")
            .into_iter()
            .filter_map(|r| match r {
                JournalRecord::Intent { client_token, .. } => Some(client_token),
                _ => None,
            })
            .collect();
        let mut expected = tokens.clone();
        expected.push("ff-a-1-0.1".into());
        assert_eq!(written, expected);
    }

    /// An intent written ahead whose batch found the lease held still
    /// fails when, by its action's turn, a later batch found the lease
    /// lost: its call is never made.
    #[test]
    fn an_intent_written_ahead_fails_once_a_later_batch_finds_the_lease_lost() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let plan = plan_of(3);
        let tokens = tokens_of(3);
        let journal = journal_of(writer_of(&store, &lock), &plan);
        journal.intents_ahead(&ahead_of(&plan, &tokens)[..2]);
        assert_eq!(entered(&entries), 2);
        let now = fleetform_state::now();
        store.break_lock(true, now).expect("broken");
        let other = store.lock("other@host:1", 60, now).expect("taken");
        // Announced while the first batch is being written: the next
        // batch's check finds the lease lost, and writes nothing.
        journal.intents_ahead(&ahead_of(&plan, &tokens)[2..]);
        gate.send(()).expect("open");
        let why = runtime
            .block_on(journal.intent(2, &plan.actions[2], &tokens[2]))
            .expect_err("lost");
        assert!(why.contains("other@host:1"), "{why}");
        for (i, (action, token)) in plan.actions.iter().zip(&tokens).enumerate().take(2) {
            let why = runtime
                .block_on(journal.intent(i, action, token))
                .expect_err("written, but the lease is lost since");
            assert!(why.contains("other@host:1"), "{why}");
        }
        assert_eq!(journal.writer.flush(), Vec::new());
        assert_eq!(journal.writer.queue().batches, 2);
        assert_eq!(
            store.journal().expect("journal").len(),
            2,
            "only the first batch"
        );
        store.release(other).expect("released");
    }

    /// An intent written ahead is not enough for its call: its turn waits
    /// for a lease check begun after it was asked for. The lease lost
    /// during the call before (no batch since) refuses the next one.
    #[test]
    fn a_lease_lost_during_a_call_refuses_the_next_intent_written_ahead() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let plan = plan_of(2);
        let tokens = tokens_of(2);
        let journal = journal_of(writer_of(&store, &lock), &plan);
        journal.intents_ahead(&ahead_of(&plan, &tokens));
        assert_eq!(entered(&entries), 2);
        gate.send(()).expect("open");
        assert_eq!(
            runtime.block_on(journal.intent(0, &plan.actions[0], &tokens[0])),
            Ok(())
        );
        // Action 0's call is under way: the lock is broken and taken.
        let now = fleetform_state::now();
        store.break_lock(true, now).expect("broken");
        let other = store.lock("other@host:1", 60, now).expect("taken");
        // Action 1 was written ahead and checked with it, but its turn
        // comes after action 0's call ended.
        runtime.block_on(journal.outcome(0, &Ok(Vec::new())));
        assert_eq!(entered(&entries), 1, "the outcome");
        gate.send(()).expect("open");
        let why = runtime
            .block_on(journal.intent(1, &plan.actions[1], &tokens[1]))
            .expect_err("its turn's check finds the lease lost");
        assert!(why.contains("other@host:1"), "{why}");
        assert_eq!(journal.writer.flush(), Vec::new());
        let intents = store
            .journal()
            .expect("journal")
            .iter()
            .filter(|r| matches!(r, JournalRecord::Intent { .. }))
            .count();
        assert_eq!(intents, 2, "no intent batch since the first");
        store.release(other).expect("released");
    }

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

    fn begin() -> JournalRecord {
        JournalRecord::Begin {
            apply_id: "a".into(),
            time: 1,
            holder: "me".into(),
            actions: 3,
        }
    }

    /// The apply's beginning waits for the first intents and goes in their
    /// batch, first: one append where there were two before any call.
    #[test]
    fn the_beginning_goes_in_the_first_batch_ahead_of_its_intents() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let writer = writer_of(&store, &lock);
        writer.begin(begin());
        assert!(
            !writer.queue().writing,
            "nothing written for the beginning alone"
        );
        let answers = writer.intents(vec![(intent(0), 0), (intent(1), 1)]);
        assert_eq!(
            entered(&entries),
            3,
            "the beginning and both intents at once"
        );
        gate.send(()).expect("open");
        for answer in answers {
            assert_eq!(runtime.block_on(answer), Ok(Ok(1)));
        }
        assert_eq!(writer.flush(), Vec::new());
        assert_eq!(writer.queue().batches, 1);
        assert_eq!(
            store.journal().expect("journal"),
            vec![begin(), intent(0), intent(1)]
        );
        assert!(writer.queue().begin_failed.is_none());
    }

    /// A batch holding the beginning that is not written fails its intents,
    /// and every later one is refused without a write: no call is made
    /// that the journal could not explain. The error is kept for `execute`.
    #[test]
    fn a_beginning_not_written_refuses_every_later_intent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let failing = Arc::new(TestStore::at(dir.path()));
        let store: Store = failing.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let writer = writer_of(&store, &lock);
        writer.begin(begin());
        failing.fail.store(true, Ordering::SeqCst);
        let first = writer.intent(intent(0), 0);
        let why = runtime
            .block_on(first)
            .expect("answered")
            .expect_err("failed");
        assert!(why.contains("disk full"), "{why}");
        failing.fail.store(false, Ordering::SeqCst);
        let later = writer.intent(intent(1), 1);
        let why = runtime
            .block_on(later)
            .expect("answered")
            .expect_err("refused");
        assert!(why.contains("beginning"), "{why}");
        writer.submit(outcome(1));
        assert_eq!(writer.flush(), Vec::new(), "nothing lost: nothing to write");
        assert_eq!(store.journal().expect("journal"), Vec::new());
        assert!(writer.queue().begin_failed.is_some());
    }

    /// A lease lost before the first batch writes neither the beginning
    /// nor anything after it (the outcomes of calls never made would read
    /// as an earlier apply's), and refuses every intent.
    #[test]
    fn a_lease_lost_before_the_beginning_writes_nothing_of_the_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Store = Arc::new(TestStore::at(dir.path()));
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let now = fleetform_state::now();
        store.break_lock(true, now).expect("broken");
        let other = store.lock("other@host:1", 60, now).expect("taken");
        let writer = writer_of(&store, &lock);
        writer.begin(begin());
        let first = writer.intent(intent(0), 0);
        let why = runtime
            .block_on(first)
            .expect("answered")
            .expect_err("lost");
        assert!(why.contains("other@host:1"), "{why}");
        writer.submit(outcome(0));
        assert_eq!(writer.flush(), Vec::new());
        assert_eq!(store.journal().expect("journal"), Vec::new());
        assert!(
            writer.queue().begin_failed.is_none(),
            "not an append's error"
        );
        store.release(other).expect("released");
    }

    /// A beginning that nothing followed is written by `flush`, so the
    /// journal's end that follows always has its beginning.
    #[test]
    fn a_beginning_alone_is_written_by_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Store = Arc::new(TestStore::at(dir.path()));
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let writer = writer_of(&store, &lock);
        writer.begin(begin());
        assert_eq!(writer.flush(), Vec::new());
        assert_eq!(store.journal().expect("journal"), vec![begin()]);
    }

    /// What follows the executor runs while its last records are still
    /// being written: here it opens the gate the last write waits at,
    /// which it could not do if it waited for that write.
    #[test]
    fn what_follows_the_executor_runs_beside_the_writing_of_its_last_records() {
        let (_dir, gated, entries, gate) = gated();
        let store: Store = gated.clone();
        let lock = LockGuard::take(&*store, Arc::new(Quiet)).expect("lock");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _inside = runtime.enter();
        let plan = plan_of(1);
        let journal = journal_of(writer_of(&store, &lock), &plan);
        journal.writer.submit(outcome(0));
        assert_eq!(
            entered(&entries),
            1,
            "the last outcome's write is under way"
        );
        let then = journal.finish_beside(&Quiet, || {
            gate.send(()).expect("open");
            7
        });
        assert_eq!(then, 7);
        assert_eq!(store.journal().expect("journal"), vec![outcome(0).record]);
    }
}

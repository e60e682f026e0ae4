//! A state store read once per transaction: while a transaction holds the
//! lock, nobody else changes the state, so what it read of the versions
//! and the journal stays true until it changes them itself. An apply reads
//! the version list and the latest version in several places (the lock's
//! interrupted-apply check, the plan's inputs, the version it records) and
//! the journal in two; on S3 each was a listing and a read or more, one
//! after the other.

use crate::Store;
use fleetform_state::{
    Backend, JournalRecord, Lease, LeaseInfo, StateError, Version, VersionSummary,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A [`Backend`] over `inner` that keeps what it read: the version list,
/// each version read (versions never change once written) and the
/// journal's records. Its own writes keep it true: a version written drops
/// the list (read again when next asked for), a journal append extends
/// the records kept (or drops them when it failed, its effect unknown), a
/// clear empties them. Locking calls go straight to `inner`, uncached.
///
/// Only for the length of one transaction that holds the lock: another
/// process writing the state meanwhile (a lock broken by force) is not
/// seen, which is what the lease check before every change is for; a
/// version write stays conditional on what S3 or the disk holds, never on
/// what this kept.
pub(crate) struct Cached {
    inner: Store,
    list: Mutex<Option<Vec<VersionSummary>>>,
    versions: Mutex<HashMap<u64, Version>>,
    journal: Mutex<Option<Vec<JournalRecord>>>,
}

/// The value behind `mutex`, whether or not a holder panicked.
fn held<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cached {
    /// `inner`, read once per kind of read from now on.
    pub(crate) fn over(inner: Store) -> Arc<Cached> {
        Arc::new(Cached {
            inner,
            list: Mutex::new(None),
            versions: Mutex::new(HashMap::new()),
            journal: Mutex::new(None),
        })
    }

    /// Reads the version list again from the store underneath, and keeps
    /// it. For the version write to come: a store that goes by its last
    /// read of the list when it writes (S3: the index's ETag, the
    /// condition of its replacement) goes by this one, so the write need
    /// not read it first. A failed read keeps nothing (the write reads
    /// again, and meets the error there).
    pub(crate) fn read_list_again(&self) {
        *held(&self.list) = self.inner.list().ok();
    }
}

impl Backend for Cached {
    fn latest(&self) -> Result<Option<u64>, StateError> {
        Ok(self.list()?.last().map(|s| s.number))
    }

    fn list(&self) -> Result<Vec<VersionSummary>, StateError> {
        if let Some(list) = held(&self.list).as_ref() {
            return Ok(list.clone());
        }
        let list = self.inner.list()?;
        *held(&self.list) = Some(list.clone());
        Ok(list)
    }

    fn read(&self, number: u64) -> Result<Version, StateError> {
        if let Some(version) = held(&self.versions).get(&number) {
            return Ok(version.clone());
        }
        let version = self.inner.read(number)?;
        held(&self.versions).insert(number, version.clone());
        Ok(version)
    }

    fn write(&self, version: &Version) -> Result<(), StateError> {
        // Dropped whatever the answer: an error may still have written it.
        *held(&self.list) = None;
        self.inner.write(version)
    }

    fn append_journal_records(&self, records: &[JournalRecord]) -> Result<(), StateError> {
        let appended = self.inner.append_journal_records(records);
        let mut journal = held(&self.journal);
        match (&appended, journal.as_mut()) {
            (Ok(()), Some(kept)) => kept.extend_from_slice(records),
            (Ok(()), None) => {}
            (Err(_), _) => *journal = None,
        }
        appended
    }

    fn journal(&self) -> Result<Vec<JournalRecord>, StateError> {
        if let Some(records) = held(&self.journal).as_ref() {
            return Ok(records.clone());
        }
        let records = self.inner.journal()?;
        *held(&self.journal) = Some(records.clone());
        Ok(records)
    }

    fn clear_journal(&self) -> Result<(), StateError> {
        let cleared = self.inner.clear_journal();
        *held(&self.journal) = cleared.as_ref().ok().map(|()| Vec::new());
        cleared
    }

    fn end_journal(&self, end: &JournalRecord) -> Result<(), StateError> {
        let ended = self.inner.end_journal(end);
        // A failed one may have written the end, or cleared part of it.
        *held(&self.journal) = ended.as_ref().ok().map(|()| Vec::new());
        ended
    }

    fn record(
        &self,
        version: &Version,
        end: &JournalRecord,
    ) -> Result<Result<(), StateError>, StateError> {
        // Dropped whatever the answer, as by `write` and `end_journal`.
        *held(&self.list) = None;
        let recorded = self.inner.record(version, end);
        *held(&self.journal) = matches!(recorded, Ok(Ok(()))).then(Vec::new);
        recorded
    }

    fn lock(&self, holder: &str, ttl_secs: i64, now: i64) -> Result<Lease, StateError> {
        self.inner.lock(holder, ttl_secs, now)
    }

    fn renew(&self, lease: &mut Lease, ttl_secs: i64, now: i64) -> Result<(), StateError> {
        self.inner.renew(lease, ttl_secs, now)
    }

    fn release(&self, lease: Lease) -> Result<(), StateError> {
        self.inner.release(lease)
    }

    fn lease(&self) -> Result<Option<LeaseInfo>, StateError> {
        self.inner.lease()
    }

    fn break_lock(&self, force: bool, now: i64) -> Result<Option<LeaseInfo>, StateError> {
        self.inner.break_lock(force, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store::TestStore;
    use std::sync::atomic::Ordering;

    fn version(number: u64) -> Version {
        Version {
            format_version: fleetform_state::FORMAT_VERSION,
            number,
            time: 1,
            git_commit: None,
            git_dirty: false,
            caller: "me".into(),
            rollback_of: None,
            sources: Default::default(),
            variables: Default::default(),
            plan: serde_json::json!({ "actions": [] }),
            outcomes: Vec::new(),
            observed: serde_json::Value::Null,
            diff: String::new(),
            summary: serde_json::Value::Null,
            images: Default::default(),
            sensitive: None,
            key_pair_users: Default::default(),
        }
    }

    fn end(apply_id: &str) -> JournalRecord {
        JournalRecord::End {
            apply_id: apply_id.into(),
            time: 2,
            version: Some(1),
        }
    }

    /// The list and each version are read once however often asked for; a
    /// version written is listed at the next ask (read again), and read
    /// back as written.
    #[test]
    fn versions_are_read_once_and_a_write_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counting = Arc::new(TestStore::at(dir.path()));
        counting.write(&version(1)).expect("written");
        let cached = Cached::over(counting.clone());
        for _ in 0..3 {
            assert_eq!(cached.latest().expect("latest"), Some(1));
            assert_eq!(cached.list().expect("list").len(), 1);
            assert_eq!(cached.read(1).expect("read").number, 1);
        }
        assert_eq!(counting.lists.load(Ordering::SeqCst), 1);
        assert_eq!(counting.reads.load(Ordering::SeqCst), 1);
        cached.write(&version(2)).expect("written");
        assert_eq!(cached.latest().expect("latest"), Some(2));
        assert_eq!(counting.lists.load(Ordering::SeqCst), 2);
        assert_eq!(cached.read(2).expect("read").number, 2);
        assert!(matches!(cached.read(3), Err(StateError::NoSuchVersion(3))));
    }

    /// The journal is read once; appends extend what is kept, in order, a
    /// failed append has it read again, and a clear empties it.
    #[test]
    fn the_journal_is_read_once_and_kept_true_by_appends_and_clears() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counting = Arc::new(TestStore::at(dir.path()));
        counting.append_journal(&end("a")).expect("appended");
        let cached = Cached::over(counting.clone());
        assert_eq!(cached.journal().expect("journal"), vec![end("a")]);
        cached
            .append_journal_records(&[end("b"), end("c")])
            .expect("appended");
        assert_eq!(
            cached.journal().expect("journal"),
            vec![end("a"), end("b"), end("c")]
        );
        assert_eq!(counting.journals.load(Ordering::SeqCst), 1);
        assert_eq!(
            cached.journal().expect("journal"),
            counting.inner.journal().expect("journal")
        );
        counting.fail.store(true, Ordering::SeqCst);
        assert!(cached.append_journal(&end("d")).is_err());
        counting.fail.store(false, Ordering::SeqCst);
        assert_eq!(cached.journal().expect("journal").len(), 3);
        assert_eq!(counting.journals.load(Ordering::SeqCst), 2, "read again");
        cached.clear_journal().expect("cleared");
        assert_eq!(cached.journal().expect("journal"), Vec::new());
        assert_eq!(counting.journals.load(Ordering::SeqCst), 2);
        assert_eq!(counting.inner.journal().expect("journal"), Vec::new());
    }

    /// `read_list_again` reads the list from the store once more and keeps
    /// that read; `end_journal` and `record` leave the journal kept empty,
    /// as it is.
    #[test]
    fn the_list_is_read_again_when_asked_and_an_ended_or_recorded_journal_is_kept_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counting = Arc::new(TestStore::at(dir.path()));
        counting.write(&version(1)).expect("written");
        let cached = Cached::over(counting.clone());
        assert_eq!(cached.latest().expect("latest"), Some(1));
        counting.inner.write(&version(2)).expect("written");
        cached.read_list_again();
        assert_eq!(counting.lists.load(Ordering::SeqCst), 2);
        assert_eq!(cached.latest().expect("latest"), Some(2));
        assert_eq!(counting.lists.load(Ordering::SeqCst), 2, "kept");

        cached.append_journal(&end("a")).expect("appended");
        assert_eq!(cached.journal().expect("journal").len(), 1);
        cached.end_journal(&end("b")).expect("ended");
        assert_eq!(cached.journal().expect("journal"), Vec::new());
        assert_eq!(counting.inner.journal().expect("journal"), Vec::new());

        // `record`: the version is listed at the next ask (read again),
        // and the journal kept empty.
        cached.append_journal(&end("c")).expect("appended");
        cached
            .record(&version(3), &end("d"))
            .expect("written")
            .expect("ended");
        assert_eq!(cached.latest().expect("latest"), Some(3));
        assert_eq!(counting.lists.load(Ordering::SeqCst), 3);
        assert_eq!(cached.journal().expect("journal"), Vec::new());
        assert_eq!(counting.inner.journal().expect("journal"), Vec::new());
    }
}

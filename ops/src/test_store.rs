//! A local store for ops' unit tests: it counts its reads, can fail its
//! journal appends, and can hold each append at a gate the test opens.

use fleetform_state::{
    Backend, JournalRecord, Lease, LeaseInfo, LocalBackend, StateError, Version, VersionSummary,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// A local store in a directory of the test's, with counters and switches.
pub(crate) struct TestStore {
    /// The store underneath, to read without counting.
    pub(crate) inner: LocalBackend,
    /// Reads of the version list (`latest` and `list`).
    pub(crate) lists: AtomicUsize,
    /// Reads of a version.
    pub(crate) reads: AtomicUsize,
    /// Reads of the journal.
    pub(crate) journals: AtomicUsize,
    /// While set, journal appends fail (after the gate, if any).
    pub(crate) fail: AtomicBool,
    gate: Option<Gate>,
}

/// Each append first tells the test how many records it carries, then
/// waits for the test to open the gate: the test knows when a write is
/// under way, and so what queues behind it.
struct Gate {
    entered: Mutex<mpsc::Sender<usize>>,
    open: Mutex<mpsc::Receiver<()>>,
}

impl TestStore {
    /// A store under `dir` whose appends go through at once.
    pub(crate) fn at(dir: &Path) -> TestStore {
        TestStore {
            inner: LocalBackend::new(dir.join(".fleetform")),
            lists: AtomicUsize::new(0),
            reads: AtomicUsize::new(0),
            journals: AtomicUsize::new(0),
            fail: AtomicBool::new(false),
            gate: None,
        }
    }

    /// A store under `dir` whose appends wait at a gate; the receiver hears
    /// of each append (its record count), the sender opens the gate once.
    pub(crate) fn gated(dir: &Path) -> (TestStore, mpsc::Receiver<usize>, mpsc::Sender<()>) {
        let (entered, entries) = mpsc::channel();
        let (gate, open) = mpsc::channel();
        let store = TestStore {
            gate: Some(Gate {
                entered: Mutex::new(entered),
                open: Mutex::new(open),
            }),
            ..TestStore::at(dir)
        };
        (store, entries, gate)
    }
}

impl Backend for TestStore {
    fn latest(&self) -> Result<Option<u64>, StateError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.latest()
    }
    fn list(&self) -> Result<Vec<VersionSummary>, StateError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list()
    }
    fn read(&self, number: u64) -> Result<Version, StateError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(number)
    }
    fn write(&self, version: &Version) -> Result<(), StateError> {
        self.inner.write(version)
    }
    fn append_journal_records(&self, records: &[JournalRecord]) -> Result<(), StateError> {
        if let Some(gate) = &self.gate {
            let _ = gate.entered.lock().expect("entered").send(records.len());
            gate.open
                .lock()
                .expect("gate")
                .recv_timeout(Duration::from_secs(60))
                .expect("the test opens the gate");
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(StateError::Io {
                path: "journal.jsonl".into(),
                source: std::io::Error::other("disk full"),
            });
        }
        self.inner.append_journal_records(records)
    }
    fn journal(&self) -> Result<Vec<JournalRecord>, StateError> {
        self.journals.fetch_add(1, Ordering::SeqCst);
        self.inner.journal()
    }
    fn clear_journal(&self) -> Result<(), StateError> {
        self.inner.clear_journal()
    }
    fn lock(&self, holder: &str, ttl: i64, now: i64) -> Result<Lease, StateError> {
        self.inner.lock(holder, ttl, now)
    }
    fn renew(&self, lease: &mut Lease, ttl: i64, now: i64) -> Result<(), StateError> {
        self.inner.renew(lease, ttl, now)
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

//! fleetform's state store: recorded versions, the write-ahead journal and the
//! lease lock, all under one directory (by default `.fleetform/` beside the
//! configuration) or one S3 key prefix.
//!
//! What it owns:
//! - **versions** `N` ([`Version`]): the configuration snapshot, variables,
//!   plan, per-action outcomes and observation of every completed apply, one
//!   file each, never rewritten once written, plus a small index of
//!   [`VersionSummary`] so that `history` does not read every version;
//! - **the journal** ([`JournalRecord`]): one JSON line before and after every
//!   mutating cloud call, fsynced, so that a crashed apply is visible; the
//!   records of calls in flight together are appended in one write
//!   ([`Backend::append_journal_records`]);
//! - **the lease lock** ([`Lease`], [`LeaseInfo`]): who is applying, since
//!   when, until when; renewed while working, never taken while live
//!   (only broken on purpose, [`Backend::break_lock`] with `force`).
//!
//! What it must not do: talk to the cloud beyond storing its own objects (the
//! S3 backend calls S3 and nothing else), know what a plan or an observation
//! contains (they are stored as opaque [`serde_json::Value`]s), or decide
//! policy (which version is next, whether to break a lock, how long a lease
//! lasts: the caller decides and passes explicit times).
//!
//! Every file carries a `format_version`, and from format 2 on a SHA-256
//! checksum over its exact bytes (each journal record line has its own), so
//! that any change to a file after it was written, even a single flipped bit
//! that leaves valid JSON, is detected. A file that is empty, truncated, does
//! not parse or does not match its checksum is [`StateError::Corrupt`]; one
//! written by a newer fleetform is [`StateError::NewerFormat`]; both name the
//! file, and the store never overwrites or removes a file it could not read.
//! There is no silent repair: a damaged `index.json` is an error too (moving
//! it aside lets the store rebuild it from the version files, as it does for
//! a missing one). The one thing the checksums cannot tell from a crash is
//! damage that looks like one at the end of the journal (see
//! [`Backend::journal`]). Format-1 files, written before checksums, are still
//! read.
//!
//! A state file or directory whose mode lacks the owner-write bit makes the
//! state read-only: reading works, and every write is refused with
//! [`StateError::ReadOnly`] naming it before anything is changed, even for
//! root (whom permission bits do not stop).
//!
//! Two stores implement [`Backend`]: [`LocalBackend`] (a directory) and
//! [`S3Backend`] (objects in a bucket, locked by conditional writes). Their
//! layouts and locking protocols are described on each; they store the same
//! documents, byte for byte, and [`copy_versions`] moves a history between
//! them, verified by hashes.

#![deny(missing_docs)]

mod copy;
mod fsutil;
mod journal;
mod layout;
mod local;
mod s3;

pub use copy::{copy_versions, version_digest, CopiedVersion, CopyError};
pub use local::LocalBackend;
pub use s3::{S3Backend, S3Location};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The state format this build writes, and the newest it reads. Every state
/// file records the format of its writer; a larger number is refused with
/// [`StateError::NewerFormat`].
///
/// - format 1: plain JSON documents and journal lines;
/// - format 2: the same, each document and journal record line sealed with a
///   SHA-256 checksum (a format-2 file without one is corrupt). Format-1
///   files are still read; records appended to a format-1 journal stay
///   format 1, every other file this build writes is format 2.
pub const FORMAT_VERSION: u32 = 2;

/// The format of an S3 journal object that holds several records (a batch
/// written by [`Backend::append_journal_records`]), and the newest format of
/// an S3 journal object this build reads.
///
/// - format 3 (S3 journal objects only): `{"sha256":..,"format_version":3,
///   "records":[record, ...]}`, the records in the order they were appended.
///   Every other file, and an S3 journal object of one record, is still
///   written in format 2 ([`FORMAT_VERSION`]), so a fleetform that reads
///   format 2 reads everything except a batch, which it refuses as
///   [`StateError::NewerFormat`] naming the object (never skipping it).
pub const JOURNAL_BATCH_FORMAT: u32 = 3;

/// One recorded version of the fleet: everything needed to show, diff and
/// roll back to what a completed apply did. Written once, never modified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Version {
    /// The state format of the writer. [`Backend::write`] always records
    /// [`FORMAT_VERSION`] of this build, whatever this field holds.
    pub format_version: u32,
    /// The version number: 1, 2, 3, ... (chosen by the caller, unique).
    pub number: u64,
    /// When the version was recorded, in unix seconds.
    pub time: i64,
    /// The git commit of the configuration directory, if it is in a repository.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub git_dirty: bool,
    /// The caller identity (ARN from STS) that applied this version.
    pub caller: String,
    /// `Some(N)` when this version is a rollback to version `N`.
    pub rollback_of: Option<u64>,
    /// Configuration snapshot: path relative to the configuration directory -> file text,
    /// for the `*.hcl` files and the files they read (`file()`, `templatefile()`).
    pub sources: BTreeMap<String, String>,
    /// Variable values used, without the sensitive ones (the caller leaves them
    /// out; versions written before that recorded `(sensitive)` for them).
    pub variables: BTreeMap<String, String>,
    /// The plan that was applied (opaque to the state store).
    pub plan: serde_json::Value,
    /// The outcome of each action of the plan.
    pub outcomes: Vec<ActionOutcome>,
    /// The managed objects as observed after the apply (opaque to the state store).
    pub observed: serde_json::Value,
    /// Unified diff of `sources` against the previous version's sources.
    pub diff: String,
    /// The plan summary: `{add, change, destroy, launch, terminate, hourly_usd}`.
    pub summary: serde_json::Value,
    /// Region -> AMI ids that this version's configuration references (image protection).
    pub images: BTreeMap<String, Vec<String>>,
    /// What this version withheld because it derives from sensitive
    /// variables; `None` when the configuration had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitive: Option<SensitiveRecord>,
    /// Key pair name -> the worker types of this version's configuration that
    /// use it, so a later plan names who a key change touches (FF008).
    /// Empty in versions written before this field existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub key_pair_users: BTreeMap<String, Vec<String>>,
}

/// How a version tells which of its values were sensitive, without holding them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SensitiveRecord {
    /// Sensitive variable name -> a slow, salted digest of its value
    /// (argon2id, PHC string): tells whether a later value is the same.
    pub variables: BTreeMap<String, String>,
    /// Worker types whose user data derived from them (and was withheld).
    pub worker_types: Vec<String>,
}

/// What happened to one action of an applied plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionOutcome {
    /// Index of the action in the plan's action list.
    pub action: usize,
    /// Whether the action succeeded.
    pub ok: bool,
    /// The error, when it did not.
    pub error: Option<String>,
    /// Ids of the cloud objects the action created or touched.
    pub ids: Vec<String>,
}

/// The few fields of a [`Version`] that `history` shows; kept in the index so
/// that listing versions never reads the version files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSummary {
    /// See [`Version::number`].
    pub number: u64,
    /// See [`Version::time`].
    pub time: i64,
    /// See [`Version::git_commit`].
    pub git_commit: Option<String>,
    /// See [`Version::git_dirty`].
    pub git_dirty: bool,
    /// See [`Version::caller`].
    pub caller: String,
    /// See [`Version::rollback_of`].
    pub rollback_of: Option<u64>,
    /// See [`Version::summary`].
    pub summary: serde_json::Value,
    /// See [`Version::images`]: kept here so that plan learns which images
    /// recent versions protect (FF001) without reading every version file.
    /// `None` in index entries written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<BTreeMap<String, Vec<String>>>,
}

impl From<&Version> for VersionSummary {
    /// The summary of `version`: its fields copied, nothing computed.
    fn from(version: &Version) -> Self {
        VersionSummary {
            number: version.number,
            time: version.time,
            git_commit: version.git_commit.clone(),
            git_dirty: version.git_dirty,
            caller: version.caller.clone(),
            rollback_of: version.rollback_of,
            summary: version.summary.clone(),
            images: Some(version.images.clone()),
        }
    }
}

/// A journal record: written (and fsynced) before and after every mutating call.
///
/// On disk each record is one JSON line tagged by `"record"`, after a first
/// header line `{"format_version":2}`; in format 2 each line begins with its
/// checksum: `{"sha256":"<hex>","record":"intent",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum JournalRecord {
    /// An apply started: its id, the lock holder and how many actions it has.
    Begin {
        /// Identifies the apply; every later record of it repeats it.
        apply_id: String,
        /// Unix seconds.
        time: i64,
        /// The lease holder (`user@host:pid`).
        holder: String,
        /// Number of actions in the plan.
        actions: usize,
    },
    /// A mutating call is about to be made.
    Intent {
        /// See [`JournalRecord::Begin`].
        apply_id: String,
        /// Index of the action in the plan.
        action: usize,
        /// Address of the object acted on.
        address: String,
        /// AWS region of the call.
        region: String,
        /// Idempotency token sent with the call, so that a resumed apply can repeat it safely.
        client_token: String,
        /// Unix seconds.
        time: i64,
    },
    /// A mutating call returned.
    Outcome {
        /// See [`JournalRecord::Begin`].
        apply_id: String,
        /// Index of the action in the plan.
        action: usize,
        /// Whether the call succeeded.
        ok: bool,
        /// The error, when it did not.
        error: Option<String>,
        /// Ids of the objects created or touched.
        ids: Vec<String>,
        /// Unix seconds.
        time: i64,
    },
    /// The apply finished; `version` is the version recorded for it, if any.
    End {
        /// See [`JournalRecord::Begin`].
        apply_id: String,
        /// Unix seconds.
        time: i64,
        /// The version number recorded, if the apply recorded one.
        version: Option<u64>,
    },
}

/// Who holds the lock and until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// `user@host:pid` of the holder (see [`holder_id`]).
    pub holder: String,
    /// When the lease was taken, in unix seconds.
    pub started: i64,
    /// When the lease runs out unless renewed, in unix seconds.
    pub expires: i64,
}

impl LeaseInfo {
    /// True when the lease has run out at `now`: `now >= expires`. An expired
    /// lease still blocks [`Backend::lock`]; it may be broken with
    /// [`Backend::break_lock`] without `force`.
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires
    }
}

/// Everything that can go wrong in the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file or directory could not be read or written (permissions, disk full, ...).
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The state file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A remote state (S3) could not be read or written: the bucket, the
    /// credentials, the network or the service failed. Nothing was changed
    /// by the call that failed.
    #[error("cannot read or write {url}: {source}")]
    Remote {
        /// The state or object concerned, as an `s3://bucket/key/...` URL.
        url: String,
        /// What the service or the client said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A state file does not parse or does not hold what it should. It was left unchanged.
    #[error("{path} is corrupt or truncated: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A state file or directory is read-only (its mode lacks the owner-write
    /// bit), so the store refused to change it or anything in it; nothing
    /// was written. Reading a read-only state works.
    #[error(
        "{path} is read-only (mode {mode:04o}); fleetform changes nothing in a read-only state"
    )]
    ReadOnly {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A state file was written by a newer fleetform. It was left unchanged.
    #[error(
        "{path} has state format {found}, newer than this fleetform understands ({understood})"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its `format_version`.
        found: u32,
        /// The newest format this fleetform reads for such a file.
        understood: u32,
    },
    /// Another run holds the lock (possibly expired: check [`LeaseInfo::expired`]).
    #[error("the state is locked by {}", .0.holder)]
    Locked(LeaseInfo),
    /// No version with this number was recorded.
    #[error("version {0} does not exist")]
    NoSuchVersion(u64),
    /// A version with this number was already recorded; nothing was written.
    #[error("version {0} already exists")]
    VersionExists(u64),
    /// The lock was broken (and maybe taken by another run) since this lease was taken.
    #[error("the lease is no longer held by this process")]
    LeaseLost,
}

impl StateError {
    /// Whether the error is about a remote state: a [`StateError::Remote`]
    /// failure, or an object of an S3 state that is damaged, newer, or could
    /// not be encoded (named by its `s3://` URL, see [`S3Location::url`]).
    pub fn is_remote(&self) -> bool {
        match self {
            StateError::Remote { .. } => true,
            StateError::Io { path, .. }
            | StateError::Corrupt { path, .. }
            | StateError::NewerFormat { path, .. } => s3::is_url(path),
            StateError::ReadOnly { .. }
            | StateError::Locked(_)
            | StateError::NoSuchVersion(_)
            | StateError::VersionExists(_)
            | StateError::LeaseLost => false,
        }
    }

    /// The file (or directory) the error is about, if it names one
    /// (`Io`, `Corrupt`, `ReadOnly`, `NewerFormat`; a damaged S3 object by its URL).
    pub fn path(&self) -> Option<&Path> {
        match self {
            StateError::Io { path, .. }
            | StateError::Corrupt { path, .. }
            | StateError::ReadOnly { path, .. }
            | StateError::NewerFormat { path, .. } => Some(path),
            StateError::Remote { .. }
            | StateError::Locked(_)
            | StateError::NoSuchVersion(_)
            | StateError::VersionExists(_)
            | StateError::LeaseLost => None,
        }
    }
}

/// A held lock. Renew it while working ([`Backend::renew`]); dropping it does
/// NOT release the lock (like a crash: the lease stays until it expires and
/// is broken); call [`Backend::release`].
#[derive(Debug)]
#[must_use = "a lease is only released by Backend::release"]
pub struct Lease {
    pub(crate) info: LeaseInfo,
    /// Private identity of this lease, recorded in the lock file; a lease is
    /// "still ours" only while the lock file carries it.
    pub(crate) token: String,
}

impl Lease {
    /// Holder, start and current expiry of this lease (updated by a successful renew).
    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }
}

/// A state store. Times are always passed in by the caller (unix seconds), so
/// that the store decides nothing by the clock.
///
/// Common to every method: a file that cannot be read is `Corrupt` or
/// `NewerFormat` naming it, and a method that writes refuses, before writing
/// anything, a read-only state (`ReadOnly` naming the file or directory).
/// No method overwrites or removes a file it could not read, except
/// [`Backend::break_lock`] with `force`, which moves an unreadable lock file
/// aside (its bytes kept).
pub trait Backend: Send + Sync {
    /// The highest recorded version number, or `None` when no version exists.
    fn latest(&self) -> Result<Option<u64>, StateError>;
    /// Summaries of all versions, ascending by number. Reads the index, not
    /// the version files (except those it does not list). A damaged index is
    /// `Corrupt` naming it, never silently rebuilt; a missing one is rebuilt
    /// (in memory) from the version files.
    fn list(&self) -> Result<Vec<VersionSummary>, StateError>;
    /// Version `number`: `NoSuchVersion` if it was never written, `Corrupt`
    /// or `NewerFormat` naming its file if it cannot be read.
    fn read(&self, number: u64) -> Result<Version, StateError>;
    /// Records `version`. Refuses an existing number (`VersionExists`, the
    /// existing file untouched), and a damaged or newer index (nothing
    /// written). Atomic: a crash leaves the version complete or absent.
    /// Files are mode 0600.
    fn write(&self, version: &Version) -> Result<(), StateError>;
    /// Appends one record to the journal and fsyncs it before returning:
    /// [`Backend::append_journal_records`] of that one record.
    fn append_journal(&self, record: &JournalRecord) -> Result<(), StateError> {
        self.append_journal_records(std::slice::from_ref(record))
    }
    /// Appends `records`, in order, to the journal with one write, durable
    /// (fsynced, or stored by S3) before it returns `Ok`; nothing to do for
    /// none. Checks only the journal's header and last line (the full check
    /// is [`Backend::journal`]); a torn last line is cut first.
    ///
    /// As far as a caller that waits for `Ok` is concerned, a batch is all or
    /// nothing: before `Ok` no record of it may be relied on, after it every
    /// one is read back by [`Backend::journal`], in order, after every record
    /// appended before. An error or a crash before `Ok` may still leave some
    /// of the batch in the journal: on S3 none or all of it (one object); in
    /// a local journal, a first part of its lines, the last one possibly
    /// torn (read and cut by the torn-last-line rule, as a crash in a
    /// one-line append). A record found there without the batch's `Ok` only
    /// says that its call may have been made, which is what an intent says
    /// anyway: the caller makes no call of a batch before `Ok`.
    fn append_journal_records(&self, records: &[JournalRecord]) -> Result<(), StateError>;
    /// All records of the current journal, in order. An empty journal file,
    /// or one without a whole header line, is `Corrupt` (a journal is created
    /// with its header and first record at once). A torn last line (no final
    /// newline, not an intact record: a crash mid-write) is ignored; any
    /// other bad line, or a record whose checksum does not match, is
    /// `Corrupt`. The torn-line rule is the one place damage can pass for a
    /// crash: a flipped bit in the file's final newline drops the last
    /// record, and a journal truncated inside a line loses that line (at a
    /// line boundary, it reads as a shorter journal).
    fn journal(&self) -> Result<Vec<JournalRecord>, StateError>;
    /// Empties the journal (after a completed apply is recorded). Refuses a
    /// journal it cannot read.
    fn clear_journal(&self) -> Result<(), StateError>;
    /// Ends the journal with `end` and empties it (after a completed apply
    /// is recorded): as [`Backend::append_journal`] of `end` (its failure
    /// ignored) then [`Backend::clear_journal`], whose result this is. A
    /// store may write `end` beside the first part of its clear, as long
    /// as a crash at any point leaves the journal's last apply ended, or
    /// no apply at all, once either has happened, and the journal empty
    /// once this returns `Ok`.
    fn end_journal(&self, end: &JournalRecord) -> Result<(), StateError> {
        let _ = self.append_journal(end);
        self.clear_journal()
    }
    /// Records `version` ([`Backend::write`]), and only once that is done
    /// ends the journal with `end` and empties it
    /// ([`Backend::end_journal`]): the outer error is the write's (the
    /// journal unchanged), the inner one the end's. A store may read the
    /// journal beside the last part of the write, never change it before.
    fn record(
        &self,
        version: &Version,
        end: &JournalRecord,
    ) -> Result<Result<(), StateError>, StateError> {
        self.write(version)?;
        Ok(self.end_journal(end))
    }
    /// Takes the lock for `holder` until `now + ttl_secs`. Exclusive across
    /// processes; never waits: a lock held by anyone (even expired) is
    /// `Err(Locked(info))`, and a lock file that cannot be read is `Corrupt`
    /// or `NewerFormat` (never replaced). The local store first checks that
    /// the state can be written at all (its directory, index, journal and
    /// versions directory are not read-only), so that a caller holding the
    /// lock knows it will be able to record what it does; the S3 store
    /// cannot know its permissions before it writes, and taking the lock is
    /// its first write.
    fn lock(&self, holder: &str, ttl_secs: i64, now: i64) -> Result<Lease, StateError>;
    /// Extends `lease` to `now + ttl_secs`, only if the lock is still this
    /// lease; otherwise `LeaseLost` and the lock file is left as it is.
    fn renew(&self, lease: &mut Lease, ttl_secs: i64, now: i64) -> Result<(), StateError>;
    /// Releases `lease`; `LeaseLost` (and nothing removed) if it is no longer the lock.
    fn release(&self, lease: Lease) -> Result<(), StateError>;
    /// The current lock, if any (expired or not).
    fn lease(&self) -> Result<Option<LeaseInfo>, StateError>;
    /// Removes an expired lock (or, with `force`, any lock) and returns whose
    /// it was; `Ok(None)` when there was none. A live lock without `force` is
    /// `Err(Locked(info))` and stays.
    ///
    /// A lock file that cannot be read (`Corrupt`, `NewerFormat`) may be
    /// held by anyone: without `force` that error is returned and the file
    /// stays. With `force` it is moved aside, bytes untouched, to a sibling
    /// named `lock.json.unreadable.*` (local store), and the returned
    /// [`LeaseInfo`] says so: its `holder` names the unreadable file and
    /// where it was kept, its `started` and `expires` are `now` (unknown).
    fn break_lock(&self, force: bool, now: i64) -> Result<Option<LeaseInfo>, StateError>;
}

/// `user@host:pid` of this process: the user from `USER` (or `LOGNAME`, or the
/// password database), the host from `/proc/sys/kernel/hostname` (or
/// `HOSTNAME`), never empty.
pub fn holder_id() -> String {
    format!("{}@{}:{}", user_name(), host_name(), std::process::id())
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn user_name() -> String {
    if let Some(user) = non_empty_env("USER").or_else(|| non_empty_env("LOGNAME")) {
        return user;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata("/proc/self") {
            let uid = meta.uid();
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            let name = passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let uid_field = fields.nth(1)?;
                (uid_field.parse::<u32>().ok()? == uid).then(|| name.to_string())
            });
            return name.unwrap_or_else(|| format!("uid{uid}"));
        }
    }
    "unknown".to_string()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| non_empty_env("HOSTNAME"))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The current time in unix seconds (negative before 1970).
pub fn now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The JSON Schema of a version file ([`Version`], plus the `sha256`
/// checksum member that format-2 files carry first), pretty-printed, ending
/// in `'\n'`.
pub fn state_schema() -> String {
    let mut schema = schemars::schema_for!(Version);
    if let Some(properties) = schema
        .as_object_mut()
        .and_then(|s| s.get_mut("properties"))
        .and_then(serde_json::Value::as_object_mut)
    {
        properties.insert(
            "sha256".to_string(),
            serde_json::json!({
                "description": "Format 2 and later: lowercase hex SHA-256 of the file's bytes after this member's line (the file begins `{\n  \"sha256\": \"<hex>\",\n`). Absent in format 1.",
                "type": "string",
                "pattern": "^[0-9a-f]{64}$"
            }),
        );
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_of_the_expiry_second() {
        let info = LeaseInfo {
            holder: "a@b:1".into(),
            started: 100,
            expires: 160,
        };
        assert!(!info.expired(159));
        assert!(info.expired(160));
        assert!(info.expired(10_000));
    }

    #[test]
    fn errors_name_their_file() {
        let io = StateError::Io {
            path: "/s/index.json".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(io.path(), Some(Path::new("/s/index.json")));
        assert!(io
            .to_string()
            .starts_with("cannot read or write /s/index.json: "));
        let newer = StateError::NewerFormat {
            path: "/s/versions/000001.json".into(),
            found: 7,
            understood: FORMAT_VERSION,
        };
        assert_eq!(
            newer.to_string(),
            "/s/versions/000001.json has state format 7, newer than this fleetform understands (2)"
        );
        let locked = StateError::Locked(LeaseInfo {
            holder: "x@y:1".into(),
            started: 0,
            expires: 1,
        });
        assert_eq!(locked.to_string(), "the state is locked by x@y:1");
        let read_only = StateError::ReadOnly {
            path: "/s/.fleetform".into(),
            mode: 0o555,
        };
        assert_eq!(read_only.path(), Some(Path::new("/s/.fleetform")));
        assert_eq!(
            read_only.to_string(),
            "/s/.fleetform is read-only (mode 0555); fleetform changes nothing in a read-only state"
        );
        assert_eq!(locked.path(), None);
        assert_eq!(StateError::LeaseLost.path(), None);
    }

    #[test]
    fn remote_errors_carry_their_url() {
        let remote = StateError::Remote {
            url: "s3://b/k/index.json".into(),
            source: "NoSuchBucket".into(),
        };
        assert_eq!(
            remote.to_string(),
            "cannot read or write s3://b/k/index.json: NoSuchBucket"
        );
        assert!(remote.is_remote());
        assert_eq!(remote.path(), None);
        let damaged = StateError::Corrupt {
            path: "s3://b/k/journal/1.json".into(),
            reason: "not json".into(),
        };
        assert!(damaged.is_remote());
        let local = StateError::Corrupt {
            path: "/s/index.json".into(),
            reason: "not json".into(),
        };
        assert!(!local.is_remote());
    }

    #[test]
    fn holder_id_is_user_at_host_colon_pid() {
        let id = holder_id();
        let (user, rest) = id.split_once('@').expect("an @");
        let (host, pid) = rest.rsplit_once(':').expect("a :");
        assert!(!user.is_empty() && !host.is_empty());
        assert_eq!(pid, std::process::id().to_string());
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now() > 1_577_836_800);
    }

    #[test]
    fn state_schema_is_json_describing_a_version() {
        let text = state_schema();
        assert!(text.ends_with('\n'));
        let schema: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let properties = schema["properties"].as_object().expect("properties");
        for field in [
            "format_version",
            "number",
            "sources",
            "plan",
            "outcomes",
            "images",
            "sha256",
        ] {
            assert!(properties.contains_key(field), "{field} in the schema");
        }
    }
}

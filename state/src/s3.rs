//! The S3 backend: the same store as [`crate::LocalBackend`], kept as
//! objects in one bucket under one key prefix, locked by conditional writes
//! (no DynamoDB).

use crate::fsutil::{corrupt, decode, decode_upto, encode, lease_token, unique_suffix};
use crate::layout::{version_file_name, version_number_of, IndexFile, LockFile};
use crate::{
    Backend, JournalRecord, Lease, LeaseInfo, StateError, Version, VersionSummary, FORMAT_VERSION,
    JOURNAL_BATCH_FORMAT,
};
use aws_config::SdkConfig;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// Where an S3 state lives: `backend "s3" { bucket key region }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket (it must exist; fleetform never creates buckets).
    pub bucket: String,
    /// The key prefix every state object lives under, without leading or
    /// trailing slash (e.g. `fleet/state`).
    pub key: String,
    /// The bucket's region; `None` for the standard AWS resolution
    /// (`AWS_REGION`, profile), then `us-east-1`.
    pub region: Option<String>,
}

impl S3Location {
    /// `s3://bucket/key`, the name errors and messages use for this state.
    pub fn url(&self) -> String {
        format!("{SCHEME}{}/{}", self.bucket, self.key)
    }
}

/// How the URL of an S3 state and of its objects begins.
const SCHEME: &str = "s3://";

/// Whether `path` names an object of an S3 state (an [`S3Location::url`]
/// or below it), as the errors of [`S3Backend`] name objects.
pub(crate) fn is_url(path: &Path) -> bool {
    path.to_string_lossy().starts_with(SCHEME)
}

/// Journal records fetched at once when the journal is read.
const JOURNAL_READS_IN_FLIGHT: usize = 32;

/// The state store in an S3 bucket, under a key prefix `K`.
///
/// Layout (the same version, index and lock documents as
/// [`crate::LocalBackend`], byte for byte; the journal is one object per
/// record instead of one file of lines):
///
/// | object | holds |
/// |---|---|
/// | `K/versions/NNNNNN.json` | one [`Version`]; created with `If-None-Match: *`, never rewritten |
/// | `K/index.json` | the [`VersionSummary`] list, replaced after each version write with `If-Match` on the ETag it was read with (`If-None-Match: *` when there was none) |
/// | `K/journal/NNNNNNNNNN.json` | one append: a [`JournalRecord`] (format 2), or a batch of them (`"records"`, format [`JOURNAL_BATCH_FORMAT`]); numbered in order, each created with `If-None-Match: *` |
/// | `K/lock.json` | the lease: holder, start, expiry and a private token |
///
/// Every object is a sealed document (see the crate docs): a SHA-256 of its
/// bytes comes first, so any damaged object is `Corrupt`, named by its
/// `s3://bucket/K/...` URL, and never overwritten or removed.
///
/// **Lock.** `lock` creates `lock.json` with `If-None-Match: *`: S3 lets
/// exactly one of racing creators succeed, the others get 412 and read
/// whose lock it is (`Locked`). `renew` reads the lock, checks its token and
/// writes the new expiry with `If-Match` on the ETag it read; `release` and
/// `break_lock` delete with `If-Match` the same way. So nothing replaces or
/// removes a lock that changed since it was read: a lease renewed, broken
/// or re-taken meanwhile is never lost or stolen by a stale decision.
/// Expiry, holder and `force` mean what they mean locally; an unreadable
/// lock is copied to `lock.json.unreadable.*` before it is removed.
///
/// **Retries.** A conditional write retried after a lost answer can fail its
/// own condition (the first attempt did succeed). Every such failure is
/// checked by reading the object back: finding the very bytes this call
/// wrote is success.
///
/// **Journal.** Records are numbered by this process (the next number is
/// found by listing once); only the lock holder appends, and a number taken
/// meanwhile by someone else is detected by the conditional create and
/// skipped. An append is one object, written whole or not at all, so there
/// is no torn last line: one record is an object of format 2 as ever, a
/// batch ([`Backend::append_journal_records`] of several records) one
/// object of format [`JOURNAL_BATCH_FORMAT`] holding them in order. The
/// journal reads objects in number order and a batch's records in its
/// order; objects of both kinds may be mixed.
/// An object listed with the ETag this store wrote or read it with is not
/// read again (S3 gives a rewritten object a new ETag), so an apply's
/// clear reads only what changed or what another writer appended.
///
/// The store speaks the synchronous [`Backend`] interface from any thread,
/// including async tasks (no runtime is entered there): requests run on a
/// private thread of its own, and the calling thread blocks until the
/// answer. Async callers with many requests in flight call it from
/// blocking threads.
///
/// Expiry compares the caller's clock with the holder's: machines sharing a
/// bucket need clocks in step (NTP) for `unlock` without `--force` to judge
/// a lease as its holder does.
pub struct S3Backend {
    inner: Arc<Inner>,
    worker: Worker,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("url", &self.inner.location.url())
            .finish()
    }
}

impl S3Backend {
    /// Prepares a client for `location` from the SDK configuration that
    /// `config` resolves (credentials, region, endpoint, retries, time
    /// limits: the caller's, e.g. `fleetform_aws::sdk_config`), awaited on
    /// the store's own I/O thread. The block's region, when set, overrides
    /// the configuration's; a custom endpoint is addressed path-style.
    /// Nothing is read or written yet: a missing bucket or a permission
    /// problem shows at the first request, naming the object. A
    /// configuration that cannot be had is an error naming the state URL.
    pub fn connect(
        location: S3Location,
        config: impl Future<Output = Result<SdkConfig, String>> + Send + 'static,
    ) -> Result<S3Backend, StateError> {
        let root = location.url();
        let failed = |why: String| StateError::Remote {
            url: root.clone(),
            source: why.into(),
        };
        let worker = Worker::start().map_err(|e| failed(format!("cannot start S3 I/O: {e}")))?;
        let config = worker
            .run(config)
            .ok_or_else(|| failed("the S3 I/O thread stopped".into()))?
            .map_err(failed)?;
        let mut s3 = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some());
        if let Some(region) = &location.region {
            s3 = s3.region(Region::new(region.clone()));
        }
        Ok(S3Backend {
            inner: Arc::new(Inner {
                client: Client::from_conf(s3.build()),
                location,
                next_record: Mutex::new(None),
                known: Mutex::new(Known::default()),
            }),
            worker,
        })
    }

    /// The state's location.
    pub fn location(&self) -> &S3Location {
        &self.inner.location
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Arc<Inner>) -> Pin<Box<dyn Future<Output = Result<T, StateError>> + Send>>,
    ) -> Result<T, StateError> {
        let job = work(Arc::clone(&self.inner));
        self.worker.run(job).unwrap_or_else(|| {
            Err(StateError::Remote {
                url: self.inner.location.url(),
                source: "the S3 I/O thread stopped".into(),
            })
        })
    }
}

impl Backend for S3Backend {
    fn latest(&self) -> Result<Option<u64>, StateError> {
        self.run(|s| Box::pin(async move { Ok(s.summaries().await?.0.last().map(|v| v.number)) }))
    }

    fn list(&self) -> Result<Vec<VersionSummary>, StateError> {
        self.run(|s| Box::pin(async move { Ok(s.summaries().await?.0) }))
    }

    fn read(&self, number: u64) -> Result<Version, StateError> {
        self.run(move |s| Box::pin(async move { s.read(number).await }))
    }

    fn write(&self, version: &Version) -> Result<(), StateError> {
        let version = version.clone();
        self.run(move |s| Box::pin(async move { s.write(&version).await }))
    }

    /// One object: a one-record object for one record, a batch object for
    /// several; no request for none.
    fn append_journal_records(&self, records: &[JournalRecord]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.run(move |s| Box::pin(async move { s.append_journal(&records).await.map(drop) }))
    }

    fn journal(&self) -> Result<Vec<JournalRecord>, StateError> {
        self.run(|s| {
            Box::pin(async move { Ok(s.journal().await?.into_iter().map(|(_, r)| r).collect()) })
        })
    }

    fn clear_journal(&self) -> Result<(), StateError> {
        self.run(|s| Box::pin(async move { s.clear_journal(None).await }))
    }

    /// `end` written beside the request that removes the objects holding
    /// a `begin` record, then the rest removed with it: one round trip
    /// fewer than an append before the clear, and a crash between them
    /// leaves the apply ended or gone, never open.
    fn end_journal(&self, end: &JournalRecord) -> Result<(), StateError> {
        let end = end.clone();
        self.run(move |s| Box::pin(async move { s.clear_journal(Some(end)).await }))
    }

    /// The journal listed beside the replacement of the index, once the
    /// version's object is written (a read: the journal changes only once
    /// the write is done), then [`Backend::end_journal`] as above.
    fn record(
        &self,
        version: &Version,
        end: &JournalRecord,
    ) -> Result<Result<(), StateError>, StateError> {
        let (version, end) = (version.clone(), end.clone());
        self.run(move |s| Box::pin(async move { s.record(&version, end).await }))
    }

    fn lock(&self, holder: &str, ttl_secs: i64, now: i64) -> Result<Lease, StateError> {
        let holder = holder.to_string();
        self.run(move |s| Box::pin(async move { s.lock(holder, ttl_secs, now).await }))
    }

    fn renew(&self, lease: &mut Lease, ttl_secs: i64, now: i64) -> Result<(), StateError> {
        let token = lease.token.clone();
        let info =
            self.run(move |s| Box::pin(async move { s.renew(token, ttl_secs, now).await }))?;
        lease.info = info;
        Ok(())
    }

    fn release(&self, lease: Lease) -> Result<(), StateError> {
        self.run(move |s| Box::pin(async move { s.release(lease.token).await }))
    }

    fn lease(&self) -> Result<Option<LeaseInfo>, StateError> {
        self.run(|s| Box::pin(async move { Ok(s.read_lock().await?.map(|(file, _)| file.info())) }))
    }

    fn break_lock(&self, force: bool, now: i64) -> Result<Option<LeaseInfo>, StateError> {
        self.run(move |s| Box::pin(async move { s.break_lock(force, now).await }))
    }
}

/// A future run on the I/O thread.
type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A thread with its own async runtime, on which every S3 request runs: the
/// [`Backend`] interface is synchronous and is called from inside async
/// tasks, where blocking on another runtime's future is not allowed. The
/// thread ends when the store is dropped.
struct Worker {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl Worker {
    fn start() -> std::io::Result<Worker> {
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let (ready, started) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
        std::thread::Builder::new()
            .name("fleetform-s3".into())
            .spawn(move || {
                // Built (and dropped) on this thread, never in a caller's
                // async context.
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                runtime.block_on(async move {
                    // Each job runs as its own task, so calls from several
                    // threads (journal records of parallel actions) overlap.
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
            })?;
        started
            .recv()
            .map_err(|_| std::io::Error::other("the S3 I/O thread did not start"))??;
        Ok(Worker { jobs })
    }

    /// Runs `future` on the I/O thread and waits for its output; `None` if
    /// the thread is gone.
    fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            let _ = answer.send(future.await);
        });
        self.jobs.send(job).ok()?;
        answered.recv().ok()
    }
}

/// An object as read: its bytes and ETag.
struct Object {
    bytes: Vec<u8>,
    etag: Option<String>,
}

/// What a write must find for it to happen.
enum Condition {
    /// The object must not exist (`If-None-Match: *`).
    Absent,
    /// The object must have this ETag (`If-Match`).
    Matches(String),
}

/// Whether a conditional request happened.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// The condition did not hold (412), or a concurrent conditional write
    /// to the same key won (409): nothing was changed by this request.
    ConditionFailed,
    /// A conditional delete found no object (removed by someone else, or by
    /// an earlier attempt of the same request whose answer was lost).
    Gone,
}

/// The store's state shared with the I/O thread.
struct Inner {
    client: Client,
    location: S3Location,
    /// The number of the next journal record, once known (from a listing:
    /// an append's own, or a read of the journal's).
    next_record: Mutex<Option<u64>>,
    /// What this store last read of the lock (see [`Known`]).
    known: Mutex<Known>,
}

/// What a store remembers of its own reads: the lock's ETag when last
/// read holding a token, and the version list with the index's ETag as
/// last read. A release goes by the first (`If-Match`), the next version
/// write by the second (`If-None-Match` on the version, `If-Match` on the
/// index's ETag), so a stale memory only costs the read it would have
/// made anyway.
#[derive(Default)]
struct Known {
    /// (token, ETag) of the lock as last read.
    lock: Option<(String, String)>,
    /// The summaries and the index's ETag as last read, until a write
    /// takes them (a failed read forgets them).
    index: Option<(Vec<VersionSummary>, Option<String>)>,
    /// Journal objects this store wrote or read and decoded: name ->
    /// (ETag, records). A listing that shows the same ETag needs no read
    /// of the object: it holds the bytes this store checked (S3 gives an
    /// object a new ETag whenever it is written).
    journal: std::collections::HashMap<String, (String, Vec<JournalRecord>)>,
}

/// The status and error code of a failed request, and its description.
fn failure<E>(
    error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Option<u16>, Option<String>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|r| r.status().as_u16());
    let code = error.code().map(str::to_string);
    (status, code, DisplayErrorContext(error).to_string())
}

impl Inner {
    /// The key of state object `name` (e.g. `versions/000001.json`).
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.location.key)
    }

    /// `s3://bucket/K/name`: how errors name the object.
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{name}", self.location.url()))
    }

    fn io(&self, name: &str, why: impl Into<String>) -> StateError {
        let why: String = why.into();
        StateError::Remote {
            url: format!("{}/{name}", self.location.url()),
            source: why.into(),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Object>, StateError> {
        let answer = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.key(name))
            .send()
            .await;
        let output = match answer {
            Ok(output) => output,
            Err(e) => {
                let (status, code, text) = failure(&e);
                if code.as_deref() == Some("NoSuchKey") || (status == Some(404) && code.is_none()) {
                    return Ok(None);
                }
                return Err(self.io(name, text));
            }
        };
        let etag = output.e_tag().map(str::to_string);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| self.io(name, format!("reading the object failed: {e}")))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { bytes, etag }))
    }

    async fn put(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<Outcome, StateError> {
        Ok(self.put_tagged(name, bytes, condition).await?.0)
    }

    /// [`Inner::put`], and the ETag S3 gave the object when it was written.
    async fn put_tagged(
        &self,
        name: &str,
        bytes: Vec<u8>,
        condition: Condition,
    ) -> Result<(Outcome, Option<String>), StateError> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(self.key(name))
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        let must_exist = matches!(condition, Condition::Matches(_));
        request = match condition {
            Condition::Absent => request.if_none_match("*"),
            Condition::Matches(etag) => request.if_match(etag),
        };
        match request.send().await {
            Ok(output) => Ok((Outcome::Done, output.e_tag().map(str::to_string))),
            Err(e) => {
                let (status, code, text) = failure(&e);
                match status {
                    Some(409 | 412) => Ok((Outcome::ConditionFailed, None)),
                    // S3 answers `If-Match` on a missing key with 404.
                    Some(404) if must_exist && code.as_deref() != Some("NoSuchBucket") => {
                        Ok((Outcome::ConditionFailed, None))
                    }
                    _ => Err(self.io(name, text)),
                }
            }
        }
    }

    /// Deletes `name` if its ETag is `etag`. An object already gone is `Gone`.
    async fn delete_if(&self, name: &str, etag: &str) -> Result<Outcome, StateError> {
        let answer = self
            .client
            .delete_object()
            .bucket(&self.location.bucket)
            .key(self.key(name))
            .if_match(etag)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Outcome::Done),
            Err(e) => {
                let (status, code, text) = failure(&e);
                match status {
                    Some(409 | 412) => Ok(Outcome::ConditionFailed),
                    Some(404) if code.as_deref() != Some("NoSuchBucket") => Ok(Outcome::Gone),
                    _ => Err(self.io(name, text)),
                }
            }
        }
    }

    /// What this store remembers of its reads and writes.
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names (relative to the prefix) of the objects under `dir/`.
    async fn list(&self, dir: &str) -> Result<Vec<String>, StateError> {
        Ok(self
            .list_tagged(dir)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Names (relative to the prefix) of the objects under `dir/`, each
    /// with its ETag as listed.
    async fn list_tagged(&self, dir: &str) -> Result<Vec<(String, Option<String>)>, StateError> {
        let prefix = self.key(&format!("{dir}/"));
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(&prefix)
            .into_paginator()
            .send();
        let mut names = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.io(dir, failure(&e).2))?;
            for object in page.contents() {
                if let Some(rest) = object
                    .key()
                    .and_then(|k| k.strip_prefix(&format!("{}/", self.location.key)))
                {
                    names.push((rest.to_string(), object.e_tag().map(str::to_string)));
                }
            }
        }
        Ok(names)
    }

    /// Whether the object `name` now holds exactly `bytes`: how a
    /// conditional write that failed its condition learns that it had, in
    /// fact, succeeded on an earlier attempt whose answer was lost.
    async fn holds(&self, name: &str, bytes: &[u8]) -> Result<bool, StateError> {
        Ok(self.get(name).await?.is_some_and(|o| o.bytes == bytes))
    }

    // ---- versions ----

    fn version_name(number: u64) -> String {
        format!("versions/{}", version_file_name(number))
    }

    /// The index as stored (`None` when there is none) and its ETag.
    async fn read_index(
        &self,
    ) -> Result<(Option<Vec<VersionSummary>>, Option<String>), StateError> {
        let Some(object) = self.get("index.json").await? else {
            return Ok((None, None));
        };
        let path = self.path("index.json");
        let index: IndexFile = decode(&path, &object.bytes)?;
        let mut seen = BTreeSet::new();
        if let Some(dup) = index.versions.iter().find(|s| !seen.insert(s.number)) {
            return Err(corrupt(
                &path,
                format!("version {} is listed twice", dup.number),
            ));
        }
        Ok((Some(index.versions), object.etag))
    }

    /// All summaries, ascending (the index, or the version objects when it
    /// is missing, plus versions it does not list), and the index's ETag;
    /// remembered for the next version write.
    async fn summaries(&self) -> Result<(Vec<VersionSummary>, Option<String>), StateError> {
        let read = self.read_summaries().await;
        self.known().index = read.as_ref().ok().cloned();
        read
    }

    async fn read_summaries(&self) -> Result<(Vec<VersionSummary>, Option<String>), StateError> {
        // The listing and the index, at once: neither depends on the other.
        let (listed, index) = tokio::join!(self.list("versions"), self.read_index());
        let stored: BTreeSet<u64> = listed?
            .iter()
            .filter_map(|name| name.strip_prefix("versions/").and_then(version_number_of))
            .collect();
        let (index, etag) = index?;
        let mut summaries = index.unwrap_or_default();
        let indexed: BTreeSet<u64> = summaries.iter().map(|s| s.number).collect();
        for number in stored.difference(&indexed) {
            summaries.push(VersionSummary::from(&self.read(*number).await?));
        }
        summaries.sort_by_key(|s| s.number);
        Ok((summaries, etag))
    }

    async fn read(&self, number: u64) -> Result<Version, StateError> {
        let name = Self::version_name(number);
        let Some(object) = self.get(&name).await? else {
            let indexed = matches!(
                self.read_index().await,
                Ok((Some(list), _)) if list.iter().any(|s| s.number == number)
            );
            return Err(if indexed {
                self.io(&name, "the object is missing, though index.json lists it")
            } else {
                StateError::NoSuchVersion(number)
            });
        };
        let path = self.path(&name);
        let version: Version = decode(&path, &object.bytes)?;
        if version.number != number {
            return Err(corrupt(
                &path,
                format!("it holds version {} instead", version.number),
            ));
        }
        Ok(version)
    }

    async fn write(&self, version: &Version) -> Result<(), StateError> {
        let known = self.write_object(version).await?;
        self.write_index(version, known).await
    }

    /// Records `version`, then ends the journal with `end` and empties it:
    /// once the version's object is written, the journal is listed (and
    /// read where not known) beside the replacement of the index; nothing
    /// of it changes before the write is done.
    async fn record(
        self: &Arc<Self>,
        version: &Version,
        end: JournalRecord,
    ) -> Result<Result<(), StateError>, StateError> {
        let known = self.write_object(version).await?;
        let (indexed, listed) = tokio::join!(self.write_index(version, known), self.journal());
        indexed?;
        Ok(self.end_listed(listed, Some(end)).await)
    }

    /// Writes `version`'s object, and returns the list (and the index's
    /// ETag) the index is to be replaced from.
    async fn write_object(
        &self,
        version: &Version,
    ) -> Result<(Vec<VersionSummary>, Option<String>), StateError> {
        // The list as last read, if it was (an apply reads it again once
        // its changes are made, beside its observation of EC2): the
        // conditions below make a stale one cost a retry, never a lost
        // version or index.
        let remembered = self.known().index.take();
        let (summaries, etag) = match remembered {
            Some(known) => known,
            None => self.read_summaries().await?,
        };
        if summaries.iter().any(|s| s.number == version.number) {
            return Err(StateError::VersionExists(version.number));
        }
        let name = Self::version_name(version.number);
        let path = self.path(&name);
        let mut value = serde_json::to_value(version)
            .map_err(|e| self.io(&name, format!("cannot encode the version: {e}")))?;
        value["format_version"] = FORMAT_VERSION.into();
        let bytes = encode(&path, &value)?;
        if self.put(&name, bytes.clone(), Condition::Absent).await? == Outcome::ConditionFailed
            && !self.holds(&name, &bytes).await?
        {
            return Err(StateError::VersionExists(version.number));
        }
        Ok((summaries, etag))
    }

    /// Replaces the index with `known` (the list and the ETag it was read
    /// with) and `version`, once `version`'s object is written.
    async fn write_index(
        &self,
        version: &Version,
        known: (Vec<VersionSummary>, Option<String>),
    ) -> Result<(), StateError> {
        // The index is replaced only if it is still what was read; a writer
        // that raced this one makes it read again (its version included).
        let mut known = known;
        for _ in 0..5 {
            let (mut summaries, etag) = known;
            if !summaries.iter().any(|s| s.number == version.number) {
                summaries.push(VersionSummary::from(version));
                summaries.sort_by_key(|s| s.number);
            }
            let index = IndexFile {
                format_version: FORMAT_VERSION,
                versions: summaries,
            };
            let bytes = encode(&self.path("index.json"), &index)?;
            let condition = etag.map_or(Condition::Absent, Condition::Matches);
            if self.put("index.json", bytes.clone(), condition).await? == Outcome::Done
                || self.holds("index.json", &bytes).await?
            {
                return Ok(());
            }
            known = self.read_summaries().await?;
        }
        // The version object is written, and listing finds a version the
        // index lacks: it is recorded; the next write brings the index up.
        Ok(())
    }

    // ---- journal ----

    fn record_name(number: u64) -> String {
        format!("journal/{number:010}.json")
    }

    /// The journal's objects with their numbers and listed ETags, ascending.
    async fn record_names(&self) -> Result<Vec<(u64, String, Option<String>)>, StateError> {
        let mut numbered: Vec<(u64, String, Option<String>)> = self
            .list_tagged("journal")
            .await?
            .into_iter()
            .filter_map(|(name, etag)| {
                let stem = name.strip_prefix("journal/")?.strip_suffix(".json")?;
                let number = stem.parse::<u64>().ok()?;
                (Self::record_name(number) == name).then_some((number, name, etag))
            })
            .collect();
        numbered.sort();
        Ok(numbered)
    }

    /// The object of one append: one record is a record object of format
    /// 2 (what every earlier fleetform wrote and reads), several are a
    /// batch object of format [`JOURNAL_BATCH_FORMAT`].
    fn encode_records(&self, name: &str, records: &[JournalRecord]) -> Result<Vec<u8>, StateError> {
        let encoding =
            |e: serde_json::Error| self.io(name, format!("cannot encode the record: {e}"));
        let mut value = match records {
            [one] => serde_json::to_value(one).map_err(encoding)?,
            several => serde_json::json!({
                "records": serde_json::to_value(several).map_err(encoding)?,
            }),
        };
        let format = if records.len() == 1 {
            FORMAT_VERSION
        } else {
            JOURNAL_BATCH_FORMAT
        };
        if let Some(object) = value.as_object_mut() {
            object.insert("format_version".into(), format.into());
        }
        encode(&self.path(name), &value)
    }

    /// The records of a journal object, in order: a record object (format 1
    /// or 2) or a batch object (format 3, `records`, at least one). A batch
    /// that says format 2, or a record object that says 3, is `Corrupt`.
    fn decode_records(&self, name: &str, bytes: &[u8]) -> Result<Vec<JournalRecord>, StateError> {
        let path = self.path(name);
        let mut value: serde_json::Value = decode_upto(&path, bytes, JOURNAL_BATCH_FORMAT)?;
        let format = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let Some(object) = value.as_object_mut() else {
            return Err(corrupt(&path, "not a journal record"));
        };
        object.remove("format_version");
        if format < u64::from(JOURNAL_BATCH_FORMAT) {
            let record = serde_json::from_value(value)
                .map_err(|e| corrupt(&path, format!("not a journal record: {e}")))?;
            return Ok(vec![record]);
        }
        let records = object
            .remove("records")
            .filter(|_| object.is_empty())
            .ok_or_else(|| corrupt(&path, "a batch of journal records holds `records` alone"))?;
        let records: Vec<JournalRecord> = serde_json::from_value(records)
            .map_err(|e| corrupt(&path, format!("not a batch of journal records: {e}")))?;
        if records.is_empty() {
            return Err(corrupt(&path, "a batch of journal records holds none"));
        }
        Ok(records)
    }

    /// Takes the next record number (listing the journal the first time).
    async fn take_record_number(&self, after: Option<u64>) -> Result<u64, StateError> {
        let known = match self.next_record.lock() {
            Ok(next) => *next,
            Err(poisoned) => *poisoned.into_inner(),
        };
        let listed = match (known, after) {
            (Some(_), None) => None,
            _ => Some(
                self.record_names()
                    .await?
                    .last()
                    .map_or(1, |(n, _, _)| n.saturating_add(1)),
            ),
        };
        let mut next = match self.next_record.lock() {
            Ok(next) => next,
            Err(poisoned) => poisoned.into_inner(),
        };
        let floor = listed
            .into_iter()
            .chain(after.map(|n| n.saturating_add(1)))
            .chain(*next)
            .max()
            .unwrap_or(1);
        *next = Some(floor.saturating_add(1));
        Ok(floor)
    }

    /// Appends `records` as one object, and names it.
    async fn append_journal(&self, records: &[JournalRecord]) -> Result<String, StateError> {
        let mut after = None;
        for _ in 0..5 {
            let number = self.take_record_number(after).await?;
            let name = Self::record_name(number);
            let bytes = self.encode_records(&name, records)?;
            let (put, etag) = self
                .put_tagged(&name, bytes.clone(), Condition::Absent)
                .await?;
            if put == Outcome::Done {
                if let Some(etag) = etag {
                    self.known()
                        .journal
                        .insert(name.clone(), (etag, records.to_vec()));
                }
                return Ok(name);
            }
            if self.holds(&name, &bytes).await? {
                return Ok(name);
            }
            // Someone else wrote this number: the journal moved on without us.
            after = Some(number);
        }
        Err(self.io(
            "journal",
            "other writers kept taking the next journal record number; is another fleetform applying without the lock?",
        ))
    }

    /// The journal's records, each with the name of its object, in order.
    /// An object listed with the ETag it had when this store wrote or read
    /// it is not read again.
    async fn journal(self: &Arc<Self>) -> Result<Vec<(String, JournalRecord)>, StateError> {
        let names = self.record_names().await?;
        // The listing tells the next record number too: an append after a
        // read of the journal (an apply's first) need not list it again. A
        // number taken since by someone else only costs that append a retry.
        if let Ok(mut next) = self.next_record.lock() {
            if next.is_none() {
                *next = Some(names.last().map_or(1, |(n, _, _)| n.saturating_add(1)));
            }
        }
        let mut objects: Vec<(String, Option<Vec<JournalRecord>>)> = {
            let known = self.known();
            names
                .iter()
                .map(|(_, name, etag)| {
                    let kept = known
                        .journal
                        .get(name)
                        .filter(|(seen, _)| Some(seen) == etag.as_ref())
                        .map(|(_, records)| records.clone());
                    (name.clone(), kept)
                })
                .collect()
        };
        let unread: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i].1.is_none())
            .collect();
        for chunk in unread.chunks(JOURNAL_READS_IN_FLIGHT) {
            let mut reads = tokio::task::JoinSet::new();
            for &position in chunk {
                let store = Arc::clone(self);
                let name = objects[position].0.clone();
                reads.spawn(async move {
                    let object = store.get(&name).await;
                    (position, name, object)
                });
            }
            let mut fetched = Vec::with_capacity(chunk.len());
            while let Some(done) = reads.join_next().await {
                fetched.push(done.map_err(|e| self.io("journal", format!("a read stopped: {e}")))?);
            }
            // Decoded in order: the first damaged object is the one named.
            fetched.sort_by_key(|(position, _, _)| *position);
            for (position, name, object) in fetched {
                // Gone since the listing: cleared by a finished apply.
                let records = match object? {
                    Some(object) => {
                        let records = self.decode_records(&name, &object.bytes)?;
                        if let Some(etag) = object.etag {
                            self.known()
                                .journal
                                .insert(name.clone(), (etag, records.clone()));
                        }
                        records
                    }
                    None => Vec::new(),
                };
                objects[position].1 = Some(records);
            }
        }
        Ok(objects
            .into_iter()
            .flat_map(|(name, records)| {
                records
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |record| (name.clone(), record))
            })
            .collect())
    }

    /// Empties the journal; with `end`, appends it first as far as a
    /// reader can tell. The objects holding a `begin` record go first, in
    /// a request of their own: a clear interrupted after that leaves
    /// records of no apply, never the beginning of one without its end,
    /// which would look unfinished. `end` is written beside that request:
    /// whichever of the two lands alone, the apply reads as ended (or as
    /// none); neither leaves it open, which a crash before both does too.
    /// Its object then goes with the rest. An `end` that cannot be written
    /// is not an error (the clear is what counts). A batch object holds
    /// several records: each object is deleted once.
    async fn clear_journal(self: &Arc<Self>, end: Option<JournalRecord>) -> Result<(), StateError> {
        let listed = self.journal().await;
        self.end_listed(listed, end).await
    }

    /// [`Inner::clear_journal`] of the journal as `listed` (read just
    /// before, by this store).
    async fn end_listed(
        self: &Arc<Self>,
        listed: Result<Vec<(String, JournalRecord)>, StateError>,
        end: Option<JournalRecord>,
    ) -> Result<(), StateError> {
        // Refuses a journal that does not read, like the local store (the
        // end still appended, as an append before the clear would be).
        let records = match listed {
            Ok(records) => records,
            Err(e) => {
                if let Some(end) = end {
                    let _ = self.append_journal(std::slice::from_ref(&end)).await;
                }
                return Err(e);
            }
        };
        let mut objects: Vec<(String, bool)> = Vec::new();
        for (name, record) in records {
            let begin = matches!(record, JournalRecord::Begin { .. });
            match objects.last_mut() {
                Some((last, holds_begin)) if *last == name => *holds_begin |= begin,
                _ => objects.push((name, begin)),
            }
        }
        let (begins, rest): (Vec<_>, Vec<_>) = objects.into_iter().partition(|(_, b)| *b);
        let names = |objects: Vec<(String, bool)>| -> Vec<String> {
            objects.into_iter().map(|(name, _)| name).collect()
        };
        let (begins, mut rest) = (names(begins), names(rest));
        let ending = async {
            match end {
                Some(end) => self.append_journal(std::slice::from_ref(&end)).await.ok(),
                None => None,
            }
        };
        let (ended, deleted) = tokio::join!(ending, self.delete_objects(&begins));
        deleted?;
        rest.extend(ended);
        self.delete_objects(&rest).await?;
        if let Ok(mut next) = self.next_record.lock() {
            *next = None;
        }
        let mut known = self.known();
        for name in begins.iter().chain(&rest) {
            known.journal.remove(name);
        }
        Ok(())
    }

    /// Deletes the objects `names`, a thousand to a request (none for none).
    async fn delete_objects(&self, names: &[String]) -> Result<(), StateError> {
        for batch in names.chunks(1000) {
            let mut delete = aws_sdk_s3::types::Delete::builder().quiet(true);
            for name in batch {
                delete = delete.objects(
                    aws_sdk_s3::types::ObjectIdentifier::builder()
                        .key(self.key(name))
                        .build()
                        .map_err(|e| self.io(name, e.to_string()))?,
                );
            }
            let delete = delete
                .build()
                .map_err(|e| self.io("journal", e.to_string()))?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.location.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.io("journal", failure(&e).2))?;
            if let Some(error) = output.errors().first() {
                let key = error.key().unwrap_or("journal");
                let name = key
                    .strip_prefix(&format!("{}/", self.location.key))
                    .unwrap_or(key);
                return Err(self.io(
                    name,
                    format!(
                        "cannot remove it: {}",
                        error.message().or(error.code()).unwrap_or("unknown error")
                    ),
                ));
            }
        }
        Ok(())
    }

    // ---- lock ----

    async fn read_lock(&self) -> Result<Option<(LockFile, String)>, StateError> {
        let Some(object) = self.get("lock.json").await? else {
            return Ok(None);
        };
        let file: LockFile = decode(&self.path("lock.json"), &object.bytes)?;
        let etag = object
            .etag
            .ok_or_else(|| self.io("lock.json", "S3 returned the lock without an ETag"))?;
        self.known().lock = Some((file.token.clone(), etag.clone()));
        Ok(Some((file, etag)))
    }

    async fn lock(&self, holder: String, ttl_secs: i64, now: i64) -> Result<Lease, StateError> {
        let file = LockFile {
            format_version: FORMAT_VERSION,
            holder,
            started: now,
            expires: now.saturating_add(ttl_secs),
            token: lease_token(),
        };
        let bytes = encode(&self.path("lock.json"), &file)?;
        // Repeats only when the lock vanished between our failed create and
        // our read of it (released meanwhile); it never waits.
        for _ in 0..16 {
            if self
                .put("lock.json", bytes.clone(), Condition::Absent)
                .await?
                == Outcome::Done
            {
                return Ok(Lease {
                    info: file.info(),
                    token: file.token,
                });
            }
            if let Some((current, _)) = self.read_lock().await? {
                if current.token == file.token {
                    // Our own create, retried after its answer was lost.
                    return Ok(Lease {
                        info: file.info(),
                        token: file.token,
                    });
                }
                return Err(StateError::Locked(current.info()));
            }
        }
        Err(self.io(
            "lock.json",
            "the lock kept appearing and disappearing; try again",
        ))
    }

    async fn renew(&self, token: String, ttl_secs: i64, now: i64) -> Result<LeaseInfo, StateError> {
        // Repeats only while the lock is still this lease: its condition
        // failed because of a concurrent request (409), not another holder.
        for _ in 0..3 {
            let Some((current, etag)) = self.read_lock().await? else {
                return Err(StateError::LeaseLost);
            };
            if current.token != token {
                return Err(StateError::LeaseLost);
            }
            let renewed = LockFile {
                expires: now.saturating_add(ttl_secs),
                ..current
            };
            let bytes = encode(&self.path("lock.json"), &renewed)?;
            let put = self.put("lock.json", bytes.clone(), Condition::Matches(etag));
            let renewed_now = put.await? == Outcome::Done;
            // Its new ETag is not known until read again.
            self.known().lock = None;
            if renewed_now || self.holds("lock.json", &bytes).await? {
                return Ok(renewed.info());
            }
        }
        Err(self.io(
            "lock.json",
            "the lock kept changing while it was renewed; the lease stands until it expires",
        ))
    }

    async fn release(&self, token: String) -> Result<(), StateError> {
        // The lock as last read, if it was this lease (the apply's last
        // lease check): deleted on that ETag without reading it again; a
        // lock changed since fails the condition and is read below.
        let remembered = self.known().lock.take();
        if let Some((_, etag)) = remembered.filter(|(held, _)| *held == token) {
            match self.delete_if("lock.json", &etag).await? {
                Outcome::Done => return Ok(()),
                Outcome::Gone => return Err(StateError::LeaseLost),
                Outcome::ConditionFailed => {}
            }
        }
        for _ in 0..3 {
            let Some((current, etag)) = self.read_lock().await? else {
                return Err(StateError::LeaseLost);
            };
            if current.token != token {
                return Err(StateError::LeaseLost);
            }
            match self.delete_if("lock.json", &etag).await? {
                Outcome::Done => return Ok(()),
                // Broken meanwhile (or our own delete, retried): not ours now.
                Outcome::Gone => return Err(StateError::LeaseLost),
                // Changed since read (renewed by our own renewer): read again.
                Outcome::ConditionFailed => {}
            }
        }
        Err(self.io(
            "lock.json",
            "the lock kept changing while it was released; try again",
        ))
    }

    async fn break_lock(&self, force: bool, now: i64) -> Result<Option<LeaseInfo>, StateError> {
        for _ in 0..8 {
            let Some(object) = self.get("lock.json").await? else {
                return Ok(None);
            };
            let etag = object
                .etag
                .clone()
                .ok_or_else(|| self.io("lock.json", "S3 returned the lock without an ETag"))?;
            let seen = match decode::<LockFile>(&self.path("lock.json"), &object.bytes) {
                Ok(seen) => seen,
                Err(StateError::Corrupt { .. } | StateError::NewerFormat { .. }) if force => {
                    let aside = format!("lock.json.unreadable.{}", unique_suffix());
                    if self
                        .put(&aside, object.bytes.clone(), Condition::Absent)
                        .await?
                        == Outcome::ConditionFailed
                        && !self.holds(&aside, &object.bytes).await?
                    {
                        return Err(self.io(
                            &aside,
                            "cannot keep the unreadable lock here: the name is taken",
                        ));
                    }
                    if self.delete_if("lock.json", &etag).await? == Outcome::Done {
                        return Ok(Some(LeaseInfo {
                            holder: format!(
                                "an unknown holder (the unreadable lock is kept as {})",
                                self.path(&aside).display()
                            ),
                            started: now,
                            expires: now,
                        }));
                    }
                    continue; // replaced meanwhile: look again
                }
                Err(e) => return Err(e),
            };
            if !force && !seen.info().expired(now) {
                return Err(StateError::Locked(seen.info()));
            }
            if self.delete_if("lock.json", &etag).await? == Outcome::Done {
                return Ok(Some(seen.info()));
            }
            // Renewed, re-taken or removed since we read it: decide again on
            // what is there now.
        }
        Err(self.io(
            "lock.json",
            "the lock kept changing while it was broken; try again",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The production SDK configuration, for the local endpoint.
    fn local_config() -> impl Future<Output = Result<SdkConfig, String>> + Send + 'static {
        let options = fleetform_aws::ConnectOptions::for_endpoint(Some(
            fleetform_test_support::endpoint().to_string(),
        ));
        async move {
            fleetform_aws::sdk_config(&options)
                .await
                .map_err(|e| e.message)
        }
    }

    /// The local endpoint's S3, a new bucket, and the store's inner requests.
    fn inner() -> (
        fleetform_test_support::s3::TestBucket,
        Arc<Inner>,
        S3Backend,
    ) {
        let bucket = fleetform_test_support::s3::TestBucket::create("s3cond");
        let store = S3Backend::connect(
            S3Location {
                bucket: bucket.name.clone(),
                key: "k".into(),
                region: None,
            },
            local_config(),
        )
        .expect("connect");
        (bucket, Arc::clone(&store.inner), store)
    }

    /// Every condition the lock relies on is sent and enforced: a stale
    /// ETag fails a put and a delete, an existing key fails a create, and
    /// the object is left as it was each time.
    #[test]
    fn conditional_puts_and_deletes_change_nothing_when_their_condition_fails() {
        let (bucket, inner, store) = inner();
        let run = |f: Pin<Box<dyn Future<Output = Result<Outcome, StateError>> + Send>>| {
            store.worker.run(f).expect("worker").expect("request")
        };
        let i = Arc::clone(&inner);
        assert_eq!(
            run(Box::pin(async move {
                i.put("x", b"one".to_vec(), Condition::Absent).await
            })),
            Outcome::Done
        );
        let first = store
            .worker
            .run({
                let i = Arc::clone(&inner);
                async move { i.get("x").await }
            })
            .expect("worker")
            .expect("get")
            .and_then(|o| o.etag)
            .expect("an etag");
        let i = Arc::clone(&inner);
        assert_eq!(
            run(Box::pin(async move {
                i.put("x", b"two".to_vec(), Condition::Absent).await
            })),
            Outcome::ConditionFailed
        );
        let (i, etag) = (Arc::clone(&inner), first.clone());
        assert_eq!(
            run(Box::pin(async move {
                i.put("x", b"two".to_vec(), Condition::Matches(etag)).await
            })),
            Outcome::Done
        );
        assert_eq!(bucket.get("k/x").as_deref(), Some(&b"two"[..]));
        // `first` is stale now.
        let (i, etag) = (Arc::clone(&inner), first.clone());
        assert_eq!(
            run(Box::pin(async move {
                i.put("x", b"three".to_vec(), Condition::Matches(etag))
                    .await
            })),
            Outcome::ConditionFailed
        );
        let (i, etag) = (Arc::clone(&inner), first.clone());
        assert_eq!(
            run(Box::pin(async move { i.delete_if("x", &etag).await })),
            Outcome::ConditionFailed
        );
        assert_eq!(bucket.get("k/x").as_deref(), Some(&b"two"[..]));
        // A put conditional on an object that is gone fails too.
        bucket.delete("k/x");
        let (i, etag) = (Arc::clone(&inner), first);
        assert_eq!(
            run(Box::pin(async move {
                i.put("x", b"four".to_vec(), Condition::Matches(etag)).await
            })),
            Outcome::ConditionFailed
        );
        assert_eq!(bucket.get("k/x"), None);
        let i = Arc::clone(&inner);
        assert_eq!(
            run(Box::pin(async move { i.delete_if("x", "\"0\"").await })),
            Outcome::Gone
        );
    }

    /// A release deletes the lock on the ETag last read when it still is
    /// the lock's; when the lock changed since (renewed elsewhere), it reads
    /// it again and releases it; when another holder took it, it is
    /// `LeaseLost` and their lock stays.
    #[test]
    fn a_release_goes_by_the_lock_etag_last_read_only_while_it_holds() {
        let (bucket, _inner, store) = inner();
        let location = || S3Location {
            bucket: bucket.name.clone(),
            key: "k".into(),
            region: None,
        };
        let lease = store.lock("a@b:1", 60, 100).expect("locked");
        assert!(store.lease().expect("read").is_some());
        store.release(lease).expect("released on the ETag read");
        assert_eq!(bucket.get("k/lock.json"), None);

        let lease = store.lock("a@b:1", 60, 200).expect("locked");
        assert!(store.lease().expect("read").is_some());
        let other = S3Backend::connect(location(), local_config()).expect("connect");
        let mut same = Lease {
            info: lease.info.clone(),
            token: lease.token.clone(),
        };
        other.renew(&mut same, 60, 210).expect("renewed elsewhere");
        store
            .release(lease)
            .expect("released after reading it again");
        assert_eq!(bucket.get("k/lock.json"), None);

        let lease = store.lock("a@b:1", 60, 300).expect("locked");
        assert!(store.lease().expect("read").is_some());
        other.break_lock(true, 310).expect("broken");
        let theirs = other.lock("c@d:2", 60, 310).expect("taken");
        assert!(matches!(store.release(lease), Err(StateError::LeaseLost)));
        assert_eq!(
            store.lease().expect("read").map(|l| l.holder).as_deref(),
            Some("c@d:2")
        );
        other.release(theirs).expect("released");
    }

    #[test]
    fn lease_tokens_differ() {
        assert_ne!(lease_token(), lease_token());
        assert_eq!(lease_token().len(), 32);
    }
}

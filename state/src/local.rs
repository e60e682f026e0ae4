//! The local-directory backend.

use crate::fsutil::{
    corrupt, create_atomically, decode, encode, ensure_all_writable, ensure_dir, io, lease_token,
    read_optional, replace_atomically, sync_dir, unique_suffix,
};
use crate::layout::{version_file_name, version_number_of, IndexFile, LockFile};
use crate::{
    journal, Backend, JournalRecord, Lease, LeaseInfo, StateError, Version, VersionSummary,
    FORMAT_VERSION,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The state store in a local directory (e.g. `<config>/.fleetform`).
///
/// Layout (every file mode 0600, directories 0700, created on first write):
///
/// | path | holds |
/// |---|---|
/// | `versions/NNNNNN.json` | one [`Version`], number zero-padded to 6 digits (wider past 999999); created once, never rewritten |
/// | `index.json` | `{"sha256":..,"format_version":2,"versions":[VersionSummary...]}`, rewritten after each version write |
/// | `journal.jsonl` | header line `{"format_version":2}`, then one [`JournalRecord`] per line, each with its own `sha256` |
/// | `lock.json` | `{"sha256":..,"format_version":2,"holder":..,"started":..,"expires":..,"token":..}` |
///
/// Temporary files are dot-files beside their target (`.index.json.tmp.*`,
/// `.lock.json.new.*`, ...), removed on success. `lock.json.unreadable.*`
/// are unreadable lock files set aside by a forced [`Backend::break_lock`].
///
/// **Integrity.** Each JSON document (version, index, lock) begins with its
/// checksum: the file is `{\n  "sha256": "<hex>",\n` followed by the rest
/// of the pretty-printed document, and `<hex>` is the SHA-256 of exactly
/// those remaining bytes. A document that fails the check is `Corrupt`,
/// whatever the failure (one flipped bit included); so is a hand edit.
///
/// **Read-only state.** Before creating, replacing or removing anything, the
/// store checks the mode of what it is about to change (the state directory,
/// `versions/`, the file itself): without the owner-write bit it refuses
/// with [`StateError::ReadOnly`], whatever the uid. `lock` checks the state
/// directory, `index.json`, `journal.jsonl` and `versions/` up front, so an
/// apply stops before it touches the cloud. Reading never needs write
/// permission.
///
/// **Versions.** A version file is written to a temporary file, fsynced, then
/// hard-linked to its final name: `link(2)` refuses an existing name
/// atomically, so a version file is never overwritten, even by two writers
/// racing without the lock. The index is then replaced (temp, fsync, rename,
/// fsync of the directory). `list` reads the index plus the *names* in
/// `versions/`: a version file the index does not list (a crash between the
/// two steps, or two racing writers) is read and included, so the index can
/// lag but never hide a version. A missing index is rebuilt from the
/// version files (in memory; `write` then stores it): that is recovery from
/// a crash or a deliberate removal. An index that is present but corrupt,
/// truncated, empty or of a newer format is an error naming it, for every
/// method that needs the list (`list`, `latest`, `write`), and is never
/// overwritten; moving it aside is how to have it rebuilt.
///
/// **Journal.** Each record is one line; an append (one record or a batch)
/// is a single `write` and one fsync. A crash can only tear the last line:
/// a last line without its newline that does not parse is ignored by
/// `journal` and cut off by the next append (which reads only the header
/// line and the last line, so appending stays cheap however long the
/// journal is). A line that ends in a newline and does not parse, or does
/// not match its checksum, is corruption. A journal is created whole (header and first record: temp
/// file, fsync, link), so an empty journal file, or one without a whole
/// header line, is corruption too, never a crash. `clear_journal` removes
/// the file after reading it whole.
///
/// **Lock.** The lock file is never written in place. It is created by
/// writing a complete temporary file, fsyncing it and hard-linking it to
/// `lock.json` (exclusive: link fails if `lock.json` exists), so a reader sees
/// no lock or a whole one, and of racing `lock` calls exactly one wins. It is
/// removed (by `release`, `break_lock`, and `renew`, which re-creates it) by
/// first renaming it to a private name, which only one process can do, then
/// checking that what was taken is what was meant to be taken; if not, it is
/// linked back. Each lease carries a private random token, so "still ours"
/// does not depend on the holder string (two leases of one process differ).
/// A lock file that cannot be read blocks `lock` (`Corrupt`/`NewerFormat`,
/// not `Locked`: nobody can tell whether it is held) and is only ever moved
/// aside, by `break_lock` with `force`.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    dir: PathBuf,
}

impl LocalBackend {
    /// A store in `dir`. Nothing is touched until the first write; `dir` (and
    /// `dir/versions`) are then created with mode 0700.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalBackend { dir: dir.into() }
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn versions_dir(&self) -> PathBuf {
        self.dir.join("versions")
    }

    fn version_path(&self, number: u64) -> PathBuf {
        self.versions_dir().join(version_file_name(number))
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("lock.json")
    }

    /// Numbers of the version files present (by name only; nothing is read).
    fn version_numbers(&self) -> Result<BTreeSet<u64>, StateError> {
        let dir = self.versions_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut numbers = BTreeSet::new();
        for entry in entries {
            let entry = entry.map_err(io(&dir))?;
            if let Some(number) = entry.file_name().to_str().and_then(version_number_of) {
                numbers.insert(number);
            }
        }
        Ok(numbers)
    }

    /// The index as stored: `Ok(None)` when there is no index file.
    fn read_index(&self) -> Result<Option<Vec<VersionSummary>>, StateError> {
        let path = self.index_path();
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let index: IndexFile = decode(&path, &bytes)?;
        let mut seen = BTreeSet::new();
        if let Some(dup) = index.versions.iter().find(|s| !seen.insert(s.number)) {
            return Err(corrupt(
                &path,
                format!("version {} is listed twice", dup.number),
            ));
        }
        Ok(Some(index.versions))
    }

    fn summaries_of(&self, numbers: &BTreeSet<u64>) -> Result<Vec<VersionSummary>, StateError> {
        numbers
            .iter()
            .map(|n| self.read(*n).map(|v| VersionSummary::from(&v)))
            .collect()
    }

    /// All summaries, ascending: the index (rebuilt from the version files
    /// if it is missing; an error if it is damaged), plus any version file
    /// it does not list.
    fn summaries(&self) -> Result<Vec<VersionSummary>, StateError> {
        let files = self.version_numbers()?;
        let mut summaries = match self.read_index()? {
            Some(list) => list,
            None => self.summaries_of(&files)?,
        };
        let indexed: BTreeSet<u64> = summaries.iter().map(|s| s.number).collect();
        let unindexed: BTreeSet<u64> = files.difference(&indexed).copied().collect();
        summaries.extend(self.summaries_of(&unindexed)?);
        summaries.sort_by_key(|s| s.number);
        Ok(summaries)
    }
}

impl Backend for LocalBackend {
    fn latest(&self) -> Result<Option<u64>, StateError> {
        Ok(self.summaries()?.last().map(|s| s.number))
    }

    /// Reads `index.json` and the names in `versions/`; version files are read
    /// only when the index does not list them (or is missing). An index
    /// entry whose file was removed is still listed; `read` of it is an `Io`
    /// error naming the file.
    fn list(&self) -> Result<Vec<VersionSummary>, StateError> {
        self.summaries()
    }

    fn read(&self, number: u64) -> Result<Version, StateError> {
        let path = self.version_path(number);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let indexed = matches!(
                    self.read_index(),
                    Ok(Some(list)) if list.iter().any(|s| s.number == number)
                );
                return Err(if indexed {
                    io(&path)(e)
                } else {
                    StateError::NoSuchVersion(number)
                });
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let version: Version = decode(&path, &bytes)?;
        if version.number != number {
            return Err(corrupt(
                &path,
                format!("it holds version {} instead", version.number),
            ));
        }
        Ok(version)
    }

    /// Refuses (before writing anything) when the index, or a version file
    /// it does not list, is damaged or of a newer format, when the number
    /// exists, or when the state directory, `versions/` or `index.json` is
    /// read-only. If the
    /// version file is written but the index update then fails, the version
    /// is recorded all the same (`list` finds it) and the error is returned.
    fn write(&self, version: &Version) -> Result<(), StateError> {
        let path = self.version_path(version.number);
        let mut summaries = self.summaries()?;
        if summaries.iter().any(|s| s.number == version.number)
            || std::fs::symlink_metadata(&path).is_ok()
        {
            return Err(StateError::VersionExists(version.number));
        }
        ensure_all_writable(&[&self.dir, &self.versions_dir(), &self.index_path()])?;
        ensure_dir(&self.dir)?;
        ensure_dir(&self.versions_dir())?;
        let mut value =
            serde_json::to_value(version).map_err(|e| io(&path)(std::io::Error::other(e)))?;
        value["format_version"] = FORMAT_VERSION.into();
        if !create_atomically(&path, &encode(&path, &value)?)? {
            return Err(StateError::VersionExists(version.number));
        }
        summaries.push(VersionSummary::from(version));
        summaries.sort_by_key(|s| s.number);
        let index_path = self.index_path();
        let index = IndexFile {
            format_version: FORMAT_VERSION,
            versions: summaries,
        };
        replace_atomically(&index_path, &encode(&index_path, &index)?)
    }

    /// Refuses a read-only state directory or journal (nothing written).
    /// The batch is one `write` of its lines and one fsync.
    fn append_journal_records(&self, records: &[JournalRecord]) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        let path = self.journal_path();
        ensure_all_writable(&[&self.dir, &path])?;
        ensure_dir(&self.dir)?;
        journal::append(&path, records)
    }

    fn journal(&self) -> Result<Vec<JournalRecord>, StateError> {
        let path = self.journal_path();
        match read_optional(&path)? {
            Some(bytes) => journal::parse(&path, &bytes),
            None => Ok(Vec::new()),
        }
    }

    /// Removes `journal.jsonl` after checking that it reads (a corrupt or
    /// newer-format journal is left in place and reported, and so is a
    /// read-only one or one in a read-only directory).
    fn clear_journal(&self) -> Result<(), StateError> {
        self.journal()?;
        let path = self.journal_path();
        if !path.exists() {
            return Ok(());
        }
        ensure_all_writable(&[&self.dir, &path])?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn lock(&self, holder: &str, ttl_secs: i64, now: i64) -> Result<Lease, StateError> {
        ensure_all_writable(&[
            &self.dir,
            &self.index_path(),
            &self.journal_path(),
            &self.versions_dir(),
        ])?;
        ensure_dir(&self.dir)?;
        let path = self.lock_path();
        let file = LockFile {
            format_version: FORMAT_VERSION,
            holder: holder.to_string(),
            started: now,
            expires: now.saturating_add(ttl_secs),
            token: lease_token(),
        };
        let bytes = encode(&path, &file)?;
        // The loop only repeats when the lock vanished between our failed
        // create and our read of it (released meanwhile); it never waits.
        for _ in 0..16 {
            if create_atomically(&path, &bytes)? {
                return Ok(Lease {
                    info: file.info(),
                    token: file.token,
                });
            }
            if let Some(current) = self.read_lock()? {
                return Err(StateError::Locked(current.info()));
            }
        }
        Err(io(&path)(std::io::Error::other(
            "the lock kept appearing and disappearing; try again",
        )))
    }

    fn renew(&self, lease: &mut Lease, ttl_secs: i64, now: i64) -> Result<(), StateError> {
        let path = self.lock_path();
        let (taken_path, taken) = self.take_own_lock(lease)?;
        let renewed = LockFile {
            format_version: FORMAT_VERSION,
            expires: now.saturating_add(ttl_secs),
            ..taken
        };
        let created = encode(&path, &renewed).and_then(|bytes| create_atomically(&path, &bytes));
        match created {
            Ok(true) => {
                remove_taken(&taken_path);
                lease.info = renewed.info();
                Ok(())
            }
            // Someone locked in the instant the lock was absent: theirs now.
            Ok(false) => {
                remove_taken(&taken_path);
                Err(StateError::LeaseLost)
            }
            Err(e) => {
                self.put_back(&taken_path);
                Err(e)
            }
        }
    }

    fn release(&self, lease: Lease) -> Result<(), StateError> {
        let (taken_path, _) = self.take_own_lock(&lease)?;
        remove_taken(&taken_path);
        Ok(())
    }

    fn lease(&self) -> Result<Option<LeaseInfo>, StateError> {
        Ok(self.read_lock()?.map(|file| file.info()))
    }

    /// A read-only state directory or lock file is refused (`ReadOnly`) when
    /// there is a lock to break, whatever `force`.
    fn break_lock(&self, force: bool, now: i64) -> Result<Option<LeaseInfo>, StateError> {
        let seen = match self.read_lock() {
            Ok(Some(seen)) => seen,
            Ok(None) => return Ok(None),
            Err(StateError::Corrupt { .. } | StateError::NewerFormat { .. }) if force => {
                return self.set_aside_unreadable_lock(now);
            }
            Err(e) => return Err(e),
        };
        if !force && !seen.info().expired(now) {
            return Err(StateError::Locked(seen.info()));
        }
        ensure_all_writable(&[&self.dir, &self.lock_path()])?;
        let Some((taken_path, taken)) = self.take_lock()? else {
            return Ok(None); // released meanwhile
        };
        if taken != seen && !force && !taken.info().expired(now) {
            // Renewed or re-taken since we looked: a live lease is never broken.
            self.put_back(&taken_path);
            return Err(StateError::Locked(taken.info()));
        }
        remove_taken(&taken_path);
        Ok(Some(taken.info()))
    }
}

impl LocalBackend {
    /// `break_lock` with `force` of a lock file that does not read: renames
    /// it to `lock.json.unreadable.*`, its bytes untouched. If what was
    /// renamed turns out to read after all (a valid lock replaced the damaged
    /// one meanwhile), it is broken like any forced lock.
    fn set_aside_unreadable_lock(&self, now: i64) -> Result<Option<LeaseInfo>, StateError> {
        let path = self.lock_path();
        ensure_all_writable(&[&self.dir, &path])?;
        let aside = self
            .dir
            .join(format!("lock.json.unreadable.{}", unique_suffix()));
        match std::fs::rename(&path, &aside) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        }
        let now_valid = std::fs::read(&aside)
            .ok()
            .and_then(|bytes| decode::<LockFile>(&path, &bytes).ok());
        if let Some(valid) = now_valid {
            remove_taken(&aside);
            return Ok(Some(valid.info()));
        }
        Ok(Some(LeaseInfo {
            holder: format!(
                "an unknown holder (the unreadable lock file is kept as {})",
                aside.display()
            ),
            started: now,
            expires: now,
        }))
    }

    fn read_lock(&self) -> Result<Option<LockFile>, StateError> {
        let path = self.lock_path();
        match read_optional(&path)? {
            Some(bytes) => decode(&path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Moves `lock.json` to a private name (only one process can) and reads
    /// it there. `Ok(None)` when there is no lock. A taken file that does not
    /// read is linked back (or, if that fails, left at its private name) and
    /// reported.
    fn take_lock(&self) -> Result<Option<(PathBuf, LockFile)>, StateError> {
        let path = self.lock_path();
        let taken_path = self
            .dir
            .join(format!(".lock.json.taken.{}", unique_suffix()));
        match std::fs::rename(&path, &taken_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        }
        let read = std::fs::read(&taken_path)
            .map_err(io(&path))
            .and_then(|bytes| decode::<LockFile>(&path, &bytes));
        match read {
            Ok(file) => Ok(Some((taken_path, file))),
            Err(e) => {
                if std::fs::hard_link(&taken_path, &path).is_ok() {
                    remove_taken(&taken_path);
                }
                Err(e)
            }
        }
    }

    /// Takes the lock file away (see `take_lock`) if and only if it is
    /// `lease`'s; [`StateError::LeaseLost`] when it is absent or another's
    /// (then it is left, or put back, as it was). A read-only state
    /// directory or lock file is `ReadOnly` (nothing taken).
    fn take_own_lock(&self, lease: &Lease) -> Result<(PathBuf, LockFile), StateError> {
        match self.read_lock()? {
            Some(current) if current.token == lease.token => {}
            _ => return Err(StateError::LeaseLost),
        }
        ensure_all_writable(&[&self.dir, &self.lock_path()])?;
        let Some((taken_path, taken)) = self.take_lock()? else {
            return Err(StateError::LeaseLost);
        };
        if taken.token != lease.token {
            self.put_back(&taken_path);
            return Err(StateError::LeaseLost);
        }
        Ok((taken_path, taken))
    }

    /// Puts a taken lock back as `lock.json`, unless another lock was created
    /// meanwhile (then the taken lease is lost: its holder learns it at its
    /// next renew).
    fn put_back(&self, taken_path: &Path) {
        let _ = std::fs::hard_link(taken_path, self.lock_path());
        remove_taken(taken_path);
    }
}

fn remove_taken(taken_path: &Path) {
    let _ = std::fs::remove_file(taken_path);
    if let Some(dir) = taken_path.parent() {
        sync_dir(dir);
    }
}

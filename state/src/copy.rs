//! Copying every version from one store to another, verified by hashes
//! (`fleetform state migrate`).

use crate::fsutil::sha256_hex;
use crate::{Backend, StateError, Version, FORMAT_VERSION};
use std::collections::BTreeMap;

/// The SHA-256 (lowercase hex) of a version's content: the same for the
/// same version in any store, whatever state format it was written in.
pub fn version_digest(version: &Version) -> Result<String, StateError> {
    let mut value = serde_json::to_value(version).map_err(|e| StateError::Io {
        path: format!("version {}", version.number).into(),
        source: std::io::Error::other(e),
    })?;
    value["format_version"] = FORMAT_VERSION.into();
    // serde_json's maps are sorted, so equal content gives equal bytes.
    Ok(sha256_hex(value.to_string().as_bytes()))
}

/// One version of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedVersion {
    /// The version number.
    pub number: u64,
    /// Its [`version_digest`], the same in both stores.
    pub sha256: String,
    /// True when the destination already held this very version (a copy
    /// run again after an interruption), so nothing was written.
    pub already_there: bool,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Reading or writing a store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Both stores hold this version with different contents; nothing was written.
    #[error("version {number} is in both stores with different contents (sha256 {source_sha256} in the source, {destination_sha256} in the destination)")]
    Differs {
        /// The version.
        number: u64,
        /// Its digest in the source.
        source_sha256: String,
        /// Its digest in the destination.
        destination_sha256: String,
    },
    /// The destination holds a version the source lacks: it is another
    /// state's history. Nothing was written.
    #[error("the destination holds version {0}, which the source does not: it is another state")]
    Extra(u64),
    /// The caller's check after a version stopped the copy (e.g. a lock lost).
    #[error("stopped after version {number}: {why}")]
    Stopped {
        /// The last version copied or found.
        number: u64,
        /// The caller's reason.
        why: String,
    },
    /// A version read back from the destination is not what was written.
    #[error("version {number} read back from the destination does not match (sha256 {written} written, {read} read back)")]
    Mismatch {
        /// The version.
        number: u64,
        /// The digest of what was written.
        written: String,
        /// The digest of what was read back.
        read: String,
    },
}

/// Copies every version of `from` that `to` lacks into `to`, ascending, and
/// reads each back to check its digest; versions `to` already holds must be
/// identical. Before writing anything it refuses a destination holding a
/// version the source lacks or a different version under the same number.
/// Calls `each` after every version, copied or found; an `Err` from it stops
/// the copy there ([`CopyError::Stopped`]). Returns every version of the
/// source with its digest.
///
/// The caller holds both stores' locks and checks their journals: copying
/// decides nothing about who may write.
pub fn copy_versions(
    from: &dyn Backend,
    to: &dyn Backend,
    mut each: impl FnMut(&CopiedVersion) -> Result<(), String>,
) -> Result<Vec<CopiedVersion>, CopyError> {
    let numbers: Vec<u64> = from.list()?.iter().map(|s| s.number).collect();
    let mut present: BTreeMap<u64, String> = BTreeMap::new();
    for summary in to.list()? {
        if !numbers.contains(&summary.number) {
            return Err(CopyError::Extra(summary.number));
        }
        let there = version_digest(&to.read(summary.number)?)?;
        let here = version_digest(&from.read(summary.number)?)?;
        if there != here {
            return Err(CopyError::Differs {
                number: summary.number,
                source_sha256: here,
                destination_sha256: there,
            });
        }
        present.insert(summary.number, there);
    }
    let mut copied = Vec::with_capacity(numbers.len());
    for number in numbers {
        let done = match present.remove(&number) {
            Some(sha256) => CopiedVersion {
                number,
                sha256,
                already_there: true,
            },
            None => {
                let version = from.read(number)?;
                let written = version_digest(&version)?;
                to.write(&version)?;
                let read = version_digest(&to.read(number)?)?;
                if read != written {
                    return Err(CopyError::Mismatch {
                        number,
                        written,
                        read,
                    });
                }
                CopiedVersion {
                    number,
                    sha256: written,
                    already_there: false,
                }
            }
        };
        each(&done).map_err(|why| CopyError::Stopped { number, why })?;
        copied.push(done);
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionOutcome, LocalBackend};

    fn version(number: u64, note: &str) -> Version {
        Version {
            format_version: FORMAT_VERSION,
            number,
            time: 1_700_000_000,
            git_commit: None,
            git_dirty: false,
            caller: "arn:aws:iam::1:user/a".into(),
            rollback_of: None,
            sources: BTreeMap::from([("fleet.hcl".to_string(), note.to_string())]),
            variables: BTreeMap::new(),
            plan: serde_json::json!({}),
            outcomes: vec![ActionOutcome {
                action: 0,
                ok: true,
                error: None,
                ids: vec![],
            }],
            observed: serde_json::json!([]),
            diff: String::new(),
            summary: serde_json::json!({}),
            images: BTreeMap::new(),
            sensitive: None,
            key_pair_users: Default::default(),
        }
    }

    fn stores() -> (tempfile::TempDir, LocalBackend, LocalBackend) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = LocalBackend::new(tmp.path().join("a"));
        let b = LocalBackend::new(tmp.path().join("b"));
        (tmp, a, b)
    }

    #[test]
    fn the_digest_ignores_the_format_written_in_and_sees_any_change() {
        let v = version(1, "x");
        let mut old = v.clone();
        old.format_version = 1;
        assert_eq!(version_digest(&v).ok(), version_digest(&old).ok());
        assert_ne!(
            version_digest(&v).ok(),
            version_digest(&version(1, "y")).ok()
        );
        assert_eq!(version_digest(&v).map(|d| d.len()).ok(), Some(64));
    }

    #[test]
    fn copies_every_version_and_a_second_run_finds_them_all_there() {
        let (_tmp, a, b) = stores();
        for n in 1..=3 {
            a.write(&version(n, &format!("v{n}"))).expect("write");
        }
        let mut seen = Vec::new();
        let copied = copy_versions(&a, &b, |c| {
            seen.push(c.number);
            Ok(())
        })
        .expect("copy");
        assert_eq!(seen, vec![1, 2, 3]);
        assert!(copied.iter().all(|c| !c.already_there));
        for n in 1..=3 {
            assert_eq!(b.read(n).expect("read"), a.read(n).expect("read"));
        }
        assert_eq!(b.list().expect("list"), a.list().expect("list"));
        // Interrupted after version 3 was written? Run again: nothing written.
        a.write(&version(4, "v4")).expect("write");
        let again = copy_versions(&a, &b, |_| Ok(())).expect("copy");
        let fresh: Vec<u64> = again
            .iter()
            .filter(|c| !c.already_there)
            .map(|c| c.number)
            .collect();
        assert_eq!(fresh, vec![4]);
    }

    #[test]
    fn the_callers_check_stops_the_copy_after_the_version_it_refused() {
        let (_tmp, a, b) = stores();
        for n in 1..=3 {
            a.write(&version(n, "v")).expect("write");
        }
        let stopped = copy_versions(&a, &b, |c| {
            if c.number == 2 {
                Err("lock lost".into())
            } else {
                Ok(())
            }
        });
        assert!(matches!(stopped, Err(CopyError::Stopped { number: 2, .. })));
        assert_eq!(b.latest().expect("latest"), Some(2));
    }

    #[test]
    fn a_destination_with_other_history_is_refused_before_anything_is_written() {
        let (_tmp, a, b) = stores();
        a.write(&version(1, "ours")).expect("write");
        a.write(&version(2, "ours")).expect("write");
        b.write(&version(1, "theirs")).expect("write");
        assert!(matches!(
            copy_versions(&a, &b, |_| Ok(())),
            Err(CopyError::Differs { number: 1, .. })
        ));
        assert_eq!(b.latest().expect("latest"), Some(1));

        let (_tmp, a, b) = stores();
        a.write(&version(1, "ours")).expect("write");
        b.write(&version(1, "ours")).expect("write");
        b.write(&version(2, "theirs")).expect("write");
        assert!(matches!(
            copy_versions(&a, &b, |_| Ok(())),
            Err(CopyError::Extra(2))
        ));
    }
}

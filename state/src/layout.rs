//! The documents and names every backend stores, whatever holds them: the
//! index, the lock and the version file names.

use crate::{LeaseInfo, VersionSummary};
use serde::{Deserialize, Serialize};

/// `index.json`: the summaries of the recorded versions.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IndexFile {
    pub(crate) format_version: u32,
    pub(crate) versions: Vec<VersionSummary>,
}

/// `lock.json`: the lease, with the private token of its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LockFile {
    pub(crate) format_version: u32,
    pub(crate) holder: String,
    pub(crate) started: i64,
    pub(crate) expires: i64,
    pub(crate) token: String,
}

impl LockFile {
    pub(crate) fn info(&self) -> LeaseInfo {
        LeaseInfo {
            holder: self.holder.clone(),
            started: self.started,
            expires: self.expires,
        }
    }
}

/// The file name of version `number`: zero-padded to 6 digits (wider past 999999).
pub(crate) fn version_file_name(number: u64) -> String {
    format!("{number:06}.json")
}

/// The version number a file name spells, in the canonical spelling of
/// [`version_file_name`] only ("3.json" is not version 3).
pub(crate) fn version_number_of(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".json")?;
    if !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = stem.parse::<u64>().ok()?;
    (version_file_name(number) == name).then_some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_round_trip_and_only_the_canonical_spelling_counts() {
        for number in [1, 42, 999_999, 1_000_000, u64::MAX] {
            assert_eq!(version_number_of(&version_file_name(number)), Some(number));
        }
        for name in [
            "3.json",
            "0000003.json",
            "000003.JSON",
            "+00003.json",
            "00000a.json",
            "000003",
        ] {
            assert_eq!(version_number_of(name), None, "{name}");
        }
    }
}

//! What the transactions of this crate fail with.

use fleetform_engine::sensitive::DigestError;
use fleetform_state::{CopyError, LeaseInfo, StateError};

/// Everything a transaction can fail with. The binary turns each variant
/// into its message and exit code in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another run holds the state lock (possibly expired); nothing was done.
    #[error(
        "the state is locked by {} (taken {}s ago, lease {})",
        .info.holder,
        .now - .info.started,
        lease_state(.info, *.now)
    )]
    Locked {
        /// Who holds it and until when.
        info: LeaseInfo,
        /// When the lock was asked for, in unix seconds.
        now: i64,
    },
    /// The state store failed (a file or object that cannot be read or written).
    #[error(transparent)]
    State(#[from] StateError),
    /// A recorded version reads (its checksum holds) but what it records does
    /// not decode: its observed objects or its plan. Nothing is ever built on
    /// a default in its place.
    #[error("version {version} is damaged: {what}")]
    Damaged {
        /// The version's number.
        version: u64,
        /// What of it does not decode, and why.
        what: String,
    },
    /// A sensitive value could not be digested.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// The changes of an apply were made but its version could not be
    /// recorded (the cause inside); the journal keeps them.
    #[error("{0}; the changes were made but not recorded; the journal keeps them")]
    Unrecorded(Box<Error>),
    /// FF010: what a saved plan was made from has moved; nothing was changed.
    #[error("the saved plan is stale: {}", .moved.join("; "))]
    Stale {
        /// What moved, one reason each.
        moved: Vec<String>,
    },
    /// A saved plan holds blocking findings (written before they blocked,
    /// or edited by hand); nothing was changed.
    #[error("the saved plan has blocking findings ({}); nothing was changed", .codes.join(", "))]
    SavedPlanBlocked {
        /// The codes of the blocking findings.
        codes: Vec<String>,
    },
    /// The fresh plan has blocking findings (the review was shown them);
    /// nothing was changed.
    #[error("nothing was changed: the findings above block this apply")]
    Blocked,
    /// The review did not approve the plan (and said why); nothing was changed.
    #[error("the plan was not approved; nothing was changed")]
    NotApproved,
    /// A journal holds an apply that was not recorded, so its history is not
    /// complete; nothing was copied.
    #[error("the journal of the {} holds {records} record{} of an apply that was not recorded", match .side { crate::Side::Source => "source", crate::Side::Destination => "destination" }, if *.records == 1 { "" } else { "s" })]
    JournalNotEmpty {
        /// Which store's journal.
        side: crate::Side,
        /// How many records it holds.
        records: usize,
    },
    /// Copying the versions of one store to another failed or was stopped.
    #[error(transparent)]
    Copy(#[from] CopyError),
}

/// How a held lease stands at `now`, for [`Error::Locked`].
fn lease_state(info: &LeaseInfo, now: i64) -> String {
    if info.expired(now) {
        format!(
            "expired {}s ago; if {} is gone, `fleetform unlock` breaks it",
            now - info.expires,
            info.holder
        )
    } else {
        format!(
            "live for {}s more; nothing waits for it",
            info.expires - now
        )
    }
}

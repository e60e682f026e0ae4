//! What the transactions of this crate fail with.

use fleetform_engine::sensitive::DigestError;
use fleetform_state::{LeaseInfo, StateError};

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

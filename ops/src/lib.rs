//! fleetform's transactions: what happens between a plan and a recorded
//! version, against a state store ([`fleetform_state::Backend`]) and a
//! provider ([`fleetform_engine::provider::Provider`]).
//!
//! This crate owns the apply transaction, lock -> journal -> execute ->
//! record, as one call ([`apply()`], and [`migrate()`] for moving a state),
//! and its parts:
//! - [`LockGuard`]: the state lock, a lease renewed in the background,
//!   released on drop, checked before every change ([`LockGuard::lost`]);
//! - [`execute`]: a plan carried out by the engine's executor under the
//!   lock, with a write-ahead journal in the state store (no call is made
//!   whose intent could not be recorded); [`interrupted`] reads back an
//!   apply that never ended;
//! - [`plan()`]: a plan built against the state (what the recorded
//!   versions and the journal tell the planner), for `plan`, `apply` and
//!   `rollback` alike;
//! - [`staleness`]: FF010, whether a saved plan still holds;
//! - [`unrecorded`], [`build_version`], [`record_version`]: the version an
//!   apply (or a no-op apply that must still record) writes, with its config
//!   snapshot, git commit, outcomes and images;
//! - [`rollback_inputs`], [`restore_sources`]: a recorded version's
//!   variables and config snapshot, for a rollback to it;
//! - what plan reads back from recorded versions and the journal:
//!   [`recorded_entries`], [`recorded_key_users`], [`sensitive_before`],
//!   [`created`], [`version_images`], [`pins_of`].
//!
//! Every time it records or judges by comes from [`clock`], fleetform's one
//! clock (the state lock's lease excepted: see its docs).
//!
//! It must not print (warnings and progress go to a [`Reporter`] the binary
//! implements; failures are one [`Error`] enum the binary renders), parse
//! flags, or name an AWS type: the provider is the engine's trait.

#![deny(missing_docs)]

mod cached;
mod clock;
mod error;
mod images;
mod journal;
mod lock;
mod plan;
mod recent;
mod record;
mod stale;
#[cfg(test)]
mod test_store;
mod transaction;

pub use clock::clock;
pub use error::Error;
pub use images::{claim, pins_of, version_images, versions_in_window};
pub use journal::{execute, execute_then, interrupted, Execution, OpenApply};
pub use lock::LockGuard;
pub use plan::plan;
pub use recent::created;
pub use record::{
    build_version, record_version, recorded_entries, recorded_key_users, restore_sources,
    rollback_inputs, sensitive_before, sources_diff, unrecorded, VersionInputs,
};
pub use stale::{names, split, staleness};
pub use transaction::{
    apply, migrate, Applied, ApplyRequest, Cloud, PlanSource, Recorded, Review, Side,
};

use fleetform_engine::plan::Action;
use fleetform_engine::provider::ProviderError;
use std::sync::Arc;

/// The state store a transaction works on (one backend or another, behind the trait).
pub type Store = Arc<dyn fleetform_state::Backend>;

/// Where a transaction reports what the user should see while it runs; the
/// binary implements it (a progress bar on a terminal, plain lines in CI).
/// Called from several threads at once.
pub trait Reporter: Send + Sync {
    /// Something went wrong that does not stop the transaction (a lease not
    /// renewed, a journal record not written): one sentence, without a
    /// `warning:` prefix.
    fn warning(&self, message: &str);

    /// Action `action` of the plan being carried out finished with `result`.
    fn action_finished(&self, action: &Action, result: &Result<Vec<String>, ProviderError>) {
        let _ = (action, result);
    }
}

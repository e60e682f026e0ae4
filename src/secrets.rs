//! Sensitive values at the edges of a command: binding a plan file to them,
//! checking a plan file's binding, and what a version records of them.

use fleetform_engine::model::Config;
use fleetform_engine::sensitive::{DigestError, Mask, Mismatch, Secrets, SensitiveBinding};
use fleetform_state::{Backend, SensitiveRecord, StateError};
use std::collections::BTreeSet;

/// The digests and mask that bind a plan file to the sensitive values of
/// this run; `None` when there are none.
pub(crate) fn bind(secrets: &Secrets) -> Result<Option<(SensitiveBinding, Mask)>, DigestError> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let binding = SensitiveBinding::new(secrets)?;
    let mask = binding.mask(secrets)?;
    Ok(Some((binding, mask)))
}

/// Worker types whose user data the latest recorded version withheld.
pub(crate) fn sensitive_before(store: &dyn Backend) -> Result<BTreeSet<String>, StateError> {
    let Some(latest) = store.latest()? else {
        return Ok(BTreeSet::new());
    };
    Ok(store
        .read(latest)?
        .sensitive
        .map(|record| record.worker_types.into_iter().collect())
        .unwrap_or_default())
}

/// What a version records of the sensitive values of this run; `None` when
/// there are none. A worker type whose user data an earlier version
/// withheld stays listed while the configuration has it: its live user data
/// may still hold the old secret (an update that failed, or one not yet
/// made), so it is never shown.
pub(crate) fn record(
    config: &Config,
    secrets: &Secrets,
    previous: Option<&SensitiveRecord>,
) -> Result<Option<SensitiveRecord>, DigestError> {
    let worker_types: Vec<String> = config
        .worker_types
        .values()
        .filter(|wt| {
            wt.user_data_sensitive
                || wt
                    .user_data
                    .as_deref()
                    .is_some_and(|d| secrets.appear_in(d))
                || previous.is_some_and(|p| p.worker_types.contains(&wt.name))
        })
        .map(|wt| wt.name.clone())
        .collect();
    if secrets.is_empty() && worker_types.is_empty() {
        return Ok(None);
    }
    Ok(Some(SensitiveRecord {
        variables: SensitiveBinding::new(secrets)?.variables,
        worker_types,
    }))
}

/// The names of `mismatches` that lack a value, and those whose value differs.
pub(crate) fn split(mismatches: &[Mismatch]) -> (Vec<&str>, Vec<&str>) {
    let mut missing = Vec::new();
    let mut differs = Vec::new();
    for m in mismatches {
        match m {
            Mismatch::Missing(name) => missing.push(name.as_str()),
            Mismatch::Differs(name) => differs.push(name.as_str()),
        }
    }
    (missing, differs)
}

/// `` `a`, `b` `` for messages.
pub(crate) fn names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How to supply sensitive variables again, for help texts.
pub(crate) fn how_to_supply(names: &[&str]) -> String {
    let first = names.first().copied().unwrap_or("NAME");
    format!(
        "supply them again with `-var {first}=...`, a `-var-file`, or FLEETFORM_VAR_{first}; plans and state never hold their values"
    )
}

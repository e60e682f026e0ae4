//! Sensitive values at the edges of a command: binding a plan file to them,
//! and telling the user how to supply them again (what a version records of
//! them is `fleetform_ops`').

use fleetform_engine::sensitive::{DigestError, Mask, Secrets, SensitiveBinding};
use fleetform_engine::{Code, Diagnostic};
pub(crate) use fleetform_ops::{names, split};

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

/// Of the sensitive variables `names`, those `secrets` has no value for.
pub(crate) fn unsupplied<'a>(
    names: impl IntoIterator<Item = &'a String>,
    secrets: &Secrets,
) -> Vec<&'a str> {
    names
        .into_iter()
        .map(String::as_str)
        .filter(|name| secrets.value(name).is_none())
        .collect()
}

/// The error that `what` (e.g. "the saved plan needs") needs the sensitive
/// variables `missing` supplied again.
pub(crate) fn needed_again(code: Code, what: &str, missing: &[&str]) -> Diagnostic {
    Diagnostic::error(
        code,
        format!(
            "{what} the sensitive variable{} {} supplied again",
            if missing.len() == 1 { "" } else { "s" },
            names(missing)
        ),
    )
    .help(how_to_supply(missing))
}

/// How to supply sensitive variables again, for help texts.
pub(crate) fn how_to_supply(names: &[&str]) -> String {
    let first = names.first().copied().unwrap_or("NAME");
    format!(
        "supply them again with `-var {first}=...`, a `-var-file`, or FLEETFORM_VAR_{first}; plans and state never hold their values"
    )
}

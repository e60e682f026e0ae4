//! The fleetform engine: the configuration language, the typed model of a
//! fleet, the checks that need no cloud, the plan (diff and the safety checks
//! that need live state) and the apply executor.
//!
//! - [`config`] loads a directory of `*.hcl` files into a [`model::Config`],
//!   reporting every problem as a [`Diagnostic`]; [`checks`] runs the static
//!   safety checks over the model; [`fmt`] formats the files.
//! - [`provider`] is the boundary to a cloud: the [`provider::Provider`] trait
//!   and the plain data of an observation. The engine never sees an AWS type:
//!   providers translate EC2 into this data.
//! - [`plan`] builds a [`plan::Plan`] from the model and an observation,
//!   renders it and saves it bound to what it was built from; [`images`]
//!   resolves, copies and prunes the images of AMI sets for it.
//! - [`apply`] carries a plan out through a provider, recording an intent
//!   before every call in an [`apply::Journal`] its caller keeps.
//! - [`sensitive`] keeps secrets out of everything that is shown or stored.
//! - [`output`] is the provisioner contract: per worker type and region, the
//!   ids the last recorded apply observed, combined with the configuration.
//!
//! Loading, checks and planning are synchronous functions over plain data,
//! given the clock and what the state recorded as arguments, so they are
//! unit-tested without a network. Only [`apply::execute`] and
//! [`plan::dry_run::dry_run`] are async: they call the cloud, through the
//! provider their caller passes in. The engine reads configuration files and
//! writes the files it is asked to (formatted sources, saved plans), and
//! never reads or writes the state store: its caller passes in what the
//! state holds and records what apply did.

#![deny(missing_docs)]

pub mod apply;
pub mod catalog;
pub mod checks;
pub mod config;
pub mod diagnostic;
pub mod ebs;
pub mod explain;
pub mod files;
pub mod fmt;
pub mod formats;
pub mod images;
pub mod import;
pub mod inventory;
pub mod model;
pub mod output;
pub mod plan;
pub mod provider;
pub mod schema;
pub mod sensitive;
pub mod sorted_map;
pub mod source;

pub use config::{load_dir, load_dir_with, Inputs, Loaded, Overlay, StateLocation};

/// Every instance type of the shipped price table (`engine/data/prices.tsv`,
/// what [`catalog::hourly_price`] knows) with its on-demand USD per hour, in
/// the table's order: what an editor offers when completing an instance type.
pub fn known_instance_types() -> Vec<(&'static str, f64)> {
    include_str!("../data/prices.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, price) = line.split_once('\t')?;
            Some((name.trim(), price.trim().parse().ok()?))
        })
        .collect()
}

/// Lower-case hex of `bytes`: how digests are written everywhere.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
pub use diagnostic::{Code, Diagnostic, Severity};

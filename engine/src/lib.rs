//! The fleetform engine: the configuration language, the typed model of a
//! fleet, and the checks that need no cloud. Later: the plan (diff + safety
//! checks) and the apply executor.
//!
//! The engine never sees an AWS type: providers translate EC2 into the plain
//! data of [`model`]. Everything here is synchronous and deterministic, so it
//! is unit-tested without a network.

pub mod apply;
pub mod catalog;
pub mod checks;
pub mod config;
pub mod diagnostic;
pub mod explain;
pub mod files;
pub mod fmt;
pub mod images;
pub mod inventory;
pub mod model;
pub mod plan;
pub mod provider;
pub mod schema;
pub mod sensitive;
pub mod source;

pub use config::{load_dir, Inputs, Loaded, StateLocation};
pub use diagnostic::{Code, Diagnostic, Severity};

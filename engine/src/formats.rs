//! What every JSON format fleetform writes shares: its version. A module
//! of its own so that the modules writing a format and [`crate::schema`],
//! which describes them all, both use it without depending on each other.

/// Version of every JSON format fleetform writes; bumped on incompatible change.
pub const FORMAT_VERSION: &str = "1";

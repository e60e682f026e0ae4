//! fleetform's state store: recorded versions, the write-ahead journal and the
//! lease lock. Owns everything under `.fleetform/` (or an S3 prefix); knows
//! nothing about EC2 and decides no policy.
//!
//! Not built yet: it arrives with `apply` (versions, journal, lease locks).

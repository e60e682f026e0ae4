//! A plan: the changes that would make live EC2 match the configuration, and
//! what is unsafe about them. Built by [`build`] from a model and an
//! observation; rendered by [`render`]; carried out later by apply.
//!
//! The plan is plain, serializable data (it is the JSON of `plan --json`);
//! renderers and apply read it and never reach back into the model or the
//! observation.

pub mod capacity;

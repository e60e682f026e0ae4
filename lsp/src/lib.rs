//! `fleetform lsp`: a language server (LSP 3.17 over stdio) on the engine
//! that `fleetform validate` and `fmt` use.
//!
//! A configuration directory is one unit: a change to any buffer reloads the
//! directory with every open buffer over the files on disk
//! ([`fleetform_engine::load_dir_with`]) and publishes the diagnostics of
//! each of its files, as `validate` reports them (variables without a value
//! are not errors while editing). Navigation, rename, completion and symbols
//! work from the syntax of each file, so they keep working while the
//! configuration has errors; hover shows the model of the last load without
//! errors. Nothing here calls a cloud.
//!
//! Built on lsp-server and lsp-types (rust-analyzer's, synchronous): one
//! thread reads messages, the other answers them in order.

#![deny(missing_docs)]

mod features;
mod position;
mod schema;
mod server;
mod syntax;
mod transport;

pub use server::{run_stdio, serve, Outcome};

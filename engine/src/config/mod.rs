//! The configuration language: load every `*.hcl` file of a directory,
//! evaluate variables, locals and references, decode the blocks into the
//! typed [`Config`](crate::model::Config) and run the static checks
//! ([`crate::checks::static_checks`]). A load also says where the state
//! lives ([`StateLocation`]), which values are sensitive ([`Loaded::secrets`],
//! hidden from its sources and diagnostics) and which files `file()` and
//! `templatefile()` read.
//!
//! Parsing uses `hcl-edit` so every attribute keeps its byte span (and `fmt`
//! keeps comments); `hcl-rs` evaluates expressions. Nothing here talks to the
//! cloud. Problems are collected, not returned early: one load reports every
//! mistake in the directory. The top-level worker types of each file are
//! parsed after everything else and freed as soon as they are decoded
//! (`split`): a fleet's syntax trees are many times its text, and most of
//! them are worker types.

pub mod budget;
mod decode;
mod fields;
pub mod functions;
mod launch;
mod repeat;
mod scope;
mod shape;
mod split;
mod variables;

pub use scope::{references, Reference};

use crate::checks;
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{Backend, Config};
use crate::sensitive::Secrets;
use crate::source::{offset_of, FileId, SourceFile, SourceRef, SourceSet};
use hcl_edit::structure::Body;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Largest configuration file fleetform reads; far above any real fleet.
pub const MAX_CONFIG_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Where variable values come from besides their defaults.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `-var NAME=VALUE`, in command-line order (later wins).
    pub vars: Vec<String>,
    /// `-var-file FILE`, in command-line order.
    pub var_files: Vec<PathBuf>,
    /// `FLEETFORM_VAR_NAME=VALUE` pairs from the environment (name without the prefix).
    pub env: Vec<(String, String)>,
}

impl Inputs {
    /// Picks the `FLEETFORM_VAR_*` variables out of the process environment.
    pub fn env_from_process() -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let name = k.to_str()?.strip_prefix("FLEETFORM_VAR_")?.to_string();
                Some((name, v.to_str()?.to_string()))
            })
            .collect()
    }
}

/// The result of loading a directory: the sources (for rendering), the model
/// if there were no errors, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    /// Every file read, so diagnostics can be rendered with snippets.
    pub sources: SourceSet,
    /// The model; `None` when any error was found.
    pub config: Option<Config>,
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// Where the state lives, as far as the configuration tells even when
    /// other parts of it have errors (commands that only read the state
    /// need no more than this).
    pub state_location: StateLocation,
    /// The values of the sensitive variables (in memory only).
    pub secrets: Secrets,
    /// Files the configuration read with `file()`/`templatefile()`, relative
    /// to its directory, sorted.
    pub read_files: Vec<String>,
    /// Names of the variables the configuration declares.
    pub variables: Vec<String>,
}

/// Where the configuration says its state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// No `backend` block (or no configuration at all): the local default,
    /// `.fleetform/` beside the configuration.
    Default,
    /// The `backend` block.
    Declared(Backend),
    /// Cannot be told: the `backend` block has errors, or a `*.hcl` file could
    /// not be read or parsed (it may hold the block). The diagnostics say why.
    Unknown,
}

impl Loaded {
    /// True when an error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// One parsed file.
pub(crate) struct ParsedFile {
    pub id: usize,
    pub body: Body,
    /// Its top-level `worker_type` blocks, when they are not in `body` but
    /// left to be parsed once the rest of the configuration is decoded.
    pub deferred: Option<Deferred>,
    /// Its locals taken out of `body` (see `shape`).
    pub shaped: Vec<shape::ShapedLocal>,
}

/// The top-level `worker_type` blocks of a file, not parsed yet: its text
/// and where they are in it (see `split`).
pub(crate) struct Deferred {
    pub text: Arc<str>,
    pub ranges: Vec<std::ops::Range<usize>>,
}

/// The deferred worker types of a file did not parse into the blocks the
/// scan found (a syntax error in one, most likely): the load starts again
/// with every file parsed whole, as the parser's diagnostics are of whole
/// files.
pub(crate) struct Unsplit;

/// Reads and parses every `*.hcl` file of `dir`: the parsed files, their
/// sources, and diagnostics for the ones that could not be read or parsed.
pub(crate) fn parse_dir(dir: &Path) -> (Vec<ParsedFile>, SourceSet, Vec<Diagnostic>) {
    let mut sources = SourceSet::new();
    let mut diags = Diagnostics::default();
    let (files, _) = read_dir(dir, &BTreeMap::new(), &mut sources, &mut diags, false);
    (files, sources, diags.sorted())
}

/// What an editor changes about a load ([`load_dir_with`]): the texts of its
/// unsaved buffers, and whether a variable without a value is an error.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    /// File name inside the directory (e.g. `workers.hcl`) -> the text to use
    /// instead of the file's contents. A `*.hcl` name that is not on disk
    /// (a new buffer, or a file deleted while open) is loaded too.
    pub files: BTreeMap<String, Arc<str>>,
    /// While editing, a variable without a value is not reported: the
    /// `variable-unset` diagnostics are left out. Whatever refers to such a
    /// variable is not evaluated (as after any error in a value), so no
    /// diagnostic follows from the missing value; [`Loaded::config`] is then
    /// `None` when a value the model needs came from one.
    pub unset_variables_unknown: bool,
}

/// Loads, evaluates and checks the configuration in `dir`.
pub fn load_dir(dir: &Path, inputs: &Inputs) -> Loaded {
    load_dir_with(dir, inputs, &Overlay::default())
}

/// [`load_dir`] with an editor's [`Overlay`]: unsaved buffers over the files
/// of `dir`, and optionally no errors for unset variables.
pub fn load_dir_with(dir: &Path, inputs: &Inputs, overlay: &Overlay) -> Loaded {
    match load(dir, inputs, overlay, true) {
        Ok(loaded) => loaded,
        Err(Unsplit) => match load(dir, inputs, overlay, false) {
            Ok(loaded) => loaded,
            // Nothing is deferred when nothing is split; named only so that
            // no input can reach a panic.
            Err(Unsplit) => Loaded {
                sources: SourceSet::new(),
                config: None,
                diagnostics: vec![Diagnostic::error(
                    Code::Io,
                    format!(
                        "the configuration in `{}` could not be loaded",
                        dir.display()
                    ),
                )
                .help("run `fleetform validate` on it again; if this persists, report it")],
                state_location: StateLocation::Unknown,
                secrets: Secrets::default(),
                read_files: Vec::new(),
                variables: Vec::new(),
            },
        },
    }
}

/// [`load_dir_with`], with the worker types of large files parsed after the
/// rest (`split`) or every file parsed whole.
fn load(dir: &Path, inputs: &Inputs, overlay: &Overlay, split: bool) -> Result<Loaded, Unsplit> {
    let mut sources = SourceSet::new();
    let mut diags = Diagnostics::default();
    let (mut files, all_parsed) = read_dir(dir, &overlay.files, &mut sources, &mut diags, split);
    let (config, backend, secrets, read_files, variables) = if files.is_empty() {
        (
            None,
            decode::BackendDecl::Absent,
            Secrets::default(),
            Vec::new(),
            Vec::new(),
        )
    } else {
        let _guard = functions::ConfigDirGuard::set(dir);
        let shaped: decode::Shaped = files
            .iter_mut()
            .flat_map(|file| {
                let id = file.id;
                std::mem::take(&mut file.shaped)
                    .into_iter()
                    .map(move |local| ((id, local.key_start), local))
            })
            .collect();
        let (config, backend, secrets, variables) =
            decode::decode(&files, shaped, &mut sources, inputs, &mut diags)?;
        drop_in_background(files);
        if let Some(config) = &config {
            checks::static_checks(config, &mut diags);
        }
        let read_files = functions::read_log()
            .map(|log| log.files())
            .unwrap_or_default();
        (config, backend, secrets, read_files, variables)
    };
    let state_location = match backend {
        _ if !all_parsed => StateLocation::Unknown,
        decode::BackendDecl::Absent => StateLocation::Default,
        decode::BackendDecl::Declared(backend) => StateLocation::Declared(backend),
        decode::BackendDecl::Invalid => StateLocation::Unknown,
    };
    let mut diagnostics = diags.sorted();
    if overlay.unset_variables_unknown {
        diagnostics.retain(|d| d.code != Code::VariableUnset);
    }
    let config = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        config
    };
    sources.hide(&secrets);
    for d in &mut diagnostics {
        d.scrub(&secrets);
    }
    Ok(Loaded {
        sources,
        config,
        diagnostics,
        state_location,
        secrets,
        read_files,
        variables,
    })
}

/// Frees the syntax trees on another thread: for a fleet of thousands of
/// worker types, freeing them takes as long as decoding them, and nothing
/// waits for it.
fn drop_in_background(files: Vec<ParsedFile>) {
    // Below this many top-level blocks a thread costs more than it saves.
    const SMALL: usize = 256;
    if files.iter().map(|f| f.body.len()).sum::<usize>() < SMALL {
        return;
    }
    // If no thread can be started, the trees are freed here when the closure is dropped.
    let _ = std::thread::Builder::new()
        .name("fleetform-free".into())
        .spawn(move || drop(files));
}

/// Reads and parses every `*.hcl` file of `dir`, sorted by name, taking the
/// text of those named in `overlay` from there (and adding those not on disk).
/// The flag is true when every `*.hcl` file found was read and parsed.
fn read_dir(
    dir: &Path,
    overlay: &BTreeMap<String, Arc<str>>,
    sources: &mut SourceSet,
    diags: &mut Diagnostics,
    split: bool,
) -> (Vec<ParsedFile>, bool) {
    let entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
        // A buffer open in a directory that is gone still gets its diagnostics.
        Err(_) if !overlay.is_empty() => Vec::new(),
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                format!("config directory `{}` does not exist", dir.display())
            } else {
                format!("cannot read config directory `{}`: {e}", dir.display())
            };
            diags.push(
                Diagnostic::error(Code::Io, message)
                    .help("pass the directory that holds your *.hcl files, e.g. `fleetform validate examples/quickstart`"),
            );
            return (Vec::new(), true);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|ext| ext == "hcl") && p.is_file())
        .chain(
            overlay
                .keys()
                .filter(|name| name.ends_with(".hcl") && !name.contains(['/', '\\']))
                .map(|name| dir.join(name)),
        )
        .collect();
    paths.sort();
    paths.dedup();
    if paths.is_empty() {
        diags.push(
            Diagnostic::error(
                Code::NoConfig,
                format!("no *.hcl files in `{}`", dir.display()),
            )
            .help("a configuration is every *.hcl file of one directory; see examples/quickstart"),
        );
        return (Vec::new(), true);
    }
    // An editor's buffer is parsed whole: it is where a syntax error is
    // being typed, which in a deferred part would cost a second load.
    let texts: Vec<(FileId, Arc<str>, bool)> = paths
        .iter()
        .filter_map(|path| {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            match overlay.get(&name) {
                Some(text) => {
                    let (id, text) = overlay_text(path, name, text, sources);
                    Some((id, text, false))
                }
                None => read_text(path, name, sources, diags).map(|(id, text)| (id, text, split)),
            }
        })
        .collect();
    let files: Vec<ParsedFile> = parse_all(&texts)
        .into_iter()
        .zip(&texts)
        .filter_map(|(parsed, (id, text, _))| match parsed {
            Ok((body, deferred, shaped)) => Some(ParsedFile {
                id: *id,
                body,
                deferred,
                shaped,
            }),
            Err(error) => {
                diags.push(syntax_diagnostic(*id, text, &error));
                None
            }
        })
        .collect();
    let all_parsed = files.len() == paths.len();
    (files, all_parsed)
}

/// Parses every text, on every core: a fleet of thousands of worker types is
/// tens of files, and parsing is most of loading. Results are in the order of
/// `texts`. From a text marked to be split, the top-level worker types are
/// left out of its body and deferred (see `split`), unless the rest does
/// not parse. The lists and objects of its locals are taken out of the
/// body as values (see `shape`).
#[allow(clippy::type_complexity)]
fn parse_all(
    texts: &[(FileId, Arc<str>, bool)],
) -> Vec<Result<(Body, Option<Deferred>, Vec<shape::ShapedLocal>), hcl_edit::parser::Error>> {
    use rayon::prelude::*;
    let parse = |text: &Arc<str>, split: bool| {
        if split {
            if let Some(ranges) = split::worker_type_ranges(text).filter(|r| !r.is_empty()) {
                let rest = split::complement(text.len(), &ranges);
                // A syntax error in the rest is reported from the whole file.
                if let Some(Ok(body)) =
                    split::blanked(text, &rest).map(|rest| hcl_edit::parser::parse_body(&rest))
                {
                    let deferred = Deferred {
                        text: text.clone(),
                        ranges,
                    };
                    return Ok((body, Some(deferred)));
                }
            }
        }
        hcl_edit::parser::parse_body(text).map(|body| (body, None))
    };
    texts
        .par_iter()
        .map(|(_, text, split)| {
            let (mut body, deferred) = parse(text, *split)?;
            let shaped = if *split {
                shape::take_locals(&mut body)
            } else {
                Vec::new()
            };
            Ok((body, deferred, shaped))
        })
        .collect()
}

/// Reads one `-var-file` into `sources` (marked as such) and parses it;
/// `None` (with a diagnostic) if it cannot.
pub(crate) fn read_var_file(
    path: &Path,
    name: String,
    sources: &mut SourceSet,
    diags: &mut Diagnostics,
) -> Option<ParsedFile> {
    let (id, text) = read_text(path, name, sources, diags)?;
    sources.mark_var_file(id);
    match hcl_edit::parser::parse_body(&text) {
        Ok(body) => Some(ParsedFile {
            id,
            body,
            deferred: None,
            shaped: Vec::new(),
        }),
        Err(error) => {
            diags.push(syntax_diagnostic(id, &text, &error));
            None
        }
    }
}

/// Reads one HCL file into `sources`; `None` (with a diagnostic) if it cannot
/// be read or is not UTF-8.
fn read_text(
    path: &Path,
    name: String,
    sources: &mut SourceSet,
    diags: &mut Diagnostics,
) -> Option<(FileId, Arc<str>)> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_CONFIG_FILE_BYTES => {
            diags.push(
                Diagnostic::error(
                    Code::Io,
                    format!(
                        "`{name}` is {} MiB; configuration files may be at most {} MiB",
                        meta.len() / (1024 * 1024),
                        MAX_CONFIG_FILE_BYTES / (1024 * 1024)
                    ),
                )
                .help("split the configuration into several *.hcl files, or move data out of it"),
            );
            return None;
        }
        Ok(_) => {}
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::Io,
                format!("cannot read `{name}`: {e}"),
            ));
            return None;
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::Io,
                format!("cannot read `{name}`: {e}"),
            ));
            return None;
        }
    };
    let (text, bad_at) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
        }
    };
    let text: Arc<str> = Arc::from(text);
    let id = sources.add(SourceFile {
        name: name.clone(),
        path: path.to_path_buf(),
        text: Arc::clone(&text),
        var_file: false,
    });
    if let Some(at) = bad_at {
        // The lossy text has U+FFFD (3 bytes) where the bad byte was; the offset of the
        // first bad byte is the same in both.
        diags.push(
            Diagnostic::error(Code::Encoding, format!("`{name}` is not valid UTF-8"))
                .at(
                    Some(SourceRef {
                        file: id,
                        span: at..at + 1,
                    }),
                    "first invalid byte",
                )
                .help("save the file as UTF-8"),
        );
        return None;
    }
    Some((id, text))
}

/// Adds an editor's buffer for `path` to `sources`, as [`read_text`] adds a file.
fn overlay_text(
    path: &Path,
    name: String,
    text: &Arc<str>,
    sources: &mut SourceSet,
) -> (FileId, Arc<str>) {
    let id = sources.add(SourceFile {
        name,
        path: path.to_path_buf(),
        text: Arc::clone(text),
        var_file: false,
    });
    (id, Arc::clone(text))
}

fn syntax_diagnostic(file: usize, text: &str, error: &hcl_edit::parser::Error) -> Diagnostic {
    let location = error.location();
    let offset = offset_of(text, location.line(), location.column());
    let end = (offset + 1).min(text.len()).max(offset);
    let line = error.line().trim();
    let one_line_block = line.contains('{')
        && line.contains('}')
        && line.matches('=').count() > 1
        && !line.contains('"');
    let help = if one_line_block {
        "a block on one line holds at most one attribute; put each attribute on its own line \
         (`fleetform fmt` keeps the rest of the file as it is)"
    } else {
        "fix the syntax here; see the language reference in README.md"
    };
    Diagnostic::error(Code::Syntax, format!("invalid HCL: {}", error.message()))
        .at(
            Some(SourceRef {
                file,
                span: offset..end,
            }),
            "here",
        )
        .help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLEET: &str =
        "fleet \"f\" {\n  account_id = \"123456789012\"\n  regions    = [\"us-east-1\"]\n}\n";

    fn codes(loaded: &Loaded) -> Vec<Code> {
        loaded.diagnostics.iter().map(|d| d.code).collect()
    }

    #[test]
    fn an_overlay_replaces_a_file_and_adds_one_not_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = FLEET.replace("regions", "regoins");
        std::fs::write(dir.path().join("fleet.hcl"), broken).expect("write");
        let on_disk = load_dir(dir.path(), &Inputs::default());
        assert!(codes(&on_disk).contains(&Code::UnknownAttribute));

        let mut overlay = Overlay::default();
        overlay.files.insert("fleet.hcl".into(), Arc::from(FLEET));
        overlay
            .files
            .insert("vars.hcl".into(), Arc::from("variable \"owner\" {}\n"));
        let edited = load_dir_with(dir.path(), &Inputs::default(), &overlay);
        assert_eq!(codes(&edited), [Code::VariableUnset]);
        let names: Vec<&str> = edited
            .sources
            .files()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["fleet.hcl", "vars.hcl"]);

        overlay.unset_variables_unknown = true;
        let editing = load_dir_with(dir.path(), &Inputs::default(), &overlay);
        assert_eq!(codes(&editing), []);
        assert!(editing.config.is_some());
    }

    #[test]
    fn an_overlay_loads_when_its_directory_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gone = dir.path().join("gone");
        let mut overlay = Overlay::default();
        overlay.files.insert("fleet.hcl".into(), Arc::from(FLEET));
        // Names that are not plain file names are ignored, not read.
        overlay
            .files
            .insert("../escape.hcl".into(), Arc::from("nonsense {"));
        let loaded = load_dir_with(&gone, &Inputs::default(), &overlay);
        assert_eq!(codes(&loaded), []);
        assert_eq!(loaded.sources.files().len(), 1);
        assert_eq!(codes(&load_dir(&gone, &Inputs::default())), [Code::Io]);
    }
}

#[cfg(test)]
mod split_tests {
    //! A load that parses worker types after the rest (`split`) gives the
    //! model and the diagnostics of one that parses every file whole.
    use super::*;

    fn loaded(dir: &Path, split: bool) -> Result<Loaded, Unsplit> {
        load(dir, &Inputs::default(), &Overlay::default(), split)
    }

    /// The files of `dir` whose worker types a split load defers.
    fn deferred_files(dir: &Path) -> usize {
        let mut sources = SourceSet::new();
        let mut diags = Diagnostics::default();
        let (files, _) = read_dir(dir, &BTreeMap::new(), &mut sources, &mut diags, true);
        files.iter().filter(|f| f.deferred.is_some()).count()
    }

    fn assert_same(dir: &Path) -> Loaded {
        let Ok(split) = loaded(dir, true) else {
            panic!(
                "the split load of {} went back to whole files",
                dir.display()
            );
        };
        let Ok(whole) = loaded(dir, false) else {
            panic!("a whole load defers nothing");
        };
        assert_eq!(split.config, whole.config, "{}", dir.display());
        assert_eq!(split.diagnostics, whole.diagnostics, "{}", dir.display());
        split
    }

    /// Loads `dir` with `later` as x.hcl beside the other files, which
    /// `why` makes the split load give up: the load then reports what a
    /// whole load does.
    fn reloaded_whole(dir: &Path, later: &str, why: &str) -> Loaded {
        write(
            dir,
            &[
                ("a.hcl", GLOBALS),
                ("workers.hcl", WORKERS),
                ("x.hcl", later),
            ],
        );
        assert!(loaded(dir, true).is_err(), "{why} goes back to whole files");
        let Ok(whole) = loaded(dir, false) else {
            panic!("a whole load defers nothing");
        };
        let loaded = load_dir(dir, &Inputs::default());
        assert_eq!(loaded.diagnostics, whole.diagnostics);
        loaded
    }

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("write");
        }
    }

    const GLOBALS: &str = r#"
fleet "f" {
  account_id = "123456789012"
  regions    = ["us-east-1", "us-west-2"]
}
variable "owner" { default = "releng" }
key_pair "workers" { public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@b" }
ami_set "ubuntu" {
  virtualization = "hvm"
  architecture   = "x86_64"
  images = { "us-east-1" = "ami-785db401", "us-west-2" = "ami-785db401" }
}
"#;

    const WORKERS: &str = r#"
# worker_type "commented" { }
worker_type "plain" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers
  instance_type "m5.large" { capacity = 1 }
  capacity {
    min = 1
    max = 4
  }
  user_data = <<-EOT
    #!/bin/sh
    echo "} { ${local.tags.owner}"
    EOT
  tags = merge(local.tags, { note = "a } in a string" })
}

worker_type "dynamic" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers
  dynamic "instance_type" {
    for_each = { "c5.large" = 1, "c5.xlarge" = 2 }
    labels   = [instance_type.key]
    content { capacity = instance_type.value }
  }
  capacity {
    min = 0
    max = 2
  }
}

worker_type "repeated" {
  for_each = local.pools
  name     = "pool/${each.key}"
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers
  instance_type "t3.medium" { capacity = 1 }
  capacity {
    min = 0
    max = each.value
  }
}

worker_type "Bad Label" {
  ami_set = ami_set.ubuntu
}

worker_type "unknown-field" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers
  instance_type "t3.medium" { capacity = 1 }
  capacity {
    min = 0
    max = 1
  }
  colour = "blue"
}
"#;

    // Sorts after workers.hcl: its `plain` is the second one, and its
    // locals are what the worker types above refer to.
    const LATER: &str = r#"
worker_type "plain" {
  ami_set = ami_set.ubuntu
}
locals {
  tags   = { owner = var.owner }
  pools  = { a = 2, b = 3 }
  images = { a = { ami = ami_set.ubuntu, owners = [var.owner, "x"], n = local.pools.b } }
}
worker_type "last" {
  ami_set  = ami_set.ubuntu
  key_pair = key_pair.workers
  regions  = ["us-west-2"]
  instance_type "t3.small" { capacity = 1 }
  capacity {
    min = 0
    max = 1
  }
}
"#;

    #[test]
    fn a_split_load_gives_the_model_and_diagnostics_of_a_whole_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("a.hcl", GLOBALS),
                ("workers.hcl", WORKERS),
                ("x.hcl", LATER),
            ],
        );
        assert_eq!(deferred_files(dir.path()), 2);
        let loaded = assert_same(dir.path());
        // What the comparison covers: a duplicate, a bad label and an unknown
        // attribute reported, so no model.
        let codes: Vec<Code> = loaded.diagnostics.iter().map(|d| d.code).collect();
        assert!(codes.contains(&Code::Duplicate), "{codes:?}");
        assert!(codes.contains(&Code::UnknownAttribute), "{codes:?}");
        assert!(loaded.config.is_none());
    }

    #[test]
    fn a_split_load_of_a_valid_fleet_decodes_every_kind_of_worker_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workers = WORKERS
            .replace(
                "worker_type \"Bad Label\" {\n  ami_set = ami_set.ubuntu\n}\n",
                "",
            )
            .replace("  colour = \"blue\"\n", "");
        let later = LATER.replacen(
            "worker_type \"plain\" {\n  ami_set = ami_set.ubuntu\n}\n",
            "",
            1,
        );
        write(
            dir.path(),
            &[
                ("a.hcl", GLOBALS),
                ("workers.hcl", &workers),
                ("x.hcl", &later),
            ],
        );
        let loaded = assert_same(dir.path());
        let Some(config) = loaded.config else {
            panic!("a valid fleet: {:#?}", loaded.diagnostics);
        };
        let names: Vec<&str> = config.worker_types.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "dynamic",
                "last",
                "plain",
                "repeated[\"a\"]",
                "repeated[\"b\"]",
                "unknown-field"
            ]
        );
        let plain = &config.worker_types["plain"];
        assert!(plain
            .user_data
            .as_deref()
            .is_some_and(|u| u.contains("} { releng")));
    }

    #[test]
    fn a_local_whose_path_does_not_resolve_is_reported_as_from_a_whole_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = LATER.replace(
            "pools  = { a = 2, b = 3 }",
            "pools  = { a = 2, b = 3 }\n  wrong  = { a = var.owner.nope }\n  typo   = [local.nope]",
        );
        let loaded = reloaded_whole(dir.path(), &broken, "a shape that does not fold");
        // What is reported in x.hcl, by code.
        let in_broken: Vec<(Code, &str)> = loaded
            .diagnostics
            .iter()
            .filter_map(|d| Some((d.code, d.location.as_ref()?)))
            .filter(|(_, at)| loaded.sources.file(at.file).name == "x.hcl")
            .map(|(code, at)| (code, &broken[at.span.clone()]))
            .collect();
        assert!(
            in_broken.contains(&(Code::UndefinedReference, "local.nope")),
            "{in_broken:?}"
        );
        assert!(
            in_broken
                .iter()
                .any(|(_, text)| text.contains("var.owner.nope")),
            "{in_broken:?}"
        );
    }

    #[test]
    fn the_examples_load_the_same_split_and_whole() {
        for name in ["quickstart", "firefox-ci"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../examples")
                .join(name);
            let loaded = assert_same(&dir);
            assert!(loaded.config.is_some(), "{name}: {:?}", loaded.diagnostics);
        }
    }

    #[test]
    fn an_editors_buffer_is_parsed_whole_so_a_syntax_error_in_it_costs_no_second_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("a.hcl", GLOBALS),
                ("workers.hcl", WORKERS),
                ("x.hcl", LATER),
            ],
        );
        let typing = LATER.replace("min = 0\n    max = 1", "min = 0\n    max = = 1");
        let overlay = Overlay {
            files: BTreeMap::from([("x.hcl".to_string(), Arc::from(typing.as_str()))]),
            unset_variables_unknown: true,
        };
        let Ok(split) = load(dir.path(), &Inputs::default(), &overlay, true) else {
            panic!("the buffer went to a deferred part");
        };
        let Ok(whole) = load(dir.path(), &Inputs::default(), &overlay, false) else {
            panic!("a whole load defers nothing");
        };
        assert_eq!(split.diagnostics, whole.diagnostics);
        assert!(split.diagnostics.iter().any(|d| d.code == Code::Syntax));
    }

    #[test]
    fn a_syntax_error_in_a_worker_type_is_reported_as_from_a_whole_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broken = LATER.replace("min = 0\n    max = 1", "min = 0\n    max = = 1");
        let loaded = reloaded_whole(dir.path(), &broken, "a split part that does not parse");
        assert!(loaded.diagnostics.iter().any(|d| d.code == Code::Syntax));
        assert_eq!(loaded.state_location, StateLocation::Unknown);
    }
}

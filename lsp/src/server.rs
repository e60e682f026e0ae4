//! The server loop: documents, the directories they belong to, and the
//! diagnostics published for every file of those directories.

use crate::features;
use crate::position::{Encoding, LineIndex};
use crate::syntax::FileIndex;
use crate::transport::{spawn_reader, Incoming};
use fleetform_engine::{Inputs, Loaded, Overlay};
use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::Notification as _;
use lsp_types::request::Request as _;
use lsp_types::{notification, request, Uri};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// How the server ended.
#[derive(Debug)]
pub enum Outcome {
    /// `shutdown` then `exit`: the client ended the session.
    Exited,
    /// `exit` without `shutdown` first.
    ExitedWithoutShutdown,
    /// The input ended without `exit` (the client went away).
    Disconnected,
    /// Writing to the client failed.
    Failed(std::io::Error),
}

impl Outcome {
    /// The process exit code the LSP specification asks for: 0 after a
    /// `shutdown`, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Exited => 0,
            _ => 1,
        }
    }
}

/// An open document.
pub(crate) struct Doc {
    pub(crate) uri: Uri,
    pub(crate) version: i32,
    pub(crate) text: Arc<str>,
    pub(crate) lines: LineIndex,
}

/// One file of a directory as the features see it: the buffer if open, else the disk.
pub(crate) struct FileView {
    pub(crate) path: PathBuf,
    pub(crate) uri: Uri,
    pub(crate) text: Arc<str>,
    pub(crate) lines: LineIndex,
}

/// Per file, the text an index was built from and the index (`None`: it did not parse).
type IndexCache = BTreeMap<PathBuf, (Arc<str>, Option<Arc<FileIndex>>)>;

/// Everything the server holds between messages.
pub(crate) struct Server {
    out: Box<dyn Write>,
    pub(crate) encoding: Encoding,
    pub(crate) docs: BTreeMap<PathBuf, Doc>,
    /// Directories whose diagnostics are out of date.
    dirty: BTreeSet<PathBuf>,
    /// Per directory, the files last published with diagnostics.
    published: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// Per directory, the last load (its model serves hover).
    pub(crate) loads: BTreeMap<PathBuf, Loaded>,
    inputs: Inputs,
    shutdown: bool,
    /// Each file's index with the text it was built from: a request on a
    /// large configuration re-indexes only the files that changed.
    indexes: RefCell<IndexCache>,
}

/// Serves one client: reads requests from `input` and writes to `output`
/// until `exit` or the end of the input.
pub fn serve(input: impl Read + Send + 'static, output: impl Write + 'static) -> Outcome {
    let incoming = spawn_reader(input);
    let mut server = Server {
        out: Box::new(output),
        encoding: Encoding::Utf16,
        docs: BTreeMap::new(),
        dirty: BTreeSet::new(),
        published: BTreeMap::new(),
        loads: BTreeMap::new(),
        inputs: Inputs {
            env: Inputs::env_from_process(),
            ..Inputs::default()
        },
        shutdown: false,
        indexes: RefCell::new(BTreeMap::new()),
    };
    if let Err(e) = server.initialize(&incoming) {
        return e;
    }
    loop {
        let Ok(first) = incoming.recv() else {
            return Outcome::Disconnected;
        };
        // Take every message already waiting before loading: a burst of
        // keystrokes costs one load, not one per keystroke.
        let mut batch = vec![first];
        batch.extend(incoming.try_iter());
        for message in batch {
            match server.handle(message) {
                Ok(None) => {}
                Ok(Some(outcome)) => return outcome,
                Err(e) => return Outcome::Failed(e),
            }
        }
        if let Err(e) = server.flush() {
            return Outcome::Failed(e);
        }
    }
}

/// Serves the client on this process's stdin and stdout.
pub fn run_stdio() -> Outcome {
    serve(std::io::stdin(), std::io::stdout())
}

impl Server {
    /// Answers requests with "not initialized" until `initialize` comes, then
    /// negotiates the position encoding and sends the capabilities.
    fn initialize(
        &mut self,
        incoming: &std::sync::mpsc::Receiver<Incoming>,
    ) -> Result<(), Outcome> {
        loop {
            let Ok(message) = incoming.recv() else {
                return Err(Outcome::Disconnected);
            };
            let message = match message {
                Incoming::Message { message, .. } => message,
                Incoming::Malformed(why) => {
                    eprintln!("fleetform lsp: {why}");
                    continue;
                }
            };
            match message {
                Message::Request(req) if req.method == request::Initialize::METHOD => {
                    let params: lsp_types::InitializeParams =
                        match serde_json::from_value(req.params) {
                            Ok(params) => params,
                            Err(e) => {
                                self.send(Response::new_err(
                                    req.id,
                                    ErrorCode::InvalidParams as i32,
                                    format!("initialize: {e}"),
                                ))
                                .map_err(Outcome::Failed)?;
                                continue;
                            }
                        };
                    self.encoding = negotiate(&params);
                    let result = lsp_types::InitializeResult {
                        capabilities: features::capabilities(self.encoding),
                        server_info: Some(lsp_types::ServerInfo {
                            name: "fleetform".into(),
                            version: Some(env!("CARGO_PKG_VERSION").into()),
                        }),
                    };
                    self.send(ok(req.id, result)).map_err(Outcome::Failed)?;
                    return Ok(());
                }
                Message::Request(req) => self
                    .send(Response::new_err(
                        req.id,
                        ErrorCode::ServerNotInitialized as i32,
                        "the server is not initialized yet".into(),
                    ))
                    .map_err(Outcome::Failed)?,
                Message::Notification(n) if n.method == notification::Exit::METHOD => {
                    return Err(Outcome::ExitedWithoutShutdown)
                }
                _ => {}
            }
        }
    }

    fn handle(&mut self, incoming: Incoming) -> std::io::Result<Option<Outcome>> {
        let message = match incoming {
            Incoming::Message { message, lossy } => {
                if lossy {
                    self.show(
                        lsp_types::MessageType::WARNING,
                        "a message from the editor was not valid UTF-8; its invalid bytes were replaced by U+FFFD",
                    )?;
                }
                message
            }
            Incoming::Malformed(why) => {
                eprintln!("fleetform lsp: {why}");
                return Ok(None);
            }
        };
        match message {
            Message::Request(req) => {
                self.flush()?;
                let response = self.request(req);
                self.send(response)?;
            }
            Message::Notification(n) => {
                if n.method == notification::Exit::METHOD {
                    return Ok(Some(if self.shutdown {
                        Outcome::Exited
                    } else {
                        Outcome::ExitedWithoutShutdown
                    }));
                }
                self.notification(n);
            }
            Message::Response(_) => {}
        }
        Ok(None)
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        if self.shutdown {
            return Response::new_err(
                id,
                ErrorCode::InvalidRequest as i32,
                "the server is shutting down".into(),
            );
        }
        let result = match req.method.as_str() {
            request::Shutdown::METHOD => {
                self.shutdown = true;
                Ok(serde_json::Value::Null)
            }
            request::Formatting::METHOD => params(req).and_then(|p| features::formatting(self, p)),
            request::Completion::METHOD => params(req).and_then(|p| features::completion(self, p)),
            request::HoverRequest::METHOD => params(req).and_then(|p| features::hover(self, p)),
            request::GotoDefinition::METHOD => {
                params(req).and_then(|p| features::definition(self, p))
            }
            request::References::METHOD => params(req).and_then(|p| features::references(self, p)),
            request::PrepareRenameRequest::METHOD => {
                params(req).and_then(|p| features::prepare_rename(self, p))
            }
            request::Rename::METHOD => params(req).and_then(|p| features::rename(self, p)),
            request::DocumentSymbolRequest::METHOD => {
                params(req).and_then(|p| features::symbols(self, p))
            }
            _ => Err((
                ErrorCode::MethodNotFound,
                format!("fleetform lsp does not handle `{}`", req.method),
            )),
        };
        match result {
            Ok(value) => Response {
                id,
                result: Some(value),
                error: None,
            },
            Err((code, message)) => Response::new_err(id, code as i32, message),
        }
    }

    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            notification::DidOpenTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                else {
                    return;
                };
                let Some(path) = file_path(&p.text_document.uri) else {
                    return;
                };
                let text: Arc<str> = Arc::from(p.text_document.text);
                self.mark(&path);
                self.docs.insert(
                    path,
                    Doc {
                        uri: p.text_document.uri,
                        version: p.text_document.version,
                        lines: LineIndex::new(&text),
                        text,
                    },
                );
            }
            notification::DidChangeTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return;
                };
                let Some(path) = file_path(&p.text_document.uri) else {
                    return;
                };
                let encoding = self.encoding;
                let Some(doc) = self.docs.get_mut(&path) else {
                    return;
                };
                let mut text = doc.text.to_string();
                for change in p.content_changes {
                    match change.range {
                        Some(range) => {
                            // Each change applies to the text as the previous one left it.
                            let lines = LineIndex::new(&text);
                            let start = lines.offset(&text, range.start, encoding);
                            let end = lines.offset(&text, range.end, encoding).max(start);
                            text.replace_range(start..end, &change.text);
                        }
                        None => text = change.text,
                    }
                }
                doc.text = Arc::from(text);
                doc.lines = LineIndex::new(&doc.text);
                doc.version = p.text_document.version;
                self.mark(&path);
            }
            notification::DidCloseTextDocument::METHOD => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                else {
                    return;
                };
                if let Some(path) = file_path(&p.text_document.uri) {
                    self.docs.remove(&path);
                    self.mark(&path);
                }
            }
            notification::DidSaveTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidSaveTextDocumentParams>(n.params)
                {
                    if let Some(path) = file_path(&p.text_document.uri) {
                        self.mark(&path);
                    }
                }
            }
            notification::DidChangeWatchedFiles::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeWatchedFilesParams>(n.params)
                {
                    for change in p.changes {
                        if let Some(path) = file_path(&change.uri) {
                            self.mark(&path);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Marks the directory of `path` for a new load.
    fn mark(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.dirty.insert(dir.to_path_buf());
        }
    }

    /// Loads every dirty directory and publishes its diagnostics.
    fn flush(&mut self) -> std::io::Result<()> {
        let dirty = std::mem::take(&mut self.dirty);
        for dir in dirty {
            self.publish_dir(&dir)?;
        }
        Ok(())
    }

    /// The open documents of `dir`, by file name.
    fn overlay(&self, dir: &Path) -> Overlay {
        let files = self
            .docs
            .iter()
            .filter(|(path, _)| path.parent() == Some(dir))
            .filter_map(|(path, doc)| {
                let name = path.file_name()?.to_str()?.to_string();
                Some((name, Arc::clone(&doc.text)))
            })
            .collect();
        Overlay {
            files,
            unset_variables_unknown: true,
        }
    }

    /// Loads `dir` (with its open buffers) and publishes diagnostics for each
    /// of its files, empty for files that became clean.
    pub(crate) fn publish_dir(&mut self, dir: &Path) -> std::io::Result<()> {
        let overlay = self.overlay(dir);
        let loaded = fleetform_engine::load_dir_with(dir, &self.inputs, &overlay);
        let mut by_file: BTreeMap<PathBuf, Vec<lsp_types::Diagnostic>> = BTreeMap::new();
        // Diagnostics without a place (no fleet block, an unreadable
        // directory) go to the top of the first open document of the directory.
        let homeless = self.docs.keys().find(|p| p.parent() == Some(dir)).cloned();
        let mut indexes: BTreeMap<usize, LineIndex> = BTreeMap::new();
        for d in &loaded.diagnostics {
            let (path, range) = match &d.location {
                Some(at) if at.file < loaded.sources.files().len() => {
                    let file = loaded.sources.file(at.file);
                    let lines = indexes
                        .entry(at.file)
                        .or_insert_with(|| LineIndex::new(&file.text));
                    (
                        file.path.clone(),
                        lines.range(&file.text, at.span.clone(), self.encoding),
                    )
                }
                _ => match &homeless {
                    Some(path) => (path.clone(), lsp_types::Range::default()),
                    None => continue,
                },
            };
            by_file
                .entry(path)
                .or_default()
                .push(lsp_diagnostic(d, range));
        }
        let before = self.published.remove(dir).unwrap_or_default();
        let mut targets: BTreeSet<PathBuf> = before;
        targets.extend(by_file.keys().cloned());
        targets.extend(
            loaded
                .sources
                .files()
                .iter()
                .filter(|f| !f.var_file)
                .map(|f| f.path.clone()),
        );
        for path in targets {
            let diagnostics = by_file.remove(&path).unwrap_or_default();
            let (uri, version) = match self.docs.get(&path) {
                Some(doc) => (doc.uri.clone(), Some(doc.version)),
                None => match file_uri(&path) {
                    Some(uri) => (uri, None),
                    None => continue,
                },
            };
            if !diagnostics.is_empty() {
                self.published
                    .entry(dir.to_path_buf())
                    .or_default()
                    .insert(path.clone());
            }
            let params = lsp_types::PublishDiagnosticsParams {
                uri,
                diagnostics,
                version,
            };
            self.send(Notification::new(
                notification::PublishDiagnostics::METHOD.into(),
                params,
            ))?;
        }
        self.loads.insert(dir.to_path_buf(), loaded);
        Ok(())
    }

    /// Every `*.hcl` file of `dir`: open buffers over the files on disk.
    pub(crate) fn files_of(&self, dir: &Path) -> Vec<FileView> {
        let mut paths: BTreeSet<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "hcl") && p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        paths.extend(
            self.docs
                .keys()
                .filter(|p| p.parent() == Some(dir))
                .cloned(),
        );
        paths
            .into_iter()
            .filter_map(|path| self.view(&path))
            .collect()
    }

    /// One file: the open buffer, else the file on disk (if it can be read).
    pub(crate) fn view(&self, path: &Path) -> Option<FileView> {
        if let Some(doc) = self.docs.get(path) {
            return Some(FileView {
                path: path.to_path_buf(),
                uri: doc.uri.clone(),
                text: Arc::clone(&doc.text),
                lines: doc.lines.clone(),
            });
        }
        let meta = std::fs::metadata(path).ok()?;
        if meta.len() > fleetform_engine::config::MAX_CONFIG_FILE_BYTES {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let text: Arc<str> = Arc::from(String::from_utf8(bytes).ok()?);
        Some(FileView {
            path: path.to_path_buf(),
            uri: file_uri(path)?,
            lines: LineIndex::new(&text),
            text,
        })
    }

    /// The index of a file's current text, built again only when it changed.
    pub(crate) fn index_of(&self, view: &FileView) -> Option<Arc<FileIndex>> {
        let mut cache = self.indexes.borrow_mut();
        if let Some((text, index)) = cache.get(&view.path) {
            if Arc::ptr_eq(text, &view.text) || **text == *view.text {
                return index.clone();
            }
        }
        let index = FileIndex::of(&view.text).map(Arc::new);
        cache.insert(view.path.clone(), (Arc::clone(&view.text), index.clone()));
        index
    }

    pub(crate) fn send(&mut self, message: impl Into<Message>) -> std::io::Result<()> {
        message.into().write(&mut self.out)
    }

    /// Tells the user something (window/showMessage).
    pub(crate) fn show(&mut self, typ: lsp_types::MessageType, text: &str) -> std::io::Result<()> {
        self.send(Notification::new(
            notification::ShowMessage::METHOD.into(),
            lsp_types::ShowMessageParams {
                typ,
                message: text.to_string(),
            },
        ))
    }
}

/// What a feature returns: the result, or the error to answer with.
pub(crate) type Answer = Result<serde_json::Value, (ErrorCode, String)>;

fn params<P: serde::de::DeserializeOwned>(req: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(req.params)
        .map_err(|e| (ErrorCode::InvalidParams, format!("{}: {e}", req.method)))
}

fn ok(id: RequestId, result: impl serde::Serialize) -> Response {
    match serde_json::to_value(result) {
        Ok(value) => Response {
            id,
            result: Some(value),
            error: None,
        },
        Err(e) => Response::new_err(id, ErrorCode::InternalError as i32, e.to_string()),
    }
}

/// UTF-8 when the client offers it (fewer conversions, exact for the
/// engine's byte spans), else UTF-16, which every client supports.
fn negotiate(params: &lsp_types::InitializeParams) -> Encoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(kinds) if kinds.contains(&lsp_types::PositionEncodingKind::UTF8) => Encoding::Utf8,
        _ => Encoding::Utf16,
    }
}

/// An engine diagnostic as LSP shows it: same code, severity, message; the
/// label and help (as `validate` prints them) below the message.
fn lsp_diagnostic(
    d: &fleetform_engine::Diagnostic,
    range: lsp_types::Range,
) -> lsp_types::Diagnostic {
    let mut message = d.message.clone();
    if let Some(label) = &d.label {
        message.push_str(&format!("\n{label}"));
    }
    message.push_str(&format!("\nhelp: {}", d.help_text()));
    lsp_types::Diagnostic {
        range,
        severity: Some(match d.severity {
            fleetform_engine::Severity::Error => lsp_types::DiagnosticSeverity::ERROR,
            fleetform_engine::Severity::Warning => lsp_types::DiagnosticSeverity::WARNING,
        }),
        code: Some(lsp_types::NumberOrString::String(d.code.as_str().into())),
        source: Some("fleetform".into()),
        message,
        ..lsp_types::Diagnostic::default()
    }
}

/// The path of a `file:` URI; `None` for other schemes.
pub(crate) fn file_path(uri: &Uri) -> Option<PathBuf> {
    url::Url::parse(uri.as_str()).ok()?.to_file_path().ok()
}

/// The `file:` URI of a path.
pub(crate) fn file_uri(path: &Path) -> Option<Uri> {
    let url = url::Url::from_file_path(path).ok()?;
    Uri::from_str(url.as_str()).ok()
}

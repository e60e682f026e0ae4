//! The requests: completion, hover, navigation, rename, symbols, formatting.

use crate::position::Encoding;
use crate::schema;
use crate::server::{file_path, Answer, FileView, Server};
use crate::syntax::{FileIndex, Kind, Node};
use lsp_server::ErrorCode;
use lsp_types::*;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the server offers, in the negotiated encoding.
pub(crate) fn capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
        }),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..TextDocumentSyncOptions::default()
            },
        )),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "\"".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: WorkDoneProgressOptions::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

type Failure = (ErrorCode, String);

fn failed(message: impl Into<String>) -> Failure {
    (ErrorCode::RequestFailed, message.into())
}

fn json(value: impl serde::Serialize) -> Answer {
    serde_json::to_value(value).map_err(|e| (ErrorCode::InternalError, e.to_string()))
}

/// The files of a document's directory with their indexes, and where the
/// document and the position are among them.
struct Here {
    dir: PathBuf,
    files: Vec<(FileView, Option<Arc<FileIndex>>)>,
    file: usize,
    offset: usize,
}

fn locate(server: &Server, uri: &Uri, position: Option<Position>) -> Result<Here, Failure> {
    let path = file_path(uri).ok_or_else(|| {
        (
            ErrorCode::InvalidParams,
            format!("`{}` is not a file: URI", uri.as_str()),
        )
    })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| failed("the document has no directory"))?;
    let files: Vec<_> = server
        .files_of(&dir)
        .into_iter()
        .map(|view| {
            let index = server.index_of(&view);
            (view, index)
        })
        .collect();
    let file = files
        .iter()
        .position(|(view, _)| view.path == path)
        .ok_or_else(|| failed(format!("`{}` is neither open nor readable", path.display())))?;
    let offset = match position {
        Some(position) => {
            let view = &files[file].0;
            view.lines.offset(&view.text, position, server.encoding)
        }
        None => 0,
    };
    Ok(Here {
        dir,
        files,
        file,
        offset,
    })
}

impl Here {
    fn view(&self) -> &FileView {
        &self.files[self.file].0
    }

    /// The declared or referred name at the position.
    fn symbol(&self) -> Option<(Kind, String)> {
        let index = self.files[self.file].1.as_ref()?;
        let inside =
            |span: &std::ops::Range<usize>| span.start <= self.offset && self.offset <= span.end;
        index
            .refs
            .iter()
            .find(|r| inside(&r.span))
            .map(|r| (r.kind, r.name.clone()))
            .or_else(|| {
                index
                    .defs
                    .iter()
                    .find(|d| inside(&d.name_span))
                    .map(|d| (d.kind, d.name.clone()))
            })
    }

    fn location(&self, file: usize, span: std::ops::Range<usize>, encoding: Encoding) -> Location {
        let view = &self.files[file].0;
        Location {
            uri: view.uri.clone(),
            range: view.lines.range(&view.text, span, encoding),
        }
    }

    /// Every declaration of the name, as (file, def).
    fn defs<'a>(
        &'a self,
        kind: Kind,
        name: &'a str,
    ) -> impl Iterator<Item = (usize, &'a crate::syntax::Def)> + 'a {
        self.files
            .iter()
            .enumerate()
            .flat_map(move |(i, (_, index))| {
                index
                    .iter()
                    .flat_map(|x| x.defs.iter())
                    .filter(move |d| d.kind == kind && d.name == name)
                    .map(move |d| (i, d))
            })
    }

    /// Every reference to the name, as (file, ref).
    fn refs<'a>(
        &'a self,
        kind: Kind,
        name: &'a str,
    ) -> impl Iterator<Item = (usize, &'a crate::syntax::Ref)> + 'a {
        self.files
            .iter()
            .enumerate()
            .flat_map(move |(i, (_, index))| {
                index
                    .iter()
                    .flat_map(|x| x.refs.iter())
                    .filter(move |r| r.kind == kind && r.name == name)
                    .map(move |r| (i, r))
            })
    }
}

/// `textDocument/formatting`: exactly what `fleetform fmt` writes.
pub(crate) fn formatting(server: &mut Server, p: DocumentFormattingParams) -> Answer {
    let here = locate(server, &p.text_document.uri, None)?;
    let view = here.view();
    let formatted = fleetform_engine::fmt::format_source(&view.text)
        .map_err(|e| failed(format!("cannot format: invalid HCL: {}", e.message())))?;
    if formatted == *view.text {
        return json(Vec::<TextEdit>::new());
    }
    json(vec![TextEdit {
        range: view
            .lines
            .range(&view.text, 0..view.text.len(), server.encoding),
        new_text: formatted,
    }])
}

/// `textDocument/definition`.
pub(crate) fn definition(server: &mut Server, p: GotoDefinitionParams) -> Answer {
    let at = p.text_document_position_params;
    let here = locate(server, &at.text_document.uri, Some(at.position))?;
    let Some((kind, name)) = here.symbol() else {
        return json(serde_json::Value::Null);
    };
    let found: Vec<Location> = here
        .defs(kind, &name)
        .map(|(file, d)| here.location(file, d.name_span.clone(), server.encoding))
        .collect();
    json(GotoDefinitionResponse::Array(found))
}

/// `textDocument/references`.
pub(crate) fn references(server: &mut Server, p: ReferenceParams) -> Answer {
    let at = p.text_document_position;
    let here = locate(server, &at.text_document.uri, Some(at.position))?;
    let Some((kind, name)) = here.symbol() else {
        return json(Vec::<Location>::new());
    };
    let mut found: Vec<Location> = Vec::new();
    if p.context.include_declaration {
        found.extend(
            here.defs(kind, &name)
                .map(|(file, d)| here.location(file, d.name_span.clone(), server.encoding)),
        );
    }
    found.extend(
        here.refs(kind, &name)
            .map(|(file, r)| here.location(file, r.name_span.clone(), server.encoding)),
    );
    json(found)
}

/// `textDocument/prepareRename`: the name under the cursor, if it can be renamed.
pub(crate) fn prepare_rename(server: &mut Server, p: TextDocumentPositionParams) -> Answer {
    let here = locate(server, &p.text_document.uri, Some(p.position))?;
    let Some(index) = here.files[here.file].1.as_ref() else {
        return json(serde_json::Value::Null);
    };
    let inside = |s: &std::ops::Range<usize>| s.start <= here.offset && here.offset <= s.end;
    let span = index
        .refs
        .iter()
        .find(|r| inside(&r.span))
        .map(|r| r.name_span.clone())
        .or_else(|| {
            index
                .defs
                .iter()
                .find(|d| inside(&d.name_span))
                .map(|d| d.name_span.clone())
        });
    match span {
        Some(span) => {
            let view = here.view();
            json(PrepareRenameResponse::Range(view.lines.range(
                &view.text,
                span,
                server.encoding,
            )))
        }
        None => json(serde_json::Value::Null),
    }
}

/// Whether `name` can be a label or a local's name (letters, digits, `-`, `_`).
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `textDocument/rename`: the declaration and every reference, in every file
/// of the directory. A worker type's or key pair's label is its EC2 identity
/// unless `name` sets it, so renaming one adds `name = "<old id>"`.
// lsp-types' WorkspaceEdit keys its changes by Uri, which hashes its text only.
#[allow(clippy::mutable_key_type)]
pub(crate) fn rename(server: &mut Server, p: RenameParams) -> Answer {
    let at = p.text_document_position;
    let here = locate(server, &at.text_document.uri, Some(at.position))?;
    let Some((kind, name)) = here.symbol() else {
        return Err(failed(
            "nothing to rename here: put the cursor on a declaration's name or a reference",
        ));
    };
    if !valid_name(&p.new_name) {
        return Err((
            ErrorCode::InvalidParams,
            format!(
                "`{}` is not a valid name (letters, digits, `-` and `_`, starting with a letter)",
                p.new_name
            ),
        ));
    }
    let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
    let mut edit = |file: usize, span: std::ops::Range<usize>, new_text: String| {
        let location = here.location(file, span, server.encoding);
        changes.entry(location.uri).or_default().push(TextEdit {
            range: location.range,
            new_text,
        });
    };
    let mut kept = Vec::new();
    for (file, d) in here.defs(kind, &name) {
        edit(file, d.name_span.clone(), p.new_name.clone());
        let identity = matches!(kind, Kind::WorkerType | Kind::KeyPair);
        if let (true, false, Some(at)) = (identity, d.sets_name, d.body_start) {
            let id = if d.for_each {
                format!("{name}-${{each.key}}")
            } else {
                name.clone()
            };
            edit(file, at..at, format!("\n{}  name = \"{id}\"", d.indent));
            kept.push(id);
        }
    }
    for (file, r) in here.refs(kind, &name) {
        edit(file, r.name_span.clone(), p.new_name.clone());
    }
    if changes.is_empty() {
        return Err(failed(format!(
            "`{}.{name}` is not declared in this directory",
            kind.root()
        )));
    }
    for id in kept {
        let message = format!(
            "{} \"{name}\" renamed to \"{}\": added `name = \"{id}\"` so its EC2 identity (and its live objects) stay the same",
            kind.block(),
            p.new_name
        );
        server
            .show(MessageType::INFO, &message)
            .map_err(|e| (ErrorCode::InternalError, e.to_string()))?;
    }
    json(WorkspaceEdit {
        changes: Some(changes),
        ..WorkspaceEdit::default()
    })
}

/// `textDocument/documentSymbol`: every block with its attributes and nested blocks.
pub(crate) fn symbols(server: &mut Server, p: DocumentSymbolParams) -> Answer {
    let here = locate(server, &p.text_document.uri, None)?;
    let view = here.view();
    let Some(index) = here.files[here.file].1.as_ref() else {
        return json(Vec::<DocumentSymbol>::new());
    };
    fn convert(node: &Node, view: &FileView, encoding: Encoding) -> DocumentSymbol {
        let (name, detail) = match node.labels.first() {
            Some(label) => (label.clone(), Some(node.ident.clone())),
            None => (node.ident.clone(), None),
        };
        let kind = match (node.ident.as_str(), &node.children) {
            (_, None) => SymbolKind::PROPERTY,
            ("variable", _) => SymbolKind::VARIABLE,
            ("locals", _) => SymbolKind::NAMESPACE,
            ("fleet", _) => SymbolKind::MODULE,
            ("worker_type", _) => SymbolKind::CLASS,
            ("ami_set", _) => SymbolKind::CONSTANT,
            ("key_pair", _) => SymbolKind::KEY,
            ("network", _) => SymbolKind::INTERFACE,
            _ => SymbolKind::STRUCT,
        };
        #[allow(deprecated)] // `deprecated` is a required field of the struct.
        DocumentSymbol {
            name: if name.is_empty() { "_".into() } else { name },
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: view.lines.range(&view.text, node.span.clone(), encoding),
            selection_range: view
                .lines
                .range(&view.text, node.selection.clone(), encoding),
            children: node
                .children
                .as_ref()
                .map(|c| c.iter().map(|n| convert(n, view, encoding)).collect()),
        }
    }
    let out: Vec<DocumentSymbol> = index
        .outline
        .iter()
        .map(|n| convert(n, view, server.encoding))
        .collect();
    json(DocumentSymbolResponse::Nested(out))
}

/// `textDocument/hover`: what a reference or declaration resolves to, from
/// the last load's model (sensitive values hidden).
pub(crate) fn hover(server: &mut Server, p: HoverParams) -> Answer {
    let at = p.text_document_position_params;
    let here = locate(server, &at.text_document.uri, Some(at.position))?;
    let Some((kind, name)) = here.symbol() else {
        return json(instance_type_hover(&here));
    };
    let loaded = server.loads.get(&here.dir);
    let config = loaded.and_then(|l| l.config.as_ref());
    let mut text = format!("**{} `{name}`**\n\n", kind.block());
    match (kind, config) {
        (Kind::AmiSet, Some(config)) => {
            if let Some(set) = config.ami_sets.get(&name) {
                let shown = format!("{:?}, {:?}", set.virtualization, set.architecture);
                let _ = writeln!(text, "{}\n", shown.to_lowercase());
                for (region, image) in &set.images {
                    let _ = writeln!(text, "- {region}: `{image}`");
                }
                if let Some(lookup) = &set.lookup {
                    let _ = writeln!(
                        text,
                        "- newest image named `{}` owned by {} (resolved per region at plan time)",
                        lookup.name,
                        lookup.owners.join(", ")
                    );
                }
                if let Some(source) = &set.source {
                    let _ = writeln!(text, "- {}: `{}` (source)", source.region, source.image);
                    for region in &source.copy_to {
                        let _ = writeln!(text, "- {region}: a copy of `{}`", source.image);
                    }
                }
            }
        }
        (Kind::WorkerType, Some(config)) => {
            if let Some(wt) = config.worker_types.get(&name) {
                let cost = fleetform_engine::checks::max_hourly_cost(wt);
                let _ = writeln!(
                    text,
                    "- capacity {}..{} units per region, {} region{} ({})",
                    wt.capacity.min,
                    wt.capacity.max,
                    wt.regions.len(),
                    if wt.regions.len() == 1 { "" } else { "s" },
                    wt.regions.join(", ")
                );
                let _ = writeln!(text, "- at max: ~${:.2}/h on demand", cost.hourly_usd);
                if !cost.unpriced.is_empty() {
                    let _ = writeln!(text, "  (no price for {})", cost.unpriced.join(", "));
                }
                let types: Vec<String> = wt
                    .instance_types
                    .iter()
                    .map(|t| format!("{} ×{}", t.name, t.capacity))
                    .collect();
                let _ = writeln!(text, "- instance types: {}", types.join(", "));
                let market = match wt.market {
                    fleetform_engine::model::Market::Spot => "spot",
                    fleetform_engine::model::Market::OnDemand => "on-demand",
                };
                let _ = writeln!(text, "- market: {market}");
                match &wt.user_data {
                    Some(data) => {
                        let _ = writeln!(
                            text,
                            "- user data: {} bytes rendered{}",
                            data.len(),
                            if wt.user_data_sensitive {
                                " (sensitive)"
                            } else {
                                ""
                            }
                        );
                    }
                    None => {
                        let _ = writeln!(text, "- no user data");
                    }
                }
            }
        }
        (Kind::Network, Some(config)) => {
            if let Some(network) = config.networks.get(&name) {
                for (zone, subnet) in &network.subnets {
                    let _ = writeln!(text, "- {zone}: `{subnet}`");
                }
                for (region, groups) in &network.security_groups {
                    let _ = writeln!(text, "- {region}: {}", groups.join(", "));
                }
            }
        }
        (Kind::KeyPair, Some(config)) => {
            if let Some(key) = config.key_pairs.get(&name) {
                let kind = key.public_key.split_whitespace().next().unwrap_or("");
                let _ = writeln!(
                    text,
                    "- EC2 key pair `{}` ({kind})",
                    key.ec2_name_in(&config.fleet.name)
                );
            }
        }
        (Kind::Variable | Kind::Local, _) | (_, None) => {}
    }
    if let Some((file, d)) = here.defs(kind, &name).next() {
        let view = &here.files[file].0;
        let line = view
            .lines
            .position(&view.text, d.span.start, Encoding::Utf8)
            .line
            + 1;
        let shown = view
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(text, "\ndeclared in {shown}:{line}");
    } else {
        let _ = writeln!(text, "\nnot declared in this directory");
    }
    if config.is_none() && !matches!(kind, Kind::Variable | Kind::Local) {
        text.push_str("\n*(resolved values appear once the configuration has no errors)*\n");
    }
    let text = match loaded {
        Some(loaded) => loaded.secrets.scrub(&text).into_owned(),
        None => text,
    };
    json(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: None,
    })
}

/// Hover on the label of an `instance_type` block: its price and
/// architecture from the engine's catalog.
fn instance_type_hover(here: &Here) -> Option<Hover> {
    fn find(nodes: &[Node], offset: usize) -> Option<&Node> {
        nodes.iter().find_map(|node| {
            let children = node.children.as_deref()?;
            if node.ident == "instance_type"
                && node.selection.start <= offset
                && offset <= node.selection.end
            {
                return Some(node);
            }
            (node.span.start <= offset && offset <= node.span.end)
                .then(|| find(children, offset))
                .flatten()
        })
    }
    let index = here.files[here.file].1.as_ref()?;
    let name = find(&index.outline, here.offset)?.labels.first()?;
    let info = fleetform_engine::catalog::InstanceTypeInfo::parse(name)?;
    let price = match fleetform_engine::catalog::hourly_price(name) {
        Some(usd) => format!("${usd:.3}/h on demand (us-east-1, Linux)"),
        None => "not in fleetform's price table (FF007 leaves it out)".to_string(),
    };
    let architecture = format!("{:?}", info.architecture()).to_lowercase();
    let virtualization = if info.paravirtual { "hvm or pv" } else { "hvm" };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!(
                "**instance type `{name}`**\n\n- {price}\n- {architecture}, boots {virtualization} images\n"
            ),
        }),
        range: None,
    })
}

/// `textDocument/completion`.
pub(crate) fn completion(server: &mut Server, p: CompletionParams) -> Answer {
    let at = p.text_document_position;
    let here = locate(server, &at.text_document.uri, Some(at.position))?;
    let view = here.view();
    let before = view.text.get(..here.offset).unwrap_or("");
    let line = before.rsplit('\n').next().unwrap_or("");
    let items = complete(&here, &view.text, before, line);
    json(CompletionResponse::Array(items))
}

fn item(label: &str, kind: CompletionItemKind, detail: Option<String>) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail,
        ..CompletionItem::default()
    }
}

fn complete(here: &Here, text: &str, before: &str, line: &str) -> Vec<CompletionItem> {
    // Inside a string: an instance type's label or an enumerated value.
    let quotes = line.matches('"').count();
    if quotes % 2 == 1 {
        let opening = line.rfind('"').unwrap_or(0);
        let head = line.get(..opening).unwrap_or("").trim_end();
        if head.ends_with("instance_type") {
            return fleetform_engine::known_instance_types()
                .into_iter()
                .map(|(name, usd)| {
                    item(
                        name,
                        CompletionItemKind::VALUE,
                        Some(format!("${usd:.3}/h on demand")),
                    )
                })
                .collect();
        }
        if let Some(attribute) = head.strip_suffix('=').map(str::trim_end) {
            let attribute = attribute
                .rsplit(|c: char| c.is_whitespace() || c == '{')
                .next()
                .unwrap_or("");
            let path = block_path(before);
            return schema::values(path.last().map(|(b, _)| b.as_str()), attribute)
                .into_iter()
                .map(|v| item(v, CompletionItemKind::ENUM_MEMBER, None))
                .collect();
        }
        return Vec::new();
    }
    // A reference: `root.` then a name.
    let word_start = line
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .map_or(0, |i| i + 1);
    let word = line.get(word_start..).unwrap_or("");
    if let Some((root, _)) = word.split_once('.') {
        if root == "each" {
            return ["key", "value"]
                .into_iter()
                .map(|n| item(n, CompletionItemKind::VARIABLE, Some("for_each".into())))
                .collect();
        }
        let Some(kind) = Kind::from_root(root) else {
            return Vec::new();
        };
        let mut names: Vec<&str> = here
            .files
            .iter()
            .flat_map(|(_, index)| index.iter().flat_map(|x| x.defs.iter()))
            .filter(|d| d.kind == kind)
            .map(|d| d.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        return names
            .into_iter()
            .map(|n| item(n, CompletionItemKind::REFERENCE, Some(kind.block().into())))
            .collect();
    }
    // After `attribute =`: the values of an enumerated attribute, quoted.
    if let Some((attribute, value)) = line.split_once('=') {
        let attribute = attribute.trim();
        if value.trim().is_empty()
            || value
                .trim()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            let path = block_path(before);
            let values = schema::values(path.last().map(|(b, _)| b.as_str()), attribute);
            let mut items: Vec<CompletionItem> = values
                .into_iter()
                .map(|v| CompletionItem {
                    insert_text: Some(format!("\"{v}\"")),
                    ..item(v, CompletionItemKind::ENUM_MEMBER, None)
                })
                .collect();
            // References and function calls can start any value.
            items.extend(
                Kind::ALL
                    .into_iter()
                    .filter(|k| *k != Kind::WorkerType)
                    .map(|k| item(k.root(), CompletionItemKind::MODULE, None)),
            );
            items.extend(fleetform_engine::config::functions::NAMES.iter().map(|f| {
                CompletionItem {
                    insert_text: Some(format!("{f}(")),
                    ..item(f, CompletionItemKind::FUNCTION, Some("function".into()))
                }
            }));
            return items;
        }
        return Vec::new();
    }
    // Elsewhere: the blocks and attributes of the enclosing block.
    let path = block_path(before);
    match path.last() {
        None => schema::TOP_LEVEL
            .iter()
            .map(|b| item(b, CompletionItemKind::KEYWORD, Some("block".into())))
            .collect(),
        Some((block, body_start)) => {
            let Some((attributes, blocks)) = schema::block(block) else {
                return Vec::new();
            };
            // An attribute already set would be a duplicate.
            let present = present_attributes(text.get(*body_start..).unwrap_or(""));
            attributes
                .iter()
                .filter(|a| !present.iter().any(|p| p == *a))
                .map(|a| CompletionItem {
                    insert_text: Some(format!("{a} = ")),
                    ..item(
                        a,
                        CompletionItemKind::PROPERTY,
                        Some(format!("{block} attribute")),
                    )
                })
                .chain(blocks.iter().map(|b| {
                    item(
                        b,
                        CompletionItemKind::STRUCT,
                        Some(format!("{block} block")),
                    )
                }))
                .collect()
        }
    }
}

/// The lines of `text` with the insides of strings blanked (byte for byte,
/// so offsets stay) and comments cut off, each with its offset.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut offset = 0;
    text.split('\n').map(move |line| {
        let at = offset;
        offset += line.len() + 1;
        let mut in_string = false;
        let mut escaped = false;
        let mut code = String::with_capacity(line.len());
        for c in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
                if c == '"' {
                    code.push('"');
                } else {
                    code.extend(std::iter::repeat_n(' ', c.len_utf8()));
                }
                continue;
            }
            match c {
                '"' => {
                    in_string = true;
                    code.push('"');
                }
                '#' => break,
                '/' if code.ends_with('/') => {
                    code.pop();
                    break;
                }
                _ => code.push(c),
            }
        }
        (at, code)
    })
}

/// The blocks open at the end of `text`, outermost first: each one's type
/// and the offset just after its `{`. Braces are counted outside strings
/// and comments, so this works on text that does not parse, which is what
/// is being typed. Inside an object value (`tags = {`) there are no blocks:
/// the result is then one entry named `(object)`.
fn block_path(text: &str) -> Vec<(String, usize)> {
    let mut stack: Vec<(String, usize)> = Vec::new();
    // The label of each open `dynamic "x"` block (None for others), so that
    // its `content` block completes as an `x` block.
    let mut dynamic: Vec<Option<String>> = Vec::new();
    for (line_at, code) in code_lines(text) {
        for (at, c) in code.char_indices() {
            match c {
                '{' => {
                    let head = code.get(..at).unwrap_or("").trim();
                    // `name = {` opens an object, not a block.
                    let mut ident = if head.ends_with('=') || head.is_empty() {
                        String::new()
                    } else {
                        head.split_whitespace().next().unwrap_or("").to_string()
                    };
                    let mut label = None;
                    if ident == "dynamic" {
                        // Labels are blanked in `code`; the text has them at the same offsets.
                        label = text
                            .get(line_at..line_at + at)
                            .and_then(|h| h.split_whitespace().nth(1))
                            .map(|l| l.trim_matches('"').to_string());
                    } else if ident == "content" {
                        if let Some(Some(of)) = dynamic.last() {
                            ident = of.clone();
                        }
                    }
                    stack.push((ident, line_at + at + 1));
                    dynamic.push(label);
                }
                '}' => {
                    stack.pop();
                    dynamic.pop();
                }
                _ => {}
            }
        }
    }
    if stack.iter().any(|(ident, _)| ident.is_empty()) {
        return vec![("(object)".into(), 0)];
    }
    stack
}

/// The attributes a block body (`text` from just after its `{`) already sets.
fn present_attributes(text: &str) -> Vec<String> {
    let mut depth = 0usize;
    let mut found = Vec::new();
    for (_, code) in code_lines(text) {
        if depth == 0 {
            let trimmed = code.trim_start();
            let name: String = trimmed
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            let rest = trimmed.get(name.len()..).unwrap_or("").trim_start();
            if !name.is_empty() && rest.starts_with('=') && !rest.starts_with("==") {
                found.push(name);
            }
        }
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return found,
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_path_counts_braces_outside_strings_and_comments() {
        let text = "worker_type \"a\" {\n  # {\n  tags = { x = \"}\" }\n  capacity {\n    ";
        let path: Vec<String> = block_path(text).into_iter().map(|(b, _)| b).collect();
        assert_eq!(path, ["worker_type", "capacity"]);
        assert!(block_path("fleet \"f\" {\n}\n").is_empty());
        let content = "worker_type \"a\" {\n  dynamic \"instance_type\" {\n    content {\n      ";
        let path: Vec<String> = block_path(content).into_iter().map(|(b, _)| b).collect();
        assert_eq!(path, ["worker_type", "dynamic", "instance_type"]);
        let in_tags = block_path("worker_type \"a\" {\n  tags = {\n    ");
        assert_eq!(in_tags, [("(object)".to_string(), 0)]);
    }

    #[test]
    fn present_attributes_are_those_of_the_block_itself() {
        let body =
            "\n  min = 1 # max = 2\n  nested {\n    max = 3\n  }\n  scope == 1\n}\nmax = 4\n";
        assert_eq!(present_attributes(body), ["min"]);
        // A string with multi-byte characters keeps offsets: the block starts after its brace.
        let text = "a \"é€\" {\n  x = 1\n";
        let path = block_path(text);
        assert_eq!(path.len(), 1);
        assert_eq!(present_attributes(&text[path[0].1..]), ["x"]);
    }

    #[test]
    fn names_are_identifiers() {
        assert!(valid_name("gecko-t-linux_2"));
        assert!(!valid_name("2x"));
        assert!(!valid_name("a b"));
        assert!(!valid_name(""));
    }
}

//! What the server knows of a file from its syntax alone: the names it
//! declares, the references it makes, its blocks. This works on a file with
//! errors in its values (the engine's model then does not exist), which is
//! most of the time while editing.

use fleetform_engine::config::references;
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use hcl_edit::Span;
use std::ops::Range;

/// The kinds of names a configuration declares and refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Variable,
    Local,
    AmiSet,
    KeyPair,
    Network,
    WorkerType,
}

impl Kind {
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Variable,
        Kind::Local,
        Kind::AmiSet,
        Kind::KeyPair,
        Kind::Network,
        Kind::WorkerType,
    ];

    /// The root a reference to it starts with (`var.x`, `ami_set.x`).
    pub(crate) fn root(self) -> &'static str {
        match self {
            Kind::Variable => "var",
            Kind::Local => "local",
            Kind::AmiSet => "ami_set",
            Kind::KeyPair => "key_pair",
            Kind::Network => "network",
            Kind::WorkerType => "worker_type",
        }
    }

    /// The block that declares it (locals are attributes of `locals`).
    pub(crate) fn block(self) -> &'static str {
        match self {
            Kind::Variable => "variable",
            Kind::Local => "locals",
            other => other.root(),
        }
    }

    pub(crate) fn from_root(root: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.root() == root)
    }

    fn from_block(ident: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| *k != Kind::Local && k.block() == ident)
    }
}

/// A declaration: a labelled block, or one local.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// The name itself (inside the label's quotes).
    pub(crate) name_span: Range<usize>,
    /// The whole block (or the local's attribute).
    pub(crate) span: Range<usize>,
    /// Just after the block's `{`.
    pub(crate) body_start: Option<usize>,
    /// The indentation of the block's line.
    pub(crate) indent: String,
    /// The block sets `name` or `ec2_name` (its EC2 identity is not the label).
    pub(crate) sets_name: bool,
    /// The block has `for_each`.
    pub(crate) for_each: bool,
}

/// A reference such as `ami_set.linux`.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    /// The name part (what a rename replaces).
    pub(crate) name_span: Range<usize>,
    /// The whole reference.
    pub(crate) span: Range<usize>,
}

/// A block or attribute, for document symbols.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) ident: String,
    pub(crate) labels: Vec<String>,
    pub(crate) span: Range<usize>,
    pub(crate) selection: Range<usize>,
    /// `None` for an attribute.
    pub(crate) children: Option<Vec<Node>>,
}

/// One parsed file's declarations, references and outline.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileIndex {
    pub(crate) defs: Vec<Def>,
    pub(crate) refs: Vec<Ref>,
    pub(crate) outline: Vec<Node>,
}

impl FileIndex {
    /// Indexes `text`; `None` when it does not parse.
    pub(crate) fn of(text: &str) -> Option<FileIndex> {
        let body = hcl_edit::parser::parse_body(text).ok()?;
        let mut index = FileIndex::default();
        for structure in body.iter() {
            match structure {
                Structure::Block(block) => index.declare(text, block),
                Structure::Attribute(_) => {}
            }
        }
        collect_refs(&body, text, &mut index.refs);
        index.outline = outline(&body);
        Some(index)
    }

    fn declare(&mut self, text: &str, block: &Block) {
        let ident = block.ident.as_str();
        let span = block.span().unwrap_or(0..0);
        if ident == "locals" {
            for structure in block.body.iter() {
                if let Structure::Attribute(attr) = structure {
                    let name_span = attr.key.span().unwrap_or(0..0);
                    self.defs.push(Def {
                        kind: Kind::Local,
                        name: attr.key.as_str().to_string(),
                        span: attr.span().unwrap_or_else(|| name_span.clone()),
                        name_span,
                        body_start: None,
                        indent: String::new(),
                        sets_name: false,
                        for_each: false,
                    });
                }
            }
            return;
        }
        let (Some(kind), Some(label)) = (Kind::from_block(ident), block.labels.first()) else {
            return;
        };
        let (name, label_span) = label_of(label);
        let Some(label_span) = label_span else {
            return;
        };
        let name_span = text
            .get(label_span.clone())
            .and_then(|t| t.find(name.as_str()))
            .map_or(label_span.clone(), |at| {
                label_span.start + at..label_span.start + at + name.len()
            });
        let after_labels = block
            .labels
            .iter()
            .filter_map(|l| label_of(l).1)
            .map(|s| s.end)
            .max()
            .unwrap_or(label_span.end);
        let body_start = text
            .get(after_labels..)
            .and_then(|t| t.find('{'))
            .map(|at| after_labels + at + 1);
        let line_start = text
            .get(..span.start)
            .and_then(|t| t.rfind('\n'))
            .map_or(0, |i| i + 1);
        let indent: String = text
            .get(line_start..span.start)
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_whitespace())
            .collect();
        let has = |key: &str| {
            block
                .body
                .iter()
                .any(|s| matches!(s, Structure::Attribute(a) if a.key.as_str() == key))
        };
        self.defs.push(Def {
            kind,
            name,
            name_span,
            span,
            body_start,
            indent,
            sets_name: has("name") || has("ec2_name"),
            for_each: has("for_each"),
        });
    }
}

fn label_of(label: &BlockLabel) -> (String, Option<Range<usize>>) {
    match label {
        BlockLabel::Ident(ident) => (ident.as_str().to_string(), ident.span()),
        BlockLabel::String(string) => (string.as_str().to_string(), string.span()),
    }
}

fn collect_refs(body: &Body, text: &str, out: &mut Vec<Ref>) {
    for structure in body.iter() {
        match structure {
            Structure::Attribute(attr) => {
                for reference in references(&attr.value) {
                    let (Some(kind), Some(name), Some(span)) = (
                        Kind::from_root(&reference.root),
                        reference.name,
                        reference.span,
                    ) else {
                        continue;
                    };
                    // The name is the last occurrence inside the reference
                    // (`ami_set.linux`, `ami_set["linux"]`).
                    let name_span = text
                        .get(span.clone())
                        .and_then(|t| t.rfind(name.as_str()))
                        .map_or(span.clone(), |at| {
                            span.start + at..span.start + at + name.len()
                        });
                    out.push(Ref {
                        kind,
                        name,
                        name_span,
                        span,
                    });
                }
            }
            Structure::Block(block) => collect_refs(&block.body, text, out),
        }
    }
}

fn outline(body: &Body) -> Vec<Node> {
    body.iter()
        .map(|structure| match structure {
            Structure::Attribute(attr) => {
                let selection = attr.key.span().unwrap_or(0..0);
                Node {
                    ident: attr.key.as_str().to_string(),
                    labels: Vec::new(),
                    span: attr.span().unwrap_or_else(|| selection.clone()),
                    selection,
                    children: None,
                }
            }
            Structure::Block(block) => {
                let selection = block
                    .labels
                    .first()
                    .and_then(|l| label_of(l).1)
                    .or_else(|| block.ident.span())
                    .unwrap_or(0..0);
                Node {
                    ident: block.ident.as_str().to_string(),
                    labels: block.labels.iter().map(|l| label_of(l).0).collect(),
                    span: block.span().unwrap_or_else(|| selection.clone()),
                    selection,
                    children: Some(outline(&block.body)),
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_and_references_have_the_spans_of_their_names() {
        let text = "ami_set \"linux\" {\n  images = {}\n}\nlocals {\n  a = var.owner\n}\nworker_type \"w\" {\n  ami_set = ami_set.linux\n}\n";
        let index = FileIndex::of(text).unwrap_or_default();
        let names: Vec<_> = index
            .defs
            .iter()
            .map(|d| (d.kind, d.name.as_str(), &text[d.name_span.clone()]))
            .collect();
        assert_eq!(
            names,
            [
                (Kind::AmiSet, "linux", "linux"),
                (Kind::Local, "a", "a"),
                (Kind::WorkerType, "w", "w")
            ]
        );
        let refs: Vec<_> = index
            .refs
            .iter()
            .map(|r| (r.kind, &text[r.name_span.clone()], &text[r.span.clone()]))
            .collect();
        assert_eq!(
            refs,
            [
                (Kind::Variable, "owner", "var.owner"),
                (Kind::AmiSet, "linux", "ami_set.linux")
            ]
        );
        let w = index.defs.iter().find(|d| d.kind == Kind::WorkerType);
        assert!(w.is_some_and(|w| !w.sets_name && text[..w.body_start.unwrap_or(0)].ends_with('{')));
    }
}

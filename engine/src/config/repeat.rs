//! Repetition: `for_each` on `worker_type`, `key_pair`, `ami_set` and
//! `network` blocks, and `dynamic "BLOCK"` inside any block of those.
//!
//! An instance of a `for_each`, named `LABEL["KEY"]`, is its block (one
//! copy without `for_each`, shared by every instance) decoded in a scope
//! with `each` bound to `{ key, value }` ([`Scope::bind`]): the syntax tree
//! is not copied per instance, and every attribute keeps the span of what
//! its author wrote. A `dynamic` block becomes one block of its type per
//! element, its `content` copied with the iterator written in as a literal
//! (a traversal from it keeps its span) and its `labels` evaluated with the
//! iterator bound in the scope. An instance of a block with
//! `dynamic` blocks has of its own only the blocks they make ([`Parts`]),
//! evaluated with that instance's `each`; its decoder reads them in place
//! of the `dynamic` blocks of the shared body ([`overlaid`]), so the rest
//! of the block is not copied per instance. The decoders see nothing new.
//! `for_each` is evaluated from the configuration alone (variables,
//! locals, functions), never the cloud.

use super::budget::{Bound, TOTAL_BUDGET};
use super::fields::{span_of, want, Decl, Fields};
use super::functions;
use super::scope::{references, Scope};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::address;
use crate::source::{FileId, SourceRef};
use hcl::Value;
use hcl_edit::expr::Expression;
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use hcl_edit::visit_mut::{visit_expr_mut, VisitMut};
use hcl_edit::Span;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

/// Most instances `for_each` and `dynamic` may make in one configuration.
pub const MAX_INSTANCES: usize = 100_000;

/// What repetition costs so far, across every block of a configuration.
#[derive(Default)]
pub(super) struct Spent {
    /// Instances and dynamic blocks made.
    instances: usize,
    /// Bytes of the copies made (block text plus the bound values).
    bytes: u64,
    /// Whether a limit was reported (once is enough).
    reported: bool,
    /// When set, spending is only recorded here, with no limit (see [`Record`]).
    record: Option<Vec<Spend>>,
}

/// One recorded call to [`spend`]: instances, bytes, where, and how many
/// diagnostics had been reported before it.
type Spend = (usize, u64, Option<SourceRef>, usize);

/// What expanding one top-level block gave; the instances of a block with
/// `for_each` are [`Made`], or what was made of each (see [`expand_then`]).
pub(super) enum Expansion<M = Made> {
    /// Neither `for_each` nor `dynamic`: decode the block as written.
    Unchanged,
    /// A block without `for_each` whose `dynamic` blocks were expanded.
    Dynamic(Block),
    /// A block with `for_each`: the block without `for_each`, and its instances.
    Repeated { block: Block, made: Vec<M> },
    /// It failed (reported).
    Failed,
}

/// One instance of a block with `for_each`.
pub(super) struct Made {
    key: String,
    /// What `each` is bound to: `{ key, value }`.
    each: Value,
    /// What the instance has of its own when the block has `dynamic`
    /// blocks (what they make depends on `each`); else it is the shared
    /// block as it is.
    parts: Option<Parts>,
}

impl Made {
    /// Gives `decode` this instance's key, the structures of its body (the
    /// shared `block`'s, with its own parts in place) and `scope` with
    /// `each` bound: what decoding it needs, without a copy of the block.
    pub fn decode<R>(
        self,
        block: &Block,
        scope: &Scope,
        decode: impl FnOnce(&str, &[&Structure], &Scope) -> R,
    ) -> R {
        let body: Vec<&Structure> = match &self.parts {
            Some(parts) => overlaid(&block.body, parts),
            None => block.body.iter().collect(),
        };
        let bound = scope.bind("each", self.each);
        decode(&self.key, &body, &bound)
    }
}

/// What one instance has in place of some structures of the shared body:
/// for each `dynamic` block (or block holding one) of the body, by its
/// position in the body, the structures that replace it, in order.
pub(super) type Parts = Vec<(usize, Arc<[Structure]>)>;

/// The structures of `body`, in order, with `parts` in place of the ones
/// they replace: what the body of an instance would be, without copying
/// what the instances share.
pub(super) fn overlaid<'a>(
    body: &'a Body,
    parts: &'a [(usize, Arc<[Structure]>)],
) -> Vec<&'a Structure> {
    let made: usize = parts.iter().map(|(_, p)| p.len()).sum();
    let mut out = Vec::with_capacity(body.len() + made);
    let mut parts = parts.iter().peekable();
    for (at, structure) in body.iter().enumerate() {
        match parts.next_if(|(i, _)| *i == at) {
            Some((_, made)) => out.extend(made.iter()),
            None => out.push(structure),
        }
    }
    out
}

/// `block` with `parts` in place (see [`overlaid`]), as a block of its own.
fn whole(block: &Block, parts: &[(usize, Arc<[Structure]>)]) -> Block {
    let body: Body = overlaid(&block.body, parts).into_iter().cloned().collect();
    // A block's span can only be set by the parser: the copy is a clone
    // (only key pairs, AMI sets and networks, which are few, get one).
    let mut out = block.clone();
    out.body = body;
    out
}

/// One expanded top-level block, ready for its decoder.
pub(super) struct Instance<'e> {
    /// Its name in the model: `LABEL`, or `LABEL["KEY"]`.
    pub name: String,
    /// Its `for_each` key.
    pub key: Option<&'e str>,
    /// What `each` is bound to while it is decoded (see [`Instance::scope`]).
    each: Option<&'e Value>,
    /// The block to decode, unless it is `own`.
    decl: Decl<'e>,
    /// The instance's own block, when it has [`Parts`]: the decoders of
    /// these (few) blocks read one body, so the parts are put in a copy.
    own: Option<Block>,
}

impl Instance<'_> {
    /// The block to decode.
    pub fn decl(&self) -> Decl<'_> {
        match &self.own {
            Some(block) => Decl {
                file: self.decl.file,
                block,
            },
            None => self.decl,
        }
    }

    /// The scope to decode this instance in: `scope`, with `each` bound
    /// for an instance of a `for_each`.
    pub fn scope<'s>(&self, scope: &'s Scope) -> Scope<'s> {
        match self.each {
            Some(each) => scope.bind("each", each.clone()),
            None => scope.borrowed(),
        }
    }
}

/// The instances of `expanded` (label, original declaration, expansion), in order.
pub(super) fn instances<'e>(expanded: &'e [(String, Decl<'e>, Expansion)]) -> Vec<Instance<'e>> {
    let mut out = Vec::with_capacity(expanded.len());
    for (label, decl, expansion) in expanded {
        match expansion {
            Expansion::Unchanged => out.push(Instance {
                name: label.clone(),
                key: None,
                each: None,
                decl: *decl,
                own: None,
            }),
            Expansion::Dynamic(block) => out.push(Instance {
                name: label.clone(),
                key: None,
                each: None,
                decl: Decl {
                    file: decl.file,
                    block,
                },
                own: None,
            }),
            Expansion::Repeated { block, made } => {
                for m in made {
                    out.push(Instance {
                        name: address::instance(label, &m.key),
                        key: Some(&m.key),
                        each: Some(&m.each),
                        decl: Decl {
                            file: decl.file,
                            block,
                        },
                        own: m.parts.as_ref().map(|parts| whole(block, parts)),
                    });
                }
            }
            Expansion::Failed => {}
        }
    }
    out
}

/// `named` split into the blocks that can be expanded before the locals
/// are known (a `for_each` that uses no local, no `dynamic`) and the rest.
#[allow(clippy::type_complexity)]
pub(super) fn before_locals<'a>(
    named: Vec<(String, Decl<'a>)>,
) -> (Vec<(String, Decl<'a>)>, Vec<(String, Decl<'a>)>) {
    named.into_iter().partition(|(_, decl)| {
        !has_dynamic(&decl.block.body)
            && decl
                .block
                .body
                .get_attribute("for_each")
                .is_none_or(|a| references(&a.value).iter().all(|r| r.root != "local"))
    })
}

/// Label -> keys of the blocks of `expanded` that have `for_each`.
pub(super) fn keys(
    expanded: &[(String, Decl<'_>, Expansion)],
) -> std::collections::BTreeMap<String, Vec<String>> {
    expanded
        .iter()
        .filter_map(|(label, _, e)| match e {
            Expansion::Repeated { made, .. } => {
                Some((label.clone(), made.iter().map(|m| m.key.clone()).collect()))
            }
            _ => None,
        })
        .collect()
}

/// Whether `body` (or a block inside it) holds a `dynamic` block.
pub(super) fn has_dynamic(body: &Body) -> bool {
    body.blocks()
        .any(|b| b.ident.as_str() == "dynamic" || has_dynamic(&b.body))
}

/// Expands the `dynamic` blocks of a block that takes no `for_each` (`fleet`).
pub(super) fn dynamic_only(
    decl: Decl<'_>,
    scope: &Scope,
    spent: &mut Spent,
    diags: &mut Diagnostics,
) -> Expansion {
    if !has_dynamic(&decl.block.body) {
        return Expansion::Unchanged;
    }
    match expanded_block(
        decl.file,
        decl.block,
        scope,
        spent,
        &mut Shells::default(),
        diags,
    ) {
        Some(block) => Expansion::Dynamic(block),
        None => Expansion::Failed,
    }
}

/// Expands one top-level block of `kind` labelled `label`.
pub(super) fn expand(
    decl: Decl<'_>,
    kind: &str,
    label: &str,
    scope: &Scope,
    spent: &mut Spent,
    diags: &mut Diagnostics,
) -> Expansion {
    expand_then(decl, kind, label, scope, spent, diags, &|_, made| made)
}

/// [`expand`], with each instance of a block with `for_each` given to
/// `then` (with the block without `for_each`) as soon as it is made, on
/// the core that made it: an instance's own parts are freed once `then`
/// is done with them, instead of every instance's being held at once. If
/// the expansion fails, what `then` made is dropped.
pub(super) fn expand_then<R: Send>(
    decl: Decl<'_>,
    kind: &str,
    label: &str,
    scope: &Scope,
    spent: &mut Spent,
    diags: &mut Diagnostics,
    then: &(dyn Fn(&Block, Made) -> R + Sync),
) -> Expansion<R> {
    let Some(for_each) = decl.block.body.get_attribute("for_each") else {
        if !has_dynamic(&decl.block.body) {
            return Expansion::Unchanged;
        }
        return match expanded_block(
            decl.file,
            decl.block,
            scope,
            spent,
            &mut Shells::default(),
            diags,
        ) {
            Some(block) => Expansion::Dynamic(block),
            None => Expansion::Failed,
        };
    };
    let at = span_of(decl.file, &for_each.value);
    let Some(elements) = elements(decl.file, &for_each.value, scope, true, diags) else {
        return Expansion::Failed;
    };
    let mut seen = std::collections::BTreeSet::new();
    for (key, _) in &elements {
        if !seen.insert(key.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("for_each of {kind} \"{label}\" has the key `{key}` twice"),
                )
                .at(at.clone(), "duplicate key")
                .help("each key names one instance; a set holds each string once (remove the repeat, or use distinct())"),
            );
            return Expansion::Failed;
        }
        if !valid_key(key) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("`{key}` is not a valid for_each key of {kind} \"{label}\""),
                )
                .at(at.clone(), "invalid key")
                .help(format!(
                    "a key names its instance (`{kind}.{label}[\"KEY\"]`) and its id (`{label}-KEY`): use letters, digits, `-`, `_`, `.` and `/`, at most 64"
                )),
            );
            return Expansion::Failed;
        }
    }
    // The limits are those of the copies this expansion once made (one
    // block per instance, with `each` written in at every use), so a
    // configuration is accepted or refused as before.
    let block_len = decl.block.span().map_or(0, |s| s.len()) as u64;
    let mut block = decl.block.clone();
    block.body.remove_attribute("for_each");
    let dynamic = has_dynamic(&block.body);
    // The `dynamic` blocks of the instances are expanded on every core, each
    // instance recording what it spends and reports; the records are then
    // replayed in order against the real limits, so the outcome (and the
    // diagnostics) are those of expanding one instance after another.
    let dir = functions::config_dir();
    let log = functions::read_log().unwrap_or_default();
    let expanded: Vec<(u64, Record, Option<R>)> = elements
        .into_par_iter()
        // Pieces of work large enough for a core's `Shells` to be reused
        // (an instance is microseconds of work; a piece starts afresh).
        .with_min_len(32)
        .map_init(
            || {
                let guard = dir
                    .as_deref()
                    .map(|dir| functions::ConfigDirGuard::join(dir, log.clone()));
                (guard, Shells::default())
            },
            |(_, shells), (key, value)| {
                let value = value.into_owned();
                let cost = block_len.saturating_add(Bound::of(&value).size.saturating_mul(4));
                let each = each_object(&key, value);
                let mut record = Record::default();
                let (own, each) = if dynamic {
                    let bound = scope.bind("each", each);
                    let mut local = Spent {
                        record: Some(Vec::new()),
                        ..Spent::default()
                    };
                    let own = expanded_parts(
                        decl.file,
                        &block.body,
                        &bound,
                        &mut local,
                        shells,
                        &mut record.diags,
                    );
                    record.spends = local.record.unwrap_or_default();
                    record.failed = own.is_none();
                    // `each` is moved into the scope and taken back, not copied.
                    (own, bound.into_last_bound())
                } else {
                    (None, each)
                };
                // A failed instance fails the block: nothing is made of it.
                let made = (!record.failed).then(|| {
                    then(
                        &block,
                        Made {
                            key,
                            each,
                            parts: own,
                        },
                    )
                });
                (cost, record, made)
            },
        )
        .collect();
    let mut made = Vec::with_capacity(expanded.len());
    for (cost, record, instance) in expanded {
        if !spend(spent, 1, cost, &at, diags) || !record.replay(spent, diags) {
            return Expansion::Failed;
        }
        made.extend(instance);
    }
    Expansion::Repeated { block, made }
}

/// What expanding the `dynamic` blocks of one instance spent and reported,
/// to be replayed in order (see [`expand`]).
#[derive(Default)]
struct Record {
    /// Each call to [`spend`].
    spends: Vec<Spend>,
    diags: Diagnostics,
    /// Whether the expansion failed (its diagnostics say why).
    failed: bool,
}

impl Record {
    /// Spends and reports what was recorded, as if it happened now; false
    /// when a limit is crossed (reported) or the expansion had failed.
    fn replay(self, spent: &mut Spent, diags: &mut Diagnostics) -> bool {
        let found: Vec<Diagnostic> = self.diags.iter().cloned().collect();
        let mut reported = 0;
        for (instances, bytes, at, before) in self.spends {
            diags.extend(found[reported..before].iter().cloned());
            reported = before;
            if !spend(spent, instances, bytes, &at, diags) {
                return false;
            }
        }
        diags.extend(found[reported..].iter().cloned());
        !self.failed
    }
}

/// `{ key, value }`: what `each` (or a dynamic block's iterator) is.
fn each_object(key: &str, value: Value) -> Value {
    let mut object = hcl::Map::new();
    object.insert("key".to_string(), Value::from(key));
    object.insert("value".to_string(), value);
    Value::Object(object)
}

/// Counts `instances` more copies of `bytes`; false (reported once) past a limit.
fn spend(
    spent: &mut Spent,
    instances: usize,
    bytes: u64,
    at: &Option<SourceRef>,
    diags: &mut Diagnostics,
) -> bool {
    if let Some(record) = &mut spent.record {
        record.push((instances, bytes, at.clone(), diags.len()));
        return true;
    }
    spent.instances = spent.instances.saturating_add(instances);
    spent.bytes = spent.bytes.saturating_add(bytes);
    if spent.instances <= MAX_INSTANCES && spent.bytes <= TOTAL_BUDGET {
        return true;
    }
    if !spent.reported {
        spent.reported = true;
        let message = if spent.instances > MAX_INSTANCES {
            format!("for_each and dynamic blocks would make more than {MAX_INSTANCES} instances in this configuration")
        } else {
            format!(
                "for_each and dynamic blocks would copy more than {} MiB of configuration",
                TOTAL_BUDGET / (1024 * 1024)
            )
        };
        diags.push(
            Diagnostic::error(Code::TooLarge, message)
                .at(at.clone(), "the expansion crosses the limit here")
                .help("iterate over fewer keys, or split the fleet into several configurations"),
        );
    }
    false
}

/// Whether `key` may name an instance: letters, digits, `-`, `_`, `.`, `/`; 1 to 64.
fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Whether `id` may be a worker type or key pair id (the `name` attribute):
/// letters, digits, `-`, `_`, `.`, `/`; 1 to 100.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// The id of a worker type or key pair named `name` with `for_each` key
/// `key`, when it is not `name`: its `name` attribute, else `<label>-<key>`.
pub(super) fn id_of(
    f: &Fields<'_>,
    name: &str,
    key: Option<&str>,
    kind: &str,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<String> {
    let given = f.value(scope, "name", diags).and_then(|(v, at)| {
        let id = want::string(&v, &at, &format!("{kind}.name"), diags)?;
        if valid_id(&id) {
            Some(id)
        } else {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("`{id}` is not a valid {kind} name"),
                )
                .at(at, "invalid name")
                .help("a name is what EC2 names carry (`<fleet>.<name>`): use letters, digits, `-`, `_`, `.` and `/`, at most 100"),
            );
            None
        }
    });
    match (given, key) {
        (Some(id), _) if id == name => None,
        (Some(id), _) => Some(id),
        (None, Some(key)) => Some(format!("{}-{key}", address::label(name))),
        (None, None) => None,
    }
}

/// The (key, value) pairs a `for_each` (`strict`: a map, or a set of
/// strings keyed by themselves) or a dynamic block's `for_each` (also a
/// list of anything, keyed by position) iterates over.
fn elements<'s>(
    file: FileId,
    expr: &Expression,
    scope: &'s Scope,
    strict: bool,
    diags: &mut Diagnostics,
) -> Option<Vec<(String, Cow<'s, Value>)>> {
    let at = span_of(file, expr);
    if scope.is_sensitive(expr) {
        diags.push(
            Diagnostic::error(Code::InvalidValue, "for_each cannot iterate over a sensitive value")
                .at(at, "uses a sensitive variable")
                .help("keys become addresses and names shown in plans and EC2; iterate over a value that holds no secret"),
        );
        return None;
    }
    // A path to a local (`local.pools`) is iterated where it is kept: each
    // element is copied by whoever uses it, not the whole map here.
    let value = scope.eval_borrowed(file, expr, diags)?;
    let kind = match value {
        Cow::Borrowed(Value::Object(map)) => {
            return Some(
                map.iter()
                    .map(|(k, v)| (k.clone(), Cow::Borrowed(v)))
                    .collect(),
            )
        }
        Cow::Owned(Value::Object(map)) => {
            return Some(map.into_iter().map(|(k, v)| (k, Cow::Owned(v))).collect())
        }
        Cow::Borrowed(Value::Array(items)) if !strict => {
            return Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), Cow::Borrowed(v)))
                    .collect(),
            )
        }
        Cow::Owned(Value::Array(items)) if !strict => {
            return Some(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), Cow::Owned(v)))
                    .collect(),
            )
        }
        value => match &*value {
            Value::Array(items) => match items.iter().find(|v| !matches!(v, Value::String(_))) {
                None => {
                    return Some(
                        items
                            .iter()
                            .filter_map(|v| v.as_str())
                            .map(|s| (s.to_string(), Cow::Owned(Value::from(s))))
                            .collect(),
                    )
                }
                Some(_) => "a list that holds more than strings",
            },
            // Objects are iterated above; named here only so that no input
            // can reach a panic.
            Value::Object(_) => "an object",
            Value::Null => "null",
            Value::Bool(_) => "a bool",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
        },
    };
    let help = if strict {
        "write a map (`{ \"a\" = ..., \"b\" = ... }`) or a set of strings (`toset([\"a\", \"b\"])`); keys name the instances, so a list of other values, keyed by position, is not allowed"
    } else {
        "write a map, a set or a list"
    };
    diags.push(
        Diagnostic::error(
            Code::Type,
            format!("for_each must be a map or a set of strings, not {kind}"),
        )
        .at(at, "not a map or a set of strings")
        .help(help),
    );
    None
}

/// Binds `name` to `literal` (the iterator's `{ key, value }` written as
/// a literal) in every expression of `body`.
fn bind_body(body: &mut Body, name: &str, literal: &Expression) {
    let mut bind = Bind {
        name,
        value: literal,
    };
    bind.visit_body_mut(body);
}

/// Replaces the variable `name` by a literal; a traversal from it
/// (`each.value.max`) keeps its own span, so diagnostics still point at it.
struct Bind<'n> {
    name: &'n str,
    value: &'n Expression,
}

impl VisitMut for Bind<'_> {
    fn visit_expr_mut(&mut self, node: &mut Expression) {
        match node {
            Expression::Variable(var) if var.as_str() == self.name => {
                *node = self.value.clone();
                return;
            }
            Expression::Traversal(traversal) => {
                if let Expression::Variable(var) = &traversal.expr {
                    if var.as_str() == self.name {
                        traversal.expr = self.value.clone();
                    }
                }
            }
            _ => {}
        }
        visit_expr_mut(self, node);
    }
}

/// Blocks without their bodies, by the offset of their type in their file:
/// what a made block is built from. Every instance of a `for_each` makes
/// its blocks from the same `dynamic` blocks, which are copied once
/// (without their content) instead of once per instance and element.
#[derive(Default)]
struct Shells {
    blocks: std::collections::HashMap<usize, Block>,
    /// What a `dynamic` block whose labels depend on its iterator alone
    /// made, by the offset of its type in its file and the elements it
    /// iterated: the instances of a `for_each` mostly iterate the same few
    /// collections (`each.value.types`), and what is made of the same
    /// elements is the same blocks (the rest of their content is evaluated
    /// with the instance, when it is decoded).
    made: std::collections::HashMap<usize, Vec<MadeOf>>,
}

/// The elements a `dynamic` block iterated (key, value) and what it made of them.
type MadeOf = (Vec<(String, Value)>, Arc<[Structure]>);

/// Most collections [`Shells::made`] keeps per `dynamic` block.
const MADE_KEPT: usize = 32;

/// `block` without its body (a copy with the span, labels and decor it has).
fn shell(shells: &mut Shells, block: &Block) -> Block {
    let copy = || {
        let mut shell = block.clone();
        shell.body = Body::new();
        shell
    };
    match block.ident.span() {
        Some(span) => shells.blocks.entry(span.start).or_insert_with(copy).clone(),
        // Not from a file (no offset to tell it by): not kept.
        None => copy(),
    }
}

/// `block` with every `dynamic` block in it (at any depth) replaced by the
/// blocks it makes; `None` when one failed (every failure is reported).
fn expanded_block(
    file: FileId,
    block: &Block,
    scope: &Scope,
    spent: &mut Spent,
    shells: &mut Shells,
    diags: &mut Diagnostics,
) -> Option<Block> {
    let body = expanded(file, &block.body, scope, spent, shells, diags)?;
    let mut out = shell(shells, block);
    out.body = body;
    Some(out)
}

/// `body` with its `dynamic` blocks replaced (see [`expanded_block`]).
fn expanded(
    file: FileId,
    body: &Body,
    scope: &Scope,
    spent: &mut Spent,
    shells: &mut Shells,
    diags: &mut Diagnostics,
) -> Option<Body> {
    let parts = expanded_parts(file, body, scope, spent, shells, diags)?;
    Some(overlaid(body, &parts).into_iter().cloned().collect())
}

/// What replaces the `dynamic` blocks of `body` (and the blocks that hold
/// one), by position (see [`Parts`]); `None` when one failed (every
/// failure is reported).
fn expanded_parts(
    file: FileId,
    body: &Body,
    scope: &Scope,
    spent: &mut Spent,
    shells: &mut Shells,
    diags: &mut Diagnostics,
) -> Option<Parts> {
    let mut parts = Parts::new();
    let mut ok = true;
    for (at, structure) in body.iter().enumerate() {
        match structure {
            Structure::Block(block) if block.ident.as_str() == "dynamic" => {
                match dynamic(file, block, scope, spent, shells, diags) {
                    Some(made) => parts.push((at, made)),
                    None => ok = false,
                }
            }
            Structure::Block(block) if has_dynamic(&block.body) => {
                match expanded_block(file, block, scope, spent, shells, diags) {
                    Some(block) => parts.push((at, Arc::from([Structure::Block(block)]))),
                    None => ok = false,
                }
            }
            _ => {}
        }
    }
    ok.then_some(parts)
}

/// The blocks one `dynamic "TYPE" { for_each labels iterator content }` makes.
fn dynamic(
    file: FileId,
    block: &Block,
    scope: &Scope,
    spent: &mut Spent,
    shells: &mut Shells,
    diags: &mut Diagnostics,
) -> Option<Arc<[Structure]>> {
    let header = span_of(file, &block.ident);
    let [type_label] = block.labels.as_slice() else {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                "a dynamic block needs exactly one label: the type of the blocks it makes",
            )
            .at(header, "dynamic block")
            .help("write `dynamic \"instance_type\" { for_each = ... content { ... } }`"),
        );
        return None;
    };
    let kind = type_label.as_str().to_string();
    let what = format!("dynamic \"{kind}\"");
    let Ok(ident) = hcl_edit::Ident::try_new(kind.as_str()) else {
        diags.push(
            Diagnostic::error(Code::UnknownBlock, format!("`{kind}` is not a block type"))
                .at(span_of(file, type_label), "not a block type")
                .help("the label of a dynamic block is the type of the blocks it makes, e.g. `instance_type` or `volume`"),
        );
        return None;
    };
    let f = Fields::read(
        file,
        &block.body,
        &what,
        &["for_each", "labels", "iterator"],
        &["content"],
        diags,
    );
    let Some(for_each) = f.get("for_each") else {
        diags.push(
            Diagnostic::error(Code::Missing, format!("{what} is missing `for_each`"))
                .at(header, "declared here")
                .help("add `for_each = { ... }`: one block is made per element"),
        );
        return None;
    };
    let Some(content) = f.single_block("content", diags) else {
        diags.push(
            Diagnostic::error(Code::Missing, format!("{what} has no `content` block"))
                .at(header, "declared here")
                .help(format!(
                    "add `content {{ ... }}`: the body of each `{kind}` block"
                )),
        );
        return None;
    };
    let iterator = match f.get("iterator") {
        None => kind.clone(),
        Some(attr) => match &attr.value {
            Expression::Variable(var) => var.as_str().to_string(),
            other => {
                diags.push(
                    Diagnostic::error(Code::Type, format!("`iterator` of {what} must be a name"))
                        .at(span_of(file, other), "not a name")
                        .help("write e.g. `iterator = it`, then use `it.key` and `it.value`"),
                );
                return None;
            }
        },
    };
    let at = span_of(file, &for_each.value);
    let elements = elements(file, &for_each.value, scope, false, diags)?;
    let labels = f.get("labels");
    let labels_what = format!("{what}.labels");
    let content_len = content.span().map_or(0, |s| s.len()) as u64;
    let cost = |value: &Value| content_len.saturating_add(Bound::of(value).size.saturating_mul(4));
    // What is made of the same elements is the same when nothing else it
    // is made of depends on the instance: the labels use the iterator
    // alone, and no `dynamic` block inside is expanded with the instance.
    let reusable_at = block.ident.span().map(|span| span.start).filter(|_| {
        !has_dynamic(&content.body)
            && labels.is_none_or(|attr| references(&attr.value).iter().all(|r| r.root == iterator))
    });
    if let Some(offset) = reusable_at {
        let same = |(kept, _): &&MadeOf| {
            kept.len() == elements.len()
                && kept
                    .iter()
                    .zip(&elements)
                    .all(|((k, v), (key, value))| k == key && v == value.as_ref())
        };
        let found = shells
            .made
            .get(&offset)
            .and_then(|kept| kept.iter().find(same))
            .map(|(_, made)| made.clone());
        if let Some(made) = found {
            // Charged as making them again would be.
            for (_, value) in &elements {
                if !spend(spent, 1, cost(value), &at, diags) {
                    return None;
                }
            }
            return Some(made);
        }
    }
    let iterated: Option<Vec<(String, Value)>> = reusable_at.map(|_| {
        elements
            .iter()
            .map(|(key, value)| (key.clone(), value.as_ref().clone()))
            .collect()
    });
    let mut made = Vec::with_capacity(elements.len());
    for (key, value) in elements {
        let value = value.into_owned();
        if !spend(spent, 1, cost(&value), &at, diags) {
            return None;
        }
        let mut object = each_object(&key, value);
        let mut new = shell(shells, block);
        // The made block keeps the span of `dynamic`: an unknown type is reported there.
        *new.ident.value_mut() = ident.clone();
        new.labels = match labels {
            None => Vec::new(),
            Some(attr) => {
                // The labels are evaluated as written, with the iterator
                // bound (it is moved in and taken back, not copied).
                let bound = scope.bind(&iterator, object);
                let v = bound.eval(file, &attr.value, diags);
                object = bound.into_last_bound();
                let v = v?;
                let at = span_of(file, &attr.value);
                let names = want::string_list(&v, &at, &labels_what, diags)?;
                names
                    .into_iter()
                    .map(|name| match type_label {
                        BlockLabel::String(s) => {
                            let mut s = s.clone();
                            *s.value_mut() = name;
                            BlockLabel::String(s)
                        }
                        BlockLabel::Ident(_) => BlockLabel::from(name),
                    })
                    .collect()
            }
        };
        // The content is copied with the iterator written in as a literal.
        let literal: Expression = hcl::Expression::from(object).into();
        let mut body = content.body.clone();
        bind_body(&mut body, &iterator, &literal);
        if has_dynamic(&body) {
            body = expanded(file, &body, scope, spent, shells, diags)?;
        }
        new.body = body;
        made.push(Structure::Block(new));
    }
    let made: Arc<[Structure]> = made.into();
    if let (Some(offset), Some(iterated)) = (reusable_at, iterated) {
        let kept = shells.made.entry(offset).or_default();
        if kept.len() < MADE_KEPT {
            kept.push((iterated, made.clone()));
        }
    }
    Some(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_names_with_slashes_and_dots() {
        assert!(valid_key("gecko-1"));
        assert!(valid_key("gecko-t/t-linux.large"));
        assert!(!valid_key(""));
        assert!(!valid_key("a\"b"));
        assert!(!valid_key("a[b]"));
        assert!(!valid_key(&"x".repeat(65)));
        assert!(valid_id("gecko-t/t-linux-large"));
        assert!(!valid_id("with space"));
    }
}

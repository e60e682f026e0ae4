//! Decoding parsed HCL blocks into the typed model, reporting every unknown,
//! missing, duplicated or mistyped attribute at its span.

use super::fields::{span_of, unknown, want, Decl, Fields, Regional};
use super::launch;
use super::repeat;
use super::scope::{references, Assessed, Charged, Reference, Scope, Skipped};
use super::shape::{Shape, ShapedLocal};
use super::variables;
use super::{functions, split, Inputs, ParsedFile, Unsplit};
use crate::diagnostic::{Code, Diagnostic, Diagnostics};
use crate::model::{
    AmiSet, Architecture, Backend, Budget, Capacity, CapacityScope, Config, Duration, Fleet,
    ImageLookup, ImageSource, InstanceRefresh, InstanceType, KeyPair, Limits, Market, Network,
    Origin, RegionalValues, Rollout, Scaling, Virtualization, WorkerType,
};
use crate::sensitive::Secrets;
use crate::source::{FileId, SourceRef, SourceSet};
use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{Attribute, Block, Structure};
use hcl_edit::Span;
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};

/// Top-level block types of the language.
const TOP_LEVEL: &[&str] = &[
    "backend",
    "fleet",
    "variable",
    "locals",
    "key_pair",
    "ami_set",
    "network",
    "worker_type",
];

/// Spans of the values of an object literal, by key; empty for other expressions.
pub(super) fn object_value_spans(file: FileId, expr: &Expression) -> BTreeMap<String, SourceRef> {
    let mut spans = BTreeMap::new();
    if let Expression::Object(object) = expr {
        for (key, value) in object.iter() {
            let key = match key {
                ObjectKey::Ident(ident) => ident.as_str().to_string(),
                ObjectKey::Expression(Expression::String(s)) => s.as_str().to_string(),
                ObjectKey::Expression(_) => continue,
            };
            if let Some(at) = span_of(file, value.expr()) {
                spans.insert(key, at);
            }
        }
    }
    spans
}

/// Every top-level block, grouped by kind.
#[derive(Default)]
struct Declarations<'a> {
    fleets: Vec<Decl<'a>>,
    variables: Vec<Decl<'a>>,
    locals: Vec<Decl<'a>>,
    key_pairs: Vec<Decl<'a>>,
    ami_sets: Vec<Decl<'a>>,
    networks: Vec<Decl<'a>>,
    worker_types: Vec<Decl<'a>>,
    backends: Vec<Decl<'a>>,
}

fn collect<'a>(files: &'a [ParsedFile], diags: &mut Diagnostics) -> Declarations<'a> {
    let mut decls = Declarations::default();
    for file in files {
        for structure in file.body.iter() {
            match structure {
                Structure::Attribute(attr) => diags.push(
                    Diagnostic::error(
                        Code::UnknownAttribute,
                        format!("`{}` is set outside any block", attr.key.as_str()),
                    )
                    .at(span_of(file.id, &attr.key), "top-level attribute")
                    .help(
                        "values belong in a block; for a shared value use `locals { name = ... }`",
                    ),
                ),
                Structure::Block(block) => {
                    let decl = Decl {
                        file: file.id,
                        block,
                    };
                    let list = match block.ident.as_str() {
                        "fleet" => &mut decls.fleets,
                        "variable" => &mut decls.variables,
                        "locals" => &mut decls.locals,
                        "key_pair" => &mut decls.key_pairs,
                        "ami_set" => &mut decls.ami_sets,
                        "network" => &mut decls.networks,
                        "worker_type" => &mut decls.worker_types,
                        "backend" => &mut decls.backends,
                        other => {
                            diags.push(unknown(
                                Code::UnknownBlock,
                                format!("unknown block type `{other}`"),
                                span_of(file.id, &block.ident),
                                other,
                                TOP_LEVEL.iter().copied(),
                            ));
                            continue;
                        }
                    };
                    list.push(decl);
                }
            }
        }
    }
    decls
}

/// Named declarations of one kind, duplicates reported (the first one wins).
pub(super) fn named<'a>(
    decls: &[Decl<'a>],
    kind: &str,
    sources: &SourceSet,
    diags: &mut Diagnostics,
) -> Vec<(String, Decl<'a>)> {
    let mut seen = FirstOfEachName::default();
    let mut out = Vec::new();
    for decl in decls {
        let Some(name) = decl.name(kind, diags) else {
            continue;
        };
        if seen.is_first(&name, decl.header(), kind, sources, diags) {
            out.push((name, *decl));
        }
    }
    out
}

/// The names declared so far of one kind, and where first.
#[derive(Default)]
struct FirstOfEachName {
    seen: HashMap<String, Option<SourceRef>>,
}

impl FirstOfEachName {
    /// Whether `name` is declared here first; a second declaration is
    /// reported at its `header`, naming where the first one is.
    fn is_first(
        &mut self,
        name: &str,
        header: Option<SourceRef>,
        kind: &str,
        sources: &SourceSet,
        diags: &mut Diagnostics,
    ) -> bool {
        if let Some(first) = self.seen.get(name) {
            let first_at = first
                .as_ref()
                .map(|at| {
                    let lc = sources.line_col(at);
                    format!("{}:{}:{}", sources.file(at.file).name, lc.line, lc.column)
                })
                .unwrap_or_default();
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("{kind} \"{name}\" is declared twice"),
                )
                .at(header, "declared again here")
                .help(format!(
                    "the first declaration is at {first_at}; rename or remove one"
                )),
            );
            return false;
        }
        self.seen.insert(name.to_string(), header);
        true
    }
}

/// Decodes every block of the parsed files into a [`Config`].
pub(super) fn decode(
    files: &[ParsedFile],
    mut shaped: Shaped,
    sources: &mut SourceSet,
    inputs: &Inputs,
    diags: &mut Diagnostics,
) -> Result<(Option<Config>, BackendDecl, Secrets, Vec<String>), Unsplit> {
    let decls = collect(files, diags);
    let variables = named(&decls.variables, "variable", sources, diags);
    let key_pairs = named(&decls.key_pairs, "key_pair", sources, diags);
    let ami_sets = named(&decls.ami_sets, "ami_set", sources, diags);
    let networks = named(&decls.networks, "network", sources, diags);
    let mut locals = local_attributes(&decls.locals, &mut shaped, diags);

    let mut scope = Scope::new(
        variables.iter().map(|(n, _)| n.clone()),
        locals.iter().map(|l| l.name.clone()),
        ami_sets.iter().map(|(n, _)| n.clone()),
        key_pairs.iter().map(|(n, _)| n.clone()),
        networks.iter().map(|(n, _)| n.clone()),
    );
    let (sensitive_variables, secrets) =
        variables::resolve(&variables, inputs, sources, &mut scope, diags);
    // Repetition: `for_each` and `dynamic` make plain blocks, which the
    // decoders below read as if they were written out. AMI sets, key pairs
    // and networks whose `for_each` needs no local are expanded before the
    // locals, so a local may hold one of their instances
    // (`network.n["a"]`); the others after.
    let mut spent = repeat::Spent::default();
    let (key_pairs, later_key_pairs) = repeat::before_locals(key_pairs);
    let (ami_sets, later_ami_sets) = repeat::before_locals(ami_sets);
    let (networks, later_networks) = repeat::before_locals(networks);
    let mut key_pairs = expand(key_pairs, "key_pair", &scope, &mut spent, diags);
    let mut ami_sets = expand(ami_sets, "ami_set", &scope, &mut spent, diags);
    let mut networks = expand(networks, "network", &scope, &mut spent, diags);
    for (root, expanded) in [
        ("key_pair", &key_pairs),
        ("ami_set", &ami_sets),
        ("network", &networks),
    ] {
        scope.set_instances(root, repeat::keys(expanded));
    }
    eval_locals(&mut locals, &mut scope, diags)?;
    let later_key_pairs = expand(later_key_pairs, "key_pair", &scope, &mut spent, diags);
    let later_ami_sets = expand(later_ami_sets, "ami_set", &scope, &mut spent, diags);
    let later_networks = expand(later_networks, "network", &scope, &mut spent, diags);
    for (root, later) in [
        ("key_pair", &later_key_pairs),
        ("ami_set", &later_ami_sets),
        ("network", &later_networks),
    ] {
        circles_through_locals(root, &repeat::keys(later), &locals, diags);
    }
    key_pairs.extend(later_key_pairs);
    ami_sets.extend(later_ami_sets);
    networks.extend(later_networks);

    let fleet = match decls.fleets.as_slice() {
        [] => {
            diags.push(
                Diagnostic::error(Code::Missing, "no `fleet` block in the configuration")
                    .help("add `fleet \"NAME\" { regions = [\"us-east-1\"] }` to one of the files"),
            );
            None
        }
        [first, rest @ ..] => {
            for extra in rest {
                diags.push(
                    Diagnostic::error(
                        Code::Duplicate,
                        "a configuration has exactly one `fleet` block",
                    )
                    .at(extra.header(), "second fleet")
                    .help("one directory describes one fleet; move the other to its own directory"),
                );
            }
            // `dynamic` blocks work in the fleet block too (`rollout`, ...).
            match repeat::dynamic_only(*first, &scope, &mut spent, diags) {
                repeat::Expansion::Unchanged => decode_fleet(*first, &scope, diags),
                repeat::Expansion::Dynamic(block) => {
                    let decl = Decl {
                        file: first.file,
                        block: &block,
                    };
                    decode_fleet(decl, &scope, diags)
                }
                // `fleet` takes no `for_each`.
                repeat::Expansion::Repeated { .. } | repeat::Expansion::Failed => None,
            }
        }
    };

    // The instances of AMI sets, key pairs and networks are known before
    // any worker type refers to one.
    fn expand<'a>(
        named: Vec<(String, Decl<'a>)>,
        kind: &str,
        scope: &Scope,
        spent: &mut repeat::Spent,
        diags: &mut Diagnostics,
    ) -> Vec<(String, Decl<'a>, repeat::Expansion)> {
        named
            .into_iter()
            .map(|(label, decl)| {
                let e = repeat::expand(decl, kind, &label, scope, spent, diags);
                (label, decl, e)
            })
            .collect()
    }
    for (root, expanded) in [
        ("key_pair", &key_pairs),
        ("ami_set", &ami_sets),
        ("network", &networks),
    ] {
        scope.set_instances(root, repeat::keys(expanded));
    }

    let key_pairs: BTreeMap<String, KeyPair> = repeat::instances(&key_pairs)
        .into_iter()
        .filter_map(|i| {
            let scope = i.scope(&scope);
            Some((
                i.name.clone(),
                decode_key_pair(i.name.clone(), i.key, i.decl(), &scope, diags)?,
            ))
        })
        .collect();
    let ami_sets: BTreeMap<String, AmiSet> = repeat::instances(&ami_sets)
        .into_iter()
        .filter_map(|i| {
            let scope = i.scope(&scope);
            Some((
                i.name.clone(),
                decode_ami_set(i.name.clone(), i.decl(), &scope, diags)?,
            ))
        })
        .collect();
    let networks: BTreeMap<String, Network> = repeat::instances(&networks)
        .into_iter()
        .filter_map(|i| {
            let scope = i.scope(&scope);
            Some((
                i.name.clone(),
                launch::decode_network(i.name.clone(), i.decl(), &scope, diags)?,
            ))
        })
        .collect();
    // Worker types are most of a large configuration and independent of each
    // other: they are decoded on every core. Each thread reads files relative
    // to the same directory (file functions keep it per thread).
    let default_regions = fleet
        .as_ref()
        .map(|f| f.regions.clone())
        .unwrap_or_default();
    let dir = functions::config_dir();
    let log = functions::read_log().unwrap_or_default();
    let late = parse_deferred(files, &scope, &default_regions, dir.as_deref(), &log)?;
    // Every worker type in the order of the files and of the blocks in them
    // (the first of a name wins), whether written whole, kept from a
    // deferred part, or already decoded from one.
    enum Candidate<'a> {
        Written(Decl<'a>),
        Decoded(Box<EarlyDecoded>),
    }
    let offset = |block: &Block| block.ident.span().map_or(0, |s| s.start);
    let mut candidates: Vec<(FileId, usize, Candidate)> = decls
        .worker_types
        .iter()
        .map(|d| (d.file, offset(d.block), Candidate::Written(*d)))
        .collect();
    let mut kept = Vec::new();
    for part in late {
        kept.push((part.file, part.kept));
        candidates.extend(part.decoded.into_iter().map(|e| {
            let at = e.header.as_ref().map_or(0, |h| h.span.start);
            (part.file, at, Candidate::Decoded(Box::new(e)))
        }));
    }
    for (file, blocks) in &kept {
        candidates.extend(blocks.iter().map(|block| {
            (
                *file,
                offset(block),
                Candidate::Written(Decl { file: *file, block }),
            )
        }));
    }
    candidates.sort_by_key(|(file, at, _)| (*file, *at));
    let mut seen = FirstOfEachName::default();
    let mut worker_types = Vec::new();
    let mut early = Vec::new();
    for (_, _, candidate) in candidates {
        match candidate {
            Candidate::Written(decl) => {
                let Some(name) = decl.name("worker_type", diags) else {
                    continue;
                };
                if seen.is_first(&name, decl.header(), "worker_type", sources, diags) {
                    worker_types.push((name, decl));
                }
            }
            Candidate::Decoded(e) => {
                let EarlyDecoded {
                    name,
                    header,
                    decoded,
                    found,
                } = *e;
                let Some(name) = name else {
                    diags.extend(found);
                    continue;
                };
                if seen.is_first(&name, header, "worker_type", sources, diags) {
                    early.push((name, decoded, found));
                }
            }
        }
    }
    // The instances of a worker type with `for_each` are decoded as they
    // are made (their own blocks are then freed at once); the other worker
    // types, one instance each, are decoded together afterwards. Either
    // way the results stay in the order of the blocks.
    type DecodedWorkerType = (String, Option<WorkerType>, Diagnostics);
    enum Slot<'a> {
        /// The instances of a worker type with `for_each`, decoded.
        Made(Vec<DecodedWorkerType>),
        /// A worker type without `for_each`: its label and the block to
        /// decode (as written, or with its `dynamic` blocks expanded).
        Single(String, FileId, Box<std::borrow::Cow<'a, Block>>),
    }
    let mut slots: Vec<Slot> = Vec::with_capacity(worker_types.len());
    for (label, decl) in worker_types {
        let decode_made = |block: &Block, made: repeat::Made| {
            made.decode(block, &scope, |key, body, scope| {
                let name = crate::model::address::instance(&label, key);
                let mut found = Diagnostics::default();
                let decoded = decode_worker_type(
                    name.clone(),
                    Some(key),
                    Decl {
                        file: decl.file,
                        block,
                    },
                    body,
                    &default_regions,
                    scope,
                    &mut found,
                );
                (name, decoded, found)
            })
        };
        let expansion = repeat::expand_then(
            decl,
            "worker_type",
            &label,
            &scope,
            &mut spent,
            diags,
            &decode_made,
        );
        slots.push(match expansion {
            repeat::Expansion::Repeated { made, .. } => Slot::Made(made),
            repeat::Expansion::Failed => continue,
            repeat::Expansion::Unchanged => Slot::Single(
                label,
                decl.file,
                Box::new(std::borrow::Cow::Borrowed(decl.block)),
            ),
            repeat::Expansion::Dynamic(block) => {
                Slot::Single(label, decl.file, Box::new(std::borrow::Cow::Owned(block)))
            }
        });
    }
    let mut decoded: Vec<DecodedWorkerType> = slots
        .into_par_iter()
        .map_init(
            || {
                dir.as_deref()
                    .map(|dir| functions::ConfigDirGuard::join(dir, log.clone()))
            },
            |_, slot| match slot {
                Slot::Made(made) => made,
                Slot::Single(name, file, block) => {
                    let mut found = Diagnostics::default();
                    let body: Vec<&Structure> = block.body.iter().collect();
                    let decoded = decode_worker_type(
                        name.clone(),
                        None,
                        Decl {
                            file,
                            block: &block,
                        },
                        &body,
                        &default_regions,
                        &scope.borrowed(),
                        &mut found,
                    );
                    vec![(name, decoded, found)]
                }
            },
        )
        .flatten()
        .collect();
    decoded.extend(early);
    let mut worker_types: BTreeMap<String, WorkerType> = BTreeMap::new();
    // A mistake in a block with `for_each` is in every instance; it is
    // reported once, at its span.
    let mut reported = std::collections::HashSet::new();
    for (name, decoded, found) in decoded {
        let repeated = name.contains('[');
        diags.extend(found.sorted().into_iter().filter(|d| {
            !repeated
                || d.location.is_none()
                || reported.insert((d.code, d.location.clone(), d.label.clone()))
        }));
        if let Some(wt) = decoded {
            worker_types.insert(name, wt);
        }
    }

    duplicate_ids(
        "worker type",
        worker_types
            .values()
            .map(|wt| (wt.name.as_str(), wt.id(), &wt.origin)),
        sources,
        diags,
    );
    duplicate_ids(
        "key pair",
        key_pairs
            .values()
            .map(|k| (k.name.as_str(), k.id(), &k.origin)),
        sources,
        diags,
    );

    if let Some(fleet) = &fleet {
        duplicate_ec2_names(&fleet.name, &worker_types, &key_pairs, diags);
    }

    let backend = decode_backend(&decls.backends, &scope, diags);
    let declared = match &backend {
        BackendDecl::Declared(b) => Some(b.clone()),
        BackendDecl::Absent | BackendDecl::Invalid => None,
    };
    let config = fleet.map(|fleet| Config {
        fleet,
        key_pairs,
        ami_sets,
        worker_types,
        networks,
        sensitive_variables,
        backend: declared,
    });
    let declared = variables.iter().map(|(name, _)| name.clone()).collect();
    Ok((config, backend, secrets, declared))
}

/// A worker type of a deferred part (see `split`), decoded as soon as
/// its part was parsed: its name (`None` when the label is not one, as
/// `found` says), where it is declared, and what decoding it gave.
struct EarlyDecoded {
    name: Option<String>,
    header: Option<SourceRef>,
    decoded: Option<WorkerType>,
    found: Diagnostics,
}

/// The worker types of one file's deferred part: those decoded at once,
/// and those with `for_each` or `dynamic` blocks, which are expanded in
/// order with the others (their limits are shared) and decoded after.
struct DeferredPart {
    file: FileId,
    decoded: Vec<EarlyDecoded>,
    kept: Vec<Block>,
}

/// Parses the deferred worker types of every file and decodes those
/// without `for_each` or `dynamic` blocks, on every core, one file's
/// syntax trees at a time per core, freed as soon as they are decoded.
/// `Err` when a part does not parse into exactly the blocks the scan
/// found: the load is then made again with every file parsed whole.
fn parse_deferred(
    files: &[ParsedFile],
    scope: &Scope,
    default_regions: &[String],
    dir: Option<&std::path::Path>,
    log: &functions::ReadLog,
) -> Result<Vec<DeferredPart>, Unsplit> {
    let deferred: Vec<(FileId, &super::Deferred)> = files
        .iter()
        .filter_map(|f| Some((f.id, f.deferred.as_ref()?)))
        .collect();
    deferred
        .into_par_iter()
        .map(|(file, part)| {
            let text = split::blanked(&part.text, &part.ranges).ok_or(Unsplit)?;
            let body = hcl_edit::parser::parse_body(&text).map_err(|_| Unsplit)?;
            drop(text);
            let mut blocks = Vec::with_capacity(part.ranges.len());
            for (structure, range) in body.into_iter().zip(&part.ranges) {
                match structure {
                    Structure::Block(block)
                        if block.ident.as_str() == "worker_type"
                            && block.span().as_ref() == Some(range) =>
                    {
                        blocks.push(block)
                    }
                    _ => return Err(Unsplit),
                }
            }
            if blocks.len() != part.ranges.len() {
                return Err(Unsplit);
            }
            let (plain, kept): (Vec<Block>, Vec<Block>) = blocks.into_iter().partition(|b| {
                b.body.get_attribute("for_each").is_none() && !repeat::has_dynamic(&b.body)
            });
            let decoded = plain
                .par_iter()
                .map_init(
                    || dir.map(|dir| functions::ConfigDirGuard::join(dir, log.clone())),
                    |_, block| {
                        let decl = Decl { file, block };
                        let mut found = Diagnostics::default();
                        let name = decl.name("worker_type", &mut found);
                        let decoded = name.as_ref().and_then(|name| {
                            let body: Vec<&Structure> = block.body.iter().collect();
                            decode_worker_type(
                                name.clone(),
                                None,
                                decl,
                                &body,
                                default_regions,
                                scope,
                                &mut found,
                            )
                        });
                        EarlyDecoded {
                            name,
                            header: decl.header(),
                            decoded,
                            found,
                        }
                    },
                )
                .collect();
            Ok(DeferredPart {
                file,
                decoded,
                kept,
            })
        })
        .collect()
}

/// Reports locals that refer to a block of `root` with `for_each` whose
/// keys depend on locals (`with_keys`): the local was evaluated before the
/// keys were known, so the two go round in a circle.
fn circles_through_locals(
    root: &str,
    with_keys: &BTreeMap<String, Vec<String>>,
    locals: &[Local<'_>],
    diags: &mut Diagnostics,
) {
    if with_keys.is_empty() {
        return;
    }
    for local in locals {
        for r in local.references().iter() {
            let Some(name) = r.name.as_deref().filter(|n| with_keys.contains_key(*n)) else {
                continue;
            };
            if r.root != root {
                continue;
            }
            diags.push(
                Diagnostic::error(
                    Code::ReferenceCycle,
                    format!(
                        "local `{}` refers to {root} `{name}`, whose for_each depends on locals",
                        local.name
                    ),
                )
                .at(
                    r.span.clone().map(|span| SourceRef {
                        file: local.file,
                        span,
                    }),
                    "refers to a block with for_each",
                )
                .help("the block's keys must be known before this local: make its for_each use variables only, or refer to the block from the worker type instead of a local"),
            );
        }
    }
}

/// Reports two objects (`name`, id, origin) of `kind` with one id, at each
/// of them: EC2 would give them one name, and live objects one owner.
fn duplicate_ids<'m>(
    kind: &str,
    objects: impl Iterator<Item = (&'m str, &'m str, &'m Origin)>,
    sources: &SourceSet,
    diags: &mut Diagnostics,
) {
    let mut by_id: BTreeMap<&str, Vec<(&str, &Origin)>> = BTreeMap::new();
    for (name, id, origin) in objects {
        by_id.entry(id).or_default().push((name, origin));
    }
    let place = |origin: &Origin| {
        origin
            .attribute("name")
            .map(|at| {
                let lc = sources.line_col(&at);
                format!("{}:{}:{}", sources.file(at.file).name, lc.line, lc.column)
            })
            .unwrap_or_default()
    };
    for (id, holders) in by_id.into_iter().filter(|(_, h)| h.len() > 1) {
        for (i, (name, origin)) in holders.iter().enumerate() {
            let others: Vec<String> = holders
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (other, o))| format!("`{other}` ({})", place(o)))
                .collect();
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("{kind} `{name}` has the id `{id}`, as {} has", others.join(", ")),
                )
                .at(origin.attribute("name"), "same id")
                .help(format!(
                    "the id is what EC2 names carry (`<fleet>.{id}`); give each {kind} its own `name`"
                )),
            );
        }
    }
}

/// Two worker types (sharing a region) or two key pairs whose EC2 names
/// (`ec2_name`, else `<fleet>.<id>`) are one: both would claim one object.
fn duplicate_ec2_names(
    fleet: &str,
    worker_types: &BTreeMap<String, WorkerType>,
    key_pairs: &BTreeMap<String, KeyPair>,
    diags: &mut Diagnostics,
) {
    // Two defaults that clash are two ids that clash, which `duplicate_ids` reports.
    // Looked up by borrowed names: a fleet of thousands of worker types has
    // tens of thousands of (name, region) pairs. Only a clash with an
    // explicit `ec2_name` is reported here, so without one there is none.
    let explicit = worker_types.values().any(|wt| wt.ec2_name.is_some());
    let names: Vec<String> = worker_types
        .values()
        .filter(|_| explicit)
        .map(|wt| wt.ec2_name_in(fleet))
        .collect();
    let mut seen: HashMap<(&str, &str), (&str, bool)> = HashMap::new();
    let mut report = |kind: &str, name: &str, other: &str, ec2: &str, origin: &Origin| {
        diags.push(
            Diagnostic::error(
                Code::Duplicate,
                format!("{kind} `{name}` has the EC2 name `{ec2}`, as `{other}` has"),
            )
            .at(
                origin.attribute("ec2_name").or_else(|| origin.attribute("name")),
                "same EC2 name",
            )
            .help("each launch template and key pair is one object in EC2: give each its own `ec2_name` (or none)"),
        );
    };
    for (wt, ec2) in worker_types.values().zip(&names) {
        for region in &wt.regions {
            match seen.get(&(ec2.as_str(), region.as_str())) {
                Some((other, explicit)) if *other != wt.name => {
                    if *explicit || wt.ec2_name.is_some() {
                        report("worker type", &wt.name, other, ec2, &wt.origin);
                    }
                    break;
                }
                _ => {
                    seen.insert(
                        (ec2.as_str(), region.as_str()),
                        (&wt.name, wt.ec2_name.is_some()),
                    );
                }
            }
        }
    }
    let mut keys: BTreeMap<String, (&str, bool)> = BTreeMap::new();
    for key in key_pairs.values() {
        let ec2 = key.ec2_name_in(fleet);
        match keys.get(&ec2) {
            Some((other, explicit)) => {
                if *explicit || key.ec2_name.is_some() {
                    report("key pair", &key.name, other, &ec2, &key.origin);
                }
            }
            None => {
                keys.insert(ec2, (&key.name, key.ec2_name.is_some()));
            }
        }
    }
}

/// What the `backend` block says, decoded on its own so that commands can
/// find the state even when the rest of the configuration has errors.
pub(super) enum BackendDecl {
    /// No `backend` block: the default local store.
    Absent,
    /// A valid `backend` block.
    Declared(Backend),
    /// A `backend` block with errors (already reported).
    Invalid,
}

/// Backend kinds and the attributes each takes: (required, optional).
const BACKEND_KINDS: &[(&str, &[&str], &[&str])] = &[
    ("local", &[], &["path"]),
    ("s3", &["bucket", "key"], &["region"]),
];

/// The `backend` block: where state lives.
fn decode_backend(decls: &[Decl<'_>], scope: &Scope, diags: &mut Diagnostics) -> BackendDecl {
    let Some((first, rest)) = decls.split_first() else {
        return BackendDecl::Absent;
    };
    for extra in rest {
        diags.push(
            Diagnostic::error(
                Code::Duplicate,
                "a configuration has at most one `backend` block",
            )
            .at(extra.header(), "second backend")
            .help("keep one"),
        );
    }
    // Which of two blocks is meant cannot be told: neither is used.
    if !rest.is_empty() {
        return BackendDecl::Invalid;
    }
    let Some(kind) = first.name("backend", diags) else {
        return BackendDecl::Invalid;
    };
    let Some((_, required, optional)) = BACKEND_KINDS.iter().find(|(k, _, _)| *k == kind) else {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("backend \"{kind}\" is not available"),
            )
            .at(first.header(), "unknown backend")
            .help("use `backend \"local\" { path = \".fleetform\" }` (the default) or `backend \"s3\" { bucket = \"...\" key = \"fleet/state\" region = \"...\" }`"),
        );
        return BackendDecl::Invalid;
    };
    let errors_before = diags.error_count();
    let names: Vec<&str> = required.iter().chain(optional.iter()).copied().collect();
    let f = Fields::read(
        first.file,
        &first.block.body,
        &format!("backend \"{kind}\""),
        &names,
        &[],
        diags,
    );
    // An attribute that is set but has no value (an unset variable, a
    // failed expression) makes the block invalid, even where the error was
    // reported elsewhere: a missing value must never mean "the default".
    let mut unresolved = false;
    let mut string = |name: &str| {
        let value = if required.contains(&name) {
            f.required(scope, name, first.header(), diags)
        } else {
            f.value(scope, name, diags)
        };
        let text = value.and_then(|(v, at)| {
            let text = want::string(&v, &at, &format!("backend.{name}"), diags)?;
            Some((text, at))
        });
        if text.is_none() && f.get(name).is_some() {
            unresolved = true;
        }
        text
    };
    let path = string("path").map(|(v, _)| v);
    let bucket = string("bucket").map(|(v, _)| v);
    let region = string("region").map(|(v, _)| v);
    let key = string("key");
    if let Some((key, at)) = &key {
        let usable = !key.is_empty()
            && !key.starts_with('/')
            && key
                .trim_end_matches('/')
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !usable {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("backend key \"{key}\" is not a usable key prefix"),
                )
                .at(at.clone(), "here")
                .help("use names separated by single slashes, without a leading slash, e.g. `fleet/state`"),
            );
        }
    }
    if unresolved || diags.error_count() > errors_before {
        return BackendDecl::Invalid;
    }
    BackendDecl::Declared(Backend {
        kind,
        path,
        bucket,
        key: key.map(|(k, _)| k.trim_end_matches('/').to_string()),
        region,
    })
}

/// One `name = expr` of a `locals` block.
pub(super) struct Local<'a> {
    name: String,
    file: FileId,
    attr: &'a Attribute,
    /// Its value when it was taken out of the syntax tree (see `shape`):
    /// `attr.value` is then a placeholder.
    shaped: Option<ShapedLocal>,
}

impl Local<'_> {
    /// The references of its value expression.
    fn references(&self) -> std::borrow::Cow<'_, [Reference]> {
        match &self.shaped {
            Some(shaped) => std::borrow::Cow::Borrowed(&shaped.references),
            None => std::borrow::Cow::Owned(references(&self.attr.value)),
        }
    }

    /// The span of its value expression.
    fn value_span(&self) -> Option<std::ops::Range<usize>> {
        match &self.shaped {
            Some(shaped) => shaped.span.clone(),
            None => self.attr.value.span(),
        }
    }
}

/// The locals taken out of their files' syntax trees, by file and where
/// their names start (see `shape`).
pub(super) type Shaped = HashMap<(FileId, usize), ShapedLocal>;

fn local_attributes<'a>(
    blocks: &[Decl<'a>],
    shaped: &mut Shaped,
    diags: &mut Diagnostics,
) -> Vec<Local<'a>> {
    let mut out: Vec<Local<'a>> = Vec::new();
    for decl in blocks {
        if let Some(label) = decl.block.labels.first() {
            diags.push(
                Diagnostic::error(Code::InvalidValue, "a `locals` block has no name")
                    .at(span_of(decl.file, label), "remove this label")
                    .help("write `locals { name = value }`"),
            );
        }
        for structure in decl.block.body.iter() {
            match structure {
                Structure::Attribute(attr) => {
                    let name = attr.key.as_str().to_string();
                    if out.iter().any(|l| l.name == name) {
                        diags.push(
                            Diagnostic::error(
                                Code::Duplicate,
                                format!("local `{name}` is declared twice"),
                            )
                            .at(span_of(decl.file, &attr.key), "declared again here")
                            .help("every local name must be unique across all locals blocks"),
                        );
                        continue;
                    }
                    let shaped = attr
                        .key
                        .span()
                        .and_then(|span| shaped.remove(&(decl.file, span.start)));
                    out.push(Local {
                        name,
                        file: decl.file,
                        attr,
                        shaped,
                    });
                }
                Structure::Block(block) => diags.push(
                    Diagnostic::error(Code::UnknownBlock, "a `locals` block holds attributes only")
                        .at(span_of(decl.file, &block.ident), "nested block")
                        .help("write `name = { ... }` for an object value"),
                ),
            }
        }
    }
    out
}

/// Evaluates locals in dependency order; reports each cycle once, never loops.
///
/// `Err` when a local taken out of its syntax tree cannot be evaluated as
/// one (a path in it does not resolve): the load starts again with whole
/// files, and evaluating it as written reports why.
fn eval_locals(
    locals: &mut [Local<'_>],
    scope: &mut Scope<'static>,
    diags: &mut Diagnostics,
) -> Result<(), Unsplit> {
    let index: HashMap<&str, usize> = locals
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.as_str(), i))
        .collect();
    // The references of each local, found on every core (a fleet's locals
    // may be large maps).
    let deps: Vec<Vec<usize>> = locals
        .par_iter()
        .map(|local| {
            let mut d: Vec<usize> = local
                .references()
                .iter()
                .filter(|r| r.root == "local")
                .filter_map(|r| index.get(r.name.as_deref()?).copied())
                .collect();
            d.sort_unstable();
            d.dedup();
            d
        })
        .collect();
    // Kahn's algorithm: a local is evaluated once everything it refers to is.
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); locals.len()];
    for (i, d) in deps.iter().enumerate() {
        for &j in d {
            dependents[j].push(i);
        }
    }
    let mut ready: Vec<usize> = (0..locals.len()).filter(|&i| waiting[i] == 0).collect();
    // The order does not depend on the values, so it is known first.
    let mut order = Vec::with_capacity(locals.len());
    while let Some(i) = ready.pop() {
        order.push(i);
        for &k in &dependents[i] {
            waiting[k] -= 1;
            if waiting[k] == 0 {
                ready.push(k);
            }
        }
    }
    // Consecutive locals of that order none of which refers to another (the
    // large maps of a fleet) are charged to the budgets one after another,
    // in that order, then evaluated on every core, and their diagnostics
    // reported in that order: what evaluating one after another reports.
    let mut done = vec![false; locals.len()];
    let dir = functions::config_dir();
    let log = functions::read_log().unwrap_or_default();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len()
            && deps[order[end]]
                .iter()
                .all(|d| !order[start..end].contains(d))
        {
            end += 1;
        }
        let run = &order[start..end];
        start = end;
        // Assessed on every core (none of them refers to another), then
        // charged in order, so the one that crosses the total budget is
        // the one it would be one after another.
        let reader: &Scope<'static> = scope;
        let assess = |&i: &usize| {
            let mut found = Diagnostics::default();
            let local = &locals[i];
            let assessed = match &local.shaped {
                Some(shaped) => reader.assess_shape(local.file, shaped, &mut found),
                None => reader.assess(local.file, &local.attr.value, &mut found),
            };
            (found, assessed)
        };
        let assessed: Vec<(Diagnostics, Result<Assessed, Skipped>)> = if run.len() == 1 {
            run.iter().map(assess).collect()
        } else {
            run.par_iter().map(assess).collect()
        };
        let charged: Vec<(Diagnostics, Result<Charged, Skipped>)> = assessed
            .into_iter()
            .zip(run)
            .map(|((mut found, assessed), &i)| {
                let local = &locals[i];
                let charged = assessed
                    .and_then(|a| scope.spend_at(local.file, local.value_span(), a, &mut found));
                (found, charged)
            })
            .collect();
        // Shapes are evaluated once, so they are moved into their values.
        let shapes: Vec<Option<Shape>> = run
            .iter()
            .map(|&i| {
                let shaped = locals[i].shaped.as_mut()?;
                Some(std::mem::replace(
                    &mut shaped.shape,
                    Shape::Literal(hcl::Value::Null),
                ))
            })
            .collect();
        let locals: &[Local<'_>] = locals;
        let shared: &Scope<'static> = scope;
        let evaluate = |(mut found, charged): (Diagnostics, Result<Charged, Skipped>),
                        i: usize,
                        shape: Option<Shape>| {
            let local = &locals[i];
            let value = match (charged, shape) {
                (Err(_), _) => Ok(None),
                (Ok(Charged::Pending(_)), Some(shape)) => match shared.fold_shape(shape) {
                    Some(value) => Ok(Some(value)),
                    None => Err(Unsplit),
                },
                (Ok(charged), _) => Ok(shared
                    .evaluate(local.file, &local.attr.value, charged, &mut found)
                    .ok()),
            };
            (found, value)
        };
        type Evaluated = (Diagnostics, Result<Option<hcl::Value>, Unsplit>);
        let evaluated: Vec<Evaluated> = if run.len() == 1 {
            charged
                .into_iter()
                .zip(run.iter().copied())
                .zip(shapes)
                .map(|((c, i), shape)| evaluate(c, i, shape))
                .collect()
        } else {
            charged
                .into_par_iter()
                .zip(run.par_iter().copied())
                .zip(shapes)
                .map_init(
                    || {
                        dir.as_deref()
                            .map(|dir| functions::ConfigDirGuard::join(dir, log.clone()))
                    },
                    |_, ((c, i), shape)| evaluate(c, i, shape),
                )
                .collect()
        };
        for (&i, (found, value)) in run.iter().zip(evaluated) {
            let local = &locals[i];
            let value = value?;
            diags.extend(found.iter().cloned());
            let sensitive = match &local.shaped {
                Some(shaped) => scope.is_sensitive_refs(&shaped.references),
                None => scope.is_sensitive(&local.attr.value),
            };
            if sensitive {
                scope.mark_sensitive_local(&local.name);
            }
            scope.set_local(&local.name, value);
            done[i] = true;
        }
    }
    // What is left is on a cycle or depends on one.
    let mut reported = vec![false; locals.len()];
    for start in 0..locals.len() {
        if done[start] || reported[start] {
            continue;
        }
        // Walk unfinished dependencies until a local repeats: that is a cycle.
        let mut path = vec![start];
        let mut at = start;
        let cycle = loop {
            let Some(&next) = deps[at].iter().find(|&&n| !done[n]) else {
                break None;
            };
            if let Some(pos) = path.iter().position(|&p| p == next) {
                break Some(path[pos..].to_vec());
            }
            path.push(next);
            at = next;
        };
        if let Some(cycle) = cycle {
            if cycle.iter().any(|&c| reported[c]) {
                continue;
            }
            let names: Vec<&str> = cycle.iter().map(|&c| locals[c].name.as_str()).collect();
            let first = &locals[cycle[0]];
            diags.push(
                Diagnostic::error(
                    Code::ReferenceCycle,
                    format!(
                        "locals refer to each other in a cycle: {} -> {}",
                        names.join(" -> "),
                        names[0]
                    ),
                )
                .at(span_of(first.file, &first.attr.key), "part of the cycle")
                .help("break the cycle: one of these locals must not depend on the others"),
            );
            for &c in &cycle {
                reported[c] = true;
            }
        }
    }
    for (i, local) in locals.iter().enumerate() {
        if !done[i] {
            scope.set_local(&local.name, None);
        }
    }
    Ok(())
}

fn decode_fleet(decl: Decl<'_>, scope: &Scope, diags: &mut Diagnostics) -> Option<Fleet> {
    let name = decl.name("fleet", diags);
    let what = "fleet";
    let f = Fields::read(
        decl.file,
        &decl.block.body,
        what,
        &[
            "account_id",
            "regions",
            "rollback_window",
            "consistency_grace",
        ],
        &["budget", "limits", "rollout"],
        diags,
    );
    let mut origin = Origin {
        block: decl.header(),
        ..Origin::default()
    };
    f.record(&mut origin, "");
    let account_id = f.value(scope, "account_id", diags).and_then(|(v, at)| {
        let id = want::string(&v, &at, "fleet.account_id", diags)?;
        if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
            Some(id)
        } else {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("`fleet.account_id` must be 12 digits, got \"{id}\""),
                )
                .at(at, "not an AWS account id")
                .help("copy it from `aws sts get-caller-identity`"),
            );
            None
        }
    });
    let regions = f
        .required(scope, "regions", decl.header(), diags)
        .and_then(|(v, at)| {
            let regions = want::string_list(&v, &at, "fleet.regions", diags)?;
            check_regions(&regions, &at, "fleet.regions", diags);
            if regions.is_empty() {
                diags.push(
                    Diagnostic::error(Code::InvalidValue, "`fleet.regions` is empty")
                        .at(at, "no regions")
                        .help("name at least one region, e.g. `regions = [\"us-east-1\"]`"),
                );
            }
            Some(regions)
        });
    let rollback_window = match f.value(scope, "rollback_window", diags) {
        Some((v, at)) => want::duration(&v, &at, "fleet.rollback_window", diags),
        None => Some(Duration::from_secs(30 * 86_400)),
    };
    let consistency_grace = match f.value(scope, "consistency_grace", diags) {
        Some((v, at)) => want::duration(&v, &at, "fleet.consistency_grace", diags),
        None => Some(Fleet::default_consistency_grace()),
    };
    let budget = f.single_block("budget", diags).and_then(|block| {
        let b = Fields::read(
            decl.file,
            &block.body,
            "budget",
            &["max_hourly_usd"],
            &[],
            diags,
        );
        b.record(&mut origin, "budget.");
        let (v, at) = b.required(
            scope,
            "max_hourly_usd",
            span_of(decl.file, &block.ident),
            diags,
        )?;
        let usd = want::number(&v, &at, "budget.max_hourly_usd", diags)?;
        if usd.is_finite() && usd > 0.0 {
            Some(Budget {
                max_hourly_usd: usd,
            })
        } else {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    "`budget.max_hourly_usd` must be above 0",
                )
                .at(at, "not a positive amount")
                .help("give the most the fleet may cost per hour in USD"),
            );
            None
        }
    });
    let mut limits = Limits::default();
    if let Some(block) = f.single_block("limits", diags) {
        let l = Fields::read(
            decl.file,
            &block.body,
            "limits",
            &["max_launches", "max_terminations", "max_deletions"],
            &[],
            diags,
        );
        l.record(&mut origin, "limits.");
        for (key, slot) in [
            ("max_launches", &mut limits.max_launches),
            ("max_terminations", &mut limits.max_terminations),
            ("max_deletions", &mut limits.max_deletions),
        ] {
            if let Some((v, at)) = l.value(scope, key, diags) {
                if let Some(n) = want::count(&v, &at, &format!("limits.{key}"), diags) {
                    *slot = n;
                }
            }
        }
    }
    let rollout = f.single_block("rollout", diags).and_then(|block| {
        let allowed = regions.as_deref().map(|r| CanaryScope {
            regions: r,
            prefix: String::new(),
            outside: "is not a fleet region",
            label: "not in fleet.regions",
            help: "canary regions are some of fleet.regions",
        });
        decode_rollout(decl.file, block, scope, allowed, false, &mut origin, diags)
    });
    // As for worker types: stand-ins for what failed, so checks still run.
    Some(Fleet {
        rollout,
        name: name.unwrap_or_default(),
        account_id,
        regions: regions.unwrap_or_default(),
        budget,
        limits,
        rollback_window: rollback_window.unwrap_or(Duration::from_secs(0)),
        consistency_grace: consistency_grace.unwrap_or(Fleet::default_consistency_grace()),
        origin,
    })
}

/// Reports names that are not AWS region names, and repeats.
fn check_regions(regions: &[String], at: &Option<SourceRef>, what: &str, diags: &mut Diagnostics) {
    for (i, region) in regions.iter().enumerate() {
        if !is_region_name(region) {
            diags.push(
                Diagnostic::error(
                    Code::Region,
                    format!("`{region}` in `{what}` is not an AWS region name"),
                )
                .at(at.clone(), "not a region")
                .help("region names look like `us-east-1` or `eu-central-2`"),
            );
        } else if regions[..i].contains(region) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("`{region}` appears twice in `{what}`"),
                )
                .at(at.clone(), "repeated region")
                .help("list each region once"),
            );
        }
    }
}

/// `xx-name-N` or `xx-gov-name-N`: the shape of every AWS region name.
pub(crate) fn is_region_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let letters = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase());
    matches!(parts.as_slice(), [area, .., last] if parts.len() >= 3
        && area.len() == 2 && letters(area)
        && parts[1..parts.len() - 1].iter().all(|p| letters(p))
        && !last.is_empty() && last.chars().all(|c| c.is_ascii_digit()))
}

fn decode_key_pair(
    name: String,
    key: Option<&str>,
    decl: Decl<'_>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<KeyPair> {
    let what = format!("key_pair \"{name}\"");
    let f = Fields::read(
        decl.file,
        &decl.block.body,
        &what,
        &["public_key", "name", "ec2_name"],
        &[],
        diags,
    );
    let mut origin = Origin {
        block: decl.header(),
        ..Origin::default()
    };
    f.record(&mut origin, "");
    let id = repeat::id_of(&f, &name, key, "key_pair", scope, diags);
    let (v, at) = f.required(scope, "public_key", decl.header(), diags)?;
    let public_key = want::string(&v, &at, "key_pair.public_key", diags)?;
    let key = public_key.trim();
    const KINDS: &[&str] = &["ssh-rsa ", "ssh-ed25519 ", "ecdsa-sha2-"];
    if !KINDS.iter().any(|k| key.starts_with(k)) {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("key_pair \"{name}\": `public_key` is not an OpenSSH public key"),
            )
            .at(at, "expected ssh-rsa, ssh-ed25519 or ecdsa-sha2-*")
            .help(
                "use the contents of a .pub file, e.g. `public_key = file(\"keys/workers.pub\")`",
            ),
        );
        return None;
    }
    let ec2_name = ec2_name(&f, scope, "key_pair", &what, diags);
    Some(KeyPair {
        name,
        id,
        public_key: key.to_string(),
        origin,
        ec2_name,
    })
}

fn decode_ami_set(
    name: String,
    decl: Decl<'_>,
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<AmiSet> {
    let what = format!("ami_set \"{name}\"");
    let f = Fields::read(
        decl.file,
        &decl.block.body,
        &what,
        &[
            "virtualization",
            "architecture",
            "images",
            "retain",
            "copy_to",
        ],
        &["lookup", "source"],
        diags,
    );
    let mut origin = Origin {
        block: decl.header(),
        ..Origin::default()
    };
    f.record(&mut origin, "");
    let virtualization = match f.value(scope, "virtualization", diags) {
        Some((v, at)) => want::one_of(
            &v,
            &at,
            "ami_set.virtualization",
            &[("hvm", Virtualization::Hvm), ("pv", Virtualization::Pv)],
            diags,
        ),
        None => Some(Virtualization::Hvm),
    };
    let architecture = match f.value(scope, "architecture", diags) {
        Some((v, at)) => want::one_of(
            &v,
            &at,
            "ami_set.architecture",
            &[
                ("x86_64", Architecture::X86_64),
                ("arm64", Architecture::Arm64),
            ],
            diags,
        ),
        None => Some(Architecture::X86_64),
    };
    let forms: Vec<&str> = [
        ("images", f.get("images").is_some()),
        ("lookup", f.blocks("lookup").next().is_some()),
        ("source", f.blocks("source").next().is_some()),
    ]
    .into_iter()
    .filter_map(|(form, present)| present.then_some(form))
    .collect();
    if forms.len() != 1 {
        diags.push(
            Diagnostic::error(
                if forms.is_empty() { Code::Missing } else { Code::InvalidValue },
                if forms.is_empty() {
                    format!("{what} has no images: give `images`, a `lookup` block or a `source` block")
                } else {
                    format!("{what} gives its images in {} ways ({}); use exactly one", forms.len(), forms.join(", "))
                },
            )
            .at(decl.header(), "declared here")
            .help("`images = { \"us-east-1\" = \"ami-...\" }`, `lookup { name = \"docker-worker-*\" }`, or `source { region = \"us-east-1\"  image = \"ami-...\" }` with `copy_to`"),
        );
    }
    let lookup = f.single_block("lookup", diags).and_then(|block| {
        let l = Fields::read(
            decl.file,
            &block.body,
            "lookup",
            &["name", "owners"],
            &[],
            diags,
        );
        l.record(&mut origin, "lookup.");
        let name = l
            .required(scope, "name", span_of(decl.file, &block.ident), diags)
            .and_then(|(v, at)| want::string(&v, &at, "lookup.name", diags));
        let owners = match l.value(scope, "owners", diags) {
            Some((v, at)) => want::string_list(&v, &at, "lookup.owners", diags),
            None if l.get("owners").is_some() => None,
            None => Some(vec!["self".to_string()]),
        };
        Some(ImageLookup {
            name: name?,
            owners: owners?,
        })
    });
    let set_copy_to = f.value(scope, "copy_to", diags).and_then(|(v, at)| {
        let regions = want::string_list(&v, &at, "ami_set.copy_to", diags)?;
        check_regions(&regions, &at, "ami_set.copy_to", diags);
        Some(regions)
    });
    let source = f.single_block("source", diags).and_then(|block| {
        let src = Fields::read(
            decl.file,
            &block.body,
            "source",
            &["region", "image", "copy_to"],
            &[],
            diags,
        );
        src.record(&mut origin, "source.");
        let header = span_of(decl.file, &block.ident);
        let region = src
            .required(scope, "region", header.clone(), diags)
            .and_then(|(v, at)| {
                let region = want::string(&v, &at, "source.region", diags)?;
                check_regions(std::slice::from_ref(&region), &at, "source.region", diags);
                Some(region)
            });
        let image = src
            .required(scope, "image", header, diags)
            .and_then(|(v, at)| {
                let id = want::string(&v, &at, "source.image", diags)?;
                if is_ami_id(&id) {
                    Some(id)
                } else {
                    diags.push(
                        Diagnostic::error(Code::InvalidValue, format!("`{id}` is not an AMI id"))
                            .at(at, "expected ami- and 8 or 17 hex digits")
                            .help("AMI ids look like `ami-0123456789abcdef0`"),
                    );
                    None
                }
            });
        let inner_copy_to = src.value(scope, "copy_to", diags).and_then(|(v, at)| {
            let regions = want::string_list(&v, &at, "source.copy_to", diags)?;
            check_regions(&regions, &at, "source.copy_to", diags);
            Some(regions)
        });
        if inner_copy_to.is_some() && set_copy_to.is_some() {
            diags.push(
                Diagnostic::error(Code::Duplicate, format!("{what}: `copy_to` is given twice"))
                    .at(origin.attribute("copy_to"), "given again")
                    .help("give `copy_to` once, beside or inside the `source` block"),
            );
        }
        let copy_to = inner_copy_to
            .or_else(|| set_copy_to.clone())
            .unwrap_or_default();
        let region = region?;
        if copy_to.contains(&region) {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("{what}: `copy_to` names the source region {region}"),
                )
                .at(
                    origin.attribute("source.region"),
                    "the source is already here",
                )
                .help("list only the regions that need a copy"),
            );
        }
        Some(ImageSource {
            region,
            image: image?,
            copy_to,
        })
    });
    if set_copy_to.is_some() && f.blocks("source").next().is_none() {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("{what}: `copy_to` needs a `source` block to copy from"),
            )
            .at(origin.attribute("copy_to"), "nothing to copy")
            .help("add `source { region = \"us-east-1\"  image = \"ami-...\" }`"),
        );
    }
    let images = match f.value(scope, "images", diags) {
        None => Some(BTreeMap::new()),
        Some((v, at)) => {
            let images = want::string_map(&v, &at, "ami_set.images", diags)?;
            let spans = f
                .get("images")
                .map(|a| object_value_spans(decl.file, &a.value))
                .unwrap_or_default();
            let mut ok = true;
            for (region, id) in &images {
                let item_at = spans.get(region).cloned().or_else(|| at.clone());
                if let Some(item) = &item_at {
                    origin
                        .attributes
                        .insert(format!("images.{region}"), item.clone());
                }
                if !is_region_name(region) {
                    ok = false;
                    diags.push(
                        Diagnostic::error(
                            Code::Region,
                            format!("`{region}` in {what} images is not an AWS region name"),
                        )
                        .at(item_at.clone(), "key is not a region")
                        .help("keys of `images` are regions, e.g. `\"us-east-1\" = \"ami-...\"`"),
                    );
                }
                if !is_ami_id(id) {
                    ok = false;
                    diags.push(
                        Diagnostic::error(Code::InvalidValue, format!("`{id}` is not an AMI id"))
                            .at(item_at, "expected ami- and 8 or 17 hex digits")
                            .help("AMI ids look like `ami-0123456789abcdef0`"),
                    );
                }
            }
            ok.then_some(images)
        }
    };
    let retain = f
        .value(scope, "retain", diags)
        .and_then(|(v, at)| want::duration(&v, &at, "ami_set.retain", diags));
    // Without its images the set is left out, so FF002 does not fire for every user of it.
    Some(AmiSet {
        name,
        virtualization: virtualization.unwrap_or(Virtualization::Hvm),
        architecture: architecture.unwrap_or(Architecture::X86_64),
        images: images?,
        lookup,
        source,
        retain,
        origin,
    })
}

/// `ami-` followed by 8 or 17 lowercase hex digits.
pub(crate) fn is_ami_id(id: &str) -> bool {
    id.strip_prefix("ami-").is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// The `instance_refresh` block: `min_healthy_percentage` (default 90, as
/// Auto Scaling's own default), a whole percentage.
fn decode_instance_refresh(
    file: crate::source::FileId,
    block: &hcl_edit::structure::Block,
    scope: &Scope,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> Option<InstanceRefresh> {
    let r = Fields::read(
        file,
        &block.body,
        "instance_refresh",
        &["min_healthy_percentage"],
        &[],
        diags,
    )
    .in_worker_type();
    r.record(origin, "instance_refresh.");
    let percentage = match r.value(scope, "min_healthy_percentage", diags) {
        Some((v, at)) => {
            let n = want::count(&v, &at, "instance_refresh.min_healthy_percentage", diags)?;
            match u8::try_from(n).ok().filter(|n| *n <= 100) {
                Some(n) => n,
                None => {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("min_healthy_percentage must be 0 to 100, got {n}"),
                        )
                        .at(at, "not a percentage")
                        .help("the share of capacity kept in service while instances are replaced, e.g. 90"),
                    );
                    return None;
                }
            }
        }
        None if r.get("min_healthy_percentage").is_some() => return None,
        None => 90,
    };
    Some(InstanceRefresh {
        min_healthy_percentage: percentage,
    })
}

/// Decodes one worker type: `decl` is its block (header and labels) and
/// `body` its body's structures, which for an instance of a `for_each` with
/// `dynamic` blocks are the shared body with the instance's made blocks in
/// place (`repeat::overlaid`).
fn decode_worker_type<'a>(
    name: String,
    key: Option<&str>,
    decl: Decl<'a>,
    body: &[&'a Structure],
    default_regions: &[String],
    scope: &Scope,
    diags: &mut Diagnostics,
) -> Option<WorkerType> {
    let what = format!("worker_type \"{name}\"");
    let f = Fields::read_structures(
        decl.file,
        body.iter().copied(),
        &what,
        &[
            "ami_set",
            "key_pair",
            "regions",
            "market",
            "max_lifetime",
            "user_data",
            "tags",
            "network",
            "iam_instance_profile",
            "name",
            "scaling",
            "ec2_name",
        ],
        &[
            "instance_type",
            "capacity",
            "rollout",
            "root_volume",
            "volume",
            "spot",
            "metadata",
            "instance_refresh",
        ],
        diags,
    )
    .in_worker_type();
    let mut origin = Origin {
        block: decl.header(),
        ..Origin::default()
    };
    f.record(&mut origin, "");
    let id = repeat::id_of(&f, &name, key, "worker_type", scope, diags);
    let ec2_name = ec2_name(&f, scope, "worker_type", &what, diags);
    let ami_set = f
        .required(scope, "ami_set", decl.header(), diags)
        .and_then(|(v, at)| want::reference(&v, &at, "worker_type.ami_set", "ami_set", diags));
    let key_pair = f
        .value(scope, "key_pair", diags)
        .and_then(|(v, at)| want::reference(&v, &at, "worker_type.key_pair", "key_pair", diags));
    let network = f
        .value(scope, "network", diags)
        .and_then(|(v, at)| want::reference(&v, &at, "worker_type.network", "network", diags));
    let regions = match f.value(scope, "regions", diags) {
        Some((v, at)) => {
            want::string_list(&v, &at, "worker_type.regions", diags).inspect(|regions| {
                check_regions(regions, &at, "worker_type.regions", diags);
            })
        }
        None if f.get("regions").is_some() => None,
        None => Some(default_regions.to_vec()),
    };
    // The regions `region` takes its values from (none when they failed:
    // the attributes that use it are then not evaluated at all).
    let region_list: Vec<String> = regions.clone().unwrap_or_default();
    let mut regional: BTreeMap<String, RegionalValues> = BTreeMap::new();
    let market = match f.value(scope, "market", diags) {
        Some((v, at)) => want::one_of(
            &v,
            &at,
            "worker_type.market",
            &[("spot", Market::Spot), ("on-demand", Market::OnDemand)],
            diags,
        ),
        None if f.get("market").is_some() => None,
        None => Some(Market::OnDemand),
    };
    let max_lifetime = f
        .value(scope, "max_lifetime", diags)
        .and_then(|(v, at)| want::duration(&v, &at, "worker_type.max_lifetime", diags));
    let scaling = match f.value(scope, "scaling", diags) {
        Some((v, at)) => want::one_of(
            &v,
            &at,
            "worker_type.scaling",
            &[("direct", Scaling::Direct), ("asg", Scaling::Asg)],
            diags,
        ),
        None if f.get("scaling").is_some() => None,
        None => Some(Scaling::Direct),
    };
    let instance_refresh = f
        .single_block("instance_refresh", diags)
        .and_then(|block| decode_instance_refresh(decl.file, block, scope, &mut origin, diags));
    let (user_data, user_data_sensitive) =
        match f.regional_value(scope, "user_data", &region_list, true, diags) {
            Some((v, at, sensitive)) => {
                let converted =
                    per_region(v, |v| want::string(v, &at, "worker_type.user_data", diags));
                let base = converted.map(|(base, each)| {
                    for (region, data) in each.into_iter().flatten() {
                        regional.entry(region).or_default().user_data = Some(data);
                    }
                    base
                });
                (base.flatten(), sensitive)
            }
            None => (None, false),
        };
    let tags = match f.regional_value(scope, "tags", &region_list, false, diags) {
        Some((v, at, _)) => per_region(v, |v| {
            let tags = want::string_map(v, &at, "worker_type.tags", diags)?;
            let reserved: Vec<&String> = tags
                .keys()
                .filter(|k| k.starts_with("fleetform:"))
                .collect();
            if reserved.is_empty() {
                Some(tags)
            } else {
                diags.push(
                    Diagnostic::error(
                        Code::InvalidValue,
                        format!(
                            "tag `{}` is reserved: fleetform sets `fleetform:*` tags itself",
                            reserved[0]
                        ),
                    )
                    .at(at.clone(), "reserved tag key")
                    .help("choose a key without the `fleetform:` prefix"),
                );
                None
            }
        })
        .map(|(base, each)| {
            for (region, tags) in each.into_iter().flatten() {
                regional.entry(region).or_default().tags = Some(tags.into());
            }
            base.unwrap_or_default()
        }),
        None if f.get("tags").is_some() => None,
        None => Some(BTreeMap::new()),
    };
    let iam_instance_profile =
        match f.regional_value(scope, "iam_instance_profile", &region_list, false, diags) {
            Some((v, at, _)) => per_region(v, |v| {
                let profile = want::string(v, &at, "worker_type.iam_instance_profile", diags)?;
                if is_instance_profile(&profile) {
                    Some(profile)
                } else {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("{what}: `{profile}` is neither an instance profile name nor its ARN"),
                        )
                        .at(at.clone(), "not an instance profile")
                        .help("give the profile's name (letters, digits and +=,.@_-, at most 128) or its ARN, `arn:aws:iam::123456789012:instance-profile/NAME`"),
                    );
                    None
                }
            })
            .and_then(|(base, each)| {
                for (region, profile) in each.into_iter().flatten() {
                    regional.entry(region).or_default().iam_instance_profile = Some(profile);
                }
                base
            }),
            None => None,
        };
    let root_volume = f.single_block("root_volume", diags).and_then(|block| {
        launch::decode_volume(decl.file, block, "root_volume", scope, &mut origin, diags)
    });
    let volumes =
        launch::decode_volumes(decl.file, f.blocks("volume"), "", scope, &mut origin, diags);
    let spot = f
        .single_block("spot", diags)
        .and_then(|block| launch::decode_spot(decl.file, block, scope, &mut origin, diags));
    let metadata = match f.single_block("metadata", diags) {
        Some(block) => launch::decode_metadata(decl.file, block, scope, &mut origin, diags),
        None => Some(Default::default()),
    };

    let mut instance_types: Vec<InstanceType> = Vec::new();
    for block in f.blocks("instance_type") {
        let block_at = span_of(decl.file, block);
        let header = match (block.ident.span(), block.labels.last().and_then(Span::span)) {
            (Some(a), Some(b)) => Some(SourceRef {
                file: decl.file,
                span: a.start..b.end,
            }),
            _ => block_at.clone(),
        };
        let type_name = match block.labels.as_slice() {
            [label] => label.as_str().to_string(),
            _ => {
                diags.push(
                    Diagnostic::error(
                        Code::Missing,
                        format!("{what}: `instance_type` needs exactly one name"),
                    )
                    .at(header, "instance_type block")
                    .help("write `instance_type \"m5.xlarge\" { capacity = 1 }`"),
                );
                continue;
            }
        };
        if crate::catalog::InstanceTypeInfo::parse(&type_name).is_none() {
            diags.push(
                Diagnostic::error(
                    Code::InvalidValue,
                    format!("`{type_name}` is not an EC2 instance type name"),
                )
                .at(header.clone(), "expected FAMILY.SIZE")
                .help("instance types look like `m5.xlarge` or `c5.metal`"),
            );
        }
        if instance_types.iter().any(|t| t.name == type_name) {
            diags.push(
                Diagnostic::error(
                    Code::Duplicate,
                    format!("{what}: instance type `{type_name}` is listed twice"),
                )
                .at(header, "listed again")
                .help("list each instance type once"),
            );
            continue;
        }
        if let Some(h) = &header {
            origin
                .attributes
                .insert(format!("instance_type.{type_name}"), h.clone());
        }
        let it = Fields::read(
            decl.file,
            &block.body,
            &format!("instance_type \"{type_name}\""),
            &["capacity", "regions", "user_data"],
            &["volume"],
            diags,
        )
        .in_worker_type();
        it.record(&mut origin, &format!("instance_type.{type_name}."));
        let type_regions = match it.value(scope, "regions", diags) {
            Some((v, at)) => {
                let key = "instance_type.regions";
                want::string_list(&v, &at, key, diags).and_then(|list| {
                    check_regions(&list, &at, key, diags);
                    instance_type_regions(&what, &type_name, list, regions.as_deref(), &at, diags)
                })
            }
            None => None,
        };
        let used_in: Vec<String> = region_list
            .iter()
            .filter(|r| type_regions.as_ref().is_none_or(|list| list.contains(r)))
            .cloned()
            .collect();
        let (type_user_data, type_user_data_sensitive) =
            match it.regional_value(scope, "user_data", &used_in, true, diags) {
                Some((v, at, sensitive)) => {
                    let converted = per_region(v, |v| {
                        want::string(v, &at, "instance_type.user_data", diags)
                    });
                    let base = converted.and_then(|(base, each)| {
                        for (region, data) in each.into_iter().flatten() {
                            regional
                                .entry(region)
                                .or_default()
                                .instance_user_data
                                .insert(type_name.clone(), data);
                        }
                        base
                    });
                    (base, sensitive)
                }
                None => (None, false),
            };
        let type_volumes = launch::decode_volumes(
            decl.file,
            it.blocks("volume"),
            &format!("instance_type.{type_name}."),
            scope,
            &mut origin,
            diags,
        );
        let capacity = match it.value(scope, "capacity", diags) {
            Some((v, at)) => {
                if let Some(at) = &at {
                    origin
                        .attributes
                        .insert(format!("instance_type.{type_name}.capacity"), at.clone());
                }
                match want::integer(&v, &at, "instance_type.capacity", diags) {
                    Some(n) if n >= 1 && n <= i64::from(u32::MAX) => Some(n as u32),
                    Some(n) => {
                        diags.push(
                            Diagnostic::error(
                                Code::CapacityRange,
                                format!("{what}: capacity weight of `{type_name}` must be at least 1, got {n}"),
                            )
                            .at(at, "weight must be >= 1")
                            .help("the weight is how many capacity units one instance provides"),
                        );
                        None
                    }
                    None => None,
                }
            }
            None if it.get("capacity").is_some() => None,
            None => Some(1),
        };
        // As for the worker type: an instance type whose `regions` or
        // `user_data` failed (reported) stays, with neutral stand-ins, so
        // the checks do not report it missing.
        if let Some(capacity) = capacity {
            instance_types.push(InstanceType {
                name: type_name,
                capacity,
                regions: type_regions,
                user_data: type_user_data,
                user_data_sensitive: type_user_data_sensitive,
                volumes: type_volumes,
            });
        }
    }
    if f.blocks("instance_type").next().is_none() {
        diags.push(
            Diagnostic::error(
                Code::Missing,
                format!("{what} has no `instance_type` block"),
            )
            .at(decl.header(), "declared here")
            .help("add at least one, e.g. `instance_type \"m5.xlarge\" { capacity = 1 }`"),
        );
    }

    let capacity = match f.single_block("capacity", diags) {
        Some(block) => {
            let c = Fields::read(
                decl.file,
                &block.body,
                "capacity",
                &["min", "max", "scope"],
                &[],
                diags,
            )
            .in_worker_type();
            c.record(&mut origin, "capacity.");
            let capacity_scope = match c.value(scope, "scope", diags) {
                Some((v, at)) => want::one_of(
                    &v,
                    &at,
                    "capacity.scope",
                    &[
                        ("region", CapacityScope::Region),
                        ("worker_type", CapacityScope::WorkerType),
                    ],
                    diags,
                ),
                None if c.get("scope").is_some() => None,
                None => Some(CapacityScope::Region),
            };
            let min = match c.value(scope, "min", diags) {
                Some((v, at)) => want::count(&v, &at, "capacity.min", diags),
                None if c.get("min").is_some() => None,
                None => Some(0),
            };
            let max = c
                .required(scope, "max", span_of(decl.file, &block.ident), diags)
                .and_then(|(v, at)| want::count(&v, &at, "capacity.max", diags));
            match (min, max, capacity_scope) {
                (Some(min), Some(max), Some(scope)) => Some(Capacity { min, max, scope }),
                _ => None,
            }
        }
        None => {
            diags.push(
                Diagnostic::error(Code::Missing, format!("{what} has no `capacity` block"))
                    .at(decl.header(), "declared here")
                    .help("bounds are required: add `capacity {\n  min = 0\n  max = 10\n}`"),
            );
            None
        }
    };
    let rollout = f.single_block("rollout", diags).and_then(|block| {
        let allowed = regions.as_deref().map(|r| CanaryScope {
            regions: r,
            prefix: format!("{what}: "),
            outside: "is not one of its regions",
            label: "not a region of this worker type",
            help: "canary regions are some of the worker type's regions",
        });
        decode_rollout(decl.file, block, scope, allowed, true, &mut origin, diags)
    });
    // A worker type with errors is still returned, with neutral stand-ins for what
    // failed (no regions, no bounds), so the static checks can report its other
    // problems in the same run. The load fails anyway: errors were reported.
    Some(WorkerType {
        name,
        id,
        ami_set: ami_set.unwrap_or_default(),
        key_pair,
        regions: regions.unwrap_or_default(),
        instance_types,
        capacity: capacity.unwrap_or(Capacity::per_region(0, 0)),
        scaling: scaling.unwrap_or_default(),
        instance_refresh,
        market: market.unwrap_or(Market::OnDemand),
        max_lifetime,
        user_data,
        user_data_sensitive,
        tags: tags.map(Into::into).unwrap_or_default(),
        rollout,
        network,
        iam_instance_profile,
        root_volume,
        volumes,
        spot,
        metadata: metadata.unwrap_or_default(),
        regional,
        origin,
        ec2_name,
    })
}

/// The optional `ec2_name` of a `worker_type` or `key_pair` block (`kind`):
/// a name EC2 accepts for a launch template (3 to 128 of letters, digits and
/// `( ) . - / _`) or a key pair (1 to 255 printable ASCII characters).
fn ec2_name(
    f: &Fields<'_>,
    scope: &Scope,
    kind: &str,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let (v, at) = f.value(scope, "ec2_name", diags)?;
    let name = want::string(&v, &at, &format!("{kind}.ec2_name"), diags)?;
    let fits = if kind == "worker_type" {
        (3..=128).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "().-/_".contains(c))
    } else {
        (1..=255).contains(&name.len()) && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    };
    if !fits {
        let rule = if kind == "worker_type" {
            "a launch template name is 3 to 128 letters, digits and ( ) . - / _"
        } else {
            "a key pair name is 1 to 255 printable ASCII characters"
        };
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("{what}: `ec2_name` \"{name}\" is not a name EC2 accepts"),
            )
            .at(at, rule)
            .help("leave `ec2_name` out to use `<fleet>.<id>`, or write the object's EC2 name exactly"),
        );
        return None;
    }
    Some(name)
}

/// A converted attribute that may use `region`: its base value, and its
/// value in each region when it uses `region`.
type PerRegion<T> = (Option<T>, Option<Vec<(String, T)>>);

/// Converts the value of an attribute that may use `region`: its base value
/// and, when it uses `region`, its value in each region. The base value is
/// then the one in the first region, so that code asking only whether the
/// attribute is set keeps working; the accessors (`user_data_in`, ...) give
/// each region its own. `None` when a conversion failed (reported once).
fn per_region<T: Clone>(
    value: Regional,
    mut convert: impl FnMut(&hcl::Value) -> Option<T>,
) -> Option<PerRegion<T>> {
    match value {
        Regional::Same(v) => Some((Some(convert(&v)?), None)),
        Regional::PerRegion(values) => {
            let mut each = Vec::with_capacity(values.len());
            for (region, v) in values {
                each.push((region, convert(&v)?));
            }
            let base = each.first().map(|(_, t)| t.clone());
            Some((base, Some(each)))
        }
    }
}

/// An IAM instance profile name, or an instance profile ARN.
fn is_instance_profile(profile: &str) -> bool {
    if let Some(rest) = profile.strip_prefix("arn:") {
        return rest.contains(":iam::") && rest.contains(":instance-profile/");
    }
    (1..=128).contains(&profile.len())
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// The `regions` of an `instance_type` block: some of its worker type's,
/// not empty. `None` (reported) otherwise.
fn instance_type_regions(
    what: &str,
    type_name: &str,
    list: Vec<String>,
    worker_regions: Option<&[String]>,
    at: &Option<SourceRef>,
    diags: &mut Diagnostics,
) -> Option<Vec<String>> {
    if list.is_empty() {
        diags.push(
            Diagnostic::error(
                Code::InvalidValue,
                format!("{what}: `regions` of instance type `{type_name}` is empty"),
            )
            .at(at.clone(), "no regions")
            .help("name the regions it is used in, or leave `regions` out to use it in all of the worker type's"),
        );
        return None;
    }
    let worker_regions = worker_regions?;
    let outside: Vec<&String> = list
        .iter()
        .filter(|r| !worker_regions.contains(r))
        .collect();
    if outside.is_empty() {
        return Some(list);
    }
    for region in outside {
        diags.push(
            Diagnostic::error(
                Code::Region,
                format!("{what}: instance type `{type_name}` names `{region}`, which is not one of the worker type's regions"),
            )
            .at(at.clone(), "not a region of this worker type")
            .help(format!(
                "an instance type's regions are some of its worker type's ({})",
                worker_regions.join(", ")
            )),
        );
    }
    None
}

/// The regions canary regions must be among, and how to say one is not.
struct CanaryScope<'a> {
    regions: &'a [String],
    prefix: String,
    outside: &'static str,
    label: &'static str,
    help: &'static str,
}

/// A `rollout { canary_regions = [...] }` block, whose canary regions must lie in `allowed`.
fn decode_rollout(
    file: crate::source::FileId,
    block: &hcl_edit::structure::Block,
    scope: &Scope,
    allowed: Option<CanaryScope<'_>>,
    in_worker_type: bool,
    origin: &mut Origin,
    diags: &mut Diagnostics,
) -> Option<Rollout> {
    let r = Fields::read(
        file,
        &block.body,
        "rollout",
        &["canary_regions"],
        &[],
        diags,
    );
    // In a worker type `region` is a name, but not one a roll-out may use.
    let r = if in_worker_type {
        r.in_worker_type()
    } else {
        r
    };
    r.record(origin, "rollout.");
    let (v, at) = r.required(scope, "canary_regions", span_of(file, &block.ident), diags)?;
    let regions = want::string_list(&v, &at, "rollout.canary_regions", diags)?;
    check_regions(&regions, &at, "rollout.canary_regions", diags);
    for outside in allowed.iter().flat_map(|a| {
        regions
            .iter()
            .filter(|r| !a.regions.contains(r))
            .map(move |r| (a, r))
    }) {
        let (a, region) = outside;
        diags.push(
            Diagnostic::error(
                Code::Region,
                format!("{}canary region `{region}` {}", a.prefix, a.outside),
            )
            .at(origin.attribute("rollout.canary_regions"), a.label)
            .help(format!("{} ({})", a.help, a.regions.join(", "))),
        );
    }
    Some(Rollout {
        canary_regions: regions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_have_the_aws_shape() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us-east",
            "useast1",
            "US-east-1",
            "u-east-1",
            "us--1",
            "us-east-x",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn ami_ids_have_the_aws_shape() {
        assert!(is_ami_id("ami-0123456789abcdef0"));
        assert!(is_ami_id("ami-12345678"));
        assert!(!is_ami_id("ami-0123456789ABCDEF0"));
        assert!(!is_ami_id("ami-123"));
        assert!(!is_ami_id("0123456789abcdef0"));
    }
}
